"""Printing the demo report and its one-page submission sheet (Chromium, A4)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from reportgen import analysis
from reportgen.cli import main
from reportgen.figures import heatmap_size

from .conftest import REPO, open_report

pytestmark = pytest.mark.browser

DEMO_INPUT = REPO / "sample_inputs" / "winograd.jsonl"
# The demo report printed to A4 (Chromium, 1400 px window): see README, "How to hand in".
# 43 pages since each of its sentences has the grid of all heads (on a page of its own).
DEMO_PAGES_AT_MOST = 45
A4_WIDTH_PX = 700


def pdf_pages(pdf: bytes) -> int:
    """Page objects in a PDF ("/Type /Page", not the "/Type /Pages" tree nodes)."""
    return len(re.findall(rb"/Type\s*/Page(?![A-Za-z])", pdf))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("print")
    out, data = folder / "report.html", folder / "data.json"
    args = ["-i", str(DEMO_INPUT), "-o", str(out), "--export-json", str(data)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.stderr
    return out, json.loads(data.read_text())


@pytest.fixture(scope="module")
def page(browser: Any, demo: tuple[Path, dict[str, Any]]) -> Any:
    page, log = open_report(browser, demo[0], viewport={"width": 1400, "height": 900})
    yield page
    assert log.errors == []
    page.context.close()


BREAKS = """() => {
  const out = [];
  const sel = "figure, table, .rg-plot, .rg-headview, h1, h2, h3, h4";
  for (const el of document.querySelectorAll(sel)) {
    if (el.closest(".rg-sheet-head")) continue;  // shown only on the submission sheet
    const s = getComputedStyle(el);
    out.push({tag: el.tagName.toLowerCase(), inside: s.breakInside, after: s.breakAfter,
              before: s.breakBefore, display: s.display});
  }
  return out;
}"""


def test_print_styles_keep_figures_whole_and_headings_with_content(page: Any) -> None:
    page.emulate_media(media="print")
    try:
        styles = page.evaluate(BREAKS)
        hidden = page.evaluate(
            """() => ['#rg-search', '.rg-nav', '.rg-controls', '#rg-print',
                      '#rg-print-submission'].map(
                (s) => document.querySelector(s).getClientRects().length)"""
        )
    finally:
        page.emulate_media(media="screen")
    assert len(styles) > 100
    for s in styles:
        if s["tag"] in ("h1", "h2", "h3", "h4"):
            assert s["after"] == "avoid", s
        else:
            assert s["inside"] == "avoid", s
        # No forced break anywhere: nothing leaves a page mostly empty on purpose.
        assert s["before"] not in ("page", "always", "left", "right"), s
        assert s["after"] not in ("page", "always", "left", "right"), s
    assert hidden == [0] * 5  # laid out nowhere: navigation and controls are hidden


def test_demo_report_prints_to_a4_without_overflowing_plots(page: Any) -> None:
    page.emulate_media(media="print")
    try:
        page.evaluate("() => window.reportgen.fitForPrint()")
        widths = page.evaluate(
            "() => Array.from(document.querySelectorAll('.js-plotly-plot'),"
            " (d) => d._fullLayout.width)"
        )
        pdf = page.pdf(format="A4", print_background=True)
    finally:
        page.evaluate("() => window.reportgen.unfitForPrint()")
        page.emulate_media(media="screen")
    assert max(widths) <= A4_WIDTH_PX
    pages = pdf_pages(pdf)
    assert 8 <= pages <= DEMO_PAGES_AT_MOST, pages


def test_submission_sheet_prints_on_exactly_one_page(
    page: Any, demo: tuple[Path, dict[str, Any]]
) -> None:
    data = demo[1]
    page.evaluate("() => window.reportgen.prepareSubmissionPrint('p1')")
    page.emulate_media(media="print")
    try:
        visible = page.evaluate(
            """() => Array.from(document.querySelectorAll('body *'))
                .filter((el) => el.getClientRects().length > 0 &&
                                !el.closest('.rg-submission') && el.closest('main, header'))
                .map((el) => el.tagName)"""
        )
        sheet = page.locator("#p1 .rg-submission").inner_text()
        pdf = page.pdf(format="A4", print_background=True)
    finally:
        page.emulate_media(media="screen")
        page.evaluate("() => window.reportgen.endSubmissionPrint()")
    assert pdf_pages(pdf) == 1
    # Only the submission block (and the elements that hold it) is laid out.
    assert set(visible) <= {"MAIN", "SECTION"}, visible
    a, b = data["items"][0], data["items"][1]
    assert a["text"] in sheet and b["text"] in sheet
    assert data["model"]["name"] in sheet
    layer, head = (data["pairs"][0]["best_head"][k] for k in ("layer_index", "head_index"))
    assert f"In Layer {layer + 1}, Head {head + 1}, does 'it' attend to 'animal' in A?" in sheet
    assert "does 'it' attend to 'street' in B?" in sheet
    assert "In how many heads overall?" in sheet and "of 72 heads get both right" in sheet
    assert page.locator("#p1 .rg-submission .main-svg").count() >= 2
    assert not page.evaluate("() => document.body.classList.contains('rg-print-submission')")


def test_print_submission_button_prints_the_chosen_pair(page: Any) -> None:
    page.evaluate(
        "() => { window.print = () => { window.__sheet = document.querySelector("
        "'.rg-print-target').id; }; }"
    )
    page.select_option("#rg-submission-pair", "p2")
    page.click("#rg-print-submission")
    page.wait_for_selector("#rg-print-status:empty", state="attached")
    # The report's CSP forbids wait_for_function's eval: poll with evaluate instead.
    for _ in range(100):
        if page.evaluate("() => window.__sheet"):
            break
        page.wait_for_timeout(100)
    assert page.evaluate("() => window.__sheet") == "p2"
    page.evaluate("() => window.dispatchEvent(new Event('afterprint'))")
    assert page.locator(".rg-print-target").count() == 0


def test_submission_colour_range_leaves_special_columns_out(
    page: Any, demo: tuple[Path, dict[str, Any]]
) -> None:
    data = demo[1]
    layer, head = (data["pairs"][0]["best_head"][k] for k in ("layer_index", "head_index"))
    item = data["items"][0]
    att = np.array(item["attention"])[layer, head]
    special = [t in ("[CLS]", "[SEP]") for t in item["tokens"]]
    _, top = analysis.submission_range(att, special)
    zmax = page.locator('#p1 [data-plot="submit-a"]').evaluate("el => el.data[0].zmax")
    assert abs(zmax - top) <= 0.002  # the page holds weights rounded to 1/500
    assert top < 0.5  # far below the [CLS] column's weights, which a 0-1 scale would show


def test_heatmaps_are_sized_from_their_tokens(page: Any) -> None:
    plot = page.locator('#s1 [data-plot="head"]')
    n = len(plot.evaluate("el => el.data[0].z"))
    room = plot.evaluate("el => el.clientWidth")
    width, height, font = heatmap_size(n, room)
    layout = plot.evaluate("el => [el.layout.width, el.layout.height, el.layout.xaxis.tickfont]")
    assert layout[:2] == [width, height] and layout[2]["size"] == font
    # The colour bar sits right beside the map, not across the page.
    gap = plot.evaluate(
        """el => el.querySelector('.colorbar').getBoundingClientRect().left -
                 el.querySelector('.nsewdrag').getBoundingClientRect().right"""
    )
    assert 0 <= gap <= 60
    # Side by side in the pair view: A's and B's maps share a row.
    a = page.locator('#p1 [data-plot="pair-a"]').bounding_box()
    b = page.locator('#p1 [data-plot="pair-b"]').bounding_box()
    assert abs(a["y"] - b["y"]) < 1 and b["x"] > a["x"] + a["width"] - 1


@pytest.mark.parametrize("words", [14, 98])
def test_every_token_labelled_without_overlap(
    browser: Any, tiny_bert: Path, tmp_path: Path, words: int
) -> None:
    """16 and 100 tokens ([CLS] + words + [SEP]): one readable label per token."""
    text = " ".join(["the", "animal", "crossed", "a", "street"] * 20)
    text = " ".join(text.split()[:words])
    out = tmp_path / "long.html"
    result = CliRunner().invoke(main, [text, "-m", str(tiny_bert), "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    page, log = open_report(browser, out, viewport={"width": 1400, "height": 900})
    try:
        plot = page.locator('#s1 [data-plot="head"]')
        labels = plot.evaluate("el => el.layout.yaxis.ticktext")
        font = plot.evaluate("el => el.layout.yaxis.tickfont.size")
        boxes = plot.locator(".ytick text").evaluate_all(
            "els => els.map((e) => { const r = e.getBoundingClientRect();"
            " return [r.top, r.bottom]; })"
        )
    finally:
        page.context.close()
    assert len(labels) == words + 2 and len(boxes) == words + 2
    assert font >= 8
    boxes.sort()
    assert all(nxt[0] >= prev[1] - 0.5 for prev, nxt in zip(boxes, boxes[1:], strict=False))
    assert log.errors == []
