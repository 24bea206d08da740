"""Decide what the report shows: turn an :class:`Extraction` into a :class:`ReportDocument`.

This is where analysis results meet the page's needs (labels, numbering, the
compact attention store); nothing here renders HTML.
"""

from __future__ import annotations

import base64
import gzip
from dataclasses import dataclass
from typing import Any

import numpy as np

from reportgen import analysis, figures
from reportgen.config import (
    SEED_HEAD,
    SEED_LAYER,
    AttentionMap,
    AttentionResult,
    Extraction,
    ModelInfo,
    NextToken,
    ReportConfig,
    TokenSeq,
)
from reportgen.errors import InputError
from reportgen.headview import LAYER_AT_A_TIME_TOKENS, PAIR_FILTERS
from reportgen.nexttoken import NextDoc, next_doc


@dataclass(frozen=True)
class HeadChoice:
    """The head the heatmaps show first (0-based) and why."""

    layer: int
    head: int
    note: str


@dataclass(frozen=True)
class FocusDoc:
    """Where the focus word looks: per-head scores for each candidate word."""

    word: str
    positions: tuple[int, ...]  # token positions of the focus word (first occurrence)
    candidates: tuple[str, ...]
    candidate_positions: tuple[tuple[int, ...], ...]
    notes: tuple[str, ...]  # e.g. "'it' appears 2 times; the first is used"
    scores: np.ndarray  # float64[layers, heads, candidates]
    ranked: tuple[tuple[analysis.RankedHead, ...], ...]  # per candidate, best first
    figures: dict[str, Any]


@dataclass(frozen=True)
class HeadStats:
    """Entropy of every head and a verdict per layer (primary map)."""

    entropy: np.ndarray  # float64[layers, heads], nats
    normalized: np.ndarray  # float64[layers, heads], entropy / log n
    verdicts: tuple[str, ...]
    figure: dict[str, Any]
    layer_entropy: tuple[float, ...] = ()  # nats, of each layer's head-averaged map


@dataclass(frozen=True)
class PairDoc:
    """A minimal pair: two sentences compared head by head."""

    number: int
    anchor: str
    a: int  # 0-based index into ReportDocument.sentences
    b: int
    headline: str | None  # computed sentence, when both have a focus word and 2 candidates
    best: tuple[int, int] | None  # 0-based head the pair view ranks first
    chosen: tuple[int, int]  # head the submission block shows
    aligned_by: str  # "tokens" or "words"
    focus_difference: (
        np.ndarray | None
    )  # float64[layers, heads]: A's minus B's weight on candidate 0
    figures: dict[str, Any]
    payload: dict[str, Any]


@dataclass(frozen=True)
class SentenceDoc:
    """One sentence's section of the report."""

    number: int  # 1-based, as the report numbers sentences
    anchor: str
    text: str
    text_pair: str | None
    tokens: tuple[str, ...]  # raw tokens, as the tokenizer prints them
    map_names: tuple[str, ...]
    causal: bool
    layer_entropy: tuple[float, ...]  # nats, of each layer's head-averaged map (primary map)
    truncated: bool
    next_tokens: tuple[NextToken, ...]
    payload: dict[str, Any]  # what report.js reads: the compact store and labels
    stats: HeadStats
    focus: FocusDoc | None = None
    next: NextDoc | None = None  # causal models: the next-token view
    readable_tokens: tuple[str, ...] = ()  # tokens without markers ("Ġthe" -> "the")


@dataclass(frozen=True)
class ReportDocument:
    """Everything the templates need, already decided."""

    title: str
    version: str
    model: ModelInfo
    start: HeadChoice
    sentences: tuple[SentenceDoc, ...]
    warnings: tuple[str, ...]
    figure_specs: dict[str, Any]
    verdict_rule: str
    pairs: tuple[PairDoc, ...] = ()


def choose_head(model: ModelInfo, layer: int | None, head: int | None) -> HeadChoice:
    """Validate `--layer/--head` (1-based) or fall back to the seed lab's head."""
    for flag, value, limit in (("--layer", layer, model.layers), ("--head", head, model.heads)):
        if value is not None and not 1 <= value <= limit:
            what = "layers" if flag == "--layer" else "heads"
            raise InputError(
                f"{flag} {value} is out of range: this model has {what} 1-{limit} (1-based)"
            )
    if layer is not None or head is not None:
        lay = layer if layer is not None else min(SEED_LAYER, model.layers)
        hd = head if head is not None else 1
        return HeadChoice(
            lay - 1, hd - 1, f"Layer {lay}, Head {hd}, as chosen with --layer/--head."
        )
    if model.layers >= SEED_LAYER and model.heads >= SEED_HEAD:
        return HeadChoice(
            SEED_LAYER - 1,
            SEED_HEAD - 1,
            f"Layer {SEED_LAYER}, Head {SEED_HEAD}: the seed lab's coreference head.",
        )
    return HeadChoice(
        model.layers - 1,
        0,
        f"Layer {model.layers}, Head 1: this model has no Layer {SEED_LAYER}, Head {SEED_HEAD} "
        f"(the seed lab's coreference head), so the last layer's first head is shown first.",
    )


# Maps up to this many values get gzip's slowest, smallest level (see pack_attention).
PACK_LEVEL9_VALUES = 1 << 20


def pack_attention(attention: np.ndarray) -> tuple[str, int]:
    """Quantise rows (sum-preserving) and pack as gzip+base64 of two byte planes.

    Low bytes then high bytes: the high plane is almost all zeros and compresses
    to nearly nothing, which halves the cost of 16-bit values.
    """
    q = analysis.quantize_rows(attention).astype("<u2").ravel()
    planes = np.concatenate([(q & 0xFF).astype(np.uint8), (q >> 8).astype(np.uint8)])
    # Level 9 gains ~15% over 6 on big maps but costs 5x the time there (8 s instead of
    # 1.6 s for 12 x 12 x 512 x 512); small maps keep the smallest output.
    level = 9 if q.size <= PACK_LEVEL9_VALUES else 6
    data = gzip.compress(planes.tobytes(), compresslevel=level, mtime=0)
    return base64.b64encode(data).decode("ascii"), analysis.QUANT_SCALE


def _seq_payload(seq: TokenSeq) -> dict[str, Any]:
    return {
        "tokens": list(seq.display),
        "words": analysis.word_groups(seq.word_ids),
        "special": list(seq.special),
    }


def _map_payload(amap: AttentionMap, q: int, k: int) -> dict[str, Any]:
    data, scale = pack_attention(amap.attention)
    layers, heads, nq, nk = amap.attention.shape
    return {
        "name": amap.name,
        "causal": amap.causal,
        "layers": layers,
        "heads": heads,
        "nq": nq,
        "nk": nk,
        "q": q,
        "k": k,
        "bStart": amap.sentence_b_start,
        "scale": scale,
        "data": data,
    }


def sentence_payload(result: AttentionResult) -> dict[str, Any]:
    """The JSON one sentence's views read: token sequences and packed maps."""
    seqs: list[TokenSeq] = []

    def seq_index(seq: TokenSeq) -> int:
        for i, known in enumerate(seqs):
            if known is seq or known == seq:
                return i
        seqs.append(seq)
        return len(seqs) - 1

    maps = [_map_payload(m, seq_index(m.query), seq_index(m.key)) for m in result.maps]
    n = result.maps[0].attention.shape[-1]
    seq_payloads = [_seq_payload(s) for s in seqs]
    for amap, mp in zip(result.maps, maps, strict=True):
        if amap.sentence_b_start is not None:  # every view of this sequence marks segment B
            for side in ("q", "k"):
                seq_payloads[mp[side]]["bStart"] = amap.sentence_b_start
    return {
        "seqs": seq_payloads,
        "maps": maps,
        "layerAtATime": n > LAYER_AT_A_TIME_TOKENS,
    }


def head_stats(attention: np.ndarray) -> HeadStats:
    """Entropy grid (nats and normalised) and the per-layer verdicts."""
    n = attention.shape[-1]
    entropy, layer_entropy = analysis.head_entropies(attention)
    normalized = analysis.normalized_entropy(entropy, n)
    verdicts = tuple(analysis.layer_verdicts(normalized))
    text = [[f"{e:.3f} nats" for e in row] for row in entropy]
    figure = figures.grid_figure(
        normalized,
        title="Entropy of every head (normalised by log n)",
        colorbar_title="H / log n",
        zmin=0.0,
        zmax=1.0,
        hover_label="normalised entropy",
        text=text,
    )
    return HeadStats(entropy, normalized, verdicts, figure, tuple(float(x) for x in layer_entropy))


def _quote(word: str) -> str:
    return f"'{word}'"


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
                f"{item.source}: the word {_quote(word)} is not in the sentence "
                f"{_quote(_short(seq.text))}"
            )
        if count > 1:
            notes.append(f"{_quote(word)} appears {count} times; the first is used.")
        return tuple(positions)

    focus = locate(item.focus)
    cand_pos = tuple(locate(c) for c in item.candidates)
    if cand_pos:
        scores = analysis.focus_scores(result.maps[0].attention, focus, cand_pos)
    else:
        scores = np.zeros(result.maps[0].attention.shape[:2] + (0,))
    ranked = tuple(analysis.ranked_heads(scores[..., c], k=5) for c in range(len(cand_pos)))
    figs: dict[str, Any] = {
        "scores": [
            figures.grid_figure(
                scores[..., c],
                title=f"{_quote(item.focus)} → {_quote(word)}",
                colorbar_title="weight",
                zmin=0.0,
                # One scale for every candidate, so the grids compare at a glance.
                zmax=max(float(scores.max()), 0.01) if scores.size else 1.0,
                hover_label="attention",
            )
            for c, word in enumerate(item.candidates)
        ],
    }
    if len(cand_pos) >= 2:
        winners = analysis.winner_grid(scores)
        names = [[item.candidates[w] for w in row] for row in winners]
        figs["winner"] = figures.winner_figure(
            winners,
            item.candidates,
            names,
            title=f"Which candidate {_quote(item.focus)} attends to most, per head",
        )
    return FocusDoc(
        word=item.focus,
        positions=focus,
        candidates=item.candidates,
        candidate_positions=cand_pos,
        notes=tuple(notes),
        scores=scores,
        ranked=ranked,
        figures=figs,
    )


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def sentence_doc(number: int, result: AttentionResult) -> SentenceDoc:
    """Numbers and payload for one sentence's section."""
    primary = result.maps[0]
    focus = focus_doc(result)
    payload = sentence_payload(result)
    nxt = next_doc(result)
    if nxt is not None:
        payload["next"] = nxt.payload()
    if focus is not None:
        payload["focus"] = {
            "word": focus.word,
            "positions": list(focus.positions),
            "candidates": [
                {"word": w, "positions": list(p)}
                for w, p in zip(focus.candidates, focus.candidate_positions, strict=True)
            ],
        }
    stats = head_stats(primary.attention)
    payload["figures"] = {"entropy": stats.figure}
    if focus is not None:
        for c, fig in enumerate(focus.figures["scores"]):
            payload["figures"][f"focus{c}"] = fig
        if "winner" in focus.figures:
            payload["figures"]["winner"] = focus.figures["winner"]
    return SentenceDoc(
        number=number,
        anchor=f"s{number}",
        text=result.item.text,
        text_pair=result.item.text_pair,
        tokens=primary.query.tokens,
        map_names=tuple(m.name for m in result.maps),
        causal=primary.causal,
        layer_entropy=stats.layer_entropy,
        truncated=result.truncated,
        next_tokens=result.next_tokens,
        payload=payload,
        stats=stats,
        focus=focus,
        next=nxt,
        readable_tokens=primary.query.display,
    )


def _words(seq: TokenSeq) -> list[str]:
    groups = analysis.word_groups(seq.word_ids)
    return ["".join(seq.display[i] for i in g) for g in groups]


def pair_doc(
    number: int,
    a: int,
    b: int,
    results: tuple[AttentionResult, ...],
    sentences: tuple[SentenceDoc, ...],
    start: HeadChoice,
    config: ReportConfig,
) -> PairDoc:
    """Compare sentences a and b: alignment, focus difference, headline, submission head."""
    ra, rb = results[a], results[b]
    sa, sb = sentences[a], sentences[b]
    seq_a, seq_b = ra.maps[0].query, rb.maps[0].query
    same_length = len(seq_a.tokens) == len(seq_b.tokens)
    alignment = analysis.align_words(_words(seq_a), _words(seq_b))
    headline = None
    best = None
    diff = None
    figs: dict[str, Any] = {}
    fa, fb = sa.focus, sb.focus
    comparable = (
        fa is not None
        and fb is not None
        and len(fa.candidates) >= 2
        and fa.scores.shape == fb.scores.shape
    )
    if comparable and fa is not None and fb is not None:
        summary = analysis.pair_summary(
            fa.scores, fb.scores, fa.word, (fa.candidates[0], fa.candidates[1])
        )
        headline, best = summary.sentence, summary.best
        diff = fa.scores[..., 0] - fb.scores[..., 0]
        figs["focusDiff"] = figures.grid_figure(
            diff,
            title=f"{_quote(fa.word)} → {_quote(fa.candidates[0])}: A minus B",
            colorbar_title="A - B",
            # Symmetric around the largest difference, so small ones still show.
            zmin=-max(float(np.abs(diff).max()), 0.01),
            zmax=max(float(np.abs(diff).max()), 0.01),
            diverging=True,
            hover_label="difference",
        )
        if best is None:
            top = fa.ranked[0][0]
            best = (top.layer, top.head)
    chosen = (start.layer, start.head)
    if config.layer is None and config.head is None and best is not None:
        chosen = best
    return PairDoc(
        number=number,
        anchor=f"p{number}",
        a=a,
        b=b,
        headline=headline,
        best=best,
        chosen=chosen,
        aligned_by="tokens" if same_length else "words",
        focus_difference=diff,
        figures=figs,
        payload={
            "figures": figs,
            "a": sa.anchor,
            "b": sb.anchor,
            "alignment": [list(p) for p in alignment],
            "chosen": list(chosen),
        },
    )


def build_document(
    extraction: Extraction,
    config: ReportConfig,
    version: str,
    pairs_of: tuple[tuple[int, int], ...] = (),
) -> ReportDocument:
    """Assemble the report's content from the extraction and the options."""
    model = extraction.model
    start = choose_head(model, config.layer, config.head)
    sentences = tuple(sentence_doc(i, r) for i, r in enumerate(extraction.results, start=1))
    pairs = tuple(
        pair_doc(number, a, b, extraction.results, sentences, start, config)
        for number, (a, b) in enumerate(pairs_of, start=1)
    )
    warnings = list(extraction.warnings)
    title = config.title or "Attention report"
    return ReportDocument(
        title=title,
        version=version,
        model=model,
        start=start,
        sentences=sentences,
        warnings=tuple(warnings),
        figure_specs={
            "attention": figures.attention_heatmap_spec(),
            "difference": figures.attention_heatmap_spec(diverging=True, colorbar_title="A - B"),
        },
        verdict_rule=analysis.VERDICT_RULE,
        pairs=pairs,
    )


def page_config(doc: ReportDocument) -> dict[str, Any]:
    """Report-wide settings for report.js."""
    return {
        "startLayer": doc.start.layer,
        "startHead": doc.start.head,
        "layers": doc.model.layers,
        "heads": doc.model.heads,
        "figures": doc.figure_specs,
        "pairFilters": [name for name, _ in PAIR_FILTERS],
        "layerAtATimeTokens": LAYER_AT_A_TIME_TOKENS,
    }


def export_extras(
    doc: ReportDocument, extraction: Extraction
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The analysis numbers `--export-json` carries beside the raw attention."""
    items: list[dict[str, Any]] = []
    for sdoc, result in zip(doc.sentences, extraction.results, strict=True):
        attention = result.maps[0].attention
        extra: dict[str, Any] = {
            "entropy": {
                "nats": sdoc.stats.entropy.tolist(),
                "normalized": sdoc.stats.normalized.tolist(),
                "layer_verdicts": list(sdoc.stats.verdicts),
                "rule": doc.verdict_rule,
            },
            "rollout": analysis.rollout(attention).tolist(),
        }
        if sdoc.focus is not None:
            f = sdoc.focus
            extra["focus"] = {
                "word": f.word,
                "positions": list(f.positions),
                "notes": list(f.notes),
                "candidates": [
                    {"word": w, "positions": list(p), "scores": f.scores[..., c].tolist()}
                    for c, (w, p) in enumerate(
                        zip(f.candidates, f.candidate_positions, strict=True)
                    )
                ],
            }
        if sdoc.next is not None:
            extra["next_token_heads"] = [
                {
                    "from": src.label,
                    "positions": list(src.positions),
                    "words": [
                        {
                            "word": w.word,
                            "positions": list(w.positions),
                            "heads": [
                                {"layer": h.layer, "head": h.head, "value": h.value}
                                for h in w.heads
                            ],
                        }
                        for w in src.words
                    ],
                }
                for src in sdoc.next.sources
            ]
        items.append(extra)
    pairs = [
        {
            "a": p.a,
            "b": p.b,
            "headline": p.headline,
            "best_head": list(p.best) if p.best is not None else None,
            "focus_difference": (
                p.focus_difference.tolist() if p.focus_difference is not None else None
            ),
        }
        for p in doc.pairs
    ]
    return items, pairs
