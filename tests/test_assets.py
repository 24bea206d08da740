"""assets: third-party scripts read from the installed packages, packed and hashed."""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.util
import re
import socket
from importlib.machinery import ModuleSpec
from pathlib import Path
from typing import Any

import plotly.offline
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reportgen import assets
from reportgen.assets import Library, csp_hash, libraries, pack
from reportgen.errors import ReportgenError
from reportgen.headview import head_view_script

_REAL_FIND_SPEC = importlib.util.find_spec


def _package_file(package: str, *parts: str) -> str:
    spec = _REAL_FIND_SPEC(package)
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations)), *parts).read_text(encoding="utf-8")


@given(st.binary(max_size=4096))
def test_pack_round_trips_and_is_deterministic(data: bytes) -> None:
    packed = pack(data)
    assert packed == pack(data)
    assert re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", packed)
    assert gzip.decompress(base64.b64decode(packed, validate=True)) == data


def test_pack_has_no_timestamp() -> None:
    raw = base64.b64decode(pack(b"reportgen"))
    assert raw[:2] == b"\x1f\x8b"
    assert raw[4:8] == b"\x00\x00\x00\x00"  # gzip MTIME: 0, so reports are byte-identical


@pytest.mark.parametrize("script", ["", "alert(1)", "const s = 'é → ✓';\n"])
def test_csp_hash_is_sha256_of_the_utf8_script(script: str) -> None:
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    assert csp_hash(script) == "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def test_csp_hash_of_a_known_value() -> None:
    # echo -n 'alert(1)' | openssl dgst -sha256 -binary | base64
    assert csp_hash("alert(1)") == "'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI='"


def test_library_packs_and_hashes_its_source() -> None:
    lib = Library("x", "console.log('ü');")
    assert gzip.decompress(base64.b64decode(lib.packed)).decode("utf-8") == lib.source
    assert lib.csp_hash == csp_hash(lib.source)


def test_libraries_come_from_the_installed_packages_in_load_order() -> None:
    libs = {lib.name: lib.source for lib in libraries()}
    assert [lib.name for lib in libraries()] == ["jquery", "d3", "plotly", "bertviz-head-view"]
    assert libs["jquery"] == _package_file("xstatic.pkg.jquery", "data", "jquery.min.js")
    assert libs["d3"] == _package_file("mpld3", "js", "d3.v5.min.js")
    assert libs["plotly"] == _package_file("plotly", "package_data", "plotly.min.js")
    assert libs["bertviz-head-view"] == head_view_script(_package_file("bertviz", "head_view.js"))


def test_library_versions() -> None:
    libs = {lib.name: lib.source for lib in libraries()}
    assert libs["d3"].startswith("// https://d3js.org v5.7.0 ")
    assert 'version="5.7.0"' in libs["d3"]
    assert re.match(r"/\*! jQuery v3\.\d+\.\d+ ", libs["jquery"])
    # The banner names the plotly.js that this plotly.py release bundles.
    bundled = plotly.offline.get_plotlyjs_version()
    assert libs["plotly"].startswith(f"/**\n* plotly.js v{bundled}\n")


def test_libraries_never_touch_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("assets tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    fresh = assets.libraries.__wrapped__()  # past the cache: really read the files again
    assert fresh == libraries()
    for lib in fresh:
        assert not re.search(r"<script[^>]+src=|requirejs\.config", lib.source), lib.name


@pytest.mark.parametrize(
    ("package", "file"),
    [
        ("xstatic.pkg.jquery", "data/jquery.min.js"),
        ("mpld3", "js/d3.v5.min.js"),
        ("plotly", "package_data/plotly.min.js"),
        ("bertviz", "head_view.js"),
    ],
)
def test_missing_package_is_a_one_line_error(
    monkeypatch: pytest.MonkeyPatch, package: str, file: str
) -> None:
    def find_spec(name: str, *args: Any, **kwargs: Any) -> ModuleSpec | None:
        return None if name == package else _REAL_FIND_SPEC(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ReportgenError) as info:
        assets.libraries.__wrapped__()
    message = str(info.value)
    assert "\n" not in message
    assert f"cannot read {file} from the installed '{package}' package" in message
    assert "pip install --force-reinstall" in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_missing_jquery_names_the_right_distribution(monkeypatch: pytest.MonkeyPatch) -> None:
    def find_spec(name: str, *args: Any, **kwargs: Any) -> ModuleSpec | None:
        return None if name == "xstatic.pkg.jquery" else _REAL_FIND_SPEC(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ReportgenError) as info:
        assets.libraries.__wrapped__()
    assert re.search(r"pip install --force-reinstall xstatic-jquery\b", str(info.value), re.I)
