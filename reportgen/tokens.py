"""Tokens and their display form: markers stripped, whitespace made visible, word ids."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reportgen.config import TokenSeq

# Word-start and continuation markers of byte-level BPE, SentencePiece and WordPiece,
# and the word-end marker of the original (CLIP, XLM, OpenAI GPT) BPE.
_PREFIX_MARKERS = ("Ġ", "▁", "##")
_SUFFIX_MARKERS = ("</w>",)
# A token that is only whitespace (byte-level "Ġ", "Ċ", "ĉ"; SentencePiece "▁") gets
# visible glyphs, so no label on an axis or in the head view is blank.
_SPACE_GLYPHS = {
    "Ġ": "␣",
    "▁": "␣",
    " ": "␣",
    "Ċ": "↵",
    "\n": "↵",
    "č": "↵",
    "\r": "↵",
    "ĉ": "⇥",
    "\t": "⇥",
}


def _blank(token: str) -> bool:
    """True for a token that is only whitespace or whitespace markers ("Ġ", "▁", "ĊĊ")."""
    return all(ch in _SPACE_GLYPHS or ch.isspace() for ch in token)


def readable(token: str) -> str:
    """Strip tokenizer markers so "Ġthe", "▁the", "##the" and "the</w>" all read "the".

    A token that is only whitespace reads as visible glyphs ("▁" -> "␣", "Ċ" -> "↵").
    """
    if token and _blank(token):
        return "".join(_SPACE_GLYPHS.get(ch, "␣") for ch in token)
    for suffix in _SUFFIX_MARKERS:
        if token.endswith(suffix) and len(token) > len(suffix):
            token = token[: -len(suffix)]
    for marker in _PREFIX_MARKERS:
        if token.startswith(marker) and len(token) > len(marker):
            token = token[len(marker) :]
            break
    if _blank(token):
        return "".join(_SPACE_GLYPHS.get(ch, "␣") for ch in token)
    return token


def token_seq(
    tokenizer: Any,
    ids: Sequence[int],
    encoding: Any,
    texts: tuple[str, str | None],
    n: int,
) -> tuple[TokenSeq, int | None]:
    """The first `n` tokens of an encoding, readable, with word ids and character offsets.

    `encoding` is the fast tokenizer's encoding (None for a slow tokenizer, which gives
    no offsets); returns the sequence and the first position of segment B, if any.
    """
    tokens = tuple(tokenizer.convert_ids_to_tokens(list(ids[:n])))
    special_ids = set(tokenizer.all_special_ids)
    special = tuple(int(i) in special_ids for i in ids[:n])
    offsets: list[tuple[int, int]] = [(0, 0)] * n
    word_ids: list[int | None] = [None if s else i for i, s in enumerate(special)]
    b_start = None
    display = [readable(t) for t in tokens]
    if encoding is not None:
        seq_ids = list(encoding.sequence_ids)[:n]
        raw_words = list(encoding.word_ids)[:n]
        raw_offsets = encoding.offsets[:n]
        for i in range(n):
            if special[i] or seq_ids[i] is None:
                word_ids[i] = None
                continue
            start, end = raw_offsets[i]
            text = texts[seq_ids[i]] or ""
            piece = text[start:end].strip()
            # The original text keeps case and whole characters (byte-level BPE splits
            # "ü" into two pieces); a lone "▁" keeps its glyph, as its span may overlap
            # the next token's (SentencePiece's prefix space).
            if piece and not _blank(tokens[i]):
                display[i] = piece
            if seq_ids[i] == 1:
                if b_start is None:
                    b_start = i
                # Keep segment B's words distinct from A's; offsets point into text B.
                word_ids[i] = None if raw_words[i] is None else 1_000_000 + raw_words[i]
                continue
            offsets[i] = (start, end)
            word_ids[i] = raw_words[i]
        if b_start is None and texts[1] is not None:
            b_start = next((i for i, s in enumerate(seq_ids) if s == 1), None)
    seq = TokenSeq(
        tokens=tokens,
        display=tuple(display),
        word_ids=tuple(word_ids),
        offsets=tuple(offsets),
        special=special,
        text=texts[0],
    )
    return seq, b_start
