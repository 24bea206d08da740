"""The long-input page: a tiny random causal model at 2k+ tokens through the real CLI.

Over the page budget the report carries a reduced view of every head; checked on the
parsed HTML, against the model's own attention, and in Chromium.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from transformers import AutoModelForCausalLM, AutoTokenizer

from reportgen import analysis, memory
from reportgen.cli import main
from reportgen.store import LONG_SCALE

from . import models
from .conftest import open_report, outside_requests
from .test_streaming import _block_pool_reference, _long_text

TOKENS = 2400  # 2 layers x 4 heads x 2,400^2 = 46M values: over the 40M page budget
FOCUS = "street"


@pytest.fixture(scope="module")
def long_run(
    tmp_path_factory: pytest.TempPathFactory, tiny_model: Callable[..., Path]
) -> dict[str, Any]:
    """The tiny Llama (4,096-token context) over ~2,400 tokens of prose, via the CLI."""
    base = tmp_path_factory.mktemp("long-page")
    folder = tiny_model("llama", context=4096)
    tok = AutoTokenizer.from_pretrained(folder)
    text = _long_text(tok, TOKENS)
    source = base / "long.txt"
    source.write_text(text + "\n")
    out, export = base / "long.html", base / "long.json"
    result = CliRunner().invoke(
        main,
        ["-i", str(source), "-m", str(folder), "--focus", FOCUS, "-o", str(out)]
        + ["--export-json", str(export)],
    )
    assert result.exit_code == 0, result.output
    model = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager").eval()
    enc = tok(text, return_tensors="pt", return_offsets_mapping=True)
    offsets = [tuple(o) for o in enc.pop("offset_mapping")[0].tolist()]
    with torch.inference_mode():
        own = torch.stack(model(**enc, output_attentions=True).attentions, dim=1)[0].numpy()
    focus, _ = analysis.find_word(text, offsets, FOCUS)
    return {
        "html": out.read_text(encoding="utf-8"),
        "path": out,
        "export": json.loads(export.read_text(encoding="utf-8")),
        "own": own,  # float32[layers, heads, n, n], the model's own attention
        "rows": [*focus, own.shape[-1] - 1],
        "stderr": result.stderr,
        "folder": folder,
        "source": source,
    }


class _Page(HTMLParser):
    """Sections, views, plots and the JSON data blocks of a report."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[dict[str, str | None]] = []
        self.views: list[str | None] = []
        self.plots: list[str | None] = []
        self.data: dict[str, Any] = {}
        self._block: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a)
        if "data-view" in a:
            self.views.append(a["data-view"])
        if "data-plot" in a or "data-figure" in a:
            self.plots.append(a.get("data-plot") or a.get("data-figure"))
        if tag == "script" and (a.get("id") or "").startswith("rg-data-"):
            self._block, self._text = a["id"], []

    def handle_data(self, data: str) -> None:
        if self._block is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._block is not None:
            self.data[self._block] = json.loads("".join(self._text))
            self._block = None


def _unpack(data: str, scale: int, shape: tuple[int, ...]) -> np.ndarray:
    """The store's packing read back independently: base64, gzip, two byte planes."""
    planes = np.frombuffer(gzip.decompress(base64.b64decode(data)), dtype=np.uint8)
    half = planes.size // 2
    values = planes[:half].astype(np.uint32) | (planes[half:].astype(np.uint32) << 8)
    return (values / scale).reshape(shape)


def test_over_the_budget_the_cli_writes_the_long_view(long_run: dict[str, Any]) -> None:
    page = _Page()
    page.feed(long_run["html"])
    own = long_run["own"]
    layers, heads, n, _ = own.shape
    assert n >= TOKENS and layers * heads * n * n > memory.PAGE_BUDGET_VALUES
    assert "over the page budget" in long_run["stderr"]
    assert [s.get("class") for s in page.sections if s.get("id") == "s1"] == ["rg-sentence rg-long"]
    assert "long" in page.views and "head" not in page.views
    assert {"long-overview", "long-row", "first_share", "entropy"} <= set(page.plots)
    record = page.data["rg-data-s1"]
    assert record["long"] is True
    (amap,) = record["maps"]
    assert amap["id"] == "self" and amap["causal"] and (amap["n_query"], amap["n_key"]) == (n, n)
    # The overview: 128 blocks a side, equal to an independent pool of the model's maps.
    blocks = [tuple(b) for b in amap["query_blocks"]]
    assert len(blocks) == memory.OVERVIEW_BLOCKS
    overview = _unpack(amap["overview"], amap["scale"], (layers, heads, len(blocks), len(blocks)))
    reference = _block_pool_reference(own, blocks, blocks)
    np.testing.assert_allclose(overview, reference, atol=1.5 / LONG_SCALE + 1e-6)
    np.testing.assert_allclose(overview.sum(-1), 1.0, atol=1e-9)
    # Exact rows: the focus word's pieces and the last position, at token resolution.
    assert [r["position"] for r in amap["rows"]] == long_run["rows"]
    for r in amap["rows"]:
        row = _unpack(r["data"], r["scale"], (layers, heads, n))
        np.testing.assert_allclose(row, own[:, :, r["position"], :], atol=1.5 / LONG_SCALE)
        assert r["token"] == record["seqs"][0]["tokens"][r["position"]]
    np.testing.assert_allclose(amap["first_share"], own[..., 0].mean(-1), atol=1e-4)
    assert len(record["seqs"][0]["tokens"]) == n


def test_the_long_export_rows_equal_the_models_attention(long_run: dict[str, Any]) -> None:
    own = long_run["own"]
    (item,) = long_run["export"]["items"]
    assert "attention" not in item and item["attention_map"] == "self"
    assert [r["position"] for r in item["rows"]] == long_run["rows"]
    for r in item["rows"]:
        np.testing.assert_allclose(r["attention"], own[:, :, r["position"], :], atol=2e-6)
    blocks = [tuple(b) for b in item["overview"]["query_blocks"]]
    np.testing.assert_allclose(
        item["overview"]["attention"], _block_pool_reference(own, blocks, blocks), atol=2e-6
    )
    assert long_run["export"]["model"]["name"] == "llama"  # a folder by its name only


def test_the_long_export_rerenders_the_same_page(long_run: dict[str, Any], tmp_path: Path) -> None:
    """Over the real page budget: `--from-export` writes the run's page byte for byte."""
    export = tmp_path / "long.json"
    export.write_text(json.dumps(long_run["export"]), encoding="utf-8")
    out = tmp_path / "again.html"
    result = CliRunner().invoke(main, ["-q", "--from-export", str(export), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == long_run["html"]


def _weights_never_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """The plan refuses from the tokenised input: loading the weights would be a bug."""
    from reportgen import models as loading

    def refuse(*_: Any) -> None:
        raise AssertionError("the weights were loaded")

    monkeypatch.setattr(loading, "load_weights", refuse)


def test_submission_is_refused_in_one_line_for_a_long_input(
    long_run: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _weights_never_load(monkeypatch)
    out, sub = tmp_path / "r.html", tmp_path / "sub"
    args = ["-i", str(long_run["source"]), "-m", str(long_run["folder"]), "-o", str(out)]
    result = CliRunner().invoke(main, [*args, "--submission", str(sub), "-q"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "a long-input page does not keep" in lines[0]
    assert "--max-tokens" in lines[0] and not out.exists() and not sub.exists()


@pytest.mark.browser
def test_the_long_page_opens_offline_and_draws_the_overview(
    browser: Any, long_run: dict[str, Any]
) -> None:
    page, log = open_report(browser, long_run["path"])
    try:
        assert log.errors == [] and outside_requests(log, long_run["path"]) == []
        sec = page.locator("section.rg-long").first
        overview = sec.locator('[data-plot="long-overview"]')
        z = overview.evaluate("el => el.data[0].z")
        assert len(z) == len(z[0]) == memory.OVERVIEW_BLOCKS
        assert z[0][1] is None and z[-1][0] is not None  # causal: no block after the query
        ticks = overview.locator(".ytick text").all_text_contents()
        assert ticks[0].startswith("0–")  # block labels are token ranges
        assert sec.locator('[data-plot="long-row"] .main-svg').count() >= 1
        assert sec.locator('[data-figure="first_share"] .main-svg').count() >= 1
        # The page opens with the sink columns left out of the colour scale (the one
        # page-wide control); the button beside the scale brings them back.
        assert page.locator("#rg-leave-out-sinks").is_checked()
        view = sec.locator('[data-view="long"]')
        left_out = overview.evaluate("el => el.data[0].zmax")
        note = view.locator("[data-scale-note]").text_content() or ""
        toggle = view.locator("[data-sink-toggle]")
        if toggle.is_visible():
            assert "leaves out the sink column" in note
            toggle.click()
            page.wait_for_timeout(300)
            assert not page.locator("#rg-leave-out-sinks").is_checked()
            assert "included" in (view.locator("[data-scale-note]").text_content() or "")
            assert overview.evaluate("el => el.data[0].zmax") >= left_out
        else:
            assert "no column of this page is a sink" in note
        # A close-up labels every token of one block.
        sec.locator('[data-control="stretch"]').select_option("2")
        page.wait_for_timeout(300)
        labels = sec.locator('[data-plot="long-row"] .xtick text').all_text_contents()
        assert 5 <= len(labels) <= 40
        # Clicking a block of the overview opens the close-up of its key tokens.
        overview.evaluate("el => el.emit('plotly_click', {points: [{x: 6, y: 9}]})")
        page.wait_for_timeout(300)
        assert sec.locator('[data-control="stretch"]').input_value() == "7"
        views = page.locator("[data-view]").evaluate_all("els => els.map(e => e.dataset.view)")
        assert set(views) == {"long", "grid"}
        assert log.errors == []
    finally:
        page.context.close()


@pytest.mark.browser
def test_short_causal_reports_can_leave_position_0_out_of_the_colour_range(
    browser: Any, long_run: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "short.html"
    text = "The animal didn't cross the street because it was too tired."
    result = CliRunner().invoke(main, [text, "-m", str(long_run["folder"]), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    page, log = open_report(browser, out)
    try:
        plot = page.locator('#s1 [data-plot="head"]')
        z = plot.evaluate("el => el.data[0].z")
        assert plot.evaluate("el => el.data[0].zmax") == 1
        page.locator("#rg-leave-out-sinks").check()
        page.wait_for_selector("#s1[data-rg-rendered='1']", state="attached")
        rest = max(v for row in z for v in row[1:] if v is not None)
        assert plot.evaluate("el => el.data[0].zmax") == pytest.approx(rest, abs=1e-6)
        assert "without position 0" in (plot.locator(".gtitle").text_content() or "")
        assert log.errors == []
    finally:
        page.context.close()


def test_an_encoder_on_the_long_page(
    tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The long path for any model (forced here, as if over the budget): one long view per
    sentence and the long export; minimal pairs are refused before the weights load."""
    from reportgen.errors import InputError
    from reportgen.pipeline import build_report

    monkeypatch.setattr(memory, "check_input", lambda *_: True)
    texts = ["The trophy didn't fit the suitcase because it was too big.", "It was small."]
    with monkeypatch.context() as m:
        _weights_never_load(m)
        with pytest.raises(InputError, match="minimal pairs are compared on full maps.*--max"):
            build_report(texts, str(tiny_bert), compare=True, focus="it")
    report = build_report(texts, str(tiny_bert), focus="it")
    doc = report.document
    assert doc.sentences == () and [s.anchor for s in doc.long_sentences] == ["s1", "s2"]
    page = _Page()
    page.feed(report.html)
    assert [s.get("id") for s in page.sections if "rg-long" in (s.get("class") or "")] == [
        "s1",
        "s2",
    ]
    first = page.data["rg-data-s1"]["maps"][0]
    assert not first["causal"] and first["id"] == "self"
    # Exact rows: the focus word "it" (its pieces), then the last position ([SEP]).
    tokens = page.data["rg-data-s1"]["seqs"][0]["tokens"]
    assert [tokens[r["position"]] for r in first["rows"]] == ["it", "[SEP]"]
    report.export_json(tmp_path / "x.json")
    items = json.loads((tmp_path / "x.json").read_text())["items"]
    assert [len(i["rows"]) for i in items] == [2, 2]


@pytest.mark.browser
def test_an_encoder_decoder_long_page_switches_between_its_three_maps(
    browser: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model: Callable[..., Path]
) -> None:
    from reportgen.pipeline import build_report

    monkeypatch.setattr(memory, "check_input", lambda *_: True)
    folder = tiny_model("bart")
    path = tmp_path / "bart.html"
    report = build_report([models.CORPUS[0]], str(folder))
    report.save(path)
    page, log = open_report(browser, path)
    try:
        sec = page.locator("section.rg-long").first
        titles = []
        for value in ("1", "2", "0"):
            sec.locator('[data-view="long"] [data-control="map"]').select_option(value)
            page.wait_for_timeout(300)
            titles.append(sec.locator('[data-plot="long-overview"] .gtitle').text_content() or "")
        assert [t.split(" · ")[-1] for t in titles] == [
            "Decoder self-attention",
            "Cross-attention",
            "Encoder self-attention",
        ]
        # Cross-attention pools decoder queries against encoder keys: its own blocks.
        doc = report.document.long_sentences[0].payload.maps
        assert f"{len(doc[2].query_blocks)} × {len(doc[2].key_blocks)} blocks" in titles[1]
        assert log.errors == []
    finally:
        page.context.close()
