"""Inputs over the page budget: a reduced view per head instead of full maps (see
``store.LongSentenceRecord``), one section per input."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reportgen import analysis, figures, store
from reportgen.config import LongExtraction, LongResult, ReportConfig, TokenSeq
from reportgen.export import long_precision
from reportgen.nexttoken import Prediction, visible
from reportgen.report.contributions import MEASURES, MeasureInfo
from reportgen.report.document import ReportDocument, figure_specs
from reportgen.report.heads import choose_head
from reportgen.report.sentence import seq_indexer, seq_record


@dataclass(frozen=True)
class LongSentenceDoc:
    """One long input's section: a reduced view per head (see ``LongSentenceRecord``)."""

    number: int
    anchor: str
    text: str
    text_pair: str | None
    n_tokens: int
    blocks: int  # overview rows (and columns) of the primary map
    block_size: int  # tokens in the widest block
    rows: tuple[tuple[int, str], ...]  # exact rows of the primary map: (position, label)
    map_names: tuple[str, ...]
    causal: bool
    truncated: bool
    payload: store.LongSentenceRecord
    predictions: tuple[Prediction, ...] = ()


def long_sentence_doc(number: int, result: LongResult) -> LongSentenceDoc:
    """Records and facts for one long input's section, from its values at the export's
    precision (``export.long_precision``): the page its export rebuilds is this one."""
    seqs: list[TokenSeq] = []
    seq_index = seq_indexer(seqs)
    reduced = tuple(long_precision(m) for m in result.maps)
    maps = tuple(
        store.long_map_record(m, query_seq=seq_index(m.query), key_seq=seq_index(m.key))
        for m in reduced
    )
    primary = reduced[0]
    share_text = [[f"{v:.0%} to position 0" for v in row] for row in primary.first_share]
    figs = {
        "first_share": figures.grid_figure(
            primary.first_share.astype(np.float64),
            title="Share of attention to the first position, per head",
            colorbar_title="share",
            zmin=0.0,
            zmax=1.0,
            hover_label="mean attention to position 0",
            text=share_text,
        ),
        "entropy": figures.grid_figure(
            primary.entropy,
            title="Entropy of every head (nats)",
            colorbar_title="nats",
            zmin=0.0,
            zmax=max(float(np.log(max(len(primary.key.tokens), 2))), 0.01),
            hover_label="entropy (nats)",
        ),
    }
    return LongSentenceDoc(
        number=number,
        anchor=f"s{number}",
        text=result.item.text,
        text_pair=result.item.text_pair,
        n_tokens=len(primary.query.tokens),
        blocks=len(primary.query_blocks),
        block_size=max((e - b for b, e in primary.query_blocks), default=0),
        rows=tuple((r.position, primary.query.display[r.position]) for r in primary.rows),
        map_names=tuple(m.name for m in result.maps),
        causal=primary.causal,
        truncated=result.truncated,
        payload=store.LongSentenceRecord(
            seqs=tuple(seq_record(sq, None) for sq in seqs), maps=maps, figures=figs
        ),
        predictions=tuple(Prediction(visible(t.token), t.probability) for t in result.next_tokens),
    )


def long_measures(extraction: LongExtraction) -> tuple[MeasureInfo, ...]:
    """The Measure choice of a long page: weights and the measures its first input's self
    map carries (no ALTI rollout: it needs every layer's full map)."""
    if not extraction.results or extraction.results[0].maps[0].measures is None:
        return ()
    kept = {name for name, _ in extraction.results[0].maps[0].measures.rows}
    return tuple(m for m in MEASURES if m.id == "weights" or m.id in kept)


def build_long_document(
    extraction: LongExtraction, config: ReportConfig, version: str
) -> ReportDocument:
    """The report of inputs over the page budget: one reduced view per input."""
    model = extraction.model  # named publicly where it was opened (models.open_model)
    start = choose_head(model, config.layer, config.head)
    warnings = extraction.warnings  # named publicly where they were made (extract)
    return ReportDocument(
        title=config.title or "Attention report",
        version=version,
        model=model,
        start=start,
        sentences=(),
        warnings=warnings,
        figure_specs=figure_specs(),
        verdict_rule=analysis.VERDICT_RULE,
        long_sentences=tuple(
            long_sentence_doc(i, r) for i, r in enumerate(extraction.results, start=1)
        ),
        measures=long_measures(extraction) if config.measures else (),
        measures_withheld=extraction.measures_withheld,
    )
