"""Gold pages: the whole of one page of each kind (report, long input, atlas), pinned.

Each page is reduced to a readable skeleton: inlined libraries and reportgen's own
scripts become one line naming them (the browser tests run them), every number inside
a data block becomes ``#`` and is compared separately within 1e-4 (the last bits of a
float32 matmul may differ between CPUs), and packed map blobs become their length.
Everything else (markup, every caption and table, every figure's layout) must match
exactly. A difference prints as a unified diff; after a deliberate change run
``REPORTGEN_UPDATE_GOLD=1 make test`` and review the diff of ``tests/gold/``.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from reportgen import __version__, memory
from reportgen.cli import main

GOLD = Path(__file__).resolve().parent / "gold"
UPDATE = os.environ.get("REPORTGEN_UPDATE_GOLD") == "1"
NUMBER_TOLERANCE = 1e-4
# Long base64 strings inside data blocks are packed float maps (store.py).
PACKED = 200

LIB = re.compile(r'(<script type="application/x-reportgen-lib" data-name="([^"]+)">)[^<]*</script>')
SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)
HASH = re.compile(r"sha256-[A-Za-z0-9+/=]+")
DATA = re.compile(r'(<script type="application/json" id="([^"]+)">)(.*?)(</script>)', re.S)


def _walk(value: Any, numbers: list[float]) -> Any:
    """The JSON value with every number replaced by '#' (collected in order)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        numbers.append(float(value))
        return "#"
    if isinstance(value, str):
        return f"[packed: {len(value)} chars]" if len(value) > PACKED else value
    if isinstance(value, list):
        return [_walk(v, numbers) for v in value]
    return {k: _walk(v, numbers) for k, v in value.items()}


def scrub(page: str) -> dict[str, Any]:
    """A page's skeleton lines and its data numbers."""
    numbers: list[float] = []
    page = page.replace(__version__, "[version]")
    page = LIB.sub(lambda m: f"{m.group(1)}[library {m.group(2)}]</script>", page)
    page = SCRIPT.sub("<script>[reportgen script]</script>", page)
    page = HASH.sub("sha256-[the script's hash]", page)  # the CSP's, as the scripts change

    def data(m: re.Match[str]) -> str:
        value = _walk(json.loads(m.group(3)), numbers)
        body = json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False)
        return f"{m.group(1)}\n{body}\n{m.group(4)}"

    page = DATA.sub(data, page)
    return {"skeleton": page.splitlines(), "numbers": numbers}


def check_gold(name: str, page: str) -> None:
    got = scrub(page)
    path = GOLD / f"{name}.json"
    if UPDATE or not path.exists():
        if not UPDATE and os.environ.get("CI") == "true":
            pytest.fail(f"no gold page {path.name}: run REPORTGEN_UPDATE_GOLD=1 make test")
        GOLD.mkdir(exist_ok=True)
        path.write_text(json.dumps(got, indent=0, ensure_ascii=False) + "\n", encoding="utf-8")
        return
    want = json.loads(path.read_text(encoding="utf-8"))
    if got["skeleton"] != want["skeleton"]:
        diff = difflib.unified_diff(
            want["skeleton"], got["skeleton"], f"gold/{name}", "this run", lineterm="", n=2
        )
        pytest.fail(f"the {name} page differs from its gold page:\n" + "\n".join(list(diff)[:80]))
    assert len(got["numbers"]) == len(want["numbers"])
    worst = max(
        (abs(a - b) for a, b in zip(got["numbers"], want["numbers"], strict=True)), default=0.0
    )
    assert worst <= NUMBER_TOLERANCE, f"{name}: a number moved by {worst:.3g}"


@pytest.fixture(scope="module")
def gold_bert(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BERT under a fixed folder name: the pages name the model by it."""
    folder = tmp_path_factory.mktemp("gold") / "bert"
    shutil.copytree(tiny_bert, folder)
    return folder


def _run(args: list[str]) -> None:
    result = CliRunner().invoke(main, [*args, "-q"])
    assert result.exit_code == 0, result.output


def test_the_report_page_equals_its_gold_page(gold_bert: Path, tmp_path: Path) -> None:
    source = tmp_path / "lab.jsonl"
    records = [
        {
            "text": "The animal didn't cross the street because it was too tired.",
            "compare": "The animal didn't cross the street because it was too wide.",
            "focus": "it",
            "candidates": ["animal", "street"],
        },
        {"text": "The trophy doesn't fit in the suitcase."},
    ]
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    out = tmp_path / "report.html"
    _run(["-i", str(source), "-m", str(gold_bert), "-o", str(out), "--title", "Gold"])
    check_gold("report", out.read_text(encoding="utf-8"))


def test_the_long_page_equals_its_gold_page(
    gold_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The tiny BERT has the embedded model's real vocabulary; the other tiny models'
    # tokenizers are trained in memory, and their ids may differ from build to build.
    # A short input takes the long-input page when the plan says so: the same page, a
    # small gold file.
    monkeypatch.setattr(memory, "check_input", lambda *_: True)
    out = tmp_path / "long.html"
    text = "The animal didn't cross the street because it was too wide."
    _run([text, "-m", str(gold_bert), "--focus", "street", "-o", str(out)])
    page = out.read_text(encoding="utf-8")
    assert "long-input" in page
    check_gold("long", page)


def test_the_atlas_page_equals_its_gold_page(gold_bert: Path, tmp_path: Path) -> None:
    source = tmp_path / "corpus.jsonl"
    records = [
        {
            "text": "The animal didn't cross the street because it was too tired.",
            "focus": "it",
            "candidates": ["animal", "street"],
            "answer": "animal",
        },
        {"text": "The trophy doesn't fit in the suitcase because it is too big."},
        {"text": "A man walks."},
    ]
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    out = tmp_path / "atlas.html"
    _run(["--atlas", "-i", str(source), "-m", str(gold_bert), "-o", str(out)])
    check_gold("atlas", out.read_text(encoding="utf-8"))
