"""`build_report`: the one code path that the CLI and the Python API share."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from reportgen import __version__, analysis
from reportgen.config import (
    Extraction,
    InputBatch,
    LongExtraction,
    ReportConfig,
    SentenceInput,
    TokenSeq,
)
from reportgen.errors import InputError
from reportgen.inputs import check_item, check_text, consecutive_pairs, split_candidates
from reportgen.mixing import MEASURES
from reportgen.models import ModelSpec
from reportgen.render import render_page, write_atomic
from reportgen.report.document import (
    QK_PAGE_TOKENS,
    QK_PAGE_VALUES,
    ReportDocument,
    build_document,
    page_settings,
)
from reportgen.report.long import build_long_document
from reportgen.report.pairs import FOCUS_AT, PairQuery, pair_queries

Log = Callable[[str], None]
Progress = Callable[[int, int], None]


def _no_log(_: str) -> None:
    pass


@dataclass(frozen=True)
class Report:
    """A finished report: the HTML text plus the data behind it."""

    html: str
    document: ReportDocument = field(repr=False)
    extraction: Extraction | LongExtraction = field(repr=False)
    # The options the page was built with, recorded in the export for `--from-export`.
    config: ReportConfig | None = field(default=None, repr=False)

    def save(self, path: str | Path) -> int:
        """Write the report atomically; return its size in bytes."""
        return write_atomic(Path(path), self.html)

    def export_json(self, path: str | Path) -> int:
        """Write the `--export-json` document; return its size in bytes."""
        # Built here, on demand: a report that is never exported pays nothing for it.
        from reportgen.export import export_data, long_export_data, write_export

        if isinstance(self.extraction, LongExtraction):
            data = long_export_data(self.extraction, self.config)
            return write_export(Path(path), data, compact=True)
        return write_export(
            Path(path),
            # --qk: the export carries the queries and keys at float32.
            export_data(
                self.extraction,
                self.document,
                qk=bool(self.config and self.config.qk),
                config=self.config,
            ),
        )

    def _repr_html_(self) -> str:
        # A sandboxed iframe keeps the report's scripts and CSP away from the notebook;
        # allow-modals lets the Print button open the print dialog there.
        return (
            '<iframe sandbox="allow-scripts allow-downloads allow-modals" '
            'style="width:100%;height:800px;'
            f'border:1px solid #ccc" srcdoc="{html.escape(self.html, quote=True)}"></iframe>'
        )


DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("float32", "float16", "bfloat16")


def _check_items(items: Sequence[SentenceInput]) -> None:
    """What the CLI refuses, refused for every path in (arguments, files, the API)."""
    if not items:
        raise InputError("no sentences given: pass at least one sentence")
    for it in items:
        if not it.text.strip():
            raise InputError(f"{it.source or 'a sentence'}: the sentence is empty")
        check_item(it)  # the CLI's limits and valid UTF-8, before the model loads
        if it.candidates and not it.focus:
            raise InputError(
                f"{it.source}: candidates ({', '.join(it.candidates)}) need a focus word "
                '(--focus WORD, or a JSONL "focus")'
            )
        # A word missing from its sentence costs no model load (truncation is checked later).
        text = " ".join(t for t in (it.text, it.text_pair) if t)
        for word in (w for w in (it.focus, *it.candidates) if w):
            if not analysis.word_in_text(text, word):
                short = text if len(text) <= 60 else text[:59] + "…"
                raise InputError(f"{it.source}: the word '{word}' is not in the sentence '{short}'")


def _as_batch(
    sentences: Any,
    *,
    focus: str | None = None,
    candidates: Sequence[str] | str = (),
    compare: bool = False,
    pair: str | None = None,
    target: str | None = None,
) -> InputBatch:
    """The API's input: an InputBatch, one string, or a list of strings / SentenceInputs,
    with the CLI's lab options (focus, candidates, compare, pair, target)."""
    lab = focus is not None or bool(candidates) or compare or pair is not None or target is not None
    if isinstance(sentences, InputBatch):
        if lab:
            raise InputError("give focus, candidates, compare, pair and target in the InputBatch")
        _check_items(sentences.items)
        return sentences
    if isinstance(sentences, str):
        sentences = [sentences]
    if not isinstance(sentences, Sequence) or isinstance(sentences, bytes | bytearray):
        raise InputError(
            f"sentences must be a string or a list of strings, not a {type(sentences).__name__}"
        )
    if isinstance(candidates, str):
        candidates = split_candidates(candidates)
    items: list[SentenceInput] = []
    for i, s in enumerate(sentences, start=1):
        if isinstance(s, str):
            check_text(s, f"sentence {i}")
            s = SentenceInput(text=s.strip(), source=f"sentence {i}")
        elif not isinstance(s, SentenceInput):
            raise InputError(f"sentence {i} is a {type(s).__name__}, not a string")
        if lab:  # as on the command line: an item's own annotations win
            s = replace(
                s,
                focus=s.focus or focus,
                candidates=s.candidates or tuple(candidates),
                text_pair=s.text_pair or pair,
                target=s.target or target,
            )
        items.append(s)
    if not items or any(not it.text.strip() for it in items):
        raise InputError("no sentences given (or an empty one)")
    _check_items(items)
    pairs = consecutive_pairs(len(items), "--compare") if compare else ()
    return InputBatch(items=tuple(items), pairs=pairs)


def _check_config(cfg: ReportConfig) -> None:
    """The CLI's option checks, for callers of the API."""
    if cfg.device not in DEVICES:
        raise InputError(f"device '{cfg.device}' is not one of {', '.join(DEVICES)}")
    if cfg.dtype not in DTYPES:
        raise InputError(f"dtype '{cfg.dtype}' is not one of {', '.join(DTYPES)}")
    for name in ("layer", "head"):
        value = getattr(cfg, name)
        if value is not None and (not isinstance(value, int) or value < 1):
            raise InputError(f"{name} must be a whole number from 1 (1-based), got {value!r}")
    if cfg.focus_at not in FOCUS_AT:
        raise InputError(f"focus_at '{cfg.focus_at}' is not one of {', '.join(FOCUS_AT)}")
    if isinstance(cfg.measures, str) or not set(cfg.measures) <= set(MEASURES):
        raise InputError(
            f"measures must be a list among {', '.join(MEASURES)}, got {cfg.measures!r}"
        )
    if cfg.qk not in (None, True, False):
        raise InputError(f"qk must be True, False or None (by size), got {cfg.qk!r}")
    if not isinstance(cfg.batch_size, int) or cfg.batch_size < 1:
        raise InputError(f"batch_size must be a whole number from 1, got {cfg.batch_size!r}")
    for name in ("model", "title"):
        value = getattr(cfg, name)
        if value is not None and not isinstance(value, str):
            raise InputError(f"{name} must be a string, not a {type(value).__name__}")
        check_text(value, name)


def _check_focus_at(cfg: ReportConfig, batch: InputBatch) -> None:
    """--focus-at moves a minimal pair's question: refused where there is no such question."""
    if cfg.focus_at in ("auto", "word"):
        return
    if not any(_asks(batch, a) for a, _ in batch.pairs):
        raise InputError(
            f"--focus-at {cfg.focus_at} moves a minimal pair's question: give --compare, "
            "--focus and two --candidates"
        )


def _asks(batch: InputBatch, a: int) -> bool:
    """Whether the pair starting at item `a` asks the pronoun question (a focus word, two
    candidates or more)."""
    item = batch.items[a]
    return item.focus is not None and len(item.candidates) >= 2


@dataclass(frozen=True)
class Plan:
    """What runs, decided from the tokenised input before any weight is read."""

    long: bool  # the long-input page: each layer reduced as it streams, no full map kept
    # Per minimal pair, where its question is asked (report.pairs.pair_queries; the
    # query, then a second one if any), or None for a pair without the question.
    queries: tuple[tuple[PairQuery, ...] | None, ...] = ()
    qk: bool = False  # capture the first map's queries and keys (the panel)


def _token_seq(spec: ModelSpec, item: SentenceInput, encoding: Any) -> TokenSeq:
    """The primary map's tokens of one encoded input, as the extraction will label them."""
    from reportgen.tokens import token_seq

    fast = encoding.encodings[0] if getattr(encoding, "encodings", None) else None
    ids = list(encoding["input_ids"])
    seq, _ = token_seq(spec.tokenizer, ids, fast, (item.text, item.text_pair), len(ids))
    return seq


def plan_run(
    spec: ModelSpec,
    batch: InputBatch,
    encoded: Sequence[tuple[Any, int]],
    cfg: ReportConfig,
    needs_full_maps: str | None = None,
) -> Plan:
    """Check the sizes (memory and page, :func:`memory.check_input`), refuse what the
    chosen page cannot show, and decide where each minimal pair's question is asked (a
    decoder's focus word cannot see a difference after it), before the weights load.
    `encoded` is :func:`extract.encode`'s output for every item."""
    from reportgen import memory

    sizes = [len(enc["input_ids"]) for enc, _ in encoded]
    long = memory.check_input(spec, sizes, cfg.batch_size, cfg.measures)
    hint = "use --max-tokens N to bring the input under the page budget"
    if long and needs_full_maps is not None:
        raise InputError(
            f"{needs_full_maps} draws full heatmaps, which a long-input page does not keep; " + hint
        )
    if long and cfg.qk:
        raise InputError(
            "the queries and keys (--qk) explain the weights of full maps, which a "
            "long-input page does not keep; " + hint
        )
    if long and batch.pairs:
        raise InputError(
            "minimal pairs are compared on full maps, which a long-input page does not "
            "keep; " + hint
        )
    # Only the primary map's queries matter: a decoder's self-attention is causal, an
    # encoder-decoder's primary map (the encoder's) is not.
    causal = spec.info.kind == "causal"
    queries = tuple(
        pair_queries(
            _token_seq(spec, batch.items[a], encoded[a][0]),
            _token_seq(spec, batch.items[b], encoded[b][0]),
            batch.items[a].focus or "",
            causal,
            cfg.focus_at,
        )
        if _asks(batch, a)
        else None
        for a, b in batch.pairs
    )
    return Plan(long=long, queries=queries, qk=not long and wants_qk(spec, sizes, cfg.qk))


def wants_qk(spec: ModelSpec, lengths: Sequence[int], asked: bool | None) -> bool:
    """Whether the page carries queries and keys: as asked, else by size
    (:data:`QK_PAGE_TOKENS`, :data:`QK_PAGE_VALUES`)."""
    from reportgen import memory

    if asked is not None:
        return asked
    if not lengths or max(lengths) > QK_PAGE_TOKENS:
        return False
    hidden = memory.model_shape(spec).hidden  # the one reading of a config's width
    return bool(hidden) and spec.info.layers * 2 * hidden * sum(lengths) <= QK_PAGE_VALUES


def build_report(
    sentences: InputBatch | Sequence[str | SentenceInput] | str,
    model: Any = None,
    *,
    tokenizer: Any = None,
    focus: str | None = None,
    candidates: Sequence[str] | str = (),
    compare: bool = False,
    pair: str | None = None,
    target: str | None = None,
    config: ReportConfig | None = None,
    log: Log = _no_log,
    progress: Progress | None = None,
    needs_full_maps: str | None = None,
    **options: Any,
) -> Report:
    """Extract attention for `sentences` and render the report (nothing is written).

    The lab options are the CLI's: `focus` word, `candidates` (a list or "a,b"),
    `compare` (consecutive sentences form minimal pairs), `pair` (a second segment),
    `target` (decoder input). `options` are :class:`ReportConfig` fields (title, layer,
    head, batch_size, device, dtype, truncate, max_tokens). `needs_full_maps` names what
    will read every map in full (the CLI's ``--submission``): an input that would take the
    long-input page is then refused before the weights load. Bad input raises the CLI's
    errors (:class:`~reportgen.errors.InputError`, :class:`~reportgen.errors.ModelError`).

    `model` is a name (hub id), a folder, a .gguf file, None (the embedded model), or a
    model already loaded (a transformers ``PreTrainedModel``) with its `tokenizer`: that
    object runs as it is, on its device and in its dtype (no second copy is read), and
    comes back as it was (attention implementation, training mode, hooks; the
    tokenizer's padding), also when the run fails. The page names it by
    ``config.name_or_path`` (a local folder by its last part only).
    """
    batch = _as_batch(
        sentences, focus=focus, candidates=candidates, compare=compare, pair=pair, target=target
    )
    unknown = set(options) - {f.name for f in fields(ReportConfig)}
    if unknown:
        raise TypeError(f"build_report() got unknown options: {', '.join(sorted(unknown))}")
    cfg = replace(config or ReportConfig(), **options)
    lent = model is not None and not isinstance(model, str)
    if tokenizer is not None and not lent:
        raise InputError(
            "tokenizer goes with a loaded model object (model=<PreTrainedModel>); a model "
            "name or folder brings its own tokenizer"
        )
    if model is not None and not lent:
        cfg = replace(cfg, model=model)
    _check_config(cfg)
    _check_focus_at(cfg, batch)
    from reportgen import models

    if lent:
        # The caller's object runs as it is (no second copy from disk, its own device and
        # dtype) and comes back as it was, also when the run fails (models.lent).
        models.check_object(model, tokenizer)
        default_dtype = ReportConfig().dtype
        given_dtype = config.dtype if config is not None else default_dtype
        asked_dtype = options.get("dtype", None if given_dtype == default_dtype else given_dtype)
        with models.lent(model, tokenizer):
            spec = models.open_object(model, tokenizer, cfg, log)
            if asked_dtype is not None and asked_dtype != spec.dtype:
                raise InputError(
                    f"dtype '{asked_dtype}': the loaded model is in {spec.dtype} and runs so "
                    "(reportgen never converts it); convert it first with model.to(...), "
                    "or leave dtype out"
                )
            cfg = replace(cfg, dtype=spec.dtype)
            return _run(
                batch,
                cfg,
                spec,
                lambda: models.adopt_weights(spec, model, log),
                log,
                progress,
                needs_full_maps,
            )
    spec = models.open_model(cfg, log)
    return _run(
        batch, cfg, spec, lambda: models.load_weights(spec, log), log, progress, needs_full_maps
    )


def _run(
    batch: InputBatch,
    cfg: ReportConfig,
    spec: ModelSpec,
    load: Callable[[], Any],
    log: Log,
    progress: Progress | None,
    needs_full_maps: str | None,
) -> Report:
    """From an opened model to the report: the checks that need no weights, then `load`
    (:func:`models.load_weights`, or :func:`models.adopt_weights` for the caller's
    object), the extraction and the page."""
    from reportgen.extract import encode, extract

    # Validate --layer/--head before any weight is read, so a typo costs no time.
    from reportgen.report.heads import choose_head

    choose_head(spec.info, cfg.layer, cfg.head)
    if spec.info.kind != "encoder-decoder" and any(it.target for it in batch.items):
        log(
            f"warning: --target is ignored: {spec.info.architecture} is not an "
            "encoder-decoder model (it has no decoder input)"
        )
    encoded = [encode(spec, item, cfg) for item in batch.items]
    plan = plan_run(spec, batch, encoded, cfg, needs_full_maps)
    for number, queries in enumerate(plan.queries, start=1):
        if queries and queries[0].note:  # said before the weights load
            log(f"minimal pair {number}: {queries[0].note}")
    loaded = load()
    if plan.long:
        return _long_report(batch, cfg, loaded, encoded, log, progress)
    log(f"extracting attention for {len(batch.items)} sentence(s) ...")
    extraction = extract(
        batch, cfg, loaded=loaded, log=log, progress=progress, encoded=encoded, qk=plan.qk
    )
    for warning in extraction.warnings:
        log(f"warning: {warning}")
    if cfg.qk and extraction.qk_withheld is not None:
        log(f"warning: no queries and keys (--qk): {extraction.qk_withheld}")
    log("rendering the report ...")
    return report_from_extraction(extraction, cfg, batch.pairs, plan.queries)


def _long_report(
    batch: InputBatch,
    cfg: ReportConfig,
    loaded: Any,
    encoded: Sequence[tuple[Any, int]],
    log: Log,
    progress: Progress | None,
) -> Report:
    """Inputs over the page budget: each layer is reduced as it streams (overview, exact
    rows, statistics) and the page shows that reduced view of every head."""
    from reportgen.extract import extract_long

    log(
        f"the full attention is over the page budget: extracting a reduced long-input view "
        f"for {len(batch.items)} input(s) ..."
    )
    extraction = extract_long(
        batch, cfg, loaded=loaded, log=log, progress=progress, encoded=encoded
    )
    for warning in extraction.warnings:
        log(f"warning: {warning}")
    log("rendering the report ...")
    return report_from_long_extraction(extraction, cfg)


def report_from_long_extraction(extraction: LongExtraction, cfg: ReportConfig) -> Report:
    """The long-input page of a reduced extraction, from a model run or from its export
    (``reportgen.rerender.from_export``): one document, one renderer. Its values are
    rounded to the export's precision once, here: the page and the export read them."""
    from reportgen.export import long_extraction_precision

    extraction = long_extraction_precision(extraction)
    document = build_long_document(extraction, cfg, __version__)
    text = render_page("report", {"doc": document, "settings": page_settings(document)})
    return Report(html=text, document=document, extraction=extraction, config=cfg)


def report_from_extraction(
    extraction: Extraction,
    cfg: ReportConfig,
    pairs: tuple[tuple[int, int], ...] = (),
    queries: tuple[tuple[PairQuery, ...] | None, ...] = (),
) -> Report:
    """The page of an extraction, from a model run (:func:`build_report`) or without one
    (``reportgen.given.from_attention``, ``reportgen.rerender.from_export``): one document,
    one renderer."""
    document = build_document(extraction, cfg, __version__, pairs, queries)
    text = render_page("report", {"doc": document, "settings": page_settings(document)})
    return Report(html=text, document=document, extraction=extraction, config=cfg)
