"""pipeline: `build_report` end to end on the tiny BERT, and the API's input checks."""

from __future__ import annotations

import base64
import gzip
import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from transformers import AutoTokenizer

from reportgen.assets import csp_hash
from reportgen.config import InputBatch, ReportConfig, SentenceInput
from reportgen.errors import InputError
from reportgen.pipeline import Report, _as_batch, build_report

SENTENCES = ("The animal didn't cross the street.", "It was too tired, so it stayed.")
TITLE = "Tiny <b>BERT</b> & co"


class _Page(HTMLParser):
    """The tags a report is checked on: metas, scripts (with their text) and the title."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.metas: list[dict[str, str | None]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.title = ""
        self._in: str | None = None
        self._attrs: dict[str, str | None] = {}
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "meta":
            self.metas.append(dict(attrs))
        elif tag in ("script", "title"):
            self._in, self._attrs, self._text = tag, dict(attrs), []

    def handle_data(self, data: str) -> None:
        if self._in is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in == "script":
            self.scripts.append((self._attrs, "".join(self._text)))
        elif tag == self._in == "title":
            self.title = "".join(self._text)
        if tag == self._in:
            self._in = None


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    page.close()
    return page


@pytest.fixture(scope="module")
def report(tiny_bert: Path) -> Report:
    return build_report(list(SENTENCES), model=str(tiny_bert), title=TITLE)


@pytest.fixture(scope="module")
def page(report: Report) -> _Page:
    return _parse(report.html)


def test_report_has_one_csp_that_allows_exactly_its_scripts(report: Report, page: _Page) -> None:
    csps = [
        m for m in page.metas if (m.get("http-equiv") or "").lower() == "content-security-policy"
    ]
    assert len(csps) == 1
    csp = csps[0]["content"] or ""
    assert csp.startswith("default-src 'none';")
    allowed = set(csp.split("script-src ", 1)[1].split(";", 1)[0].split())
    # Every executable script in the page, and every packed library once inflated, is hashed.
    ours = [text for attrs, text in page.scripts if "type" not in attrs]
    libs = [
        gzip.decompress(base64.b64decode(text)).decode("utf-8")
        for attrs, text in page.scripts
        if attrs.get("type") == "application/x-reportgen-lib"
    ]
    assert ours and len(libs) == 4
    assert {csp_hash(s) for s in ours + libs} == allowed


def test_one_data_block_per_sentence_with_its_tokens(
    report: Report, page: _Page, tiny_bert: Path
) -> None:
    blocks = {
        str(attrs["id"]): text
        for attrs, text in page.scripts
        if attrs.get("type") == "application/json"
        and (attrs.get("id") or "").startswith("rg-data-")
    }
    assert sorted(blocks) == [f"rg-data-s{i}" for i in range(1, len(SENTENCES) + 1)]
    ids = [attrs.get("id") for attrs, _ in page.scripts]
    assert all(ids.count(i) == 1 for i in blocks)
    tok = AutoTokenizer.from_pretrained(tiny_bert)
    for i, sentence in enumerate(SENTENCES, start=1):
        payload = json.loads(blocks[f"rg-data-s{i}"])
        enc = tok(sentence, return_offsets_mapping=True, return_special_tokens_mask=True)
        raw = tok.convert_ids_to_tokens(enc["input_ids"])
        # Readable tokens: the sentence's own text for word pieces, the marker for specials.
        expected = [
            t if special else sentence[a:b]
            for t, special, (a, b) in zip(
                raw, enc["special_tokens_mask"], enc["offset_mapping"], strict=True
            )
        ]
        seqs, maps = payload["seqs"], payload["maps"]
        assert seqs[0]["tokens"] == expected
        assert seqs[0]["special"] == [bool(s) for s in enc["special_tokens_mask"]]
        assert (maps[0]["layers"], maps[0]["heads"]) == (2, 4)
        assert maps[0]["n_query"] == maps[0]["n_key"] == len(raw)
    # The report's data matches what it extracted.
    for result, sentence in zip(report.extraction.results, SENTENCES, strict=True):
        assert result.item.text == sentence
        n = len(result.maps[0].query.tokens)
        assert result.maps[0].attention.shape == (2, 4, n, n)


def test_title_option_reaches_the_page(report: Report, page: _Page) -> None:
    assert page.title == f"{TITLE} · reportgen"  # autoescaped in the source, intact when read
    assert "<b>BERT</b>" not in report.html.split("</title>", 1)[0]


def test_save_writes_exactly_the_html(report: Report, tmp_path: Path) -> None:
    path = tmp_path / "r.html"
    assert report.save(path) == path.stat().st_size
    assert path.read_bytes() == report.html.encode("utf-8")
    assert report.save(str(path)) == path.stat().st_size  # str paths too, replaced whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]


def test_options_override_config(tiny_bert: Path) -> None:
    text = build_report(
        "One sentence.",
        config=ReportConfig(model=str(tiny_bert), title="From config"),
        title="From option",
    ).html
    assert _parse(text).title == "From option · reportgen"
    assert text.count('class="rg-sentence"') == 1


def test_unknown_option_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="no_such_option"):
        build_report("A sentence.", model="unused", no_such_option=1)


# --- _as_batch --------------------------------------------------------------------------


def _texts(batch: InputBatch) -> list[str]:
    return [item.text for item in batch.items]


def test_as_batch_accepts_one_string() -> None:
    batch = _as_batch("  The cat sat.  ")
    assert _texts(batch) == ["The cat sat."]  # stripped
    assert batch.items[0].source == "sentence 1"
    assert batch.pairs == ()


def test_as_batch_accepts_a_list_of_strings_and_inputs() -> None:
    given = SentenceInput("It was tired.", focus="It", candidates=("tired",), source="mine")
    batch = _as_batch(["The cat sat.", given])
    assert _texts(batch) == ["The cat sat.", "It was tired."]
    assert batch.items[1] is given
    assert [item.source for item in batch.items] == ["sentence 1", "mine"]
    assert _texts(_as_batch(("A.", "B."))) == ["A.", "B."]  # any sequence


def test_as_batch_passes_an_input_batch_through() -> None:
    batch = InputBatch(items=(SentenceInput("A."), SentenceInput("B.")), pairs=((0, 1),))
    assert _as_batch(batch) is batch


@pytest.mark.parametrize(
    ("sentences", "message"),
    [
        ([], "no sentences"),
        ("", "no sentences"),
        ("   ", "no sentences"),
        (["A.", ""], "or an empty one"),
        ([SentenceInput("")], "or an empty one"),
        ([42], "sentence 1 is a int, not a string"),
        (["A.", None], "sentence 2 is a NoneType"),
        (["ok", "bad \ud800"], "not valid UTF-8"),
        ([SentenceInput("ok", focus="\udc80", source="f.jsonl:2")], "f.jsonl:2: not valid UTF-8"),
    ],
)
def test_as_batch_refuses_unusable_input(sentences: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        _as_batch(sentences)


@pytest.mark.parametrize(
    "sentences",
    [
        InputBatch(items=()),
        InputBatch(items=(SentenceInput("", source="x"),)),
        InputBatch(items=(SentenceInput("bad \ud800", source="x"),)),
        [SentenceInput("   ", source="x")],
    ],
    ids=["empty-batch", "batch-empty-text", "batch-surrogate", "blank-input"],
)
def test_as_batch_checks_every_kind_of_input_alike(sentences: Any) -> None:
    with pytest.raises(InputError):
        _as_batch(sentences)


@pytest.mark.parametrize("sentences", [None, 42, b"The cat sat."], ids=["none", "int", "bytes"])
def test_as_batch_refuses_a_non_string_argument(sentences: Any) -> None:
    with pytest.raises(InputError, match=type(sentences).__name__):
        _as_batch(sentences)
