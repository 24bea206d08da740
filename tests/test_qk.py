"""The "why this weight" panel (issue 21): the queries and keys a page carries rebuild its
weights on every family, the export's float32 ones within 1e-5, the options that ask for
them, and the panel in Chromium."""

from __future__ import annotations

import base64
import gzip
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from reportgen.cli import REPORT_ONLY, main
from reportgen.errors import InputError
from reportgen.pipeline import build_report
from reportgen.report.document import QK_PAGE_TOKENS

from .conftest import WINOGRAD, open_report

# The most a weight rebuilt from the page's half-precision queries and keys may differ from
# the extraction's on the tiny models (each page states its own, at most this).
HALF_ERROR = 2e-3
FLOAT32_ERROR = 1e-5


def page_data(html: str) -> dict[str, Any]:
    """The page's sentence data blocks, by id (script-safe JSON: only "<" is escaped)."""
    blocks = re.findall(
        r'<script type="application/json" id="(rg-data-s\d+)">(.*?)</script>', html, re.S
    )
    return {k: json.loads(v) for k, v in blocks}


def unpack_half(data: str, shape: tuple[int, ...]) -> np.ndarray:
    """store.py's format, read here without reportgen: two byte planes of float16."""
    planes = np.frombuffer(gzip.decompress(base64.b64decode(data)), dtype=np.uint8)
    half = planes.size // 2
    u = planes[:half].astype(np.uint16) | (planes[half:].astype(np.uint16) << 8)
    return u.view(np.float16).reshape(shape).astype(np.float64)


def rebuild(
    q: np.ndarray, k: np.ndarray, scaling: list[float], bias: np.ndarray | None, causal: bool
) -> np.ndarray:
    """softmax(q k^T * scaling + bias + mask), query head h reading key head h // groups;
    written apart from reportgen.analysis.weights_from_qk, on purpose."""
    layers, heads, n, _ = q.shape
    out = np.empty((layers, heads, n, n))
    groups = heads // k.shape[1]
    for layer in range(layers):
        for h in range(heads):
            s = q[layer, h] @ k[layer, h // groups].T * scaling[layer]
            if bias is not None:
                s = s + bias[layer, h]
            if causal:
                s[np.triu_indices(n, 1)] = -np.inf
            e = np.exp(s - s.max(axis=1, keepdims=True))
            out[layer, h] = e / e.sum(axis=1, keepdims=True)
    return out


FAMILIES = ("bert", "gpt2", "llama", "bart", "t5")


@pytest.fixture(scope="module")
def family_reports(
    tiny_model: Callable[..., Path], tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[Any, dict[str, Any]]]:
    """Each family's report of the lab's pair (queries and keys by default: short), and
    its --qk export."""
    out = {}
    folder = tmp_path_factory.mktemp("qk-exports")
    for family in FAMILIES:
        model = tiny_bert if family == "bert" else tiny_model(family)
        report = build_report(list(WINOGRAD), model=str(model))
        plain = build_report(list(WINOGRAD), model=str(model), qk=True)
        path = folder / f"{family}.json"
        plain.export_json(path)
        out[family] = (report, json.loads(path.read_text()))
    return out


@pytest.mark.parametrize("family", FAMILIES)
def test_the_pages_queries_and_keys_rebuild_its_weights(
    family: str, family_reports: dict[str, tuple[Any, dict[str, Any]]]
) -> None:
    report, _ = family_reports[family]
    data = page_data(report.html)
    assert len(data) == len(WINOGRAD)
    for i, result in enumerate(report.extraction.results):
        amap = result.maps[0]
        rec = data[f"rg-data-s{i + 1}"]["qk"]
        L, H, KV, d, n = rec["layers"], rec["heads"], rec["kv_heads"], rec["head_dim"], rec["n"]
        assert (L, H, n) == amap.attention.shape[:3]
        q = unpack_half(rec["q"], (L, H, n, d))
        k = unpack_half(rec["k"], (L, KV, n, d))
        bias = None if rec["bias"] is None else unpack_half(rec["bias"], (L, H, n, n))
        weights = rebuild(q, k, rec["scaling"], bias, amap.causal)
        err = np.abs(weights - amap.attention).max()
        assert err <= rec["error"] <= HALF_ERROR  # the error the page states is a bound
        if family == "llama":  # grouped-query attention and rotary positions
            assert KV < H and rec["rotary"]
        else:
            assert KV == H and not rec["rotary"]
        if family == "t5":  # the position bias is a term of the score: leave it out, and
            assert bias is not None  # the weights are not rebuilt
            no_bias = rebuild(q, k, rec["scaling"], None, amap.causal)
            assert np.abs(no_bias - amap.attention).max() > 10 * HALF_ERROR
        else:
            assert bias is None


@pytest.mark.parametrize("family", FAMILIES)
def test_the_exports_float32_queries_and_keys_rebuild_its_weights(
    family: str, family_reports: dict[str, tuple[Any, dict[str, Any]]]
) -> None:
    report, export = family_reports[family]
    for item, result in zip(export["items"], report.extraction.results, strict=True):
        qk = item["qk"]
        q, k = np.asarray(qk["q"], np.float64), np.asarray(qk["k"], np.float64)
        L, H, KV, d = qk["layers"], qk["heads"], qk["kv_heads"], qk["head_dim"]
        n = len(item["tokens"])
        assert q.shape == (L, H, n, d) and k.shape == (L, KV, n, d)
        bias = qk.get("position_bias")
        weights = rebuild(
            q, k, qk["scaling"], None if bias is None else np.asarray(bias), result.maps[0].causal
        )
        np.testing.assert_allclose(weights, result.maps[0].attention, rtol=0, atol=FLOAT32_ERROR)
        # The README's size: 4 bytes a value.
        assert 4 * L * (H + KV) * n * d == 4 * (q.size + k.size)


def test_queries_and_keys_only_where_asked_or_short(tiny_bert: Path) -> None:
    """By default only for inputs of at most QK_PAGE_TOKENS tokens; --qk on any page of
    full maps, and in the export; --no-qk never."""
    long_text = " ".join(["word"] * (QK_PAGE_TOKENS + 5))
    default = build_report([long_text], model=str(tiny_bert))
    assert page_data(default.html)["rg-data-s1"]["qk"] is None
    assert "data-qk-none" in default.html and "--qk" in default.html
    forced = build_report([long_text], model=str(tiny_bert), qk=True)
    assert page_data(forced.html)["rg-data-s1"]["qk"] is not None
    off = build_report([WINOGRAD[0]], model=str(tiny_bert), qk=False)
    assert page_data(off.html)["rg-data-s1"]["qk"] is None
    short = build_report([WINOGRAD[0]], model=str(tiny_bert))
    assert 'data-view="qk"' in short.html
    with pytest.raises(InputError, match="qk must be"):
        build_report([WINOGRAD[0]], model=str(tiny_bert), qk="yes")


def test_the_export_has_no_queries_and_keys_without_qk(tiny_bert: Path, tmp_path: Path) -> None:
    report = build_report([WINOGRAD[0]], model=str(tiny_bert))  # on the page by default
    assert page_data(report.html)["rg-data-s1"]["qk"] is not None
    report.export_json(tmp_path / "x.json")
    assert "qk" not in json.loads((tmp_path / "x.json").read_text())["items"][0]


def test_the_cli_flag_and_its_refusals(tiny_bert: Path, tmp_path: Path) -> None:
    assert REPORT_ONLY["--qk"] == "qk"
    runner = CliRunner()
    out = runner.invoke(
        main,
        ["--atlas", "-i", str(tmp_path / "c.jsonl"), "--qk", "-m", str(tiny_bert)],
    )
    assert out.exit_code == 2 and "--qk" in out.output and "--atlas" in out.output
    export = tmp_path / "e.json"
    done = runner.invoke(
        main,
        [WINOGRAD[0], "-m", str(tiny_bert), "-o", str(tmp_path / "r.html"), "--qk",
         "--export-json", str(export), "-q"],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "qk" in json.loads(export.read_text())["items"][0]


def test_a_model_on_eager_attention_says_why_in_one_line(
    tmp_path: Path, tiny_model: Callable[..., Path]
) -> None:
    """Gemma 2 soft-caps its scores: it runs eager attention, whose queries and keys the
    capture seam never sees, so its page has no panel and says so."""
    folder = tiny_model("gemma2")
    report = build_report([WINOGRAD[0]], model=str(folder))
    assert page_data(report.html)["rg-data-s1"]["qk"] is None
    lines = re.findall(r"<p [^>]*data-qk-none>(.*?)</p>", report.html, re.S)
    assert len(lines) == 1 and "soft-caps" in lines[0] and "eager" in lines[0]


# ---------------------------------------------------------------------------------------
# In Chromium

CELL = """([sel, i, j]) => {
  const gd = document.querySelector(sel);
  const r = gd.getBoundingClientRect();
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  return [r.left + xa._offset + xa.l2p(j), r.top + ya._offset + ya.l2p(i)];
}"""


def _click_cell(page: Any, anchor: str, i: int, j: int, shift: bool = False) -> None:
    sel = f'#{anchor} [data-plot="head"]'
    page.locator(sel).scroll_into_view_if_needed()
    x, y = page.evaluate(CELL, [sel, i, j])
    panel = page.locator(f'#{anchor} [data-view="qk"]')
    panel.evaluate("el => delete el.dataset.rgRendered")
    if shift:
        page.keyboard.down("Shift")
    page.mouse.click(x, y)
    if shift:
        page.keyboard.up("Shift")
    page.wait_for_selector(f'#{anchor} [data-view="qk"][data-rg-rendered="1"]', state="attached")


def cells_header(panel: Any) -> list[str]:
    headers: list[str] = panel.locator("[data-qk-table] tr").first.locator("th").all_text_contents()
    return headers


@pytest.mark.browser
@pytest.mark.parametrize("family", ["bert", "llama", "t5"])
def test_clicking_a_cell_explains_its_weight(
    browser: Any,
    family: str,
    family_reports: dict[str, tuple[Any, dict[str, Any]]],
    tmp_path: Path,
) -> None:
    report, _ = family_reports[family]
    path = tmp_path / "r.html"
    report.save(path)
    page, log = open_report(browser, path)
    rec = page_data(report.html)["rg-data-s1"]
    qk, scale = rec["qk"], rec["maps"][0]["scale"]
    i, j, j2 = 7, 2, 5  # "it"-like row of the pair: any cell a causal row can see
    _click_cell(page, "s1", i, j)
    panel = page.locator('#s1 [data-view="qk"]')
    assert panel.locator("[data-qk-body]").is_visible()
    cells = panel.locator("[data-qk-table] tr").nth(1).locator("th, td").all_text_contents()
    recomputed, stored, diff = (float(c) for c in cells[-3:])
    z = page.evaluate(
        "([sel, i, j]) => document.querySelector(sel).data[0].z[i][j]",
        ['#s1 [data-plot="head"]', i, j],
    )
    assert abs(stored - z) < 1e-6  # the heatmap's own value at that cell
    assert abs(recomputed - z) <= 1 / scale + qk["error"]
    assert abs(diff - (recomputed - stored)) < 1e-3
    amap = report.extraction.results[0].maps[0]
    layer, head = report.document.start.layer, report.document.start.head
    assert abs(recomputed - float(amap.attention[layer, head, i, j])) <= qk["error"] + 1e-6
    formula = panel.locator("[data-qk-formula]").inner_text()
    assert "q·k × scaling" in formula
    stated = re.search(r"by at most ([0-9.e+-]+) in this sentence", formula)
    assert stated is not None and float(stated.group(1)) == qk["error"]
    if family == "t5":  # the bias is a term of its own, in the formula and the table
        assert "position bias" in formula and "+ bias" in cells_header(panel)
    if family == "llama":
        assert "Rotary positions" in formula and "causal mask" in formula
        assert "key head" in panel.locator("[data-qk-note]").inner_text()
    vectors = page.evaluate(
        "sel => document.querySelector(sel).data.map(t => t.y.length)",
        '#s1 [data-plot="qk-vectors"]',
    )
    assert vectors == [qk["head_dim"]] * 3  # q_i, k_j, their product
    # A second key of the same row: both scores, and the dimensions of the difference.
    _click_cell(page, "s1", i, j2, shift=True)
    rows = panel.locator("[data-qk-table] tr").count()
    assert rows == 3
    contrast = panel.locator("[data-qk-contrast]").inner_text()
    assert contrast.startswith("Scores:") and contrast.count("dimension ") == 5
    assert page.locator('#s1 [data-control="compare"]').input_value() == str(j2)
    # Another head: the panel follows it, same cell.
    page.select_option('#s1 [data-view="head"] [data-control="head"]', "0")
    page.wait_for_selector("#s1 [data-qk-note] >> text=/Head 1 ·/")
    assert log.errors == []


@pytest.mark.browser
def test_the_panel_explains_weights_only(browser: Any, tiny_bert: Path, tmp_path: Path) -> None:
    report = build_report([WINOGRAD[0]], model=str(tiny_bert), measures=("norm",))
    path = tmp_path / "m.html"
    report.save(path)
    page, log = open_report(browser, path)
    _click_cell(page, "s1", 3, 1)
    assert page.locator("#s1 [data-qk-body]").is_visible()
    page.select_option("#rg-measure", "norm")
    page.wait_for_selector("#s1 [data-qk-note] >> text=/explains attention weights only/")
    assert page.locator("#s1 [data-qk-body]").is_hidden()
    # A line of the head view (now drawing the norms) chooses the head and pair all the
    # same, and the panel keeps saying why it cannot explain them.
    page.wait_for_selector('#s1[data-rg-rendered="1"]', state="attached")
    _click_line(page, "s1", 3, 1)
    page.wait_for_selector("#s1 [data-qk-from-lines] >> text=/^Opened in/", state="attached")
    page.wait_for_selector('#s1 [data-view="qk"][data-rg-rendered="1"]', state="attached")
    assert "explains attention weights only" in page.locator("#s1 [data-qk-note]").inner_text()
    assert page.locator("#s1 [data-qk-body]").is_hidden()
    assert log.errors == []


# The head view (bertviz): a clicked line opens the panel for its layer, head and pair.

LINE_POINT = """([anchor, i, j]) => {
  // A point of the pair's line where a line of that pair is the topmost element (client
  // coordinates), or null: lines cross, and the click lands on the one on top.
  const box = document.querySelector('#' + anchor + ' .rg-bertviz');
  const same = (el) => el && el.getAttribute('left-token-index') === String(i) &&
    el.getAttribute('right-token-index') === String(j);
  const line = Array.from(box.querySelectorAll('#attention line')).find(
    (l) => same(l) && l.getAttribute('stroke-opacity') !== '0');
  line.scrollIntoView({ block: 'center' });
  const svg = line.ownerSVGElement.getBoundingClientRect();
  const [x1, y1, x2, y2] = ['x1', 'y1', 'x2', 'y2'].map((a) => +line.getAttribute(a));
  for (let k = 1; k < 20; k++) {
    const t = 0.5 + (k % 2 ? 1 : -1) * Math.floor(k / 2) * 0.05;
    const x = svg.left + x1 + t * (x2 - x1), y = svg.top + y1 + t * (y2 - y1);
    if (same(document.elementFromPoint(x, y))) return [x, y];
  }
  return null;
}"""


def unpack_weights(data: str, scale: int, shape: tuple[int, ...]) -> np.ndarray:
    """store.py's packed weights, read here without reportgen: uint16 in two byte planes."""
    planes = np.frombuffer(gzip.decompress(base64.b64decode(data)), dtype=np.uint8)
    half = planes.size // 2
    u = planes[:half].astype(np.int64) | (planes[half:].astype(np.int64) << 8)
    return u.reshape(shape) / scale


def _click_line(page: Any, anchor: str, i: int, j: int, shift: bool = False) -> None:
    """A real mouse click on the head view's line from query i to key j."""
    point = page.evaluate(LINE_POINT, [anchor, i, j])
    assert point is not None, f"no point of line {i} -> {j} is on top"
    if shift:
        page.keyboard.down("Shift")
    page.mouse.click(*point)
    if shift:
        page.keyboard.up("Shift")


def _panel_shows(page: Any, anchor: str, text: str) -> None:
    page.wait_for_selector(f"#{anchor} [data-qk-note] >> text={text}", state="attached")
    page.wait_for_selector(f'#{anchor} [data-view="qk"][data-rg-rendered="1"]', state="attached")


@pytest.fixture(scope="module")
def minilm_report() -> Any:
    """One short sentence on the embedded model (MiniLM: 6 layers x 12 heads)."""
    return build_report([WINOGRAD[0]])


@pytest.mark.browser
def test_a_head_view_line_opens_the_panel(browser: Any, minilm_report: Any, tmp_path: Path) -> None:
    report = minilm_report
    path = tmp_path / "hv.html"
    report.save(path)
    page, log = open_report(browser, path)
    rec = page_data(report.html)["rg-data-s1"]
    qk, m = rec["qk"], rec["maps"][0]
    L, H, n = qk["layers"], qk["heads"], qk["n"]
    tokens = rec["seqs"][m["query_seq"]]["tokens"]
    i, j, j2 = tokens.index("it"), tokens.index("animal"), tokens.index("street")
    layer, head = 2, 5
    amap = report.extraction.results[0].maps[0]
    stored = unpack_weights(m["data"], m["scale"], (L, H, n, n))
    assert np.abs(stored - amap.attention).max() <= 1 / m["scale"]  # the page's rounding
    q = unpack_half(qk["q"], (L, H, n, qk["head_dim"]))
    k = unpack_half(qk["k"], (L, qk["kv_heads"], n, qk["head_dim"]))

    # bertviz's own controls: its layer select, and a double-click on a head's square
    # (the last group of its SVG) to show that head alone.
    page.select_option("#s1 .rg-bertviz #layer", str(layer))
    page.locator("#s1 .rg-bertviz svg > g:last-child > rect").nth(head).dblclick()
    _click_line(page, "s1", i, j)
    _panel_shows(page, "s1", f"/^Layer {layer + 1}, Head {head + 1} · query 'it' \\[{i}\\]/")
    panel = page.locator('#s1 [data-view="qk"]')
    note = panel.locator("[data-qk-note]").inner_text()
    assert f"key 'animal' [{j}]" in note and "head view's line of this head" in note
    cells = panel.locator("[data-qk-table] tr").nth(1).locator("th, td").all_text_contents()
    recomputed, shown = float(cells[-3]), float(cells[-2])
    assert abs(shown - stored[layer, head, i, j]) < 1e-6  # the page's weight, to 6 places
    assert abs(shown - float(amap.attention[layer, head, i, j])) <= 1 / m["scale"]
    assert abs(recomputed - float(amap.attention[layer, head, i, j])) <= qk["error"] + 1e-6
    # The heatmap above was turned to that head: its hover value is the panel's.
    heads = page.locator('#s1 [data-view="head"]')
    assert heads.locator('[data-control="layer"]').input_value() == str(layer)
    assert heads.locator('[data-control="head"]').input_value() == str(head)
    z = page.evaluate(
        "([sel, i, j]) => document.querySelector(sel).data[0].z[i][j]",
        ['#s1 [data-plot="head"]', i, j],
    )
    assert abs(z - shown) < 1e-6
    status = page.locator("#s1 [data-qk-from-lines]").inner_text()
    assert status.startswith(f"Opened in Why this weight above: Layer {layer + 1}, Head {head + 1}")
    page.click("#s1 [data-qk-goto]")  # the panel is above: one click brings it to the top
    assert abs(panel.evaluate("el => el.getBoundingClientRect().top")) < 2

    # Shift on another key of the same query: both scores, each q.k * scaling.
    _click_line(page, "s1", i, j2, shift=True)
    page.wait_for_selector("#s1 [data-qk-contrast] >> text=/^Scores:/", state="visible")
    page.wait_for_selector('#s1 [data-view="qk"][data-rg-rendered="1"]', state="attached")
    assert panel.locator("[data-qk-table] tr").count() == 3
    assert page.locator('#s1 [data-control="compare"]').input_value() == str(j2)
    contrast = panel.locator("[data-qk-contrast]").inner_text()
    found = re.match(r"Scores: 'animal' \[\d+\] (-?[\d.]+), 'street' \[\d+\] (-?[\d.]+)", contrast)
    assert found is not None, contrast
    for key, text in ((j, found.group(1)), (j2, found.group(2))):
        score = q[layer, head, i] @ k[layer, head, key] * qk["scaling"][layer]
        assert abs(float(text) - score) < 1e-3

    # All heads shown again (bertviz: double-click the only one): the pair's lines lie on
    # top of each other, so the head is the one of largest weight there, and it says so.
    page.locator("#s1 .rg-bertviz svg > g:last-child > rect").nth(head).dblclick()
    j3 = tokens.index("tired")
    weights = stored[layer, :, i, j3]
    best = int(np.argmax(weights))  # the first of equals, as bertviz.js takes it
    _click_line(page, "s1", i, j3)
    _panel_shows(page, "s1", f"/^Layer {layer + 1}, Head {best + 1} · query 'it'/")
    note = panel.locator("[data-qk-note]").inner_text()
    assert f"the largest of the {int((weights > 0).sum())} there" in note, note
    assert panel.locator("[data-qk-table] tr").count() == 2  # a new pick: one key
    cells = panel.locator("[data-qk-table] tr").nth(1).locator("th, td").all_text_contents()
    assert abs(float(cells[-2]) - weights[best]) < 1e-6
    assert log.errors == []


@pytest.mark.browser
def test_a_head_view_line_maps_back_through_pair_filters_and_hidden_specials(
    browser: Any, tmp_path: Path
) -> None:
    """bertviz's "Sentence B -> Sentence A" filter draws a slice of the drawn axis, which
    leaves the special tokens out here: its line a -> c is query B's a-th shown token,
    key A's c-th, in the sentence's own positions."""
    report = build_report(["The cat sat."], pair="It was tired.")
    path = tmp_path / "pair.html"
    report.save(path)
    page, log = open_report(browser, path)
    page.check("#rg-hide-special")
    page.wait_for_selector('#s1[data-rg-rendered="1"]', state="attached")
    page.select_option("#s1 .rg-bertviz #filter", "4")  # bertviz's B -> A (PAIR_FILTERS)
    seq = page_data(report.html)["rg-data-s1"]["seqs"][0]
    shown = [p for p, special in enumerate(seq["special"]) if not special]
    a, c = 1, 2
    query = [p for p in shown if p >= seq["b_start"]][a]
    key = [p for p in shown if p < seq["b_start"]][c]
    _click_line(page, "s1", a, c)
    word = f"'{seq['tokens'][query]}' \\[{query}\\] → key '{seq['tokens'][key]}' \\[{key}\\]"
    _panel_shows(page, "s1", f"/· query {word}/")
    status = page.locator("#s1 [data-qk-from-lines]").inner_text()
    assert (
        f"query '{seq['tokens'][query]}' [{query}] → key '{seq['tokens'][key]}' [{key}]" in status
    )
    assert (
        "renormalised without special tokens" in page.locator("#s1 [data-qk-formula]").inner_text()
    )
    assert log.errors == []


@pytest.mark.browser
def test_a_head_view_line_does_nothing_new_without_queries_and_keys(
    browser: Any, tmp_path: Path
) -> None:
    report = build_report([WINOGRAD[0]], qk=False)
    path = tmp_path / "none.html"
    report.save(path)
    page, log = open_report(browser, path)
    _click_line(page, "s1", 3, 1)
    assert page.locator('#s1 [data-view="qk"], #s1 [data-qk-from-lines]').count() == 0
    assert page.locator("#s1 [data-qk-none]").count() == 1
    assert log.errors == []
