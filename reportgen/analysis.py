"""Pure numpy analysis of attention arrays: entropy, word merging, rollout, focus, pairs.

Conventions: an attention array is shaped ``[..., n_query, n_key]``; the last axis is the
key (the position attended to) and every query row sums to 1. A sentence's full array is
``[layers, heads, n, n]``. Results are float64 (attention usually arrives as float32, whose
rounding would otherwise leak into entropies and sums) unless a function says otherwise;
functions that see a whole sentence's array (entropy, rollout, focus scores, pooling)
work one layer or a few rows at a time and sum in float64, so that no float64 copy of
every layer exists at once. Nothing here does I/O or imports torch.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "LAYER_VERDICT_THRESHOLD",
    "VERDICT_RULE",
    "PairAnswer",
    "PairSummary",
    "align_words",
    "alti_rollout",
    "block_bounds",
    "block_pool",
    "drop_positions",
    "find_word",
    "word_in_text",
    "focus_scores",
    "head_average",
    "head_entropies",
    "head_row_entropies",
    "layer_entropies",
    "layer_verdicts",
    "mean_entropy",
    "merge_groups",
    "normalized_entropy",
    "pair_answer",
    "pair_summary",
    "submission_range",
    "rank_heads",
    "rollout",
    "row_entropy",
    "winner_grid",
    "word_groups",
]

Float64Array = NDArray[np.float64]

LAYER_VERDICT_THRESHOLD: float = 0.5
VERDICT_RULE: str = (
    "A layer is 'diffuse' when the mean entropy of its heads is at least "
    f"{LAYER_VERDICT_THRESHOLD:g} x ln n (half the even spread), otherwise 'focused'."
)


def _as_f64(attn: ArrayLike) -> Float64Array:
    return np.asarray(attn, dtype=np.float64)


def _require_ndim(arr: np.ndarray, ndim: int, name: str) -> None:
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {arr.shape}")


def _require_min_ndim(arr: np.ndarray, ndim: int, name: str) -> None:
    if arr.ndim < ndim:
        raise ValueError(f"{name} must have at least {ndim} dimensions, got shape {arr.shape}")


# ---------------------------------------------------------------------------------------
# Averages and entropy
# ---------------------------------------------------------------------------------------


def head_average(attn: ArrayLike) -> Float64Array:
    """Mean over heads: ``[L, H, q, k] -> [L, q, k]``."""
    a = _as_f64(attn)
    _require_ndim(a, 4, "attention")
    return a.mean(axis=1)


def row_entropy(attn: ArrayLike) -> Float64Array:
    """Shannon entropy (nats) of every row: ``[..., q, k] -> [..., q]``, with 0 log 0 = 0."""
    a = _as_f64(attn)
    _require_min_ndim(a, 1, "attention")
    # log only where p > 0: zeros (and tiny negative round-off) contribute nothing, and
    # no "divide by zero in log" warning or NaN is ever produced.
    positive = a > 0
    logs = np.log(a, out=np.zeros_like(a), where=positive)
    return -(np.where(positive, a, 0.0) * logs).sum(axis=-1)


def mean_entropy(attn: ArrayLike) -> Float64Array:
    """Mean row entropy over the query rows: ``[..., q, k] -> [...]``."""
    a = _as_f64(attn)
    _require_min_ndim(a, 2, "attention")
    return row_entropy(a).mean(axis=-1)


def normalized_entropy(entropy: ArrayLike, n: int) -> Float64Array:
    """Entropy divided by its maximum ``log n`` (so 1 = uniform); zeros when ``n <= 1``."""
    e = _as_f64(entropy)
    if n <= 1:
        # A single key can only receive all the attention: there is nothing to spread.
        return np.zeros_like(e)
    return e / np.log(n)


def layer_verdicts(norm_entropy_LH: ArrayLike) -> list[str]:
    """One verdict per layer of an ``[L, H]`` grid of normalised entropies (see VERDICT_RULE)."""
    grid = _as_f64(norm_entropy_LH)
    _require_ndim(grid, 2, "normalised entropy grid")
    means = grid.mean(axis=1)
    return ["diffuse" if m >= LAYER_VERDICT_THRESHOLD else "focused" for m in means]


def _row_entropies(x: np.ndarray) -> Float64Array:
    """Row entropies (nats) of ``[..., q, k]`` in its own dtype, summed in float64."""
    logs = np.log(x, out=np.zeros_like(x), where=x > 0)
    logs *= x  # where x <= 0 the log was left 0, so the term is 0
    return -logs.sum(axis=-1, dtype=np.float64)


def _float_layer(layer: ArrayLike) -> np.ndarray:
    a = np.asarray(layer)
    _require_ndim(a, 3, "layer")
    return a if a.dtype in (np.float32, np.float64) else a.astype(np.float32)


def head_row_entropies(layer: ArrayLike) -> Float64Array:
    """One layer ``[H, q, k]``: each head's mean row entropy ``[H]`` (nats), head by head,
    so the temporaries are one head's n x n, not the layer's."""
    a = _float_layer(layer)
    return np.array([_row_entropies(head).mean() for head in a], dtype=np.float64).reshape(len(a))


def layer_entropies(layer: ArrayLike) -> tuple[Float64Array, float]:
    """One layer ``[H, q, k]``: each head's mean row entropy ``[H]``, and the row entropy
    of the head-averaged map, averaged over rows (nats).

    Works in the layer's own float32 (a float64 copy of a long input's layer would
    double the peak) and sums in float64, so the result agrees with
    :func:`mean_entropy` to about 1e-6 of log n.
    """
    a = _float_layer(layer)
    average = float(_row_entropies(a.mean(axis=0)).mean()) if a.shape[1] else 0.0
    return head_row_entropies(a), average


def head_entropies(attn: ArrayLike) -> tuple[Float64Array, Float64Array]:
    """``[L, H, q, k]`` -> each head's mean row entropy ``[L, H]`` and each layer's entropy
    of its head-averaged map ``[L]``, computed one layer at a time (see
    :func:`layer_entropies`): the report's two entropy views from one pass.
    """
    a = np.asarray(attn)
    _require_ndim(a, 4, "attention")
    per_head = np.empty(a.shape[:2], dtype=np.float64)
    average = np.empty(a.shape[0], dtype=np.float64)
    for layer in range(a.shape[0]):
        per_head[layer], average[layer] = layer_entropies(a[layer])
    return per_head, average


# ---------------------------------------------------------------------------------------
# Long inputs: block pooling
# ---------------------------------------------------------------------------------------


def weights_from_qk(
    queries: ArrayLike,
    keys: ArrayLike,
    scaling: Sequence[float],
    bias: ArrayLike | None = None,
    causal: bool = False,
) -> Float64Array:
    """Attention rebuilt from queries ``[layers, heads, n, d]`` and keys ``[layers,
    kv_heads, n, d]`` in float64: ``softmax(q k^T * scaling[layer] + bias + mask)``, query
    head h reading key head ``h // (heads / kv_heads)``, the mask causal or none (as
    ``capture.rebuild_weights``; the page's panel does the same in JavaScript)."""
    q, k = _as_f64(queries), _as_f64(keys)
    _require_ndim(q, 4, "queries")
    _require_ndim(k, 4, "keys")
    k = np.repeat(k, q.shape[1] // k.shape[1], axis=1)
    scores = (
        np.einsum("lhid,lhjd->lhij", q, k) * np.asarray(scaling, np.float64)[:, None, None, None]
    )
    if bias is not None:
        scores = scores + _as_f64(bias)
    if causal:
        n = scores.shape[-1]
        scores = np.where(np.triu(np.ones((n, n), dtype=bool), 1), -np.inf, scores)
    scores = scores - scores.max(axis=-1, keepdims=True)
    e = np.exp(scores)
    out: Float64Array = e / e.sum(axis=-1, keepdims=True)
    return out


def block_bounds(n: int, blocks: int) -> list[tuple[int, int]]:
    """Split positions ``0..n-1`` into at most `blocks` contiguous ``[start, end)`` ranges
    of near-equal size (the first ones one longer when `n` does not divide evenly)."""
    if n <= 0:
        return []
    count = max(1, min(blocks, n))
    edges = [(n * i) // count for i in range(count + 1)]
    return [(edges[i], edges[i + 1]) for i in range(count)]


def block_pool(
    layer: ArrayLike,
    rows: Sequence[tuple[int, int]],
    cols: Sequence[tuple[int, int]],
) -> NDArray[np.float32]:
    """Pool ``[..., q, k]`` attention into blocks: ``[..., len(rows), len(cols)]``.

    Rows take the mean over the query block and columns the sum over the key block (the
    rule of :func:`merge_groups`), so when the column blocks cover every key each pooled
    row still sums to 1. Works block by block in the input's float32.
    """
    a = np.asarray(layer)
    _require_min_ndim(a, 2, "attention")
    if a.dtype != np.float32:
        a = a.astype(np.float32)
    col_starts = np.asarray([c[0] for c in cols], dtype=np.intp)
    out = np.empty((*a.shape[:-2], len(rows), len(cols)), dtype=np.float32)
    for i, (start, end) in enumerate(rows):
        # Mean of the block's rows first ([..., k]), then sums over each key block.
        mean_row = a[..., start:end, :].mean(axis=-2, dtype=np.float64)
        if len(cols):
            sums = np.add.reduceat(mean_row, col_starts, axis=-1)
            # reduceat sums to the next start; the last block must stop at its own end.
            last_start, last_end = cols[-1]
            sums[..., -1] = mean_row[..., last_start:last_end].sum(axis=-1)
            out[..., i, :] = sums
    return out


# ---------------------------------------------------------------------------------------
# Words: grouping, merging, hiding special tokens
# ---------------------------------------------------------------------------------------


def word_groups(word_ids: Sequence[int | None]) -> list[list[int]]:
    """Group token positions into words, in order; each special (``None``) token stands alone.

    Only *consecutive* positions with the same word id merge, so a word id that reappears
    later (e.g. the same index in the second segment of a pair) starts a new group.
    """
    groups: list[list[int]] = []
    previous: int | None = None
    for pos, wid in enumerate(word_ids):
        if wid is not None and groups and previous == wid:
            groups[-1].append(pos)
        else:
            groups.append([pos])
        previous = wid
    return groups


def _membership(groups: Sequence[Sequence[int]], n: int, name: str) -> Float64Array:
    """0/1 matrix ``[g, n]`` with ``M[i, j] = 1`` when position j belongs to group i."""
    m = np.zeros((len(groups), n), dtype=np.float64)
    for i, group in enumerate(groups):
        idx = np.asarray(list(group), dtype=np.intp)
        if idx.size == 0:
            raise ValueError(f"{name} {i} is empty")
        if idx.min() < 0 or idx.max() >= n:
            raise ValueError(f"{name} {i} has a position outside 0..{n - 1}: {list(group)}")
        m[i, idx] = 1.0
    return m


def merge_groups(attn: ArrayLike, groups: Sequence[Sequence[int]]) -> Float64Array:
    """Merge token attention into word attention: ``[..., n, n] -> [..., g, g]``.

    Attention *to* a word is the sum over its pieces' columns and attention *from* a word
    is the mean over its pieces' rows, so when the groups partition the tokens every
    merged row still sums to 1.
    """
    a = _as_f64(attn)
    _require_min_ndim(a, 2, "attention")
    n = a.shape[-1]
    if a.shape[-2] != n:
        raise ValueError(f"merge_groups needs square attention, got shape {a.shape}")
    # Clark et al. 2019, "What does BERT look at?", Sec. 3: sum over the pieces of the
    # attended word (attention mass is additive) and mean over the pieces of the attending
    # word (each piece's row is already a distribution).
    member = _membership(groups, n, "group")
    from_rows = member / member.sum(axis=1, keepdims=True)
    return from_rows @ a @ member.T


def drop_positions(attn: ArrayLike, keep: Sequence[bool]) -> Float64Array:
    """Remove rows and columns where ``keep`` is False and renormalise the rows to sum to 1.

    Used to hide special tokens ([CLS], [SEP], <s>, ...), which often soak up most of the
    attention. A row whose kept mass is 0 becomes uniform over the kept keys.
    """
    a = _as_f64(attn)
    _require_min_ndim(a, 2, "attention")
    n = a.shape[-1]
    if a.shape[-2] != n:
        raise ValueError(f"drop_positions needs square attention, got shape {a.shape}")
    mask = np.asarray(keep, dtype=bool)
    if mask.shape != (n,):
        raise ValueError(f"keep must have {n} entries, got {mask.shape[0] if mask.ndim else 0}")
    idx = np.flatnonzero(mask)
    sub = np.take(np.take(a, idx, axis=-2), idx, axis=-1)
    if idx.size == 0:
        return sub
    totals = sub.sum(axis=-1, keepdims=True)
    empty = totals <= 0
    safe = np.where(empty, 1.0, totals)
    return np.where(empty, 1.0 / idx.size, sub / safe)


# ---------------------------------------------------------------------------------------
# Attention rollout
# ---------------------------------------------------------------------------------------


def rollout(attn: ArrayLike) -> Float64Array:
    """Cumulative attention rollout: ``[L, H, n, n] -> [L, n, n]``; ``result[-1]`` is the full one.

    ``result[l] = A_l @ A_(l-1) @ ... @ A_0`` with ``A_l`` the head-averaged attention of
    layer l mixed half-and-half with the identity and row-renormalised.
    """
    a = np.asarray(attn)
    _require_ndim(a, 4, "attention")
    n = a.shape[-1]
    if a.shape[-2] != n:
        raise ValueError(f"rollout needs square attention, got shape {a.shape}")
    # Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers", Sec. 3: the
    # residual connection is modelled by adding the identity (0.5 W + 0.5 I), and the
    # flow from layer 0 to layer l is the product of the per-layer matrices.
    eye = np.eye(n)
    # Head means layer by layer, summed in float64: no float64 copy of every head.
    layers = int(a.shape[0])
    means = np.empty((layers, n, n), dtype=np.float64)
    for layer in range(layers):
        means[layer] = a[layer].mean(axis=0, dtype=np.float64)
    per_layer = 0.5 * means + 0.5 * eye
    per_layer /= per_layer.sum(axis=-1, keepdims=True)
    out = np.empty_like(per_layer)
    current = eye
    for layer in range(layers):
        # Later layers multiply on the left: row i of the product is where the token at
        # position i (top layer) ultimately draws its information from among the inputs.
        current = per_layer[layer] @ current
        out[layer] = current
    return out


def alti_rollout(contributions: ArrayLike) -> Float64Array:
    """ALTI rollout: ``[L, n, n] -> [L, n, n]``, ``R^1 = C^1``, ``R^l = C^l R^(l-1)``.

    Row i of ``R^l`` is how much each input token contributes to token i after layer l
    (Ferrando et al. 2022, Sec. 4): ALTI already counts the residual stream, so no
    identity is mixed in, unlike :func:`rollout`.
    """
    c = np.asarray(contributions)
    _require_ndim(c, 3, "contributions")
    out = np.empty(c.shape, dtype=np.float64)
    current = np.eye(c.shape[-1])
    for layer in range(c.shape[0]):
        current = c[layer].astype(np.float64) @ current
        out[layer] = current
    return out


# ---------------------------------------------------------------------------------------
# Focus word: locating it and scoring candidate antecedents
# ---------------------------------------------------------------------------------------

# Straight and typographic apostrophes are treated as the same character, since tokenised
# text and a word typed on the command line often disagree on which one is used.
_APOSTROPHES = "'\u2019\u02bc"


def _word_pattern(word: str) -> re.Pattern[str]:
    parts: list[str] = []
    for ch in word:
        parts.append(f"[{_APOSTROPHES}]" if ch in _APOSTROPHES else re.escape(ch))
    # \w in a str pattern is Unicode-aware: letters, digits and underscore of any script,
    # so "it" does not match inside "itself" or "Ítem", and "naïve" still matches whole.
    return re.compile(r"(?<!\w)" + "".join(parts) + r"(?!\w)", re.IGNORECASE)


def word_in_text(text: str, word: str) -> bool:
    """Whether ``word`` occurs in ``text`` as :func:`find_word` matches it (no tokens needed)."""
    needle = word.strip()
    return bool(needle) and _word_pattern(needle).search(text) is not None


def find_word(text: str, offsets: Sequence[tuple[int, int]], word: str) -> tuple[list[int], int]:
    """Find ``word`` as a whole word (case-insensitive) in ``text``.

    Returns the token positions whose ``(start, end)`` char offsets overlap the first match,
    and the number of matches in the text. Tokens with ``start == end`` (special tokens,
    given as (0, 0)) never match. No match gives ``([], 0)``; a match that no token covers
    (e.g. the text was truncated) gives ``([], count)``.
    """
    needle = word.strip()
    if not needle:
        return [], 0
    matches = list(_word_pattern(needle).finditer(text))
    if not matches:
        return [], 0
    first_start, first_end = matches[0].span()
    positions = [
        pos
        for pos, (start, end) in enumerate(offsets)
        if start < end and start < first_end and end > first_start
    ]
    return positions, len(matches)


def focus_scores(
    attn: ArrayLike, focus: Sequence[int], candidates: Sequence[Sequence[int]]
) -> Float64Array:
    """Attention from the focus word to each candidate, per head: ``[L, H, n, n] -> [L, H, C]``.

    From = mean over the focus word's pieces' rows; to = sum over a candidate's pieces'
    columns (the same convention as :func:`merge_groups`).
    """
    a = np.asarray(attn)
    _require_ndim(a, 4, "attention")
    n = a.shape[-1]
    if a.shape[-2] != n:
        raise ValueError(f"focus_scores needs square attention, got shape {a.shape}")
    focus_row = _membership([focus], n, "focus word")[0]
    to_cols = _membership(candidates, n, "candidate")  # [C, n]
    # [L,H,n,n] -> [L,H,n] (mean of the focus rows, taken alone so that only they are
    # widened to float64) -> [L,H,C] (sum of candidate columns).
    rows = np.flatnonzero(focus_row)
    from_focus = a[..., rows, :].astype(np.float64).mean(axis=-2)
    return from_focus @ to_cols.T


def rank_heads(scores_LH: ArrayLike, k: int = 5) -> list[tuple[int, int, float]]:
    """Top-``k`` heads as ``(layer, head, value)``, 0-based, by value descending.

    Ties are broken by (layer, head) ascending, so the ranking is deterministic.
    """
    grid = _as_f64(scores_LH)
    _require_ndim(grid, 2, "score grid")
    if k <= 0 or grid.size == 0:
        return []
    layers, heads = np.indices(grid.shape)
    values = grid.ravel()
    # lexsort sorts by the last key first: value descending, then layer, then head.
    order = np.lexsort((heads.ravel(), layers.ravel(), -values))[:k]
    return [(int(layers.flat[i]), int(heads.flat[i]), float(values[i])) for i in order]


def winner_grid(scores_LHC: ArrayLike) -> NDArray[np.intp]:
    """Index of the most-attended candidate per head: ``[L, H, C] -> [L, H]`` (first on ties)."""
    s = _as_f64(scores_LHC)
    _require_ndim(s, 3, "scores")
    return np.argmax(s, axis=-1)


# ---------------------------------------------------------------------------------------
# Minimal pairs
# ---------------------------------------------------------------------------------------


def align_words(words_a: Sequence[str], words_b: Sequence[str]) -> list[tuple[int, int]]:
    """Pairs ``(i, j)`` of corresponding words in two sentences of a minimal pair, sorted by i.

    Identical words (case-insensitive) are aligned by difflib's matching blocks; inside a
    replaced stretch of equal length on both sides, words are paired by position, so the
    one swapped word ("tired" / "wide") still lines up.
    """
    low_a = [w.lower() for w in words_a]
    low_b = [w.lower() for w in words_b]
    matcher = difflib.SequenceMatcher(None, low_a, low_b, autojunk=False)
    pairs: list[tuple[int, int]] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal" or (tag == "replace" and i2 - i1 == j2 - j1):
            pairs.extend((i1 + d, j1 + d) for d in range(i2 - i1))
    pairs.sort()
    return pairs


@dataclass(frozen=True)
class RankedHead:
    """One head (0-based indices) and its score, as the ranked tables show it."""

    layer: int
    head: int
    value: float


def ranked_heads(scores_LH: ArrayLike, k: int = 5) -> tuple[RankedHead, ...]:
    """:func:`rank_heads` as records."""
    return tuple(RankedHead(*row) for row in rank_heads(scores_LH, k))


@dataclass(frozen=True)
class PairSummary:
    """How many heads switch candidate between sentence A and B, and the strongest one.

    ``best`` is a 0-based (layer, head) or None; ``best_a`` / ``best_b`` are that head's
    weight on candidate 0 in A and in B; ``sentence`` is ready to print (1-based numbers).
    """

    flips: int
    total: int
    best: tuple[int, int] | None
    best_a: float
    best_b: float
    sentence: str


def pair_summary(
    scores_a: ArrayLike, scores_b: ArrayLike, focus: str, candidates: tuple[str, str]
) -> PairSummary:
    """Summarise the heads that "flip" between the two sentences of a minimal pair.

    ``scores_*`` are ``[L, H, C]`` focus scores (C >= 2; only candidates 0 and 1 are used).
    A head flips when in A it gives candidate 0 strictly more attention than candidate 1
    and in B candidate 1 strictly more than candidate 0. The strongest flip maximises
    ``(A0 - A1) + (B1 - B0)``; ties go to the lowest (layer, head).
    """
    a = _as_f64(scores_a)
    b = _as_f64(scores_b)
    _require_ndim(a, 3, "scores_a")
    if a.shape != b.shape:
        raise ValueError(f"scores_a and scores_b differ in shape: {a.shape} vs {b.shape}")
    if a.shape[-1] < 2:
        raise ValueError(f"pair_summary needs at least 2 candidates, got {a.shape[-1]}")
    margin_a = a[..., 0] - a[..., 1]
    margin_b = b[..., 1] - b[..., 0]
    flipped = (margin_a > 0) & (margin_b > 0)
    flips = int(flipped.sum())
    total = int(flipped.size)
    c0, c1 = candidates
    if flips == 0:
        sentence = (
            f"In 0 of {total} heads does '{focus}' attend more to '{c0}' in A "
            f"and more to '{c1}' in B."
        )
        return PairSummary(0, total, None, 0.0, 0.0, sentence)
    strength = np.where(flipped, margin_a + margin_b, -np.inf)
    # argmax returns the first maximum in row-major order: lowest layer, then head.
    layer, head = (int(x) for x in np.unravel_index(int(np.argmax(strength)), strength.shape))
    best_a = float(a[layer, head, 0])
    best_b = float(b[layer, head, 0])
    sentence = (
        f"In {flips} of {total} heads '{focus}' attends more to '{c0}' in A and more to "
        f"'{c1}' in B; strongest: Layer {layer + 1}, Head {head + 1} "
        f"('{focus}' -> '{c0}': {best_a:.2f} in A, {best_b:.2f} in B)."
    )
    return PairSummary(flips, total, (layer, head), best_a, best_b, sentence)


@dataclass(frozen=True)
class PairAnswer:
    """The one head a minimal pair hands in, chosen by :func:`pair_answer`.

    ``head`` is 0-based (layer, head); ``expected`` the candidate index that should win in
    A and in B; ``gold`` whether that came from gold answers (else the "flip" default:
    candidate 0 in A, candidate 1 in B). ``shows_pattern`` is False when no head gets both
    sentences right and ``head`` is only the closest one. ``correct`` counts the heads
    that get both right, ``right_a`` / ``right_b`` those right in one sentence, out of
    ``total``. ``weights_a`` / ``weights_b`` are ``head``'s weights on every candidate.
    """

    head: tuple[int, int]
    expected: tuple[int, int]
    gold: bool
    shows_pattern: bool
    correct: int
    right_a: int
    right_b: int
    total: int
    weights_a: tuple[float, ...]
    weights_b: tuple[float, ...]


def _margin(scores: Float64Array, expected: int) -> Float64Array:
    """Weight on the expected candidate minus the largest weight on any other: ``[L, H]``."""
    others = np.delete(scores, expected, axis=-1)
    return scores[..., expected] - others.max(axis=-1)


def pair_answer(
    scores_a: ArrayLike,
    scores_b: ArrayLike,
    answer_a: int | None = None,
    answer_b: int | None = None,
) -> PairAnswer:
    """Choose the one head to hand in for a minimal pair.

    ``scores_*`` are ``[L, H, C]`` focus scores (C >= 2); ``answer_a`` / ``answer_b`` the
    gold candidate index in A and in B, or None for the default that a minimal pair
    implies (candidate 0 in A, candidate 1 in B). A head is *right* in a sentence when the
    expected candidate gets strictly more weight than every other candidate. Among the
    heads right in both sentences the answer is the one with the largest sum of the two
    margins (expected minus best other); when no head is right in both, the head with the
    largest sum anyway, flagged ``shows_pattern=False``. Ties go to the lowest
    (layer, head).
    """
    a = _as_f64(scores_a)
    b = _as_f64(scores_b)
    _require_ndim(a, 3, "scores_a")
    if a.shape != b.shape:
        raise ValueError(f"scores_a and scores_b differ in shape: {a.shape} vs {b.shape}")
    count = a.shape[-1]
    if count < 2:
        raise ValueError(f"pair_answer needs at least 2 candidates, got {count}")
    gold = answer_a is not None and answer_b is not None
    expected = (answer_a, answer_b) if answer_a is not None and answer_b is not None else (0, 1)
    for index in expected:
        if not 0 <= index < count:
            raise ValueError(f"answer index {index} is outside 0..{count - 1}")
    margin_a = _margin(a, expected[0])
    margin_b = _margin(b, expected[1])
    right = (margin_a > 0) & (margin_b > 0)
    total = margin_a + margin_b
    strength = np.where(right, total, -np.inf) if right.any() else total
    # argmax returns the first maximum in row-major order: lowest layer, then head.
    layer, head = (int(x) for x in np.unravel_index(int(np.argmax(strength)), strength.shape))
    return PairAnswer(
        head=(layer, head),
        expected=(int(expected[0]), int(expected[1])),
        gold=gold,
        shows_pattern=bool(right.any()),
        correct=int(right.sum()),
        right_a=int((margin_a > 0).sum()),
        right_b=int((margin_b > 0).sum()),
        total=int(right.size),
        weights_a=tuple(float(x) for x in a[layer, head]),
        weights_b=tuple(float(x) for x in b[layer, head]),
    )


def submission_range(attn: ArrayLike, special: Sequence[bool]) -> tuple[float, float]:
    """Colour range of a heatmap taken over the columns of non-special tokens only.

    ``attn`` is one head's ``[q, k]`` map. [CLS] and [SEP] columns often hold most of the
    weight and would squeeze every other cell into the bottom of a 0-1 scale; leaving
    them out of the range keeps the cells a student compares apart (those columns then
    saturate at the top colour). Returns ``(0, max)`` with max at least 0.01; all columns
    are used when every token is special.
    """
    a = _as_f64(attn)
    _require_ndim(a, 2, "attention")
    keep = ~np.asarray(special, dtype=bool)
    if keep.shape != (a.shape[-1],):
        raise ValueError(f"special must have {a.shape[-1]} entries, got {keep.shape}")
    cols = a[:, keep] if keep.any() else a
    top = float(cols.max()) if cols.size else 0.0
    return 0.0, max(top, 0.01)
