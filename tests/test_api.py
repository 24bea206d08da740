"""The Python API: `reportgen.build_report(...)` for notebooks and scripts.

The CLI is a thin shell over the same code path, so both must give the same bytes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

import reportgen
from reportgen.cli import main
from reportgen.errors import InputError
from reportgen.pipeline import Report

from .conftest import WINOGRAD


@pytest.fixture(scope="module")
def api_report(tiny_bert: Path) -> Report:
    return reportgen.build_report(list(WINOGRAD), model=str(tiny_bert), layer=1, head=2)


def test_build_report_returns_html(api_report: Report) -> None:
    assert isinstance(api_report, Report)
    assert api_report.html.lstrip().lower().startswith("<!doctype html>")
    assert api_report.html.count('class="rg-sentence"') == len(WINOGRAD)
    assert "Layer 1, Head 2" in api_report.html  # the options reached the report
    assert api_report.document.model.layers == 2


def test_cli_and_api_give_identical_bytes(tiny_bert: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.html"
    export = tmp_path / "cli.json"
    args = [*WINOGRAD, "-m", str(tiny_bert), "--layer", "1", "--head", "2", "--title", "Same"]
    result = CliRunner().invoke(main, [*args, "-q", "-o", str(out), "--export-json", str(export)])
    assert result.exit_code == 0, result.output
    report = reportgen.build_report(
        list(WINOGRAD), model=str(tiny_bert), layer=1, head=2, title="Same"
    )
    assert out.read_bytes() == report.html.encode("utf-8")
    api_export = tmp_path / "api.json"
    report.export_json(api_export)
    assert json.loads(api_export.read_text()) == json.loads(export.read_text())


def test_save_writes_the_html(api_report: Report, tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    size = api_report.save(path)
    assert path.read_bytes() == api_report.html.encode("utf-8")
    assert size == path.stat().st_size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]  # no temp file left


def test_save_is_atomic(
    api_report: Report, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails half-way leaves the old report in place and no temp file."""
    path = tmp_path / "report.html"
    path.write_text("old report", encoding="utf-8")

    def half_write(self: Path, data: bytes) -> int:
        with open(self, "wb") as fh:
            fh.write(data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", half_write)
    with pytest.raises(InputError, match="No space left"):
        api_report.save(path)
    monkeypatch.undo()
    assert path.read_text(encoding="utf-8") == "old report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_save_into_missing_folder(api_report: Report, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        api_report.save(tmp_path / "missing" / "report.html")


class _Iframes(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.frames: list[dict[str, str | None]] = []
        self.other: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        (self.frames.append(dict(attrs)) if tag == "iframe" else self.other.append(tag))


def test_repr_html_is_a_sandboxed_iframe(api_report: Report) -> None:
    snippet = api_report._repr_html_()
    parser = _Iframes()
    parser.feed(snippet)
    parser.close()
    # One iframe and nothing else: the report's own tags all stay inside the escaped srcdoc.
    assert len(parser.frames) == 1 and parser.other == []
    frame = parser.frames[0]
    sandbox = (frame.get("sandbox") or "").split()
    assert "allow-scripts" in sandbox and "allow-same-origin" not in sandbox
    assert "allow-modals" in sandbox  # the Print button opens the print dialog
    assert frame.get("srcdoc") == api_report.html  # escaped, then read back exactly
    attr = snippet.split('srcdoc="', 1)[1].rsplit('"', 1)[0]
    assert "<" not in attr and '"' not in attr


def test_build_report_input_errors(tiny_bert: Path) -> None:
    with pytest.raises(InputError):
        reportgen.build_report([], model=str(tiny_bert))
    with pytest.raises(InputError):
        reportgen.build_report([42], model=str(tiny_bert))
    with pytest.raises(TypeError):
        reportgen.build_report(["A."], model=str(tiny_bert), no_such_option=1)


def test_import_is_light() -> None:
    """`import reportgen` (and the CLI's --help) never pulls in torch or transformers."""
    code = "import sys, reportgen; print(sorted({'torch', 'transformers'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_api_refuses_lone_surrogates_with_a_reportgen_error() -> None:
    with pytest.raises(InputError, match="not valid UTF-8"):
        reportgen.build_report(["ok", "bad \ud800"])


# --- the API takes what the CLI takes ---------------------------------------------------


def test_the_lab_through_the_api_equals_the_cli(tiny_bert: Path, tmp_path: Path) -> None:
    report = reportgen.build_report(
        list(WINOGRAD), str(tiny_bert), compare=True, focus="it", candidates=["animal", "street"]
    )
    assert [(p.a, p.b) for p in report.document.pairs] == [(0, 1)]
    assert [s.focus.candidates for s in report.document.sentences if s.focus] == [
        ("animal", "street"),
        ("animal", "street"),
    ]
    out = tmp_path / "cli.html"
    args = [*WINOGRAD, "-m", str(tiny_bert), "--compare", "--focus", "it"]
    result = CliRunner().invoke(main, [*args, "--candidates", "animal,street", "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    assert out.read_text(encoding="utf-8") == report.html
    # "a,b" works as on the command line.
    same = reportgen.build_report(
        list(WINOGRAD), str(tiny_bert), compare=True, focus="it", candidates="animal,street"
    )
    assert same.html == report.html


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"device": "gpu"}, "device 'gpu' is not one of auto, cpu, cuda, mps"),
        ({"dtype": "float64"}, "dtype 'float64' is not one of"),
        ({"layer": 0}, "layer must be a whole number from 1"),
        ({"batch_size": 0}, "batch_size must be"),
        ({"candidates": ["animal"]}, "need a focus word"),
        ({"focus": "she"}, "the word 'she' is not in the sentence"),
        ({"focus": "it", "candidates": ["giraffe"]}, "the word 'giraffe' is not in"),
        ({"compare": True, "focus": "it"}, None),  # fine: checked below with 3 sentences
    ],
)
def test_api_validates_before_loading_the_model(kwargs: dict[str, object], message: str) -> None:
    # A model that does not exist: every error here comes before any loading.
    sentences = [*WINOGRAD, "It rained."] if message is None else list(WINOGRAD)
    with pytest.raises(InputError, match=message or "needs an even number of sentences"):
        reportgen.build_report(sentences, "/no/such/model", **kwargs)  # type: ignore[arg-type]


def test_target_with_an_encoder_only_model_is_a_stated_warning(tiny_bert: Path) -> None:
    lines: list[str] = []
    reportgen.build_report(["Cats sleep."], str(tiny_bert), target="Katzen", log=lines.append)
    assert any("--target is ignored" in line and "BertModel" in line for line in lines)


def test_cli_refuses_candidates_without_focus_and_csv_files(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["Cats sleep.", "--candidates", "cats", "-m", "/no/such"])
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0 and "need a focus word" in result.stderr
    table = tmp_path / "lab.csv"
    table.write_text("text\nCats sleep.\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["-i", str(table), "-m", "/no/such"])
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0 and "is a table" in result.stderr
