"""The benchmark's options: which suites run, and what becomes of the table."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from . import __doc__ as package_doc
from .context import Context
from .suites import SUITES, describe
from .table import Row, header, markdown

KEPT_PAGES = ("winograd.html", "many.html", "long.html")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks", description=(package_doc or "").splitlines()[0]
    )
    p.add_argument("--quick", action="store_true", help="one run of each, fewer sentences")
    p.add_argument("--no-browser", action="store_true", help="skip the Chromium timings")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target misses")
    p.add_argument("--keep", type=Path, default=None, help="keep the reports in this folder")
    p.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    p.add_argument(
        "--only",
        action="append",
        choices=list(SUITES),
        metavar="NAME",
        help="run only this suite (repeatable; --list names them)",
    )
    p.add_argument("--list", action="store_true", help="name the suites and exit")
    p.add_argument(
        "--long-only", action="store_true", help="only the long-input rows (--only long)"
    )
    p.add_argument("--atlas-only", action="store_true", help="only the head atlas rows")
    p.add_argument(
        "--long-timeout", type=float, default=180.0, help="seconds to wait for the 512 report"
    )
    return p


def chosen(args: argparse.Namespace) -> list[str]:
    """The suites to run, in the order given (all of them, in table order, by default)."""
    names = list(args.only or [])
    names += ["atlas"] * args.atlas_only + ["long"] * args.long_only
    return list(dict.fromkeys(names)) or list(SUITES)


def keep(work: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in KEPT_PAGES:
        if (work / name).exists():
            shutil.copy2(work / name, folder / name)
    for page in work.glob("long[0-9]*.html"):  # the long-input reports
        shutil.copy2(page, folder / page.name)


def main(argv: Sequence[str] | None = None, out: Callable[[str], None] = print) -> int:
    args = parser().parse_args(argv)
    if args.list:
        for name in SUITES:
            out(f"{name:<11} {describe(name)}")
        return 0
    # Everything runs from local files; the children inherit these.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="reportgen-bench-"))
    ctx = Context(
        work, quick=args.quick, browser=not args.no_browser, long_timeout=args.long_timeout
    )
    rows: list[Row] = []
    try:
        for name in chosen(args):
            rows.extend(SUITES[name](ctx))
        if args.keep is not None:
            keep(work, args.keep)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for line in header(args.quick, load_before, time.perf_counter() - started):
        out(line)
    out("")
    out(markdown(rows))
    if args.json is not None:
        records = [dataclasses.asdict(r) for r in rows]
        args.json.write_text(json.dumps(records, indent=1), encoding="utf-8")
    missed = [r.measure for r in rows if r.ok is False]
    return 1 if args.strict and missed else 0
