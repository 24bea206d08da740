"""Decide what the report shows: turn an :class:`Extraction` into a :class:`ReportDocument`.

This is where analysis results meet the page's needs (labels, numbering, the
compact attention store); nothing here renders HTML.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from reportgen import analysis, figures, store
from reportgen.config import (
    SEED_HEAD,
    SEED_LAYER,
    AttentionResult,
    Extraction,
    LongExtraction,
    LongResult,
    ModelInfo,
    ReportConfig,
    TokenSeq,
)
from reportgen.errors import InputError
from reportgen.headview import LAYER_AT_A_TIME_TOKENS, PAIR_FILTERS
from reportgen.nexttoken import NextDoc, Prediction, next_doc, visible
from reportgen.store import (
    CandidateRecord,
    FocusRecord,
    PageSettings,
    PairRecord,
    SentenceRecord,
    SeqRecord,
)


@dataclass(frozen=True)
class HeadChoice:
    """The head the heatmaps show first (0-based) and why."""

    layer: int
    head: int
    note: str


@dataclass(frozen=True)
class FocusDoc:
    """Where the focus word looks: per-head scores for each candidate word."""

    word: str
    positions: tuple[int, ...]  # token positions of the focus word (first occurrence)
    candidates: tuple[str, ...]
    candidate_positions: tuple[tuple[int, ...], ...]
    notes: tuple[str, ...]  # e.g. "'it' appears 2 times; the first is used"
    scores: np.ndarray  # float64[layers, heads, candidates]
    ranked: tuple[tuple[analysis.RankedHead, ...], ...]  # per candidate, best first
    figures: dict[str, Any]
    answer: str | None = None  # the gold antecedent, one of `candidates`, when given


@dataclass(frozen=True)
class HeadStats:
    """Entropy of every head and a verdict per layer (primary map)."""

    entropy: np.ndarray  # float64[layers, heads], nats
    normalized: np.ndarray  # float64[layers, heads], entropy / log n
    verdicts: tuple[str, ...]
    figure: dict[str, Any]
    # The one measure the page prints and the verdict uses: each layer's mean head
    # entropy in nats, against ln n (attention spread evenly over n tokens).
    layer_nats: tuple[float, ...] = ()
    max_nats: float = 0.0
    tokens: int = 0
    layer_entropy: tuple[float, ...] = ()  # nats, of each layer's head-averaged map


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
    )  # float64[layers, heads]: A's minus B's weight on candidate 0
    figures: dict[str, Any]
    payload: PairRecord
    answer: analysis.PairAnswer | None = None  # the head handed in, and why
    words: AnswerWords | None = None  # the answer and the lab's questions, in words


@dataclass(frozen=True)
class AnswerWords:
    """A pair's answer as the page prints it (everything already worded)."""

    rule: str  # how the answer head is chosen
    statement: str  # which head to hand in, or that none shows the pattern
    numbers: tuple[str, ...]  # labelled weights of the submission head, one per candidate
    count: str  # how many heads get both sentences right
    context: tuple[tuple[str, str], ...]  # other rankings: (their name, what they show)
    questions: tuple[tuple[str, str], ...]  # the lab's questions, answered for `chosen`
    expected: tuple[str, str]  # the candidate expected in A and in B


@dataclass(frozen=True)
class SentenceDoc:
    """One sentence's section of the report."""

    number: int  # 1-based, as the report numbers sentences
    anchor: str
    text: str
    text_pair: str | None
    tokens: tuple[str, ...]  # raw tokens, as the tokenizer prints them
    map_names: tuple[str, ...]
    causal: bool
    layer_entropy: tuple[float, ...]  # nats, of each layer's head-averaged map (primary map)
    truncated: bool
    payload: SentenceRecord  # what the page reads (see reportgen.store)
    stats: HeadStats
    focus: FocusDoc | None = None
    next: NextDoc | None = None  # causal models: the next-token view
    readable_tokens: tuple[str, ...] = ()  # tokens without markers ("Ġthe" -> "the")


@dataclass(frozen=True)
class LongSentenceDoc:
    """One long input's section: a reduced view per head (see ``LongSentenceRecord``)."""

    number: int
    anchor: str
    text: str
    text_pair: str | None
    n_tokens: int
    blocks: int  # overview rows (and columns) of the primary map
    block_size: int  # tokens in the widest block
    rows: tuple[tuple[int, str], ...]  # exact rows of the primary map: (position, label)
    map_names: tuple[str, ...]
    causal: bool
    truncated: bool
    payload: store.LongSentenceRecord
    predictions: tuple[Prediction, ...] = ()


@dataclass(frozen=True)
class ReportDocument:
    """Everything the templates need, already decided."""

    title: str
    version: str
    model: ModelInfo
    start: HeadChoice
    sentences: tuple[SentenceDoc, ...]
    warnings: tuple[str, ...]
    figure_specs: dict[str, Any]
    verdict_rule: str
    pairs: tuple[PairDoc, ...] = ()
    # A long-input page (over the page budget) has these instead of `sentences`.
    long_sentences: tuple[LongSentenceDoc, ...] = ()


def choose_head(model: ModelInfo, layer: int | None, head: int | None) -> HeadChoice:
    """Validate `--layer/--head` (1-based) or fall back to the seed lab's head."""
    for flag, value, limit in (("--layer", layer, model.layers), ("--head", head, model.heads)):
        if value is not None and not 1 <= value <= limit:
            what = "layers" if flag == "--layer" else "heads"
            raise InputError(
                f"{flag} {value} is out of range: this model has {what} 1-{limit} (1-based)"
            )
    if layer is not None or head is not None:
        lay = layer if layer is not None else min(SEED_LAYER, model.layers)
        hd = head if head is not None else 1
        return HeadChoice(
            lay - 1, hd - 1, f"Layer {lay}, Head {hd}, as chosen with --layer/--head."
        )
    if is_lab_model(model):
        return HeadChoice(
            SEED_LAYER - 1,
            SEED_HEAD - 1,
            f"Layer {SEED_LAYER}, Head {SEED_HEAD}: the lab's head (a coreference head of "
            "12-layer x 12-head BERT).",
        )
    if model.layers >= SEED_LAYER and model.heads >= SEED_HEAD:
        return HeadChoice(
            SEED_LAYER - 1,
            SEED_HEAD - 1,
            f"Layer {SEED_LAYER}, Head {SEED_HEAD}: the lab names this head for 12-layer x "
            f"12-head BERT; this model ({model.architecture}, {model.layers} x {model.heads}) is "
            "not one, so it is "
            "only a starting point.",
        )
    return HeadChoice(
        model.layers - 1,
        0,
        f"Layer {model.layers}, Head 1: this model has no Layer {SEED_LAYER}, Head {SEED_HEAD} "
        f"(the lab's head, in 12-layer x 12-head BERT), so the last layer's first head is "
        "shown first.",
    )


def _seq_record(seq: TokenSeq, b_start: int | None) -> SeqRecord:
    return SeqRecord(
        tokens=seq.display,
        words=tuple(tuple(g) for g in analysis.word_groups(seq.word_ids)),
        special=seq.special,
        b_start=b_start,
    )


def is_lab_model(model: ModelInfo) -> bool:
    """Whether the lab's Layer 10, Head 5 means anything here: a 12 x 12 BERT only
    (BertModel, BertForMaskedLM, ...; not RoBERTa or ALBERT, whose heads differ)."""
    return model.layers == 12 and model.heads == 12 and model.architecture.startswith("Bert")


def _seq_indexer(seqs: list[TokenSeq]) -> Callable[[TokenSeq], int]:
    """Index of a token sequence in `seqs`, appended once: maps that share a sequence
    (self-attention's query and key) store it once."""

    def seq_index(seq: TokenSeq) -> int:
        for i, known in enumerate(seqs):
            if known is seq or known == seq:
                return i
        seqs.append(seq)
        return len(seqs) - 1

    return seq_index


def sentence_record(
    result: AttentionResult,
    figs: dict[str, Any],
    focus: FocusRecord | None = None,
    nxt: store.NextRecord | None = None,
) -> SentenceRecord:
    """The record one sentence's views read: token sequences and packed maps."""
    seqs: list[TokenSeq] = []
    seq_index = _seq_indexer(seqs)

    maps = tuple(
        store.map_record(
            m.id,
            m.name,
            m.attention,
            causal=m.causal,
            query_seq=seq_index(m.query),
            key_seq=seq_index(m.key),
            b_start=m.sentence_b_start,
        )
        for m in result.maps
    )
    # Every view of a sequence marks segment B where any map over it has one.
    b_starts: dict[int, int] = {}
    for mp in maps:
        if mp.b_start is not None:
            b_starts[mp.query_seq] = b_starts[mp.key_seq] = mp.b_start
    n = result.maps[0].attention.shape[-1]
    return SentenceRecord(
        seqs=tuple(_seq_record(s, b_starts.get(i)) for i, s in enumerate(seqs)),
        maps=maps,
        layer_at_a_time=n > LAYER_AT_A_TIME_TOKENS,
        figures=figs,
        focus=focus,
        next=nxt,
    )


def head_stats(attention: np.ndarray) -> HeadStats:
    """Entropy grid (nats) and the per-layer verdicts, both from the same measure."""
    n = attention.shape[-1]
    entropy, layer_entropy = analysis.head_entropies(attention)
    normalized = analysis.normalized_entropy(entropy, n)
    # Mean of normalised entropies >= threshold is the same test as mean nats >= threshold
    # x ln n, so the nats the page prints and the verdict never disagree.
    verdicts = tuple(analysis.layer_verdicts(normalized))
    max_nats = float(np.log(n)) if n > 1 else 0.0
    text = [[f"{e / max_nats if max_nats else 0.0:.2f} of ln n" for e in row] for row in entropy]
    figure = figures.grid_figure(
        entropy,
        title="Entropy of every head (nats)",
        colorbar_title="nats",
        zmin=0.0,
        zmax=max(max_nats, 0.01),
        hover_label="entropy (nats)",
        text=text,
    )
    layer_nats = tuple(float(x) for x in entropy.mean(axis=1))
    return HeadStats(
        entropy,
        normalized,
        verdicts,
        figure,
        layer_nats,
        max_nats,
        n,
        tuple(float(x) for x in layer_entropy),
    )


def _quote(word: str) -> str:
    return f"'{word}'"


def focus_doc(result: AttentionResult) -> FocusDoc | None:
    """Locate the focus and candidate words and score every head; None without a focus."""
    item = result.item
    if item.focus is None:
        return None
    seq = result.maps[0].query
    notes: list[str] = []

    def locate(word: str) -> tuple[int, ...]:
        positions, count = analysis.find_word(seq.text, seq.offsets, word)
        if not positions:
            raise InputError(
                f"{item.source}: the word {_quote(word)} is not in the sentence "
                f"{_quote(_short(seq.text))}"
            )
        if count > 1:
            notes.append(f"{_quote(word)} appears {count} times; the first is used.")
        return tuple(positions)

    focus = locate(item.focus)
    cand_pos = tuple(locate(c) for c in item.candidates)
    if cand_pos:
        scores = analysis.focus_scores(result.maps[0].attention, focus, cand_pos)
    else:
        scores = np.zeros(result.maps[0].attention.shape[:2] + (0,))
    ranked = tuple(analysis.ranked_heads(scores[..., c], k=5) for c in range(len(cand_pos)))
    figs: dict[str, Any] = {
        "scores": [
            figures.grid_figure(
                scores[..., c],
                title=f"{_quote(item.focus)} → {_quote(word)}",
                colorbar_title="weight",
                zmin=0.0,
                # One scale for every candidate, so the grids compare at a glance.
                zmax=max(float(scores.max()), 0.01) if scores.size else 1.0,
                hover_label="attention",
            )
            for c, word in enumerate(item.candidates)
        ],
    }
    if len(cand_pos) >= 2:
        winners = analysis.winner_grid(scores)
        names = [[item.candidates[w] for w in row] for row in winners]
        figs["winner"] = figures.winner_figure(
            winners,
            item.candidates,
            names,
            title=f"Which candidate {_quote(item.focus)} attends to most, per head",
        )
    return FocusDoc(
        word=item.focus,
        positions=focus,
        candidates=item.candidates,
        candidate_positions=cand_pos,
        notes=tuple(notes),
        scores=scores,
        ranked=ranked,
        figures=figs,
        answer=item.answer if item.answer in item.candidates else None,
    )


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def sentence_doc(number: int, result: AttentionResult) -> SentenceDoc:
    """Numbers and payload for one sentence's section."""
    primary = result.maps[0]
    focus = focus_doc(result)
    nxt = next_doc(result)
    stats = head_stats(primary.attention)
    figs: dict[str, Any] = {"entropy": stats.figure}
    focus_record = None
    if focus is not None:
        for c, fig in enumerate(focus.figures["scores"]):
            figs[f"focus_{c}"] = fig
        if "winner" in focus.figures:
            figs["winner"] = focus.figures["winner"]
        focus_record = FocusRecord(
            word=focus.word,
            positions=focus.positions,
            candidates=tuple(
                CandidateRecord(w, p)
                for w, p in zip(focus.candidates, focus.candidate_positions, strict=True)
            ),
        )
    payload = sentence_record(result, figs, focus_record, nxt.record() if nxt is not None else None)
    return SentenceDoc(
        number=number,
        anchor=f"s{number}",
        text=result.item.text,
        text_pair=result.item.text_pair,
        tokens=primary.query.tokens,
        map_names=tuple(m.name for m in result.maps),
        causal=primary.causal,
        layer_entropy=stats.layer_entropy,
        truncated=result.truncated,
        payload=payload,
        stats=stats,
        focus=focus,
        next=nxt,
        readable_tokens=primary.query.display,
    )


def _words(seq: TokenSeq) -> list[str]:
    groups = analysis.word_groups(seq.word_ids)
    return ["".join(seq.display[i] for i in g) for g in groups]


def pair_doc(
    number: int,
    a: int,
    b: int,
    results: tuple[AttentionResult, ...],
    sentences: tuple[SentenceDoc, ...],
    start: HeadChoice,
    config: ReportConfig,
) -> PairDoc:
    """Compare sentences a and b: alignment, focus difference, headline, submission head."""
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
    if comparable and fa is not None and fb is not None:
        summary = analysis.pair_summary(
            fa.scores, fb.scores, fa.word, (fa.candidates[0], fa.candidates[1])
        )
        diff = fa.scores[..., 0] - fb.scores[..., 0]
        figs["focus_diff"] = figures.grid_figure(
            diff,
            title=f"{_quote(fa.word)} → {_quote(fa.candidates[0])}: A minus B",
            colorbar_title="A - B",
            # Symmetric around the largest difference, so small ones still show.
            zmin=-max(float(np.abs(diff).max()), 0.01),
            zmax=max(float(np.abs(diff).max()), 0.01),
            diverging=True,
            hover_label="difference",
        )
        gold_a = fa.candidates.index(fa.answer) if fa.answer in fa.candidates else None
        gold_b = fb.candidates.index(fb.answer) if fb.answer in fb.candidates else None
        answer = analysis.pair_answer(fa.scores, fb.scores, gold_a, gold_b)
        best = answer.head
    chosen = (start.layer, start.head)
    if config.layer is None and config.head is None and best is not None:
        chosen = best
    if answer is not None and summary is not None and fa and fb and diff is not None:
        words = answer_words(answer, fa, fb, diff, chosen, summary)
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
        ),
        answer=answer,
        words=words,
    )


def _head(layer: int, head: int) -> str:
    return f"Layer {layer + 1}, Head {head + 1}"


def _weights(focus: str, candidates: tuple[str, ...], wa: np.ndarray, wb: np.ndarray) -> list[str]:
    return [
        f"{_quote(focus)} → {_quote(c)}: {float(x):.2f} in A, {float(y):.2f} in B"
        for c, x, y in zip(candidates, wa, wb, strict=True)
    ]


def _attends(focus: str, cands: tuple[str, ...], weights: np.ndarray, expected: int) -> str:
    """'Yes' or 'No', with the numbers: does `focus` favour the expected candidate?"""
    right = cands[expected]
    others = [(c, float(w)) for i, (c, w) in enumerate(zip(cands, weights, strict=True))]
    others = [o for i, o in enumerate(others) if i != expected]
    rival, rival_w = max(others, key=lambda o: o[1])
    w = float(weights[expected])
    verdict = "Yes" if w > rival_w else "No"
    relation = "more than" if w > rival_w else ("as much as" if w == rival_w else "less than")
    return f"{verdict}: {w:.2f} on {_quote(right)}, {relation} {rival_w:.2f} on {_quote(rival)}."


def answer_words(
    answer: analysis.PairAnswer,
    fa: FocusDoc,
    fb: FocusDoc,
    diff: np.ndarray,
    chosen: tuple[int, int],
    summary: analysis.PairSummary,
) -> AnswerWords:
    """Word a pair's answer: the rule, the head, its labelled numbers, the other rankings."""
    word, cands = fa.word, fa.candidates
    ea, eb = answer.expected
    right_a, right_b = _quote(cands[ea]), _quote(cands[eb])
    source = (
        f"The gold answers are {right_a} in A and {right_b} in B (from the input)."
        if answer.gold
        else f"No gold answers were given, so A is taken to point to {right_a} (the first "
        f"candidate) and B to {right_b} (the second)."
    )
    rule = (
        f"{source} A head gets a sentence right when {_quote(word)} gives that sentence's "
        "answer more weight than any other candidate. Of the heads right in both, the "
        "answer is the one with the largest sum of the two margins (answer minus the best "
        "other candidate; ties: lowest layer, then head). If no head is right in both, the "
        "head with the largest sum is shown instead and this page says so."
    )
    layer, head = answer.head
    wa = np.asarray(answer.weights_a)
    wb = np.asarray(answer.weights_b)
    if answer.shows_pattern:
        statement = f"Hand in {_head(layer, head)}: it gets both sentences right."
    else:
        statement = (
            f"No head shows the expected pattern ({_quote(word)} favouring {right_a} in A "
            f"and {right_b} in B). The submission block shows {_head(layer, head)} "
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
        f"In {answer.correct} of {answer.total} heads {_quote(word)} attends more to "
        f"{right_a} in A and more to {right_b} in B."
    )
    top = fa.ranked[ea][0] if fa.ranked and fa.ranked[ea] else None
    context: list[tuple[str, str]] = []
    if top is not None:
        context.append(
            (
                f"Top of the ranked table for A ({_quote(word)} → {right_a})",
                f"{_head(top.layer, top.head)}: {top.value:.2f} in A, "
                f"{float(fb.scores[top.layer, top.head, ea]):.2f} in B.",
            )
        )
    dl, dh = (int(x) for x in np.unravel_index(int(np.argmax(np.abs(diff))), diff.shape))
    context.append(
        (
            f"Darkest cell of the A minus B grid ({_quote(word)} → {_quote(cands[0])})",
            f"{_head(dl, dh)}: {float(fa.scores[dl, dh, 0]):.2f} in A, "
            f"{float(fb.scores[dl, dh, 0]):.2f} in B.",
        )
    )
    if answer.gold and summary.best is not None and summary.best != answer.head:
        fl, fh = summary.best
        context.append(
            (
                f"Strongest flip ({_quote(cands[0])} in A, {_quote(cands[1])} in B)",
                f"{_head(fl, fh)}, one of {summary.flips} such heads.",
            )
        )
    cl, ch = chosen
    questions = (
        (
            f"In {_head(cl, ch)}, does {_quote(word)} attend to {right_a} in A?",
            _attends(word, cands, fa.scores[cl, ch], ea),
        ),
        (
            f"In {_head(cl, ch)}, does {_quote(word)} attend to {right_b} in B?",
            _attends(word, cands, fb.scores[cl, ch], eb),
        ),
        (
            "In how many heads overall?",
            f"{answer.correct} of {answer.total} heads get both right ({answer.right_a} get "
            f"A right, {answer.right_b} get B right).",
        ),
    )
    return AnswerWords(
        rule=rule,
        statement=statement,
        numbers=tuple(_weights(word, cands, fa.scores[cl, ch], fb.scores[cl, ch])),
        count=count,
        context=tuple(context),
        questions=questions,
        expected=(cands[ea], cands[eb]),
    )


def build_document(
    extraction: Extraction,
    config: ReportConfig,
    version: str,
    pairs_of: tuple[tuple[int, int], ...] = (),
) -> ReportDocument:
    """Assemble the report's content from the extraction and the options."""
    model = extraction.model  # named publicly where it was opened (models.open_model)
    start = choose_head(model, config.layer, config.head)
    sentences = tuple(sentence_doc(i, r) for i, r in enumerate(extraction.results, start=1))
    pairs = tuple(
        pair_doc(number, a, b, extraction.results, sentences, start, config)
        for number, (a, b) in enumerate(pairs_of, start=1)
    )
    start = pair_start(start, pairs, config)
    warnings = extraction.warnings  # named publicly where they were made (extract)
    title = config.title or "Attention report"
    return ReportDocument(
        title=title,
        version=version,
        model=model,
        start=start,
        sentences=sentences,
        warnings=warnings,
        figure_specs={
            "attention": figures.attention_heatmap_spec(),
            "difference": figures.attention_heatmap_spec(diverging=True, colorbar_title="A - B"),
        },
        verdict_rule=analysis.VERDICT_RULE,
        pairs=pairs,
    )


def pair_start(start: HeadChoice, pairs: tuple[PairDoc, ...], config: ReportConfig) -> HeadChoice:
    """Without --layer/--head, the first pair's answer head is shown first everywhere, so
    the header, the pair view and the submission block name the same head."""
    if config.layer is not None or config.head is not None:
        return start
    first = next((p for p in pairs if p.answer is not None), None)
    if first is None or first.answer is None:
        return start
    layer, head = first.answer.head
    others = {p.answer.head for p in pairs if p.answer is not None} - {first.answer.head}
    note = (
        f"Layer {layer + 1}, Head {head + 1}: the head minimal pair {first.number} hands in "
        "(the rule is printed with the pair)."
    )
    if others:
        note += " Each other pair names its own head."
    return HeadChoice(layer, head, note)


def page_settings(doc: ReportDocument) -> PageSettings:
    """Report-wide settings for the page."""
    return PageSettings(
        start_layer=doc.start.layer,
        start_head=doc.start.head,
        layers=doc.model.layers,
        heads=doc.model.heads,
        figures=doc.figure_specs,
        pair_filters=tuple(name for name, _ in PAIR_FILTERS),
        layer_at_a_time_tokens=LAYER_AT_A_TIME_TOKENS,
        heatmap_size=figures.HEATMAP_SIZE,
    )


# ---------------------------------------------------------------------------------------
# Long inputs (over the page budget): a reduced view per head instead of full maps
# ---------------------------------------------------------------------------------------


def long_sentence_doc(number: int, result: LongResult) -> LongSentenceDoc:
    """Records and facts for one long input's section."""
    seqs: list[TokenSeq] = []
    seq_index = _seq_indexer(seqs)

    maps = tuple(
        store.long_map_record(m, query_seq=seq_index(m.query), key_seq=seq_index(m.key))
        for m in result.maps
    )
    primary = result.maps[0]
    share_text = [[f"{v:.0%} to position 0" for v in row] for row in primary.first_share]
    figs = {
        "first_share": figures.grid_figure(
            primary.first_share.astype(np.float64),
            title="Share of attention to the first position, per head",
            colorbar_title="share",
            zmin=0.0,
            zmax=1.0,
            hover_label="mean attention to position 0",
            text=share_text,
        ),
        "entropy": figures.grid_figure(
            primary.entropy,
            title="Entropy of every head (nats)",
            colorbar_title="nats",
            zmin=0.0,
            zmax=max(float(np.log(max(len(primary.key.tokens), 2))), 0.01),
            hover_label="entropy (nats)",
        ),
    }
    return LongSentenceDoc(
        number=number,
        anchor=f"s{number}",
        text=result.item.text,
        text_pair=result.item.text_pair,
        n_tokens=len(primary.query.tokens),
        blocks=len(primary.query_blocks),
        block_size=max((e - b for b, e in primary.query_blocks), default=0),
        rows=tuple((r.position, primary.query.display[r.position]) for r in primary.rows),
        map_names=tuple(m.name for m in result.maps),
        causal=primary.causal,
        truncated=result.truncated,
        payload=store.LongSentenceRecord(
            seqs=tuple(_seq_record(sq, None) for sq in seqs), maps=maps, figures=figs
        ),
        predictions=tuple(Prediction(visible(t.token), t.probability) for t in result.next_tokens),
    )


def build_long_document(
    extraction: LongExtraction, config: ReportConfig, version: str
) -> ReportDocument:
    """The report of inputs over the page budget: one reduced view per input."""
    model = extraction.model  # named publicly where it was opened (models.open_model)
    start = choose_head(model, config.layer, config.head)
    warnings = extraction.warnings  # named publicly where they were made (extract)
    return ReportDocument(
        title=config.title or "Attention report",
        version=version,
        model=model,
        start=start,
        sentences=(),
        warnings=warnings,
        figure_specs={
            "attention": figures.attention_heatmap_spec(),
            "difference": figures.attention_heatmap_spec(diverging=True, colorbar_title="A - B"),
        },
        verdict_rule=analysis.VERDICT_RULE,
        long_sentences=tuple(
            long_sentence_doc(i, r) for i, r in enumerate(extraction.results, start=1)
        ),
    )
