"""Tests for reportgen.analysis against hand-computed values and slow reference loops."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reportgen.analysis import (
    LAYER_VERDICT_THRESHOLD,
    VERDICT_RULE,
    PairAnswer,
    PairSummary,
    align_words,
    drop_positions,
    find_word,
    focus_scores,
    head_average,
    layer_verdicts,
    mean_entropy,
    merge_groups,
    normalized_entropy,
    pair_answer,
    pair_summary,
    rank_heads,
    rollout,
    row_entropy,
    submission_range,
    winner_grid,
    word_groups,
)

LOG2 = math.log(2)

# A 3-token map used by several hand-computed tests; every row sums to 1.
A3 = np.array(
    [
        [0.5, 0.2, 0.3],
        [0.1, 0.6, 0.3],
        [0.4, 0.4, 0.2],
    ]
)


def dirichlet_attention(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Random row-stochastic array of `shape` (last axis = keys)."""
    n = shape[-1]
    rows = rng.dirichlet(np.full(n, 0.7), size=int(np.prod(shape[:-1])))
    return rows.reshape(shape)


# --- averages and entropy ---------------------------------------------------------------


def test_head_average_is_mean_over_heads() -> None:
    attn = np.zeros((1, 2, 2, 2))
    attn[0, 0] = [[1.0, 0.0], [0.0, 1.0]]
    attn[0, 1] = [[0.0, 1.0], [0.5, 0.5]]
    out = head_average(attn.astype(np.float32))
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, [[[0.5, 0.5], [0.25, 0.75]]])


def test_head_average_rejects_wrong_rank() -> None:
    with pytest.raises(ValueError):
        head_average(np.ones((2, 2, 2)))


def test_row_entropy_hand_values() -> None:
    attn = np.array(
        [
            [0.5, 0.5, 0.0],
            [1.0, 0.0, 0.0],
            [1 / 3, 1 / 3, 1 / 3],
            [0.25, 0.25, 0.5],
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 0 * log 0 must not warn
        ent = row_entropy(attn)
    np.testing.assert_allclose(ent, [LOG2, 0.0, math.log(3), 1.5 * LOG2], atol=1e-12)
    assert not np.isnan(ent).any()


def test_row_entropy_keeps_leading_axes() -> None:
    attn = np.broadcast_to(np.array([[0.5, 0.5], [1.0, 0.0]]), (2, 3, 2, 2))
    ent = row_entropy(attn)
    assert ent.shape == (2, 3, 2)
    np.testing.assert_allclose(ent[1, 2], [LOG2, 0.0])


def test_mean_entropy_averages_rows() -> None:
    attn = np.array([[[0.5, 0.5], [1.0, 0.0]], [[0.5, 0.5], [0.5, 0.5]]])
    np.testing.assert_allclose(mean_entropy(attn), [LOG2 / 2, LOG2])


def test_normalized_entropy() -> None:
    np.testing.assert_allclose(normalized_entropy(np.array([math.log(4), 0.0]), 4), [1.0, 0.0])
    np.testing.assert_allclose(normalized_entropy(np.array([LOG2]), 8), [1 / 3])
    np.testing.assert_array_equal(normalized_entropy(np.array([0.3, 0.0]), 1), [0.0, 0.0])
    np.testing.assert_array_equal(normalized_entropy(np.array([0.3]), 0), [0.0])


def test_layer_verdicts_threshold_inclusive() -> None:
    assert LAYER_VERDICT_THRESHOLD == 0.5
    grid = np.array([[0.5, 0.5], [0.4, 0.59], [0.9, 0.8], [0.0, 0.1]])
    assert layer_verdicts(grid) == ["diffuse", "focused", "diffuse", "focused"]


def test_verdict_rule_states_threshold() -> None:
    assert "0.5" in VERDICT_RULE
    assert "diffuse" in VERDICT_RULE and "focused" in VERDICT_RULE


# --- words ------------------------------------------------------------------------------


def test_word_groups() -> None:
    ids = [None, 0, 0, 1, None, 1, 1, None]
    assert word_groups(ids) == [[0], [1, 2], [3], [4], [5, 6], [7]]
    assert word_groups([None, None]) == [[0], [1]]
    assert word_groups([]) == []
    assert word_groups([3, 3, 3]) == [[0, 1, 2]]


def test_word_groups_covers_every_position_once() -> None:
    ids = [None, 0, 1, 1, 2, None, 0, 0, None]
    flat = [p for g in word_groups(ids) for p in g]
    assert flat == list(range(len(ids)))


def test_merge_groups_hand_example() -> None:
    # Word 0 = token 0; word 1 = tokens 1 and 2.
    # Row of word 1 = mean of rows 1 and 2 = [0.25, 0.5, 0.25]; columns 1 and 2 summed.
    merged = merge_groups(A3, [[0], [1, 2]])
    np.testing.assert_allclose(merged, [[0.5, 0.5], [0.25, 0.75]])
    np.testing.assert_allclose(merged.sum(axis=-1), 1.0)


def test_merge_groups_identity_groups_is_noop() -> None:
    np.testing.assert_allclose(merge_groups(A3, [[0], [1], [2]]), A3)


def test_merge_groups_rejects_bad_groups() -> None:
    with pytest.raises(ValueError):
        merge_groups(A3, [[0], []])
    with pytest.raises(ValueError):
        merge_groups(A3, [[0], [3]])


def _merge_reference(attn: np.ndarray, groups: list[list[int]]) -> np.ndarray:
    layers, heads = attn.shape[:2]
    g = len(groups)
    out = np.zeros((layers, heads, g, g))
    for layer in range(layers):
        for head in range(heads):
            for i, gi in enumerate(groups):
                for j, gj in enumerate(groups):
                    out[layer, head, i, j] = np.mean(
                        [sum(attn[layer, head, r, c] for c in gj) for r in gi]
                    )
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_merge_groups_matches_loop_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 9
    attn = dirichlet_attention(rng, (2, 3, n, n)).astype(np.float32)
    ids: list[int | None] = [None] + sorted(rng.integers(0, 4, size=n - 2).tolist()) + [None]
    groups = word_groups(ids)
    merged = merge_groups(attn, groups)
    np.testing.assert_allclose(merged, _merge_reference(attn.astype(np.float64), groups))
    np.testing.assert_allclose(merged.sum(axis=-1), 1.0, atol=1e-6)


def test_drop_positions_hand_example() -> None:
    # Keep tokens 1 and 2: [[0.6, 0.3], [0.4, 0.2]] -> each row renormalised to [2/3, 1/3].
    out = drop_positions(A3, [False, True, True])
    np.testing.assert_allclose(out, [[2 / 3, 1 / 3], [2 / 3, 1 / 3]])
    np.testing.assert_allclose(out.sum(axis=-1), 1.0)


def test_drop_positions_zero_mass_row_becomes_uniform() -> None:
    attn = np.array(
        [
            [0.2, 0.8, 0.0],
            [1.0, 0.0, 0.0],  # all its mass is on the dropped token
            [0.4, 0.45, 0.15],
        ]
    )
    out = drop_positions(attn, [False, True, True])
    np.testing.assert_allclose(out, [[0.5, 0.5], [0.75, 0.25]])


def test_drop_positions_rows_sum_to_one_random() -> None:
    rng = np.random.default_rng(7)
    attn = dirichlet_attention(rng, (2, 2, 6, 6))
    keep = [False, True, True, False, True, False]
    out = drop_positions(attn, keep)
    assert out.shape == (2, 2, 3, 3)
    np.testing.assert_allclose(out.sum(axis=-1), 1.0)
    # Kept entries keep their relative sizes.
    sub = attn[..., [1, 2, 4], :][..., [1, 2, 4]]
    np.testing.assert_allclose(out, sub / sub.sum(axis=-1, keepdims=True))


def test_drop_positions_keep_all_is_noop() -> None:
    np.testing.assert_allclose(drop_positions(A3, [True, True, True]), A3)


# --- rollout ----------------------------------------------------------------------------


def _rollout_matrix(layer_heads: np.ndarray) -> np.ndarray:
    a = 0.5 * layer_heads.mean(axis=0) + 0.5 * np.eye(layer_heads.shape[-1])
    return a / a.sum(axis=-1, keepdims=True)


def test_rollout_hand_example() -> None:
    swap = np.array([[0.0, 1.0], [1.0, 0.0]])
    attn = np.stack([np.stack([np.eye(2), np.eye(2)]), np.stack([swap, swap])])
    out = rollout(attn)
    # Layer 0: 0.5 I + 0.5 I = I. Layer 1: 0.5 swap + 0.5 I = all 0.5; times I stays so.
    np.testing.assert_allclose(out[0], np.eye(2))
    np.testing.assert_allclose(out[1], np.full((2, 2), 0.5))


def test_rollout_matches_multi_dot() -> None:
    rng = np.random.default_rng(3)
    attn = dirichlet_attention(rng, (3, 4, 5, 5))
    a0, a1, a2 = (_rollout_matrix(attn[i]) for i in range(3))
    out = rollout(attn)
    assert out.shape == (3, 5, 5)
    np.testing.assert_allclose(out[0], a0)
    np.testing.assert_allclose(out[1], np.linalg.multi_dot([a1, a0]))
    np.testing.assert_allclose(out[2], np.linalg.multi_dot([a2, a1, a0]))
    np.testing.assert_allclose(out.sum(axis=-1), 1.0)


# --- find_word --------------------------------------------------------------------------

TEXT = "The councilmen didn't trust IT itself."
OFFSETS = [
    (0, 0),  # 0 [CLS]
    (0, 3),  # 1 the
    (4, 11),  # 2 council
    (11, 14),  # 3 ##men
    (15, 19),  # 4 didn
    (19, 20),  # 5 '
    (20, 21),  # 6 t
    (22, 27),  # 7 trust
    (28, 30),  # 8 it
    (31, 37),  # 9 itself
    (37, 38),  # 10 .
    (0, 0),  # 11 [SEP]
]


def test_offsets_fixture_is_consistent() -> None:
    pieces = [TEXT[s:e] for s, e in OFFSETS]
    assert pieces[1:11] == ["The", "council", "men", "didn", "'", "t", "trust", "IT", "itself", "."]


def test_find_word_whole_word_case_insensitive() -> None:
    # "it" must match "IT" but not the "it" inside "itself".
    assert find_word(TEXT, OFFSETS, "it") == ([8], 1)
    assert find_word(TEXT, OFFSETS, "ITSELF") == ([9], 1)


def test_find_word_multi_piece() -> None:
    assert find_word(TEXT, OFFSETS, "Councilmen") == ([2, 3], 1)


def test_find_word_apostrophe() -> None:
    assert find_word(TEXT, OFFSETS, "didn't") == ([4, 5, 6], 1)
    # A typographic apostrophe matches a straight one.
    assert find_word(TEXT, OFFSETS, "didn\u2019t") == ([4, 5, 6], 1)


def test_find_word_special_tokens_never_match() -> None:
    # "The" starts at char 0, like the (0, 0) special tokens; those must not be returned.
    assert find_word(TEXT, OFFSETS, "the") == ([1], 1)


def test_find_word_no_match() -> None:
    assert find_word(TEXT, OFFSETS, "council") == ([], 0)  # only a prefix of a word
    assert find_word(TEXT, OFFSETS, "zebra") == ([], 0)
    assert find_word(TEXT, OFFSETS, "") == ([], 0)


def test_find_word_counts_and_uses_first_match() -> None:
    text = "it is what it is"
    offsets = [(0, 0), (0, 2), (3, 5), (6, 10), (11, 13), (14, 16), (0, 0)]
    assert find_word(text, offsets, "it") == ([1], 2)
    assert find_word(text, offsets, "is") == ([2], 2)


def test_find_word_match_outside_tokens() -> None:
    # The text was truncated: the word exists but no token covers it.
    text = "one two three"
    offsets = [(0, 0), (0, 3), (4, 7), (0, 0)]
    assert find_word(text, offsets, "three") == ([], 1)


def test_find_word_unicode() -> None:
    text = "Ça reste naïve, naïveté."
    offsets = [(0, 2), (3, 8), (9, 14), (14, 15), (16, 23), (23, 24)]
    assert find_word(text, offsets, "NAÏVE") == ([2], 1)
    assert find_word(text, offsets, "ça") == ([0], 1)


def test_find_word_regex_characters_are_literal() -> None:
    text = "a.b axb"
    offsets = [(0, 3), (4, 7)]
    assert find_word(text, offsets, "a.b") == ([0], 1)


# --- focus scores, ranking, winners -----------------------------------------------------


def test_focus_scores_single_piece_equals_indexing() -> None:
    rng = np.random.default_rng(11)
    attn = dirichlet_attention(rng, (2, 3, 7, 7)).astype(np.float32)
    scores = focus_scores(attn, [3], [[1], [5]])
    assert scores.shape == (2, 3, 2)
    assert scores.dtype == np.float64
    np.testing.assert_allclose(scores, attn[:, :, 3][:, :, [1, 5]], rtol=1e-6)


def test_focus_scores_consistent_with_merge_groups() -> None:
    rng = np.random.default_rng(12)
    attn = dirichlet_attention(rng, (2, 2, 6, 6))
    groups = [[0], [1, 2], [3], [4, 5]]
    merged = merge_groups(attn, groups)
    scores = focus_scores(attn, groups[1], [groups[3], groups[0]])
    np.testing.assert_allclose(scores, merged[:, :, 1][:, :, [3, 0]])


def test_rank_heads_sorted_with_deterministic_ties() -> None:
    grid = np.array([[0.1, 0.5], [0.5, 0.3]])
    assert rank_heads(grid, k=3) == [(0, 1, 0.5), (1, 0, 0.5), (1, 1, 0.3)]
    assert rank_heads(grid) == [(0, 1, 0.5), (1, 0, 0.5), (1, 1, 0.3), (0, 0, 0.1)]
    assert rank_heads(grid, k=0) == []
    top = rank_heads(grid, k=1)[0]
    assert all(type(x) is t for x, t in zip(top, (int, int, float), strict=True))


def test_winner_grid() -> None:
    scores = np.array([[[0.1, 0.9], [0.7, 0.2]], [[0.4, 0.4], [0.0, 0.3]]])
    np.testing.assert_array_equal(winner_grid(scores), [[1, 0], [0, 1]])


# --- minimal pairs ----------------------------------------------------------------------


def test_align_words_minimal_pair() -> None:
    shared = ["animal", "didn't", "cross", "the", "street", "because", "it", "was", "too"]
    a = ["The", *shared, "tired"]
    b = ["the", *shared, "wide"]  # differs in case at 0 and in the swapped word at 10
    assert align_words(a, b) == [(i, i) for i in range(len(a))]


def test_align_words_insertion_and_unequal_replace() -> None:
    a = ["a", "big", "dog", "barks"]
    b = ["a", "cat", "barks"]
    # "big dog" vs "cat" is a replace of unequal length: no positional pairing.
    assert align_words(a, b) == [(0, 0), (3, 2)]
    assert align_words(["x", "y"], ["x", "new", "y"]) == [(0, 0), (1, 2)]


def _pair_scores() -> tuple[np.ndarray, np.ndarray]:
    a = np.zeros((2, 2, 2))
    b = np.zeros((2, 2, 2))
    a[0, 0], b[0, 0] = [0.6, 0.2], [0.3, 0.5]  # flip, strength 0.4 + 0.2 = 0.6
    a[0, 1], b[0, 1] = [0.1, 0.7], [0.1, 0.7]  # no flip
    a[1, 0], b[1, 0] = [0.7, 0.1], [0.2, 0.6]  # flip, strength 0.6 + 0.4 = 1.0 (best)
    a[1, 1], b[1, 1] = [0.5, 0.4], [0.6, 0.3]  # A prefers c0, but so does B: no flip
    return a, b


def test_pair_summary_crafted() -> None:
    a, b = _pair_scores()
    summary = pair_summary(a, b, "it", ("animal", "street"))
    assert summary == PairSummary(
        flips=2,
        total=4,
        best=(1, 0),
        best_a=0.7,
        best_b=0.2,
        sentence=(
            "In 2 of 4 heads 'it' attends more to 'animal' in A and more to 'street' in B; "
            "strongest: Layer 2, Head 1 ('it' -> 'animal': 0.70 in A, 0.20 in B)."
        ),
    )


def test_pair_summary_no_flips() -> None:
    a, b = _pair_scores()
    summary = pair_summary(b, a, "it", ("animal", "street"))
    assert summary.flips == 0
    assert summary.best is None
    assert "0 of 4" in summary.sentence
    assert "'animal'" in summary.sentence and "'street'" in summary.sentence


def test_pair_summary_ignores_extra_candidates() -> None:
    a, b = _pair_scores()
    extra = np.full((2, 2, 1), 0.9)
    summary = pair_summary(
        np.concatenate([a, extra], -1), np.concatenate([b, extra], -1), "it", ("animal", "street")
    )
    assert (summary.flips, summary.best) == (2, (1, 0))


def test_pair_answer_default_is_the_strongest_flip() -> None:
    a, b = _pair_scores()
    ans = pair_answer(a, b)
    assert ans == PairAnswer(
        head=(1, 0),
        expected=(0, 1),
        gold=False,
        shows_pattern=True,
        correct=2,
        right_a=3,  # (0,0), (1,0), (1,1) prefer candidate 0 in A
        right_b=3,  # (0,0), (0,1), (1,0) prefer candidate 1 in B
        total=4,
        weights_a=(0.7, 0.1),
        weights_b=(0.2, 0.6),
    )
    assert pair_answer(a, b).head == pair_summary(a, b, "it", ("a", "b")).best


def test_pair_answer_follows_gold_answers() -> None:
    a, b = _pair_scores()
    # Gold: candidate 1 in A, candidate 0 in B; the crafted flips are now wrong, and the
    # two heads set below are the only ones right in both sentences.
    a2, b2 = a.copy(), b.copy()
    a2[0, 1], b2[0, 1] = [0.2, 0.5], [0.6, 0.3]  # margins 0.3 + 0.3 = 0.6
    a2[1, 1], b2[1, 1] = [0.1, 0.8], [0.5, 0.4]  # margins 0.7 + 0.1 = 0.8 (best)
    ans = pair_answer(a2, b2, 1, 0)
    assert (ans.head, ans.gold, ans.shows_pattern, ans.correct) == ((1, 1), True, True, 2)
    assert ans.weights_a == (0.1, 0.8) and ans.weights_b == (0.5, 0.4)


def test_pair_answer_uses_every_other_candidate() -> None:
    a, b = _pair_scores()
    # A third candidate that outweighs the expected one makes a head wrong.
    extra_a = np.zeros((2, 2, 1))
    extra_a[1, 0] = 0.9
    ans = pair_answer(np.concatenate([a, extra_a], -1), np.concatenate([b, 0 * extra_a], -1))
    assert ans.head == (0, 0) and ans.correct == 1


def test_pair_answer_without_the_pattern_is_flagged() -> None:
    a, b = _pair_scores()
    ans = pair_answer(b, a)  # swapped: no head prefers candidate 0 in A and 1 in B
    assert not ans.shows_pattern and ans.correct == 0
    # The closest head: largest (A0 - A1) + (B1 - B0) over all heads.
    expected = (b[..., 0] - b[..., 1]) + (a[..., 1] - a[..., 0])
    assert ans.head == tuple(np.unravel_index(np.argmax(expected), expected.shape))


def test_pair_answer_ties_and_errors() -> None:
    flat = np.full((2, 3, 2), 0.5)
    a = flat.copy()
    b = flat.copy()
    a[1, 2], b[1, 2] = [0.6, 0.4], [0.4, 0.6]
    a[0, 2], b[0, 2] = [0.6, 0.4], [0.4, 0.6]
    assert pair_answer(a, b).head == (0, 2)
    with pytest.raises(ValueError, match="at least 2"):
        pair_answer(a[..., :1], b[..., :1])
    with pytest.raises(ValueError, match="outside"):
        pair_answer(a, b, 0, 2)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    shape=st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(2, 4)),
    gold=st.booleans(),
)
def test_pair_answer_matches_a_plain_loop(
    seed: int, shape: tuple[int, int, int], gold: bool
) -> None:
    rng = np.random.default_rng(seed)
    # Coarse values, so that ties (and the tie rule) come up often.
    a = rng.integers(0, 4, size=shape) / 4
    b = rng.integers(0, 4, size=shape) / 4
    count = shape[-1]
    ea, eb = (int(rng.integers(count)), int(rng.integers(count))) if gold else (0, 1)
    best, best_sum, correct = None, -math.inf, 0
    closest, closest_sum = None, -math.inf
    for layer in range(shape[0]):
        for head in range(shape[1]):
            ma = a[layer, head, ea] - max(a[layer, head, c] for c in range(count) if c != ea)
            mb = b[layer, head, eb] - max(b[layer, head, c] for c in range(count) if c != eb)
            if ma + mb > closest_sum:
                closest, closest_sum = (layer, head), ma + mb
            if ma > 0 and mb > 0:
                correct += 1
                if ma + mb > best_sum:
                    best, best_sum = (layer, head), ma + mb
    ans = pair_answer(a, b, *((ea, eb) if gold else (None, None)))
    assert ans.correct == correct and ans.shows_pattern == (best is not None)
    assert ans.head == (best if best is not None else closest)
    assert ans.weights_a == tuple(a[ans.head]) and ans.expected == (ea, eb)


def test_submission_range_leaves_special_columns_out() -> None:
    m = np.array([[0.8, 0.1, 0.05, 0.05], [0.7, 0.2, 0.06, 0.04]])
    assert submission_range(m, [True, False, False, False]) == (0.0, 0.2)
    assert submission_range(m, [False] * 4) == (0.0, 0.8)
    assert submission_range(m, [True] * 4) == (0.0, 0.8)
    assert submission_range(np.zeros((2, 2)), [False, False]) == (0.0, 0.01)
