"""atlas.stats's coreference uncertainty (issue 22), against hand computations: the Wilson
interval, the best-of-all-heads permutation test (random heads are not significant, a
planted head is), the power estimate, and that any merge order gives the same answer."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reportgen.atlas.stats import (
    PERMUTATION_ROUNDS,
    AtlasSums,
    CorefItems,
    best_head_chance,
    coref_stats,
    items_needed,
    preferred_candidate,
    wilson_interval,
)


def hand_wilson(right: int, n: int) -> tuple[float, float]:
    """The closed formula, written out again: (p + z²/2n ± z√(p(1-p)/n + z²/4n²)) / (1 + z²/n)."""
    z = 1.959963984540054
    p = right / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def test_wilson_interval_of_12_in_20_by_hand() -> None:
    low, high = wilson_interval(12.0, 20)
    want = hand_wilson(12, 20)
    assert (float(low), float(high)) == pytest.approx(want, abs=1e-12)
    # The published value for 12/20 (e.g. Newcombe 1998's method 3): 0.3866 to 0.7812.
    assert (round(float(low), 4), round(float(high), 4)) == (0.3866, 0.7812)


def test_wilson_interval_elementwise_and_at_the_ends() -> None:
    right = np.array([[0.0, 5.0], [20.0, 12.0]])
    low, high = wilson_interval(right, 20)
    for (i, j), r in np.ndenumerate(right):
        assert (low[i, j], high[i, j]) == pytest.approx(hand_wilson(int(r), 20), abs=1e-12)
    # Not empty at 0 or n, unlike the normal approximation's p ± z√(p(1-p)/n).
    assert low[0, 0] == 0.0 and high[0, 0] == pytest.approx(0.1611, abs=1e-4)
    assert high[1, 0] == pytest.approx(1.0) and low[1, 0] == pytest.approx(0.8389, abs=1e-4)
    with pytest.raises(ValueError):
        wilson_interval(0.0, 0)


def random_heads(
    rng: np.random.Generator, items: int, heads: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two-candidate items; every head prefers a candidate at random, as do the answers."""
    prefer = rng.integers(0, 2, size=(items, heads)).astype(np.int8)
    answer = rng.integers(0, 2, size=items).astype(np.int64)
    return prefer, answer, np.full(items, 2, dtype=np.int64)


def test_random_heads_are_not_significant_though_the_best_looks_good() -> None:
    prefer, answer, candidates = random_heads(np.random.default_rng(0), items=20, heads=72)
    level = best_head_chance(prefer, answer, candidates)
    # Issue 22's case: 20 items, 72 coin-flipping heads; the best of them looks like a find.
    assert level.observed == 0.8
    assert level.p_value > 0.05 and not level.distinguishable
    # The best of 72 coin flips over 20 items: its 95th percentile is far above 0.5.
    assert level.percentile_95 == 0.85
    assert level.rounds == PERMUTATION_ROUNDS
    assert level.p_value == (1 + level.at_or_above) / (1 + level.rounds)


def test_random_heads_are_significant_at_most_as_often_as_the_level_allows() -> None:
    """Over 200 corpora of random heads, p < 0.05 in at most about 5% (10% allows for
    the 200 draws; the best count is discrete, so the test is a little conservative)."""
    found = [
        best_head_chance(*random_heads(np.random.default_rng(100 + s), 20, 72)).distinguishable
        for s in range(200)
    ]
    assert sum(found) / len(found) <= 0.10


def test_a_planted_head_right_on_every_item_is_significant() -> None:
    prefer, answer, candidates = random_heads(np.random.default_rng(7), items=20, heads=72)
    prefer[:, 41] = answer  # layer 3, head 5 of 12 is right on all 20
    level = best_head_chance(prefer, answer, candidates)
    assert level.observed == 1.0
    # No shuffled round gives any head 20 of 20 (each head: 2^-20): p is the floor 1/1001.
    assert level.at_or_above == 0
    assert level.p_value == pytest.approx(1 / 1001) and level.distinguishable
    assert level.percentile_95 < 1.0


def test_one_head_matches_the_exact_binomial_tail() -> None:
    """With one head the permutation test is a binomial test: right on 15 of 20
    two-candidate items gives P(Binomial(20, 1/2) >= 15) = 21700 / 2^20 = 0.0207."""
    answer = np.zeros(20, dtype=np.int64)
    prefer = np.where(np.arange(20) < 15, 0, 1).astype(np.int8)[:, None]
    level = best_head_chance(prefer, answer, np.full(20, 2, dtype=np.int64), rounds=20_000)
    exact = sum(math.comb(20, k) for k in range(15, 21)) / 2**20
    assert exact == pytest.approx(0.020695, abs=1e-6)
    # Monte Carlo: within 4 standard errors of the exact tail.
    assert abs(level.at_or_above / level.rounds - exact) < 4 * math.sqrt(exact / 20_000)


def test_ties_and_three_candidates() -> None:
    """A tied head (-1) is wrong whatever the gold answer; with three candidates the
    shuffled answer is uniform over the three, so always naming the first right on 12
    items happens by chance with probability 3^-12."""
    answer = np.zeros(12, dtype=np.int64)
    prefer = np.stack([np.zeros(12), np.full(12, -1)], axis=1).astype(np.int8)
    level = best_head_chance(prefer, answer, np.full(12, 3, dtype=np.int64))
    assert level.observed == 1.0 and level.at_or_above == 0
    ties_only = best_head_chance(prefer[:, 1:], answer, np.full(12, 3, dtype=np.int64))
    assert ties_only.observed == 0.0 and ties_only.percentile_95 == 0.0
    assert ties_only.p_value == 1.0  # every round reaches 0: as good as chance, no better


def test_preferred_candidate_agrees_with_the_right_rule() -> None:
    scores = np.array([[[0.5, 0.2], [0.4, 0.4], [0.1, 0.3]]])  # [1, 3 heads, 2 candidates]
    np.testing.assert_array_equal(preferred_candidate(scores), [[0, -1, 1]])
    single = np.array([[[0.2], [0.0]]])  # one candidate: always the answer
    np.testing.assert_array_equal(preferred_candidate(single), [[0, 0]])


def test_items_needed_by_hand() -> None:
    """n = ((z_a √(p0 q0) + z_b √(p1 q1)) / (p1 - p0))² with z_a = 1.6449, z_b = 0.8416."""
    z_a, z_b = 1.6448536269514722, 0.8416212335729143
    by_hand = ((z_a * 0.5 + z_b * math.sqrt(0.6 * 0.4)) / 0.1) ** 2
    assert by_hand == pytest.approx(152.457, abs=1e-3)
    assert items_needed(0.6, 0.5) == 153 == math.ceil(by_hand)
    assert items_needed(0.75, 0.5) == 23
    assert items_needed(1.0, 0.5) == math.ceil((z_a * 0.5 / 0.5) ** 2) == 3
    assert items_needed(0.5, 0.5) is None and items_needed(0.4, 0.5) is None


def sums_with_items(
    rng: np.random.Generator, layers: int, heads: int, items: int, planted: bool
) -> AtlasSums:
    """An AtlasSums filled as the engine fills it, item by item (random heads)."""
    sums = AtlasSums.empty(layers, heads, k=0)
    for seq in range(items):
        answer = int(rng.integers(0, 2))
        prefer = rng.integers(0, 2, size=(layers, heads)).astype(np.int8)
        if planted:
            prefer[1, 2] = answer
        sums.coref_right += prefer == answer
        sums.coref_items += 1
        sums.nearest_right += seq % 2
        sums.first_right += answer == 0
        sums.coref.add(seq, answer, 2, prefer)
    return sums


def test_coref_stats_reads_the_totals_and_the_items() -> None:
    sums = sums_with_items(np.random.default_rng(3), 3, 4, 20, planted=True)
    stats = coref_stats(sums)
    assert stats is not None
    assert stats.best == (1, 2) and stats.best_accuracy == 1.0
    assert stats.chance == 0.5 and stats.items == 20
    assert stats.chance_level.distinguishable
    for (layer, head), right in np.ndenumerate(sums.coref_right):
        want = hand_wilson(int(right), 20)
        assert (stats.low[layer, head], stats.high[layer, head]) == pytest.approx(want)
    assert stats.best_interval.low == pytest.approx(hand_wilson(20, 20)[0])
    (name, value, interval), _ = stats.baselines
    assert (name, value) == ("nearest_before", 0.5)
    assert (interval.low, interval.high) == pytest.approx(hand_wilson(10, 20))
    assert stats.items_needed == items_needed(1.0, 0.5)
    assert coref_stats(AtlasSums.empty(3, 4)) is None


def test_any_merge_order_gives_the_same_chance_level() -> None:
    """Ray's partial totals arrive in any order: the items are put back in corpus order,
    so the permutation draws meet the same items and the result is identical."""
    whole = sums_with_items(np.random.default_rng(5), 2, 3, 30, planted=False)
    parts = []
    for lo, hi in ((0, 7), (7, 19), (19, 30)):
        part = AtlasSums.empty(2, 3, k=0)
        part.coref = CorefItems(
            whole.coref.seq[lo:hi],
            whole.coref.answer[lo:hi],
            whole.coref.candidates[lo:hi],
            whole.coref.prefer[lo:hi],
        )
        part.coref_items = hi - lo
        part.coref_right = sum(
            (p == a for p, a in zip(part.coref.prefer, part.coref.answer, strict=True)),
            np.zeros((2, 3), dtype=np.int64),
        )
        parts.append(part)
    merged = AtlasSums.empty(2, 3, k=0)
    for part in (parts[2], parts[0], parts[1]):
        merged.merge(part)
    np.testing.assert_array_equal(merged.coref_right, whole.coref_right)
    a, b = coref_stats(whole), coref_stats(merged)
    assert a is not None and b is not None
    assert a.chance_level == b.chance_level
    np.testing.assert_array_equal(a.low, b.low)
