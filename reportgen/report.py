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


@dataclass(frozen=True)
class HeadChoice:
    """The head the heatmaps show first (0-based) and why."""

    layer: int
    head: int
    note: str


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


def pack_attention(attention: np.ndarray) -> tuple[str, int]:
    """Quantise rows (sum-preserving) and pack as gzip+base64 of two byte planes.

    Low bytes then high bytes: the high plane is almost all zeros and compresses
    to nearly nothing, which halves the cost of 16-bit values.
    """
    q = analysis.quantize_rows(attention).astype("<u2").ravel()
    planes = np.concatenate([(q & 0xFF).astype(np.uint8), (q >> 8).astype(np.uint8)])
    data = gzip.compress(planes.tobytes(), compresslevel=9, mtime=0)
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
    return {
        "seqs": [_seq_payload(s) for s in seqs],
        "maps": maps,
        "layerAtATime": n > LAYER_AT_A_TIME_TOKENS,
    }


def sentence_doc(number: int, result: AttentionResult) -> SentenceDoc:
    """Numbers and payload for one sentence's section."""
    primary = result.maps[0]
    avg = analysis.head_average(primary.attention)
    return SentenceDoc(
        number=number,
        anchor=f"s{number}",
        text=result.item.text,
        text_pair=result.item.text_pair,
        tokens=primary.query.tokens,
        map_names=tuple(m.name for m in result.maps),
        causal=primary.causal,
        layer_entropy=tuple(float(x) for x in analysis.mean_entropy(avg)),
        truncated=result.truncated,
        next_tokens=result.next_tokens,
        payload=sentence_payload(result),
    )


def build_document(extraction: Extraction, config: ReportConfig, version: str) -> ReportDocument:
    """Assemble the report's content from the extraction and the options."""
    model = extraction.model
    start = choose_head(model, config.layer, config.head)
    sentences = tuple(sentence_doc(i, r) for i, r in enumerate(extraction.results, start=1))
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
