"""`from_attention`: the report from attention the caller already has.

The stage that stands in for :func:`reportgen.extract.extract` when no model runs: it
takes bertviz's call shape (``head_view(attention, tokens, sentence_b_start)``,
``model_view(encoder_attention=..., decoder_attention=..., cross_attention=...,
encoder_tokens=..., decoder_tokens=...)``), checks every weight, builds the same typed
:class:`~reportgen.config.Extraction` the engine builds (maps laid out by
:func:`reportgen.extract.map_layout`, tokens as :class:`~reportgen.config.TokenSeq`) and
renders it through the one renderer (:func:`reportgen.pipeline.report_from_extraction`).

Without a tokenizer the tokens' display form, word grouping and character offsets come
from the printed tokens themselves: WordPiece's "##" continues a word, byte-level BPE's
"Ġ" and SentencePiece's "▁" start one; bracketed markers ([CLS], <s>, <|endoftext|>) are
special tokens. The sentence's text is rebuilt from the tokens (uncased tokenizers give
it in lower case), and focus and candidate words are found in it.

Bad input is one :class:`~reportgen.errors.InputError` line before anything renders,
naming the field, and the layer, head and row 1-based with the 0-based index in brackets.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from reportgen import memory
from reportgen.config import (
    AttentionMap,
    AttentionResult,
    Extraction,
    InputBatch,
    ModelInfo,
    ModelKind,
    ReportConfig,
    SentenceInput,
    TokenSeq,
)
from reportgen.errors import InputError
from reportgen.extract import ROW_SUM_TOLERANCE, Sequences, map_layout
from reportgen.inputs import consecutive_pairs, split_candidates
from reportgen.pipeline import Report, _asks, _check_config, _check_focus_at, _check_items
from reportgen.report.pairs import PairQuery, pair_queries
from reportgen.safety import public_name
from reportgen.tokens import readable

# What the page and the export call the model when the caller names none.
GIVEN_MODEL = "attention given by the caller"
GIVEN_ARCHITECTURE = "architecture not given"
# The page's one line on the views that need the model (its Warnings list).
NO_MODEL_LINE = (
    "attention given by the caller: no model ran, so the views that need one "
    "(next-token predictions, context-mixing measures, queries and keys) are not shown"
)
# Word ids of segment B, kept distinct from segment A's (as reportgen.tokens.token_seq).
SEGMENT_B_WORDS = 1_000_000

# A tokenizer's markers: [CLS], [SEP], [PAD], [MASK], [UNK]; <s>, </s>, <pad>, <unk>,
# <mask>, <|endoftext|>, <extra_id_0>, <|im_start|>. Byte tokens (<0x0A>) are text.
_SPECIAL = re.compile(r"^(\[[A-Za-z][A-Za-z0-9_]*\]|<\|?/?[A-Za-z][A-Za-z0-9_.\-]*\|?>)$")
# Rebuilding a WordPiece text: no space before closing punctuation or an apostrophe, none
# after an opening bracket or an apostrophe ("didn ' t" reads "didn't", "it ' s" "it's").
_NO_SPACE_BEFORE = frozenset(".,!?;:%)]}'")
_NO_SPACE_AFTER = frozenset("([{'$")

# The per-sentence fields of a dict input (and of from_attention's own arguments).
_ITEM_KEYS = frozenset(
    {
        "attention",
        "tokens",
        "sentence_b_start",
        "encoder_attention",
        "decoder_attention",
        "cross_attention",
        "encoder_tokens",
        "decoder_tokens",
        "focus",
        "candidates",
        "answer",
        "text",
        "text_pair",
    }
)


def is_special(token: str) -> bool:
    """Whether a printed token is a tokenizer's marker rather than text."""
    return bool(_SPECIAL.match(token))


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """Byte-level BPE's printable alphabet back to bytes (GPT-2's ``bytes_to_unicode``)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    keep += list(range(ord("®"), ord("ÿ") + 1))
    chars = keep[:]
    extra = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(keep, chars, strict=True)}


def _scheme(tokens: Sequence[str]) -> str:
    """The tokenizer family the printed tokens come from (their word markers)."""
    text = [t for t in tokens if not is_special(t)]
    if any(t.startswith("##") and len(t) > 2 for t in text):
        return "wordpiece"
    if any("▁" in t for t in text):
        return "sentencepiece"
    decoder = _byte_decoder()
    if any("Ġ" in t or "Ċ" in t for t in text) and all(c in decoder for t in text for c in t):
        return "bytelevel"
    return "plain"


def _char_class(ch: str) -> str:
    """Byte-level BPE's pre-tokenizer classes: letters, numbers, the rest, whitespace."""
    if ch.isalpha():
        return "L"
    if ch.isnumeric():
        return "N"
    return "S" if ch.isspace() else "P"


def _spaced(before: str, piece: str) -> bool:
    """Whether a new word goes after a space in the rebuilt text."""
    return not (piece in _NO_SPACE_BEFORE or before[-1] in _NO_SPACE_AFTER)


@dataclass
class _Segment:
    """One segment's text as it is rebuilt, with its words."""

    text: str = ""
    words: int = -1  # the last word id given


def _fold(text: str) -> tuple[str, list[int]]:
    """`text` lower-cased without accents (as uncased WordPiece prints it), with the
    index in `text` of every character of the result."""
    out: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        for c in unicodedata.normalize("NFD", ch.lower()):
            if not unicodedata.combining(c):
                out.append(c)
                where.append(i)
    return "".join(out), where


def _align(
    tokens: Sequence[str], pieces: Sequence[str | None], text: str, field: str
) -> list[tuple[int, int] | None]:
    """Each token's span in the caller's `text`, found in order (case and accents
    aside); None for tokens without text of their own (specials, partial bytes)."""
    folded, where = _fold(text)
    cursor = 0
    spans: list[tuple[int, int] | None] = []
    for i, piece in enumerate(pieces):
        needle = _fold(piece)[0].strip() if piece else ""
        if not needle or "\ufffd" in needle:
            spans.append(None)
            continue
        at = folded.find(needle, cursor)
        if at < 0:
            short = text if len(text) <= 60 else text[:59] + "…"
            raise InputError(
                f"{field}: token {i + 1} [{i}] {tokens[i]!r} is not in the text {short!r} "
                "after the tokens before it: give the text the tokens were made from"
            )
        cursor = at + len(needle)
        spans.append((where[at], where[cursor - 1] + 1))
    return spans


def token_seq_from_tokens(
    tokens: Sequence[str],
    b_start: int | None = None,
    text: str | None = None,
    text_pair: str | None = None,
    field: str = "text",
) -> tuple[TokenSeq, str | None]:
    """A :class:`TokenSeq` from printed tokens alone (no tokenizer): display labels,
    word ids, character offsets into the rebuilt text, special flags; and segment B's
    rebuilt text when `b_start` (0-based, its first token) splits a sentence pair.

    With the `text` the tokens were made from (and `text_pair`, segment B's), that is
    the sentence instead: offsets point into it and labels keep its case, as a fast
    tokenizer's offsets give them."""
    scheme = _scheme(tokens)
    decoder = _byte_decoder()
    segments = [_Segment(), _Segment()]
    word_ids: list[int | None] = []
    offsets: list[tuple[int, int]] = []
    display: list[str] = []
    special = tuple(is_special(t) for t in tokens)
    utf8 = [codecs.getincrementaldecoder("utf-8")(errors="replace") for _ in segments]
    last: list[str | None] = [None, None]  # the previous text token of each segment
    pieces: list[str | None] = []  # each token's own text, for alignment with `text`
    for i, token in enumerate(tokens):
        seg = 1 if b_start is not None and i >= b_start else 0
        s = segments[seg]
        if special[i]:
            word_ids.append(None)
            offsets.append((0, 0))
            display.append(token)
            last[seg] = None
            pieces.append(None)
            continue
        label = readable(token)
        prev = last[seg]
        if scheme == "wordpiece":
            cont = token.startswith("##") and len(token) > 2 and prev is not None
            piece = token[2:] if cont else token
            space = bool(s.text) and not cont and _spaced(s.text, piece)
        elif scheme == "sentencepiece":
            cont = not token.startswith("▁") and prev is not None
            piece = token.replace("▁", " ")
            space = False
            if not s.text:
                piece = piece.lstrip(" ")
        elif scheme == "bytelevel":
            raw = bytes(decoder[c] for c in token)
            piece = utf8[seg].decode(raw)
            space = False
            if not s.text:
                piece = piece.lstrip()
            first = token[0]
            # A pre-token is one class of characters after an optional space (GPT-2's
            # pattern), and a contraction ("'s", "'re") is its own: a token without a
            # space marker continues the word when its class goes on. A token of only
            # part of a character's bytes (no text yet) continues it too.
            cont = (
                prev is not None
                and first not in ("Ġ", "Ċ", "ĉ")
                and (not piece or _char_class(piece[0]) == _char_class(prev[-1]))
                and not (first == "'" and 2 <= len(token) <= 3)
            )
        else:  # each printed token is a word, separated by spaces
            cont, piece, space = False, token, bool(s.text) and _spaced(s.text, token)
        if space:
            s.text += " "
        start = len(s.text)
        s.text += piece
        end = len(s.text)
        # The span without the spaces a word-start marker stands for.
        while start < end and s.text[start].isspace():
            start += 1
        shown = s.text[start:end].strip()
        display.append(shown if shown and scheme == "bytelevel" else label)
        if not cont:
            s.words += 1
        word = s.words
        word_ids.append(word if seg == 0 else SEGMENT_B_WORDS + word)
        offsets.append((start, end) if seg == 0 and start < end else (0, 0))
        last[seg] = piece if piece else prev
        pieces.append(piece)
    text_a = segments[0].text.strip()
    text_b = segments[1].text.strip() if b_start is not None else None
    split = len(tokens) if b_start is None else b_start
    for seg, given in ((0, text), (1, text_pair)):
        if given is None:
            continue
        if seg == 1 and b_start is None:
            raise InputError(f"{field}_pair needs sentence_b_start (where segment B starts)")
        lo, hi = (0, split) if seg == 0 else (split, len(tokens))
        where = field if seg == 0 else f"{field}_pair"
        spans = _align(tokens[lo:hi], pieces[lo:hi], given, where)
        for i, span in enumerate(spans, start=lo):
            if span is None:
                if not special[i]:
                    offsets[i] = (0, 0)
                continue
            if seg == 0:
                offsets[i] = span
            shown = given[span[0] : span[1]].strip()
            if shown and not readable(tokens[i]).startswith(("␣", "↵", "⇥")):
                display[i] = shown
        if seg == 0:
            text_a = given
        else:
            text_b = given
    seq = TokenSeq(
        tokens=tuple(tokens),
        display=tuple(display),
        word_ids=tuple(word_ids),
        offsets=tuple(offsets),
        special=special,
        text=text_a,
    )
    return seq, text_b


# ---------------------------------------------------------------------------------------
# The arrays: bertviz's shapes in, float32 [layers, heads, q, k] out, every weight checked
# ---------------------------------------------------------------------------------------


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def _is_array(x: Any) -> bool:
    return isinstance(x, np.ndarray) or _is_torch(x)


def _dtype_name(x: Any) -> str:
    return str(x.dtype).removeprefix("torch.")


def _tolerance(x: Any) -> float:
    """Rows must sum to 1 within this: half precision rounds every weight to its own few
    bits, so the tolerance follows the dtype's eps (as extract._row_tolerance)."""
    if _is_torch(x):
        import torch

        eps = float(torch.finfo(x.dtype).eps) if x.dtype.is_floating_point else 0.0
    else:
        eps = float(np.finfo(x.dtype).eps) if np.issubdtype(x.dtype, np.floating) else 0.0
    return max(ROW_SUM_TOLERANCE, 8 * eps)


def _as_float64(x: Any) -> NDArray[np.float64]:
    """One layer as float64 on this machine (torch: detached, any device and dtype)."""
    if _is_torch(x):
        import torch

        return x.detach().to(device="cpu", dtype=torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def _numeric(x: Any, where: str) -> Any:
    """A torch tensor or numpy array of numbers (nested lists become an array)."""
    if _is_torch(x):
        if x.is_complex():
            raise InputError(f"{where} is complex ({_dtype_name(x)}); attention is real")
        return x
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where} is not an array of numbers ({exc})") from None
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        if arr.dtype == np.bool_:
            return arr
        raise InputError(f"{where} is not an array of numbers (dtype {arr.dtype})")
    return arr


def _layers(value: Any, field: str) -> list[Any]:
    """Per-layer ``[heads, q, k]`` arrays from ``outputs.attentions`` (a tuple of
    ``[1, heads, q, k]``), a list of ``[heads, q, k]``, or one ``[layers, heads, q, k]``
    (``[layers, 1, heads, q, k]``) array; the batch of one is checked and dropped."""
    if _is_array(value):
        arr = _numeric(value, field)
        shape = tuple(arr.shape)
        if len(shape) == 5:
            layers = [arr[i] for i in range(shape[0])]
        elif len(shape) == 4:
            if not shape[0]:
                raise InputError(f"{field} has no layers")
            return [arr[i] for i in range(shape[0])]
        else:
            raise InputError(
                f"{field} has shape {shape}: give the tuple outputs.attentions returns "
                "(one [1, heads, n, n] per layer) or one [layers, heads, n, n] array"
            )
    elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
        layers = [_numeric(v, f"{field}: layer {i + 1} [{i}]") for i, v in enumerate(value)]
    else:
        raise InputError(
            f"{field} is a {type(value).__name__}: give the tuple outputs.attentions returns "
            "(torch tensors or numpy arrays) or one [layers, heads, n, n] array"
        )
    if not layers:
        raise InputError(f"{field} has no layers")
    out = []
    for i, layer in enumerate(layers):
        shape = tuple(layer.shape)
        where = f"{field}: layer {i + 1} [{i}]"
        if len(shape) == 4:
            if shape[0] != 1:
                raise InputError(
                    f"{where} has a batch of {shape[0]}: from_attention takes one sentence's "
                    "attention (a batch of one); pass a list of sentences for several"
                )
            layer = layer[0]
        elif len(shape) != 3:
            raise InputError(
                f"{where} has shape {shape}: expected [1, heads, n, n] (or [heads, n, n])"
            )
        out.append(layer)
    return out


def _tokens(value: Any, field: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise InputError(
            f"{field} must be a list of strings as the tokenizer prints them "
            f"(tokenizer.convert_ids_to_tokens(ids)), not a {type(value).__name__}"
        )
    if not value:
        raise InputError(f"{field} is empty")
    for i, t in enumerate(value):
        if not isinstance(t, str):
            raise InputError(
                f"{field}: token {i + 1} [{i}] is a {type(t).__name__}, not a string "
                "(give tokenizer.convert_ids_to_tokens(ids), not the ids)"
            )
    return tuple(value)


def _shape_of(
    layers: list[Any], field: str, n_query: int, n_key: int, query_name: str, key_name: str
) -> tuple[int, int]:
    """Layers and heads of one map, every layer checked against the first and the tokens."""
    heads = int(layers[0].shape[0])
    for i, layer in enumerate(layers):
        h, q, k = (int(d) for d in layer.shape)
        where = f"{field}: layer {i + 1} [{i}]"
        if h != heads:
            raise InputError(
                f"{where} has {h} heads but layer 1 [0] has {heads}: every layer needs the "
                "same heads"
            )
        if h == 0:
            raise InputError(f"{where} has no heads")
        if q != n_query:
            raise InputError(f"{where} has {q} query rows but {query_name} has {n_query} tokens")
        if k != n_key:
            raise InputError(f"{where} has {k} key columns but {key_name} has {n_key} tokens")
    return len(layers), heads


def _check_weights(
    layers: list[Any],
    field: str,
    labels: Sequence[str],
    causal: bool | None,
    tolerance: float | None = None,
) -> tuple[NDArray[np.float32], bool]:
    """Every weight finite and not negative, every row summing to 1 within the dtype's
    tolerance (or `tolerance`); the map as float32 and whether its upper triangle is all
    zero."""
    heads, nq, nk = (int(d) for d in layers[0].shape)
    out = np.empty((len(layers), heads, nq, nk), dtype=np.float32)
    upper_zero = True
    for li, layer in enumerate(layers):
        tol = _tolerance(layer) if tolerance is None else tolerance
        a = _as_float64(layer)

        def where(h: int, r: int, li: int = li) -> str:
            token = labels[r] if r < len(labels) else "?"
            return (
                f"{field}: layer {li + 1} [{li}], head {h + 1} [{h}], row {r + 1} [{r}] "
                f"(token {token!r})"
            )

        bad = ~np.isfinite(a)
        if bad.any():
            h, r, c = (int(v) for v in np.argwhere(bad)[0])
            what = "NaN" if np.isnan(a[h, r, c]) else "an infinite value"
            raise InputError(f"{where(h, r)} holds {what} at column {c + 1} [{c}]")
        neg = a < 0
        if neg.any():
            h, r, c = (int(v) for v in np.argwhere(neg)[0])
            raise InputError(
                f"{where(h, r)} holds a negative weight ({a[h, r, c]:.3g}) at column "
                f"{c + 1} [{c}]: attention weights are probabilities"
            )
        off = np.abs(a.sum(axis=-1) - 1.0)
        over = off > tol
        if over.any():
            h, r = (int(v) for v in np.argwhere(over)[0])
            raise InputError(
                f"{where(h, r)} sums to {float(a[h, r].sum()):.6g}, not 1 "
                f"(tolerance {tol:.3g} for {_dtype_name(layer)}): attention rows are "
                "softmax outputs"
            )
        if nq == nk and nq > 1:
            above = np.triu(a, k=1) != 0
            if above.any():
                upper_zero = False
                if causal:
                    h, r, c = (int(v) for v in np.argwhere(above)[0])
                    raise InputError(
                        f"{where(h, r)} attends to the later column {c + 1} [{c}], but "
                        "causal=True: a causal map is zero above the diagonal"
                    )
        out[li] = a
    return out, upper_zero and nq == nk


# ---------------------------------------------------------------------------------------
# One sentence
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Given:
    """One sentence's inputs, as the caller gave them (not yet checked)."""

    number: int
    fields: Mapping[str, Any]

    @property
    def prefix(self) -> str:
        return f"sentence {self.number}: " if self.number else ""

    def get(self, key: str, default: Any = None) -> Any:
        value = self.fields.get(key, default)
        return default if value is None else value


@dataclass(frozen=True)
class _Checked:
    """One sentence's maps and tokens, every shape checked, weights not yet."""

    given: _Given
    seqs: Sequences
    streams: dict[str, list[Any]]  # extract's stream name -> per-layer arrays
    shapes: dict[str, tuple[int, int]]  # stream -> (layers, heads)
    encoder_decoder: bool
    text_b: str | None = None  # segment B's rebuilt text, for sentence pairs

    def field(self, stream: str) -> str:
        """The argument a stream's map was given as."""
        if stream == "self":
            return self.given.prefix + (
                "encoder_attention" if self.encoder_decoder else "attention"
            )
        return self.given.prefix + _STREAM_FIELD[stream]

    def values(self) -> int:
        total = 0
        for stream, layers in self.streams.items():
            _, q, k = (int(d) for d in layers[0].shape)
            total += self.shapes[stream][0] * self.shapes[stream][1] * q * k
        return total


def _b_start(value: Any, n: int, field: str) -> int | None:
    if value is None:
        return None
    if _is_array(value) and getattr(value, "ndim", 1) == 0:
        value = value.item()  # a 0-d tensor or array, e.g. (ids == sep).nonzero()[0]
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InputError(f"{field} must be a whole number (a token position), not {value!r}")
    if not 0 < int(value) < n:
        raise InputError(
            f"{field} {value} is out of range: segment B starts at a token position "
            f"1-{n - 1} (0-based, as bertviz's head_view takes it) of the {n} tokens"
        )
    return int(value)


def _text(given: _Given, key: str) -> str | None:
    """The caller's own text for the tokens, if given (a string)."""
    value = given.get(key)
    if value is not None and not isinstance(value, str):
        raise InputError(f"{given.prefix}{key} must be a string, not a {type(value).__name__}")
    return value


def _check_shapes(given: _Given) -> _Checked:
    p = given.prefix
    enc_fields = ("encoder_attention", "decoder_attention", "cross_attention")
    enc_dec = any(given.get(f) is not None for f in enc_fields)
    if not enc_dec:
        if given.get("attention") is None:
            raise InputError(f"{p}no attention given: pass attention (outputs.attentions)")
        for f in ("encoder_tokens", "decoder_tokens"):
            if given.get(f) is not None:
                raise InputError(
                    f"{p}{f} goes with encoder_attention, decoder_attention and "
                    "cross_attention; with attention, pass tokens"
                )
        tokens = _tokens(given.get("tokens"), f"{p}tokens")
        layers = _layers(given.get("attention"), f"{p}attention")
        shape = _shape_of(layers, f"{p}attention", len(tokens), len(tokens), "tokens", "tokens")
        b_start = _b_start(given.get("sentence_b_start"), len(tokens), f"{p}sentence_b_start")
        seq, text_b = token_seq_from_tokens(
            tokens, b_start, _text(given, "text"), _text(given, "text_pair"), f"{p}text"
        )
        return _Checked(
            given, Sequences(seq, b_start), {"self": layers}, {"self": shape}, False, text_b
        )
    missing = [f for f in (*enc_fields, "encoder_tokens", "decoder_tokens") if given.get(f) is None]
    if missing:
        raise InputError(
            f"{p}an encoder-decoder report needs encoder_attention, decoder_attention, "
            f"cross_attention, encoder_tokens and decoder_tokens; missing: {', '.join(missing)}"
        )
    for f in ("attention", "tokens"):
        if given.get(f) is not None:
            raise InputError(
                f"{p}{f} is for encoder-only and decoder-only models: with encoder_attention "
                "pass encoder_tokens and decoder_tokens"
            )
    enc_tokens = _tokens(given.get("encoder_tokens"), f"{p}encoder_tokens")
    dec_tokens = _tokens(given.get("decoder_tokens"), f"{p}decoder_tokens")
    n, m = len(enc_tokens), len(dec_tokens)
    enc = _layers(given.get("encoder_attention"), f"{p}encoder_attention")
    dec = _layers(given.get("decoder_attention"), f"{p}decoder_attention")
    cross = _layers(given.get("cross_attention"), f"{p}cross_attention")
    shapes = {
        "self": _shape_of(enc, f"{p}encoder_attention", n, n, "encoder_tokens", "encoder_tokens"),
        "decoder": _shape_of(
            dec, f"{p}decoder_attention", m, m, "decoder_tokens", "decoder_tokens"
        ),
        "cross": _shape_of(cross, f"{p}cross_attention", m, n, "decoder_tokens", "encoder_tokens"),
    }
    heads = shapes["self"][1]
    for stream, field in (("decoder", "decoder_attention"), ("cross", "cross_attention")):
        if shapes[stream][1] != heads:
            raise InputError(
                f"{p}{field} has {shapes[stream][1]} heads but encoder_attention has {heads}: "
                "one report shows one head count"
            )
    if shapes["cross"][0] != shapes["decoder"][0]:
        raise InputError(
            f"{p}cross_attention has {shapes['cross'][0]} layers but decoder_attention has "
            f"{shapes['decoder'][0]}: the decoder's layers each have both"
        )
    b_start = _b_start(given.get("sentence_b_start"), n, f"{p}sentence_b_start")
    enc_seq, text_b = token_seq_from_tokens(
        enc_tokens, b_start, _text(given, "text"), _text(given, "text_pair"), f"{p}text"
    )
    dec_seq, _ = token_seq_from_tokens(dec_tokens)
    return _Checked(
        given,
        Sequences(enc_seq, b_start, dec_seq),
        {"self": enc, "decoder": dec, "cross": cross},
        shapes,
        True,
        text_b,
    )


_STREAM_FIELD = {"self": "attention", "decoder": "decoder_attention", "cross": "cross_attention"}


def _item(checked: _Checked, focus: Any, candidates: Any) -> SentenceInput:
    given = checked.given
    own_candidates = given.get("candidates", ())
    cands = own_candidates or candidates
    if isinstance(cands, str):
        cands = split_candidates(cands)
    return SentenceInput(
        text=checked.seqs.input.text,
        focus=given.get("focus") or focus,
        candidates=tuple(cands),
        answer=given.get("answer"),
        text_pair=checked.text_b,
        target=checked.seqs.decoder.text if checked.seqs.decoder is not None else None,
        source=f"sentence {given.number or 1}",
    )


def _split(attention: Any, tokens: Any, one: dict[str, Any]) -> list[_Given]:
    """One sentence (bertviz's arguments) or a list of them: (attention, tokens) pairs or
    dicts of from_attention's per-sentence arguments."""
    several = (
        tokens is None
        and isinstance(attention, Sequence)
        and not isinstance(attention, str | bytes)
        and len(attention) > 0
        and all(isinstance(a, Mapping) or _is_pair(a) for a in attention)
    )
    if not several:
        return [_Given(0, {"attention": attention, "tokens": tokens, **one})]
    shared = {k: v for k, v in one.items() if v is not None}
    if shared:
        raise InputError(
            f"{', '.join(sorted(shared))}: with a list of sentences, give these per sentence "
            "(in each one's dict)"
        )
    out = []
    for i, a in enumerate(attention, start=1):
        if isinstance(a, Mapping):
            unknown = set(a) - _ITEM_KEYS
            if unknown:
                raise InputError(
                    f"sentence {i}: unknown field(s) {', '.join(sorted(map(str, unknown)))}; "
                    f"a sentence takes {', '.join(sorted(_ITEM_KEYS))}"
                )
            out.append(_Given(i, dict(a)))
        else:
            out.append(_Given(i, {"attention": a[0], "tokens": a[1]}))
    return out


def _is_pair(a: Any) -> bool:
    return (
        isinstance(a, tuple | list)
        and len(a) == 2
        and isinstance(a[1], Sequence)
        and not isinstance(a[1], str)
        and len(a[1]) > 0
        and all(isinstance(t, str) for t in a[1])
    )


def _check_budget(checked: Sequence[_Checked], layers: int, heads: int, kind: str) -> None:
    """The page budget, then this machine's memory (memory.check_fits), before any weight
    is converted: a long-input page is built only from a model run."""
    total = sum(c.values() for c in checked)
    decoder_layers = checked[0].shapes["decoder"][0] if "decoder" in checked[0].shapes else 0
    shape = memory.ModelShape(
        name=GIVEN_MODEL, kind=kind, layers=layers, heads=heads, decoder_layers=decoder_layers
    )
    lengths = [len(c.seqs.input.tokens) for c in checked]
    if total > memory.PAGE_BUDGET_VALUES:  # counted exactly, every stream's own lengths
        raise InputError(
            f"the given attention holds {total / 1e6:.1f}M values, more than one page "
            f"carries in full ({memory.PAGE_BUDGET_VALUES / 1e6:.0f}M); the long-input page "
            "is built only from a model run (reportgen.build_report or the CLI reduce each "
            "layer as it streams), not from given attention: give fewer tokens or sentences"
        )
    memory.check_fits(shape, lengths, 1, available=memory.available_memory())


def from_attention(
    attention: Any = None,
    tokens: Sequence[str] | None = None,
    *,
    sentence_b_start: int | None = None,
    encoder_attention: Any = None,
    decoder_attention: Any = None,
    cross_attention: Any = None,
    encoder_tokens: Sequence[str] | None = None,
    decoder_tokens: Sequence[str] | None = None,
    text: str | None = None,
    text_pair: str | None = None,
    focus: str | None = None,
    candidates: Sequence[str] | str = (),
    compare: bool = False,
    title: str | None = None,
    layer: int | None = None,
    head: int | None = None,
    causal: bool | None = None,
    model_name: str | None = None,
    architecture: str | None = None,
    focus_at: str = "auto",
) -> Report:
    """The report of attention the caller already has, in bertviz's call shape.

    ``from_attention(outputs.attentions, tokenizer.convert_ids_to_tokens(ids))``:
    `attention` is the tuple ``outputs.attentions`` returns (one ``[1, heads, n, n]``
    torch tensor or numpy array per layer, any float dtype) or one ``[layers, heads, n,
    n]`` array; `tokens` as the tokenizer prints them; `sentence_b_start` the first token
    of segment B (0-based, as bertviz). Encoder-decoders give `encoder_attention`,
    `decoder_attention`, `cross_attention`, `encoder_tokens` and `decoder_tokens`
    instead. `text` (and `text_pair`, segment B's) is the sentence the tokens were made
    from, optional: the page then shows it, labels keep its case and focus words are
    found in it; without it the text is rebuilt from the tokens. Several sentences:
    `attention` is a list of ``(attention, tokens)`` pairs or of dicts with those
    per-sentence fields (and ``focus``, ``candidates``, ``answer``, ``text``,
    ``text_pair``); `compare` pairs consecutive sentences as minimal pairs, as in
    :func:`reportgen.build_report`.

    `focus`, `candidates`, `title`, `layer`, `head` (1-based), `focus_at` are the
    report's options; `causal` is inferred from an all-zero upper triangle when not
    given; `model_name` and `architecture` are what the page calls the model. Weights are
    kept as float32 (the engine's maps). Returns the same :class:`~reportgen.pipeline.
    Report` as :func:`reportgen.build_report`; bad input raises one-line
    :class:`~reportgen.errors.InputError` before anything renders.
    """
    from reportgen.pipeline import report_from_extraction

    one = {
        "sentence_b_start": sentence_b_start,
        "encoder_attention": encoder_attention,
        "decoder_attention": decoder_attention,
        "cross_attention": cross_attention,
        "encoder_tokens": encoder_tokens,
        "decoder_tokens": decoder_tokens,
        "text": text,
        "text_pair": text_pair,
    }
    if causal is not None and not isinstance(causal, bool):
        raise InputError(f"causal must be True, False or None, not {causal!r}")
    for name, value in (("model_name", model_name), ("architecture", architecture)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise InputError(f"{name} must be a non-empty string, not {value!r}")
    if isinstance(candidates, str):
        candidates = split_candidates(candidates)
    cfg = ReportConfig(title=title, layer=layer, head=head, focus_at=focus_at)
    _check_config(cfg)
    givens = _split(attention, tokens, one)
    checked = [_check_shapes(g) for g in givens]
    # One report shows one model: every sentence's maps have its layers and heads.
    first = checked[0]
    for c in checked[1:]:
        if c.encoder_decoder != first.encoder_decoder:
            raise InputError(
                f"{c.given.prefix}is {'an encoder-decoder' if c.encoder_decoder else 'a single'}"
                " model's attention, sentence 1 is not: one report shows one model"
            )
        for stream, (lay, hd) in c.shapes.items():
            lay0, hd0 = first.shapes[stream]
            if (lay, hd) != (lay0, hd0):
                raise InputError(
                    f"{c.field(stream)} has {lay} layers x {hd} heads but sentence 1 "
                    f"has {lay0} x {hd0}: one report shows one model"
                )
    layers, heads = first.shapes["self"]
    provisional: ModelKind = "encoder-decoder" if first.encoder_decoder else "encoder"
    _check_budget(checked, layers, heads, provisional)
    # Every weight, before anything renders.
    arrays: list[dict[str, NDArray[np.float32]]] = []
    upper: list[dict[str, bool]] = []
    for c in checked:
        own: dict[str, NDArray[np.float32]] = {}
        tri: dict[str, bool] = {}
        for stream, stream_layers in c.streams.items():
            query = c.seqs.input if stream == "self" else c.seqs.decoder
            assert query is not None
            own[stream], tri[stream] = _check_weights(
                stream_layers,
                c.field(stream),
                query.display,
                causal if stream == "self" else None,
            )
        arrays.append(own)
        upper.append(tri)
    square = [len(c.seqs.input.tokens) > 1 for c in checked]
    inferred = any(square) and all(t["self"] for t, s in zip(upper, square, strict=True) if s)
    is_causal = inferred if causal is None else causal
    kind: ModelKind = (
        "encoder-decoder" if first.encoder_decoder else ("causal" if is_causal else "encoder")
    )
    info = ModelInfo(
        name=public_name(model_name) if model_name else GIVEN_MODEL,
        architecture=architecture or GIVEN_ARCHITECTURE,
        kind=kind,
        layers=layers,
        heads=heads,
    )
    items: list[SentenceInput] = []
    results: list[AttentionResult] = []
    for c, own, tri in zip(checked, arrays, upper, strict=True):
        item = _item(c, focus, candidates)
        items.append(item)
        maps = []
        for layout in map_layout(kind, c.seqs):
            amap_causal = layout.causal
            if layout.stream == "decoder":
                amap_causal = tri["decoder"]  # as given: zero above the diagonal or not
            elif layout.stream == "self" and first.encoder_decoder:
                amap_causal = False if causal is None else causal
            maps.append(
                AttentionMap(
                    layout.name,
                    layout.query,
                    layout.key,
                    own[layout.stream],
                    causal=amap_causal,
                    sentence_b_start=c.seqs.b_start if layout.stream == "self" else None,
                    id=layout.id,
                )
            )
        results.append(AttentionResult(item=item, maps=tuple(maps)))
    pairs = consecutive_pairs(len(items), "compare") if compare else ()
    batch = InputBatch(items=tuple(items), pairs=pairs)
    _check_items(batch.items)
    _check_focus_at(cfg, batch)
    primary_causal = kind == "causal"
    queries: tuple[tuple[PairQuery, ...] | None, ...] = tuple(
        pair_queries(
            results[a].maps[0].query,
            results[b].maps[0].query,
            batch.items[a].focus or "",
            primary_causal,
            cfg.focus_at,
        )
        if _asks(batch, a)
        else None
        for a, b in pairs
    )
    extraction = Extraction(model=info, results=tuple(results), warnings=(NO_MODEL_LINE,))
    # The export records the loosest precision given: its rows sum to 1 only within that
    # (reportgen.rerender checks them so again).
    given_dtypes = {
        _dtype_name(layer) for c in checked for ls in c.streams.values() for layer in ls
    }
    dtype = next((d for d in ("bfloat16", "float16") if d in given_dtypes), cfg.dtype)
    return report_from_extraction(extraction, replace(cfg, dtype=dtype), pairs, queries)
