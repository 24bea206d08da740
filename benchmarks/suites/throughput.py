"""Extraction throughput: extract() against a bare batched forward pass, same loaded model."""

from __future__ import annotations

import time
from collections.abc import Callable

from .. import targets
from ..context import BATCH_SIZE, Context
from ..inputs import generated_sentences
from ..measure import say
from ..table import Row


def rows(ctx: Context) -> list[Row]:
    import torch

    from reportgen.config import InputBatch, SentenceInput
    from reportgen.extract import extract

    count = 200 if ctx.quick else 1000
    say(f"throughput: extract() vs a bare batched forward, {count} sentences")
    config, loaded = ctx.embedded
    sentences = generated_sentences(count, seed=11)
    batch = InputBatch(items=tuple(SentenceInput(s) for s in sentences))

    def bare() -> None:
        tok, model = loaded.tokenizer, loaded.model
        with torch.inference_mode():
            for i in range(0, len(sentences), BATCH_SIZE):
                enc = tok(sentences[i : i + BATCH_SIZE], padding=True, return_tensors="pt")
                model(**enc, output_attentions=True)

    def ours() -> None:
        extract(batch, config, loaded)

    runs: tuple[tuple[str, Callable[[], None]], ...] = (("bare", bare), ("extract", ours))
    best: dict[str, float] = {}
    for _ in range(ctx.reps):  # alternating, best of each
        for name, fn in runs:
            start = time.perf_counter()
            fn()
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)
    ratio = best["bare"] / best["extract"]
    return [
        Row.check(
            f"Extraction throughput, {count} sentences (batch {BATCH_SIZE})",
            f"{count / best['extract']:.1f} sentences/s",
            f"bare forward {count / best['bare']:.1f} sentences/s",
            targets.THROUGHPUT,
            ratio,
            shown=f"{ratio:.2f}x",
        )
    ]
