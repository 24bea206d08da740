"""Repository rules that CI enforces: ruff-clean code, help on every option, no vendored JS."""

from __future__ import annotations

import subprocess
import sys

import pytest

from reportgen.cli import main
from reportgen.render import ATLAS_SCRIPTS, PAGE_SCRIPTS

from .conftest import REPO


@pytest.mark.parametrize("args", [["check"], ["format", "--check"]])
def test_ruff_clean(args: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", *args, "reportgen", "tests", "benchmarks"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_clean() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "reportgen"], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_option_has_help() -> None:
    for param in main.params:
        if param.param_type_name == "option":
            assert getattr(param, "help", None), f"{param.name} has no help text"


def test_no_third_party_javascript_in_the_repo() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=False
    ).stdout.split()
    js = {p for p in tracked if p.endswith(".js")}
    pages = {*PAGE_SCRIPTS, *ATLAS_SCRIPTS}
    assert js == {f"templates/js/{name}" for name in pages}, "every script is loaded"
    for path in js:
        text = (REPO / path).read_text(encoding="utf-8")
        assert len(text) < 60_000 and "Copyright" not in text, path


def test_page_scripts_state_their_dependencies() -> None:
    """No optional hooks on the namespace (`if (RG.x)`, `RG.page && ...`): a module's
    dependencies are loaded before it (render.PAGE_SCRIPTS) or passed in, so what runs
    does not depend on load order."""
    import re

    # `if (RG.x)`, `if (!RG.page || ...)`; `= RG.page && ...`, `= RG.spec ? ...`. The
    # page-wide toggles (RG.state, main.js) are values, not hooks.
    name = r"RG\.(?!state\b)[\w.]+\s*"
    hooks = re.compile(rf"if \(!?{name}(\)|&&|\|\|)|=\s*{name}(&&|\?)")
    found = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted((REPO / "templates" / "js").glob("*.js"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if hooks.search(line)
    ]
    assert found == []
