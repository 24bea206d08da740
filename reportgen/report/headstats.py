"""One sentence's head-by-head measures: the entropy of every head with a verdict per
layer, and where the focus word looks (its score for each candidate in every head)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from reportgen import analysis, figures
from reportgen.config import AttentionResult
from reportgen.errors import InputError
from reportgen.report.contributions import MeasureInfo, available, measure_maps
from reportgen.report.text import quote, short


@dataclass(frozen=True)
class HeadStats:
    """Entropy of every head and a verdict per layer (primary map)."""

    entropy: np.ndarray  # float64[layers, heads], nats
    normalized: np.ndarray  # float64[layers, heads], entropy / log n
    verdicts: tuple[str, ...]
    figure: dict[str, Any]
    # The one measure the page prints and the verdict uses: each layer's mean head
    # entropy in nats, against ln n (attention spread evenly over n tokens).
    layer_nats: tuple[float, ...] = ()
    max_nats: float = 0.0
    tokens: int = 0
    layer_entropy: tuple[float, ...] = ()  # nats, of each layer's head-averaged map


@dataclass(frozen=True)
class FocusView:
    """The focus word's scores under one measure of the page's Measure choice."""

    measure: MeasureInfo
    scores: np.ndarray  # float64[layers, heads (1 per layer), candidates]
    ranked: tuple[tuple[analysis.RankedHead, ...], ...]  # per candidate, best first
    figures: dict[str, Any]  # "scores": one grid per candidate; "winner" with 2+


@dataclass(frozen=True)
class FocusDoc:
    """Where the focus word looks: per-head scores for each candidate word, under the
    weights and under every context-mixing measure the map carries (`views`, weights
    first; computed once here, read by the focus section and the question table)."""

    word: str
    positions: tuple[int, ...]  # token positions of the focus word (first occurrence)
    candidates: tuple[str, ...]
    candidate_positions: tuple[tuple[int, ...], ...]
    notes: tuple[str, ...]  # e.g. "'it' appears 2 times; the first is used"
    views: tuple[FocusView, ...]
    answer: str | None = None  # the gold antecedent, one of `candidates`, when given

    @property
    def scores(self) -> np.ndarray:
        """The weights' scores, float64[layers, heads, candidates]."""
        return self.views[0].scores

    @property
    def ranked(self) -> tuple[tuple[analysis.RankedHead, ...], ...]:
        return self.views[0].ranked

    @property
    def figures(self) -> dict[str, Any]:
        return self.views[0].figures


def head_stats(attention: np.ndarray) -> HeadStats:
    """Entropy grid (nats) and the per-layer verdicts, both from the same measure."""
    n = attention.shape[-1]
    entropy, layer_entropy = analysis.head_entropies(attention)
    normalized = analysis.normalized_entropy(entropy, n)
    # Mean of normalised entropies >= threshold is the same test as mean nats >= threshold
    # x ln n, so the nats the page prints and the verdict never disagree.
    verdicts = tuple(analysis.layer_verdicts(normalized))
    max_nats = float(np.log(n)) if n > 1 else 0.0
    text = [[f"{e / max_nats if max_nats else 0.0:.2f} of ln n" for e in row] for row in entropy]
    figure = figures.grid_figure(
        entropy,
        title="Entropy of every head (nats)",
        colorbar_title="nats",
        zmin=0.0,
        zmax=max(max_nats, 0.01),
        hover_label="entropy (nats)",
        text=text,
    )
    layer_nats = tuple(float(x) for x in entropy.mean(axis=1))
    return HeadStats(
        entropy,
        normalized,
        verdicts,
        figure,
        layer_nats,
        max_nats,
        n,
        tuple(float(x) for x in layer_entropy),
    )


def focus_doc(result: AttentionResult) -> FocusDoc | None:
    """Locate the focus and candidate words and score every head; None without a focus."""
    item = result.item
    if item.focus is None:
        return None
    seq = result.maps[0].query
    notes: list[str] = []

    def locate(word: str) -> tuple[int, ...]:
        positions, count = analysis.find_word(seq.text, seq.offsets, word)
        if not positions:
            raise InputError(
                f"{item.source}: the word {quote(word)} is not in the sentence "
                f"{quote(short(seq.text))}"
            )
        if count > 1:
            notes.append(f"{quote(word)} appears {count} times; the first is used.")
        return tuple(positions)

    focus = locate(item.focus)
    cand_pos = tuple(locate(c) for c in item.candidates)
    amap = result.maps[0]
    maps = measure_maps(amap)
    views = tuple(
        _focus_view(info, maps[info.id], focus, cand_pos, item.focus, item.candidates)
        for info in available(amap)
    )
    return FocusDoc(
        word=item.focus,
        positions=focus,
        candidates=item.candidates,
        candidate_positions=cand_pos,
        notes=tuple(notes),
        views=views,
        answer=item.answer if item.answer in item.candidates else None,
    )


def _focus_view(
    info: MeasureInfo,
    maps: np.ndarray,
    focus: tuple[int, ...],
    cand_pos: tuple[tuple[int, ...], ...],
    word: str,
    candidates: tuple[str, ...],
) -> FocusView:
    """Score every head (or layer) of one measure's ``[L, H, n, n]`` maps."""
    if cand_pos:
        scores = analysis.focus_scores(maps, focus, cand_pos)
    else:
        scores = np.zeros(maps.shape[:2] + (0,))
    ranked = tuple(analysis.ranked_heads(scores[..., c], k=5) for c in range(len(cand_pos)))
    weights = info.id == "weights"
    under = "" if weights else f" · {info.label}" + (" (per layer)" if info.per_layer else "")
    figs: dict[str, Any] = {
        "scores": [
            figures.grid_figure(
                scores[..., c],
                title=f"{quote(word)} → {quote(w)}{under}",
                colorbar_title="weight" if weights else "share",
                zmin=0.0,
                # One scale for every candidate, so the grids compare at a glance.
                zmax=max(float(scores.max()), 0.01) if scores.size else 1.0,
                hover_label="attention" if weights else info.label,
            )
            for c, w in enumerate(candidates)
        ],
    }
    if len(cand_pos) >= 2:
        winners = analysis.winner_grid(scores)
        names = [[candidates[w] for w in row] for row in winners]
        figs["winner"] = figures.winner_figure(
            winners,
            candidates,
            names,
            title=f"Which candidate {quote(word)} attends to most, per "
            + ("layer" if info.per_layer else "head")
            + under,
        )
    return FocusView(info, scores, ranked, figs)
