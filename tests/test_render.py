"""render: the script-safe JSON encoder, the CSP, templates and the atomic write."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reportgen.assets import libraries
from reportgen.errors import InputError
from reportgen.render import content_security_policy, script_json, write_atomic


@given(st.text())
def test_script_json_round_trips_and_never_closes_a_script(text: str) -> None:
    encoded = str(script_json({"t": text, "l": [text]}))
    assert "</" not in encoded and "<!--" not in encoded and "<" not in encoded
    assert "\u2028" not in encoded and "\u2029" not in encoded
    assert json.loads(encoded) == {"t": text, "l": [text]}


# Text built mostly from the characters that end a script block or a JS string.
_HOSTILE_TEXT = st.text(
    alphabet=st.sampled_from(list("<>/!-&'\"\\`sScRiIpPtT ") + ["\u2028", "\u2029", "\x00"])
    | st.characters(),
    max_size=40,
)
_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | _HOSTILE_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_HOSTILE_TEXT, inner, max_size=4),
    max_leaves=20,
)


@given(_JSON_VALUES)
def test_script_json_round_trips_nested_hostile_values(value: object) -> None:
    """Keys, nested lists and objects too: `</script`, `<!--` and U+2028 never appear raw."""
    encoded = str(script_json(value))
    assert "</" not in encoded and "<!--" not in encoded and "<" not in encoded
    assert ">" not in encoded and "&" not in encoded
    assert "\u2028" not in encoded and "\u2029" not in encoded
    assert json.loads(encoded) == value


def test_script_json_escapes_breakouts() -> None:
    out = str(script_json("</script><script>alert(1)</script>&"))
    assert out == '"\\u003c/script\\u003e\\u003cscript\\u003ealert(1)\\u003c/script\\u003e\\u0026"'


def test_csp_forbids_network() -> None:
    csp = content_security_policy(["a"])
    assert csp.startswith("default-src 'none'")
    assert "unsafe-eval" not in csp and "http" not in csp
    assert "script-src 'sha256-" in csp and "'unsafe-inline'" not in csp.split(";")[1]


def test_libraries_read_from_installed_packages() -> None:
    names = [lib.name for lib in libraries()]
    assert names == ["jquery", "d3", "plotly", "bertviz-head-view"]
    d3 = libraries()[1].source
    assert 'version="5.7.0"' in d3.replace(" ", "") or "5.7.0" in d3[:2000]
    assert libraries()[3].source.startswith("window.reportgenHeadView = function (PYTHON_PARAMS)")


def test_write_atomic_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "r.html"
    target.write_text("old")
    assert write_atomic(target, "new ü") == len("new ü".encode())
    assert target.read_text(encoding="utf-8") == "new ü"
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]


def test_write_atomic_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        write_atomic(tmp_path / "nope" / "r.html", "x")


def test_long_text_is_shortened_in_heading_and_nav_and_shown_in_full(tiny_bert: Path) -> None:
    from html.parser import HTMLParser

    from reportgen.pipeline import build_report

    long_text = " ".join(f"word{i}" for i in range(30))  # 208 characters
    html = build_report([long_text, "Short one."], str(tiny_bert)).html

    class Texts(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.stack: list[str] = []
            self.found: dict[str, list[str]] = {"h2": [], "nav-a": [], "full": []}

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            cls = dict(attrs).get("class") or ""
            key = {"h2": "h2", "a": "a"}.get(tag, "")
            if "rg-full-text" in cls:
                key = "full"
            self.stack.append(key)
            if key:
                self.found.setdefault(key, []).append("")

        def handle_endtag(self, tag: str) -> None:
            if self.stack:
                self.stack.pop()

        def handle_data(self, data: str) -> None:
            for key in set(self.stack) - {""}:
                self.found[key][-1] += data

    parser = Texts()
    parser.feed(html)
    short = long_text[:80] + "…"
    headings = [h for h in parser.found["h2"] if h[:1].isdigit()]
    assert headings == [f"1. {short}", "2. Short one."]
    assert short in parser.found["a"] and "Short one." in parser.found["a"]
    assert parser.found["full"] == [long_text]


def _atlas_export(path: Path) -> int:
    from reportgen.atlas import Atlas
    from reportgen.atlas.stats import AtlasSums

    return Atlas("m", AtlasSums.empty(2, 4, 3)).export_json(path)


def _report_export(path: Path) -> int:
    from reportgen.export import write_export

    return write_export(path, {"model": "m"})


@pytest.mark.parametrize(
    "write",
    [lambda p: write_atomic(p, "<!DOCTYPE html>"), _report_export, _atlas_export],
    ids=["page", "report export", "atlas export"],
)
def test_every_writer_fails_with_the_one_line_and_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write: Any
) -> None:
    target = tmp_path / "out"
    target.write_text("old", encoding="utf-8")

    def full_disk(self: Path, data: bytes) -> int:
        self.open("wb").write(data[:3])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    with pytest.raises(InputError) as caught:
        write(target)
    monkeypatch.undo()
    assert str(caught.value) == f"cannot write '{target}': No space left on device"
    assert target.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
