"""The whole report's content (:class:`ReportDocument`) and the page's settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reportgen import analysis, figures
from reportgen.config import Extraction, ModelInfo, ReportConfig
from reportgen.headview import LAYER_AT_A_TIME_TOKENS, PAIR_FILTERS
from reportgen.report.contributions import CAVEAT, MeasureInfo, available
from reportgen.report.heads import HeadChoice, choose_head, pair_start
from reportgen.report.pairs import PairDoc, PairQuery, pair_doc
from reportgen.report.sentence import SentenceDoc, sentence_doc
from reportgen.store import MeasureChoice, PageSettings

if TYPE_CHECKING:  # long.py builds a ReportDocument; only the type is needed here
    from reportgen.report.long import LongSentenceDoc


# The "why this weight" panel's queries and keys come with a report by default when every
# sentence has at most QK_PAGE_TOKENS tokens and all of them together at most
# QK_PAGE_VALUES values (layers x (heads + kv_heads) x tokens x head size, estimated as
# layers x 2 x hidden x tokens before the model loads). 64 tokens: beyond that a row of
# scores no longer reads as bars, and a sentence's queries and keys outweigh its weights
# (at 64 tokens and MiniLM's 32-wide heads there are as many of them as weights, at about
# 2.3 bytes each on the page against about 1 for a weight). The budget: half precision
# has about 13.5 bits of entropy a value, so with base64 a value costs 2.3 bytes whatever
# the packing; 450,000 of them add at most about 1.05 MB, under half of the 2.2 MB of
# inlined libraries every page carries, so a page that gets them by default grows by
# at most 1.5x (the size target). `--qk` puts them on any page of full maps.
QK_PAGE_TOKENS = 64
QK_PAGE_VALUES = 450_000


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
    # A long-input page (over the page budget) has these instead of `sentences`.
    long_sentences: tuple[LongSentenceDoc, ...] = ()
    # The page's Measure choice (weights first), when context-mixing measures were asked
    # for and pass their self-check; else why they are withheld, in one line.
    measures: tuple[MeasureInfo, ...] = ()
    measures_withheld: str | None = None
    measures_caveat: str = CAVEAT
    # Why the "why this weight" panel has no queries and keys on this model (eager).
    qk_withheld: str | None = None
    qk_page_tokens: int = QK_PAGE_TOKENS  # said where the panel is left out


def figure_specs() -> dict[str, Any]:
    """The heatmap specs (without data) that the page's views fill in."""
    return {
        "attention": figures.attention_heatmap_spec(),
        "difference": figures.attention_heatmap_spec(diverging=True, colorbar_title="A - B"),
    }


def build_document(
    extraction: Extraction,
    config: ReportConfig,
    version: str,
    pairs_of: tuple[tuple[int, int], ...] = (),
    queries: tuple[tuple[PairQuery, ...] | None, ...] = (),
) -> ReportDocument:
    """Assemble the report's content from the extraction and the options. `queries`
    are the plan's, one per pair (``pipeline.plan_run``); a pair without them finds its
    own with the same rule (:func:`~reportgen.report.pairs.pair_queries`)."""
    model = extraction.model  # named publicly where it was opened (models.open_model)
    start = choose_head(model, config.layer, config.head)
    sentences = tuple(sentence_doc(i, r) for i, r in enumerate(extraction.results, start=1))
    pairs = tuple(
        pair_doc(
            number,
            a,
            b,
            extraction.results,
            sentences,
            start,
            config,
            queries[number - 1] if number <= len(queries) else None,
        )
        for number, (a, b) in enumerate(pairs_of, start=1)
    )
    start = pair_start(start, pairs, config)
    warnings = extraction.warnings  # named publicly where they were made (extract)
    title = config.title or "Attention report"
    return ReportDocument(
        title=title,
        version=version,
        model=model,
        start=start,
        sentences=sentences,
        warnings=warnings,
        figure_specs=figure_specs(),
        verdict_rule=analysis.VERDICT_RULE,
        pairs=pairs,
        measures=(
            available(extraction.results[0].maps[0])
            if config.measures and extraction.results
            else ()
        ),
        measures_withheld=extraction.measures_withheld,
        qk_withheld=extraction.qk_withheld,
    )


def page_settings(doc: ReportDocument) -> PageSettings:
    """Report-wide settings for the page."""
    return PageSettings(
        start_layer=doc.start.layer,
        start_head=doc.start.head,
        layers=doc.model.layers,
        heads=doc.model.heads,
        figures=doc.figure_specs,
        pair_filters=tuple(name for name, _ in PAIR_FILTERS),
        layer_at_a_time_tokens=LAYER_AT_A_TIME_TOKENS,
        heatmap_size=figures.HEATMAP_SIZE,
        measures=tuple(
            MeasureChoice(m.id, m.label, m.per_layer, m.about)
            for m in (doc.measures if len(doc.measures) > 1 else ())
        ),
    )
