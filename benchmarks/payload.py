"""What a page spends on attention, and what bertviz and plain 8-bit rounding would."""

from __future__ import annotations

import base64
import gzip
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .measure import output, script


def eight_bit(attention: Any) -> float:
    """Bytes/value of plain 8-bit rounding, gzip and base64: the issue's reference method."""
    import numpy as np

    data = np.rint(np.asarray(attention) * 255).astype(np.uint8).tobytes()
    return len(base64.b64encode(gzip.compress(data, 9))) / np.asarray(attention).size


def report_payload(path: Path) -> tuple[int, int]:
    """(base64 characters of attention data, attention values) in a written report.

    Reads the page format of reportgen/store.py: each sentence block's `maps`."""
    text = path.read_text(encoding="utf-8")
    chars = values = 0
    for block in re.findall(
        r'<script type="application/json" id="rg-data-[^"]*">(.*?)</script>', text, re.S
    ):
        for m in json.loads(block).get("maps", ()):  # pair blocks hold no maps
            chars += len(m["data"])
            values += m["layers"] * m["heads"] * m["n_query"] * m["n_key"]
    if values == 0:
        raise RuntimeError(f"{path}: no attention data found")
    return chars, values


def bertviz_bytes(attentions: Sequence[Any], tokens: Sequence[Sequence[str]]) -> int:
    """Total size of bertviz's head_view HTML, one view per sentence."""
    import torch
    from bertviz import head_view

    total = 0
    for att, toks in zip(attentions, tokens, strict=True):
        layers = tuple(torch.from_numpy(a[None]) for a in att)
        html = head_view(layers, list(toks), html_action="return")
        total += len(html.data.encode("utf-8"))
    return total


def bertviz_subprocess(attention_file: Path) -> tuple[int, float, int]:
    """bertviz on a saved array in its own process: (bytes, seconds, peak RSS in bytes)."""
    size, seconds, peak = output(script("bertviz_view.py", attention_file), "bertviz").split()
    return int(size), float(seconds), int(peak)
