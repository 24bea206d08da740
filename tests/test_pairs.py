"""pairs: a minimal pair's query (a decoder's focus word cannot see what comes after it),
the counts against chance with their sign test, and --focus-at, on hand-made tokens and
planted heads, then end to end on tiny random models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from reportgen import analysis
from reportgen.cli import main
from reportgen.config import (
    AttentionMap,
    AttentionResult,
    Extraction,
    InputBatch,
    ModelInfo,
    ReportConfig,
    SentenceInput,
    TokenSeq,
)
from reportgen.errors import InputError
from reportgen.pipeline import Report, _check_focus_at, build_report, plan_run
from reportgen.report.heads import choose_head
from reportgen.report.pairs import (
    FOCUS_AT,
    SIGN_TEST_LEVEL,
    PairCounts,
    PairDoc,
    PairQuery,
    first_difference,
    pair_counts,
    pair_doc,
    pair_queries,
    sign_test,
)
from reportgen.report.sentence import sentence_doc

from .conftest import WINOGRAD

CANDIDATES = ("animal", "street")
BLIND_NOTE = (
    "in a decoder, 'it' cannot see 'tired'/'wide', which come after it; "
    "asking at 'tired'/'wide' instead"
)


# --- the sign test, by hand ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("successes", "trials", "expected"),
    [
        # 5 of 6: tail = min(5, 1) = 1; P(X <= 1) = (C(6,0) + C(6,1)) / 2^6 = 7/64;
        # two-sided: 2 * 7/64 = 14/64 = 0.21875.
        (5, 6, 0.21875),
        (1, 6, 0.21875),  # the mirror image: the same tail
        # 6 of 6: 2 * C(6,0) / 64 = 2/64 = 0.03125, below 0.05.
        (6, 6, 0.03125),
        (0, 6, 0.03125),
        # 3 of 6 is exactly half: 2 * (1 + 6 + 15 + 20) / 64 = 84/64, capped at 1.
        (3, 6, 1.0),
        # 2 of 3: 2 * (C(3,0) + C(3,1)) / 8 = 8/8 = 1.
        (2, 3, 1.0),
        # 9 of 10: 2 * (1 + 10) / 1024 = 22/1024 = 0.021484375.
        (9, 10, 0.021484375),
        # 8 of 10: 2 * (1 + 10 + 45) / 1024 = 112/1024 = 0.109375.
        (8, 10, 0.109375),
        # 1 of 1: 2 * 1/2 = 1.
        (1, 1, 1.0),
        # No trials: nothing to weigh, p = 1 (2 * C(0,0) / 1 = 2, capped).
        (0, 0, 1.0),
    ],
)
def test_sign_test_against_a_hand_computation(successes: int, trials: int, expected: float) -> None:
    assert sign_test(successes, trials) == expected


def test_sign_test_is_symmetric_and_refuses_impossible_counts() -> None:
    for trials in range(0, 25):
        for k in range(trials + 1):
            assert sign_test(k, trials) == sign_test(trials - k, trials)
            assert 0 < sign_test(k, trials) <= 1
    with pytest.raises(ValueError, match="successes must be in 0..3, got 4"):
        sign_test(4, 3)
    with pytest.raises(ValueError):
        sign_test(-1, 3)


# --- the counts, on planted heads ---------------------------------------------------------


Planted = tuple[tuple[float, float], tuple[float, float]]  # one head's (A, B) weights


def _grid(rows: list[Planted], heads: int) -> tuple[np.ndarray, np.ndarray]:
    """[L, H, 2] score grids for A and B from per-head ((a0, a1), (b0, b1))."""
    a = np.array([r[0] for r in rows], dtype=np.float64).reshape(-1, heads, 2)
    b = np.array([r[1] for r in rows], dtype=np.float64).reshape(-1, heads, 2)
    return a, b


RIGHT = ((0.6, 0.1), (0.1, 0.6))  # 'animal' in A, 'street' in B
WRONG = ((0.1, 0.6), (0.6, 0.1))  # the reverse flip
SAME = ((0.6, 0.1), (0.5, 0.2))  # 'animal' in both
TIE = ((0.3, 0.3), (0.1, 0.6))  # a tie in A: neither


def test_pair_counts_on_planted_heads() -> None:
    # 2 layers x 3 heads: (0,0) right, (0,1) wrong, (0,2) unchanged ('animal' in both),
    # (1,0) unchanged ('street' in both), (1,1) a tie in A, (1,2) right.
    street_both = ((0.2, 0.7), (0.1, 0.9))
    a, b = _grid([RIGHT, WRONG, SAME, street_both, TIE, RIGHT], heads=3)
    counts = pair_counts(a, b, (0, 1))
    assert (counts.right_both, counts.wrong_both, counts.unchanged, counts.other) == (2, 1, 2, 1)
    assert counts.total == 6 and counts.flips == 3
    # 2 of 3 flips right: 2 * (1 + 3) / 8 = 1.
    assert counts.p_value == 1.0
    assert counts.verdict == "within" and not counts.beyond_chance


def test_pair_counts_verdicts_follow_the_sign_test() -> None:
    # 6 right flips of 6: p = 2/64 = 0.03125 < 0.05, more than chance.
    more = pair_counts(*_grid([RIGHT] * 6, heads=3), (0, 1))
    assert (more.right_both, more.wrong_both, more.p_value) == (6, 0, 0.03125)
    assert more.verdict == "more" and more.beyond_chance
    assert more.p_value is not None and more.p_value < SIGN_TEST_LEVEL
    # 5 right and 1 wrong (plus 2 unchanged): p = 14/64 = 0.21875, within chance.
    within = pair_counts(*_grid([RIGHT] * 5 + [WRONG, SAME, SAME], heads=4), (0, 1))
    assert (within.right_both, within.wrong_both, within.unchanged, within.other) == (5, 1, 2, 0)
    assert within.p_value == 0.21875 and within.verdict == "within"
    # 6 reverse flips: the same p, the other side.
    fewer = pair_counts(*_grid([WRONG] * 6, heads=2), (0, 1))
    assert (fewer.right_both, fewer.wrong_both, fewer.p_value) == (0, 6, 0.03125)
    assert fewer.verdict == "fewer" and not fewer.beyond_chance
    # Nobody flips: the sign test has no trials.
    none = pair_counts(*_grid([SAME] * 4, heads=2), (0, 1))
    assert (none.right_both, none.wrong_both, none.unchanged, none.p_value) == (0, 0, 4, 1.0)
    assert none.verdict == "none"


def test_pair_counts_with_the_same_answer_and_a_third_candidate() -> None:
    # Expected 'animal' in both: no reverse flip exists, so no p-value.
    a, b = _grid([SAME, RIGHT, ((0.1, 0.6), (0.2, 0.7)), TIE], heads=2)
    same = pair_counts(a, b, (0, 0))
    # SAME is right in both; RIGHT prefers 'street' in B (other); the third prefers
    # 'street' in both (unchanged); the tie is other.
    assert (same.right_both, same.wrong_both, same.unchanged, same.other) == (1, 0, 1, 2)
    assert same.p_value is None and same.verdict == "same answer"
    # A third candidate winning in A makes a head "other", never a flip.
    a3 = np.array([[[0.6, 0.1, 0.0], [0.1, 0.2, 0.7]]])
    b3 = np.array([[[0.1, 0.6, 0.0], [0.6, 0.1, 0.0]]])
    three = pair_counts(a3, b3, (0, 1))
    assert (three.right_both, three.wrong_both, three.unchanged, three.other) == (1, 0, 0, 1)
    assert three.p_value == 1.0  # 1 of 1: 2 * 1/2
    with pytest.raises(ValueError, match="two \\[L, H, C>=2\\] score grids"):
        pair_counts(a3[..., :1], b3[..., :1], (0, 0))


# --- where the question is asked, on hand-made tokens ------------------------------------


def _seq(
    text: str, pieces: list[str], *, cls: str | None = None, sep: str | None = None
) -> TokenSeq:
    """Tokens of `text`: `pieces` in order ("w|ide" is one word of two pieces), with an
    optional special token before and after."""
    rows: list[tuple[str, int | None, tuple[int, int], bool]] = []  # token, word, span, special
    if cls:
        rows.append((cls, None, (0, 0), True))
    pos = 0
    for w, word in enumerate(pieces):
        pos = text.index(word.replace("|", ""), pos)
        for part in word.split("|"):
            rows.append((part, w, (pos, pos + len(part)), False))
            pos += len(part)
    if sep:
        rows.append((sep, None, (0, 0), True))
    tokens, word_ids, offsets, special = zip(*rows, strict=True)
    return TokenSeq(tokens, tokens, word_ids, offsets, special, text)


A_TEXT = "the animal crossed the street because it was tired ."
B_TEXT = "the animal crossed the street because it was wide ."
A_WORDS = A_TEXT.split()
B_WORDS = ["the", "animal", "crossed", "the", "street", "because", "it", "was", "w|ide", "."]


def _winograd_seqs(**specials: str) -> tuple[TokenSeq, TokenSeq]:
    return _seq(A_TEXT, A_WORDS, **specials), _seq(B_TEXT, B_WORDS, **specials)


def test_first_difference() -> None:
    a, b = _winograd_seqs()
    assert first_difference(a, b) == 8  # 'tired' / 'w'
    assert first_difference(a, a) is None
    # One is the other's beginning: the shorter's length.
    short = _seq("the animal crossed", ["the", "animal", "crossed"])
    assert first_difference(short, a) == 3 and first_difference(a, short) == 3


def test_decoder_auto_moves_to_the_first_difference_and_says_why() -> None:
    a, b = _winograd_seqs()
    first, second = pair_queries(a, b, "it", causal=True)  # focus_at="auto"
    assert first.at == "first-diff"
    # The whole first differing word: 'tired' in A, both pieces of 'wide' in B.
    assert first.positions == ((8,), (8, 9))
    assert first.words == ("tired", "wide") and first.label == "'tired'/'wide'"
    assert first.where == "the first word where A and B differ"
    assert first.note == BLIND_NOTE and "\n" not in first.note
    # The second query is the last token, which sees both sentences whole.
    assert second == PairQuery("last", ((9,), (10,)), (".", "."), "the last token")
    assert second.label == "'.'"


def test_encoder_auto_keeps_the_focus_word_with_no_note() -> None:
    a, b = _winograd_seqs(cls="[CLS]", sep="[SEP]")
    (only,) = pair_queries(a, b, "it", causal=False)
    assert only == PairQuery("word", ((7,), (7,)), ("it", "it"), "the focus word")
    assert only.note is None and only.label == "'it'"


def test_decoder_focus_after_the_difference_stays_at_the_word() -> None:
    # 'cat'/'dog' differ before 'it': a decoder's 'it' sees the difference.
    a = _seq(
        "the cat sat because it was tired", ["the", "cat", "sat", "because", "it", "was", "tired"]
    )
    b = _seq(
        "the dog sat because it was tired", ["the", "dog", "sat", "because", "it", "was", "tired"]
    )
    assert pair_queries(a, b, "it", causal=True) == (
        PairQuery("word", ((4,), (4,)), ("it", "it"), "the focus word"),
    )


def test_the_same_tokens_give_only_the_word() -> None:
    a, _ = _winograd_seqs()
    (only,) = pair_queries(a, a, "it", causal=True)
    assert only.at == "word" and only.note is None
    # An explicit choice is kept (last) or said to be impossible (first-diff), never dropped.
    (last,) = pair_queries(a, a, "it", True, "last")
    assert last.at == "last" and last.positions == ((9,), (9,))
    assert last.note == (
        "asked at the last token, '.' (--focus-at last); A and B are the same tokens, so "
        "every head's difference is 0"
    )
    (word,) = pair_queries(a, a, "it", False, "first-diff")
    assert word.at == "word" and word.note == (
        "A and B are the same tokens, so every head's difference is 0: there is no first "
        "difference to ask at, so it is asked at the focus word (--focus-at first-diff)"
    )


def test_explicit_focus_at_is_honoured() -> None:
    a, b = _winograd_seqs()
    # word, in a decoder that cannot see the difference: kept, and the note says it gives 0.
    (word,) = pair_queries(a, b, "it", True, "word")
    assert word.at == "word" and word.positions == ((6,), (6,))
    assert word.note == (
        "in a decoder, 'it' cannot see 'tired'/'wide', which come after it: "
        "every head's difference is 0 here (--focus-at word)"
    )
    # word in an encoder: nothing to say.
    assert pair_queries(a, b, "it", False, "word")[0].note is None
    # first-diff, even in an encoder, always with the last token second.
    for causal in (True, False):
        first, second = pair_queries(a, b, "it", causal, "first-diff")
        assert first.at == "first-diff" and first.positions == ((8,), (8, 9))
        assert first.note == (
            "asked at 'tired'/'wide', the first word where A and B differ (--focus-at first-diff)"
        )
        assert second.at == "last" and second.positions == ((9,), (10,))
    # last: the last token that is not a special one, alone.
    sa, sb = _winograd_seqs(cls="[CLS]", sep="[SEP]")
    (last,) = pair_queries(sa, sb, "it", False, "last")
    assert last.at == "last" and last.positions == ((10,), (11,))  # not [SEP]
    assert last.words == (".", ".")
    assert last.note == "asked at the last token, '.' (--focus-at last)"
    assert FOCUS_AT == ("auto", "word", "first-diff", "last")
    with pytest.raises(InputError, match="focus_at 'middle' is not one of auto, word"):
        pair_queries(a, b, "it", True, "middle")


# --- pair_doc on planted attention ---------------------------------------------------------

# Per head of a 2 x 4 model, the weights (on 'animal', on 'street') planted in the query
# row in A and in B: 5 right in both, 1 reverse flip, 1 unchanged, 1 tie (other).
PLANTED = [RIGHT, RIGHT, ((0.8, 0.05), (0.05, 0.8)), RIGHT, RIGHT, WRONG, SAME, TIE]


def _result(
    text: str, words: list[str], causal: bool, rows: dict[int, list[tuple[float, float]]]
) -> AttentionResult:
    """Uniform attention (a decoder's over each token and those before it), except the
    rows in `rows`: per head, (w_animal, w_street), the rest spread evenly."""
    seq = _seq(text, words)
    n = len(seq.tokens)
    att = np.zeros((2, 4, n, n))
    for row in range(n):
        seen = row + 1 if causal else n
        att[:, :, row, :seen] = 1.0 / seen
    animal, street = seq.display.index("animal"), seq.display.index("street")
    for row, weights in rows.items():
        seen = row + 1 if causal else n
        for h, (x, y) in enumerate(weights):
            layer, head = divmod(h, 4)
            att[layer, head, row, :seen] = (1.0 - x - y) / (seen - 2)
            att[layer, head, row, animal] = x
            att[layer, head, row, street] = y
    item = SentenceInput(text, focus="it", candidates=CANDIDATES, source="test")
    return AttentionResult(
        item, (AttentionMap("Self-attention", seq, seq, att.astype(np.float32), causal, id="self"),)
    )


def _planted_doc(causal: bool, row: int, last: list[Planted] | None = None, **cfg: Any) -> PairDoc:
    """A pair whose A and B have PLANTED's weights in `row` (and `last` in the last row)."""
    a_rows = {row: [p[0] for p in PLANTED]}
    b_rows = {row: [p[1] for p in PLANTED]}
    if last is not None:
        a_rows[len(A_WORDS) - 1] = [p[0] for p in last]
        b_rows[len(B_WORDS)] = [p[1] for p in last]  # 'wide' is two pieces
    results = (
        _result(A_TEXT, A_WORDS, causal, a_rows),
        _result(B_TEXT, B_WORDS, causal, b_rows),
    )
    sentences = tuple(sentence_doc(i, r) for i, r in enumerate(results, start=1))
    info = ModelInfo(
        "m", "GPT2Model" if causal else "BertModel", "causal" if causal else "encoder", 2, 4
    )
    start = choose_head(info, None, None)
    return pair_doc(1, 0, 1, results, sentences, start, ReportConfig(**cfg))


def _check_planted_counts(counts: PairCounts) -> None:
    assert (counts.right_both, counts.wrong_both, counts.unchanged, counts.other) == (5, 1, 1, 1)
    assert counts.total == 8
    # 5 of 6 flips right: 2 * (1 + 6) / 64 = 0.21875.
    assert counts.p_value == 0.21875 and counts.verdict == "within"


def test_encoder_pair_counts_the_planted_heads_at_the_focus_word() -> None:
    doc = _planted_doc(causal=False, row=A_WORDS.index("it"))
    assert doc.query is not None and doc.query.at == "word" and doc.second is None
    assert doc.counts is not None
    _check_planted_counts(doc.counts)
    # The answer: the right head with the largest margins, (0, 2).
    assert doc.answer is not None and doc.answer.head == (0, 2) == doc.chosen == doc.best
    assert doc.answer.correct == 5 and doc.answer.total == 8
    want = np.array([p[0][0] - p[1][0] for p in PLANTED]).reshape(2, 4)
    assert doc.focus_difference is not None
    np.testing.assert_allclose(doc.focus_difference, want, atol=1e-6)
    assert doc.headline is not None and doc.headline.startswith("In 5 of 8 heads 'it' ")
    assert doc.payload.query_rows == ((6,), (6,))


def test_decoder_pair_is_asked_where_a_and_b_differ() -> None:
    # The planted row is 'tired' in A and the first piece of 'wide' in B; 'it' is uniform
    # in both, as a decoder's focus row before the difference must be.
    row = A_WORDS.index("tired")
    same_last = [((0.6, 0.1), (0.6, 0.1))] * 8  # the last token: 'animal' in both, every head
    doc = _planted_doc(causal=True, row=row, last=same_last)
    assert doc.query is not None and doc.query.at == "first-diff"
    assert doc.query.positions == ((8,), (8, 9)) and doc.query.note == BLIND_NOTE
    # B's query is the mean of 'w' (planted) and 'ide' (uniform over the 10 tokens it sees).
    assert doc.scores is not None
    np.testing.assert_allclose(
        doc.scores[1][..., 0],
        np.array([(p[1][0] + 1 / 10) / 2 for p in PLANTED]).reshape(2, 4),
        atol=1e-6,
    )
    np.testing.assert_allclose(doc.scores[0][0, 0], [0.6, 0.1], atol=1e-6)
    assert doc.counts is not None
    # Averaging with a uniform piece keeps every planted preference: the same counts.
    _check_planted_counts(doc.counts)
    assert doc.payload.query_rows == ((8,), (8, 9))
    assert doc.payload.query_words == ("tired", "wide")
    # The second question, at the last token: every head keeps 'animal', nobody flips.
    assert doc.second is not None and doc.second.query.at == "last"
    assert doc.second.query.positions == ((9,), (10,))
    c = doc.second.counts
    assert (c.right_both, c.wrong_both, c.unchanged, c.other, c.p_value) == (0, 0, 8, 0, 1.0)
    assert c.verdict == "none" and "No head flips either way" in doc.second.text
    # Asked at the word instead: the focus rows are the same, every difference is 0.
    word = _planted_doc(causal=True, row=row, focus_at="word")
    assert word.query is not None and word.query.at == "word" and word.second is None
    np.testing.assert_array_equal(word.focus_difference, np.zeros((2, 4)))
    assert word.counts is not None and word.counts.other == 8  # every head ties


# --- --focus-at without a pair question -----------------------------------------------------


def _batch(pairs: tuple[tuple[int, int], ...], **lab: Any) -> InputBatch:
    items = tuple(SentenceInput(t, source=f"sentence {i}", **lab) for i, t in enumerate(WINOGRAD))
    return InputBatch(items=items, pairs=pairs)


def test_check_focus_at_needs_a_pair_with_the_question() -> None:
    lab = {"focus": "it", "candidates": CANDIDATES}
    for at in ("auto", "word"):  # these never move anything
        _check_focus_at(ReportConfig(focus_at=at), _batch(()))
    for at in ("first-diff", "last"):
        _check_focus_at(ReportConfig(focus_at=at), _batch(((0, 1),), **lab))
        for batch in (
            _batch((), **lab),  # no --compare
            _batch(((0, 1),)),  # no focus word
            _batch(((0, 1),), focus="it", candidates=("animal",)),  # one candidate
        ):
            with pytest.raises(InputError) as info:
                _check_focus_at(ReportConfig(focus_at=at), batch)
            assert str(info.value) == (
                f"--focus-at {at} moves a minimal pair's question: give --compare, "
                "--focus and two --candidates"
            )


def test_build_report_refuses_focus_at_before_opening_the_model() -> None:
    # The model does not exist: the refusal comes first.
    with pytest.raises(InputError, match="--focus-at first-diff moves a minimal pair's"):
        build_report(list(WINOGRAD), "no-such-model", focus_at="first-diff")
    with pytest.raises(InputError, match="focus_at 'middle' is not one of"):
        build_report(list(WINOGRAD), "no-such-model", focus_at="middle")


@pytest.mark.parametrize(
    "extra",
    [[], ["--compare"], ["--focus", "it", "--candidates", "animal,street"]],
)
def test_cli_refuses_focus_at_without_a_pair_question(
    tiny_bert: Path, tmp_path: Path, extra: list[str]
) -> None:
    out = tmp_path / "r.html"
    result = CliRunner().invoke(
        main,
        [*WINOGRAD, "-m", str(tiny_bert), "-o", str(out), "--focus-at", "first-diff", *extra],
        catch_exceptions=False,
    )
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "Error: --focus-at first-diff moves a minimal pair's question: give --compare, "
        "--focus and two --candidates"
    ]
    assert "Traceback" not in result.stderr and not out.exists()


def test_cli_focus_at_reaches_the_pair(tiny_model: Any, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    args = [*WINOGRAD, "--compare", "--focus", "it", "--candidates", "animal,street"]
    result = CliRunner().invoke(
        main,
        [*args, "-m", str(tiny_model("gpt2")), "-o", str(out), "--focus-at", "last"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    note = "minimal pair 1: asked at the last token, '.' (--focus-at last)"
    assert lines.count(note) == 1
    loading = next(i for i, line in enumerate(lines) if line.startswith("loading "))
    assert lines.index(note) < loading
    assert out.exists()


# --- end to end on tiny models -----------------------------------------------------------------


def _pair_report(model: Path, monkeypatch: pytest.MonkeyPatch, **options: Any) -> tuple:
    """The lab pair through build_report; the log, and how long it was when weights loaded."""
    import reportgen.models

    logs: list[str] = []
    at_load: list[int] = []
    original = reportgen.models.load_weights

    def load_weights(*args: Any, **kwargs: Any) -> Any:
        at_load.append(len(logs))
        return original(*args, **kwargs)

    monkeypatch.setattr(reportgen.models, "load_weights", load_weights)
    report = build_report(
        list(WINOGRAD),
        str(model),
        focus="it",
        candidates="animal,street",
        compare=True,
        log=logs.append,
        device="cpu",
        **options,
    )
    assert len(at_load) == 1
    return report, logs, at_load[0]


def _by_hand(report: Report, rows: tuple[tuple[int, ...], tuple[int, ...]]) -> np.ndarray:
    """A's minus B's weight on 'animal' at the query rows, from the extracted maps."""
    assert isinstance(report.extraction, Extraction)
    out = []
    for result, query in zip(report.extraction.results, rows, strict=True):
        m = result.maps[0]
        animal = m.query.display.index("animal")
        out.append(m.attention[:, :, list(query), animal].astype(np.float64).mean(axis=-1))
    return out[0] - out[1]


def test_decoder_pair_end_to_end(tiny_model: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    report, logs, at_load = _pair_report(tiny_model("gpt2"), monkeypatch)
    (pair,) = report.document.pairs
    # One line, before the weights load, saying why the question moved.
    assert logs[:at_load] == [f"minimal pair 1: {BLIND_NOTE}"]
    assert logs.count(f"minimal pair 1: {BLIND_NOTE}") == 1
    a, b = (r.maps[0] for r in report.extraction.results)
    assert a.causal and b.causal
    # The plan's query is the one pair_queries gives on the extracted tokens.
    assert pair.query is not None
    assert (pair.query,) + ((pair.second.query,) if pair.second else ()) == pair_queries(
        a.query, b.query, "it", True
    )
    assert pair.query.at == "first-diff" and pair.query.words == ("tired", "wide")
    assert all(a.query.display[i] in "tired" for i in pair.query.positions[0])
    # The focus difference at that query is the attention's, and not 0 everywhere.
    diff = pair.focus_difference
    assert diff is not None and diff.shape == (2, 2)
    np.testing.assert_allclose(diff, _by_hand(report, pair.query.positions), atol=1e-6)
    assert np.abs(diff).max() > 1e-4
    # The counts are the ones pair_counts gives on the scores at the query.
    assert pair.scores is not None and pair.counts is not None and pair.answer is not None
    assert pair.counts == pair_counts(pair.scores[0], pair.scores[1], pair.answer.expected)
    assert pair.counts.total == 4
    assert pair.counts.p_value == sign_test(pair.counts.right_both, pair.counts.flips)
    assert pair.payload.query_rows == pair.query.positions
    # The last token asked second, with its own counts.
    assert pair.second is not None and pair.second.query.at == "last"
    last_a, last_b = (s.query.display.index(".") for s in (a, b))
    assert pair.second.query.positions == ((last_a,), (last_b,))
    assert pair.second.text.startswith("Asked again at the last token ('.')")


def test_decoder_pair_at_the_word_is_zero_everywhere(
    tiny_model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    report, logs, at_load = _pair_report(tiny_model("gpt2"), monkeypatch, focus_at="word")
    (pair,) = report.document.pairs
    assert pair.query is not None and pair.query.at == "word" and pair.second is None
    assert logs[:at_load] == [f"minimal pair 1: {pair.query.note}"]
    assert "every head's difference is 0 here" in logs[0]
    # A decoder's 'it' sees only the words before it, which A and B share.
    assert pair.focus_difference is not None
    np.testing.assert_allclose(pair.focus_difference, 0.0, atol=1e-6)


def test_encoder_pair_end_to_end_stays_at_the_focus_word(
    tiny_bert: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report, logs, at_load = _pair_report(tiny_bert, monkeypatch)
    (pair,) = report.document.pairs
    # No note: nothing is said before the weights load, nor about the pair after.
    assert at_load == 0 and logs[0].startswith("loading ")
    assert not any(line.startswith("minimal pair") for line in logs)
    assert pair.query is not None and pair.query.at == "word" and pair.query.note is None
    assert pair.second is None
    fa, fb = (s.focus for s in report.document.sentences)
    assert fa is not None and fb is not None and pair.scores is not None
    # At the focus word the pair's scores are the focus view's own.
    np.testing.assert_array_equal(pair.scores[0], fa.scores)
    np.testing.assert_array_equal(pair.scores[1], fb.scores)
    np.testing.assert_allclose(pair.focus_difference, fa.scores[..., 0] - fb.scores[..., 0])
    # A random tiny BERT attends almost evenly: small differences, but not 0.
    assert np.abs(pair.focus_difference).max() > 1e-6
    it = report.extraction.results[0].maps[0].query.display.index("it")
    assert pair.query.positions == ((it,), (it,))
    answer = analysis.pair_answer(fa.scores, fb.scores)
    assert pair.answer == answer and pair.counts == pair_counts(fa.scores, fb.scores, (0, 1))
    assert pair.counts.total == 8


@pytest.mark.parametrize(
    ("family", "words"),
    [
        ("gpt2", ("tired", "wide")),
        # A SentencePiece-style tokenizer splits words at spaces only: 'tired.' is one.
        ("llama", ("tired.", "wide.")),
        ("t5", None),
    ],
)
def test_plan_decides_before_the_weights(
    tiny_model: Any, family: str, words: tuple[str, str] | None
) -> None:
    """plan_run reads only the tokens: a decoder moves the question, an encoder-decoder's
    primary map (its encoder) does not; a pair without the question gets None."""
    from reportgen.extract import encode
    from reportgen.models import open_model

    cfg = ReportConfig(model=str(tiny_model(family)), device="cpu")
    spec = open_model(cfg)
    items = (
        *(SentenceInput(t, focus="it", candidates=CANDIDATES, source="x") for t in WINOGRAD),
        *(SentenceInput(t, source="y") for t in WINOGRAD),
    )
    batch = InputBatch(items=items, pairs=((0, 1), (2, 3)))
    plan = plan_run(spec, batch, [encode(spec, it, cfg) for it in items], cfg)
    assert not plan.long
    first, none = plan.queries
    assert none is None and first is not None
    if words is None:  # the encoder's 'it' sees the whole sentence
        assert len(first) == 1
        assert (first[0].at, first[0].words, first[0].note) == ("word", ("it", "it"), None)
    else:
        a, b = (f"'{w}'" for w in words)
        assert first[0].at == "first-diff" and first[0].words == words
        assert first[0].note == (
            f"in a decoder, 'it' cannot see {a}/{b}, which come after it; asking at {a}/{b} instead"
        )
        assert first[1].at == "last"
