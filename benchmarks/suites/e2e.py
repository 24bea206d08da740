"""End to end: the reportgen CLI on the Winograd pair against the bare forward pass."""

from __future__ import annotations

from .. import targets
from ..context import Context
from ..fixtures import pair_input, pair_page
from ..measure import interleaved_medians, say, script
from ..table import Row, fmt_s


def rows(ctx: Context) -> list[Row]:
    say("end to end: reportgen vs the bare forward pass (Winograd pair)")
    cmd, _ = pair_page(ctx.work)
    pair_txt = pair_input(ctx.work)
    t = interleaved_medians({"floor": script("floor.py", pair_txt), "reportgen": cmd}, ctx.reps)
    ratio = t["reportgen"] / t["floor"]
    return [
        Row.check(
            f"End-to-end time, Winograd pair (median of {ctx.reps})",
            fmt_s(t["reportgen"]),
            f"floor script {fmt_s(t['floor'])}",
            targets.E2E_RATIO,
            ratio,
            shown=f"{ratio:.2f}x",
        )
    ]
