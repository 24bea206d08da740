"""The wheel carries its templates: a `pip install --prefix` copy writes a report.

A prefix install is what `pip install --user`, a system pip or `--target` amount to:
the package lands outside any virtual environment, so nothing may be looked up under
`sys.prefix`. The pip comes from a fresh venv: the project's own pip would uninstall the
editable copy before installing the wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

from .conftest import REPO

pytestmark = pytest.mark.slow

MARKER = "rg-installed-copy-marker"


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.ids.update(v for k, v in attrs if k == "id" and v)


def _run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kwargs)  # type: ignore[call-overload]
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def test_wheel_installed_with_prefix_writes_a_report(tmp_path: Path) -> None:
    # A copy of what the wheel is built from, so the build leaves nothing in the checkout.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for name in ("reportgen", "templates"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    # No PYTHONPATH: pip would count a checkout on it as an installed reportgen.
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    dist = tmp_path / "dist"
    # No build isolation: the project's setuptools builds it, offline.
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(source),
        ],
        cwd=tmp_path,
        env=clean,
    )
    (wheel,) = dist.glob("reportgen-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("report.html.j2", "base.html.j2", "partials/_sentence.html.j2", "report.css"):
        assert f"reportgen/templates/{name}" in names
    assert any(n.startswith("reportgen/templates/js/") and n.endswith(".js") for n in names)
    assert not [n for n in names if ".data/data/" in n], "no data-files"
    # The head atlas: its package and its page's templates and scripts.
    for name in ("__init__", "corpus", "engine", "engine_ray", "page", "stats"):
        assert f"reportgen/atlas/{name}.py" in names
    for name in ("atlas.html.j2", "partials/_atlas_stats.html.j2", "js/atlas.js", "js/core.js"):
        assert f"reportgen/templates/{name}" in names

    other = tmp_path / "other-venv"
    venv.EnvBuilder(with_pip=True).create(other)
    prefix = tmp_path / "prefix"
    _run(
        [
            str(other / "bin" / "pip"),
            "install",
            "-q",
            "--no-deps",
            "--prefix",
            str(prefix),
            str(wheel),
        ],
        env=clean,
    )
    site = Path(sysconfig.get_path("purelib", vars={"base": str(prefix), "platbase": str(prefix)}))
    installed = site / "reportgen"
    assert (installed / "templates" / "report.html.j2").is_file()
    # Mark the installed footer, so the report shows which copy rendered it.
    footer = installed / "templates" / "partials" / "_footer.html.j2"
    footer.write_text(footer.read_text(encoding="utf-8") + f"<p id='{MARKER}'></p>\n")

    # The installed copy first, the project's dependencies after; never the checkout.
    env = {**clean, "PYTHONPATH": str(site)}
    out = tmp_path / "cats.html"
    where = _run(
        [sys.executable, "-c", "import reportgen.render as r; print(r.template_root())"],
        cwd=tmp_path,
        env=env,
    )
    assert Path(where.stdout.strip()) == installed / "templates"
    _run(
        [sys.executable, "-m", "reportgen", "-q", "Cats sleep.", "-o", str(out)],
        cwd=tmp_path,
        env=env,
    )
    parser = _Tags()
    parser.feed(out.read_text(encoding="utf-8"))
    parser.close()
    assert MARKER in parser.ids
    assert {"rg-config", "rg-data-s1", "s1"} <= parser.ids

    # The installed copy writes the atlas too, from its own templates.
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("Cats sleep.\nDogs bark, loudly.\n", encoding="utf-8")
    atlas = tmp_path / "atlas.html"
    _run(
        [sys.executable, "-m", "reportgen", "-q", "--atlas", "-i", str(corpus), "-o", str(atlas)],
        cwd=tmp_path,
        env=env,
    )
    parser = _Tags()
    parser.feed(atlas.read_text(encoding="utf-8"))
    parser.close()
    assert MARKER in parser.ids
    assert {"rg-data-rg-main", "rg-labels", "rg-head"} <= parser.ids
