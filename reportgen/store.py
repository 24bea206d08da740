"""The page's data format: typed records for everything the page's JavaScript reads.

This module is the one description of that format; `templates/js/store.js` decodes it,
the tests and `benchmarks/bench.py` read it, and nothing else builds page data. Keys
are snake_case everywhere. Indices are 0-based (the page adds 1 where it shows them).

FORMAT (each record below is serialised by :func:`as_json`, tuples as JSON arrays)

``<script type="application/json" id="rg-config">``: :class:`PageSettings` (on the atlas
    page :class:`AtlasSettings`: ``heatmap_size`` only)
    ``start_layer``, ``start_head``: the head the views show first (0-based);
    ``layers``, ``heads``: the model's primary map; ``figures``: Plotly specs without
    data (``attention``, ``difference``); ``pair_filters``: bertviz's sentence-pair
    filter names; ``layer_at_a_time_tokens``: above this many tokens the head view
    starts with one layer; ``heatmap_size``: how heatmaps are sized from their token
    count (:data:`reportgen.figures.HEATMAP_SIZE`); ``measures``: the Measure choice,
    list of :class:`MeasureChoice` (``id``, ``label``, ``per_layer``, ``about``), empty
    when the page shows weights only.

``<script type="application/json" id="rg-data-s<N>">``: :class:`SentenceRecord`
    ``seqs``: list of :class:`SeqRecord` (``tokens``: the labels shown, ``words``:
    token positions grouped into words, specials alone, ``special``: one flag a token,
    ``b_start``: first token of segment B or null); ``maps``: list of
    :class:`MapRecord` (``id``: stable identifier "self", "encoder_self",
    "decoder_self" or "cross"; ``name``: label shown; ``causal``; ``layers``,
    ``heads``, ``n_query``, ``n_key``: the shape; ``query_seq``, ``key_seq``: indices
    into ``seqs``; ``b_start``; ``scale``; ``data``: the packed weights, see
    :func:`pack_attention`); ``layer_at_a_time``; ``figures``: name -> Plotly figure
    built in Python (``entropy``, ``focus_<c>``, ``winner``); ``focus``:
    :class:`FocusRecord` or null (``word``, its token ``positions``, ``candidates``: each
    a ``word`` and its ``positions``); ``next``: :class:`NextRecord` or null (``sources``:
    each a ``label`` and the ``positions`` whose rows the view averages); ``measures``:
    list of :class:`MeasureRecord` (``id``: "norm", "norm_layer", "alti" or
    "alti_rollout"; ``map``: a MapRecord of the first map's measure, ``heads`` 1 for the
    per-layer ones), empty when the page shows weights only; ``qk``: :class:`QKRecord`
    or null, the first map's queries and keys for the "why this weight" panel
    (``layers``, ``heads``, ``kv_heads``, ``head_dim``, ``n``; ``scaling``: one a layer;
    ``rotary``: positions are inside q and k; ``q``: packed half
    ``float[layers, heads, n, head_dim]``, ``k``: ``float[layers, kv_heads, n,
    head_dim]``, see :func:`pack_half`; ``bias``: T5's position bias, packed half
    ``float[layers, heads, n, n]``, or null; ``error``: the largest difference between
    weights rebuilt from these half values and the extraction's, over the sentence).
    Query head h reads key head ``h // (heads / kv_heads)``; the score is
    ``q . k * scaling + bias``, masked above the diagonal where the map is causal.

``<script type="application/json" id="rg-data-p<N>">``: :class:`PairRecord`
    ``a``, ``b``: the anchors of the two sentences ("s1"); ``alignment``: pairs of
    word indices that correspond; ``chosen``: [layer, head] of the submission block;
    ``figures`` (``focus_diff``); ``expected``: the candidate index outlined in A and in B;
    ``query_rows``: the query's token positions in A and in B (the focus word's, or in a
    decoder the first differing word's, see ``--focus-at``), null without a focus word;
    ``query_words``: their words.

``<script type="application/json" id="rg-data-s<N>">`` of a long-input page (over the
page budget, see ``reportgen.memory``): :class:`LongSentenceRecord`
    ``long``: true; ``seqs``: as above; ``maps``: list of :class:`LongMapRecord` (``id``,
    ``name``, ``causal``, ``layers``, ``heads``, ``n_query``, ``n_key``, ``query_seq``,
    ``key_seq``: as in MapRecord; ``query_blocks``, ``key_blocks``: the ``[start, end)``
    token ranges of the overview's rows and columns; ``overview``: packed
    ``float[layers, heads, len(query_blocks), len(key_blocks)]``, block-pooled (rows: mean
    over the query block, columns: sum over the key block, so rows sum to 1); ``scale``
    (:data:`LONG_SCALE`: weights near 1/n need finer steps than 1/500); ``rows``: list of
    :class:`LongRowRecord` (``position``: the query token, ``token``: its label,
    ``data``: packed ``float[layers, heads, n_key]``, that position's exact row in every
    head, ``scale``); ``first_share``: ``[layers][heads]`` mean attention to position
    0; ``entropy``: ``[layers][heads]`` mean row entropy in nats; ``sinks``: the key
    blocks that the colour scale leaves out by default, :func:`reportgen.figures.sink_columns`;
    ``measures``: list of :class:`LongMeasureRecord`, the self map's context-mixing
    measures (``id``: "norm", "norm_layer" or "alti"; ``heads``: the map's, 1 for the
    per-layer ones; ``overview``: packed as the weights' (norm only), or null: not
    computed on a long input; ``scale``; ``rows``: as the weights' rows, at the same
    positions; ``sinks``: of the measure's own overview), empty when weights only);
    ``figures``: name -> Plotly figure (``first_share``, ``entropy``).

The head atlas page (``reportgen --atlas``, its views in ``templates/js/atlas.js``):

``<script type="application/json" id="rg-data-rg-main">``: :class:`AtlasRecord`
    ``layers``, ``heads``; ``stats``: list of :class:`AtlasStatRecord` (``name``: one of
    ``reportgen.atlas.stats.STATS``; ``grid``: its corpus mean ``[layer][head]``, or null
    when no row was eligible); ``labels``, ``signature``: per head ``[layer][head]``, its
    label and the statistic its examples are ranked by; ``coref``: coreference accuracy
    ``[layer][head]`` or null; ``sentences``: list of :class:`AtlasSentenceRecord`
    (``source``: file name and line, never a folder; ``tokens``); ``examples``: per head,
    keyed ``"<layer>-<head>"``, a list of :class:`AtlasExampleRecord` (``sentence``: index
    into ``sentences``; ``value``: the signature statistic in that sentence; ``map``: the
    head's attention ``[n][n]``); ``similar``: :class:`AtlasSimilarRecord` or null (per
    head, in layer-major order: ``x``, ``y`` of its 2-D position, ``layer``, ``head``,
    ``label``; ``labelled``: indices of the few heads whose names are drawn);
    ``coref_scale``: :class:`AtlasCorefRecord` or null (``low``, ``high``: each head's
    Wilson 95% interval ``[layer][head]``; ``chance``: a random pick's expected accuracy,
    the colour scale's midpoint; ``zmin``, ``zmax``: the colour range, symmetric about
    ``chance``). Values are rounded for the page; ``--export-json`` keeps full precision.

Packed weights (``MapRecord.data``, ``LongMapRecord.overview``, ``LongRowRecord.data``):
the map ``float[layers, heads, n_query, n_key]`` (or the shape named above) quantised
row by row to integers of ``1/scale`` (:func:`quantize_rows`, each row's integers
summing exactly to ``scale``), as little-endian uint16 split into two byte planes
(every low byte, then every high byte), gzip-compressed, base64-encoded. The page reads
value ``i`` as ``(low[i] | high[i] << 8) / scale``.

Packed half values (``QKRecord.q``, ``k``, ``bias``): IEEE float16 as little-endian
uint16 in the same two byte planes, gzip-compressed, base64-encoded.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from reportgen.figures import sink_columns

# 500 steps per row keep every weight within 0.002 of the truth (invisible on a colour
# scale) while a value never exceeds 500, so the packed high byte is almost always 0.
QUANT_SCALE: int = 500

# Long inputs' overview and exact rows: a row of thousands of keys holds weights near
# 1/n, far below 1/500, so these keep every value within 1/65535 (1.5e-5) instead.
LONG_SCALE: int = 65535

# Rows quantised per block, so that large maps (e.g. 12 x 12 x 512 x 512) do not need
# several float64 temporaries of the whole array at once.
_QUANT_BLOCK_ELEMENTS = 1 << 20

# Maps up to this many values get gzip's slowest, smallest level (see pack_attention).
PACK_LEVEL9_VALUES = 1 << 20

# Stable identifiers of the attention maps that extraction names for people.
# ---------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class SeqRecord:
    """A token sequence as the page labels it."""

    tokens: tuple[str, ...]  # the labels shown (markers such as "Ġ" or "##" removed)
    words: tuple[tuple[int, ...], ...]  # token positions grouped into words
    special: tuple[bool, ...]
    b_start: int | None = None  # first token of segment B (sentence pairs)


@dataclass(frozen=True)
class MapRecord:
    """One packed attention map: float[layers, heads, n_query, n_key]."""

    id: str  # "self", "encoder_self", "decoder_self", "cross"
    name: str
    causal: bool
    layers: int
    heads: int
    n_query: int
    n_key: int
    query_seq: int  # index into SentenceRecord.seqs
    key_seq: int
    b_start: int | None
    scale: int
    data: str  # see the module docstring


@dataclass(frozen=True)
class CandidateRecord:
    word: str
    positions: tuple[int, ...]


@dataclass(frozen=True)
class FocusRecord:
    """The focus word and its candidates, located in the primary map's query tokens."""

    word: str
    positions: tuple[int, ...]
    candidates: tuple[CandidateRecord, ...]


@dataclass(frozen=True)
class NextSourceRecord:
    """A position the next-token view follows; its rows are averaged."""

    label: str
    positions: tuple[int, ...]


@dataclass(frozen=True)
class NextRecord:
    sources: tuple[NextSourceRecord, ...]


@dataclass(frozen=True)
class MeasureRecord:
    """A context-mixing measure of the sentence's first map (reportgen.mixing), packed as
    its weights are; a per-layer measure has ``heads`` 1."""

    id: str  # "norm", "norm_layer", "alti", "alti_rollout"
    map: MapRecord


@dataclass(frozen=True)
class QKRecord:
    """The first map's queries and keys (``config.QueriesKeys``), packed half, for the
    "why this weight" panel; see the module docstring."""

    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    n: int
    scaling: tuple[float, ...]  # one a layer
    rotary: bool
    q: str  # packed half float[layers, heads, n, head_dim]
    k: str  # packed half float[layers, kv_heads, n, head_dim]
    bias: str | None  # packed half float[layers, heads, n, n] (T5), else None
    error: float  # largest |weight from these halves - extraction's weight|


@dataclass(frozen=True)
class SentenceRecord:
    """What one sentence's views read."""

    seqs: tuple[SeqRecord, ...]
    maps: tuple[MapRecord, ...]
    layer_at_a_time: bool
    figures: Mapping[str, Any]  # Plotly figures built in Python, by data-figure name
    focus: FocusRecord | None = None
    next: NextRecord | None = None
    measures: tuple[MeasureRecord, ...] = ()
    qk: QKRecord | None = None


@dataclass(frozen=True)
class PairRecord:
    """What a minimal pair's views read."""

    a: str  # anchor of sentence A ("s1")
    b: str
    alignment: tuple[tuple[int, int], ...]  # word index in A, word index in B
    chosen: tuple[int, int]  # layer, head (0-based) of the submission block
    figures: Mapping[str, Any]
    expected: tuple[int, int] = (0, 1)  # candidate outlined in A and in B (the answers)
    # Where the pair's question is asked (report.pairs.PairQuery): the token positions
    # the submission maps outline as rows, in A and in B, and their words.
    query_rows: tuple[tuple[int, ...], tuple[int, ...]] | None = None
    query_words: tuple[str, str] | None = None


@dataclass(frozen=True)
class MeasureChoice:
    """One option of the page's Measure choice (report.contributions.MEASURES)."""

    id: str
    label: str
    per_layer: bool
    about: str


@dataclass(frozen=True)
class AtlasSettings:
    """The atlas page's ``rg-config``: what the shared scripts read on every page kind
    (print.js narrows token heatmaps by the same sizes as the report's)."""

    heatmap_size: Mapping[str, float]  # figures.HEATMAP_SIZE


@dataclass(frozen=True)
class PageSettings:
    """Report-wide settings."""

    start_layer: int
    start_head: int
    layers: int
    heads: int
    figures: Mapping[str, Any]  # heatmap specs without data: "attention", "difference"
    pair_filters: tuple[str, ...]
    layer_at_a_time_tokens: int
    heatmap_size: Mapping[str, float]  # figures.HEATMAP_SIZE, for templates/js/handin.js
    # The Measure choice: each a MeasureChoice; empty when only weights are shown.
    measures: tuple[MeasureChoice, ...] = ()


@dataclass(frozen=True)
class LongRowRecord:
    """One query position's exact attention, in every head."""

    position: int  # 0-based query token
    token: str  # its label
    data: str  # packed float[layers, heads, n_key], see the module docstring
    scale: int


@dataclass(frozen=True)
class LongMeasureRecord:
    """One context-mixing measure of a long input's self map (config.LongMeasures)."""

    id: str
    heads: int  # the map's heads; 1 for a per-layer measure
    overview: str | None  # packed as the weights' overview; None: not computed (per layer)
    scale: int
    rows: tuple[LongRowRecord, ...]
    sinks: tuple[int, ...] = ()


@dataclass(frozen=True)
class LongMapRecord:
    """One attention map of a long input, reduced: overview, exact rows, statistics."""

    id: str
    name: str
    causal: bool
    layers: int
    heads: int
    n_query: int
    n_key: int
    query_seq: int  # index into LongSentenceRecord.seqs
    key_seq: int
    query_blocks: tuple[tuple[int, int], ...]  # [start, end) of each overview row
    key_blocks: tuple[tuple[int, int], ...]
    overview: str  # packed float[layers, heads, len(query_blocks), len(key_blocks)]
    scale: int
    rows: tuple[LongRowRecord, ...]
    first_share: tuple[tuple[float, ...], ...]  # [layers][heads]
    entropy: tuple[tuple[float, ...], ...]  # [layers][heads], nats
    sinks: tuple[int, ...] = ()  # key blocks the colour scale leaves out by default
    measures: tuple[LongMeasureRecord, ...] = ()


@dataclass(frozen=True)
class LongSentenceRecord:
    """What a long input's view reads (in place of a SentenceRecord)."""

    seqs: tuple[SeqRecord, ...]
    maps: tuple[LongMapRecord, ...]
    figures: Mapping[str, Any]  # "first_share", "entropy"
    long: bool = True


def long_map_record(amap: Any, *, query_seq: int, key_seq: int, decimals: int = 4) -> LongMapRecord:
    """Pack one ``reportgen.config.LongAttention`` for the page."""
    overview, scale = pack_attention(amap.overview, LONG_SCALE)
    layers, heads = amap.first_share.shape
    return LongMapRecord(
        id=amap.id,
        name=amap.name,
        causal=amap.causal,
        layers=layers,
        heads=heads,
        n_query=len(amap.query.tokens),
        n_key=len(amap.key.tokens),
        query_seq=query_seq,
        key_seq=key_seq,
        query_blocks=tuple(amap.query_blocks),
        key_blocks=tuple(amap.key_blocks),
        overview=overview,
        scale=scale,
        rows=tuple(
            LongRowRecord(
                r.position, amap.query.display[r.position], *pack_attention(r.attention, LONG_SCALE)
            )
            for r in amap.rows
        ),
        first_share=_rounded_grid(amap.first_share, decimals),
        entropy=_rounded_grid(amap.entropy, decimals),
        sinks=sink_columns(amap.overview),
        measures=_long_measures(amap),
    )


def _long_measures(amap: Any) -> tuple[LongMeasureRecord, ...]:
    """Pack a long map's measures (``LongAttention.measures``), in their order."""
    m = amap.measures
    if m is None:
        return ()
    out = []
    for name, rows in m.rows:
        overview = m.norm_overview if name == "norm" else None
        data, scale = (
            (None, LONG_SCALE) if overview is None else pack_attention(overview, LONG_SCALE)
        )
        out.append(
            LongMeasureRecord(
                id=name,
                heads=int(rows.shape[2]),
                overview=data,
                scale=scale,
                rows=tuple(
                    LongRowRecord(
                        r.position,
                        amap.query.display[r.position],
                        *pack_attention(rows[i], LONG_SCALE),
                    )
                    for i, r in enumerate(amap.rows)
                ),
                sinks=() if overview is None else sink_columns(overview),
            )
        )
    return tuple(out)


def _rounded_grid(values: ArrayLike, decimals: int) -> tuple[tuple[float, ...], ...]:
    grid = np.round(np.asarray(values, dtype=np.float64), decimals)
    return tuple(tuple(float(v) for v in row) for row in grid)


# The head atlas page. A grid is [layer][head] (0-based indices, like every index here).
Grid = tuple[tuple[float, ...], ...]


@dataclass(frozen=True)
class AtlasStatRecord:
    """One statistic's corpus means."""

    name: str
    grid: Grid | None  # None: no eligible row in the corpus (e.g. to_next on 1-token input)


@dataclass(frozen=True)
class AtlasSentenceRecord:
    """An example sentence, listed once however many heads show it."""

    source: str  # "corpus.jsonl line 3": the file's name, never its folders
    tokens: tuple[str, ...]


@dataclass(frozen=True)
class AtlasExampleRecord:
    """One of a head's most characteristic sentences."""

    sentence: int  # index into AtlasRecord.sentences
    value: float  # the head's signature statistic in this sentence
    map: Grid  # the head's attention [n_query][n_key]


@dataclass(frozen=True)
class AtlasSimilarRecord:
    """Heads laid out in 2-D by how alike they attend; one entry per head, layer-major."""

    x: tuple[float, ...]
    y: tuple[float, ...]
    layer: tuple[int, ...]
    head: tuple[int, ...]
    label: tuple[str, ...]
    labelled: tuple[int, ...]  # indices of the heads named on the map (the rest hover)


@dataclass(frozen=True)
class AtlasCorefRecord:
    """The coreference grid's intervals and its colour scale (from atlas.stats)."""

    low: Grid  # Wilson 95% interval per head
    high: Grid
    chance: float  # a random pick's expected accuracy: the diverging scale's midpoint
    zmin: float  # chance -/+ the largest distance of any head from it
    zmax: float


@dataclass(frozen=True)
class AtlasRecord:
    """What the atlas page's JavaScript reads."""

    layers: int
    heads: int
    stats: tuple[AtlasStatRecord, ...]
    labels: tuple[tuple[str, ...], ...]  # [layer][head]
    signature: tuple[tuple[str, ...], ...]  # [layer][head]: a statistic's name
    coref: Grid | None
    sentences: tuple[AtlasSentenceRecord, ...]
    examples: Mapping[str, tuple[AtlasExampleRecord, ...]]  # "<layer>-<head>"
    similar: AtlasSimilarRecord | None
    coref_scale: AtlasCorefRecord | None


def as_json(record: Any) -> dict[str, Any]:
    """A record as the JSON object the page reads (tuples stay sequences)."""
    if not dataclasses.is_dataclass(record) or isinstance(record, type):
        raise TypeError(f"not a page record: {type(record).__name__}")
    return dataclasses.asdict(record)


# ---------------------------------------------------------------------------------------
# Quantisation and packing


def _check_scale(scale: int) -> None:
    if not 1 <= scale <= np.iinfo(np.uint16).max:
        raise ValueError(f"scale must be between 1 and 65535, got {scale}")


def _quantize_block(rows: NDArray[np.float64], scale: int) -> NDArray[np.uint16]:
    """Largest-remainder rounding of a ``[r, m]`` block of rows (values already >= 0)."""
    q = _largest_remainder(rows, scale)
    if q.max(initial=0.0) > np.iinfo(np.uint16).max:
        raise ValueError(f"attention values too large to quantise with scale {scale}")
    return q.astype(np.uint16)


def _largest_remainder(rows: NDArray[np.float64], scale: float) -> NDArray[np.float64]:
    """Each row of a ``[r, m]`` block (values >= 0) as whole numbers of ``1/scale``,
    summing to the row's own rounded total, each within 1 of ``value * scale``."""
    scaled = rows * scale
    floors = np.floor(scaled)
    remainders = scaled - floors
    # The target is the row's own rounded total, so a row summing to 1 gets exactly
    # `scale` and an all-zero padding row gets 0, instead of forcing every row to `scale`.
    target = np.rint(rows.sum(axis=-1) * scale)
    # Clipping to [0, m] only guards against float noise; each entry then moves from its
    # floor by at most 1, which is what bounds the error below 1/scale.
    extra = np.clip(target - floors.sum(axis=-1), 0, rows.shape[-1]).astype(np.intp)
    # Stable sort on the negated remainders: largest remainders first, and equal remainders
    # resolved by position, so the same input always yields the same integers.
    order = np.argsort(-remainders, axis=-1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(rows.shape[-1])[None, :], axis=-1)
    return floors + (rank < extra[:, None])


def quantize_rows(attn: ArrayLike, scale: int = QUANT_SCALE) -> NDArray[np.uint16]:
    """Quantise attention to integers of ``1/scale``, preserving each row's total exactly.

    Same shape as the input. Each row of the result sums exactly to
    ``round(row_sum * scale)`` (so to ``scale`` for a row summing to 1) and every value is
    within ``1/scale`` of the original. Tiny negative round-off is clipped to 0 first.
    """
    _check_scale(scale)
    a = np.asarray(attn)
    if a.ndim < 1:
        raise ValueError(f"attention must have at least 1 dimensions, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError("cannot quantise non-finite attention values")
    shape = a.shape
    m = shape[-1]
    out = np.empty(shape, dtype=np.uint16)
    if a.size == 0:
        return out
    flat = a.reshape(-1, m)
    flat_out = out.reshape(-1, m)
    step = max(1, _QUANT_BLOCK_ELEMENTS // m)
    for start in range(0, flat.shape[0], step):
        block = np.clip(flat[start : start + step].astype(np.float64), 0.0, None)
        flat_out[start : start + step] = _quantize_block(block, scale)
    return out


def round_rows(values: ArrayLike, decimals: int) -> NDArray[np.float64]:
    """Rows rounded to ``10**-decimals`` as :func:`quantize_rows` rounds them (largest
    remainder): each value within ``10**-decimals`` of the original, each row's total
    kept (a row summing to 1 still does, where plain rounding drifts by up to n/2 steps).

    Idempotent through float32: rounding the float32 of a result gives it again (float32
    moves a value <= 1 by under 0.06 steps at 6 decimals), which is what lets a page be
    rebuilt from a long export's values bit for bit (``export.long_precision``)."""
    a = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError("cannot round non-finite attention values")
    scale = 10.0**decimals
    out = np.empty(a.shape, dtype=np.float64)
    if a.size == 0:
        return out
    m = a.shape[-1]
    flat, flat_out = a.reshape(-1, m), out.reshape(-1, m)
    step = max(1, _QUANT_BLOCK_ELEMENTS // m)
    for start in range(0, flat.shape[0], step):
        block = np.clip(flat[start : start + step], 0.0, None)
        flat_out[start : start + step] = _largest_remainder(block, scale) / scale
    return out


def pack_attention(attention: np.ndarray, scale: int = QUANT_SCALE) -> tuple[str, int]:
    """Quantise rows (sum-preserving) and pack as gzip+base64 of two byte planes.

    Low bytes then high bytes: the high plane is almost all zeros and compresses
    to nearly nothing, which halves the cost of 16-bit values.
    """
    q = quantize_rows(attention, scale).astype("<u2").ravel()
    planes = np.concatenate([(q & 0xFF).astype(np.uint8), (q >> 8).astype(np.uint8)])
    # Level 9 gains ~15% over 6 on big maps but costs 5x the time there (8 s instead of
    # 1.6 s for 12 x 12 x 512 x 512); small maps keep the smallest output.
    level = 9 if q.size <= PACK_LEVEL9_VALUES else 6
    data = gzip.compress(planes.tobytes(), compresslevel=level, mtime=0)
    return base64.b64encode(data).decode("ascii"), scale


def pack_half(values: np.ndarray) -> str:
    """Float16 values as two byte planes (low bytes, then high bytes), gzip, base64."""
    u = np.ascontiguousarray(values, dtype="<f2").view("<u2").ravel()
    planes = np.concatenate([(u & 0xFF).astype(np.uint8), (u >> 8).astype(np.uint8)])
    data = gzip.compress(planes.tobytes(), compresslevel=9, mtime=0)
    return base64.b64encode(data).decode("ascii")


def unpack_half(data: str, shape: tuple[int, ...]) -> NDArray[np.float16]:
    """The inverse of :func:`pack_half` (as the page decodes it)."""
    planes = np.frombuffer(gzip.decompress(base64.b64decode(data)), dtype=np.uint8)
    count = planes.size // 2
    u = planes[:count].astype(np.uint16) | (planes[count:].astype(np.uint16) << 8)
    return u.view("<f2").reshape(shape)


def map_record(
    map_id: str,
    name: str,
    attention: np.ndarray,
    *,
    causal: bool,
    query_seq: int,
    key_seq: int,
    b_start: int | None,
) -> MapRecord:
    """Pack one attention map ``[layers, heads, n_query, n_key]``."""
    data, scale = pack_attention(attention)
    layers, heads, n_query, n_key = attention.shape
    return MapRecord(
        id=map_id,
        name=name,
        causal=causal,
        layers=layers,
        heads=heads,
        n_query=n_query,
        n_key=n_key,
        query_seq=query_seq,
        key_seq=key_seq,
        b_start=b_start,
        scale=scale,
        data=data,
    )
