"""The compact attention store: packed in Python, decoded by `RG.decodeMap` in the page.

Bounds from issue #4: every decoded weight within 0.002 of the true one, every row
summing to 1 within 0.01. The Python decoder below mirrors templates/js/store.js step by step
(base64, gzip, low-byte plane then high-byte plane, divide by the scale).
"""

from __future__ import annotations

import base64
import gzip
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reportgen import store
from reportgen.config import TokenSeq
from reportgen.store import (
    PACK_LEVEL9_VALUES,
    QUANT_SCALE,
    pack_attention,
    quantize_rows,
)

from .conftest import open_report, random_attention, save_bert

VALUE_TOLERANCE = 0.002
ROW_SUM_TOLERANCE = 0.01


def decode_like_js(data: str, scale: int, shape: tuple[int, ...]) -> np.ndarray:
    """What RG.decodeMap computes, in numpy."""
    planes = np.frombuffer(gzip.decompress(base64.b64decode(data)), dtype=np.uint8)
    assert planes.size == 2 * int(np.prod(shape)), "one low and one high byte per value"
    count = planes.size // 2
    q = planes[:count].astype(np.uint16) | (planes[count:].astype(np.uint16) << 8)
    return (q.astype(np.float32) / np.float32(scale)).reshape(shape)


def peaky_attention(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Rows with one dominant weight (> 0.5, so the high byte plane is used) and a tail."""
    att = rng.dirichlet(np.ones(shape[-1]) * 0.05, size=shape[:-1]).astype(np.float32)
    return att / att.sum(axis=-1, keepdims=True)


def causal_attention(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    att = random_attention(rng, shape).astype(np.float64)
    att *= np.tril(np.ones(shape[-2:]))
    return (att / att.sum(axis=-1, keepdims=True)).astype(np.float32)


CASES = {
    "uniform-ish": lambda rng: random_attention(rng, (2, 3, 9, 9)),
    "peaky": lambda rng: peaky_attention(rng, (3, 4, 17, 17)),
    "causal": lambda rng: causal_attention(rng, (2, 2, 12, 12)),
    "cross (not square)": lambda rng: random_attention(rng, (2, 2, 5, 11)),
    "one token": lambda rng: np.ones((2, 2, 1, 1), dtype=np.float32),
    "one-hot rows": lambda rng: np.eye(6, dtype=np.float32)[None, None].repeat(2, 0),
}


@pytest.mark.parametrize("case", CASES)
def test_pack_round_trip_within_bounds(case: str, rng: np.random.Generator) -> None:
    att = CASES[case](rng)
    data, scale = pack_attention(att)
    values = decode_like_js(data, scale, att.shape)
    assert np.abs(values - att).max() <= VALUE_TOLERANCE
    assert np.abs(values.astype(np.float64).sum(axis=-1) - 1.0).max() <= ROW_SUM_TOLERANCE
    # Sum-preserving, not plain rounding: the integers of every row add up to the scale.
    q = np.rint(values * scale).astype(np.int64)
    np.testing.assert_array_equal(q.sum(axis=-1), scale)


def test_plain_rounding_would_break_the_row_sums() -> None:
    # 512 weights of 1/512 each round to 1/500 each under plain rounding (sum 1.024);
    # the store keeps the sum exact.
    att = np.full((1, 1, 1, 512), 1 / 512, dtype=np.float32)
    data, scale = pack_attention(att)
    values = decode_like_js(data, scale, att.shape)
    assert abs(np.rint(att * scale).sum() / scale - 1) > ROW_SUM_TOLERANCE
    assert abs(values.astype(np.float64).sum() - 1) <= ROW_SUM_TOLERANCE
    assert np.abs(values - att).max() <= VALUE_TOLERANCE


def test_large_maps_use_the_faster_level_and_still_round_trip(
    rng: np.random.Generator,
) -> None:
    shape = (2, 3, 480, 480)
    assert np.prod(shape) > PACK_LEVEL9_VALUES
    att = random_attention(rng, shape)
    data, scale = pack_attention(att)
    values = decode_like_js(data, scale, shape)
    assert np.abs(values - att).max() <= VALUE_TOLERANCE
    # Nearly uniform rows of ~1/480 compress to a small fraction of a byte per value.
    assert len(data) / att.size < 0.5


def test_pack_is_deterministic(rng: np.random.Generator) -> None:
    att = peaky_attention(rng, (2, 2, 8, 8))
    assert pack_attention(att) == pack_attention(att.copy())


# --- quantisation -----------------------------------------------------------------------


def test_quantize_hand_example() -> None:
    # 100.15, 100.15, 299.7 -> floors sum to 499; the one extra unit goes to the 0.7.
    q = quantize_rows(np.array([[0.2003, 0.2003, 0.5994]]))
    assert q.dtype == np.uint16
    np.testing.assert_array_equal(q, [[100, 100, 300]])


def test_quantize_ties_go_to_first_positions() -> None:
    q = quantize_rows(np.full((1, 3), 1 / 3))
    np.testing.assert_array_equal(q, [[167, 167, 166]])


def test_quantize_zero_rows_and_negatives() -> None:
    q = quantize_rows(np.array([[0.0, 0.0, 0.0], [-1e-9, 1.0 + 1e-9, 0.0]]))
    np.testing.assert_array_equal(q, [[0, 0, 0], [0, QUANT_SCALE, 0]])


def test_quantize_non_square_and_custom_scale() -> None:
    rng = np.random.default_rng(5)
    attn = random_attention(rng, (2, 3, 4, 7))
    q = quantize_rows(attn, scale=1000)
    assert q.shape == attn.shape
    np.testing.assert_array_equal(q.sum(axis=-1), 1000)
    assert np.abs(q / 1000 - attn).max() <= 1 / 1000


def test_quantize_blocks_do_not_change_result(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(6)
    attn = random_attention(rng, (3, 4, 9, 9)).astype(np.float32)
    whole = quantize_rows(attn)
    monkeypatch.setattr(store, "_QUANT_BLOCK_ELEMENTS", 20)
    np.testing.assert_array_equal(quantize_rows(attn), whole)


def test_quantize_rejects_non_finite() -> None:
    with pytest.raises(ValueError):
        quantize_rows(np.array([[np.nan, 1.0]]))


@pytest.mark.parametrize(("n", "alpha"), [(3, 1.0), (128, 0.3), (4096, 0.05)])
def test_round_rows_keeps_row_totals_and_comes_back_through_float32(n: int, alpha: float) -> None:
    """A long export's values (export.long_precision): each within 1e-6, each row's total
    kept (plain rounding drops the mass of thousands of tiny weights), and rounding their
    float32 again gives them bit for bit, so the page rebuilt from them is the same."""
    rng = np.random.default_rng(n)
    attn = rng.dirichlet(np.full(n, alpha), size=50).astype(np.float32)
    rounded = store.round_rows(attn, 6)
    assert np.abs(rounded - attn).max() < 1e-6
    np.testing.assert_allclose(rounded.sum(-1), np.rint(attn.sum(-1, dtype=np.float64) * 1e6) / 1e6)
    assert np.array_equal(store.round_rows(rounded.astype(np.float32), 6), rounded)
    assert np.array_equal(np.round(rounded.astype(np.float32).astype(np.float64), 6), rounded)


SHAPES = st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 17), st.integers(1, 17))


@settings(max_examples=150, deadline=None)
@given(shape=SHAPES, seed=st.integers(0, 2**32 - 1), sparse=st.booleans())
def test_quantize_property(shape: tuple[int, int, int, int], seed: int, sparse: bool) -> None:
    rng = np.random.default_rng(seed)
    layers, heads, nq, nk = shape
    attn = random_attention(rng, (layers, heads, nq, nk))
    if sparse:
        # Causal-style exact zeros: keep at least the first key of every row.
        mask = rng.random(attn.shape) < 0.5
        mask[..., 0] = True
        attn = np.where(mask, attn, 0.0)
        attn /= attn.sum(axis=-1, keepdims=True)
    attn = attn.astype(np.float32)  # models hand us float32, whose rows are only ~1

    q = quantize_rows(attn)
    assert q.dtype == np.uint16 and q.shape == attn.shape
    np.testing.assert_array_equal(q.sum(axis=-1, dtype=np.int64), QUANT_SCALE)
    err = np.abs(q.astype(np.float64) / QUANT_SCALE - attn.astype(np.float64))
    assert err.max() <= 1 / QUANT_SCALE
    # Deterministic: the same input always gives the same integers.
    np.testing.assert_array_equal(quantize_rows(attn.copy()), q)


# ---------------------------------------------------------------------------------------
# In the browser: window.reportgen.decodeMap on real payloads

# Runs inside the page: decode one payload map, compare with the reference (flat list).
COMPARE_JS = """async ([m, reference]) => {
  const decoded = await window.reportgen.decodeMap(m);
  const v = decoded.values;
  let maxError = 0;
  let maxRowError = 0;
  for (let i = 0; i < v.length; i++) maxError = Math.max(maxError, Math.abs(v[i] - reference[i]));
  for (let r = 0; r < v.length / m.n_key; r++) {
    let sum = 0;
    for (let j = 0; j < m.n_key; j++) sum += v[r * m.n_key + j];
    maxRowError = Math.max(maxRowError, Math.abs(sum - 1));
  }
  return { count: v.length, maxError: maxError, maxRowError: maxRowError };
}"""

PAYLOAD_JS = "(id) => JSON.parse(document.getElementById('rg-data-' + id).textContent)"

SENTENCES = (
    "The animal didn't cross the street because it was too tired.",
    "The trophy doesn't fit into the brown suitcase because it is too large.",
    "Joan made sure to thank Susan for all the help she had given.",
)


@pytest.fixture(scope="module")
def tiny_report(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny_bert report of three sentences and its full-precision --export-json."""
    from click.testing import CliRunner

    from reportgen.cli import main

    folder = tmp_path_factory.mktemp("store")
    html, export = folder / "report.html", folder / "export.json"
    result = CliRunner().invoke(
        main,
        ["-q", "-m", str(tiny_bert), "-o", str(html), "--export-json", str(export), *SENTENCES],
    )
    assert result.exit_code == 0, result.output
    return html, export


@pytest.mark.browser
def test_decode_map_in_the_page_reproduces_the_extraction(
    browser: Any, tiny_report: tuple[Path, Path]
) -> None:
    html, export = tiny_report
    items = json.loads(export.read_text(encoding="utf-8"))["items"]
    page, log = open_report(browser, html, wait_all=False)
    for number, item in enumerate(items, start=1):
        reference = np.asarray(item["attention"], dtype=np.float64)
        payload = page.evaluate(PAYLOAD_JS, f"s{number}")
        m = payload["maps"][0]
        assert (m["layers"], m["heads"], m["n_query"], m["n_key"]) == reference.shape
        got = page.evaluate(COMPARE_JS, [m, reference.ravel().tolist()])
        assert got["count"] == reference.size
        assert got["maxError"] <= VALUE_TOLERANCE, f"sentence {number}"
        assert got["maxRowError"] <= ROW_SUM_TOLERANCE, f"sentence {number}"
    assert log.errors == []


@pytest.mark.browser
@pytest.mark.parametrize("case", ["peaky", "causal", "cross (not square)", "one-hot rows"])
def test_decode_map_in_the_page_on_packed_arrays(
    browser: Any, tiny_report: tuple[Path, Path], case: str
) -> None:
    # Seeded arrays reach the high byte plane (weights above 0.51) that a random
    # model's nearly uniform attention never does.
    att = CASES[case](np.random.default_rng(99))
    data, scale = pack_attention(att)
    layers, heads, nq, nk = att.shape
    m = {"data": data, "scale": scale, "layers": layers, "heads": heads, "n_query": nq, "n_key": nk}
    page, log = open_report(browser, tiny_report[0], wait_all=False)
    got = page.evaluate(COMPARE_JS, [m, att.astype(np.float64).ravel().tolist()])
    assert got["count"] == att.size
    assert got["maxError"] <= VALUE_TOLERANCE
    assert got["maxRowError"] <= ROW_SUM_TOLERANCE
    # And the page's numbers equal the Python mirror's exactly (both float32 q / scale).
    values = page.evaluate(
        "async (m) => Array.from((await window.reportgen.decodeMap(m)).values)", m
    )
    np.testing.assert_array_equal(
        np.asarray(values, dtype=np.float32), decode_like_js(data, scale, att.shape).ravel()
    )
    assert log.errors == []


# ---------------------------------------------------------------------------------------
# Scale: a 200-sentence report opens cleanly and draws lazily


def many_sentences(count: int, seed: int = 7) -> list[str]:
    """Deterministic sentences of about 20 word pieces."""
    rng = random.Random(seed)
    subj = ["The animal", "The old man", "A small child", "The teacher", "My neighbour"]
    verb = ["didn't cross", "quickly painted", "carefully watched", "never visited"]
    obj = ["the street", "the wooden fence", "the big house", "the river bank"]
    why = ["because it was too tired", "after the long storm", "before the guests arrived"]
    return [
        f"{rng.choice(subj)} {rng.choice(verb)} {rng.choice(obj)} {rng.choice(why)} ({i})."
        for i in range(count)
    ]


@pytest.fixture(scope="module")
def many_report(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from reportgen.pipeline import build_report

    out = tmp_path_factory.mktemp("many") / "many.html"
    build_report(many_sentences(200), str(tiny_bert), title="200 sentences").save(out)
    return out


@pytest.mark.browser
def test_two_hundred_sentences_open_without_errors_and_draw_lazily(
    browser: Any, many_report: Path
) -> None:
    page, log = open_report(browser, many_report, wait_all=False)
    sections = page.locator("section.rg-sentence")
    assert sections.count() == 200
    page.wait_for_selector("#s1[data-rg-rendered='1']", state="attached", timeout=60_000)
    assert page.locator('#s1 [data-plot="head"] .main-svg').count() >= 1
    # Lazy: what is far below the first screen has not been drawn.
    assert page.locator("#s200").get_attribute("data-rg-rendered") is None
    assert page.locator("#s200 .main-svg").count() == 0
    # The sentence list jumps there, and scrolling there draws it.
    page.locator('#rg-sentence-list a[href="#s200"]').click()
    page.wait_for_selector("#s200[data-rg-rendered='1']", state="attached", timeout=60_000)
    assert page.locator('#s200 [data-plot="head"] .main-svg').count() >= 1
    assert log.errors == []


@pytest.mark.browser
def test_search_box_filters_the_sentence_list(browser: Any, many_report: Path) -> None:
    page, log = open_report(browser, many_report, wait_all=False)
    page.fill("#rg-search", "(137)")
    visible = page.locator("#rg-sentence-list li:not([hidden])")
    assert visible.count() == 1
    # many_sentences numbers from 0, the report from 1.
    assert visible.first.locator("a").get_attribute("href") == "#s138"
    assert log.errors == []


# ---------------------------------------------------------------------------------------
# Long inputs: the head view waits for a click instead of freezing the page


@pytest.fixture(scope="module")
def wide_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One layer, 12 heads, 512 positions: enough for a head view past the click limit."""
    return save_bert(
        tmp_path_factory.mktemp("wide-bert"), layers=1, heads=12, hidden=48, max_length=512
    )


@pytest.mark.browser
def test_long_input_head_view_waits_for_a_click(
    browser: Any, wide_bert: Path, tmp_path: Path
) -> None:
    from reportgen.pipeline import build_report

    words = ("the animal did not cross the street because it was too tired " * 10).split()
    text = " ".join(words[:100])  # 100 word pieces + [CLS] and [SEP]
    out = tmp_path / "long.html"
    build_report([text], str(wide_bert)).save(out)
    page, log = open_report(browser, out, wait_all=False)
    page.wait_for_selector("#s1[data-rg-rendered='1']", state="attached", timeout=60_000)
    assert page.locator('#s1 [data-plot="head"] .main-svg').count() >= 1
    button = page.locator('#s1 [data-plot="headview"] button')
    assert "Draw the head view" in (button.text_content() or "")
    assert page.locator("#s1 .rg-bertviz").count() == 0
    # The heatmaps stay responsive while the head view waits.
    page.select_option('#s1 [data-view="head"] [data-control="head"]', "7")
    page.wait_for_selector('#s1 [data-plot="head"] .gtitle >> text=/Head 8\\b/')
    button.click()
    page.wait_for_selector("#s1 .rg-bertviz svg", state="attached", timeout=60_000)
    lines = page.evaluate("document.querySelectorAll('#s1 .rg-bertviz line').length")
    assert lines == 12 * 102 * 102
    assert log.errors == []


# ---------------------------------------------------------------------------------------
# The records: one description, one key style


RECORDS = (
    store.SeqRecord,
    store.MapRecord,
    store.CandidateRecord,
    store.FocusRecord,
    store.NextSourceRecord,
    store.NextRecord,
    store.SentenceRecord,
    store.PairRecord,
    store.PageSettings,
)


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.__name__)
def test_every_field_is_snake_case_and_described_in_the_format(record: type) -> None:
    import dataclasses
    import re

    doc = store.__doc__ or ""
    assert record.__name__ in doc or record.__name__ in ("CandidateRecord", "NextSourceRecord")
    for f in dataclasses.fields(record):
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", f.name), f.name
        if record not in (store.CandidateRecord, store.NextSourceRecord):
            assert f"``{f.name}``" in doc, f"{record.__name__}.{f.name} is not in FORMAT"


def test_map_ids_are_set_where_the_streams_are_laid_out() -> None:
    """Identifiers travel as identifiers: nothing parses a display name back."""
    from reportgen.extract import Sequences, map_layout

    seq = TokenSeq(("a",), ("a",), (0,), ((0, 1),), (False,), "a")
    assert [m.id for m in map_layout("encoder", Sequences(seq, None))] == ["self"]
    assert [(m.id, m.stream) for m in map_layout("encoder-decoder", Sequences(seq, None, seq))] == [
        ("encoder_self", "self"),
        ("decoder_self", "decoder"),
        ("cross", "cross"),
    ]


def test_records_serialise_to_the_documented_keys(rng: np.random.Generator) -> None:
    att = random_attention(rng, (2, 3, 4, 5))
    m = store.map_record(
        "cross", "Cross-attention", att, causal=False, query_seq=1, key_seq=0, b_start=None
    )
    data = store.as_json(m)
    assert (data["id"], data["n_query"], data["n_key"]) == ("cross", 4, 5)
    values = decode_like_js(data["data"], data["scale"], att.shape)
    assert np.abs(values - att).max() <= VALUE_TOLERANCE
    with pytest.raises(TypeError):
        store.as_json({"not": "a record"})
