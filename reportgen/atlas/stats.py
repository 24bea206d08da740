"""The head atlas's running totals, their exact merge, and what they mean (pure numpy).

Every statistic is a token-weighted mean over the corpus's eligible query rows, kept as
a float64 sum per [layer, head] and one row count per statistic, so memory stays flat
however long the corpus is and partial totals (batches, Ray workers) merge by addition.
The torch side that fills them, batch by batch, is :mod:`reportgen.atlas.engine`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

# Order matters: it is the first axis of every [stat, ...] array.
STATS: tuple[str, ...] = (
    "to_first",
    "to_special",
    "to_punct",
    "to_self",
    "to_prev",
    "to_next",
    "entropy",
)
STAT_INDEX = {name: i for i, name in enumerate(STATS)}
STAT_HELP = {
    "to_first": "a[0]: weight on the first token ([CLS], <s> or the first word)",
    "to_special": "sum of a[j] over special tokens other than position 0 ([SEP], </s>, ...)",
    "to_punct": "sum of a[j] over non-special tokens that are all punctuation "
    "(Unicode P*, after removing ##, Ġ, ▁)",
    "to_self": "a[i]: weight on the query token itself",
    "to_prev": "a[i-1], over rows i >= 1",
    "to_next": "a[i+1], over rows i <= n-2",
    "entropy": "-sum a[j] ln a[j], in nats (0 ln 0 = 0)",
}
_MARKERS = ("##", "Ġ", "▁")

# Labels, in the order the page prints them: a head gets the rule whose statistic
# clears its threshold by the largest factor; "broad" only when no rule fires.
LABEL_RULES: tuple[tuple[str, str, float], ...] = (
    ("previous-token head", "to_prev", 0.5),
    ("next-token head", "to_next", 0.5),
    ("self head", "to_self", 0.5),
    ("first-token sink", "to_first", 0.5),
    ("[SEP] head", "to_special", 0.5),
    ("punctuation head", "to_punct", 0.3),
)
BROAD_LABEL = "broad"
# entropy / (mean over rows of ln(number of keys the row may see)): 1 is uniform.
BROAD_THRESHOLD = 0.8
MIXED_LABEL = "mixed"
# The head-similarity map costs (layers*heads)^2 / 2 row comparisons per token, so it is
# estimated on the corpus's first sentences (by corpus order, so any batching agrees).
JS_SENTENCES = 200


def is_punct_token(token: str) -> bool:
    """True if `token`, with the markers ##, Ġ and ▁ removed, is non-empty and every
    character is Unicode punctuation (general category P*)."""
    for marker in _MARKERS:
        token = token.replace(marker, "")
    return bool(token) and all(unicodedata.category(ch).startswith("P") for ch in token)


@dataclass
class Examples:
    """Top-k sentences per (statistic, layer, head) by the sentence's own mean of that
    statistic, each with that head's map: a bounded heap kept while streaming.

    `value`/`seq` are [stat, layer, head, k]; empty slots have value -inf, seq -1.
    Ties go to the earlier sentence (lower seq), so any batching gives the same set.
    """

    value: NDArray[np.float64]
    seq: NDArray[np.int64]
    maps: dict[tuple[int, int, int], NDArray[np.float32]] = field(default_factory=dict)
    sentences: dict[int, tuple[str, tuple[str, ...]]] = field(default_factory=dict)

    @classmethod
    def empty(cls, layers: int, heads: int, k: int) -> Examples:
        shape = (len(STATS), layers, heads, k)
        return cls(np.full(shape, -np.inf), np.full(shape, -1, dtype=np.int64))

    @property
    def k(self) -> int:
        return int(self.value.shape[-1])

    def offer(
        self,
        values: NDArray[np.float64],
        seqs: NDArray[np.int64],
        maps: Mapping[int, NDArray[np.float32]],
        describe: Callable[[int], tuple[str, tuple[str, ...]]],
    ) -> None:
        """Merge candidates `values` [stat, layer, head, m] for sentences `seqs` [m];
        `maps[seq]` is that sentence's [layers, heads, n, n] attention (read only for
        sentences that enter), `describe(seq)` its (source, display tokens)."""
        if self.k == 0 or values.shape[-1] == 0:
            return
        m = values.shape[-1]
        self._merge(values, np.ascontiguousarray(np.broadcast_to(seqs, values.shape)))
        # Copy the maps of the heads whose top-k now holds one of these sentences.
        hit = self.seq[..., None] == seqs.reshape((1, 1, 1, 1, m))  # [S, L, H, k, m]
        for _, layer, head, _, j in zip(*np.nonzero(hit), strict=True):
            key = (int(seqs[j]), int(layer), int(head))
            if key not in self.maps:
                # A copy: a view would keep the whole batch's attention alive.
                self.maps[key] = np.array(maps[key[0]][layer, head], dtype=np.float32)
                if key[0] not in self.sentences:
                    self.sentences[key[0]] = describe(key[0])
        self._prune()

    def _merge(self, values: NDArray[np.float64], seqs: NDArray[np.int64]) -> None:
        all_v = np.concatenate([self.value, values], axis=-1)
        all_s = np.concatenate([self.seq, seqs], axis=-1)
        # Empty and ineligible slots (-inf) sort last; among equals, the lower seq first.
        tie = np.where(all_s < 0, np.iinfo(np.int64).max, all_s)
        order = np.lexsort((tie, -all_v), axis=-1)[..., : self.k]
        self.value = np.take_along_axis(all_v, order, axis=-1)
        self.seq = np.take_along_axis(all_s, order, axis=-1)
        self.seq[~np.isfinite(self.value)] = -1

    def _prune(self) -> None:
        """Drop maps and sentences that no top-k slot refers to any more."""
        _, layer, head, _ = np.nonzero(self.seq >= 0)
        seq = self.seq[self.seq >= 0]
        wanted = set(zip(seq.tolist(), layer.tolist(), head.tolist(), strict=True))
        self.maps = {k: v for k, v in self.maps.items() if k in wanted}
        live = set(seq.tolist())
        self.sentences = {k: v for k, v in self.sentences.items() if k in live}

    def merge(self, other: Examples) -> None:
        """Add another worker's heap (exact: the same top-k as one stream would keep)."""
        self._merge(other.value, other.seq)
        self.maps.update(other.maps)
        self.sentences.update(other.sentences)
        self._prune()


@dataclass
class AtlasSums:
    """Running totals over a corpus; merge with :meth:`merge` (addition, so exact up to
    float64 rounding)."""

    layers: int
    heads: int
    sums: NDArray[np.float64]  # [stat, layer, head]: sum of the row values
    rows: NDArray[np.float64]  # [stat]: eligible rows (the same for every head)
    log_keys: float = 0.0  # sum over rows of ln(keys the row may attend to)
    sentences: int = 0
    tokens: int = 0
    truncated: int = 0
    coref_right: NDArray[np.int64] = field(default_factory=lambda: np.zeros((0, 0), np.int64))
    coref_items: int = 0
    coref_skipped: int = 0
    nearest_right: int = 0
    first_right: int = 0
    examples: Examples | None = None
    # [layer*heads, layer*heads]: sum over the rows of the first JS_SENTENCES sentences of
    # the Jensen-Shannon divergence (nats) between two heads' rows; upper triangle only.
    js_sum: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0)))
    js_rows: float = 0.0

    @classmethod
    def empty(cls, layers: int, heads: int, k: int = 3) -> AtlasSums:
        return cls(
            layers=layers,
            heads=heads,
            sums=np.zeros((len(STATS), layers, heads)),
            rows=np.zeros(len(STATS)),
            coref_right=np.zeros((layers, heads), dtype=np.int64),
            examples=Examples.empty(layers, heads, k),
            js_sum=np.zeros((layers * heads, layers * heads)),
        )

    def merge(self, other: AtlasSums) -> None:
        """Add another partial total (another batch, chunk or Ray worker) to this one."""
        if (other.layers, other.heads) != (self.layers, self.heads):
            raise ValueError("cannot merge atlas totals of different models")
        self.sums += other.sums
        self.rows += other.rows
        self.log_keys += other.log_keys
        self.sentences += other.sentences
        self.tokens += other.tokens
        self.truncated += other.truncated
        self.coref_right += other.coref_right
        self.coref_items += other.coref_items
        self.coref_skipped += other.coref_skipped
        self.nearest_right += other.nearest_right
        self.first_right += other.first_right
        self.js_sum += other.js_sum
        self.js_rows += other.js_rows
        if self.examples is not None and other.examples is not None:
            self.examples.merge(other.examples)

    def means(self) -> dict[str, NDArray[np.float64] | None]:
        """Each statistic's corpus mean per [layer, head]; None where no row was eligible."""
        out: dict[str, NDArray[np.float64] | None] = {}
        for i, name in enumerate(STATS):
            out[name] = self.sums[i] / self.rows[i] if self.rows[i] > 0 else None
        return out

    def js_distance(self) -> NDArray[np.float64] | None:
        """Mean Jensen-Shannon divergence per token between every two heads,
        [layer*heads, layer*heads] symmetric (Clark et al. 2019, section 6)."""
        if self.js_rows == 0:
            return None
        upper = self.js_sum / self.js_rows
        return upper + upper.T

    def max_entropy(self) -> float | None:
        """Mean over rows of ln(keys): a uniform head's entropy, the scale for "broad"."""
        rows = self.rows[STAT_INDEX["entropy"]]
        return self.log_keys / rows if rows > 0 else None

    def accuracy(self) -> NDArray[np.float64] | None:
        """Coreference accuracy per head: right / items; None without items."""
        if self.coref_items == 0:
            return None
        return self.coref_right / self.coref_items

    def baselines(self) -> dict[str, float | None]:
        items = self.coref_items
        return {
            "nearest_before": self.nearest_right / items if items else None,
            "first_candidate": self.first_right / items if items else None,
        }


def head_labels(
    means: dict[str, NDArray[np.float64] | None], max_entropy: float | None
) -> tuple[list[list[str]], list[list[str]]]:
    """A label per head from :data:`LABEL_RULES`, and its signature statistic (the one
    whose examples the page shows). Returns ([layer][head] labels, signatures)."""
    first = next(v for v in means.values() if v is not None)
    layers, heads = first.shape
    labels = [[MIXED_LABEL] * heads for _ in range(layers)]
    signature = [["entropy"] * heads for _ in range(layers)]
    for layer in range(layers):
        for head in range(heads):
            best: tuple[float, str, str] | None = None
            for label, stat, threshold in LABEL_RULES:
                grid = means.get(stat)
                if grid is None:
                    continue
                ratio = float(grid[layer, head]) / threshold
                if ratio >= 1.0 and (best is None or ratio > best[0]):
                    best = (ratio, label, stat)
            entropy = means.get("entropy")
            if best is not None:
                labels[layer][head], signature[layer][head] = best[1], best[2]
            elif (
                entropy is not None
                and max_entropy
                and float(entropy[layer, head]) / max_entropy >= BROAD_THRESHOLD
            ):
                labels[layer][head] = BROAD_LABEL
            else:
                # Mixed: show the examples of whichever pattern it leans to most.
                values = {
                    stat: float(means[stat][layer, head])  # type: ignore[index]
                    for _, stat, _ in LABEL_RULES
                    if means.get(stat) is not None
                }
                if values:
                    signature[layer][head] = max(values, key=lambda s: values[s])
    return labels, signature


def classical_mds(distance: NDArray[np.float64], dims: int = 2) -> NDArray[np.float64]:
    """Points whose Euclidean distances approximate `distance` (Torgerson's classical
    MDS: double-centre the squared distances, keep the top eigenvectors). Signs are
    fixed so the largest coordinate of each axis is positive (deterministic output)."""
    d2 = np.asarray(distance, dtype=np.float64) ** 2
    n = d2.shape[0]
    centre = np.eye(n) - np.full((n, n), 1.0 / n)
    b = -0.5 * centre @ d2 @ centre
    values, vectors = np.linalg.eigh((b + b.T) / 2)
    order = np.argsort(values)[::-1][:dims]
    coords = vectors[:, order] * np.sqrt(np.clip(values[order], 0.0, None))
    for axis in range(coords.shape[1]):
        if coords[np.argmax(np.abs(coords[:, axis])), axis] < 0:
            coords[:, axis] *= -1
    return coords
