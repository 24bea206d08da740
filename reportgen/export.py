"""`--export-json`: the raw numbers behind a report, at full float precision."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from reportgen.config import Extraction, LongAttention, LongExtraction
from reportgen.errors import InputError
from reportgen.render import atomic_path

# Decimals the long-input export keeps (see _rounded).
LONG_DECIMALS = 6


def export_data(
    extraction: Extraction,
    extra: list[dict[str, Any]] | None = None,
    pairs: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The export document: model facts, then one item per sentence in report order.

    `attention` is layers x heads x n x n (the primary map). Encoder-decoder models
    add `decoder_attention` and `cross_attention`; `extra` merges per-item analysis
    numbers (focus, entropy, rollout) and `pairs` the minimal-pair summaries.
    """
    model = extraction.model
    items = []
    for i, result in enumerate(extraction.results):
        primary = result.maps[0]
        item: dict[str, Any] = {
            "text": result.item.text,
            "tokens": list(primary.query.tokens),
            "attention": primary.attention.tolist(),
        }
        if result.item.text_pair is not None:
            item["text_pair"] = result.item.text_pair
        for amap in result.maps[1:]:
            key = amap.name.lower().replace("-", "_").replace(" ", "_")
            item[key.replace("_self_attention", "_attention")] = {
                "query_tokens": list(amap.query.tokens),
                "key_tokens": list(amap.key.tokens),
                "attention": amap.attention.tolist(),
            }
        if result.next_tokens:
            item["next_tokens"] = [
                {"token": t.token, "probability": t.probability} for t in result.next_tokens
            ]
        if extra is not None and i < len(extra):
            item.update(extra[i])
        items.append(item)
    return {
        "model": {
            "name": model.name,
            "architecture": model.architecture,
            "kind": model.kind,
            "layers": model.layers,
            "heads": model.heads,
        },
        "items": items,
        "pairs": pairs or [],
    }


def write_export(path: Path, data: dict[str, Any]) -> int:
    """Write the export atomically; return its size in bytes."""
    # float32 values widened to Python floats keep every bit; json writes them exactly.
    text = json.dumps(data, ensure_ascii=False, allow_nan=False)
    try:
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write '{path}': {exc.strerror or exc}") from None
    return len(text.encode("utf-8"))


def _rounded(values: Any) -> Any:
    """Nested lists of values rounded to 1e-6: about 8 characters a value in JSON instead
    of 20, far inside the 0.002 a page's store keeps."""
    return np.round(np.asarray(values, dtype=np.float64), LONG_DECIMALS).tolist()


def _long_map(amap: LongAttention) -> dict[str, Any]:
    return {
        "name": amap.name,
        "query_tokens": list(amap.query.tokens),
        "key_tokens": list(amap.key.tokens),
        "causal": amap.causal,
        "overview": {
            # Rows: mean over the query block; columns: sum over the key block.
            "query_blocks": [list(b) for b in amap.query_blocks],
            "key_blocks": [list(b) for b in amap.key_blocks],
            "attention": _rounded(amap.overview),
        },
        "rows": [
            {"position": r.position, "token": r.token, "attention": _rounded(r.attention)}
            for r in amap.rows
        ],
        "first_position_share": _rounded(amap.first_share),
        "entropy": amap.entropy.tolist(),
    }


def long_export_data(extraction: LongExtraction) -> dict[str, Any]:
    """The export of long inputs: per item, the primary map's overview per head and its
    exact rows (``items[i]["rows"] = [{"position", "token", "attention": [L][H][n]}]``,
    always the last position, and the focus word's pieces when there is a focus); other
    maps of encoder-decoder models under ``decoder_attention`` and ``cross_attention``.
    No full ``attention`` array: a long input is over the page budget by definition.
    Attention values are rounded to 1e-6 (``LONG_DECIMALS``).
    """
    model = extraction.model
    items = []
    for result in extraction.results:
        primary = _long_map(result.maps[0])
        item: dict[str, Any] = {"text": result.item.text, "tokens": primary.pop("query_tokens")}
        del primary["key_tokens"], primary["name"]
        item.update(primary)
        if result.item.text_pair is not None:
            item["text_pair"] = result.item.text_pair
        for amap in result.maps[1:]:
            key = amap.name.lower().replace("-", "_").replace(" ", "_")
            item[key.replace("_self_attention", "_attention")] = _long_map(amap)
        if result.next_tokens:
            item["next_tokens"] = [
                {"token": t.token, "probability": t.probability} for t in result.next_tokens
            ]
        if result.truncated:
            item["truncated"] = True
        items.append(item)
    return {
        "model": {
            "name": model.name,
            "architecture": model.architecture,
            "kind": model.kind,
            "layers": model.layers,
            "heads": model.heads,
        },
        "items": items,
        "pairs": [],
    }
