"""Turn command-line sentences and input files into an :class:`InputBatch`.

Text files hold one sentence a line (blank lines and `#` comments skipped);
JSONL files hold one object a line with at least a "text" key.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from reportgen.config import InputBatch, SentenceInput
from reportgen.errors import InputError

JSONL_KEYS = frozenset(
    {"text", "compare", "focus", "candidates", "answer", "compare_answer", "text_pair", "target"}
)
# A sentence longer than this is almost certainly a mistake (a whole book on one line).
MAX_CHARS = 100_000


def read_text_source(path: str) -> tuple[str, str]:
    """Read an input file (or stdin for "-") as UTF-8; return (label, text)."""
    if path == "-":
        data = sys.stdin.buffer.read()
        label = "<stdin>"
    else:
        p = Path(path)
        label = str(p)
        try:  # exists() and is_dir() raise too, e.g. for a name that is too long
            if not p.exists():
                raise InputError(f"input file '{label}' does not exist")
            if p.is_dir():
                raise InputError(f"input '{label}' is a folder, not a file")
            data = p.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read input file '{label}': {exc.strerror or exc}") from None
    if b"\x00" in data:
        raise InputError(f"input '{label}' looks binary (it contains NUL bytes), not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"input '{label}' is not UTF-8 text (bad byte at offset {exc.start}); "
            "save it as UTF-8 and try again"
        ) from None
    return label, text


def _lines(text: str) -> list[str]:
    """Split on newlines only: str.splitlines() also breaks at U+2028, U+0085 and
    other separators that may sit inside a JSON string or a sentence."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _is_jsonl(label: str, text: str) -> bool:
    if label.endswith((".jsonl", ".ndjson")):
        return True
    if label.endswith(".txt"):
        return False
    for line in _lines(text):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return stripped.startswith("{")
    return False


def parse_text_lines(label: str, text: str) -> list[SentenceInput]:
    """One sentence a line; blank lines and lines starting with `#` are skipped."""
    items = []
    for number, line in enumerate(_lines(text), start=1):
        sentence = line.strip()
        if not sentence or sentence.startswith("#"):
            continue
        items.append(SentenceInput(text=sentence, source=f"{label}:{number}"))
    return items


def _str_field(obj: dict[str, Any], key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InputError(f'{where}: "{key}" must be a non-empty string')
    return value.strip()


def _answers(
    obj: dict[str, Any], candidates: tuple[str, ...], has_compare: bool, where: str
) -> tuple[str | None, str | None]:
    """The gold antecedents of "text" and of "compare", each one of `candidates`.

    A minimal pair flips its referent, so with exactly two candidates a missing
    "compare_answer" is the candidate that "answer" is not.
    """
    answer = _str_field(obj, "answer", where)
    compare_answer = _str_field(obj, "compare_answer", where)
    if compare_answer is not None and not has_compare:
        raise InputError(f'{where}: "compare_answer" needs a "compare" sentence')
    for key, value in (("answer", answer), ("compare_answer", compare_answer)):
        if value is not None and value not in candidates:
            shown = ", ".join(candidates) if candidates else "none given"
            raise InputError(
                f'{where}: "{key}" must be one of "candidates" ({shown}), got "{value[:40]}"'
            )
    if has_compare and answer is not None and compare_answer is None and len(candidates) == 2:
        compare_answer = candidates[1] if answer == candidates[0] else candidates[0]
    return answer, compare_answer


def parse_jsonl(label: str, text: str) -> tuple[list[SentenceInput], list[tuple[int, int]]]:
    """Parse JSONL records; a "compare" sentence becomes the second item of a pair."""
    items: list[SentenceInput] = []
    pairs: list[tuple[int, int]] = []
    for number, line in enumerate(_lines(text), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        where = f"{label} line {number}"
        try:
            obj = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(obj, dict):
            raise InputError(f'{where}: expected a JSON object like {{"text": "..."}}')
        unknown = sorted(set(obj) - JSONL_KEYS)
        if unknown:
            raise InputError(
                f"{where}: unknown key(s) {', '.join(unknown)}; "
                f"known keys are {', '.join(sorted(JSONL_KEYS))}"
            )
        sentence = _str_field(obj, "text", where)
        if sentence is None:
            raise InputError(f'{where}: missing "text"')
        candidates = obj.get("candidates", [])
        if isinstance(candidates, str):
            candidates = [c for c in candidates.split(",")]
        if not isinstance(candidates, list) or not all(
            isinstance(c, str) and c.strip() for c in candidates
        ):
            raise InputError(f'{where}: "candidates" must be a list of words')
        words = tuple(c.strip() for c in candidates)
        compare = _str_field(obj, "compare", where)
        answer, compare_answer = _answers(obj, words, compare is not None, where)
        item = SentenceInput(
            text=sentence,
            focus=_str_field(obj, "focus", where),
            candidates=words,
            answer=answer,
            text_pair=_str_field(obj, "text_pair", where),
            target=_str_field(obj, "target", where),
            source=where,
        )
        items.append(item)
        if compare is not None:
            items.append(
                replace(item, text=compare, answer=compare_answer, text_pair=None, target=None)
            )
            pairs.append((len(items) - 2, len(items) - 1))
    return items, pairs


def check_text(value: str | None, where: str) -> None:
    """Refuse lone surrogates: an undecodable command-line byte (Python keeps it as
    U+DC80-U+DCFF) or a JSON "\\ud800" escape. Neither can be tokenized or written
    to the UTF-8 report."""
    if value is None:
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(
            f"{where}: not valid UTF-8 text (an undecodable byte or a lone surrogate at "
            f"character {exc.start + 1}); check the terminal's or file's encoding"
        ) from None


def split_candidates(value: str | None) -> tuple[str, ...]:
    """`--candidates animal,street` -> ("animal", "street")."""
    if not value:
        return ()
    words = tuple(w.strip() for w in value.split(","))
    if not all(words):
        raise InputError(f"--candidates '{value}' has an empty word; use WORD[,WORD...]")
    return words


def collect_inputs(
    sentences: Sequence[str],
    input_path: str | None = None,
    *,
    focus: str | None = None,
    candidates: Iterable[str] = (),
    compare: bool = False,
    text_pair: str | None = None,
    target: str | None = None,
) -> InputBatch:
    """Gather sentences from arguments and an input file, in that order.

    Command-line `focus`/`candidates`/`text_pair`/`target` apply to every item that
    does not set its own. With `compare`, consecutive sentences form minimal pairs.
    """
    items = [
        SentenceInput(text=s.strip(), source=f"argument {i}") for i, s in enumerate(sentences, 1)
    ]
    for i, item in enumerate(items):
        if not item.text:
            raise InputError(f"sentence argument {i + 1} is empty")
    pairs: list[tuple[int, int]] = []
    if input_path is not None:
        if Path(input_path).suffix.lower() in (".csv", ".tsv"):
            raise InputError(
                f"'{input_path}' is a table; give a .txt file (one sentence a line) or .jsonl"
            )
        label, text = read_text_source(input_path)
        if _is_jsonl(label, text):
            file_items, file_pairs = parse_jsonl(label, text)
            offset = len(items)
            pairs.extend((a + offset, b + offset) for a, b in file_pairs)
        else:
            file_items = parse_text_lines(label, text)
        items.extend(file_items)
    if not items:
        where = f" ('{input_path}' has no sentences)" if input_path is not None else ""
        raise InputError(f"no sentences given{where}: pass SENTENCE arguments or -i FILE")
    for item in items:
        if len(item.text) > MAX_CHARS:
            raise InputError(f"{item.source}: sentence is longer than {MAX_CHARS:,} characters")
    cand = tuple(candidates)
    items = [
        replace(
            item,
            focus=item.focus or focus,
            candidates=item.candidates or cand,
            text_pair=item.text_pair or text_pair,
            target=item.target or target,
        )
        for item in items
    ]
    for item in items:
        for value in (item.text, item.focus, item.text_pair, item.target, *item.candidates):
            check_text(value, item.source)
    if compare:
        if pairs:
            raise InputError(
                "--compare pairs consecutive sentences; the JSONL file already sets "
                '"compare" pairs, so use one or the other'
            )
        if len(items) % 2:
            raise InputError(f"--compare needs an even number of sentences, got {len(items)}")
        pairs = [(i, i + 1) for i in range(0, len(items), 2)]
    return InputBatch(items=tuple(items), pairs=tuple(pairs))
