"""`build_report`: the one code path that the CLI and the Python API share."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from reportgen import __version__
from reportgen.config import Extraction, InputBatch, ReportConfig, SentenceInput
from reportgen.errors import InputError
from reportgen.export import export_data, write_export
from reportgen.inputs import check_text
from reportgen.render import render_html, write_atomic
from reportgen.report import ReportDocument, build_document, export_extras, page_config

Log = Callable[[str], None]
Progress = Callable[[int, int], None]


def _no_log(_: str) -> None:
    pass


@dataclass(frozen=True)
class Report:
    """A finished report: the HTML text plus the data behind it."""

    html: str
    document: ReportDocument = field(repr=False)
    extraction: Extraction = field(repr=False)
    export_extra: tuple[dict[str, Any], ...] = field(default=(), repr=False)
    export_pairs: tuple[dict[str, Any], ...] = field(default=(), repr=False)

    def save(self, path: str | Path) -> int:
        """Write the report atomically; return its size in bytes."""
        return write_atomic(Path(path), self.html)

    def export_json(self, path: str | Path) -> int:
        """Write the `--export-json` document; return its size in bytes."""
        data = export_data(self.extraction, list(self.export_extra), list(self.export_pairs))
        return write_export(Path(path), data)

    def _repr_html_(self) -> str:
        # A sandboxed iframe keeps the report's scripts and CSP away from the notebook.
        return (
            '<iframe sandbox="allow-scripts allow-downloads" style="width:100%;height:800px;'
            f'border:1px solid #ccc" srcdoc="{html.escape(self.html, quote=True)}"></iframe>'
        )


def _as_batch(sentences: Any) -> InputBatch:
    """The API's input: an InputBatch, one string, or a list of strings / SentenceInputs."""
    if isinstance(sentences, InputBatch):
        return sentences
    if isinstance(sentences, str):
        sentences = [sentences]
    items: list[SentenceInput] = []
    for i, s in enumerate(sentences, start=1):
        if isinstance(s, str):
            s = SentenceInput(text=s.strip(), source=f"sentence {i}")
        elif not isinstance(s, SentenceInput):
            raise InputError(f"sentence {i} is a {type(s).__name__}, not a string")
        for value in (s.text, s.focus, s.text_pair, s.target, *s.candidates):
            check_text(value, s.source)
        items.append(s)
    if not items or any(not it.text for it in items):
        raise InputError("no sentences given (or an empty one)")
    return InputBatch(items=tuple(items))


def build_report(
    sentences: InputBatch | Sequence[str | SentenceInput] | str,
    model: str | None = None,
    *,
    config: ReportConfig | None = None,
    log: Log = _no_log,
    progress: Progress | None = None,
    **options: Any,
) -> Report:
    """Extract attention for `sentences` and render the report (nothing is written).

    `options` are :class:`ReportConfig` fields (title, layer, head, batch_size,
    device, dtype, truncate, max_tokens).
    """
    from reportgen.extract import extract
    from reportgen.models import load_model

    batch = _as_batch(sentences)
    cfg = replace(config or ReportConfig(), **options)
    if model is not None:
        cfg = replace(cfg, model=model)
    loaded = load_model(cfg, log)
    # Validate --layer/--head before the forward pass, so a typo costs no time.
    from reportgen.report import choose_head

    choose_head(loaded.info, cfg.layer, cfg.head)
    # Sizes are known once tokenised: refuse what cannot fit before the forward pass.
    from reportgen.extract import encode
    from reportgen.memory import check_input

    encoded = [encode(loaded, item, cfg) for item in batch.items]
    check_input(loaded, [len(enc["input_ids"]) for enc, _ in encoded], cfg.batch_size)
    log(f"extracting attention for {len(batch.items)} sentence(s) ...")
    extraction = extract(batch, cfg, loaded=loaded, log=log, progress=progress, encoded=encoded)
    for warning in extraction.warnings:
        log(f"warning: {warning}")
    document = build_document(extraction, cfg, __version__, batch.pairs)
    log("rendering the report ...")
    text = render_html({"doc": document, "page_config": page_config(document)})
    items, pairs = export_extras(document, extraction)
    return Report(
        html=text,
        document=document,
        extraction=extraction,
        export_extra=tuple(items),
        export_pairs=tuple(pairs),
    )
