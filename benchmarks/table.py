"""The table's rows and how they print: measure, reportgen, reference, ratio/target, pass."""

from __future__ import annotations

import datetime as dt
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .targets import Target

MB = 1_000_000
HEADER = ("measure", "reportgen", "reference", "ratio/target", "pass")


def fmt_s(seconds: float) -> str:
    return f"{seconds:.2f} s"


def fmt_mb(size: float) -> str:
    return f"{size / MB:.2f} MB" if size < 1000 * MB else f"{size / 1e9:.2f} GB"


@dataclass(frozen=True)
class Row:
    """One line of the table, its cells already worded; `ok` None: no target, context only."""

    measure: str
    ours: str
    reference: str
    target: str
    ok: bool | None

    @classmethod
    def check(
        cls,
        measure: str,
        ours: str,
        reference: str,
        target: Target,
        value: float | None,
        *,
        shown: str = "",
        also: bool = True,
    ) -> Row:
        """A row judged against `target`; `shown` words the measured figure before it
        ("1.15x / ≤ 1.25x"), `also` is a further condition (no console errors). A value
        of None (not measured) misses."""
        cell = f"{shown} / {target}" if shown else str(target)
        ok = value is not None and target.met(value) and also
        return cls(measure, ours, reference, cell, ok)

    @classmethod
    def info(cls, measure: str, ours: str, reference: str = "—", note: str = "—") -> Row:
        """A row shown for context, with no target."""
        return cls(measure, ours, reference, note, None)

    def cells(self) -> list[str]:
        verdict = "—" if self.ok is None else ("PASS" if self.ok else "MISS")
        return [self.measure, self.ours, self.reference, self.target, verdict]


def markdown(rows: Sequence[Row]) -> str:
    table = [list(HEADER), ["---"] * len(HEADER), *(r.cells() for r in rows)]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in table)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} CPUs ({cpu}), {ram:.1f} GiB RAM, {platform.platform()}"


def header(quick: bool, load_before: float, seconds: float) -> list[str]:
    """The lines above the table: when, where, under what load, how long."""
    import torch

    return [
        f"reportgen benchmark, {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}"
        f"{' (--quick)' if quick else ''}",
        f"Machine: {machine()}",
        f"Python {platform.python_version()}, torch {torch.__version__}; load average "
        f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after; "
        f"run took {seconds:.0f} s",
    ]
