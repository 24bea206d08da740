"""The lab's question under each measure: weights, and the context-mixing measures of
:mod:`reportgen.mixing` (how much each token contributes, counting values and the
residual stream). What the page says about each measure is written here once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from reportgen import analysis
from reportgen.config import AttentionMap


@dataclass(frozen=True)
class MeasureInfo:
    """One entry of the page's Measure choice."""

    id: str  # "weights", "norm", "norm_layer", "alti", "alti_rollout"
    label: str
    per_layer: bool  # no heads: views show one map per layer and say so
    about: str  # two sentences and the citation


WEIGHTS = MeasureInfo(
    "weights",
    "Weights",
    False,
    "The attention weights: how much each query spreads over the keys, before the values "
    "are read. They say nothing about how much of each token actually arrives.",
)
MEASURES = (
    WEIGHTS,
    MeasureInfo(
        "norm",
        "Norm",
        False,
        "Each weight times the length of the key's value vector after the head's output "
        "projection, ||alpha f(x_j)||, rows normalised: a token with a tiny value counts "
        'little however much weight it gets (Kobayashi et al. 2020, "Attention is Not '
        'Only a Weight").',
    ),
    MeasureInfo(
        "norm_layer",
        "Norm (layer)",
        True,
        "The length of everything the layer's heads together carry from key j to query i, "
        "|| sum_h alpha f_h(x_j) ||, rows normalised: one map per layer (Kobayashi et al. "
        "2020).",
    ),
    MeasureInfo(
        "alti",
        "ALTI",
        True,
        "How close each token's transformed share, residual connection and layer norm "
        "included, comes to the block's output: a token's own information travelling "
        "through the residual counts too (Ferrando et al. 2022, ALTI). One map per layer.",
    ),
    MeasureInfo(
        "alti_rollout",
        "ALTI rollout",
        True,
        "ALTI multiplied through the layers, R^l = C^l R^(l-1): how much each input token "
        "contributes to token i after layer l (Ferrando et al. 2022).",
    ),
)
CAVEAT = (
    "Contributions, like weights, describe how information mixes; neither explains why "
    "the model decides what it does."
)


def measure_maps(amap: AttentionMap) -> dict[str, np.ndarray]:
    """Every measure the map carries as ``[L, H, n, n]`` (per-layer measures with one
    "head"), weights first."""
    out: dict[str, np.ndarray] = {"weights": amap.attention}
    m = amap.measures
    if m is None:
        return out
    for info in MEASURES[1:]:
        value = getattr(m, info.id)
        if value is not None:
            out[info.id] = value if value.ndim == 4 else value[:, None]
    return out


def available(amap: AttentionMap) -> tuple[MeasureInfo, ...]:
    """The page's Measure choices for this map, in the order of MEASURES."""
    maps = measure_maps(amap)
    return tuple(info for info in MEASURES if info.id in maps)


@dataclass(frozen=True)
class QuestionRow:
    """Under one measure: in how many heads (or layers) each candidate gets the most."""

    measure: str
    label: str
    unit: str  # "heads" or "layers"
    wins: tuple[int, ...]  # per candidate
    total: int


def question_rows(scored: Sequence[tuple[MeasureInfo, np.ndarray]]) -> tuple[QuestionRow, ...]:
    """The focus word's favourite candidate counted under every measure: `scored` holds
    each measure's focus scores ``[L, H, candidates]`` (the focus section's, computed
    once in :func:`reportgen.report.headstats.focus_doc`)."""
    rows = []
    for info, scores in scored:
        winners = analysis.winner_grid(scores)
        wins = tuple(int((winners == c).sum()) for c in range(scores.shape[-1]))
        unit = "layers" if info.per_layer else "heads"
        rows.append(QuestionRow(info.id, info.label, unit, wins, int(winners.size)))
    return tuple(rows)


@dataclass(frozen=True)
class PairRow:
    """Under one measure: how many heads (or layers) are right in both sentences of a
    minimal pair, and the best one with its margins (expected minus the best other)."""

    measure: str
    label: str
    unit: str
    right_in_both: int
    total: int
    best: tuple[int, int]  # 0-based layer and head (head 0 for a per-layer measure)
    margin_a: float
    margin_b: float


def _margin(row: np.ndarray, want: int) -> float:
    """The expected candidate's score minus the best other's."""
    return float(row[want] - np.delete(row, want).max())


def pair_rows(
    a: AttentionMap,
    b: AttentionMap,
    focus_a: tuple[tuple[int, ...], tuple[tuple[int, ...], ...]],
    focus_b: tuple[tuple[int, ...], tuple[tuple[int, ...], ...]],
    expected: tuple[int, int],
) -> tuple[PairRow, ...]:
    """The minimal pair's answer under every measure both maps have."""
    maps_a, maps_b = measure_maps(a), measure_maps(b)
    rows = []
    for info in available(a):
        if info.id not in maps_b:
            continue
        sa = analysis.focus_scores(maps_a[info.id], *focus_a)
        sb = analysis.focus_scores(maps_b[info.id], *focus_b)
        answer = analysis.pair_answer(sa, sb, *expected)
        rows.append(
            PairRow(
                info.id,
                info.label,
                "layers" if info.per_layer else "heads",
                answer.correct,
                answer.total,
                answer.head,
                _margin(sa[answer.head], expected[0]),
                _margin(sb[answer.head], expected[1]),
            )
        )
    return tuple(rows)
