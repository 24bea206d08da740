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
# The maths modules only: main.js would start the page.
MATHS = ("core.js", "store.js", "transforms.js")


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
