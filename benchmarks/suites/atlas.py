"""The head atlas (issue 12): throughput, memory and page size at 1x and 10x, Ray vs local.

Throughput is against the bare forward pass over the same file, memory and page size
compare the 10x corpus with the 1x, and --engine ray (a local Ray) must agree with the
local engine."""

from __future__ import annotations

import json
from pathlib import Path

from .. import targets
from ..context import BATCH_SIZE, Context
from ..inputs import generated_sentences, write_lines
from ..measure import reportgen_cmd, run_measured, say, script
from ..table import Row, fmt_mb, fmt_s

SENTENCES = 15_000  # the 10x corpus; --quick uses a fifth


def rows(ctx: Context) -> list[Row]:
    large_n = SENTENCES // (5 if ctx.quick else 1)
    small_n = large_n // 10
    sentences = generated_sentences(large_n, seed=12)
    small = write_lines(ctx.work / "atlas-1x.txt", sentences[:small_n])
    large = write_lines(ctx.work / "atlas-10x.txt", sentences)
    say(f"atlas: {small_n:,} and {large_n:,} sentences, and the bare forward pass")
    t_floor, _ = run_measured(script("floor_batched.py", large, str(BATCH_SIZE)))
    outs: dict[str, Path] = {}
    measured: dict[str, tuple[float, int]] = {}
    for name, corpus in (("1x", small), ("10x", large)):
        outs[name] = ctx.work / f"atlas-{name}.html"
        cmd = reportgen_cmd("--atlas", "-i", str(corpus), "-o", str(outs[name]))
        measured[name] = run_measured([*cmd, "--batch-size", str(BATCH_SIZE)])
        say(f"  {name}: {measured[name][0]:.1f} s, peak {fmt_mb(measured[name][1])}")
    # Issue 20: the same 10x corpus with the norm measure counted beside the weights.
    cmd = reportgen_cmd("--atlas", "-i", str(large), "-o", str(ctx.work / "atlas-norm.html"))
    t_norm, _ = run_measured([*cmd, "--batch-size", str(BATCH_SIZE), "--measures", "norm"])
    say(f"  10x with --measures norm: {t_norm:.1f} s")
    say(f"  bare forward: {t_floor:.1f} s")
    ratio = t_floor / measured["10x"][0]
    mem = measured["10x"][1] / measured["1x"][1]
    sizes = {name: out.stat().st_size for name, out in outs.items()}
    size = sizes["10x"] / sizes["1x"]
    out = [
        Row.check(
            f"Atlas throughput, {large_n:,} sentences, whole process (batch {BATCH_SIZE})",
            f"{large_n / measured['10x'][0]:.1f} sentences/s",
            f"bare forward {large_n / t_floor:.1f} sentences/s",
            targets.ATLAS_THROUGHPUT,
            ratio,
            shown=f"{ratio:.2f}x",
        ),
        Row.check(
            f"Atlas throughput with --measures norm, {large_n:,} sentences",
            f"{large_n / t_norm:.1f} sentences/s",
            f"bare forward {large_n / t_floor:.1f} sentences/s",
            targets.ATLAS_NORM_THROUGHPUT,
            t_floor / t_norm,
            shown=f"{t_floor / t_norm:.2f}x",
        ),
        Row.check(
            f"Atlas peak memory, {large_n:,} vs {small_n:,} sentences",
            fmt_mb(measured["10x"][1]),
            fmt_mb(measured["1x"][1]),
            targets.ATLAS_MEMORY,
            mem,
            shown=f"{mem:.2f}x",
        ),
        Row.check(
            f"Atlas page size, {large_n:,} vs {small_n:,} sentences",
            fmt_mb(sizes["10x"]),
            fmt_mb(sizes["1x"]),
            targets.ATLAS_SIZE,
            size,
            shown=f"{size:.2f}x",
        ),
    ]
    try:
        import ray  # noqa: F401
    except ImportError:
        say("  ray is not installed: no --engine ray row")
        return out
    out.append(ray_row(ctx, small, small_n))
    return out


def ray_row(ctx: Context, corpus: Path, n: int) -> Row:
    """--engine ray against --engine local on the same corpus: the statistics must agree."""
    say(f"atlas: --engine ray (a local Ray) against the local engine, {n:,} sentences")
    exports: dict[str, Path] = {}
    times: dict[str, float] = {}
    for engine in ("local", "ray"):
        exports[engine] = ctx.work / f"atlas-{engine}.json"
        cmd = reportgen_cmd(
            "--atlas",
            "-i",
            str(corpus),
            "-o",
            str(ctx.work / f"atlas-{engine}.html"),
            "--export-json",
            str(exports[engine]),
            "--engine",
            engine,
        )
        times[engine] = run_measured(cmd)[0]
    a, b = (json.loads(exports[e].read_text(encoding="utf-8")) for e in ("local", "ray"))
    worst = max(
        abs(x - y)
        for name in a["statistics"]
        for ra, rb in zip(a["statistics"][name], b["statistics"][name], strict=True)
        for x, y in zip(ra, rb, strict=True)
    )
    return Row.check(
        f"Atlas --engine ray (local Ray, 2 workers), {n:,} sentences",
        f"{fmt_s(times['ray'])}, max abs difference {worst:.1e}",
        f"local engine {fmt_s(times['local'])}",
        targets.ATLAS_RAY,
        worst,
        also=a["coreference"] == b["coreference"],
    )
