"""A minimal pair's answer in words: the rule that chose the head, the head to hand in,
its labelled numbers, the other rankings, and the lab's questions answered."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from reportgen import analysis
from reportgen.report.text import head_name, quote

if TYPE_CHECKING:  # pairs.py counts and words through this module; only types here
    from reportgen.report.pairs import PairCounts, PairQuery


@dataclass(frozen=True)
class AnswerWords:
    """A pair's answer as the page prints it (everything already worded)."""

    rule: str  # how the answer head is chosen (and where the question is asked)
    statement: str  # which head to hand in, or that none shows the pattern
    numbers: tuple[str, ...]  # labelled weights of the submission head, one per candidate
    count: str  # how many heads get both sentences right
    context: tuple[tuple[str, str], ...]  # other rankings: (their name, what they show)
    questions: tuple[tuple[str, str], ...]  # the lab's questions, answered for `chosen`
    expected: tuple[str, str]  # the candidate expected in A and in B
    baseline: str = ""  # wrong in both, unchanged, and the sign test, in words


def _weights(query: str, candidates: tuple[str, ...], wa: np.ndarray, wb: np.ndarray) -> list[str]:
    return [
        f"{query} → {quote(c)}: {float(x):.2f} in A, {float(y):.2f} in B"
        for c, x, y in zip(candidates, wa, wb, strict=True)
    ]


def _attends(cands: tuple[str, ...], weights: np.ndarray, expected: int) -> str:
    """'Yes' or 'No', with the numbers: does the query favour the expected candidate?"""
    right = cands[expected]
    others = [(c, float(w)) for i, (c, w) in enumerate(zip(cands, weights, strict=True))]
    others = [o for i, o in enumerate(others) if i != expected]
    rival, rival_w = max(others, key=lambda o: o[1])
    w = float(weights[expected])
    verdict = "Yes" if w > rival_w else "No"
    relation = "more than" if w > rival_w else ("as much as" if w == rival_w else "less than")
    return f"{verdict}: {w:.2f} on {quote(right)}, {relation} {rival_w:.2f} on {quote(rival)}."


def _heads(n: int, verb: tuple[str, str] = ("gets", "get")) -> str:
    """ "1 head gets", "3 heads get"."""
    return f"{n} head {verb[0]}" if n == 1 else f"{n} heads {verb[1]}"


def p_text(p: float) -> str:
    """A p-value as the page prints it: three decimals, or two digits when tiny."""
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def chance_words(counts: PairCounts) -> str:
    """Whether the right flips outnumber the wrong ones beyond chance, in one sentence."""
    right, wrong = counts.right_both, counts.wrong_both
    verdict = counts.verdict
    if verdict == "same answer":
        return (
            "A and B have the same answer, so no head can flip the other way and the sign "
            "test has nothing to weigh."
        )
    if verdict == "none":
        return "No head flips either way, so the sign test has nothing to weigh."
    assert counts.p_value is not None
    test = (
        f"two-sided exact sign test over the {counts.flips} heads that flip, "
        f"p = {p_text(counts.p_value)}"
    )
    if verdict == "more":
        return f"{right} right flips against {wrong} wrong: more than chance allows ({test})."
    if verdict == "fewer":
        return f"{right} right flips against {wrong} wrong: fewer than chance allows ({test})."
    return (
        f"{right} right flips against {wrong} wrong: within what chance allows ({test}), so "
        "the count of heads right in both is no evidence on its own."
    )


def baseline_words(counts: PairCounts, right_a: str, right_b: str) -> str:
    """The counts beside "right in both", and the sign test's verdict."""
    if counts.p_value is None:
        parts = f"{_heads(counts.unchanged, ('prefers', 'prefer'))} one other candidate in both"
    else:
        parts = (
            f"{_heads(counts.wrong_both)} both wrong (the reverse flip: {right_b} in A, "
            f"{right_a} in B) and {_heads(counts.unchanged, ('keeps', 'keep'))} the same "
            "preference in A and B"
        )
    if counts.other:
        parts += f" ({counts.other} neither: a tie, or another candidate)"
    return f"Against chance: {parts}. {chance_words(counts)}"


def answer_words(
    answer: analysis.PairAnswer,
    query: PairQuery,
    cands: tuple[str, ...],
    scores: tuple[np.ndarray, np.ndarray],
    diff: np.ndarray,
    chosen: tuple[int, int],
    summary: analysis.PairSummary,
    counts: PairCounts,
) -> AnswerWords:
    """Word a pair's answer: the rule, the head, its labelled numbers, the other rankings,
    the counts against chance. `scores` are A's and B's ``[L, H, C]`` at `query`."""
    label = query.label
    sa, sb = scores
    ea, eb = answer.expected
    right_a, right_b = quote(cands[ea]), quote(cands[eb])
    source = (
        f"The gold answers are {right_a} in A and {right_b} in B (from the input)."
        if answer.gold
        else f"No gold answers were given, so A is taken to point to {right_a} (the first "
        f"candidate) and B to {right_b} (the second)."
    )
    where = f" {query.note[0].upper()}{query.note[1:]}." if query.note else ""
    rule = (
        f"{source}{where} A head gets a sentence right when {label} gives that sentence's "
        "answer more weight than any other candidate. Of the heads right in both, the "
        "answer is the one with the largest sum of the two margins (answer minus the best "
        "other candidate; ties: lowest layer, then head). If no head is right in both, the "
        "head with the largest sum is shown instead and this page says so."
    )
    layer, head = answer.head
    wa = np.asarray(answer.weights_a)
    wb = np.asarray(answer.weights_b)
    if answer.shows_pattern:
        statement = f"Hand in {head_name(layer, head)}: it gets both sentences right."
    else:
        statement = (
            f"No head shows the expected pattern ({label} favouring {right_a} in A "
            f"and {right_b} in B). The submission block shows {head_name(layer, head)} "
            "instead, the head closest to it, which gets "
            + (
                "A right but not B."
                if wa[ea] > np.delete(wa, ea).max()
                else "B right but not A."
                if wb[eb] > np.delete(wb, eb).max()
                else "neither sentence right."
            )
        )
    count = (
        f"In {answer.correct} of {answer.total} heads {label} attends more to "
        f"{right_a} in A and more to {right_b} in B."
    )
    # At the focus word this is the top of the focus view's ranked table for A.
    top = analysis.ranked_heads(sa[..., ea], k=1)
    context: list[tuple[str, str]] = []
    if top:
        name = "Top of the ranked table for A" if query.at == "word" else "Most weight in A"
        context.append(
            (
                f"{name} ({label} → {right_a})",
                f"{head_name(top[0].layer, top[0].head)}: {top[0].value:.2f} in A, "
                f"{float(sb[top[0].layer, top[0].head, ea]):.2f} in B.",
            )
        )
    dl, dh = (int(x) for x in np.unravel_index(int(np.argmax(np.abs(diff))), diff.shape))
    context.append(
        (
            f"Darkest cell of the A minus B grid ({label} → {quote(cands[0])})",
            f"{head_name(dl, dh)}: {float(sa[dl, dh, 0]):.2f} in A, "
            f"{float(sb[dl, dh, 0]):.2f} in B.",
        )
    )
    if answer.gold and summary.best is not None and summary.best != answer.head:
        fl, fh = summary.best
        context.append(
            (
                f"Strongest flip ({quote(cands[0])} in A, {quote(cands[1])} in B)",
                f"{head_name(fl, fh)}, one of {summary.flips} such heads.",
            )
        )
    cl, ch = chosen
    qa, qb = (quote(w) for w in query.words)
    baseline = baseline_words(counts, right_a, right_b)
    questions = (
        (
            f"In {head_name(cl, ch)}, does {qa} attend to {right_a} in A?",
            _attends(cands, sa[cl, ch], ea),
        ),
        (
            f"In {head_name(cl, ch)}, does {qb} attend to {right_b} in B?",
            _attends(cands, sb[cl, ch], eb),
        ),
        (
            "In how many heads overall?",
            f"{answer.correct} of {answer.total} heads get both right ({answer.right_a} get "
            f"A right, {answer.right_b} get B right).",
        ),
        ("Is that more than chance?", baseline.removeprefix("Against chance: ")),
    )
    return AnswerWords(
        rule=rule,
        statement=statement,
        numbers=tuple(_weights(label, cands, sa[cl, ch], sb[cl, ch])),
        count=count,
        context=tuple(context),
        questions=questions,
        expected=(cands[ea], cands[eb]),
        baseline=baseline,
    )


def second_words(
    query: PairQuery, cands: tuple[str, ...], answer: analysis.PairAnswer, counts: PairCounts
) -> str:
    """The same question asked at a second query (a decoder's last token), in one line."""
    ea, eb = answer.expected
    right_a, right_b = quote(cands[ea]), quote(cands[eb])
    layer, head = answer.head
    found = (
        f"{head_name(layer, head)} gets both sentences right (the largest sum of margins)"
        if answer.shows_pattern
        else "no head gets both sentences right"
    )
    return (
        f"Asked again at {query.where} ({query.label}), which sees both sentences whole: "
        f"{found}; in {answer.correct} of {answer.total} heads {query.label} attends more to "
        f"{right_a} in A and more to {right_b} in B. {baseline_words(counts, right_a, right_b)}"
    )
