"""What the atlas page and the atlas export hold, and how the page is rendered.

:func:`atlas_document` turns the totals into a typed record (no HTML), whose page data
is a :class:`reportgen.store.AtlasRecord` (the format is described in reportgen/store.py);
:func:`render_atlas` renders it through the one `render.render_page` (kind "atlas":
`templates/atlas.html.j2`, plotly.js, `render.ATLAS_SCRIPTS`); :func:`export_data` is the
`--export-json` document of issue 12.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import numpy as np

from reportgen import __version__
from reportgen.atlas.stats import (
    BROAD_LABEL,
    BROAD_THRESHOLD,
    JS_SENTENCES,
    LABEL_RULES,
    MIXED_LABEL,
    SIGNIFICANCE,
    STAT_HELP,
    STAT_INDEX,
    STATS,
    AtlasSums,
    CorefStats,
    Interval,
    MeasureAccuracy,
    classical_mds,
    head_labels,
    measure_accuracies,
)
from reportgen.render import render_page
from reportgen.safety import public_name
from reportgen.store import (
    AtlasCorefRecord,
    AtlasExampleRecord,
    AtlasRecord,
    AtlasSentenceRecord,
    AtlasSettings,
    AtlasSimilarRecord,
    AtlasStatRecord,
    Grid,
)

RANKED = 5  # heads per ranked table
PAGE_DIGITS = 5  # statistics on the page (the export keeps full precision)
MAP_DIGITS = 3  # example maps
MAP_NAMED = 5  # heads named on the map of heads (the others show on hover)
# The coreference grid's colour range: chance -/+ the farthest head's distance from it,
# at least this, so a grid of heads all at chance is not one flat colour by accident.
MIN_COLOUR_SPAN = 0.05


@dataclass(frozen=True)
class RankedRow:
    layer: int  # 1-based, as the page prints it
    head: int
    value: float
    label: str


@dataclass(frozen=True)
class CorefRow:
    layer: int  # 1-based, as the page prints it
    head: int
    value: float
    interval: Interval
    label: str


@dataclass(frozen=True)
class StatSection:
    name: str
    help: str
    ranked: tuple[RankedRow, ...]


@dataclass(frozen=True)
class UnderMeasure:
    """One statistic under weights and under norm, averaged over every head, with the
    head whose value falls the most when the values are counted."""

    name: str
    weights: float
    norm: float
    head: tuple[int, int]  # 1-based layer and head
    head_weights: float
    head_norm: float


def _under_norm(sums: AtlasSums) -> tuple[UnderMeasure, ...]:
    under = sums.means_under("norm")
    out = []
    for name, weights in sums.means().items():
        norm = under.get(name)
        if weights is None or norm is None:
            continue
        drop = weights - norm
        flat = int(np.argmax(drop))  # the first maximum
        layer, head = divmod(flat, sums.heads)
        out.append(
            UnderMeasure(
                name,
                float(weights.mean()),
                float(norm.mean()),
                (layer + 1, head + 1),
                float(weights[layer, head]),
                float(norm[layer, head]),
            )
        )
    return tuple(out)


@dataclass(frozen=True)
class AtlasDocument:
    """Everything the atlas page shows, decided here; the template only lays it out."""

    title: str
    version: str
    model_name: str
    layers: int
    heads: int
    sentences: int
    tokens: int
    truncated: int
    stats: tuple[StatSection, ...]
    labels: tuple[tuple[str, ...], ...]  # [layer][head]
    label_counts: tuple[tuple[str, int], ...]
    rules: tuple[tuple[str, str, str], ...]  # (label, rule text, statistic)
    coref_items: int
    coref_skipped: int
    coref_best: tuple[CorefRow, ...]
    baselines: tuple[tuple[str, float, Interval], ...]  # (name, accuracy, interval)
    coref: CorefStats | None  # intervals, the chance level, the power estimate
    # Coreference under weights and each context-mixing measure asked for (issue 20),
    # and why the measures are withheld for this model, if they are.
    by_measure: tuple[MeasureAccuracy, ...]
    under_norm: tuple[UnderMeasure, ...]  # the statistics under norm (--measures norm)
    measures_withheld: str | None
    significance: float  # the level at which the best head counts as beyond chance
    examples_k: int
    js_sentences: int  # sentences the head-similarity map rests on
    map_named: int  # heads named on the map of heads
    payload: AtlasRecord  # what atlas.js draws (script-safe JSON)


def _round(grid: np.ndarray | None, digits: int) -> Grid | None:
    if grid is None:
        return None
    return tuple(tuple(round(float(v), digits) for v in row) for row in grid)


def public_source(source: str) -> str:
    """An input line ("data/corpus.jsonl line 3", "/x/c.txt:5") as the page may show it:
    the file's own name and the line, never the folders it sits in."""
    for sep in (" line ", ":"):
        file, found, line = source.rpartition(sep)
        if found and file and line.isdigit():
            return f"{PurePath(file).name or file}{sep}{line}"
    return public_name(source)


def _ranked(grid: np.ndarray, labels: list[list[str]], k: int = RANKED) -> tuple[RankedRow, ...]:
    from reportgen.analysis import rank_heads

    return tuple(
        RankedRow(layer + 1, head + 1, value, labels[layer][head])
        for layer, head, value in rank_heads(grid, k)
    )


def atlas_document(
    sums: AtlasSums, model_name: str, title: str | None, coref: CorefStats | None
) -> AtlasDocument:
    """Decide what the page shows from the corpus totals and their coreference
    statistics (:func:`reportgen.atlas.stats.coref_stats`, computed once per atlas)."""
    means = sums.means()
    labels, signature = head_labels(means, sums.max_entropy())
    stats = tuple(
        StatSection(name, STAT_HELP[name], _ranked(grid, labels) if grid is not None else ())
        for name, grid in means.items()
    )
    counts: dict[str, int] = {}
    for row in labels:
        for label in row:
            counts[label] = counts.get(label, 0) + 1
    order = [r[0] for r in LABEL_RULES] + [BROAD_LABEL, MIXED_LABEL]
    rules = tuple(
        (label, f"{stat} ≥ {threshold:g}", stat) for label, stat, threshold in LABEL_RULES
    )
    rules += (
        (
            BROAD_LABEL,
            f"no rule above fires and entropy ≥ {BROAD_THRESHOLD:g} × the mean ln(keys) "
            "of a uniform head",
            "entropy",
        ),
        (MIXED_LABEL, "none of the above", ""),
    )
    accuracy = coref.accuracy if coref is not None else None
    sentences, by_head = _examples(sums, signature)
    payload = AtlasRecord(
        layers=sums.layers,
        heads=sums.heads,
        stats=tuple(AtlasStatRecord(name, _round(means[name], PAGE_DIGITS)) for name in STATS),
        labels=tuple(tuple(row) for row in labels),
        signature=tuple(tuple(row) for row in signature),
        coref=_round(accuracy, PAGE_DIGITS),
        sentences=sentences,
        examples=by_head,
        similar=_similar(sums, labels, accuracy),
        coref_scale=_coref_scale(coref),
    )
    return AtlasDocument(
        title=title or "Head atlas",
        version=__version__,
        model_name=model_name,
        layers=sums.layers,
        heads=sums.heads,
        sentences=sums.sentences,
        tokens=sums.tokens,
        truncated=sums.truncated,
        stats=stats,
        labels=tuple(tuple(r) for r in labels),
        label_counts=tuple((label, counts[label]) for label in order if label in counts),
        rules=rules,
        coref_items=sums.coref_items,
        coref_skipped=sums.coref_skipped,
        coref_best=_coref_best(coref, labels),
        baselines=coref.baselines if coref is not None else (),
        coref=coref,
        by_measure=measure_accuracies(sums),
        under_norm=_under_norm(sums),
        measures_withheld=sums.measures_withheld,
        significance=SIGNIFICANCE,
        examples_k=sums.examples.k if sums.examples is not None else 0,
        js_sentences=min(sums.sentences, JS_SENTENCES),
        map_named=MAP_NAMED,
        payload=payload,
    )


def _examples(
    sums: AtlasSums, signature: list[list[str]]
) -> tuple[tuple[AtlasSentenceRecord, ...], dict[str, tuple[AtlasExampleRecord, ...]]]:
    """Each head's top-k sentences by its signature statistic, with that head's map;
    sentences are listed once and referred to by index."""
    ex = sums.examples
    heads: dict[str, tuple[AtlasExampleRecord, ...]] = {}
    sentence_index: dict[int, int] = {}
    sentences: list[AtlasSentenceRecord] = []
    if ex is None:
        return (), heads
    for layer in range(sums.layers):
        for head in range(sums.heads):
            stat = STAT_INDEX[signature[layer][head]]
            rows = []
            for value, seq in zip(
                ex.value[stat, layer, head], ex.seq[stat, layer, head], strict=True
            ):
                if seq < 0:
                    continue
                s = int(seq)
                if s not in sentence_index:
                    sentence_index[s] = len(sentences)
                    source, tokens = ex.sentences[s]
                    sentences.append(AtlasSentenceRecord(public_source(source), tuple(tokens)))
                rows.append(
                    AtlasExampleRecord(
                        sentence=sentence_index[s],
                        value=round(float(value), PAGE_DIGITS),
                        map=_round(ex.maps[(s, layer, head)], MAP_DIGITS) or (),
                    )
                )
            heads[f"{layer}-{head}"] = tuple(rows)
    return tuple(sentences), heads


def _coref_best(coref: CorefStats | None, labels: list[list[str]]) -> tuple[CorefRow, ...]:
    if coref is None:
        return ()
    return tuple(
        CorefRow(
            row.layer,
            row.head,
            row.value,
            Interval(
                float(coref.low[row.layer - 1, row.head - 1]),
                float(coref.high[row.layer - 1, row.head - 1]),
            ),
            row.label,
        )
        for row in _ranked(coref.accuracy, labels)
    )


def _coref_scale(coref: CorefStats | None) -> AtlasCorefRecord | None:
    """The grid's intervals and a diverging colour range centred on chance, so a head
    below chance and one above it differ in hue, not only in shade."""
    if coref is None:
        return None
    span = max(float(np.abs(coref.accuracy - coref.chance).max()), MIN_COLOUR_SPAN)
    return AtlasCorefRecord(
        low=_round(coref.low, PAGE_DIGITS) or (),
        high=_round(coref.high, PAGE_DIGITS) or (),
        chance=round(coref.chance, PAGE_DIGITS),
        zmin=round(coref.chance - span, PAGE_DIGITS),
        zmax=round(coref.chance + span, PAGE_DIGITS),
    )


def _similar(
    sums: AtlasSums, labels: list[list[str]], accuracy: np.ndarray | None
) -> AtlasSimilarRecord | None:
    """Heads laid out in 2-D so that heads whose rows have a small mean Jensen-Shannon
    divergence sit close (classical MDS), as in Clark et al. (2019), Figure 6. Only
    :data:`MAP_NAMED` heads are named (at 30 x 9 heads every name would overlap): the
    most accurate on the coreference items, or without them the farthest from the
    map's centre (the most distinct)."""
    distance = sums.js_distance()
    if distance is None or distance.shape[0] < 3:
        return None
    xy = classical_mds(distance)
    heads = sums.heads
    count = distance.shape[0]
    if accuracy is not None:
        score = accuracy.ravel()
    else:
        score = np.round(np.linalg.norm(xy - xy.mean(0), axis=1), 12)  # no float-noise ties
    named = np.lexsort((np.arange(count), -score))[:MAP_NAMED]  # ties: layer-major order
    return AtlasSimilarRecord(
        x=tuple(round(float(v), PAGE_DIGITS) for v in xy[:, 0]),
        y=tuple(round(float(v), PAGE_DIGITS) for v in xy[:, 1]),
        layer=tuple(i // heads for i in range(count)),
        head=tuple(i % heads for i in range(count)),
        label=tuple(labels[i // heads][i % heads] for i in range(count)),
        labelled=tuple(int(i) for i in named),
    )


def render_atlas(doc: AtlasDocument) -> str:
    """The atlas page (render.render_page, kind "atlas")."""
    from reportgen.figures import HEATMAP_SIZE

    return render_page("atlas", {"doc": doc, "settings": AtlasSettings(HEATMAP_SIZE)})


def export_data(sums: AtlasSums, model_name: str, coref: CorefStats | None) -> dict[str, Any]:
    """The `--export-json` document, every grid [layer][head] at full precision; the
    coreference statistics are `coref`'s (the page's own), layers and heads 0-based."""

    def grid(values: np.ndarray | None) -> list[list[float]] | None:
        return None if values is None else [[float(v) for v in row] for row in values]

    return {
        "model": {"name": public_name(model_name), "layers": sums.layers, "heads": sums.heads},
        "sentences": sums.sentences,
        "tokens": sums.tokens,
        "statistics": {name: grid(values) for name, values in sums.means().items()},
        # The same statistics under norm (--measures norm), keyed the same way.
        "statistics_by_measure": {
            measure: {name: grid(values) for name, values in sums.means_under(measure).items()}
            for measure in sums.measure_sums
        },
        "coreference": {
            "items": sums.coref_items,
            "skipped": sums.coref_skipped,
            "accuracy": grid(coref.accuracy if coref is not None else None),
            "baselines": sums.baselines(),
            **_export_uncertainty(coref),
            # Under each measure asked for: [layer][head], or [layer][1] per layer.
            "by_measure": {
                m.measure: {
                    "per_layer": m.per_layer,
                    "accuracy": grid(m.accuracy),
                    "best": {"layer": m.best[0], "head": m.best[1]},
                    "interval": [m.best_interval.low, m.best_interval.high],
                }
                for m in measure_accuracies(sums)
            },
            "measures_withheld": sums.measures_withheld,
        },
    }


def _export_uncertainty(coref: CorefStats | None) -> dict[str, Any]:
    """The intervals and the chance level (null without scored items)."""
    if coref is None:
        return {"interval": None, "baseline_intervals": None, "chance": None}
    level = coref.chance_level
    layer, head = coref.best
    return {
        "interval": {
            "method": "wilson",
            "confidence": 0.95,
            "low": [[float(v) for v in row] for row in coref.low],
            "high": [[float(v) for v in row] for row in coref.high],
        },
        "baseline_intervals": {
            name: [interval.low, interval.high] for name, _, interval in coref.baselines
        },
        "chance": {
            "random_pick": coref.chance,
            "best_head": {
                "layer": layer,
                "head": head,
                "accuracy": coref.best_accuracy,
                "interval": [coref.best_interval.low, coref.best_interval.high],
            },
            "rounds": level.rounds,
            "seed": level.seed,
            "percentile_95": level.percentile_95,
            "at_or_above": level.at_or_above,
            "p_value": level.p_value,
            "distinguishable": level.distinguishable,
            "items_needed": coref.items_needed,
        },
    }
