"""`--engine ray`: the atlas's extraction as a Ray Data pipeline.

The driver streams and validates the corpus and hands it to Ray in windows of
:data:`WINDOW` sentences (`from_items`); `map_batches` runs :class:`AtlasWorker`, one
model per actor (CPU or `--num-gpus` per actor), on length-sorted batches, and returns
one pickled partial :class:`AtlasSums` per block, which the driver merges by addition.
Sentences keep their corpus number, so the examples equal the local engine's.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import numpy as np

from reportgen import errors
from reportgen.atlas.engine import SORT_WINDOW_BATCHES, batched
from reportgen.atlas.stats import AtlasSums
from reportgen.config import ReportConfig, SentenceInput
from reportgen.errors import ReportgenError

INSTALL_HINT = "--engine ray needs Ray: pip install 'reportgen[ray]' (or 'ray[data]>=2.40')"
# Sentences per Ray dataset: bounds the driver's memory; each window starts its actors
# (one model load each), so a window should take far longer than loading a model.
WINDOW = 100_000
# A worker that dies is restarted and its block retried (Ray Data's actor defaults:
# max_restarts and max_task_retries -1); an error raised by our code stops the run
# with one line. Either way each sentence is in exactly one partial sum, checked below.


def _item_row(seq: int, item: SentenceInput) -> dict[str, Any]:
    fields = {
        "text": item.text,
        "text_pair": item.text_pair,
        "focus": item.focus,
        "candidates": list(item.candidates),
        "answer": item.answer,
        "source": item.source,
    }
    return {"seq": seq, "item": json.dumps(fields, ensure_ascii=False)}


def _row_item(text: str) -> SentenceInput:
    d = json.loads(text)
    return SentenceInput(
        text=d["text"],
        text_pair=d["text_pair"],
        focus=d["focus"],
        candidates=tuple(d["candidates"]),
        answer=d["answer"],
        source=d["source"],
    )


class AtlasWorker:
    """A Ray Data actor: loads the model once, turns each block into a partial total."""

    def __init__(self, config: ReportConfig, examples: int, threads: int) -> None:
        import torch

        from reportgen.atlas.engine import AtlasExtractor
        from reportgen.models import load_model

        if threads > 0:
            torch.set_num_threads(threads)  # the actor's share of the node's cores
        self.batch_size = config.batch_size
        self.extractor = AtlasExtractor(load_model(config), config, examples)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        items = [_row_item(str(t)) for t in batch["item"]]
        encoded = self.extractor.encode(items, [int(s) for s in batch["seq"]])
        encoded.sort(key=lambda e: (len(e.ids), e.seq))
        acc = self.extractor.empty()
        for chunk in batched(encoded, self.batch_size):
            self.extractor.add_batch(chunk, acc)
        out = np.empty(1, dtype=object)
        out[0] = pickle.dumps((self.extractor.loaded.info.name, acc))
        return {"partial": out}


def _reportgen_cause(exc: BaseException) -> ReportgenError | None:
    """The ReportgenError a worker raised, if that is what Ray is reporting."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, ReportgenError):
            return e
        stack += [e.__cause__, e.__context__, getattr(e, "cause", None)]
    return None


def start_ray(address: str | None, log: Callable[[str], None]) -> Any:
    """Join `address` (auto, ray://host:port) or start a local Ray sized to this machine."""
    try:
        import ray
        import ray.data  # noqa: F401 - the [data] extra
    except ImportError:
        raise ReportgenError(INSTALL_HINT) from None
    # Ray's own chatter (progress bars, C++ warnings) would drown our one progress line.
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {
            "include_dashboard": False,
            "logging_level": logging.ERROR,
            "log_to_driver": False,
        }
        if address is None:
            kwargs["num_cpus"] = os.cpu_count() or 1
            log(f"starting a local Ray with {kwargs['num_cpus']} CPUs ...")
        else:
            kwargs["address"] = address
            log(f"joining the Ray cluster at {address} ...")
        try:
            ray.init(**kwargs)
        except Exception as exc:  # ConnectionError, ValueError, RuntimeError, ...
            raise ReportgenError(
                f"cannot start or join Ray ({address or 'local'}): {exc}"
            ) from None
        from reportgen.safety import sigterm_as_interrupt

        sigterm_as_interrupt()  # ray.init replaced it with a stack dump
    return ray


def run_ray(
    items: Iterable[SentenceInput],
    config: ReportConfig,
    options: Any,
    log: Callable[[str], None],
    progress: Callable[[int], None] | None = None,
) -> tuple[AtlasSums, str]:
    """Stream `items` through a Ray Data actor pool; return the merged totals and the
    model's label."""
    from reportgen.models import resolve_source

    # A mistyped model path fails here, in one line, before any worker starts.
    resolve_source(config.model, log)
    ray = start_ray(options.ray_address, log)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    resources = ray.cluster_resources()
    gpus = float(options.num_gpus or 0.0)
    if gpus > 0:
        workers = options.workers or max(1, int(resources.get("GPU", 0) // gpus))
        worker_config = replace(config, device="cuda")
        threads = 0
    else:
        workers = options.workers or max(1, int(resources.get("CPU", 1)))
        worker_config = replace(config, device="cpu")
        threads = 1
    log(f"Ray: {workers} worker(s), {gpus:g} GPU(s) each")
    block = SORT_WINDOW_BATCHES * config.batch_size
    total: AtlasSums | None = None
    label = ""
    seq = 0
    if progress is not None:
        progress(0)  # the rate counts from here, after Ray is up
    try:
        for window in batched(items, WINDOW):
            rows = [_item_row(seq + i, item) for i, item in enumerate(window)]
            seq += len(window)
            ds = ray.data.from_items(rows, override_num_blocks=max(1, -(-len(rows) // block)))
            ds = ds.map_batches(
                AtlasWorker,
                batch_size=block,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(min_size=1, max_size=workers),
                fn_constructor_kwargs={
                    "config": worker_config,
                    "examples": options.examples,
                    "threads": threads,
                },
                num_cpus=0 if gpus > 0 else 1,
                num_gpus=gpus or None,
            )
            for row in ds.iter_rows():
                label, part = pickle.loads(row["partial"])
                if total is None:
                    total = part
                else:
                    total.merge(part)
                if progress is not None:
                    progress(total.sentences)
    except ReportgenError:
        raise
    except Exception as exc:
        cause = _reportgen_cause(exc)
        if cause is not None:
            raise type(cause)(str(cause)) from None
        # An actor that failed to start comes back as text: its traceback's last line.
        found = re.findall(r"reportgen\.errors\.(\w+): (.+)", str(exc))
        if found:
            kind = getattr(errors, found[-1][0], ReportgenError)
            if not (isinstance(kind, type) and issubclass(kind, ReportgenError)):
                kind = ReportgenError
            raise kind(found[-1][1].strip()) from None
        lines = [x.strip() for x in str(exc).splitlines() if x.strip()]
        text = (lines[-1] if lines else "")[:300]
        raise ReportgenError(f"the Ray run failed ({type(exc).__name__}): {text}") from None
    if total is None:
        raise ReportgenError("the corpus has no sentences")
    if total.sentences != seq:
        # Never a wrong total: every sentence must be in exactly one partial sum.
        raise ReportgenError(f"Ray returned {total.sentences:,} of {seq:,} sentences; rerun")
    return total, label
