"""Python and the page agree: the page's own transforms (templates/js/transforms.js) run
in Chromium on fixed arrays and match reportgen.analysis to 1e-6.

The scripts are loaded as the report loads them (the same files, in PAGE_SCRIPTS order),
into an empty page: the maths needs no data block, no library and no drawing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from reportgen import analysis
from reportgen.nexttoken import _word_text
from reportgen.render import PAGE_SCRIPTS, static_text

from .conftest import random_attention

pytestmark = pytest.mark.browser

TOLERANCE = 1e-6
# The maths modules only: main.js would start the page (qk.js only registers its view).
MATHS = ("core.js", "store.js", "transforms.js", "qk.js")


@pytest.fixture(scope="module")
def page(browser: Any) -> Iterator[Any]:
    assert set(MATHS) <= set(PAGE_SCRIPTS)
    context = browser.new_context(offline=True)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.set_content("<!DOCTYPE html><html><body></body></html>")
    for name in MATHS:
        pg.add_script_tag(content=static_text(f"js/{name}"))
    yield pg
    assert errors == []
    context.close()


@pytest.fixture
def attention() -> np.ndarray:
    """float32[3, 2, 7, 7]; float32 values reach the page exactly (as Float32Array)."""
    att = random_attention(np.random.default_rng(2024), (3, 2, 7, 7))
    att[0, 0, 2] = 0.0  # a row with no mass: uniform after hiding (drop_positions)
    att[0, 0, 2, 0] = 1.0
    return att


GROUPS = [[0], [1, 2], [3], [4, 5, 6]]


def _close(got: Any, expected: np.ndarray) -> None:
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), expected, rtol=0, atol=TOLERANCE)


def test_word_merge(page: Any, attention: np.ndarray) -> None:
    rows = attention[1, 1].astype(np.float64)
    got = page.evaluate(
        "([r, g]) => window.reportgen.mergeGroups(r, g, g)", [rows.tolist(), GROUPS]
    )
    _close(got, analysis.merge_groups(rows, GROUPS))


def test_hiding_special_tokens(page: Any, attention: np.ndarray) -> None:
    keep = [False, True, True, True, True, True, False]
    for rows in (attention[0, 0], attention[2, 1]):
        got = page.evaluate(
            "([r, k]) => window.reportgen.dropPositions(r, k, k)", [rows.tolist(), keep]
        )
        _close(got, analysis.drop_positions(rows, keep))


def test_entropy(page: Any, attention: np.ndarray) -> None:
    for rows in (attention[0, 0], attention[1, 0], np.eye(4)):
        got = page.evaluate("(r) => window.reportgen.rowEntropy(r)", rows.tolist())
        assert abs(got - float(analysis.mean_entropy(rows))) <= TOLERANCE


def test_rollout_through_every_layer(page: Any, attention: np.ndarray) -> None:
    layers, heads, n, _ = attention.shape
    got = page.evaluate(
        """([values, layers, heads, n]) => {
            const RG = window.reportgen;
            const meta = { layers: layers, heads: heads, n_query: n, n_key: n };
            const decoded = { meta: meta, values: Float32Array.from(values) };
            const out = [];
            let previous = null;
            for (let l = 0; l < layers; l++) {
                previous = RG.rolloutStep(previous, RG.layerAverage(decoded, l));
                out.push(previous);
            }
            return out;
        }""",
        [attention.ravel().tolist(), layers, heads, n],
    )
    _close(got, analysis.rollout(attention))


def test_toggles_together_match_drop_then_merge(page: Any, attention: np.ndarray) -> None:
    """Hide special tokens, then merge word pieces: what every heatmap draws."""
    seq = {
        "tokens": ["[CLS]", "coun", "cil", "men", "sat", ".", "[SEP]"],
        "words": [[0], [1, 2, 3], [4], [5], [6]],
        "special": [True, False, False, False, False, False, True],
        "b_start": None,
    }
    rows = attention[2, 0].astype(np.float64)
    got = page.evaluate(
        """([r, seq]) => {
            const t = window.reportgen.transform(r, seq, seq, {wordLevel: true, hideSpecial: true});
            return [t.rows, t.q.labels];
        }""",
        [rows.tolist(), seq],
    )
    kept = analysis.drop_positions(rows, [not s for s in seq["special"]])
    expected = analysis.merge_groups(kept, [[0, 1, 2], [3], [4]])  # positions after hiding
    _close(got[0], expected)
    assert got[1] == ["council" + "men", "sat", "."]


def test_pair_difference(page: Any, attention: np.ndarray) -> None:
    # Token by token when both tokenise alike.
    a, b = attention[0, 1].astype(np.float64), attention[1, 1].astype(np.float64)
    got = page.evaluate("([a, b]) => window.reportgen.subtract(a, b)", [a.tolist(), b.tolist()])
    _close(got, a - b)
    # Over aligned words when they do not ("councilmen" / "demonstrators").
    words_a = [[0], [1, 2], [3], [4, 5], [6]]
    words_b = [[0], [1], [2, 3, 4], [5], [6]]
    labels_a = ["[CLS]", "the", "councilmen", "refused", "[SEP]"]
    labels_b = ["[CLS]", "the", "demonstrators", "refused", "[SEP]"]
    alignment = analysis.align_words(labels_a, labels_b)
    seq_a = {"words": words_a}
    seq_b = {"words": words_b}
    got = page.evaluate(
        "([a, sa, b, sb, al]) => window.reportgen.alignedDifference(a, sa, b, sb, al)",
        [a.tolist(), seq_a, b.tolist(), seq_b, alignment],
    )
    wa = analysis.merge_groups(a, words_a)
    wb = analysis.merge_groups(b, words_b)
    ia = [i for i, _ in alignment]
    ib = [j for _, j in alignment]
    _close(got, wa[np.ix_(ia, ia)] - wb[np.ix_(ib, ib)])


@pytest.mark.parametrize(
    "parts", [["␣", "Das"], ["un", "believ", "able"], ["␣"], ["↵", "⇥"], ["a", "␣b"]]
)
def test_word_labels(page: Any, parts: list[str]) -> None:
    from reportgen.config import TokenSeq

    seq = TokenSeq(
        tokens=tuple(parts),
        display=tuple(parts),
        word_ids=tuple(0 for _ in parts),
        offsets=tuple((0, 0) for _ in parts),
        special=tuple(False for _ in parts),
        text="",
    )
    expected = _word_text(seq, list(range(len(parts))))
    assert page.evaluate("(p) => window.reportgen.wordLabel(p)", parts) == expected


# The "why this weight" panel (qk.js): its row and its two-key contrast against numpy, and
# the half-precision values it reads (store.pack_half) decoded bit for bit.


@pytest.mark.parametrize(("causal", "with_bias"), [(False, False), (True, False), (False, True)])
def test_why_this_weight_row(page: Any, causal: bool, with_bias: bool) -> None:
    rng = np.random.default_rng(21)
    n, d, i, scaling = 9, 16, 5, 0.25
    q = rng.normal(size=d).astype(np.float16).astype(np.float64)
    keys = rng.normal(size=(n, d)).astype(np.float16).astype(np.float64)
    bias = rng.normal(size=n) if with_bias else None
    visible = i + 1 if causal else n
    got = page.evaluate(
        "([q, k, s, b, v]) => window.reportgen.qkRow(q, k, s, b, v)",
        [q.tolist(), keys.tolist(), scaling, None if bias is None else bias.tolist(), visible],
    )
    dots = keys @ q
    scores = dots * scaling + (0 if bias is None else bias)
    scores[visible:] = -np.inf
    weights = np.exp(scores - scores.max())
    weights /= weights.sum()
    _close(got["dots"], dots)
    assert got["scores"][visible:] == [None] * (n - visible)
    _close(got["scores"][:visible], scores[:visible])
    np.testing.assert_allclose(got["weights"], weights, rtol=0, atol=1e-12)  # float64
    # The weight the panel shows is analysis.weights_from_qk's, one head's row.
    full = analysis.weights_from_qk(
        np.broadcast_to(q, (1, 1, n, d)), keys[None, None], [scaling],
        None if bias is None else np.broadcast_to(bias, (1, 1, n, n)), causal,
    )  # fmt: skip
    _close(got["weights"], full[0, 0, i] if causal else full[0, 0, 0])


def test_why_this_weight_two_keys(page: Any) -> None:
    rng = np.random.default_rng(22)
    q, ka, kb = (rng.normal(size=12) for _ in range(3))
    got = page.evaluate(
        "([q, a, b]) => window.reportgen.qkContrast(q, a, b, 4)",
        [q.tolist(), ka.tolist(), kb.tolist()],
    )
    terms = q * (ka - kb)
    top = np.argsort(-np.abs(terms), kind="stable")[:4]
    assert [t["dim"] for t in got["terms"]] == top.tolist()
    _close([t["value"] for t in got["terms"]], terms[top])
    _close(got["total"], np.array(q @ ka - q @ kb))


def test_half_precision_decoding(page: Any) -> None:
    from reportgen.store import pack_half

    values = np.array(
        [0.0, -0.0, 1.0, -2.5, 65504.0, 6.1e-5, 5.96e-8, -3.0e-6, 0.1, 1 / 3], dtype=np.float16
    )
    values = np.concatenate([values, np.random.default_rng(23).normal(size=200).astype(np.float16)])
    got = page.evaluate("(b) => window.reportgen.decodeHalf(b).then(Array.from)", pack_half(values))
    assert got == values.astype(np.float64).tolist()  # every half value exactly
