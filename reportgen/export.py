"""`--export-json`: the raw numbers behind a report, at full float precision.

Built only when asked (`--export-json`, `Report.export_json`), from the extraction and
the numbers the report already computed; only the rollout is computed here, since the
page computes its own.

Indices: every field that indexes an array is 0-based and named ``*_index`` or
``positions`` (token positions); heads carry a ``label`` in the page's 1-based words
("Layer 5, Head 4"). Attention maps are named by their stable identifier (set where
the extraction lays out its streams, ``extract.map_layout``): the primary map is
``attention`` (identifier in ``attention_map``), others ``<key>`` with ``map`` inside
(``decoder_attention`` for "decoder_self", ``cross_attention`` for "cross").

Over the page budget the export is :func:`long_export_data`'s: what the long-input page
holds (the overview per head and the exact rows), with no full ``attention`` array, at
:data:`LONG_DECIMALS` (:func:`long_precision`: the page is built from the same values, so
``--from-export`` rebuilds it byte for byte).

A report's export also carries ``reportgen_export`` (:func:`render_record`, versioned;
:func:`long_render_record` for long inputs): what ``--from-export``
(:mod:`reportgen.rerender`) needs beyond the numbers to build the same page again with no
model.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from reportgen import analysis
from reportgen.config import (
    Extraction,
    LongAttention,
    LongExtraction,
    LongMeasures,
    ModelInfo,
    QueriesKeys,
    ReportConfig,
    SentenceInput,
    TokenSeq,
)
from reportgen.render import write_atomic
from reportgen.store import round_rows

if TYPE_CHECKING:
    from reportgen.analysis import PairAnswer
    from reportgen.report.document import ReportDocument
    from reportgen.report.pairs import PairCounts, PairDoc, PairQuery
    from reportgen.report.sentence import SentenceDoc

# Keys of the secondary maps, by stable identifier.
MAP_KEYS = {"decoder_self": "decoder_attention", "cross": "cross_attention"}

# Decimals the long-input export keeps, and its page is built from (long_precision).
LONG_DECIMALS = 6

# The record `--from-export` re-renders a page from (reportgen.rerender): its key and the
# version of its layout. A reader refuses any other version in one line.
RECORD_KEY = "reportgen_export"
RECORD_VERSION = 1
# The long-input record's layout (``"long": true``, long_render_record). Its version 1
# was a bare marker that recorded nothing to re-render from.
LONG_RECORD_VERSION = 2


def head_json(layer: int, head: int) -> dict[str, Any]:
    """A head, 0-based indices and the page's 1-based label."""
    return {
        "layer_index": layer,
        "head_index": head,
        "label": f"Layer {layer + 1}, Head {head + 1}",
    }


def _model_json(model: ModelInfo) -> dict[str, Any]:
    """The model as shared: its public name (no local folders), family and shape."""
    return {
        "name": model.name,  # public already (models.open_model)
        "architecture": model.architecture,
        "kind": model.kind,
        "layers": model.layers,
        "heads": model.heads,
    }


def _query_json(query: PairQuery) -> dict[str, Any]:
    """Where a pair's question is asked (``--focus-at``): token positions in A and B."""
    return {
        "at": query.at,
        "where": query.where,
        "positions_a": list(query.positions[0]),
        "positions_b": list(query.positions[1]),
        "words": list(query.words),
        "note": query.note,
    }


def _counts_json(answer: PairAnswer, counts: PairCounts) -> dict[str, Any]:
    """The heads right in both and what they are set against (``report.pairs.PairCounts``)."""
    return {
        "heads_right_in_both": answer.correct,
        "heads_right_in_a": answer.right_a,
        "heads_right_in_b": answer.right_b,
        "heads_wrong_in_both": counts.wrong_both,
        "heads_unchanged": counts.unchanged,
        "heads_other": counts.other,
        "heads": answer.total,
        "sign_test": {
            "flips": counts.flips,
            "p_value": counts.p_value,
            "verdict": counts.verdict,
        },
    }


def _answer_json(pair: PairDoc) -> dict[str, Any] | None:
    """The head a pair hands in, where it was asked, and the counts behind it, as the
    page words them."""
    answer = pair.answer
    if answer is None or pair.words is None or pair.query is None or pair.counts is None:
        return None
    out: dict[str, Any] = {
        "head": head_json(*answer.head),
        "expected": list(pair.words.expected),
        "gold": answer.gold,
        "shows_pattern": answer.shows_pattern,
        "query": _query_json(pair.query),
        **_counts_json(answer, pair.counts),
        "rule": pair.words.rule,
        "baseline": pair.words.baseline,
    }
    if pair.second is not None:
        second = pair.second
        out["second_answer"] = {
            "head": head_json(*second.answer.head),
            "shows_pattern": second.answer.shows_pattern,
            "query": _query_json(second.query),
            **_counts_json(second.answer, second.counts),
            "text": second.text,
        }
    return out


def _analysis(sdoc: SentenceDoc, attention: Any, rule: str) -> dict[str, Any]:
    extra: dict[str, Any] = {
        "entropy": {
            "nats": sdoc.stats.entropy.tolist(),
            "normalized": sdoc.stats.normalized.tolist(),
            "layer_verdicts": list(sdoc.stats.verdicts),
            "rule": rule,
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
                for c, (w, p) in enumerate(zip(f.candidates, f.candidate_positions, strict=True))
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
                            {**head_json(h.layer, h.head), "value": h.value} for h in w.heads
                        ],
                    }
                    for w in src.words
                ],
            }
            for src in sdoc.next.sources
        ]
    return extra


def export_data(
    extraction: Extraction,
    document: ReportDocument | None = None,
    qk: bool = False,
    config: ReportConfig | None = None,
) -> dict[str, Any]:
    """The export document: model facts, then one item per sentence in report order.

    `attention` is layers x heads x n x n (the primary map). With the report's
    `document`, each item adds its analysis numbers (entropy, focus, rollout, next-token
    heads) and `pairs` the minimal-pair summaries. With `qk` (``--qk``), each item whose
    first map kept them adds ``qk``: its queries ``[L][H][n][d]`` and keys ``[L][KV][n][d]``
    at float32 (:func:`qk_json`). With the `document`, ``reportgen_export`` records what
    re-rendering the page needs beyond those numbers (:func:`render_record`).
    """
    model = extraction.model
    items = []
    for i, result in enumerate(extraction.results):
        primary = result.maps[0]
        item: dict[str, Any] = {
            "text": result.item.text,
            "tokens": list(primary.query.tokens),
            "attention_map": primary.id,
            "attention": primary.attention.tolist(),
        }
        if result.item.text_pair is not None:
            item["text_pair"] = result.item.text_pair
        if qk and primary.qk is not None:
            item["qk"] = qk_json(primary.qk)
        if primary.measures is not None:
            # Context mixing (mixing.py), full precision: norm [L][H][n][n], the others
            # [L][n][n]; only the measures asked for.
            item["measures"] = {
                f.name: value.tolist()
                for f in dataclasses.fields(primary.measures)
                if (value := getattr(primary.measures, f.name)) is not None
            }
        for amap in result.maps[1:]:
            mid = amap.id
            item[MAP_KEYS.get(mid, f"{mid}_attention")] = {
                "map": mid,
                "query_tokens": list(amap.query.tokens),
                "key_tokens": list(amap.key.tokens),
                "attention": amap.attention.tolist(),
            }
        if result.next_tokens:
            item["next_tokens"] = [
                {"token": t.token, "probability": t.probability} for t in result.next_tokens
            ]
        if document is not None:
            item.update(_analysis(document.sentences[i], primary.attention, document.verdict_rule))
        items.append(item)
    pairs = []
    if document is not None:
        pairs = [
            {
                "a_index": p.a,
                "b_index": p.b,
                "headline": p.headline,
                "best_head": head_json(*p.best) if p.best is not None else None,
                "answer": _answer_json(p),
                "focus_difference": (
                    p.focus_difference.tolist() if p.focus_difference is not None else None
                ),
            }
            for p in document.pairs
        ]
    out: dict[str, Any] = {"model": _model_json(model), "items": items, "pairs": pairs}
    if extraction.measures_withheld is not None:
        out["measures_withheld"] = extraction.measures_withheld
    if qk and extraction.qk_withheld is not None:
        out["qk_withheld"] = extraction.qk_withheld
    if document is not None:
        out[RECORD_KEY] = render_record(extraction, document, config, qk)
    return out


def token_seq_json(seq: TokenSeq) -> dict[str, Any]:
    """Tokens exactly as the page labels them (the engine's :class:`TokenSeq`)."""
    return {
        "tokens": list(seq.tokens),
        "display": list(seq.display),
        "word_ids": list(seq.word_ids),
        "offsets": [list(o) for o in seq.offsets],
        "special": list(seq.special),
        "text": seq.text,
    }


def _item_json(item: SentenceInput) -> dict[str, Any]:
    return {
        "text": item.text,
        "focus": item.focus,
        "candidates": list(item.candidates),
        "answer": item.answer,
        "text_pair": item.text_pair,
        "target": item.target,
    }


def render_record(
    extraction: Extraction,
    document: ReportDocument,
    config: ReportConfig | None = None,
    qk: bool = False,
) -> dict[str, Any]:
    """What ``--from-export`` needs beyond the numbers the export already holds: the
    options that shape the page, the model record, the warnings, each sentence's input
    and its maps' tokens as the page labels them, the minimal pairs and where each asks
    its question, and the queries and keys the page carries (where the item's ``qk`` does
    not hold them already). The weights themselves stay in the items' ``attention``."""
    cfg = config or ReportConfig(title=document.title)
    model = extraction.model
    items = []
    for result in extraction.results:
        maps = []
        for amap in result.maps:
            maps.append(
                {
                    "id": amap.id,
                    "name": amap.name,
                    "causal": amap.causal,
                    "sentence_b_start": amap.sentence_b_start,
                    "query": token_seq_json(amap.query),
                    # None: the same tokens as the query's (self-attention).
                    "key": None if amap.key == amap.query else token_seq_json(amap.key),
                }
            )
        record: dict[str, Any] = {
            "input": _item_json(result.item),
            "truncated": result.truncated,
            "maps": maps,
        }
        primary = result.maps[0]
        if primary.qk is not None and not qk:  # with --qk the item's "qk" holds them
            record["qk"] = qk_json(primary.qk)
        items.append(record)
    queries: list[list[dict[str, Any]] | None] = []
    for p in document.pairs:
        if p.query is None:
            queries.append(None)
        else:
            asked = [p.query] + ([p.second.query] if p.second is not None else [])
            queries.append([_query_json(q) for q in asked])
    return {
        "version": RECORD_VERSION,
        "options": {
            "title": cfg.title,
            "layer": cfg.layer,
            "head": cfg.head,
            "focus_at": cfg.focus_at,
            "measures": list(cfg.measures),
            # The precision the model ran in: its rows sum to 1 within what it rounds.
            "dtype": cfg.dtype,
        },
        "model": {**_model_json(model), "max_length": model.max_length},
        "warnings": list(extraction.warnings),
        "measures_withheld": extraction.measures_withheld,
        "qk_withheld": extraction.qk_withheld,
        "pairs": [[p.a, p.b] for p in document.pairs],
        "queries": queries,
        "items": items,
    }


def qk_json(qk: QueriesKeys) -> dict[str, Any]:
    """A map's queries and keys as the export carries them (float32, so the weights
    rebuild from them within 1e-5): weights = softmax(q k^T * scaling[layer] + bias +
    mask), query head h reading key head h // (heads / kv_heads)."""
    layers, heads, _, head_dim = qk.queries.shape
    out: dict[str, Any] = {
        "layers": layers,
        "heads": heads,
        "kv_heads": qk.keys.shape[1],
        "head_dim": head_dim,
        "scaling": list(qk.scaling),
        "rotary": qk.rotary,
        "q": qk.queries.tolist(),
        "k": qk.keys.tolist(),
    }
    if qk.bias is not None:
        out["position_bias"] = qk.bias.tolist()  # T5: [L][H][n][n]
    return out


def write_export(path: Path, data: dict[str, Any], compact: bool = False) -> int:
    """Write the export atomically; return its size in bytes. `compact` leaves out the
    spaces after separators (a long export: a byte saved on each of millions of values)."""
    # float32 values widened to Python floats keep every bit; json writes them exactly.
    separators = (",", ":") if compact else None
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=separators)
    return write_atomic(path, text)


def _rounded(values: Any) -> Any:
    """Nested lists of values rounded to 1e-6: about 8 characters a value in JSON instead
    of 20, far inside the 1.5e-5 a long page's store keeps. Values that
    :func:`long_precision` rounded come out as it rounded them (float32 moves them by
    under 0.06 steps)."""
    return np.round(np.asarray(values, dtype=np.float64), LONG_DECIMALS).tolist()


def long_extraction_precision(extraction: LongExtraction) -> LongExtraction:
    """Every map of `extraction` at the export's precision (:func:`long_precision`)."""
    return replace(
        extraction,
        results=tuple(
            replace(r, maps=tuple(long_precision(m) for m in r.maps)) for r in extraction.results
        ),
    )


def long_precision(amap: LongAttention) -> LongAttention:
    """`amap` at the long export's precision (:data:`LONG_DECIMALS`), as float32: what
    both its page and its export are built from, so that the page rebuilt from the export
    is the same page byte for byte (the page quantises to 1/65535, and a value rounded to
    1e-6 apart from the page's could fall on the other side of a step). The overview and
    the exact rows keep each row's total (:func:`~reportgen.store.round_rows`); the
    entropy is exported at full precision already. Idempotent."""

    def rows(values: Any) -> Any:
        return round_rows(values, LONG_DECIMALS).astype(np.float32)

    if amap.rounded:
        return amap
    m = amap.measures
    return replace(
        amap,
        rounded=True,
        overview=rows(amap.overview),
        rows=tuple(replace(r, attention=rows(r.attention)) for r in amap.rows),
        first_share=np.round(amap.first_share.astype(np.float64), LONG_DECIMALS).astype(np.float32),
        measures=None
        if m is None
        else LongMeasures(
            norm_overview=None if m.norm_overview is None else rows(m.norm_overview),
            rows=tuple((name, rows(values)) for name, values in m.rows),
        ),
    )


def _long_map(amap: LongAttention) -> dict[str, Any]:
    amap = long_precision(amap)
    out: dict[str, Any] = {
        "map": amap.id,
        "query_tokens": list(amap.query.tokens),
        "key_tokens": list(amap.key.tokens),
        "causal": amap.causal,
        "overview": {
            # Rows: mean over the query block; columns: sum over the key block.
            "query_blocks": [list(b) for b in amap.query_blocks],
            "key_blocks": [list(b) for b in amap.key_blocks],
            "attention": _rounded(amap.overview),
        },
        "rows": [
            {"position": r.position, "token": r.token, "attention": _rounded(r.attention)}
            for r in amap.rows
        ],
        "first_position_share": _rounded(amap.first_share),
        "entropy": amap.entropy.tolist(),
    }
    if amap.measures is not None:
        # The self map's context-mixing measures (config.LongMeasures): norm's overview
        # and every measure's exact rows at the rows' positions, [L][H or 1][n] each.
        m = amap.measures
        out["measures"] = {
            name: {
                **({"overview": _rounded(m.norm_overview)} if name == "norm" else {}),
                "rows": [_rounded(r) for r in rows],
            }
            for name, rows in m.rows
        }
    return out


def long_export_data(
    extraction: LongExtraction, config: ReportConfig | None = None
) -> dict[str, Any]:
    """The export of long inputs: per item, the primary map's overview per head and its
    exact rows (``items[i]["rows"] = [{"position", "token", "attention": [L][H][n]}]``,
    always the last position, and the focus word's pieces when there is a focus); other
    maps of encoder-decoder models under ``decoder_attention`` and ``cross_attention``.
    No full ``attention`` array: a long input is over the page budget by definition.
    Attention values are rounded to 1e-6 (``LONG_DECIMALS``, :func:`long_precision`: the
    rows of the overview and the exact rows still sum to 1). ``reportgen_export``
    (:func:`long_render_record`) holds what ``--from-export`` needs beyond them.
    """
    model = extraction.model
    items = []
    for result in extraction.results:
        primary = _long_map(result.maps[0])
        item: dict[str, Any] = {
            "text": result.item.text,
            "tokens": primary.pop("query_tokens"),
            "attention_map": primary.pop("map"),
        }
        del primary["key_tokens"]
        item.update(primary)
        if result.item.text_pair is not None:
            item["text_pair"] = result.item.text_pair
        for amap in result.maps[1:]:
            mid = amap.id
            item[MAP_KEYS.get(mid, f"{mid}_attention")] = _long_map(amap)
        if result.next_tokens:
            item["next_tokens"] = [
                {"token": t.token, "probability": t.probability} for t in result.next_tokens
            ]
        if result.truncated:
            item["truncated"] = True
        items.append(item)
    out: dict[str, Any] = {
        "model": _model_json(model),
        "items": items,
        "pairs": [],
        RECORD_KEY: long_render_record(extraction, config),
    }
    if extraction.measures_withheld is not None:
        out["measures_withheld"] = extraction.measures_withheld
    return out


def long_render_record(
    extraction: LongExtraction, config: ReportConfig | None = None
) -> dict[str, Any]:
    """What ``--from-export`` needs to build a long-input page beyond the numbers the
    items hold: the options that shape it (a long page has no pairs or queries and keys),
    the model record, the warnings, each input and its maps' tokens as the page labels
    them. ``"long": true`` tells it from :func:`render_record`'s."""
    cfg = config or ReportConfig()
    items = [
        {
            "input": _item_json(result.item),
            "truncated": result.truncated,
            "maps": [
                {
                    "id": amap.id,
                    "name": amap.name,
                    "query": token_seq_json(amap.query),
                    # None: the same tokens as the query's (self-attention).
                    "key": None if amap.key == amap.query else token_seq_json(amap.key),
                }
                for amap in result.maps
            ],
        }
        for result in extraction.results
    ]
    return {
        "version": LONG_RECORD_VERSION,
        "long": True,
        "options": {
            "title": cfg.title,
            "layer": cfg.layer,
            "head": cfg.head,
            # The precision the model ran in: its rows sum to 1 within what it rounds.
            "dtype": cfg.dtype,
            "measures": list(cfg.measures),
        },
        "model": {**_model_json(extraction.model), "max_length": extraction.model.max_length},
        "warnings": list(extraction.warnings),
        "items": items,
    }
