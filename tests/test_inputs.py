"""inputs: sentences from arguments, text files, JSONL and stdin."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from reportgen.errors import InputError
from reportgen.inputs import collect_inputs, parse_jsonl, split_candidates


def test_arguments_then_file_in_order(tmp_path: Path) -> None:
    f = tmp_path / "s.txt"
    f.write_text("# comment\n\nSecond one.\n  Third one.  \n", encoding="utf-8")
    batch = collect_inputs(["First one."], str(f))
    assert [i.text for i in batch.items] == ["First one.", "Second one.", "Third one."]
    assert batch.items[1].source == f"{f}:3"


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"One.\nTwo.\n")))
    assert [i.text for i in collect_inputs([], "-").items] == ["One.", "Two."]


def test_jsonl_compare_makes_pairs(tmp_path: Path) -> None:
    f = tmp_path / "p.jsonl"
    f.write_text(
        '{"text": "A tired.", "compare": "A wide.", "focus": "it", "candidates": ["a", "b"]}\n'
        '{"text": "Solo."}\n',
        encoding="utf-8",
    )
    batch = collect_inputs([], str(f))
    assert [i.text for i in batch.items] == ["A tired.", "A wide.", "Solo."]
    assert batch.pairs == ((0, 1),)
    assert batch.items[1].focus == "it" and batch.items[1].candidates == ("a", "b")


def test_cli_focus_applies_where_item_has_none(tmp_path: Path) -> None:
    batch = collect_inputs(["x y", "z w"], None, focus="it", candidates=("a",), compare=True)
    assert all(i.focus == "it" and i.candidates == ("a",) for i in batch.items)
    assert batch.pairs == ((0, 1),)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"text": "ok"}\n{"text": \n', "line 2: not valid JSON"),
        ('["text"]\n', "line 1: expected a JSON object"),
        ('{"txt": "typo"}\n', "unknown key(s) txt"),
        ('{"focus": "it"}\n', 'line 1: missing "text"'),
        ('{"text": "a", "candidates": [1]}\n', "candidates"),
    ],
)
def test_jsonl_errors_name_the_line(content: str, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_jsonl("f.jsonl", content)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "no sentences given"),
        (b"# only a comment\n\n", "no sentences given"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "looks binary"),
        (b"caf\xe9 au lait\n", "not UTF-8"),
    ],
)
def test_bad_files(tmp_path: Path, data: bytes, message: str) -> None:
    f = tmp_path / "in.txt"
    f.write_bytes(data)
    with pytest.raises(InputError, match=message):
        collect_inputs([], str(f))


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        collect_inputs([], str(tmp_path / "nope.txt"))
    with pytest.raises(InputError, match="is a folder"):
        collect_inputs([], str(tmp_path))


def test_compare_needs_even_count() -> None:
    with pytest.raises(InputError, match="even number"):
        collect_inputs(["a", "b", "c"], None, compare=True)


def test_split_candidates() -> None:
    assert split_candidates("animal, street") == ("animal", "street")
    with pytest.raises(InputError):
        split_candidates("animal,,street")


def test_jsonl_answer_and_the_pairs_flipped_answer() -> None:
    items, _ = parse_jsonl(
        "w.jsonl",
        '{"text": "A tired.", "compare": "A wide.", "candidates": ["animal", "street"],'
        ' "answer": "animal"}\n'
        '{"text": "B.", "candidates": ["x", "y", "z"], "answer": "z"}\n',
    )
    assert [i.answer for i in items] == ["animal", "street", "z"]


@pytest.mark.parametrize(
    "line",
    [
        '{"text": "A.", "candidates": ["a", "b"], "answer": "c"}',
        '{"text": "A.", "answer": "a"}',
        '{"text": "A.", "candidates": ["a", "b"], "compare_answer": "a"}',
    ],
)
def test_jsonl_answer_must_be_a_candidate(line: str) -> None:
    with pytest.raises(InputError, match=r"^w\.jsonl line 2: \"(compare_)?answer\""):
        parse_jsonl("w.jsonl", '{"text": "ok."}\n' + line + "\n")
