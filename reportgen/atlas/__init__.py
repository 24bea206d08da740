"""The head atlas: what every head does across a corpus (issue 12).

`build_atlas` streams a corpus file through the model (locally or on Ray), keeps
running sums per [layer, head] and returns an :class:`Atlas`, which renders the page
and the `--export-json` document. Clark et al. (2019), "What Does BERT Look At?",
is the model for the statistics and the coreference accuracy.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from reportgen.atlas.stats import STATS, AtlasSums, CorefStats, coref_stats
from reportgen.config import ReportConfig
from reportgen.errors import InputError
from reportgen.render import write_atomic

Log = Callable[[str], None]
Progress = Callable[[int, "int | None"], None]
Engine = Literal["local", "ray"]


def _no_log(_: str) -> None:
    pass


@dataclass(frozen=True)
class AtlasOptions:
    """How the atlas runs (the model options live in :class:`ReportConfig`)."""

    engine: Engine = "local"
    ray_address: str | None = None  # None: start a local Ray
    num_gpus: float = 0.0  # per Ray worker
    workers: int | None = None  # Ray worker actors; None: one per CPU (or GPU)
    examples: int = 3  # example sentences per head
    count_first: bool = True  # validate and count a file before loading the model


@dataclass(frozen=True)
class Atlas:
    """A finished atlas: the corpus totals and the model's name."""

    model_name: str
    sums: AtlasSums = field(repr=False)
    title: str | None = None

    @cached_property
    def coref(self) -> CorefStats | None:
        """The coreference intervals and chance level, once for page and export."""
        return coref_stats(self.sums)

    def html(self) -> str:
        from reportgen.atlas.page import atlas_document, render_atlas

        return render_atlas(atlas_document(self.sums, self.model_name, self.title, self.coref))

    def export_data(self) -> dict[str, Any]:
        from reportgen.atlas.page import export_data

        return export_data(self.sums, self.model_name, self.coref)

    def save(self, path: str | Path) -> int:
        """Write the page atomically; return its size in bytes."""
        return write_atomic(Path(path), self.html())

    def export_json(self, path: str | Path) -> int:
        """Write the export atomically (full precision); return its size in bytes."""
        text = json.dumps(self.export_data(), ensure_ascii=False, allow_nan=False)
        return write_atomic(Path(path), text + "\n")


def model_name(config: ReportConfig, label: str) -> str:
    """The model's name without local folders: a folder's or file's own name, a hub id
    whole (the per-sentence report's rule, :func:`reportgen.safety.public_name`)."""
    from reportgen.safety import public_name

    if config.model is None:
        return public_name(label)
    path = Path(config.model).expanduser()
    if path.exists():
        return path.resolve().name  # "." names the folder it stands for
    return public_name(config.model)  # a hub id such as "bert-base-uncased"


def build_atlas(
    input_path: str,
    config: ReportConfig | None = None,
    options: AtlasOptions | None = None,
    log: Log = _no_log,
    progress: Progress | None = None,
) -> Atlas:
    """Stream `input_path` (.txt or .jsonl, "-" for stdin) through the model."""
    from reportgen.atlas.corpus import count_corpus, iter_corpus

    config = config or ReportConfig()
    options = options or AtlasOptions()
    total = None
    if input_path != "-" and options.count_first:
        total = count_corpus(input_path)  # every line checked before the model loads
        if total == 0:
            raise InputError(f"'{input_path}' has no sentences")
    report = (lambda done: progress(done, total)) if progress is not None else None
    if options.engine == "ray":
        from reportgen.atlas.engine_ray import run_ray

        sums, label = run_ray(iter_corpus(input_path), config, options, log, report)
    else:
        from reportgen.atlas.engine import AtlasExtractor, run_local
        from reportgen.models import load_model

        loaded = load_model(config, log)
        extractor = AtlasExtractor(loaded, config, options.examples)
        if report is not None:
            report(0)  # the rate counts from the first forward pass, not from the import
        sums = run_local(extractor, iter_corpus(input_path), config.batch_size, report)
        label = loaded.info.name
    if sums.sentences == 0:
        raise InputError(f"'{input_path}' has no sentences")
    if sums.truncated:
        log(f"{sums.truncated:,} sentences were truncated to the model's limit")
    return Atlas(model_name(config, label), sums, config.title)


def progress_printer(stream: Any = None, every: float = 0.5) -> Progress:
    """Sentences done, sentences/s and time left (when the total is known), on stderr:
    one updating line on a terminal, a line every 10 s otherwise."""
    out = stream or sys.stderr
    tty = bool(getattr(out, "isatty", lambda: False)())
    start = [0.0]
    last = [0.0]

    def show(done: int, total: int | None) -> None:
        now = time.monotonic()
        if done == 0:
            start[0] = now
            return
        final = total is not None and done >= total
        if not final and now - last[0] < (every if tty else 10.0):
            return
        last[0] = now
        rate = done / max(now - start[0], 1e-9)
        text = f"{done:,}" + (f"/{total:,}" if total else "") + f" sentences, {rate:,.1f}/s"
        if total and rate > 0 and not final:
            left = (total - done) / rate
            text += f", {int(left // 60)}:{int(left % 60):02d} left"
        out.write(("\r" + text + " " * 8 + ("\n" if final else "")) if tty else text + "\n")
        out.flush()

    return show


__all__ = ["STATS", "Atlas", "AtlasOptions", "build_atlas", "progress_printer"]
