"""`--from-export` of a long-input export: the reduced page again, with no model.

A long export (:func:`reportgen.export.long_export_data`) holds per input what its page
shows of each map (the block-pooled overview, the exact rows, the first-position share and
the entropy per head) and, in its ``reportgen_export`` record
(:func:`reportgen.export.long_render_record`, ``"long": true``), the options, the model
record, the warnings and each input with its maps' tokens as the page labels them. From
them this module rebuilds the :class:`~reportgen.config.LongExtraction` and renders it
through the long page's one renderer (:func:`reportgen.pipeline.
report_from_long_extraction`): the page was built from the values at the export's
precision (:func:`reportgen.export.long_precision`), so it comes back byte for byte.

Every field is checked as :mod:`reportgen.rerender` checks a short export's (shapes
against the blocks, the tokens and the model record, positions in range, finite weights
whose rows sum to 1), and a bad one refused in one line naming it. A map's fields are
read by :func:`_long_map`, the primary map's context-mixing measures (where the options
name them and the self-check kept them) by :func:`_measures`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from reportgen.config import (
    ExactRow,
    LongAttention,
    LongExtraction,
    LongMeasures,
    LongResult,
    ModelInfo,
    ReportConfig,
    TokenSeq,
)
from reportgen.errors import InputError
from reportgen.export import LONG_RECORD_VERSION, MAP_KEYS, RECORD_KEY
from reportgen.mixing import ALTI, NORM, NORM_LAYER
from reportgen.pipeline import _check_items
from reportgen.rerender import (
    _array,
    _at,
    _bool,
    _each,
    _field,
    _int,
    _list,
    _next_tokens,
    _opt_int,
    _opt_str,
    _sentence,
    _str,
    _str_value,
    checked_header,
    map_heads,
    row_tolerance,
)

# The measures a long input carries (config.LongMeasures: no ALTI rollout, which needs
# every layer's full map).
LONG_MEASURES = (NORM, NORM_LAYER, ALTI)
# What the export's rounding (export.LONG_DECIMALS, each row's total kept) may add to a
# row's distance from 1, beyond what the run's precision allows.
ROUNDING_SLACK = 1e-6


def is_long(data: Any) -> bool:
    """Whether `data` is a long-input export (its record says ``"long": true``)."""
    record = data.get(RECORD_KEY) if isinstance(data, dict) else None
    return isinstance(record, dict) and record.get("long") is True


def _blocks(value: Any, where: str, n: int) -> tuple[tuple[int, int], ...]:
    """``[start, end)`` token ranges that tile ``0..n`` in order."""
    if not isinstance(value, list) or not value:
        raise InputError(f"{where}: expected a list of [start, end) token ranges")
    out: list[tuple[int, int]] = []
    for i, b in enumerate(value):
        start = out[-1][1] if out else 0
        if (
            not isinstance(b, list)
            or len(b) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in b)
            or b[0] != start
            or not start < b[1] <= n
        ):
            raise InputError(
                f"{where}[{i}]: expected [{start}, end) with end up to {n} (the blocks "
                f"tile the {n} tokens in order), got {b!r}"
            )
        out.append((b[0], b[1]))
    if out[-1][1] != n:
        raise InputError(f"{where}: the blocks end at token {out[-1][1]}, the tokens are {n}")
    return tuple(out)


def _stochastic(
    value: Any, where: str, shape: tuple[int, ...], names: tuple[str, ...], tolerance: float
) -> NDArray[np.float32]:
    """Weights of `shape` (each axis named for the message), >= 0, each last-axis row
    summing to 1 within `tolerance`."""
    arr = _array(value, where, (None,) * len(shape))
    for got, want, name in zip(arr.shape, shape, names, strict=True):
        if got != want:
            raise InputError(f"{where}: {got} {name}, {_expected(name, want)}")
    if (arr < 0).any():
        at = tuple(int(i) for i in np.argwhere(arr < 0)[0])
        raise InputError(f"{where}{_index(at)}: {float(arr[at])!r} is a negative weight")
    sums = arr.sum(axis=-1)
    off = np.abs(sums - 1.0) > tolerance
    if off.any():
        at = tuple(int(i) for i in np.argwhere(off)[0])
        raise InputError(
            f"{where}{_index(at)}: the row sums to {float(sums[at]):.6g}, not 1 (within "
            f"{tolerance:.2g})"
        )
    return arr.astype(np.float32)


def _index(at: tuple[int, ...]) -> str:
    return "".join(f"[{i}]" for i in at)


def _expected(name: str, want: int) -> str:
    # Who says how many: the model record, the blocks or the tokens.
    source = {
        "layers": "the model record says",
        "heads": "the model record says",
        "query blocks": "the query_blocks are",
        "key blocks": "the key_blocks are",
        "keys": "the key tokens are",
    }[name]
    return f"{source} {want}"


def _grid(value: Any, where: str, model: ModelInfo, high: float | None) -> NDArray[np.float64]:
    """A ``[layers][heads]`` grid of finite values from 0 (to `high`, where given)."""
    arr = _array(value, where, (None, None))
    shape = (model.layers, model.heads)
    for got, want, name in zip(arr.shape, shape, ("layers", "heads"), strict=True):
        if got != want:
            raise InputError(f"{where}: {got} {name}, the model record says {want}")
    bad = arr < 0 if high is None else (arr < 0) | (arr > high)
    if bad.any():
        at = tuple(int(i) for i in np.argwhere(bad)[0])
        top = "" if high is None else f" to {high:g}"
        raise InputError(f"{where}{_index(at)}: {float(arr[at])!r} is not from 0{top}")
    return arr


def _long_map(
    source: Any,
    where: str,
    mid: str,
    name: str,
    query: TokenSeq,
    key: TokenSeq,
    model: ModelInfo,
    tolerance: float,
    measures: tuple[str, ...] = (),
) -> LongAttention:
    """One map's reduced view: `source` is the item (the primary map) or its
    ``decoder_attention`` / ``cross_attention`` object, `where` its path; `measures` the
    context-mixing measures it carries (the primary map's, where kept)."""
    nq, nk = len(query.tokens), len(key.tokens)
    layers, heads = model.layers, model.heads
    overview = _field(source, "overview", where)
    ow = _at(where, "overview")
    query_blocks = _blocks(_field(overview, "query_blocks", ow), f"{ow}.query_blocks", nq)
    key_blocks = _blocks(_field(overview, "key_blocks", ow), f"{ow}.key_blocks", nk)
    pooled = _stochastic(
        _field(overview, "attention", ow),
        f"{ow}.attention",
        (layers, heads, len(query_blocks), len(key_blocks)),
        ("layers", "heads", "query blocks", "key blocks"),
        tolerance,
    )
    rows: list[ExactRow] = []
    rw = _at(where, "rows")
    for r, row in enumerate(_list(source, "rows", where)):
        w = f"{rw}[{r}]"
        position = _int(row, "position", w)
        if position >= nq:
            raise InputError(f"{w}.position: {position} is not a token position (0-{nq - 1})")
        if rows and position <= rows[-1].position:
            raise InputError(
                f"{w}.position: {position} is not after the row before's {rows[-1].position}"
            )
        token = _str(row, "token", w)
        if token != query.display[position]:
            raise InputError(
                f"{w}.token: {token[:40]!r} is not token {position}'s label "
                f"{query.display[position][:40]!r}"
            )
        attention = _stochastic(
            _field(row, "attention", w),
            f"{w}.attention",
            (layers, heads, nk),
            ("layers", "heads", "keys"),
            tolerance,
        )
        rows.append(ExactRow(position, token, attention))
    if not rows or rows[-1].position != nq - 1:
        raise InputError(f"{rw}: the last row is not the last position's ({nq - 1})")
    first = _grid(
        _field(source, "first_position_share", where),
        _at(where, "first_position_share"),
        model,
        1.0 + tolerance,
    )
    entropy = _grid(_field(source, "entropy", where), _at(where, "entropy"), model, None)
    kept = None
    if measures:
        kept = _measures(
            _field(source, "measures", where),
            _at(where, "measures"),
            measures,
            (layers, heads, len(query_blocks), len(key_blocks), nk, len(rows)),
            tolerance,
        )
    elif "measures" in source:
        raise InputError(f"{_at(where, 'measures')}: the options name no measures")
    return LongAttention(
        id=mid,
        name=name,
        query=query,
        key=key,
        query_blocks=query_blocks,
        key_blocks=key_blocks,
        overview=pooled,
        rows=tuple(rows),
        first_share=first.astype(np.float32),
        entropy=entropy,
        causal=_bool(source, "causal", where),
        measures=kept,
    )


def _measures(
    source: Any,
    where: str,
    names: tuple[str, ...],
    shape: tuple[int, int, int, int, int, int],
    tolerance: float,
) -> LongMeasures:
    """A long map's context-mixing measures (config.LongMeasures): norm's overview and
    every named measure's exact rows, each row a distribution over the keys."""
    layers, heads, nqb, nkb, nk, count = shape
    if not isinstance(source, dict) or set(source) != set(names):
        got = sorted(source) if isinstance(source, dict) else type(source).__name__
        raise InputError(f"{where}: {got}, the options name {list(names)}")
    overview = None
    rows = []
    for name in names:
        w = f"{where}.{name}"
        h = heads if name == NORM else 1
        if name == NORM:
            overview = _stochastic(
                _field(source[name], "overview", w),
                f"{w}.overview",
                (layers, heads, nqb, nkb),
                ("layers", "heads", "query blocks", "key blocks"),
                tolerance,
            )
        listed = _list(source[name], "rows", w)
        if len(listed) != count:
            raise InputError(f"{w}.rows: {len(listed)} rows, the map has {count}")
        rows.append(
            (
                name,
                np.stack(
                    [
                        _stochastic(
                            r,
                            f"{w}.rows[{i}]",
                            (layers, h, nk),
                            ("layers", "heads", "keys"),
                            tolerance,
                        )
                        for i, r in enumerate(listed)
                    ]
                ),
            )
        )
    return LongMeasures(norm_overview=overview, rows=tuple(rows))


def _result(
    item: Any,
    record: Any,
    i: int,
    model: ModelInfo,
    tolerance: float,
    measures: tuple[str, ...] = (),
) -> LongResult:
    where = f"items[{i}]"
    rwhere = f"{RECORD_KEY}.items[{i}]"
    sentence = _sentence(_field(record, "input", rwhere), _at(rwhere, "input"), f"{rwhere}.input")
    if _str(item, "text", where) != sentence.text:
        raise InputError(f"{where}.text: not the text of {rwhere}.input")
    if item.get("text_pair") != sentence.text_pair:
        raise InputError(f"{where}.text_pair: not the text_pair of {rwhere}.input")
    truncated = _bool(record, "truncated", rwhere)
    if item.get("truncated", False) is not truncated:
        raise InputError(f"{where}.truncated: not {rwhere}.truncated ({truncated})")
    maps = []
    for m, (mwhere, mid, query, key, mrec) in enumerate(map_heads(record, rwhere)):
        if m == 0:
            source, swhere = item, where
            if _str(item, "attention_map", where) != mid:
                raise InputError(f"{where}.attention_map: not {mwhere}.id ({mid!r})")
            tokens = _each(_list(item, "tokens", where), f"{where}.tokens", _str_value)
            if tuple(tokens) != query.tokens:
                raise InputError(f"{where}.tokens: not the tokens of {mwhere}.query")
        else:
            field = MAP_KEYS.get(mid, f"{mid}_attention")
            source, swhere = _field(item, field, where), f"{where}.{field}"
            if _field(source, "map", swhere) != mid:
                raise InputError(f"{swhere}.map: not {mwhere}.id ({mid!r})")
            for side, seq in (("query", query), ("key", key)):
                got = _each(
                    _list(source, f"{side}_tokens", swhere), f"{swhere}.{side}_tokens", _str_value
                )
                if tuple(got) != seq.tokens:
                    raise InputError(f"{swhere}.{side}_tokens: not the tokens of {mwhere}.{side}")
        name = _str(mrec, "name", mwhere)
        kept = measures if m == 0 else ()
        maps.append(_long_map(source, swhere, mid, name, query, key, model, tolerance, kept))
    next_tokens = (
        _next_tokens(item["next_tokens"], f"{where}.next_tokens") if "next_tokens" in item else ()
    )
    return LongResult(item=sentence, maps=tuple(maps), truncated=truncated, next_tokens=next_tokens)


def read_long_export(
    data: Any, title: str | None = None, layer: int | None = None, head: int | None = None
) -> tuple[LongExtraction, ReportConfig]:
    """The reduced extraction and the options a long export was rendered from, every
    field checked; `title`, `layer`, `head` replace the recorded ones where given."""
    record = _field(data, RECORD_KEY, "")
    version = _field(record, "version", RECORD_KEY)
    if version != LONG_RECORD_VERSION:
        before = (
            " (written before long exports recorded their tokens and options: run the model again)"
            if version == 1
            else " (re-export with this version)"
        )
        raise InputError(
            f"{RECORD_KEY}.version: {version!r}; this reportgen reads long-input exports of "
            f"version {LONG_RECORD_VERSION}{before}"
        )
    ow = f"{RECORD_KEY}.options"
    options = _field(record, "options", RECORD_KEY)
    cfg = ReportConfig(
        title=_opt_str(options, "title", ow) if title is None else title,
        layer=_opt_int(options, "layer", ow, 1) if layer is None else layer,
        head=_opt_int(options, "head", ow, 1) if head is None else head,
        dtype=_str(options, "dtype", ow),
        measures=tuple(_each(_list(options, "measures", ow), f"{ow}.measures", _str_value)),
    )
    model, items, records = checked_header(data, record, cfg, title is None, "input")
    tolerance = row_tolerance(cfg.dtype) + ROUNDING_SLACK
    withheld = data.get("measures_withheld") if isinstance(data, dict) else None
    if withheld is not None and not isinstance(withheld, str):
        raise InputError(f"measures_withheld: {type(withheld).__name__}, not a line of text")
    # Where the self-check withheld them, the items carry none.
    carried = () if withheld is not None else cfg.measures
    if not set(carried) <= set(LONG_MEASURES):
        raise InputError(
            f"{ow}.measures: {list(cfg.measures)}; a long input carries "
            f"{', '.join(LONG_MEASURES)} (no rollout)"
        )
    results = tuple(
        _result(item, rec, i, model, tolerance, carried)
        for i, (item, rec) in enumerate(zip(items, records, strict=True))
    )
    if _list(data, "pairs", ""):
        raise InputError("pairs: a long-input export has no minimal pairs")
    _check_items([r.item for r in results])  # the limits and words every path in checks
    warnings = _each(_list(record, "warnings", RECORD_KEY), f"{RECORD_KEY}.warnings", _str_value)
    extraction = LongExtraction(
        model=model, results=results, warnings=tuple(warnings), measures_withheld=withheld
    )
    return extraction, cfg
