"""Typed records that flow between the pipeline's stages.

Each stage takes and returns frozen dataclasses; nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

ModelKind = Literal["encoder", "causal", "encoder-decoder"]

# The seed lab's coreference head: "Layer 10, Head 5" (1-based).
SEED_LAYER = 10
SEED_HEAD = 5


@dataclass(frozen=True)
class SentenceInput:
    """One sentence as the user gave it, with the optional lab annotations."""

    text: str
    focus: str | None = None
    candidates: tuple[str, ...] = ()
    answer: str | None = None  # gold antecedent, one of `candidates` (JSONL "answer")
    text_pair: str | None = None  # BERT-style second segment ([SEP] B [SEP])
    target: str | None = None  # decoder input for encoder-decoder models
    source: str = ""  # where it came from, e.g. "args", "file.txt:3", for error messages


@dataclass(frozen=True)
class InputBatch:
    """Everything the user asked to report on, in order."""

    items: tuple[SentenceInput, ...]
    pairs: tuple[tuple[int, int], ...] = ()  # minimal pairs, as indices into items


@dataclass(frozen=True)
class ReportConfig:
    """Options that shape extraction and the report (not the sentences themselves)."""

    model: str | None = None  # None: the embedded all-MiniLM-L6-v2
    title: str | None = None
    layer: int | None = None  # 1-based, the head shown first
    head: int | None = None  # 1-based
    batch_size: int = 16
    device: str = "auto"
    dtype: str = "float32"
    truncate: bool = True
    max_tokens: int | None = None  # cut every input to this many tokens (--max-tokens)
    # Where a minimal pair's question is asked (--focus-at, report.pairs.FOCUS_AT): "auto"
    # is the focus word, except in a decoder when it comes before the pair's difference.
    focus_at: str = "auto"
    # Context-mixing measures to compute beside the weights (mixing.MEASURES).
    measures: tuple[str, ...] = ()
    # Queries and keys of the first map for the page's "why this weight" panel (--qk):
    # None decides by size (report.document.QK_PAGE_TOKENS), True also puts them in the export
    # at float32, False never captures them.
    qk: bool | None = None


@dataclass(frozen=True)
class TokenSeq:
    """The tokens of one text as the model saw them."""

    tokens: tuple[str, ...]  # raw tokenizer tokens, as `convert_ids_to_tokens` prints them
    display: tuple[str, ...]  # readable form: markers such as "Ġ", "▁", "##" removed
    word_ids: tuple[int | None, ...]  # None for special tokens
    offsets: tuple[tuple[int, int], ...]  # char span in `text`; (0, 0) for special tokens
    special: tuple[bool, ...]
    text: str


@dataclass(frozen=True)
class Measures:
    """How much each token contributes, beyond the weights (mixing.py): each float32 with
    rows summing to 1, or None where not asked for. Per-layer measures have no heads.

    `norm` is ``[layers, heads, n, n]``; `norm_layer`, `alti` and `alti_rollout` are
    ``[layers, n, n]``.
    """

    norm: NDArray[np.float32] | None = None
    norm_layer: NDArray[np.float32] | None = None
    alti: NDArray[np.float32] | None = None
    alti_rollout: NDArray[np.float32] | None = None


@dataclass(frozen=True)
class QueriesKeys:
    """What one self-attention map's weights are rebuilt from (capture.rebuild_weights):
    ``softmax(q k^T * scaling + bias + mask)``, query head h reading key head
    ``h // (heads / kv_heads)``.

    `queries` is float32 ``[layers, heads, n, d]``, `keys` ``[layers, kv_heads, n, d]``, as
    the attention function received them (rotary models: after the rotary embedding).
    `scaling` is each layer's; `bias` T5's relative position bias ``[layers, heads, n, n]``
    (None for families without one). The mask is the map's own: causal or none.
    """

    queries: NDArray[np.float32]
    keys: NDArray[np.float32]
    scaling: tuple[float, ...]
    bias: NDArray[np.float32] | None = None
    rotary: bool = False  # positions are already inside q and k (rotary embedding)


@dataclass(frozen=True)
class AttentionMap:
    """One kind of attention of one sentence: self, decoder self or cross.

    `attention` is float32[layers, heads, len(query), len(key)]; rows sum to 1. `id` is
    its identifier (``extract.map_layout``: "self", "encoder_self", "decoder_self",
    "cross"), `name` only what the page calls it.
    """

    name: str
    query: TokenSeq
    key: TokenSeq
    attention: NDArray[np.float32]
    causal: bool = False
    sentence_b_start: int | None = None  # first token of segment B, for sentence pairs
    id: str = field(kw_only=True)
    # Context-mixing measures (mixing.py) of a self-attention map, where asked for.
    measures: Measures | None = field(default=None, kw_only=True)
    # Its queries and keys (the first map only), where the page's panel needs them.
    qk: QueriesKeys | None = field(default=None, kw_only=True)


@dataclass(frozen=True)
class NextToken:
    """One of the model's top predictions after the last position."""

    token: str
    probability: float


@dataclass(frozen=True)
class AttentionResult:
    """Everything extracted for one input sentence."""

    item: SentenceInput
    maps: tuple[AttentionMap, ...]  # maps[0] is the primary one (encoder or decoder self)
    truncated: bool = False
    next_tokens: tuple[NextToken, ...] = ()


@dataclass(frozen=True)
class ModelInfo:
    """What the report says about the model."""

    name: str  # as the user named it (id or path)
    architecture: str
    kind: ModelKind
    layers: int
    heads: int
    max_length: int | None = None


@dataclass(frozen=True)
class Extraction:
    """The extractor's output for a whole batch."""

    model: ModelInfo
    results: tuple[AttentionResult, ...]
    warnings: tuple[str, ...] = ()
    # Why the context-mixing measures asked for are not shown for this model, if they
    # are not (the decomposition's self-check, or an architecture it does not cover).
    measures_withheld: str | None = None
    # Why no queries and keys can be captured for this model (it runs eager attention).
    qk_withheld: str | None = None


@dataclass(frozen=True)
class ExactRow:
    """One query position's attention in full, for every head."""

    position: int  # 0-based token position of the query
    token: str  # its display form
    attention: NDArray[np.float32]  # [layers, heads, len(key)]; sums to 1 over the key


@dataclass(frozen=True)
class LongMeasures:
    """The context-mixing measures of a long input's self-attention (mixing.py).

    The norm measure per head has a pooled overview like the weights' (each chunk of
    query rows is reduced as it streams). Every named measure has the exact rows, at the
    weights' positions: norm ``[rows, layers, heads, n]``, norm (layer) and ALTI ``[rows,
    layers, 1, n]``. The per-layer measures have no overview (every row's ``n x d``
    contributions, ``n^2 d`` a layer) and ALTI no rollout (it needs every layer's full map).
    """

    norm_overview: NDArray[np.float32] | None  # [layers, heads, query blocks, key blocks]
    rows: tuple[tuple[str, NDArray[np.float32]], ...]  # (measure, [rows, layers, h, n])


@dataclass(frozen=True)
class LongAttention:
    """One kind of attention of a long input, reduced as the forward pass streams it.

    What a page can carry instead of the full ``[layers, heads, q, k]`` map: a block-pooled
    overview per head (rows: mean over the query block, columns: sum over the key block,
    so pooled rows still sum to 1), exact rows at the positions that matter, each head's
    share of attention to the first position, and each head's mean row entropy.
    """

    id: str  # as AttentionMap's
    name: str
    query: TokenSeq
    key: TokenSeq
    query_blocks: tuple[tuple[int, int], ...]  # [start, end) token ranges of overview rows
    key_blocks: tuple[tuple[int, int], ...]
    overview: NDArray[np.float32]  # [layers, heads, len(query_blocks), len(key_blocks)]
    rows: tuple[ExactRow, ...]  # the last position, and the focus word's pieces
    first_share: NDArray[np.float32]  # [layers, heads]: mean attention to position 0
    entropy: NDArray[np.float64]  # [layers, heads]: mean row entropy, nats
    causal: bool = False
    measures: LongMeasures | None = None  # self-attention only, where named and kept
    # At the long export's precision already (export.long_precision): the page and the
    # export read the same values, rounded once.
    rounded: bool = False


@dataclass(frozen=True)
class LongResult:
    """Everything extracted for one long input, without its full maps."""

    item: SentenceInput
    maps: tuple[LongAttention, ...]  # maps[0] is the primary one
    truncated: bool = False
    next_tokens: tuple[NextToken, ...] = ()


@dataclass(frozen=True)
class LongExtraction:
    """The streaming extractor's output for long inputs."""

    model: ModelInfo
    results: tuple[LongResult, ...]
    warnings: tuple[str, ...] = ()
    measures_withheld: str | None = None  # as Extraction's
