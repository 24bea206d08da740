"""One sentence's section: its facts, its measures and the record its views read."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from reportgen import analysis, store
from reportgen.config import AttentionMap, AttentionResult, TokenSeq
from reportgen.headview import LAYER_AT_A_TIME_TOKENS
from reportgen.nexttoken import NextDoc, next_doc
from reportgen.report.contributions import QuestionRow, available, measure_maps, question_rows
from reportgen.report.headstats import FocusDoc, HeadStats, focus_doc, head_stats
from reportgen.store import (
    CandidateRecord,
    FocusRecord,
    MeasureRecord,
    QKRecord,
    SentenceRecord,
    SeqRecord,
)


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
    payload: SentenceRecord  # what the page reads (see reportgen.store)
    stats: HeadStats
    focus: FocusDoc | None = None
    next: NextDoc | None = None  # causal models: the next-token view
    readable_tokens: tuple[str, ...] = ()  # tokens without markers ("Ġthe" -> "the")
    # The lab's question under every measure the first map has (weights first); empty
    # without a focus word and candidates or without context-mixing measures.
    questions: tuple[QuestionRow, ...] = ()


def seq_record(seq: TokenSeq, b_start: int | None) -> SeqRecord:
    """A token sequence as the page labels it (see ``store.SeqRecord``)."""
    return SeqRecord(
        tokens=seq.display,
        words=tuple(tuple(g) for g in analysis.word_groups(seq.word_ids)),
        special=seq.special,
        b_start=b_start,
    )


def seq_indexer(seqs: list[TokenSeq]) -> Callable[[TokenSeq], int]:
    """Index of a token sequence in `seqs`, appended once: maps that share a sequence
    (self-attention's query and key) store it once."""

    def seq_index(seq: TokenSeq) -> int:
        for i, known in enumerate(seqs):
            if known is seq or known == seq:
                return i
        seqs.append(seq)
        return len(seqs) - 1

    return seq_index


def qk_record(amap: AttentionMap) -> QKRecord | None:
    """The first map's queries and keys for the page's "why this weight" panel, packed
    half, with the largest error of weights rebuilt from those half values (float64, as
    the page rebuilds them) against the extraction's weights; None where not captured."""
    qk = amap.qk
    if qk is None:
        return None
    half = [None if a is None else a.astype(np.float16) for a in (qk.queries, qk.keys, qk.bias)]
    q, k, bias = half
    assert q is not None and k is not None
    rebuilt = analysis.weights_from_qk(q, k, qk.scaling, bias, amap.causal)
    layers, heads, n, d = q.shape
    return QKRecord(
        layers=layers,
        heads=heads,
        kv_heads=k.shape[1],
        head_dim=d,
        n=n,
        scaling=qk.scaling,
        rotary=qk.rotary,
        q=store.pack_half(q),
        k=store.pack_half(k),
        bias=None if bias is None else store.pack_half(bias),
        error=_round_up(float(np.abs(rebuilt - amap.attention).max(initial=0.0))),
    )


def _round_up(x: float) -> float:
    """Two significant digits, rounded up: the page states the error as a bound."""
    if x <= 0:
        return 0.0
    step = 10.0 ** (math.floor(math.log10(x)) - 1)
    return float(f"{math.ceil(x / step) * step:.2g}")


def sentence_record(
    result: AttentionResult,
    figs: dict[str, Any],
    focus: FocusRecord | None = None,
    nxt: store.NextRecord | None = None,
) -> SentenceRecord:
    """The record one sentence's views read: token sequences and packed maps."""
    seqs: list[TokenSeq] = []
    seq_index = seq_indexer(seqs)

    maps = tuple(
        store.map_record(
            m.id,
            m.name,
            m.attention,
            causal=m.causal,
            query_seq=seq_index(m.query),
            key_seq=seq_index(m.key),
            b_start=m.sentence_b_start,
        )
        for m in result.maps
    )
    # Every view of a sequence marks segment B where any map over it has one.
    b_starts: dict[int, int] = {}
    for mp in maps:
        if mp.b_start is not None:
            b_starts[mp.query_seq] = b_starts[mp.key_seq] = mp.b_start
    # The first map's context-mixing measures, packed as its weights; the page swaps one in
    # for the weights when the Measure choice names it (store.js RG.decodedMaps).
    primary, first = result.maps[0], maps[0]
    measured = measure_maps(primary)
    measures = tuple(
        MeasureRecord(
            info.id,
            store.map_record(
                primary.id,
                f"{first.name} · {info.label}",
                measured[info.id],
                causal=first.causal,
                query_seq=first.query_seq,
                key_seq=first.key_seq,
                b_start=first.b_start,
            ),
        )
        for info in available(primary)[1:]
    )
    n = result.maps[0].attention.shape[-1]
    return SentenceRecord(
        seqs=tuple(seq_record(s, b_starts.get(i)) for i, s in enumerate(seqs)),
        maps=maps,
        layer_at_a_time=n > LAYER_AT_A_TIME_TOKENS,
        figures=figs,
        focus=focus,
        next=nxt,
        measures=measures,
        qk=qk_record(primary),
    )


def focus_prefix(measure: str) -> str:
    """The focus grids' figure names under a measure: "focus_0" for the weights,
    "norm:focus_0" under norm (the page draws the variant the Measure choice names)."""
    return "" if measure == "weights" else f"{measure}:"


def sentence_doc(number: int, result: AttentionResult) -> SentenceDoc:
    """Numbers and payload for one sentence's section."""
    primary = result.maps[0]
    focus = focus_doc(result)
    nxt = next_doc(result)
    stats = head_stats(primary.attention)
    figs: dict[str, Any] = {"entropy": stats.figure}
    focus_record = None
    if focus is not None:
        for view in focus.views:
            prefix = focus_prefix(view.measure.id)
            for c, fig in enumerate(view.figures["scores"]):
                figs[f"{prefix}focus_{c}"] = fig
            if "winner" in view.figures:
                figs[f"{prefix}winner"] = view.figures["winner"]
        focus_record = FocusRecord(
            word=focus.word,
            positions=focus.positions,
            candidates=tuple(
                CandidateRecord(w, p)
                for w, p in zip(focus.candidates, focus.candidate_positions, strict=True)
            ),
        )
    payload = sentence_record(result, figs, focus_record, nxt.record() if nxt is not None else None)
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
        payload=payload,
        stats=stats,
        focus=focus,
        next=nxt,
        readable_tokens=primary.query.display,
        questions=(
            question_rows([(v.measure, v.scores) for v in focus.views])
            if focus is not None and primary.measures is not None
            else ()
        ),
    )
