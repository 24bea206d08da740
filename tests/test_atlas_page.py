"""atlas.page and the atlas's place in the shared scheme: the page's scripts (ATLAS_SCRIPTS
under a hash CSP, none of the per-sentence page's), its typed data record, no local folder
in page or export, the same output checks and writer as the report, and the input limits
that do and do not apply to a streamed corpus."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import reportgen.atlas.corpus as corpus_module
import reportgen.inputs as inputs
from reportgen.assets import csp_hash, libraries
from reportgen.atlas import build_atlas
from reportgen.atlas.corpus import count_corpus
from reportgen.atlas.page import public_source
from reportgen.cli import main
from reportgen.config import ReportConfig
from reportgen.errors import InputError
from reportgen.render import ATLAS_SCRIPTS, PAGE_SCRIPTS, static_text
from reportgen.store import AtlasRecord

QA = [
    {
        "text": "The animal didn't cross the street because it was too tired.",
        "compare": "The animal didn't cross the street because it was too wide.",
        "focus": "it",
        "candidates": ["animal", "street"],
        "answer": "animal",
    },
    {"text": "Plain sentence, no question."},
    {"text": "Hello, world!"},
]


def write_jsonl(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


class _Scripts(HTMLParser):
    """Every <script>'s attributes and text, and the CSP meta tag."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.csp = ""
        self._open: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script":
            self._open = a
            self.scripts.append((a, ""))
        if tag == "meta" and a.get("http-equiv") == "Content-Security-Policy":
            self.csp = str(a["content"])

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._open = None


@pytest.fixture(scope="module")
def deep_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A corpus in nested folders whose names must not reach the page or the export."""
    folder = tmp_path_factory.mktemp("private-folder")
    return write_jsonl(folder / "nested" / "qa.jsonl", QA)


@pytest.fixture(scope="module")
def page_html(deep_corpus: Path, tiny_bert: Path) -> str:
    return build_atlas(str(deep_corpus), ReportConfig(model=str(tiny_bert))).html()


def test_page_runs_exactly_the_atlas_scripts_in_order(page_html: str) -> None:
    parsed = _Scripts()
    parsed.feed(page_html)
    ours = [text for attrs, text in parsed.scripts if "type" not in attrs]
    assert ours == [static_text(f"js/{name}") for name in ATLAS_SCRIPTS]
    # The shared modules, not copies: core, store (gzip decoding) and loader come first,
    # the one coordinator (main.js, its "atlas" entry) last.
    assert ATLAS_SCRIPTS[:3] == ("core.js", "store.js", "loader.js")
    assert ATLAS_SCRIPTS[-1] == PAGE_SCRIPTS[-1] == "main.js"
    assert set(ATLAS_SCRIPTS) - {"atlas.js"} <= set(PAGE_SCRIPTS)
    assert "atlas.js" not in PAGE_SCRIPTS
    assert 'data-rg-page="atlas"' in page_html
    atlas_js = static_text("js/atlas.js")
    assert "DecompressionStream" not in atlas_js and "atob(" not in atlas_js
    # The CSP allows these scripts and the inflated plotly.js, nothing else.
    allowed = set(re.findall(r"'sha256-[^']+'", parsed.csp.split("script-src", 1)[1].split(";")[0]))
    plotly = [lib for lib in libraries() if lib.name == "plotly"]
    assert allowed == {csp_hash(s) for s in ours} | {lib.csp_hash for lib in plotly}
    packed = [attrs.get("data-name") for attrs, _ in parsed.scripts if attrs.get("data-name")]
    assert packed == ["plotly"]


def test_page_data_is_an_atlas_record(page_html: str, tiny_bert: Path) -> None:
    parsed = _Scripts()
    parsed.feed(page_html)
    (text,) = [t for a, t in parsed.scripts if a.get("id") == "rg-data-rg-main"]
    data = json.loads(text)
    assert list(data) == list(AtlasRecord.__dataclass_fields__)
    assert (data["layers"], data["heads"]) == (2, 4)
    assert all(set(s) == {"name", "grid"} for s in data["stats"])
    for rows in data["examples"].values():
        for row in rows:
            assert set(row) == {"sentence", "value", "map"}
            n = len(data["sentences"][row["sentence"]]["tokens"])
            assert len(row["map"]) == n and all(len(r) == n for r in row["map"])
    assert "</" not in text  # script-safe JSON


def test_no_local_folder_in_page_or_export(
    tmp_path: Path, deep_corpus: Path, tiny_bert: Path
) -> None:
    out, exp = tmp_path / "atlas.html", tmp_path / "atlas.json"
    code, _, err = cli(
        "--atlas", "-i", str(deep_corpus), "-m", str(tiny_bert), "-o", str(out),
        "--export-json", str(exp),
    )  # fmt: skip
    assert code == 0, err
    html, export = out.read_text(encoding="utf-8"), exp.read_text(encoding="utf-8")
    for private in (str(deep_corpus.parent), str(tiny_bert.parent), "private-folder"):
        assert private not in html and private not in export
    assert json.loads(export)["model"]["name"] == tiny_bert.name
    parsed = _Scripts()
    parsed.feed(html)
    (text,) = [t for a, t in parsed.scripts if a.get("id") == "rg-data-rg-main"]
    sources = {s["source"] for s in json.loads(text)["sentences"]}
    assert sources and all(re.fullmatch(r"qa\.jsonl line \d+", s) for s in sources), sources


def test_public_source() -> None:
    assert public_source("/home/me/data/corpus.jsonl line 12") == "corpus.jsonl line 12"
    assert public_source("data/corpus.jsonl line 3") == "corpus.jsonl line 3"
    assert public_source("../c.txt:5") == "c.txt:5"
    assert public_source("<stdin> line 2") == "<stdin> line 2"
    assert public_source("<stdin>:2") == "<stdin>:2"


def test_outputs_are_checked_like_the_report(tmp_path: Path, tiny_bert: Path) -> None:
    corpus = write_jsonl(tmp_path / "c.jsonl", QA)
    before = corpus.read_bytes()
    cases = [
        (["-o", str(corpus)], "is the input file"),
        (["-o", str(tmp_path / "a"), "--export-json", str(tmp_path / "a")], "same file"),
        (["-o", str(tiny_bert / "config.json")], "inside the model"),
    ]
    for extra, message in cases:
        code, _, err = cli("--atlas", "-i", str(corpus), "-m", str(tiny_bert), *extra)
        assert code != 0 and message in err and "loading" not in err, (extra, err)
        assert len([x for x in err.splitlines() if x.startswith("Error:")]) == 1
    assert corpus.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.jsonl"]


def test_dash_writes_the_atlas_to_stdout(tmp_path: Path, tiny_bert: Path) -> None:
    corpus = write_jsonl(tmp_path / "c.jsonl", QA)
    code, out, err = cli("--atlas", "-i", str(corpus), "-m", str(tiny_bert), "-q", "-o", "-")
    assert code == 0, err
    assert out.startswith("<!DOCTYPE html>") and out.rstrip().endswith("</html>")
    assert 'id="rg-data-rg-main"' in out
    assert list(tmp_path.iterdir()) == [corpus]


def test_max_sentences_does_not_go_with_atlas(tmp_path: Path) -> None:
    corpus = write_jsonl(tmp_path / "c.jsonl", QA)
    code, _, err = cli("--atlas", "-i", str(corpus), "--max-sentences", "10")
    assert code == 2 and "--max-sentences" in err and "streams any number" in err


def test_report_limits_on_count_and_file_size_do_not_cap_a_corpus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = write_jsonl(tmp_path / "c.jsonl", QA * 50)
    monkeypatch.setattr(inputs, "MAX_SENTENCES", 2)
    monkeypatch.setattr(inputs, "MAX_INPUT_BYTES", 1024)
    assert corpus.stat().st_size > 1024
    assert count_corpus(str(corpus)) == 4 * 50  # each "compare" is a sentence of its own


def test_one_overlong_line_is_refused_without_reading_it_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(corpus_module, "MAX_LINE_BYTES", 200)
    corpus = tmp_path / "c.txt"
    corpus.write_text("Short.\n" + "word " * 100 + "\nShort.\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"c\.txt line 2: longer than"):
        count_corpus(str(corpus))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ({"text": "x" * (inputs.MAX_CHARS + 1)}, "over the limit"),
        ({"text": "It.", "focus": "f" * (inputs.MAX_WORD_CHARS + 1)}, '"focus"'),
        ({"text": "It.", "candidates": [f"w{i}" for i in range(60)]}, "over the limit of 50"),
        ({"text": "It.", "compare": "y" * (inputs.MAX_CHARS + 1)}, '"compare"'),
    ],
)
def test_field_limits_apply_per_line(tmp_path: Path, line: dict[str, Any], message: str) -> None:
    corpus = write_jsonl(tmp_path / "c.jsonl", [{"text": "Fine."}, line])
    with pytest.raises(InputError, match="line 2") as caught:
        count_corpus(str(corpus))
    assert message in str(caught.value)
    txt = tmp_path / "c.txt"
    txt.write_text("Fine.\n" + "z" * (inputs.MAX_CHARS + 1) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"c\.txt line 2: sentence"):
        count_corpus(str(txt))
