"""The head atlas's running totals, their exact merge, and what they mean (pure numpy).

Every statistic is a token-weighted mean over the corpus's eligible query rows, kept as
a float64 sum per [layer, head] and one row count per statistic, so memory stays flat
however long the corpus is and partial totals (batches, Ray workers) merge by addition.
The torch side that fills them, batch by batch, is :mod:`reportgen.atlas.engine`.

The coreference accuracies also get their uncertainty here (issue 22): a Wilson interval
for every accuracy, and a permutation test of the best head against the best of all
heads with the gold answers shuffled (:func:`coref_stats`), which the page and the
export both read.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from reportgen import mixing

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

# Coreference uncertainty (issue 22). Quantiles of the standard normal, written out so
# this module needs numpy alone: two-sided 95%, one-sided alpha 0.05, power 0.80.
Z_95 = 1.959963984540054
Z_ALPHA = 1.6448536269514722
Z_POWER = 0.8416212335729143
SIGNIFICANCE = 0.05
PERMUTATION_ROUNDS = 1000
# Fixed: the chance level is part of the page, which must be byte-identical on reruns.
PERMUTATION_SEED = 22
_ROUNDS_PER_CHUNK = 100  # bounds the [rounds, items] draws held at once


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
class CorefItems:
    """Per scored item, which candidate each head prefers: what the permutation test
    needs, since a count of right heads cannot say what a shuffled answer would give.

    One int8 per head and item (``layers * heads`` bytes an item: 270 KB per thousand
    items at 30 x 9 heads), so unlike the sums this grows with the number of gold items.
    Partial lists merge by concatenation; :meth:`arrays` orders them by corpus number,
    so any batching or Ray merge order gives the same arrays and the same chance level.
    """

    seq: list[int] = field(default_factory=list)  # the item's sentence number
    answer: list[int] = field(default_factory=list)  # index of the gold candidate
    candidates: list[int] = field(default_factory=list)  # how many candidates it has
    # Each [layer, head]: the candidate with the strictly highest score, -1 on a tie
    # (a tie is wrong whichever candidate is gold).
    prefer: list[NDArray[np.int8]] = field(default_factory=list)

    def add(self, seq: int, answer: int, candidates: int, prefer: NDArray[np.int8]) -> None:
        self.seq.append(seq)
        self.answer.append(answer)
        self.candidates.append(candidates)
        self.prefer.append(prefer)

    def merge(self, other: CorefItems) -> None:
        self.seq += other.seq
        self.answer += other.answer
        self.candidates += other.candidates
        self.prefer += other.prefer

    def arrays(
        self,
    ) -> tuple[NDArray[np.int8], NDArray[np.int64], NDArray[np.int64]]:
        """(prefer [item, layer*heads], answer [item], candidates [item]) in corpus order."""
        order = np.argsort(np.asarray(self.seq, dtype=np.int64), kind="stable")
        prefer = np.stack([self.prefer[i].ravel() for i in order]) if self.prefer else None
        answer = np.asarray(self.answer, dtype=np.int64)[order]
        candidates = np.asarray(self.candidates, dtype=np.int64)[order]
        if prefer is None:
            prefer = np.zeros((0, 0), dtype=np.int8)
        return prefer, answer, candidates


def preferred_candidate(scores: NDArray[np.float64]) -> NDArray[np.int8]:
    """[..., candidates] scores -> the index of the strictly highest, -1 where the top
    is shared. A head is right on an item exactly when this equals the answer."""
    top = scores.max(-1, keepdims=True)
    unique = (scores == top).sum(-1) == 1
    return np.where(unique, scores.argmax(-1), -1).astype(np.int8)


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
    coref: CorefItems = field(default_factory=CorefItems)
    examples: Examples | None = None
    # [layer*heads, layer*heads]: sum over the rows of the first JS_SENTENCES sentences of
    # the Jensen-Shannon divergence (nats) between two heads' rows; upper triangle only.
    js_sum: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0)))
    js_rows: float = 0.0
    # Coreference right counts under each context-mixing measure asked for (issue 20):
    # name -> [layer, head] ("norm") or [layer, 1] (a per-layer measure); and why the
    # measures are withheld for this model, if they are.
    measure_right: dict[str, NDArray[np.int64]] = field(default_factory=dict)
    # The statistics' sums under a per-head measure ("norm"), [stat, layer, head], over
    # the same rows as `sums`.
    measure_sums: dict[str, NDArray[np.float64]] = field(default_factory=dict)
    measures_withheld: str | None = None

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
        self.coref.merge(other.coref)
        self.js_sum += other.js_sum
        self.js_rows += other.js_rows
        for name, right in other.measure_right.items():
            mine = self.measure_right.get(name)
            self.measure_right[name] = right.copy() if mine is None else mine + right
        for name, sums in other.measure_sums.items():
            kept = self.measure_sums.get(name)
            self.measure_sums[name] = sums.copy() if kept is None else kept + sums
        self.measures_withheld = self.measures_withheld or other.measures_withheld
        if self.examples is not None and other.examples is not None:
            self.examples.merge(other.examples)

    def means(self) -> dict[str, NDArray[np.float64] | None]:
        """Each statistic's corpus mean per [layer, head]; None where no row was eligible."""
        out: dict[str, NDArray[np.float64] | None] = {}
        for i, name in enumerate(STATS):
            out[name] = self.sums[i] / self.rows[i] if self.rows[i] > 0 else None
        return out

    def means_under(self, measure: str) -> dict[str, NDArray[np.float64] | None]:
        """:meth:`means` under a per-head measure; empty where it was not counted."""
        sums = self.measure_sums.get(measure)
        if sums is None:
            return {}
        return {
            name: sums[i] / self.rows[i] if self.rows[i] > 0 else None
            for i, name in enumerate(STATS)
        }

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


# ---------- coreference: intervals and a chance level (issue 22) ----------


def wilson_interval(
    right: NDArray[np.float64] | float, n: int, z: float = Z_95
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The Wilson score interval of `right` successes in `n` trials (elementwise):
    (p + z^2/2n -/+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n), with p = right / n.
    Unlike p +/- z sqrt(p(1-p)/n) it stays inside [0, 1] and is not empty at 0 or n."""
    if n <= 0:
        raise ValueError("an interval needs at least one item")
    p = np.asarray(right, dtype=np.float64) / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


@dataclass(frozen=True)
class Interval:
    """A 95% interval of an accuracy."""

    low: float
    high: float


@dataclass(frozen=True)
class ChanceLevel:
    """The best head against the best of all heads when the gold answers carry no
    information: each round draws every item's gold answer uniformly among its
    candidates (for two candidates: swapped with probability 1/2) and takes the best
    head's accuracy over all heads, so the heads' correlation is kept."""

    rounds: int
    seed: int
    observed: float  # the best head's accuracy with the real answers
    percentile_95: float  # the 95th percentile of the best accuracy over the rounds
    at_or_above: int  # rounds whose best head reached `observed` or more

    @property
    def p_value(self) -> float:
        """(1 + rounds at or above the observed best) / (1 + rounds): never 0, as the
        real answers count as one of the arrangements."""
        return (1 + self.at_or_above) / (1 + self.rounds)

    @property
    def distinguishable(self) -> bool:
        return self.p_value < SIGNIFICANCE


def best_head_chance(
    prefer: NDArray[np.int8],
    answer: NDArray[np.int64],
    candidates: NDArray[np.int64],
    rounds: int = PERMUTATION_ROUNDS,
    seed: int = PERMUTATION_SEED,
) -> ChanceLevel:
    """The permutation test of the best head. `prefer` is [item, head] (each head's
    strictly preferred candidate, -1 on a tie), `answer` and `candidates` [item].

    A head is right on an item when its preference is the gold answer, so per round the
    right counts are sum over candidates c of [gold == c] @ [prefer == c]: one matrix
    product per candidate slot instead of a loop over rounds."""
    items, heads = prefer.shape
    if items == 0 or heads == 0:
        raise ValueError("a chance level needs items and heads")
    observed = int((prefer == answer[:, None]).sum(0).max())
    # float32 sums of 0/1 are exact below 2^24; beyond that, float64.
    dtype = np.float32 if items < 2**24 else np.float64
    slots = [(prefer == c).astype(dtype) for c in range(int(candidates.max()))]
    rng = np.random.default_rng(seed)
    best = np.empty(rounds, dtype=np.int64)
    for start in range(0, rounds, _ROUNDS_PER_CHUNK):
        size = min(_ROUNDS_PER_CHUNK, rounds - start)
        gold = np.minimum((rng.random((size, items)) * candidates).astype(np.int64), candidates - 1)
        right = np.zeros((size, heads), dtype=dtype)
        for c, slot in enumerate(slots):
            right += (gold == c).astype(dtype) @ slot
        best[start : start + size] = np.rint(right.max(1)).astype(np.int64)
    return ChanceLevel(
        rounds=rounds,
        seed=seed,
        observed=observed / items,
        percentile_95=float(np.quantile(best, 0.95, method="higher")) / items,
        at_or_above=int((best >= observed).sum()),
    )


def items_needed(
    accuracy: float, chance: float, z_alpha: float = Z_ALPHA, z_power: float = Z_POWER
) -> int | None:
    """Items a one-sided binomial test at alpha 0.05 needs to tell `accuracy` from
    `chance` with 80% power, by the normal approximation:
    n = ((z_a sqrt(p0 (1 - p0)) + z_b sqrt(p1 (1 - p1))) / (p1 - p0))^2, rounded up.
    For one head named in advance; the best of many heads needs more. None when the
    accuracy is not above chance (no number of items would show it is)."""
    if accuracy <= chance:
        return None
    spread = z_alpha * np.sqrt(chance * (1 - chance)) + z_power * np.sqrt(accuracy * (1 - accuracy))
    return int(np.ceil((spread / (accuracy - chance)) ** 2 - 1e-9))


@dataclass(frozen=True)
class CorefStats:
    """Everything the page and the export say about the coreference accuracies."""

    items: int
    accuracy: NDArray[np.float64]  # [layer, head]
    low: NDArray[np.float64]  # [layer, head]: Wilson 95% interval
    high: NDArray[np.float64]
    # A random pick's expected accuracy: the mean over items of 1 / candidates (0.5 when
    # every item has two); the colour scale's midpoint and the power estimate's null.
    chance: float
    best: tuple[int, int]  # 0-based (layer, head); ties to the lower layer, then head
    best_interval: Interval
    chance_level: ChanceLevel
    items_needed: int | None  # to tell the best head's accuracy from `chance`
    baselines: tuple[tuple[str, float, Interval], ...]  # (name, accuracy, interval)

    @property
    def best_accuracy(self) -> float:
        return float(self.accuracy[self.best])


def coref_stats(
    sums: AtlasSums, rounds: int = PERMUTATION_ROUNDS, seed: int = PERMUTATION_SEED
) -> CorefStats | None:
    """Intervals, the chance level and the power estimate of the corpus's coreference
    accuracies; None without scored items."""
    n = sums.coref_items
    if n == 0:
        return None
    prefer, answer, candidates = sums.coref.arrays()
    if prefer.shape[0] != n:
        raise ValueError(f"{prefer.shape[0]} per-item records for {n} coreference items")
    accuracy = sums.coref_right / n
    low, high = wilson_interval(sums.coref_right.astype(np.float64), n)
    flat = int(np.argmax(accuracy))  # the first maximum: rank_heads' tie order
    best = (flat // sums.heads, flat % sums.heads)
    baselines = []
    for name, right in (
        ("nearest_before", sums.nearest_right),
        ("first_candidate", sums.first_right),
    ):
        lo, hi = wilson_interval(float(right), n)
        baselines.append((name, right / n, Interval(float(lo), float(hi))))
    chance = float(np.mean(1.0 / candidates))
    return CorefStats(
        items=n,
        accuracy=accuracy,
        low=low,
        high=high,
        chance=chance,
        best=best,
        best_interval=Interval(float(low[best]), float(high[best])),
        chance_level=best_head_chance(prefer, answer, candidates, rounds, seed),
        items_needed=items_needed(float(accuracy[best]), chance),
        baselines=tuple(baselines),
    )


# ---------- coreference under each measure (issue 20) ----------


@dataclass(frozen=True)
class MeasureAccuracy:
    """Coreference accuracy under one measure: per head (weights, norm) or per layer
    (norm per layer, ALTI, its rollout), its best unit with a Wilson interval."""

    measure: str
    per_layer: bool
    accuracy: NDArray[np.float64]  # [layer, head] or [layer, 1]
    best: tuple[int, int]  # 0-based; head 0 for a per-layer measure
    best_interval: Interval


def measure_accuracies(sums: AtlasSums) -> tuple[MeasureAccuracy, ...]:
    """Weights first, then every measure counted, in the order of mixing.MEASURES with
    ALTI's rollout after ALTI; empty without scored items or measures."""
    n = sums.coref_items
    if n == 0 or not sums.measure_right:
        return ()
    order = (*mixing.MEASURES, "alti_rollout")
    rows = [("weights", sums.coref_right)] + [
        (m, sums.measure_right[m]) for m in order if m in sums.measure_right
    ]
    out = []
    for name, right in rows:
        accuracy = right / n
        flat = int(np.argmax(accuracy))  # the first maximum, as coref_stats
        best = (flat // accuracy.shape[1], flat % accuracy.shape[1])
        low, high = wilson_interval(float(right[best]), n)
        out.append(
            MeasureAccuracy(
                name,
                accuracy.shape[1] == 1 and sums.heads > 1,
                accuracy,
                best,
                Interval(float(low), float(high)),
            )
        )
    return tuple(out)
