"""The atlas under each context-mixing measure (issue 20): coreference accuracy per head
(weights, norm) and per layer (norm per layer, ALTI, ALTI rollout), from the same pass,
against an independent count from the report engine's own measures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from reportgen.atlas import build_atlas
from reportgen.atlas.stats import AtlasSums, measure_accuracies
from reportgen.config import ReportConfig
from reportgen.pipeline import build_report

from .test_atlas import write_lines

ITEMS = [
    ("The animal didn't cross the street because it was too tired.", ("animal", "street"), 0),
    ("The animal didn't cross the street because it was too wide.", ("animal", "street"), 1),
    (
        "The trophy doesn't fit into the suitcase because it is too large.",
        ("trophy", "suitcase"),
        0,
    ),
    (
        "The trophy doesn't fit into the suitcase because it is too small.",
        ("trophy", "suitcase"),
        1,
    ),
    (
        "The city council refused the demonstrators a permit because they feared violence.",
        ("council", "demonstrators"),
        0,
    ),
]
MEASURES = ("norm", "norm_layer", "alti")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("atlas-measures")
    lines = [
        {
            "text": t,
            "focus": "it" if "it" in t.split() else "they",
            "candidates": list(c),
            "answer": c[a],
        }
        for t, c, a in ITEMS
    ]
    return write_lines(folder / "gold.jsonl", lines)


def _independent_right(tiny_bert: Path) -> dict[str, np.ndarray]:
    """Each item through the report engine, its measures scored by hand: the mean over the
    focus word's rows of the measure summed over each candidate's columns; right when the
    answer's score beats the other's strictly."""
    right: dict[str, np.ndarray] = {}
    for text, cands, answer in ITEMS:
        focus = "it" if "it" in text.split() else "they"
        report = build_report([text], str(tiny_bert), measures=MEASURES)
        amap = report.extraction.results[0].maps[0]
        m = amap.measures
        assert m is not None and m.alti_rollout is not None
        tokens = amap.query.tokens
        rows = [i for i, t in enumerate(tokens) if t == focus]
        cols = [[i for i, t in enumerate(tokens) if t == c] for c in cands]
        assert rows and all(cols)
        maps = {
            "weights": amap.attention,
            "norm": m.norm,
            "norm_layer": m.norm_layer[:, None],
            "alti": m.alti[:, None],
            "alti_rollout": m.alti_rollout[:, None],
        }
        for name, a in maps.items():
            scores = np.stack([a[:, :, rows][:, :, :, c].sum(-1).mean(-1) for c in cols], -1)
            other = 1 - answer
            hit = (scores[..., answer] > scores[..., other]).astype(np.int64)
            right[name] = right.get(name, 0) + hit
    return right


def test_coreference_under_each_measure_equals_an_independent_count(
    tiny_bert: Path, corpus: Path, tmp_path: Path
) -> None:
    config = ReportConfig(model=str(tiny_bert), measures=MEASURES)
    atlas = build_atlas(str(corpus), config)
    sums = atlas.sums
    assert sums.coref_items == len(ITEMS) and sums.measures_withheld is None
    want = _independent_right(tiny_bert)
    assert set(sums.measure_right) == {"norm", "norm_layer", "alti", "alti_rollout"}
    np.testing.assert_array_equal(sums.coref_right, want["weights"])
    for name, right in sums.measure_right.items():
        np.testing.assert_array_equal(right, want[name], err_msg=name)
    rows = measure_accuracies(sums)
    assert [r.measure for r in rows] == ["weights", "norm", "norm_layer", "alti", "alti_rollout"]
    assert [r.per_layer for r in rows] == [False, False, True, True, True]
    for r in rows:
        acc = want[r.measure] / len(ITEMS)
        assert r.best == np.unravel_index(int(np.argmax(acc)), acc.shape)
        np.testing.assert_allclose(r.accuracy, acc)
    # The export and the page carry the same rows.
    atlas.export_json(tmp_path / "a.json")
    by = json.loads((tmp_path / "a.json").read_text())["coreference"]["by_measure"]
    assert by["alti"]["per_layer"] and len(by["alti"]["accuracy"][0]) == 1
    assert by["norm"]["accuracy"] == [[float(v) for v in row] for row in want["norm"] / 5]
    html = atlas.html()
    assert html.count("<tr data-measure=") == 5 and 'id="rg-coref-measures"' in html


def test_totals_under_measures_merge_exactly() -> None:
    a, b = AtlasSums.empty(2, 3), AtlasSums.empty(2, 3)
    a.measure_right = {"norm": np.ones((2, 3), np.int64), "alti": np.array([[1], [0]])}
    b.measure_right = {"norm": np.full((2, 3), 2, np.int64)}
    b.measures_withheld = None
    a.merge(b)
    np.testing.assert_array_equal(a.measure_right["norm"], np.full((2, 3), 3))
    np.testing.assert_array_equal(a.measure_right["alti"], [[1], [0]])
    c = AtlasSums.empty(2, 3)
    c.merge(a)  # into an empty total: a copy, not a shared array
    c.measure_right["norm"] += 1
    assert int(a.measure_right["norm"][0, 0]) == 3


def test_the_statistics_under_norm_equal_an_independent_mean(
    tiny_bert: Path, corpus: Path, tmp_path: Path
) -> None:
    """to_first, to_self and to_prev under norm: the token-weighted means over every
    eligible row, recomputed from the report engine's norm maps."""
    atlas = build_atlas(str(corpus), ReportConfig(model=str(tiny_bert), measures=("norm",)))
    under = atlas.sums.means_under("norm")
    first = self_ = prev = 0.0
    rows = prev_rows = 0
    for text, _, _ in ITEMS:
        norm = build_report([text], str(tiny_bert), measures=("norm",))
        m = norm.extraction.results[0].maps[0].measures
        assert m is not None and m.norm is not None
        n = m.norm.shape[-1]
        first = first + m.norm[..., :, 0].sum(-1)
        self_ = self_ + np.trace(m.norm, axis1=-2, axis2=-1)
        prev = prev + sum(m.norm[..., i, i - 1] for i in range(1, n))
        rows, prev_rows = rows + n, prev_rows + n - 1
    np.testing.assert_allclose(under["to_first"], first / rows, atol=1e-6)
    np.testing.assert_allclose(under["to_self"], self_ / rows, atol=1e-6)
    np.testing.assert_allclose(under["to_prev"], prev / prev_rows, atol=1e-6)
    # The weights' own statistics are unchanged by asking for norm.
    plain = build_atlas(str(corpus), ReportConfig(model=str(tiny_bert)))
    for name, values in plain.sums.means().items():
        np.testing.assert_allclose(atlas.sums.means()[name], values, atol=1e-9, err_msg=name)
    atlas.export_json(tmp_path / "a.json")
    doc = json.loads((tmp_path / "a.json").read_text())
    assert doc["statistics_by_measure"]["norm"]["to_first"] == [
        [float(v) for v in row] for row in under["to_first"]
    ]
    assert atlas.html().count('<tr data-stat="') == 7
    assert plain.export_data()["statistics_by_measure"] == {}
