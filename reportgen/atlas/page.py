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
    STAT_HELP,
    STAT_INDEX,
    STATS,
    AtlasSums,
    classical_mds,
    head_labels,
)
from reportgen.render import render_page
from reportgen.safety import public_name
from reportgen.store import (
    AtlasExampleRecord,
    AtlasRecord,
    AtlasSentenceRecord,
    AtlasSimilarRecord,
    AtlasStatRecord,
    Grid,
)

RANKED = 5  # heads per ranked table
PAGE_DIGITS = 5  # statistics on the page (the export keeps full precision)
MAP_DIGITS = 3  # example maps


@dataclass(frozen=True)
class RankedRow:
    layer: int  # 1-based, as the page prints it
    head: int
    value: float
    label: str


@dataclass(frozen=True)
class StatSection:
    name: str
    help: str
    ranked: tuple[RankedRow, ...]


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
    coref_best: tuple[RankedRow, ...]
    baselines: tuple[tuple[str, float | None], ...]
    examples_k: int
    js_sentences: int  # sentences the head-similarity map rests on
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


def atlas_document(sums: AtlasSums, model_name: str, title: str | None = None) -> AtlasDocument:
    """Decide what the page shows from the corpus totals."""
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
    accuracy = sums.accuracy()
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
        similar=_similar(sums, labels),
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
        coref_best=_ranked(accuracy, labels) if accuracy is not None else (),
        baselines=tuple(sums.baselines().items()),
        examples_k=sums.examples.k if sums.examples is not None else 0,
        js_sentences=min(sums.sentences, JS_SENTENCES),
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


def _similar(sums: AtlasSums, labels: list[list[str]]) -> AtlasSimilarRecord | None:
    """Heads laid out in 2-D so that heads whose rows have a small mean Jensen-Shannon
    divergence sit close (classical MDS), as in Clark et al. (2019), Figure 6."""
    distance = sums.js_distance()
    if distance is None or distance.shape[0] < 3:
        return None
    xy = classical_mds(distance)
    heads = sums.heads
    count = distance.shape[0]
    return AtlasSimilarRecord(
        x=tuple(round(float(v), PAGE_DIGITS) for v in xy[:, 0]),
        y=tuple(round(float(v), PAGE_DIGITS) for v in xy[:, 1]),
        layer=tuple(i // heads for i in range(count)),
        head=tuple(i % heads for i in range(count)),
        label=tuple(labels[i // heads][i % heads] for i in range(count)),
    )


def render_atlas(doc: AtlasDocument) -> str:
    """The atlas page (render.render_page, kind "atlas")."""
    return render_page("atlas", {"doc": doc})


def export_data(sums: AtlasSums, model_name: str) -> dict[str, Any]:
    """The `--export-json` document, every grid [layer][head] at full precision."""

    def grid(values: np.ndarray | None) -> list[list[float]] | None:
        return None if values is None else [[float(v) for v in row] for row in values]

    accuracy = sums.accuracy()
    return {
        "model": {"name": public_name(model_name), "layers": sums.layers, "heads": sums.heads},
        "sentences": sums.sentences,
        "tokens": sums.tokens,
        "statistics": {name: grid(values) for name, values in sums.means().items()},
        "coreference": {
            "items": sums.coref_items,
            "skipped": sums.coref_skipped,
            "accuracy": grid(accuracy),
            "baselines": sums.baselines(),
        },
    }
