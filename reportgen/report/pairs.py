"""A minimal pair compared head by head: where its question is asked, the alignment of
its words, the focus difference (A minus B), the answer head, the counts that set it
against chance, and the head its submission block shows.

Every view of a pair (the page, the hand-in answer, the submission files, the export)
reads what :func:`pair_doc` decides here: the query (:class:`PairQuery`), the scores at
it and the counts (:class:`PairCounts`) are computed once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from reportgen import analysis, figures
from reportgen.config import AttentionResult, ReportConfig, TokenSeq
from reportgen.errors import InputError
from reportgen.report.answer import AnswerWords, answer_words, second_words
from reportgen.report.contributions import PairRow, pair_rows
from reportgen.report.heads import HeadChoice
from reportgen.report.headstats import FocusDoc
from reportgen.report.sentence import SentenceDoc
from reportgen.report.text import quote
from reportgen.store import PairRecord

# --focus-at: "auto" is "word", except in a decoder whose focus word comes before the
# first token where A and B differ: its row cannot differ, so "first-diff" is used.
FOCUS_AT = ("auto", "word", "first-diff", "last")
# The sign test's level: "more than chance" below it.
SIGN_TEST_LEVEL = 0.05


@dataclass(frozen=True)
class PairQuery:
    """Where a minimal pair's question is asked: the query tokens of A and of B, whose
    attention to the candidates is compared (the focus word's, unless it cannot differ).

    ``at`` is "word" (the focus word), "first-diff" (the word holding the first token
    where A and B differ) or "last" (the last token that is not a special one)."""

    at: str
    positions: tuple[tuple[int, ...], tuple[int, ...]]  # token positions in A, in B
    words: tuple[str, str]  # the focus word, or the words at `positions`, in A and in B
    where: str  # the position in words: "the focus word", "the last token", ...
    note: str | None = None  # why the question is not asked at the focus word, when not

    @property
    def label(self) -> str:
        """The query as the page quotes it: 'it', or 'tired'/'wide' where A and B differ."""
        a, b = self.words
        return quote(a) if a == b else f"{quote(a)}/{quote(b)}"


@dataclass(frozen=True)
class PairCounts:
    """How the heads' preferences change between A and B, against what chance gives.

    A head *prefers* a candidate in a sentence when it gives it strictly more weight than
    every other candidate. ``right_both``: it prefers A's answer in A and B's in B;
    ``wrong_both``: the reverse flip (B's answer in A, A's in B); ``unchanged``: the same
    candidate in both; ``other``: the rest (a tie, or a third candidate). A head whose
    preference ignores the sentence is never right in both, and one that flips at random
    is as often wrong in both as right, so ``p_value`` is the two-sided exact sign test
    (binomial, p = 1/2) of ``right_both`` among ``right_both + wrong_both``; None when
    both sentences have the same answer (then there is no reverse flip).
    """

    right_both: int
    wrong_both: int
    unchanged: int
    other: int
    total: int
    p_value: float | None

    @property
    def flips(self) -> int:
        """Heads that flip either way: the sign test's trials."""
        return self.right_both + self.wrong_both

    @property
    def beyond_chance(self) -> bool:
        """Right flips outnumber wrong ones beyond what the sign test allows."""
        return self.verdict == "more"

    @property
    def verdict(self) -> str:
        """The sign test's verdict on the right flips: "more" or "fewer" than chance allows,
        "within" it, "none" (no head flips), or "same answer" (no reverse flip exists)."""
        if self.p_value is None:
            return "same answer"
        if self.flips == 0:
            return "none"
        if self.p_value >= SIGN_TEST_LEVEL:
            return "within"
        return "more" if self.right_both > self.wrong_both else "fewer"


@dataclass(frozen=True)
class SecondAnswer:
    """The same question asked at a second query (a decoder's last token)."""

    query: PairQuery
    answer: analysis.PairAnswer
    counts: PairCounts
    text: str  # worded for the page, the hand-in sheet and the export


@dataclass(frozen=True)
class PairDoc:
    """A minimal pair: two sentences compared head by head."""

    number: int
    anchor: str
    a: int  # 0-based index into ReportDocument.sentences
    b: int
    headline: str | None  # computed sentence, when both have a focus word and 2 candidates
    best: tuple[int, int] | None  # 0-based head the pair view ranks first
    chosen: tuple[int, int]  # head the submission block shows
    aligned_by: str  # "tokens" or "words"
    focus_difference: (
        np.ndarray | None
    )  # float64[layers, heads]: A's minus B's weight on candidate 0, at the query
    figures: dict[str, Any]
    payload: PairRecord
    answer: analysis.PairAnswer | None = None  # the head handed in, and why
    words: AnswerWords | None = None  # the answer and the lab's questions, in words
    query: PairQuery | None = None  # where the question is asked (with a focus word)
    # float64[layers, heads, candidates] at the query, in A and in B (the focus word's
    # FocusDoc.scores when asked there)
    scores: tuple[np.ndarray, np.ndarray] | None = None
    counts: PairCounts | None = None
    second: SecondAnswer | None = None  # a decoder asked at its first difference: the last token
    # The pair's answer under every measure both maps carry (report.contributions), at
    # the same query; empty without context-mixing measures.
    measure_rows: tuple[PairRow, ...] = ()


# ---------------------------------------------------------------------------------------
# Where the question is asked


def first_difference(seq_a: TokenSeq, seq_b: TokenSeq) -> int | None:
    """The first token position where A and B differ (the shorter's length when it is the
    other's beginning); None when they are the same tokens."""
    for i, (x, y) in enumerate(zip(seq_a.tokens, seq_b.tokens, strict=False)):
        if x != y:
            return i
    if len(seq_a.tokens) == len(seq_b.tokens):
        return None
    return min(len(seq_a.tokens), len(seq_b.tokens))


def _last(seq: TokenSeq) -> int:
    """The last token that is not a special one (a decoder's last position)."""
    return max((i for i, s in enumerate(seq.special) if not s), default=len(seq.tokens) - 1)


def _word_at(seq: TokenSeq, position: int) -> tuple[tuple[int, ...], str]:
    """The word holding token `position` (the last token past the end): its pieces, its text."""
    if position >= len(seq.tokens):
        position = _last(seq)
    group = next(g for g in analysis.word_groups(seq.word_ids) if position in g)
    return tuple(group), "".join(seq.display[i] for i in group)


def pair_queries(
    seq_a: TokenSeq, seq_b: TokenSeq, focus: str, causal: bool, focus_at: str = "auto"
) -> tuple[PairQuery, ...]:
    """Where a pair's question is asked: the query first, then a second one if any.

    In a decoder a token sees only itself and earlier tokens, so when the focus word comes
    before the first token where A and B differ its row is the same in both sentences and
    every head's difference is exactly 0. There (``auto``) the question is asked at the
    word holding that first differing token, and a second time at the last token (which
    sees both sentences whole); the candidates stay the same. ``focus_at`` chooses the
    query explicitly (:data:`FOCUS_AT`); "first-diff" always adds the last token.
    """
    if focus_at not in FOCUS_AT:
        raise InputError(f"focus_at '{focus_at}' is not one of {', '.join(FOCUS_AT)}")
    pos_a, _ = analysis.find_word(seq_a.text, seq_a.offsets, focus)
    pos_b, _ = analysis.find_word(seq_b.text, seq_b.offsets, focus)
    word = PairQuery("word", (tuple(pos_a), tuple(pos_b)), (focus, focus), "the focus word")
    last_a, last_b = _last(seq_a), _last(seq_b)
    last = PairQuery(
        "last",
        ((last_a,), (last_b,)),
        (seq_a.display[last_a], seq_b.display[last_b]),
        "the last token",
    )
    diff = first_difference(seq_a, seq_b)
    if diff is None:  # the same tokens: every query gives the same rows in A and B
        same = "A and B are the same tokens, so every head's difference is 0"
        if focus_at == "last":
            return (
                replace(
                    last, note=f"asked at the last token, {last.label} (--focus-at last); {same}"
                ),
            )
        if focus_at == "first-diff":
            note = (
                f"{same}: there is no first difference to ask at, so it is asked at the focus word"
            )
            return (replace(word, note=f"{note} (--focus-at first-diff)"),)
        return (word,)
    changed = _first_diff(seq_a, seq_b, diff)
    # A decoder's focus row cannot differ when every piece of it precedes the difference.
    blind = causal and bool(pos_a) and max(pos_a) < diff
    cannot_see = (
        f"in a decoder, {quote(focus)} cannot see {changed.label}, which "
        f"come{'s' if changed.words[0] == changed.words[1] else ''} after it"
    )
    at = focus_at if focus_at != "auto" else ("first-diff" if blind else "word")
    if at == "word":
        if blind:  # asked for explicitly: say what it gives
            note = f"{cannot_see}: every head's difference is 0 here (--focus-at word)"
            return (replace(word, note=note),)
        return (word,)
    if at == "last":
        return (replace(last, note=f"asked at the last token, {last.label} (--focus-at last)"),)
    if focus_at == "auto":
        note = f"{cannot_see}; asking at {changed.label} instead"
    else:
        note = (
            f"asked at {changed.label}, the first word where A and B differ (--focus-at first-diff)"
        )
    return (replace(changed, note=note), last)


def _first_diff(seq_a: TokenSeq, seq_b: TokenSeq, diff: int) -> PairQuery:
    """The query at the word holding the first differing token, in A and in B."""
    (pa, wa), (pb, wb) = _word_at(seq_a, diff), _word_at(seq_b, diff)
    return PairQuery("first-diff", (pa, pb), (wa, wb), "the first word where A and B differ")


# ---------------------------------------------------------------------------------------
# Counts against chance


def sign_test(successes: int, trials: int) -> float:
    """Two-sided exact sign test: the probability, for a fair coin tossed `trials` times,
    of a count at least as far from half as `successes` (1.0 for no trials)."""
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be in 0..{trials}, got {successes}")
    tail = min(successes, trials - successes)
    # Exact fractions: the sum of a few binomial terms, then one rounding.
    p = 2 * Fraction(sum(math.comb(trials, i) for i in range(tail + 1)), 2**trials)
    return float(min(p, Fraction(1)))


def pair_counts(scores_a: ArrayLike, scores_b: ArrayLike, expected: tuple[int, int]) -> PairCounts:
    """Count the heads right in both, wrong in both (the reverse flip) and unchanged.

    ``scores_*`` are ``[L, H, C]`` scores at the pair's query; ``expected`` the answer's
    candidate index in A and in B (see :class:`PairCounts`).
    """
    a = np.asarray(scores_a, dtype=np.float64)
    b = np.asarray(scores_b, dtype=np.float64)
    if a.ndim != 3 or a.shape != b.shape or a.shape[-1] < 2:
        raise ValueError(
            f"pair_counts needs two [L, H, C>=2] score grids, got {a.shape}, {b.shape}"
        )

    def preferred(s: np.ndarray) -> np.ndarray:
        """The strictly preferred candidate per head, -1 on a tie for the top."""
        top = np.argmax(s, axis=-1)
        ties = (s == s.max(axis=-1, keepdims=True)).sum(axis=-1) > 1
        return np.where(ties, -1, top)

    pa, pb = preferred(a), preferred(b)
    ea, eb = expected
    right = (pa == ea) & (pb == eb)
    unchanged = (pa == pb) & (pa >= 0) & ~right
    if ea == eb:  # the same answer in both: right in both is an unchanged preference
        wrong = np.zeros_like(right)
        p_value = None
    else:
        wrong = (pa == eb) & (pb == ea)
        p_value = sign_test(int(right.sum()), int(right.sum() + wrong.sum()))
    total = int(right.size)
    return PairCounts(
        right_both=int(right.sum()),
        wrong_both=int(wrong.sum()),
        unchanged=int(unchanged.sum()),
        other=total - int(right.sum() + wrong.sum() + unchanged.sum()),
        total=total,
        p_value=p_value,
    )


# ---------------------------------------------------------------------------------------
# The pair


def _words(seq: TokenSeq) -> list[str]:
    groups = analysis.word_groups(seq.word_ids)
    return ["".join(seq.display[i] for i in g) for g in groups]


def _scores_at(
    query: PairQuery, ra: AttentionResult, rb: AttentionResult, fa: FocusDoc, fb: FocusDoc
) -> tuple[np.ndarray, np.ndarray]:
    """The candidates' scores at the query (the focus word's own when asked there)."""
    if query.at == "word":
        return fa.scores, fb.scores
    return (
        analysis.focus_scores(ra.maps[0].attention, query.positions[0], fa.candidate_positions),
        analysis.focus_scores(rb.maps[0].attention, query.positions[1], fb.candidate_positions),
    )


def _gold(focus: FocusDoc) -> int | None:
    return focus.candidates.index(focus.answer) if focus.answer in focus.candidates else None


def pair_doc(
    number: int,
    a: int,
    b: int,
    results: tuple[AttentionResult, ...],
    sentences: tuple[SentenceDoc, ...],
    start: HeadChoice,
    config: ReportConfig,
    queries: tuple[PairQuery, ...] | None = None,
) -> PairDoc:
    """Compare sentences a and b: the query, alignment, focus difference, headline, counts,
    submission head. `queries` are :func:`pair_queries`' (the plan's); None: found here."""
    ra, rb = results[a], results[b]
    sa, sb = sentences[a], sentences[b]
    seq_a, seq_b = ra.maps[0].query, rb.maps[0].query
    same_length = len(seq_a.tokens) == len(seq_b.tokens)
    alignment = analysis.align_words(_words(seq_a), _words(seq_b))
    headline = None
    best = None
    diff = None
    figs: dict[str, Any] = {}
    fa, fb = sa.focus, sb.focus
    comparable = (
        fa is not None
        and fb is not None
        and len(fa.candidates) >= 2
        and fa.scores.shape == fb.scores.shape
    )
    answer = None
    words = None
    summary = None
    query = None
    scores = None
    counts = None
    second = None
    if comparable and fa is not None and fb is not None:
        if queries is None:
            queries = pair_queries(seq_a, seq_b, fa.word, ra.maps[0].causal, config.focus_at)
        query = queries[0]
        scores = _scores_at(query, ra, rb, fa, fb)
        sca, scb = scores
        summary = analysis.pair_summary(sca, scb, fa.word, (fa.candidates[0], fa.candidates[1]))
        diff = sca[..., 0] - scb[..., 0]
        figs["focus_diff"] = figures.grid_figure(
            diff,
            title=f"{query.label} → {quote(fa.candidates[0])}: A minus B",
            colorbar_title="A - B",
            # Symmetric around the largest difference, so small ones still show.
            zmin=-max(float(np.abs(diff).max()), 0.01),
            zmax=max(float(np.abs(diff).max()), 0.01),
            diverging=True,
            hover_label="difference",
        )
        answer = analysis.pair_answer(sca, scb, _gold(fa), _gold(fb))
        counts = pair_counts(sca, scb, answer.expected)
        best = answer.head
        if len(queries) > 1:
            other = queries[1]
            oa, ob = _scores_at(other, ra, rb, fa, fb)
            second_answer = analysis.pair_answer(oa, ob, _gold(fa), _gold(fb))
            second_counts = pair_counts(oa, ob, second_answer.expected)
            second = SecondAnswer(
                other,
                second_answer,
                second_counts,
                second_words(other, fa.candidates, second_answer, second_counts),
            )
    measure_rows: tuple[PairRow, ...] = ()
    if answer is not None and query is not None and fa and fb and ra.maps[0].measures is not None:
        measure_rows = pair_rows(
            ra.maps[0],
            rb.maps[0],
            (query.positions[0], fa.candidate_positions),
            (query.positions[1], fb.candidate_positions),
            answer.expected,
        )
    chosen = (start.layer, start.head)
    if config.layer is None and config.head is None and best is not None:
        chosen = best
    if answer is not None and query is not None and scores is not None and fa and fb:
        assert diff is not None and counts is not None and summary is not None
        words = answer_words(answer, query, fa.candidates, scores, diff, chosen, summary, counts)
        headline = f"{words.count} {words.statement}"
    return PairDoc(
        number=number,
        anchor=f"p{number}",
        a=a,
        b=b,
        headline=headline,
        best=best,
        chosen=chosen,
        aligned_by="tokens" if same_length else "words",
        focus_difference=diff,
        figures=figs,
        payload=PairRecord(
            a=sa.anchor,
            b=sb.anchor,
            alignment=tuple(alignment),
            chosen=chosen,
            figures=figs,
            # Candidate index outlined in A and in B (the answers), for the submission maps.
            expected=answer.expected if answer is not None else (0, 1),
            # The query rows the submission maps outline, and their words.
            query_rows=query.positions if query is not None else None,
            query_words=query.words if query is not None else None,
        ),
        answer=answer,
        words=words,
        query=query,
        scores=scores,
        counts=counts,
        second=second,
        measure_rows=measure_rows,
    )
