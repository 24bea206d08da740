"""Size and speed of reportgen, measured side by side with bertviz and the model's own floor.

Run from the repository root (``make bench``, ``python -m benchmarks`` or
``python benchmarks/bench.py``); it prints one Markdown table:
measure | reportgen | reference | ratio/target | pass. Every figure comes from this run:
the floor is a bare script that loads the same model and runs the same forward pass,
bertviz's sizes come from ``bertviz.head_view`` on the same attention, and browser times
from headless Chromium (``/usr/bin/chromium``) with the flags the browser tests use.

``--quick`` runs each timing once, with 200 instead of 1,000 sentences for throughput
and without bertviz on the 512-token input (its ~8 GB run is estimated from 256 tokens).
``--list`` names the suites, ``--only NAME`` runs some of them.

Layout: ``suites/`` (one module per suite, each ``rows(ctx) -> list[Row]``),
``targets.py`` (every target), ``table.py`` (rows and the table), ``scripts/`` (the
programs run in their own process), ``fixtures.py`` (inputs, models and pages that
several suites share), ``cli.py`` (the options).
"""
