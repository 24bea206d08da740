"""The suites, in the order a full run takes them; each maps a Context to its rows."""

from __future__ import annotations

import sys
from collections.abc import Callable

from ..context import Context
from ..table import Row
from . import atlas, e2e, gguf_cache, longinput, measures, pages, sizes, throughput, tokens512

Suite = Callable[[Context], list[Row]]

SUITES: dict[str, Suite] = {
    "e2e": e2e.rows,
    "measures": measures.rows,
    "sizes": sizes.rows,
    "throughput": throughput.rows,
    "tokens512": tokens512.rows,
    "gguf": gguf_cache.rows,
    "atlas": atlas.rows,
    "long": longinput.rows,
    "browser": pages.rows,
}


def describe(name: str) -> str:
    """The first line of the suite's module docstring."""
    doc = (sys.modules[SUITES[name].__module__].__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""
