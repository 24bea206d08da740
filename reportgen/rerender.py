"""`--from-export`: the page again, from an ``--export-json`` file, with no model.

The export's items hold every weight (``attention``, the secondary maps, ``measures``,
``qk``, ``next_tokens``); its ``reportgen_export`` record (:func:`reportgen.export.
render_record`) holds the rest the page was built from: the options, the model record,
the warnings, each sentence's input and tokens as the page labels them, the minimal
pairs and where each asked its question. From them this module rebuilds the engine's
typed :class:`~reportgen.config.Extraction` and renders it through the one renderer
(:func:`reportgen.pipeline.report_from_extraction`), so the same options give the same
page byte for byte.

A long-input export (``"long": true`` in its record) is read by
:mod:`reportgen.rerender_long` into the long page's reduced extraction instead.

A file from another version, or one edited into inconsistency (a missing field, a wrong
type, shapes that disagree with the tokens or the model record, weights that are not
probabilities) is refused with one :class:`~reportgen.errors.InputError` line naming the
field, before anything renders.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from reportgen.config import (
    AttentionMap,
    AttentionResult,
    Extraction,
    InputBatch,
    Measures,
    ModelInfo,
    NextToken,
    QueriesKeys,
    ReportConfig,
    SentenceInput,
    TokenSeq,
)
from reportgen.errors import InputError
from reportgen.export import MAP_KEYS, RECORD_KEY, RECORD_VERSION
from reportgen.extract import ROW_SUM_TOLERANCE
from reportgen.inputs import MAX_TITLE_CHARS, check_text
from reportgen.pipeline import (
    Report,
    _check_config,
    _check_items,
    report_from_extraction,
    report_from_long_extraction,
)
from reportgen.report.pairs import PairQuery

T = TypeVar("T")

KINDS = ("encoder", "causal", "encoder-decoder")
MEASURE_FIELDS = ("norm", "norm_layer", "alti", "alti_rollout")
# The largest export read (a page's export is far smaller: the page budget is ~2M values).
MAX_EXPORT_BYTES = 2 * 1024**3


# Each dtype's machine epsilon: a run's rows sum to 1 within what its precision rounds.
EPS = {"float32": 2.0**-23, "float16": 2.0**-10, "bfloat16": 2.0**-7}


def row_tolerance(dtype: str) -> float:
    """How far from 1 a row of a run in `dtype` may sum (as extract._row_tolerance)."""
    return max(ROW_SUM_TOLERANCE, 8 * EPS.get(dtype, EPS["bfloat16"]))


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _field(obj: Any, key: str, where: str) -> Any:
    if not isinstance(obj, dict):
        raise InputError(f"{where or 'the export'}: expected an object, got a {_type_name(obj)}")
    if key not in obj:
        raise InputError(f"{_at(where, key)}: missing")
    return obj[key]


def _at(where: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{where}[{key}]"
    return f"{where}.{key}" if where else key


def _typed(obj: Any, key: str, where: str, kind: type[T] | tuple[type, ...], what: str) -> T:
    value = _field(obj, key, where)
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _types(kind)):
        raise InputError(f"{_at(where, key)}: expected {what}, got a {_type_name(value)}")
    return value  # type: ignore[return-value]


def _types(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _str(obj: Any, key: str, where: str) -> str:
    return _typed(obj, key, where, str, "a string")


def _opt_str(obj: Any, key: str, where: str) -> str | None:
    if _field(obj, key, where) is None:
        return None
    return _str(obj, key, where)


def _int(obj: Any, key: str, where: str, low: int = 0) -> int:
    value: int = _typed(obj, key, where, int, "a whole number")
    if value < low:
        raise InputError(f"{_at(where, key)}: {value} is below {low}")
    return value


def _opt_int(obj: Any, key: str, where: str, low: int = 0) -> int | None:
    if _field(obj, key, where) is None:
        return None
    return _int(obj, key, where, low)


def _bool(obj: Any, key: str, where: str) -> bool:
    return _typed(obj, key, where, bool, "true or false")


def _list(obj: Any, key: str, where: str) -> list[Any]:
    return _typed(obj, key, where, list, "a list")


def _each(values: list[Any], where: str, check: Callable[[Any, str], T]) -> list[T]:
    return [check(v, f"{where}[{i}]") for i, v in enumerate(values)]


def _str_value(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise InputError(f"{where}: expected a string, got a {_type_name(value)}")
    return value


def _array(value: Any, where: str, shape: Sequence[int | None]) -> NDArray[np.float64]:
    """Nested lists of finite numbers with `shape` (None: any size) as float64."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(
            f"{where}: expected a {len(shape)}-dimensional array of numbers (ragged or not numbers)"
        ) from None
    if arr.ndim != len(shape):
        raise InputError(
            f"{where}: expected a {len(shape)}-dimensional array, got {arr.ndim} dimensions"
        )
    for axis, (got, want) in enumerate(zip(arr.shape, shape, strict=True)):
        if want is not None and got != want:
            raise InputError(f"{where}: dimension {axis + 1} has {got} entries, expected {want}")
    if not np.isfinite(arr).all():
        raise InputError(f"{where}: holds a value that is not a finite number")
    return arr


def _float32(value: Any, where: str, shape: Sequence[int | None]) -> NDArray[np.float32]:
    # The export widened float32 values to Python floats exactly; narrowing keeps every bit.
    return _array(value, where, shape).astype(np.float32)


def _token_seq(obj: Any, where: str) -> TokenSeq:
    tokens = _each(_list(obj, "tokens", where), _at(where, "tokens"), _str_value)
    n = len(tokens)
    if not n:
        raise InputError(f"{_at(where, 'tokens')}: empty")
    display = _each(_list(obj, "display", where), _at(where, "display"), _str_value)

    def word_id(v: Any, w: str) -> int | None:
        if v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0):
            return v
        raise InputError(f"{w}: expected a word number or null, got {v!r}")

    def offset(v: Any, w: str) -> tuple[int, int]:
        if (
            isinstance(v, list)
            and len(v) == 2
            and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in v)
            and v[0] <= v[1]
        ):
            return (v[0], v[1])
        raise InputError(f"{w}: expected [start, end] character positions, got {v!r}")

    def flag(v: Any, w: str) -> bool:
        if isinstance(v, bool):
            return v
        raise InputError(f"{w}: expected true or false, got a {_type_name(v)}")

    word_ids = _each(_list(obj, "word_ids", where), _at(where, "word_ids"), word_id)
    offsets = _each(_list(obj, "offsets", where), _at(where, "offsets"), offset)
    special = _each(_list(obj, "special", where), _at(where, "special"), flag)
    text = _str(obj, "text", where)
    for key, values in (
        ("display", display),
        ("word_ids", word_ids),
        ("offsets", offsets),
        ("special", special),
    ):
        if len(values) != n:
            raise InputError(f"{_at(where, key)}: {len(values)} entries, the tokens are {n}")
    for i, (start, end) in enumerate(offsets):
        if end > len(text):
            raise InputError(
                f"{_at(where, 'offsets')}[{i}]: [{start}, {end}] is past the text's "
                f"{len(text)} characters"
            )
    return TokenSeq(
        tokens=tuple(tokens),
        display=tuple(display),
        word_ids=tuple(word_ids),
        offsets=tuple(offsets),
        special=tuple(special),
        text=text,
    )


def _model(obj: Any, where: str) -> ModelInfo:
    kind = _str(obj, "kind", where)
    if kind not in KINDS:
        raise InputError(f"{_at(where, 'kind')}: {kind!r} is not one of {', '.join(KINDS)}")
    return ModelInfo(
        name=_str(obj, "name", where),
        architecture=_str(obj, "architecture", where),
        kind=kind,  # type: ignore[arg-type]
        layers=_int(obj, "layers", where, 1),
        heads=_int(obj, "heads", where, 1),
        max_length=_opt_int(obj, "max_length", where, 1),
    )


def _sentence(obj: Any, where: str, source: str) -> SentenceInput:
    candidates = _each(_list(obj, "candidates", where), _at(where, "candidates"), _str_value)
    answer = _opt_str(obj, "answer", where)
    if answer is not None and answer not in candidates:
        raise InputError(f"{_at(where, 'answer')}: {answer[:40]!r} is not one of the candidates")
    return SentenceInput(
        text=_str(obj, "text", where),
        focus=_opt_str(obj, "focus", where),
        candidates=tuple(candidates),
        answer=answer,
        text_pair=_opt_str(obj, "text_pair", where),
        target=_opt_str(obj, "target", where),
        source=source,
    )


def _weights(
    value: Any,
    where: str,
    layers: int,
    heads: int,
    query: TokenSeq,
    key: TokenSeq,
    tolerance: float,
) -> NDArray[np.float32]:
    """A map's weights, every one checked as given attention is (given._check_weights)."""
    from reportgen.given import _check_weights

    nq, nk = len(query.tokens), len(key.tokens)
    arr = _array(value, where, (None, None, None, None))
    got = arr.shape
    if got[0] != layers:
        raise InputError(f"{where}: {got[0]} layers, the model record says {layers}")
    if got[1] != heads:
        raise InputError(f"{where}: {got[1]} heads, the model record says {heads}")
    if got[2] != nq:
        raise InputError(f"{where}: {got[2]} query rows, the tokens are {nq}")
    if got[3] != nk:
        raise InputError(f"{where}: {got[3]} key columns, the tokens are {nk}")
    out, _ = _check_weights(list(arr), where, query.display, None, tolerance)
    return out


def _measures(value: Any, where: str, layers: int, heads: int, n: int) -> Measures:
    if not isinstance(value, dict):
        raise InputError(f"{where}: expected an object, got a {_type_name(value)}")
    unknown = sorted(set(value) - set(MEASURE_FIELDS))
    if unknown:
        raise InputError(f"{_at(where, unknown[0])}: not a measure ({', '.join(MEASURE_FIELDS)})")
    got: dict[str, NDArray[np.float32]] = {}
    for name, v in value.items():
        shape = (layers, heads, n, n) if name == "norm" else (layers, n, n)
        got[name] = _float32(v, _at(where, name), shape)
    return Measures(**got)


def _qk(obj: Any, where: str, layers: int, heads: int, n: int) -> QueriesKeys:
    if _int(obj, "layers", where, 1) != layers:
        raise InputError(f"{_at(where, 'layers')}: not the model record's {layers}")
    if _int(obj, "heads", where, 1) != heads:
        raise InputError(f"{_at(where, 'heads')}: not the model record's {heads}")
    kv = _int(obj, "kv_heads", where, 1)
    dim = _int(obj, "head_dim", where, 1)

    def number(v: Any, w: str) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise InputError(f"{w}: expected a number, got {v!r}")
        return float(v)

    scaling = _each(_list(obj, "scaling", where), _at(where, "scaling"), number)
    if len(scaling) != layers:
        raise InputError(f"{_at(where, 'scaling')}: {len(scaling)} entries, {layers} layers")
    bias = None
    if "position_bias" in obj:
        bias = _float32(obj["position_bias"], _at(where, "position_bias"), (layers, heads, n, n))
    return QueriesKeys(
        queries=_float32(_field(obj, "q", where), _at(where, "q"), (layers, heads, n, dim)),
        keys=_float32(_field(obj, "k", where), _at(where, "k"), (layers, kv, n, dim)),
        scaling=tuple(scaling),
        bias=bias,
        rotary=_bool(obj, "rotary", where),
    )


def _next_tokens(value: Any, where: str) -> tuple[NextToken, ...]:
    if not isinstance(value, list):
        raise InputError(f"{where}: expected a list, got a {_type_name(value)}")
    out = []
    for i, t in enumerate(value):
        w = f"{where}[{i}]"
        p: float = _typed(t, "probability", w, (int, float), "a number")
        if not 0 <= p <= 1:
            raise InputError(f"{_at(w, 'probability')}: {p!r} is not a probability")
        out.append(NextToken(token=_str(t, "token", w), probability=float(p)))
    return tuple(out)


def _query(obj: Any, where: str, na: int, nb: int) -> PairQuery:
    def positions(key: str, n: int) -> tuple[int, ...]:
        values = _list(obj, key, where)
        for i, v in enumerate(values):
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < n:
                raise InputError(
                    f"{_at(where, key)}[{i}]: {v!r} is not a token position (0-{n - 1})"
                )
        return tuple(values)

    words = _each(_list(obj, "words", where), _at(where, "words"), _str_value)
    if len(words) != 2:
        raise InputError(f"{_at(where, 'words')}: {len(words)} entries, expected 2 (A and B)")
    return PairQuery(
        at=_str(obj, "at", where),
        positions=(positions("positions_a", na), positions("positions_b", nb)),
        words=(words[0], words[1]),
        where=_str(obj, "where", where),
        note=_opt_str(obj, "note", where),
    )


def _result(
    item: Any, record: Any, i: int, model: ModelInfo, qk_in_item: bool, tolerance: float
) -> AttentionResult:
    where = f"items[{i}]"
    rwhere = f"{RECORD_KEY}.items[{i}]"
    sentence = _sentence(_field(record, "input", rwhere), _at(rwhere, "input"), f"{rwhere}.input")
    text = _str(item, "text", where)
    if text != sentence.text:
        raise InputError(f"{where}.text: not the text of {rwhere}.input")
    maps = []
    for m, (mwhere, mid, query, key, mrec) in enumerate(map_heads(record, rwhere)):
        if m == 0:
            if _str(item, "attention_map", where) != mid:
                raise InputError(f"{where}.attention_map: not {mwhere}.id ({mid!r})")
            tokens = _each(_list(item, "tokens", where), f"{where}.tokens", _str_value)
            if tuple(tokens) != query.tokens:
                raise InputError(f"{where}.tokens: not the tokens of {mwhere}.query")
            field = f"{where}.attention"
            source: Any = item
        else:
            name = MAP_KEYS.get(mid, f"{mid}_attention")
            source = _field(item, name, where)
            field = f"{where}.{name}.attention"
            if _field(source, "map", f"{where}.{name}") != mid:
                raise InputError(f"{where}.{name}.map: not {mwhere}.id ({mid!r})")
        attention = _weights(
            _field(source, "attention", field.rsplit(".", 1)[0]),
            field,
            model.layers,
            model.heads,
            query,
            key,
            tolerance,
        )
        b_start = _opt_int(mrec, "sentence_b_start", mwhere, 1)
        if b_start is not None and b_start >= len(query.tokens):
            raise InputError(f"{mwhere}.sentence_b_start: {b_start} is past the tokens")
        n = len(query.tokens)
        measures = None
        qk = None
        if m == 0:
            if "measures" in item:
                measures = _measures(
                    item["measures"], f"{where}.measures", model.layers, model.heads, n
                )
            if qk_in_item and "qk" in item:
                qk = _qk(item["qk"], f"{where}.qk", model.layers, model.heads, n)
            elif "qk" in record:
                qk = _qk(record["qk"], f"{rwhere}.qk", model.layers, model.heads, n)
        maps.append(
            AttentionMap(
                _str(mrec, "name", mwhere),
                query,
                key,
                attention,
                causal=_bool(mrec, "causal", mwhere),
                sentence_b_start=b_start,
                id=mid,
                measures=measures,
                qk=qk,
            )
        )
    next_tokens = (
        _next_tokens(item["next_tokens"], f"{where}.next_tokens") if "next_tokens" in item else ()
    )
    return AttentionResult(
        item=sentence,
        maps=tuple(maps),
        truncated=_bool(record, "truncated", rwhere),
        next_tokens=next_tokens,
    )


def _load(path: Path) -> Any:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"--from-export: cannot read {path}: {exc.strerror or exc}") from None
    if size > MAX_EXPORT_BYTES:
        raise InputError(f"--from-export: {path} is {size / 1e9:.1f} GB, over the 2 GB read")

    def no_constant(name: str) -> Any:
        raise InputError(f"--from-export: {path} holds {name}, which an export never writes")

    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f, parse_constant=no_constant)
    except OSError as exc:
        raise InputError(f"--from-export: cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"--from-export: {path} is not UTF-8 text (not an export)") from None
    except json.JSONDecodeError as exc:
        raise InputError(
            f"--from-export: {path} is not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except RecursionError:
        raise InputError(f"--from-export: {path} nests too deep to be an export") from None


def map_heads(record: Any, rwhere: str) -> list[tuple[str, str, TokenSeq, TokenSeq, Any]]:
    """An item record's maps, each as its path, id, query and key tokens (the key's None
    in the file: the query's own) and its record; at least one."""
    map_records = _list(record, "maps", rwhere)
    if not map_records:
        raise InputError(f"{rwhere}.maps: empty")
    out = []
    for m, mrec in enumerate(map_records):
        mwhere = f"{rwhere}.maps[{m}]"
        query = _token_seq(_field(mrec, "query", mwhere), f"{mwhere}.query")
        key_rec = _field(mrec, "key", mwhere)
        key = query if key_rec is None else _token_seq(key_rec, f"{mwhere}.key")
        out.append((mwhere, _str(mrec, "id", mwhere), query, key, mrec))
    return out


def checked_header(
    data: Any, record: Any, cfg: ReportConfig, own_title: bool, unit: str
) -> tuple[ModelInfo, list[Any], list[Any]]:
    """What every export's reader checks first, short or long: the options `cfg` read from
    the record (`own_title`: its title is the record's), the model record against the
    export's own, the layer and head within it, and one record per item (one per `unit`)."""
    ow = f"{RECORD_KEY}.options"
    try:
        _check_config(cfg)
    except InputError as exc:
        raise InputError(f"{ow}: {exc}") from None
    check_text(cfg.title, f"{ow}.title" if own_title else "title", MAX_TITLE_CHARS, "title")
    model = _model(_field(record, "model", RECORD_KEY), f"{RECORD_KEY}.model")
    shared = _field(data, "model", "")
    for key in ("name", "architecture", "kind", "layers", "heads"):
        if _field(shared, key, "model") != getattr(model, key):
            raise InputError(f"model.{key}: not the {RECORD_KEY}.model record's")
    from reportgen.report.heads import choose_head

    choose_head(model, cfg.layer, cfg.head)  # --layer/--head within the model
    items = _list(data, "items", "")
    records = _list(record, "items", RECORD_KEY)
    if not items:
        raise InputError(f"items: empty (an export holds one item per {unit})")
    if len(records) != len(items):
        raise InputError(
            f"{RECORD_KEY}.items: {len(records)} entries, the export has {len(items)} items"
        )
    return model, items, records


def read_export(
    data: Any, title: str | None = None, layer: int | None = None, head: int | None = None
) -> tuple[Extraction, ReportConfig, InputBatch, tuple[tuple[PairQuery, ...] | None, ...]]:
    """The extraction, options, pairs and pair queries an export was rendered from, every
    field checked; `title`, `layer`, `head` replace the recorded ones where given."""
    record = _field(data, RECORD_KEY, "")
    version = _field(record, "version", RECORD_KEY)
    if isinstance(record, dict) and record.get("long") is True:
        raise InputError(
            "--from-export: this is a long-input export (over the page budget): read it "
            "with reportgen.rerender_long.read_long_export"
        )
    if version != RECORD_VERSION:
        raise InputError(
            f"{RECORD_KEY}.version: {version!r}; this reportgen reads version "
            f"{RECORD_VERSION} (re-export with this version)"
        )
    options = _field(record, "options", RECORD_KEY)
    ow = f"{RECORD_KEY}.options"
    measures = _each(_list(options, "measures", ow), f"{ow}.measures", _str_value)
    cfg = ReportConfig(
        title=_opt_str(options, "title", ow) if title is None else title,
        layer=_opt_int(options, "layer", ow, 1) if layer is None else layer,
        head=_opt_int(options, "head", ow, 1) if head is None else head,
        focus_at=_str(options, "focus_at", ow),
        measures=tuple(measures),
        dtype=_str(options, "dtype", ow),
    )
    model, items, records = checked_header(data, record, cfg, title is None, "sentence")
    qk_in_item = any(isinstance(it, dict) and "qk" in it for it in items)
    if qk_in_item:  # written with --qk: so is its export again
        cfg = replace(cfg, qk=True)
    results = tuple(
        _result(item, rec, i, model, qk_in_item, row_tolerance(cfg.dtype))
        for i, (item, rec) in enumerate(zip(items, records, strict=True))
    )
    warnings = _each(_list(record, "warnings", RECORD_KEY), f"{RECORD_KEY}.warnings", _str_value)
    extraction = Extraction(
        model=model,
        results=results,
        warnings=tuple(warnings),
        measures_withheld=_opt_str(record, "measures_withheld", RECORD_KEY),
        qk_withheld=_opt_str(record, "qk_withheld", RECORD_KEY),
    )
    pair_list = _list(record, "pairs", RECORD_KEY)
    pairs: list[tuple[int, int]] = []
    seen: set[int] = set()
    for p, pair in enumerate(pair_list):
        pw = f"{RECORD_KEY}.pairs[{p}]"
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in pair)
            or not all(0 <= x < len(results) for x in pair)
        ):
            raise InputError(
                f"{pw}: expected [a, b] item indices (0-{len(results) - 1}), got {pair!r}"
            )
        if pair[0] >= pair[1] or any(x in seen for x in pair):
            raise InputError(f"{pw}: {pair!r} is not two other items, A before B")
        seen.update(pair)
        pairs.append((pair[0], pair[1]))
    query_list = _list(record, "queries", RECORD_KEY)
    if len(query_list) != len(pairs):
        raise InputError(f"{RECORD_KEY}.queries: {len(query_list)} entries, {len(pairs)} pairs")
    queries: list[tuple[PairQuery, ...] | None] = []
    for p, (asked, (a, b)) in enumerate(zip(query_list, pairs, strict=True)):
        qw = f"{RECORD_KEY}.queries[{p}]"
        if asked is None:
            queries.append(None)
            continue
        if not isinstance(asked, list) or not asked:
            raise InputError(f"{qw}: expected a list of queries or null")
        na, nb = (len(results[x].maps[0].query.tokens) for x in (a, b))
        queries.append(tuple(_query(q, f"{qw}[{j}]", na, nb) for j, q in enumerate(asked)))
    batch = InputBatch(items=tuple(r.item for r in results), pairs=tuple(pairs))
    _check_items(batch.items)  # the limits and words every path in checks
    return extraction, cfg, batch, tuple(queries)


def from_export(
    path: str | Path,
    *,
    title: str | None = None,
    layer: int | None = None,
    head: int | None = None,
) -> Report:
    """The report an ``--export-json`` file was written from, rebuilt with no model: the
    same page byte for byte, or with `title`, `layer` or `head` (1-based) changed. Bad
    files raise one-line :class:`~reportgen.errors.InputError` naming the field."""
    data = _load(Path(path))
    # A long-input export (over the page budget) holds a reduced view, read on its own;
    # that reader builds on this module's, so it is imported here, not above.
    from reportgen import rerender_long

    if rerender_long.is_long(data):
        long, long_cfg = rerender_long.read_long_export(data, title, layer, head)
        return report_from_long_extraction(long, long_cfg)
    extraction, cfg, batch, queries = read_export(data, title, layer, head)
    return report_from_extraction(extraction, cfg, batch.pairs, queries)
