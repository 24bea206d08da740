"""headview: the bertviz adapter, checked against the installed bertviz's own files."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from reportgen.errors import ReportgenError
from reportgen.headview import PAIR_FILTERS, head_view_script

PREFIX = "window.reportgenHeadView = function (PYTHON_PARAMS) {\n"
SUFFIX = "\n};\n"


def _bertviz_file(name: str) -> str:
    spec = importlib.util.find_spec("bertviz")
    assert spec is not None and spec.submodule_search_locations
    folder = Path(next(iter(spec.submodule_search_locations)))
    return (folder / name).read_text(encoding="utf-8")


def test_wraps_the_installed_head_view_js_unmodified() -> None:
    source = _bertviz_file("head_view.js")
    script = head_view_script(source)
    assert script.startswith(PREFIX) and script.endswith(SUFFIX)
    assert script[len(PREFIX) : -len(SUFFIX)] == source
    # bertviz's placeholder is now the wrapper's parameter, not text to be replaced.
    assert "const params = PYTHON_PARAMS;" in source
    assert script.count("PYTHON_PARAMS") == source.count("PYTHON_PARAMS") + 1


def test_wrapping_is_deterministic() -> None:
    source = _bertviz_file("head_view.js")
    assert head_view_script(source) == head_view_script(source)


@pytest.mark.parametrize(
    "source",
    [
        "requirejs(['jquery', 'd3'], function ($, d3) {});",  # no PYTHON_PARAMS
        "const params = PYTHON_PARAMS;",  # no requirejs(
        "",
    ],
)
def test_unexpected_source_is_a_one_line_reportgen_error(source: str) -> None:
    with pytest.raises(ReportgenError, match="bertviz >= 1.4") as info:
        head_view_script(source)
    assert "\n" not in str(info.value)


def test_pair_filters_are_bertvizs_names_in_its_order() -> None:
    source = _bertviz_file("head_view.py")
    # bertviz's `attention` list for sentence pairs: 'name': '...' entries, in order.
    declared = re.findall(r"'name':\s*'([^']*)'", source)
    names = [name for name, _ in PAIR_FILTERS]
    assert len(names) == 5
    for name in names:
        assert f"'name': '{name}'" in source, name
    positions = [declared.index(name) for name in names]
    assert positions == sorted(positions)
    assert declared[positions[0] : positions[0] + 5] == names  # consecutive, one list
    keys = [key for _, key in PAIR_FILTERS]
    assert keys == ["all", "aa", "bb", "ab", "ba"]
