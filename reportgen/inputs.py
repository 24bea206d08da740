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
from reportgen.safety import preview

JSONL_KEYS = frozenset(
    {"text", "compare", "focus", "candidates", "answer", "compare_answer", "text_pair", "target"}
)
# Limits, all checked before the model loads; the README's "Known limits" lists them.
# A sentence longer than this is almost certainly a mistake (a whole book on one line);
# it covers every text the model reads: text, compare, text_pair, target.
MAX_CHARS = 100_000
# The focus word and each candidate are words (or short phrases), and the report draws one
# bar per candidate.
MAX_WORD_CHARS = 200
MAX_CANDIDATES = 50
MAX_TITLE_CHARS = 1_000
# Sentences in one per-sentence report: 5,000 make a 72 MB page that Chromium needs 17 s to
# make interactive; 1,000 open in about 3 s. Raised with --max-sentences.
MAX_SENTENCES = 1_000
# An input file is read whole; past this it is a corpus, not a report's worth of sentences.
MAX_INPUT_BYTES = 256 * 1024 * 1024


class TooManySentences(InputError):
    """More sentences than a per-sentence report takes."""


def too_many_sentences(limit: int) -> InputError:
    """The one-line refusal of a per-sentence report over `limit` sentences."""
    return TooManySentences(
        f"more than {limit:,} sentences: a per-sentence report that big takes long to open "
        "in a browser; raise the limit with --max-sentences N, or use --atlas for "
        "corpus-sized inputs"
    )


def read_text_source(path: str) -> tuple[str, str]:
    """Read an input file (or stdin for "-") as UTF-8; return (label, text)."""
    if path == "-":
        data = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
        label = "<stdin>"
    else:
        p = Path(path)
        label = str(p)
        try:  # exists() and is_dir() raise too, e.g. for a name that is too long
            if not p.exists():
                raise InputError(f"input file '{label}' does not exist")
            if p.is_dir():
                raise InputError(f"input '{label}' is a folder, not a file")
            if p.stat().st_size > MAX_INPUT_BYTES:
                raise _too_big(label)
            data = p.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read input file '{label}': {exc.strerror or exc}") from None
    if len(data) > MAX_INPUT_BYTES:  # stdin, a FIFO, or a file that grew while read
        raise _too_big(label)
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


def _too_big(label: str) -> InputError:
    return InputError(
        f"input '{label}' is larger than {MAX_INPUT_BYTES // (1024 * 1024)} MB; "
        "split it into smaller files"
    )


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


def parse_text_lines(label: str, text: str, limit: int | None = None) -> list[SentenceInput]:
    """One sentence a line; blank lines and lines starting with `#` are skipped.

    Counting stops at `limit` + 1 sentences, so a corpus is refused before it is parsed.
    """
    items: list[SentenceInput] = []
    for number, line in enumerate(_lines(text), start=1):
        sentence = line.strip()
        if not sentence or sentence.startswith("#"):
            continue
        if limit is not None and len(items) >= limit:
            raise too_many_sentences(limit)
        where = f"{label}:{number}"
        check_text(sentence, where, MAX_CHARS, "sentence")
        items.append(SentenceInput(text=sentence, source=where))
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


def parse_jsonl_line(line: str, where: str) -> list[SentenceInput]:
    """One JSONL line -> its item, plus a second item for a "compare" sentence.

    Blank lines and `#` comments give []. Used by :func:`parse_jsonl` and by streaming
    readers (the head atlas), so every reader validates a line, limits included, the
    same way.
    """
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return []
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
    if not isinstance(candidates, list):
        raise InputError(f'{where}: "candidates" must be a list of words')
    check_candidates(len(candidates), where)
    if not all(isinstance(c, str) and c.strip() for c in candidates):
        raise InputError(f'{where}: "candidates" must be a list of words')
    words = tuple(c.strip() for c in candidates)
    compare = _str_field(obj, "compare", where)
    check_text(compare, where, MAX_CHARS, '"compare"')
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
    check_item(item)
    if compare is None:
        return [item]
    return [item, replace(item, text=compare, answer=compare_answer, text_pair=None, target=None)]


def parse_jsonl(
    label: str, text: str, limit: int | None = None
) -> tuple[list[SentenceInput], list[tuple[int, int]]]:
    """Parse JSONL records; a "compare" sentence becomes the second item of a pair.

    Parsing stops as soon as there are more than `limit` sentences.
    """
    items: list[SentenceInput] = []
    pairs: list[tuple[int, int]] = []
    for number, line in enumerate(_lines(text), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if limit is not None and len(items) >= limit:
            raise too_many_sentences(limit)
        parsed = parse_jsonl_line(stripped, f"{label} line {number}")
        items.extend(parsed)
        if len(parsed) == 2:
            pairs.append((len(items) - 2, len(items) - 1))
        if limit is not None and len(items) > limit:
            raise too_many_sentences(limit)
    return items, pairs


def check_text(value: str | None, where: str, limit: int = MAX_CHARS, what: str = "text") -> None:
    """Refuse a value over `limit` characters, quoting only its start, and lone
    surrogates: an undecodable command-line byte (Python keeps it as U+DC80-U+DCFF) or a
    JSON "\\ud800" escape. Neither can be tokenized or written to the UTF-8 report."""
    if value is None:
        return
    if len(value) > limit:
        raise InputError(
            f'{where}: {what} "{preview(value)}" is {len(value):,} characters long, '
            f"over the limit of {limit:,}"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(
            f"{where}: not valid UTF-8 text (an undecodable byte or a lone surrogate at "
            f"character {exc.start + 1}); check the terminal's or file's encoding"
        ) from None


def check_candidates(count: int, where: str) -> None:
    """Refuse more than MAX_CANDIDATES candidate words."""
    if count > MAX_CANDIDATES:
        raise InputError(
            f"{where}: {count:,} candidates, over the limit of {MAX_CANDIDATES}; "
            "candidates are the few words the focus word may refer to"
        )


def check_item(item: SentenceInput) -> None:
    """Every text field of one sentence within its limit (and valid UTF-8)."""
    where = item.source
    check_text(item.text, where, MAX_CHARS, "sentence")
    check_text(item.text_pair, where, MAX_CHARS, '"text_pair"')
    check_text(item.target, where, MAX_CHARS, '"target"')
    check_text(item.focus, where, MAX_WORD_CHARS, '"focus"')
    check_candidates(len(item.candidates), where)
    for word in item.candidates:
        check_text(word, where, MAX_WORD_CHARS, "candidate")


def consecutive_pairs(count: int, option: str) -> tuple[tuple[int, int], ...]:
    """Minimal pairs of consecutive sentences (`option` asked for them: --compare, or the
    API's compare=True): 0 and 1, 2 and 3, ...; refused for an odd count."""
    if count % 2:
        raise InputError(f"{option} needs an even number of sentences, got {count}")
    return tuple((i, i + 1) for i in range(0, count, 2))


def split_candidates(value: str | None) -> tuple[str, ...]:
    """`--candidates animal,street` -> ("animal", "street")."""
    if not value:
        return ()
    parts = value.split(",")
    check_candidates(len(parts), "--candidates")
    words = tuple(w.strip() for w in parts)
    if not all(words):
        raise InputError(f"--candidates '{preview(value)}' has an empty word; use WORD[,WORD...]")
    for word in words:
        check_text(word, "--candidates", MAX_WORD_CHARS, "candidate")
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
    max_sentences: int | None = MAX_SENTENCES,
) -> InputBatch:
    """Gather sentences from arguments and an input file, in that order.

    Command-line `focus`/`candidates`/`text_pair`/`target` apply to every item that
    does not set its own. With `compare`, consecutive sentences form minimal pairs.
    Every limit is checked here, before any model loads; `max_sentences=None` lifts the
    sentence limit (for views that do not draw every sentence).
    """
    cand = tuple(candidates)
    check_text(focus, "--focus", MAX_WORD_CHARS, "focus word")
    check_candidates(len(cand), "--candidates")
    for word in cand:
        check_text(word, "--candidates", MAX_WORD_CHARS, "candidate")
    check_text(text_pair, "--pair", MAX_CHARS, "text")
    check_text(target, "--target", MAX_CHARS, "text")
    if max_sentences is not None and len(sentences) > max_sentences:
        raise too_many_sentences(max_sentences)
    items = [
        SentenceInput(text=s.strip(), source=f"argument {i}") for i, s in enumerate(sentences, 1)
    ]
    for i, item in enumerate(items):
        if not item.text:
            raise InputError(f"sentence argument {i + 1} is empty")
        check_item(item)
    pairs: list[tuple[int, int]] = []
    if input_path is not None:
        if Path(input_path).suffix.lower() in (".csv", ".tsv"):
            raise InputError(
                f"'{input_path}' is a table; give a .txt file (one sentence a line) or .jsonl"
            )
        label, text = read_text_source(input_path)
        room = None if max_sentences is None else max_sentences - len(items)
        try:
            if _is_jsonl(label, text):
                file_items, file_pairs = parse_jsonl(label, text, room)
                offset = len(items)
                pairs.extend((a + offset, b + offset) for a, b in file_pairs)
            else:
                file_items = parse_text_lines(label, text, room)
        except TooManySentences:  # the parser knew only the room left; name the limit
            raise too_many_sentences(max_sentences or 0) from None
        del text
        items.extend(file_items)
    if not items:
        where = f" ('{input_path}' has no sentences)" if input_path is not None else ""
        raise InputError(f"no sentences given{where}: pass SENTENCE arguments or -i FILE")
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
        pairs = list(consecutive_pairs(len(items), "--compare"))
    return InputBatch(items=tuple(items), pairs=tuple(pairs))
