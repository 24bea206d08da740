"""The next-token view of causal models: what the model predicts after the last position,
and which heads carry attention from that position (and from the focus word) to each
earlier word.

It answers the seed lab's question "which words does the model focus on when
generating the next token?". Pure numpy; nothing here renders HTML.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reportgen import analysis
from reportgen.config import AttentionResult, TokenSeq
from reportgen.store import NextRecord, NextSourceRecord

HEADS_PER_WORD = 3
_VISIBLE_SPACE = {" ": "␣", "\n": "↵", "\r": "↵", "\t": "⇥"}


@dataclass(frozen=True)
class Prediction:
    """One of the top predicted next tokens."""

    shown: str  # the decoded token with its whitespace made visible (" the" -> "␣the")
    probability: float


@dataclass(frozen=True)
class EarlierWord:
    """An earlier word and the heads that attend to it most, best first."""

    word: str
    positions: tuple[int, ...]
    heads: tuple[analysis.RankedHead, ...]


@dataclass(frozen=True)
class NextSource:
    """A position whose attention the view follows: the last token, or the focus word."""

    label: str  # e.g. "the last position ('tired')"
    positions: tuple[int, ...]  # token positions; their rows are averaged
    words: tuple[EarlierWord, ...]  # in sentence order


@dataclass(frozen=True)
class NextDoc:
    """Everything the next-token view shows for one sentence."""

    predictions: tuple[Prediction, ...]
    sources: tuple[NextSource, ...]

    def record(self) -> NextRecord:
        """What the page's next-token view reads: the rows to follow."""
        return NextRecord(tuple(NextSourceRecord(s.label, s.positions) for s in self.sources))


def visible(text: str) -> str:
    """Whitespace as glyphs, so a predicted " the" and "the" look different."""
    return "".join(_VISIBLE_SPACE.get(ch, ch) for ch in text) or "∅"


def _word_text(seq: TokenSeq, group: list[int]) -> str:
    """The word's pieces joined, less lone whitespace glyphs ("␣" + "Das" -> "Das")."""
    parts = [seq.display[i] for i in group]
    solid = [p for p in parts if p.strip("␣↵⇥")]
    return "".join(solid or parts)


def _source(seq: TokenSeq, attention: Any, positions: tuple[int, ...], label: str) -> NextSource:
    """Rank, for each non-special word before `positions`, the heads that attend to it most."""
    first = min(positions)
    groups = [
        g
        for g in analysis.word_groups(seq.word_ids)
        if max(g) < first and not any(seq.special[i] for i in g)
    ]
    words: list[EarlierWord] = []
    if groups:
        scores = analysis.focus_scores(attention, list(positions), groups)  # [L, H, words]
        for c, group in enumerate(groups):
            words.append(
                EarlierWord(
                    word=_word_text(seq, group),
                    positions=tuple(group),
                    heads=analysis.ranked_heads(scores[..., c], k=HEADS_PER_WORD),
                )
            )
    return NextSource(label=label, positions=positions, words=tuple(words))


def next_doc(result: AttentionResult) -> NextDoc | None:
    """The next-token view of a causal model's sentence; None for other kinds of model."""
    primary = result.maps[0]
    if not primary.causal or primary.attention.shape[-1] != primary.attention.shape[-2]:
        return None
    seq = primary.query
    n = len(seq.tokens)
    if n == 0:
        return None
    last = n - 1
    sources = [
        _source(seq, primary.attention, (last,), f"the last position ('{seq.display[last]}')")
    ]
    focus = result.item.focus
    if focus:
        positions, _count = analysis.find_word(seq.text, seq.offsets, focus)
        if positions:
            sources.append(
                _source(seq, primary.attention, tuple(positions), f"the focus word '{focus}'")
            )
    predictions = tuple(Prediction(visible(t.token), t.probability) for t in result.next_tokens)
    return NextDoc(predictions=predictions, sources=tuple(sources))
