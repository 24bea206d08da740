"""Stream a corpus file line by line, validating each line as it is read.

A .txt file holds one sentence a line (blank lines and `#` comments skipped); a .jsonl
file one object a line, parsed by :func:`reportgen.inputs.parse_jsonl_line` exactly as
the per-sentence report parses it, with the same limits on every field. Nothing holds
more than one line.

File size: unlike a per-sentence report (whose input is read whole and capped at
`inputs.MAX_INPUT_BYTES`, 256 MB), a corpus has no size limit: it is streamed and
memory stays flat. What is capped is one line (:data:`MAX_LINE_BYTES`), read in
bounded pieces, so a file without line breaks cannot fill memory either.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

from reportgen.config import SentenceInput
from reportgen.errors import InputError
from reportgen.inputs import MAX_CHARS, check_text, parse_jsonl_line

# One line's bytes: a JSONL line may carry text, compare, text_pair and target of up to
# MAX_CHARS characters each, at up to 4 UTF-8 bytes (or a 6-byte JSON escape) apiece.
MAX_LINE_BYTES = 4 * 6 * MAX_CHARS + 64 * 1024


def _open(path: str) -> tuple[str, BinaryIO]:
    if path == "-":
        return "<stdin>", sys.stdin.buffer
    p = Path(path)
    try:  # exists() and is_dir() raise too, e.g. for a name that is too long
        if not p.exists():
            raise InputError(f"input file '{path}' does not exist")
        if p.is_dir():
            raise InputError(f"input '{path}' is a folder, not a file")
        return str(p), p.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read input file '{path}': {exc.strerror or exc}") from None


def _raw_lines(label: str, stream: BinaryIO) -> Iterator[bytes]:
    """Lines of at most MAX_LINE_BYTES; a longer one is refused before it is read whole."""
    number = 0
    while True:
        raw = stream.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        number += 1
        if len(raw) > MAX_LINE_BYTES:
            raise InputError(
                f"{label} line {number}: longer than {MAX_LINE_BYTES / 2**20:.1f} MB; "
                "a corpus holds one sentence a line"
            )
        yield raw


def _decoded_lines(label: str, stream: BinaryIO) -> Iterator[tuple[int, str]]:
    for number, raw in enumerate(_raw_lines(label, stream), start=1):
        if b"\x00" in raw:
            raise InputError(f"input '{label}' looks binary (line {number} has NUL bytes)")
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{label} line {number}: not UTF-8 text (bad byte at column {exc.start + 1})"
            ) from None
        # A lone "\r" ends a line too (old Mac files); "\r\n" is one ending.
        parts = text.rstrip("\n").rstrip("\r").split("\r")
        for part in parts:
            yield number, part


def iter_corpus(path: str) -> Iterator[SentenceInput]:
    """Every sentence of the corpus in order, validated; a JSONL "compare" sentence is a
    sentence of its own (with its own answer)."""
    label, stream = _open(path)
    jsonl: bool | None = True if label.endswith((".jsonl", ".ndjson")) else None
    if label.endswith(".txt"):
        jsonl = False
    try:
        for number, line in _decoded_lines(label, stream):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if jsonl is None:  # no telling extension: the first real line decides
                jsonl = stripped.startswith("{")
            where = f"{label} line {number}"
            if jsonl:
                items = parse_jsonl_line(stripped, where)
            else:
                check_text(stripped, where, MAX_CHARS, "sentence")
                items = [SentenceInput(text=stripped, source=f"{label}:{number}")]
            for item in items:
                # Encoder-decoder targets play no part in the atlas (encoder attention).
                yield replace(item, target=None) if item.target is not None else item
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def count_corpus(path: str) -> int:
    """Validate the whole file and count its sentences before any model is loaded, so a
    bad line 900,000 fails in seconds, not after hours of forward passes."""
    return sum(1 for _ in iter_corpus(path))
