"""Context-mixing measures (issue 20): the Winograd pair with every measure beside weights only."""

from __future__ import annotations

from .. import targets
from ..context import Context
from ..fixtures import long_input, pair_page
from ..measure import interleaved_medians, reportgen_cmd, run_measured, say
from ..table import Row, fmt_mb, fmt_s


def rows(ctx: Context) -> list[Row]:
    say("measures: the Winograd pair with --measures all against weights only")
    cmd, html = pair_page(ctx.work)
    measured = html.with_name("winograd-measures.html")
    with_all = [*cmd[: cmd.index("-o") + 1], str(measured), "--measures", "all"]
    t = interleaved_medians({"weights": cmd, "measures": with_all}, ctx.reps)
    time_ratio = t["measures"] / t["weights"]
    size, base = measured.stat().st_size, html.stat().st_size
    say("measures: 512 tokens through the embedded model, ALTI against weights only")
    text = str(long_input(ctx.work))
    peaks = {}
    for name, extra in (("weights", ()), ("alti", ("--measures", "alti"))):
        out = ctx.work / f"512-{name}.html"
        _, peaks[name] = run_measured(reportgen_cmd("-i", text, "-o", str(out), "-q", *extra))
    more = peaks["alti"] - peaks["weights"]
    return [
        Row.check(
            f"Winograd pair, every measure: time (median of {ctx.reps})",
            fmt_s(t["measures"]),
            f"weights only {fmt_s(t['weights'])}",
            targets.MEASURES_TIME,
            time_ratio,
            shown=f"{time_ratio:.2f}x",
        ),
        Row.check(
            "Winograd pair, every measure: report size",
            fmt_mb(size),
            f"weights only {fmt_mb(base)}",
            targets.MEASURES_SIZE,
            size / base,
            shown=f"{size / base:.2f}x",
        ),
        Row.check(
            "512 tokens (embedded model), ALTI: peak memory over weights only",
            fmt_mb(peaks["alti"]),
            f"weights only {fmt_mb(peaks['weights'])}",
            targets.MEASURES_MEMORY,
            more,
            shown=f"+{fmt_mb(more)}",
        ),
    ]
