"""`--from-export` / `reportgen.from_export`: the page again from an `--export-json` file,
with no model, byte for byte (issue 23, part 3)."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import reportgen
from reportgen.cli import main
from reportgen.errors import InputError
from reportgen.export import LONG_RECORD_VERSION, RECORD_KEY, RECORD_VERSION
from reportgen.pipeline import Report

from .conftest import random_attention

ROOT = Path(__file__).resolve().parents[1]
WINOGRAD_JSONL = ROOT / "sample_inputs" / "winograd.jsonl"
PAIR = (
    "The animal didn't cross the street because it was too tired.",
    "The animal didn't cross the street because it was too wide.",
)
LAB = ["--compare", "--focus", "it", "--candidates", "animal,street"]


def _cli(args: list[str]) -> Any:
    return CliRunner().invoke(main, ["-q", *args])


def _run_and_export(folder: Path, args: list[str]) -> tuple[Path, Path]:
    """A model run's page and export."""
    page, export = folder / "run.html", folder / "run.json"
    result = _cli([*args, "-o", str(page), "--export-json", str(export)])
    assert result.exit_code == 0, result.stderr
    return page, export


def _rerendered(folder: Path, export: Path, *extra: str) -> str:
    page = folder / "again.html"
    result = _cli(["--from-export", str(export), "-o", str(page), *extra])
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    return page.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def winograd(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The seed lab's first two Winograd pairs (the JSONL's own "compare" pairs, focus,
    candidates and answers) on the embedded model."""
    folder = tmp_path_factory.mktemp("winograd")
    source = folder / "winograd.jsonl"
    lines = WINOGRAD_JSONL.read_text(encoding="utf-8").splitlines()[:2]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return _run_and_export(folder, ["-i", str(source), "--title", "Winograd pairs"])


def test_winograd_pair_rerenders_byte_identical(
    winograd: tuple[Path, Path], tmp_path: Path
) -> None:
    page, export = winograd
    data = json.loads(export.read_text())
    assert data[RECORD_KEY]["version"] == RECORD_VERSION
    assert len(data["pairs"]) == 2 and data["pairs"][0]["answer"] is not None
    original = page.read_text(encoding="utf-8")
    assert _rerendered(tmp_path, export) == original
    # Another title or first head changes only what it names.
    retitled = _rerendered(tmp_path, export, "--title", "Same numbers")
    assert "Same numbers" in retitled and retitled != original


def test_from_export_api_returns_the_report(winograd: tuple[Path, Path], tmp_path: Path) -> None:
    page, export = winograd
    report = reportgen.from_export(export)
    assert isinstance(report, Report)
    assert report.html == page.read_text(encoding="utf-8")
    # Its own export is the same document: the re-render loses nothing.
    again = tmp_path / "again.json"
    report.export_json(again)
    assert json.loads(again.read_text()) == json.loads(export.read_text())
    assert "Layer 2, Head 3" in reportgen.from_export(str(export), layer=2, head=3).html


def test_given_attention_rerenders_byte_identical(rng: np.random.Generator, tmp_path: Path) -> None:
    tokens = ["[CLS]", "the", "animal", "was", "tired", ".", "[SEP]"]
    report = reportgen.from_attention(random_attention(rng, (3, 2, 7, 7)), tokens, title="Given")
    export = tmp_path / "given.json"
    report.export_json(export)
    assert reportgen.from_export(export).html == report.html


@pytest.mark.parametrize(
    ("family", "args"),
    [
        # A decoder asks the pair's question at the first difference and the last token.
        ("gpt2", [*PAIR, *LAB, "--measures", "all"]),
        ("t5", [*PAIR, *LAB, "--target", "It was tired.", "--qk"]),
        ("bart", [PAIR[0], "--focus", "it", "--candidates", "animal,street"]),
    ],
)
def test_causal_and_encoder_decoder_rerender_byte_identical(
    family: str, args: list[str], tiny_model: Callable[..., Path], tmp_path: Path
) -> None:
    page, export = _run_and_export(tmp_path, [*args, "-m", str(tiny_model(family))])
    assert _rerendered(tmp_path, export) == page.read_text(encoding="utf-8")
    again = tmp_path / "again.json"
    reportgen.from_export(export).export_json(again)
    assert json.loads(again.read_text()) == json.loads(export.read_text())


@pytest.mark.gguf
def test_gguf_causal_report_rerenders_byte_identical(tmp_path: Path) -> None:
    from .test_gguf import PROMPT, _real_smollm2

    page, export = _run_and_export(tmp_path, [PROMPT, "-m", str(_real_smollm2())])
    data = json.loads(export.read_text())
    assert data["model"]["kind"] == "causal" and data["items"][0]["next_tokens"]
    assert _rerendered(tmp_path, export) == page.read_text(encoding="utf-8")


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        target: Any = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return edit


def _drop(path: tuple[Any, ...]) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        target: Any = data
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return edit


def _drop_layer(data: dict[str, Any]) -> None:
    data["items"][0]["attention"].pop()


def _drop_display(data: dict[str, Any]) -> None:
    data[RECORD_KEY]["items"][1]["maps"][0]["query"]["display"].pop()


def _negative(data: dict[str, Any]) -> None:
    row = data["items"][0]["attention"][1][4][2]
    row[0], row[1] = row[0] + row[1] + 0.25, -0.25


def _row_off(data: dict[str, Any]) -> None:
    row = data["items"][0]["attention"][0][0][0]
    row[:] = [v * 2 for v in row]


def _short_row(data: dict[str, Any]) -> None:
    data["items"][2]["attention"][0][0].pop()


def _other_token(data: dict[str, Any]) -> None:
    data["items"][0]["tokens"][3] = "zebra"


def _long(data: dict[str, Any]) -> None:
    data[RECORD_KEY] = {"version": RECORD_VERSION, "long": True}


BAD_EXPORTS: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("no record", _drop((RECORD_KEY,)), f"{RECORD_KEY}: missing"),
    ("other version", _set((RECORD_KEY, "version"), 99), f"{RECORD_KEY}.version: 99"),
    (
        "old long export",
        _long,
        f"{RECORD_KEY}.version: 1; this reportgen reads long-input exports of version 2",
    ),
    ("layers", _drop_layer, "items[0].attention: 5 layers, the model record says 6"),
    ("heads", _set((RECORD_KEY, "model", "heads"), 8), "model.heads: not the"),
    (
        "display",
        _drop_display,
        f"{RECORD_KEY}.items[1].maps[0].query.display: 15 entries, the tokens are 16",
    ),
    ("token", _other_token, "items[0].tokens: not the tokens of"),
    ("ragged", _short_row, "items[2].attention: expected a 4-dimensional array"),
    (
        "negative",
        _negative,
        "items[0].attention: layer 2 [1], head 5 [4], row 3 [2] (token 'animal') holds a "
        "negative weight",
    ),
    ("row sum", _row_off, "items[0].attention: layer 1 [0], head 1 [0], row 1 [0]"),
    (
        "layer type",
        _set((RECORD_KEY, "options", "layer"), "5"),
        f"{RECORD_KEY}.options.layer: expected a whole number, got a str",
    ),
    ("kind", _set((RECORD_KEY, "model", "kind"), "rnn"), f"{RECORD_KEY}.model.kind: 'rnn'"),
    ("dtype", _drop((RECORD_KEY, "options", "dtype")), f"{RECORD_KEY}.options.dtype: missing"),
    ("missing input", _drop((RECORD_KEY, "items", 0, "input")), "items[0].input: missing"),
    (
        "focus word",
        _set((RECORD_KEY, "items", 1, "input", "focus"), "zebra"),
        f"{RECORD_KEY}.items[1].input: the word 'zebra' is not in the sentence",
    ),
    (
        "answer",
        _set((RECORD_KEY, "items", 0, "input", "answer"), "zebra"),
        f"{RECORD_KEY}.items[0].input.answer: 'zebra' is not one of the candidates",
    ),
    (
        "map id",
        _set((RECORD_KEY, "items", 0, "maps", 0, "id"), "cross"),
        f"items[0].attention_map: not {RECORD_KEY}.items[0].maps[0].id ('cross')",
    ),
    ("pair twice", _set((RECORD_KEY, "pairs", 1), [0, 1]), f"{RECORD_KEY}.pairs[1]: [0, 1] is not"),
    ("items type", _set(("items",), {}), "items: expected a list, got a dict"),
    (
        "next tokens",
        _set(("items", 0, "next_tokens"), [{"token": "x", "probability": 2}]),
        "items[0].next_tokens[0].probability: 2 is not a probability",
    ),
    (
        "pairs",
        _set((RECORD_KEY, "pairs", 1), [2, 9]),
        f"{RECORD_KEY}.pairs[1]: expected [a, b] item indices",
    ),
    (
        "query",
        _set((RECORD_KEY, "queries", 0, 0, "positions_a"), [40]),
        f"{RECORD_KEY}.queries[0][0].positions_a[0]: 40 is not a token position",
    ),
]


@pytest.mark.parametrize(
    ("case", "edit", "message"), BAD_EXPORTS, ids=[c for c, _, _ in BAD_EXPORTS]
)
def test_bad_export_is_one_line_naming_the_field(
    winograd: tuple[Path, Path],
    tmp_path: Path,
    case: str,
    edit: Callable[[dict[str, Any]], None],
    message: str,
) -> None:
    data = copy.deepcopy(_winograd_data(winograd[1]))
    edit(data)
    _refused_in_one_line(data, tmp_path, case, message)


def _refused_in_one_line(data: dict[str, Any], tmp_path: Path, case: str, message: str) -> None:
    """The CLI and the API refuse the edited export in one line naming the field, and
    write nothing."""
    bad = tmp_path / f"{case.replace(' ', '-')}.json"
    # JSON's own way to an infinity (a number too large for a float), as a hand edit may.
    bad.write_text(json.dumps(data).replace(f'"{INF}"', "1e999"), encoding="utf-8")
    out = tmp_path / "never.html"
    result = _cli(["--from-export", str(bad), "-o", str(out)])
    assert result.exit_code != 0
    assert "Traceback" not in result.output + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert message in lines[0]
    assert not out.exists()
    with pytest.raises(InputError, match="^" + re.escape(lines[0].removeprefix("Error: ")) + "$"):
        reportgen.from_export(bad)


_DATA: dict[Path, dict[str, Any]] = {}
INF = "__infinity__"  # written as 1e999, which JSON reads as an infinity


def _winograd_data(path: Path) -> dict[str, Any]:
    if path not in _DATA:
        _DATA[path] = json.loads(path.read_text())
    return _DATA[path]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json {", "is not JSON (line 1"),
        ('{"items": [], "x": NaN}', "holds NaN, which an export never writes"),
        ("[1, 2]", "the export: expected an object, got a list"),
    ],
)
def test_files_that_are_no_export(tmp_path: Path, content: str, message: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content, encoding="utf-8")
    result = _cli(["--from-export", str(bad), "-o", str(tmp_path / "out.html")])
    assert result.exit_code != 0
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert not (tmp_path / "out.html").exists()


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["-m", "bert-base-uncased"], "-m/--model does not go with --from-export"),
        (["A sentence."], "SENTENCE does not go with --from-export"),
        (["-i", "x.txt", "--focus", "it", "--dtype", "float16"], "-i/--input, --focus, --dtype do"),
        (["--atlas"], "--atlas does not go"),
    ],
)
def test_model_options_are_refused_in_one_line(
    winograd: tuple[Path, Path], tmp_path: Path, args: list[str], named: str
) -> None:
    out = tmp_path / "out.html"
    result = _cli(["--from-export", str(winograd[1]), "-o", str(out), *args])
    assert result.exit_code == 2
    assert named in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_output_may_not_overwrite_the_export(winograd: tuple[Path, Path], tmp_path: Path) -> None:
    export = tmp_path / "copy.json"
    export.write_bytes(winograd[1].read_bytes())
    result = _cli(["--from-export", str(export), "-o", str(export)])
    assert result.exit_code != 0 and len(result.stderr.strip().splitlines()) == 1
    assert export.read_bytes() == winograd[1].read_bytes()


def test_rows_may_be_off_by_what_the_runs_dtype_rounds(
    winograd: tuple[Path, Path], tmp_path: Path
) -> None:
    """A bfloat16 run's rows sum to 1 only within its few bits: its export re-renders."""
    data = copy.deepcopy(_winograd_data(winograd[1]))
    row = data["items"][0]["attention"][0][0][0]
    row[0] += 0.01
    path = tmp_path / "bf16.json"
    for dtype, ok in (("float32", False), ("bfloat16", True)):
        data[RECORD_KEY]["options"]["dtype"] = dtype
        path.write_text(json.dumps(data), encoding="utf-8")
        if ok:
            assert isinstance(reportgen.from_export(path), Report)
        else:
            with pytest.raises(InputError, match=r"items\[0\]\.attention: layer 1 \[0\].*sums to"):
                reportgen.from_export(path)


def test_half_precision_given_attention_rerenders(rng: np.random.Generator, tmp_path: Path) -> None:
    attention = random_attention(rng, (2, 2, 5, 5)).astype(np.float16)
    attention[0, 0, 0, 0] += np.float16(0.004)  # within what float16 rounds a row to
    report = reportgen.from_attention(attention, ["[CLS]", "it", "was", "tired", "[SEP]"])
    export = tmp_path / "half.json"
    report.export_json(export)
    assert json.loads(export.read_text())[RECORD_KEY]["options"]["dtype"] == "float16"
    assert reportgen.from_export(export).html == report.html


# --- long-input exports ------------------------------------------------------------------


@pytest.fixture(scope="module")
def long_llama(
    tiny_model: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """The tiny Llama over ~300 tokens of prose under a small page budget: the long page
    through the real plan (2 x 4 x 300^2 values over the budget, its reduced view under
    it), with blocks of 2-3 tokens and exact rows at the focus word and the last token."""
    from transformers import AutoTokenizer

    from reportgen import memory

    from .test_streaming import _long_text

    folder = tiny_model("llama", context=4096)
    base = tmp_path_factory.mktemp("long-llama")
    source = base / "long.txt"
    source.write_text(_long_text(AutoTokenizer.from_pretrained(folder), 300) + "\n")
    args = ["-i", str(source), "-m", str(folder), "--focus", "street", "--title", "Long"]
    with pytest.MonkeyPatch.context() as m:
        m.setattr(memory, "PAGE_BUDGET_VALUES", 200_000)
        return _run_and_export(base, args)


def test_a_long_causal_export_rerenders_byte_identical(
    long_llama: tuple[Path, Path], tmp_path: Path
) -> None:
    page, export = long_llama
    data = json.loads(export.read_text())
    assert data[RECORD_KEY]["long"] is True and data[RECORD_KEY]["version"] == LONG_RECORD_VERSION
    item = data["items"][0]
    assert len(item["overview"]["query_blocks"]) == 128 and len(item["tokens"]) >= 300
    assert len(item["rows"]) >= 2 and item["causal"] and item["next_tokens"]
    original = page.read_text(encoding="utf-8")
    assert 'class="rg-sentence rg-long"' in original
    assert _rerendered(tmp_path, export) == original
    # Its own export is the same file, byte for byte: the re-render loses nothing.
    report = reportgen.from_export(export)
    assert report.html == original
    again = tmp_path / "again.json"
    report.export_json(again)
    assert again.read_bytes() == export.read_bytes()
    # Another title or first head changes only what it names.
    retitled = _rerendered(tmp_path, export, "--title", "Same numbers", "--layer", "2")
    assert "Same numbers" in retitled and retitled != original


def test_the_long_export_keeps_each_row_summing_to_one(long_llama: tuple[Path, Path]) -> None:
    """Rounded to 1e-6 by largest remainder (export.long_precision): the page is built from
    these values, and a row still sums to 1 where plain rounding would drift."""
    item = json.loads(long_llama[1].read_text())["items"][0]
    for values in (item["overview"]["attention"], *(r["attention"] for r in item["rows"])):
        arr = np.asarray(values)
        assert np.array_equal(np.round(arr, 6), arr)
        np.testing.assert_allclose(arr.sum(-1), 1.0, atol=2e-6)


def _forced_long(monkeypatch: pytest.MonkeyPatch) -> None:
    from reportgen import memory

    monkeypatch.setattr(memory, "check_input", lambda *_: True)  # as if over the budget


@pytest.mark.parametrize(
    ("family", "args"),
    [
        # An encoder-decoder: the encoder's map, the decoder's and the cross attention.
        ("t5", [PAIR[0], "--focus", "street", "--target", "It was tired."]),
        ("bert", [PAIR[0], "--pair", "It was tired.", "--layer", "2", "--head", "3"]),
    ],
)
def test_long_encoder_decoder_and_encoder_exports_rerender_byte_identical(
    family: str,
    args: list[str],
    tiny_model: Callable[..., Path],
    tiny_bert: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _forced_long(monkeypatch)
    folder = tiny_bert if family == "bert" else tiny_model(family)
    page, export = _run_and_export(tmp_path, [*args, "-m", str(folder)])
    data = json.loads(export.read_text())
    assert data[RECORD_KEY]["long"] is True
    if family == "t5":
        assert {"decoder_attention", "cross_attention"} <= set(data["items"][0])
    assert _rerendered(tmp_path, export) == page.read_text(encoding="utf-8")
    again = tmp_path / "again.json"
    reportgen.from_export(export).export_json(again)
    assert again.read_bytes() == export.read_bytes()


@pytest.mark.gguf
def test_gguf_long_export_rerenders_byte_identical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from .test_gguf import PROMPT, _real_smollm2

    _forced_long(monkeypatch)
    page, export = _run_and_export(tmp_path, [PROMPT, "-m", str(_real_smollm2())])
    data = json.loads(export.read_text())
    assert data[RECORD_KEY]["long"] is True and data["model"]["layers"] == 30
    assert _rerendered(tmp_path, export) == page.read_text(encoding="utf-8")


def test_submission_from_a_long_export_is_refused_in_one_line(
    long_llama: tuple[Path, Path], tmp_path: Path
) -> None:
    out, sub = tmp_path / "out.html", tmp_path / "sub"
    result = _cli(["--from-export", str(long_llama[1]), "-o", str(out), "--submission", str(sub)])
    assert result.exit_code != 0 and result.stderr.count("\n") == 1
    assert "a long-input export does not keep" in result.stderr
    assert not out.exists() and not sub.exists()


def _long_item(data: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = data["items"][0]
    return item


def _fewer_overview_rows(data: dict[str, Any]) -> None:
    for layer in _long_item(data)["overview"]["attention"]:
        for head in layer:
            head.pop()


def _short_rows(data: dict[str, Any]) -> None:
    for layer in _long_item(data)["rows"][0]["attention"]:
        for head in layer:
            head.pop()


def _infinite(data: dict[str, Any]) -> None:
    _long_item(data)["rows"][1]["attention"][1][2][5] = INF


def _negative_pooled(data: dict[str, Any]) -> None:
    row = _long_item(data)["overview"]["attention"][0][1][3]
    row[0], row[1] = row[0] + row[1] + 0.25, -0.25


def _pooled_off(data: dict[str, Any]) -> None:
    row = _long_item(data)["overview"]["attention"][1][0][2]
    row[:] = [v * 2 for v in row]


def _gap_in_blocks(data: dict[str, Any]) -> None:
    _long_item(data)["overview"]["key_blocks"][1][0] += 1


def _last_row_gone(data: dict[str, Any]) -> None:
    _long_item(data)["rows"].pop()


def _rows_reversed(data: dict[str, Any]) -> None:
    _long_item(data)["rows"].reverse()


LONG_ITEM = ("items", 0)
LONG_RECORD = (RECORD_KEY, "items", 0)
LONG_BAD_EXPORTS: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    (
        "overview shape",
        _fewer_overview_rows,
        "items[0].overview.attention: 127 query blocks, the query_blocks are 128",
    ),
    ("row length", _short_rows, "items[0].rows[0].attention: "),
    (
        "position",
        _set((*LONG_ITEM, "rows", 0, "position"), 4000),
        "items[0].rows[0].position: 4000 is not a token position (0-",
    ),
    (
        "non-finite",
        _infinite,
        "items[0].rows[1].attention: holds a value that is not a finite number",
    ),
    (
        "other version",
        _set((RECORD_KEY, "version"), 99),
        f"{RECORD_KEY}.version: 99; this reportgen reads long-input exports of version 2",
    ),
    ("negative", _negative_pooled, "items[0].overview.attention[0][1][3][1]: -0.25 is a negative"),
    ("row sum", _pooled_off, "items[0].overview.attention[1][0][2]: the row sums to 2"),
    ("blocks", _gap_in_blocks, "items[0].overview.key_blocks[1]: expected ["),
    ("last row", _last_row_gone, "items[0].rows: the last row is not the last position's"),
    ("row order", _rows_reversed, "items[0].rows[1].position: "),
    (
        "row token",
        _set((*LONG_ITEM, "rows", 0, "token"), "zebra"),
        "items[0].rows[0].token: 'zebra' is not token ",
    ),
    (
        "share",
        _set((*LONG_ITEM, "first_position_share", 1, 2), 1.5),
        "items[0].first_position_share[1][2]: 1.5 is not from 0 to 1",
    ),
    (
        "entropy",
        _set((*LONG_ITEM, "entropy"), [[0.5]]),
        "items[0].entropy: 1 layers, the model record says 2",
    ),
    ("layers", _set((RECORD_KEY, "model", "layers"), 3), "model.layers: not the"),
    ("tokens", _set((*LONG_RECORD, "maps", 0, "query", "tokens", 3), "zebra"), "items[0].tokens"),
    (
        "map id",
        _set((*LONG_ITEM, "attention_map"), "cross"),
        f"items[0].attention_map: not {RECORD_KEY}.items[0].maps[0].id ('self')",
    ),
    ("truncated", _set((*LONG_ITEM, "truncated"), True), "items[0].truncated: not "),
    ("options", _drop((RECORD_KEY, "options")), f"{RECORD_KEY}.options: missing"),
    ("pairs", _set(("pairs",), [{"a_index": 0}]), "pairs: a long-input export has no minimal"),
    (
        "layer",
        _set((RECORD_KEY, "options", "layer"), 7),
        "layer 7",
    ),
]


@pytest.mark.parametrize(
    ("case", "edit", "message"), LONG_BAD_EXPORTS, ids=[c for c, _, _ in LONG_BAD_EXPORTS]
)
def test_bad_long_export_is_one_line_naming_the_field(
    long_llama: tuple[Path, Path],
    tmp_path: Path,
    case: str,
    edit: Callable[[dict[str, Any]], None],
    message: str,
) -> None:
    data = copy.deepcopy(_winograd_data(long_llama[1]))
    edit(data)
    _refused_in_one_line(data, tmp_path, case, message)
