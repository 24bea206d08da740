"""The grid of every head at a glance (grid.js, bertviz's model view) in Chromium.

The demo report (the embedded 6 x 12 BERT over the Winograd pairs) and a long page of a
30-layer, 9-head tiny Llama (its pooled overview): the grid draws every head, a click on
a cell opens that head, the token strip switches to "attention from the chosen tokens",
and printed, the canvas fits on one A4 page.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from reportgen import memory
from reportgen.cli import main

from .conftest import REPO, open_report, outside_requests
from .test_streaming import _long_text

pytestmark = pytest.mark.browser

DEMO_INPUT = REPO / "sample_inputs" / "winograd.jsonl"
# A4 less @page's 12 mm margins (report.css), at 96 CSS px per inch: 186 x 273 mm, about
# 703 x 1032 px; print.js and tests/test_print.py take the width as 700.
PAGE_HEIGHT_PX = (297 - 2 * 12) / 25.4 * 96
A4_WIDTH_PX = 700
LONG_LAYERS, LONG_HEADS = 30, 9
LONG_TOKENS = 300  # pooled into 128 blocks of 2-3 tokens

# Distinct colours among every 5th pixel, and a digest of the whole image (FNV-1a).
PIXELS = """(c) => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const colours = new Set();
  let hash = 2166136261;
  for (let p = 0; p < d.length; p += 4) {
    if (p % 20 === 0) colours.add((d[p] << 16) | (d[p + 1] << 8) | d[p + 2]);
    hash = Math.imul(hash ^ (d[p] | (d[p + 1] << 8) | (d[p + 2] << 16)), 16777619) >>> 0;
  }
  return {colours: colours.size, hash: hash, width: c.width, height: c.height};
}"""

# The colour at the centre of every cell, and of the gap right of it ([layer][head]).
CELLS = """(c) => {
  const root = c.closest('[data-view="grid"]');
  const s = (c.width / c.getBoundingClientRect().width) || 2;
  const label = +root.dataset.gridLabel;
  const step = +root.dataset.gridStep;
  const cell = +root.dataset.gridCell;
  const ctx = c.getContext('2d');
  const px = (x, y) =>
    Array.from(ctx.getImageData(Math.floor(x * s), Math.floor(y * s), 1, 1).data);
  const out = [];
  for (let l = 0; l < +root.dataset.gridLayers; l++) {
    const row = [];
    for (let h = 0; h < +root.dataset.gridHeads; h++) {
      const x0 = label + h * step, y0 = label + l * step;
      row.push({centre: px(x0 + cell / 2, y0 + cell / 2), gap: px(x0 + cell + 0.5, y0 + cell / 2)});
    }
    out.push(row);
  }
  return out;
}"""


def grid_state(view: Any) -> dict[str, str]:
    state: dict[str, str] = view.evaluate("el => Object.assign({}, el.dataset)")
    return state


def pixels(view: Any) -> dict[str, int]:
    out: dict[str, int] = view.locator("canvas[data-grid-canvas]").evaluate(PIXELS)
    return out


def drawn(page: Any, anchor: str) -> Any:
    """Scroll a section into view, wait until its views are drawn; its grid view."""
    page.locator(f"#{anchor}").scroll_into_view_if_needed()
    page.wait_for_selector(f"#{anchor}[data-rg-rendered='1']", state="attached", timeout=120_000)
    return page.locator(f'#{anchor} [data-view="grid"]')


def cell_position(view: Any, layer: int, head: int) -> dict[str, float]:
    """The centre of cell (layer, head), 0-based, relative to the canvas's box, from what
    the drawing left on the view (gridLabel, gridStep, gridCell: CSS px before scaling)."""
    s = grid_state(view)
    label, step, cell = (float(s[k]) for k in ("gridLabel", "gridStep", "gridCell"))
    box = view.locator("canvas[data-grid-canvas]").bounding_box()
    k = box["width"] / (label + int(s["gridHeads"]) * step)
    return {"x": (label + head * step + cell / 2) * k, "y": (label + layer * step + cell / 2) * k}


def wait_grid(page: Any, anchor: str, mode: str, chosen: str) -> None:
    page.wait_for_selector(
        f'#{anchor} [data-view="grid"][data-grid-mode="{mode}"][data-grid-chosen="{chosen}"]'
        '[data-rg-rendered="1"]',
        state="attached",
        timeout=30_000,
    )


def print_box(page: Any, view: Any) -> dict[str, Any]:
    """The canvas's box in print media, at the screen's width and at A4's printable width."""
    canvas = view.locator("canvas[data-grid-canvas]")
    viewport = page.viewport_size
    page.emulate_media(media="print")
    try:
        wide = canvas.bounding_box()
        page.set_viewport_size({"width": A4_WIDTH_PX, "height": viewport["height"]})
        narrow = canvas.bounding_box()
        plot = view.locator(".rg-grid-plot").bounding_box()
        strip = view.locator("[data-grid-tokens]").evaluate("el => el.getClientRects().length")
    finally:
        page.set_viewport_size(viewport)
        page.emulate_media(media="screen")
    return {"wide": wide, "narrow": narrow, "plot": plot, "strip": strip}


# ---------------------------------------------------------------- the demo report


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `make demo` writes (the embedded 6 x 12 BERT), through the real CLI."""
    out = tmp_path_factory.mktemp("grid-demo") / "report.html"
    result = CliRunner().invoke(main, ["-i", str(DEMO_INPUT), "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def demo_page(browser: Any, demo_report: Path) -> Iterator[tuple[Any, Any]]:
    page, log = open_report(browser, demo_report, wait_all=False)
    yield page, log
    page.context.close()


def test_the_grid_draws_every_head_of_the_embedded_bert(
    demo_page: tuple[Any, Any], demo_report: Path
) -> None:
    page, log = demo_page
    # Where the grid is: one per sentence section, none in the pair sections.
    assert (
        page.locator('section.rg-sentence [data-view="grid"]').count()
        == page.locator("section.rg-sentence").count()
    )
    assert page.locator('section.rg-pair [data-view="grid"]').count() == 0
    view = drawn(page, "s1")
    s = grid_state(view)
    assert (s["gridLayers"], s["gridHeads"], s["gridMode"], s["gridChosen"]) == (
        "6",
        "12",
        "maps",
        "",
    )
    label, step, cell = int(s["gridLabel"]), int(s["gridStep"]), int(s["gridCell"])
    assert 24 <= cell <= 96 and step > cell
    canvas = view.locator("canvas[data-grid-canvas]")
    box = canvas.bounding_box()
    assert box["width"] == pytest.approx(label + 12 * step, abs=1)
    assert box["height"] == pytest.approx(label + 6 * step, abs=1)
    px = pixels(view)
    assert (px["width"], px["height"]) == (2 * (label + 12 * step), 2 * (label + 6 * step))
    assert px["colours"] >= 20, px  # 72 maps, each on its own colour scale
    cells = canvas.evaluate(CELLS)
    assert len(cells) == 6 and all(len(row) == 12 for row in cells)
    for row in cells:
        for c in row:
            assert c["gap"] == [255, 255, 255, 255], c  # white between cells
            assert c["centre"][3] == 255
    # The cells differ: not one colour painted 72 times.
    assert len({tuple(c["centre"]) for row in cells for c in row}) >= 10
    # One button per token of the sentence, and a caption saying what is shown.
    tokens = view.locator("[data-grid-tokens] button").all_text_contents()
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]" and "it" in tokens
    assert "own scale" in (view.locator("[data-grid-selection]").text_content() or "")
    assert log.errors == [] and outside_requests(log, demo_report) == []


def click_cell(view: Any, layer: int, head: int) -> None:
    """Click the centre of a cell without moving the pointer over the canvas first (a real
    click's mousemove would run the hover readout, tested on its own below)."""
    canvas = view.locator("canvas[data-grid-canvas]")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    at = cell_position(view, layer, head)
    canvas.dispatch_event(
        "click", {"clientX": box["x"] + at["x"], "clientY": box["y"] + at["y"], "bubbles": True}
    )


def test_a_click_on_a_cell_opens_that_head(demo_page: tuple[Any, Any]) -> None:
    page, log = demo_page
    seen = len(log.errors)
    view = drawn(page, "s1")
    click_cell(view, 2, 4)  # Layer 3, Head 5
    one = page.locator('#s1 [data-view="head"]')
    assert one.locator('[data-control="layer"]').input_value() == "2"
    assert one.locator('[data-control="head"]').input_value() == "4"
    page.wait_for_selector('#s1 [data-plot="head"] .gtitle >> text="Layer 3, Head 5"')
    # The head view was told too: bertviz shows that layer.
    page.wait_for_selector('#s1 [data-view="headview"][data-rg-rendered="1"]', state="attached")
    assert page.locator("#rg-hv-s1 select#layer").input_value() == "2"
    # Another cell: the last head of the last layer; and the label band opens nothing.
    click_cell(view, 5, 11)
    assert one.locator('[data-control="layer"]').input_value() == "5"
    assert one.locator('[data-control="head"]').input_value() == "11"
    page.wait_for_selector('#s1 [data-plot="head"] .gtitle >> text="Layer 6, Head 12"')
    click_cell(view, -1, 3)  # the head numbers above the first row
    assert one.locator('[data-control="head"]').input_value() == "11"
    assert log.errors[seen:] == []


def test_hovering_a_cell_names_the_head_and_its_entropy(demo_page: tuple[Any, Any]) -> None:
    page, log = demo_page
    seen = len(log.errors)
    view = drawn(page, "s1")
    canvas = view.locator("canvas[data-grid-canvas]")
    try:
        canvas.hover(position=cell_position(view, 2, 4))
        readout = view.locator("[data-grid-hover]").text_content() or ""
        errors = log.errors[seen:]
    finally:
        page.mouse.move(0, 0)  # off the canvas: no later mousemove lands on it
    assert errors == []
    assert readout.startswith("Layer 3, Head 5 [index (2, 4)]"), readout
    assert " nats (" in readout and "of ln n" in readout and "click to open" in readout


def test_tokens_switch_the_grid_to_attention_from_them(demo_page: tuple[Any, Any]) -> None:
    page, log = demo_page
    seen = len(log.errors)
    view = drawn(page, "s2")
    maps = pixels(view)
    tokens = view.locator("[data-grid-tokens] button").all_text_contents()
    it, animal = tokens.index("it"), tokens.index("animal")
    button = view.locator("[data-grid-tokens] button")

    button.nth(it).click()
    wait_grid(page, "s2", "from", str(it))
    one = pixels(view)
    assert one["hash"] != maps["hash"] and one["colours"] >= 5
    assert button.nth(it).get_attribute("aria-pressed") == "true"
    caption = view.locator("[data-grid-selection]").text_content() or ""
    assert "attention from ‘it’" in caption, caption

    button.nth(animal).click(modifiers=["Shift"])
    wait_grid(page, "s2", "from", ",".join(map(str, sorted([it, animal]))))
    two = pixels(view)
    assert two["hash"] not in (one["hash"], maps["hash"])
    pressed = view.locator('[data-grid-tokens] button[aria-pressed="true"]').all_text_contents()
    assert sorted(pressed) == ["animal", "it"]
    caption = view.locator("[data-grid-selection]").text_content() or ""
    assert "‘animal’ + ‘it’" in caption, caption

    # A plain click on a chosen token of two keeps it alone; a second one clears the set.
    button.nth(it).click()
    wait_grid(page, "s2", "from", str(it))
    assert pixels(view)["hash"] == one["hash"]
    button.nth(it).click()
    wait_grid(page, "s2", "maps", "")
    assert pixels(view)["hash"] == maps["hash"]
    assert view.locator('[data-grid-tokens] button[aria-pressed="true"]').count() == 0
    assert log.errors[seen:] == []


def test_the_grid_prints_on_one_page(demo_page: tuple[Any, Any]) -> None:
    page, log = demo_page
    seen = len(log.errors)
    view = drawn(page, "s3")
    screen = view.locator("canvas[data-grid-canvas]").bounding_box()
    boxes = print_box(page, view)
    for key in ("wide", "narrow"):
        box = boxes[key]
        assert 0 < box["height"] <= PAGE_HEIGHT_PX, boxes
        assert box["width"] == pytest.approx(
            box["height"] * screen["width"] / screen["height"], rel=0.02
        )
    assert boxes["wide"]["width"] <= screen["width"] + 0.5  # never wider than on screen
    assert boxes["narrow"]["width"] <= A4_WIDTH_PX, boxes
    assert boxes["narrow"]["width"] <= boxes["plot"]["width"] + 0.5
    assert boxes["strip"] == 0  # the token strip is not printed
    assert log.errors[seen:] == []


# ---------------------------------------------------------------- a long page


def save_deep_llama(folder: Path, source: Path) -> Path:
    """The tiny Llama's tokenizer with a random 30-layer, 9-head (3 key/value heads) Llama
    of 512 positions: a deep, odd-headed model for the grid's layout."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    data = json.loads((source / "config.json").read_text())
    data.update(
        num_hidden_layers=LONG_LAYERS,
        num_attention_heads=LONG_HEADS,
        num_key_value_heads=3,
        hidden_size=36,
        head_dim=4,
        max_position_embeddings=512,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(**data)).save_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(source)
    tok.model_max_length = 512
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def long_report(
    tmp_path_factory: pytest.TempPathFactory, tiny_model: Callable[..., Path]
) -> tuple[Path, int]:
    """The deep Llama over ~300 tokens on the long-input page (forced, as if over the
    budget, as tests/test_long_page.py's encoder test does)."""
    from transformers import AutoTokenizer

    from reportgen.pipeline import build_report

    base = tmp_path_factory.mktemp("grid-long")
    folder = save_deep_llama(base / "llama", tiny_model("llama"))
    text = _long_text(AutoTokenizer.from_pretrained(folder), LONG_TOKENS)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(memory, "check_input", lambda *_: True)
        report = build_report([text], str(folder))
    assert [s.anchor for s in report.document.long_sentences] == ["s1"]
    blocks = len(report.document.long_sentences[0].payload.maps[0].query_blocks)
    path = base / "long.html"
    report.save(path)
    return path, blocks


def test_a_long_page_draws_the_pooled_grid_of_every_head(
    browser: Any, long_report: tuple[Path, int]
) -> None:
    path, blocks = long_report
    page, log = open_report(browser, path, wait_all=False)
    try:
        view = drawn(page, "s1")
        s = grid_state(view)
        assert (s["gridLayers"], s["gridHeads"], s["gridMode"]) == (
            str(LONG_LAYERS),
            str(LONG_HEADS),
            "maps",
        )
        # A deep model gets smaller cells, not a page taller than 2,000 px.
        cell, step, label = int(s["gridCell"]), int(s["gridStep"]), int(s["gridLabel"])
        assert cell >= 24 and label + LONG_LAYERS * step <= 2000
        canvas = view.locator("canvas[data-grid-canvas]")
        box = canvas.bounding_box()
        assert box["height"] == pytest.approx(label + LONG_LAYERS * step, abs=1)
        px = pixels(view)
        assert px["colours"] >= 20, px
        cells = canvas.evaluate(CELLS)
        assert len(cells) == LONG_LAYERS and all(len(row) == LONG_HEADS for row in cells)
        assert all(c["gap"] == [255, 255, 255, 255] for row in cells for c in row)
        # Causal: the top right of every map (a query block before its key) is masked grey.
        corner = canvas.evaluate(
            """(c) => {
              const root = c.closest('[data-view="grid"]');
              const label = +root.dataset.gridLabel, cell = +root.dataset.gridCell;
              return Array.from(c.getContext('2d').getImageData(
                (label + cell - 2) * 2, (label + 1) * 2, 1, 1).data);
            }"""
        )
        assert corner == [217, 217, 217, 255]
        # The strip offers the overview's blocks; the caption says they are pooled.
        assert view.locator("[data-grid-tokens] button").count() == blocks
        assert "(pooled blocks)" in (view.locator("[data-grid-selection]").text_content() or "")

        # A click opens the head in the long view's overview.
        canvas.click(position=cell_position(view, 20, 7))  # Layer 21, Head 8
        long_view = page.locator('#s1 [data-view="long"]')
        assert long_view.locator('[data-control="layer"]').input_value() == "20"
        assert long_view.locator('[data-control="head"]').input_value() == "7"
        page.wait_for_selector(
            '#s1 [data-plot="long-overview"] .gtitle >> text=/Layer 21, Head 8/', timeout=30_000
        )

        # A block chosen: every head's attention from it.
        maps = pixels(view)
        view.locator("[data-grid-tokens] button").nth(blocks - 1).click()
        wait_grid(page, "s1", "from", str(blocks - 1))
        assert pixels(view)["hash"] != maps["hash"]
        assert "one bar per key block" in (
            view.locator("[data-grid-selection]").text_content() or ""
        )
        view.locator("[data-grid-tokens] button").nth(blocks - 1).click()
        wait_grid(page, "s1", "maps", "")

        # Printed: a tall grid is shrunk to one page, its aspect ratio kept.
        screen = canvas.bounding_box()
        boxes = print_box(page, view)
        for key in ("wide", "narrow"):
            b = boxes[key]
            assert 0 < b["height"] <= PAGE_HEIGHT_PX, boxes
            assert b["width"] <= A4_WIDTH_PX, boxes
            assert b["width"] == pytest.approx(
                b["height"] * screen["width"] / screen["height"], rel=0.02
            )
        assert log.errors == [] and outside_requests(log, path) == []
    finally:
        page.context.close()
