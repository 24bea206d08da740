"""cli: options, one-line errors with non-zero exits, no half-written reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from reportgen.cli import main

from .conftest import WINOGRAD


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_help_has_two_worked_examples() -> None:
    code, out, _ = run("--help")
    assert code == 0
    assert out.count("reportgen ") >= 2 and "Examples:" in out
    for flag in (
        "--input",
        "--output",
        "--model",
        "--layer",
        "--head",
        "--title",
        "--export-json",
        "--version",
    ):
        assert flag in out


def test_version() -> None:
    code, out, _ = run("--version")
    assert code == 0 and "reportgen, version 0.1.0" in out


def test_report_and_export(tiny_bert: Path, tmp_path: Path) -> None:
    out, data = tmp_path / "r.html", tmp_path / "d.json"
    code, _, err = run(
        WINOGRAD[0],
        "-m",
        str(tiny_bert),
        "-o",
        str(out),
        "--export-json",
        str(data),
        "--title",
        "Lab 3",
    )
    assert code == 0, err
    assert err.strip().splitlines()[-1].startswith(f"wrote {out} (")
    exported = json.loads(data.read_text())
    assert exported["model"]["layers"] == 2 and exported["model"]["heads"] == 4
    item = exported["items"][0]
    assert item["text"] == WINOGRAD[0] and item["tokens"][0] == "[CLS]"
    att = np.array(item["attention"])
    assert att.shape == (2, 4, len(item["tokens"]), len(item["tokens"]))
    assert "<title>Lab 3 · reportgen</title>" in out.read_text()


def test_same_input_gives_byte_identical_reports(tiny_bert: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a.html", tmp_path / "b.html"
    for path in (a, b):
        assert run(*WINOGRAD, "-m", str(tiny_bert), "-o", str(path))[0] == 0
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["-i", "missing.txt"], 2, "input file 'missing.txt' does not exist"),
        (["-i", "empty.txt"], 2, "no sentences given"),
        (["x", "--layer", "3"], 2, "--layer 3 is out of range: this model has layers 1-2"),
        (["x", "--head", "9"], 2, "--head 9 is out of range: this model has heads 1-4"),
        (["x", "--layer", "0"], 2, "0 is not in the range x>=1"),
        (["x", "--device", "tpu"], 2, "'tpu' is not one of"),
    ],
)
def test_bad_invocations(
    tiny_bert: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    code: int,
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty.txt").write_text("\n# nothing\n")
    got, _, err = run(*args, "-m", str(tiny_bert))
    assert got == code
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "report.html").exists()


def test_uncached_model_in_a_real_process(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "reportgen",
            "hello",
            "-m",
            "bert-base-uncased-not-cached",
            "-o",
            str(tmp_path / "r.html"),
        ],
        capture_output=True,
        text=True,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("Error: model 'bert-base-uncased-not-cached' is not a local folder")
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "r.html").exists()


def test_gguf_without_the_extra_gives_the_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reportgen import gguf

    model = tmp_path / "x.gguf"
    model.write_bytes(gguf.GGUF_MAGIC + b"\x03\x00\x00\x00 not a real model")
    monkeypatch.setenv("REPORTGEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(sys.modules, "gguf", None)  # as if `pip install reportgen[gguf]` never ran
    code, _, err = run("hello", "-m", str(model), "-o", str(tmp_path / "r.html"))
    assert code != 0
    assert err.strip().splitlines()[-1] == f"Error: {gguf.GGUF_INSTALL_HINT}"
    assert "Traceback" not in err and not (tmp_path / "r.html").exists()


def test_cached_hub_id_loads_offline(tiny_bert: Path, tmp_path: Path) -> None:
    """`-m org/name` works from a warm Hugging Face cache with no network."""
    revision = "0" * 40
    repo = tmp_path / "hub" / "models--test-org--tiny-bert"
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    for f in tiny_bert.iterdir():
        (snapshot / f.name).write_bytes(f.read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    out = tmp_path / "r.html"
    env = {"HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "reportgen",
            "hello world",
            "-m",
            "test-org/tiny-bert",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert "<code>test-org/tiny-bert</code>" in out.read_text()


def test_help_does_not_import_torch() -> None:
    code = "import sys, reportgen.cli; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.split() == ["False", "False"]


def test_quiet_prints_nothing_on_success(tiny_bert: Path, tmp_path: Path) -> None:
    code, out, err = run("hello", "-m", str(tiny_bert), "-o", str(tmp_path / "r.html"), "-q")
    assert code == 0 and out == "" and err == ""


def test_progress_bar_only_on_a_terminal(tiny_bert: Path, tmp_path: Path) -> None:
    from reportgen.cli import _progress_printer

    # CliRunner's stderr is not a terminal: many sentences, still no bar.
    many = [f"Sentence number {i}." for i in range(12)]
    code, _, err = run(*many, "-m", str(tiny_bert), "-o", str(tmp_path / "r.html"))
    assert code == 0 and "[#" not in err
    with CliRunner().isolation() as streams:
        bar = _progress_printer()
        bar(6, 12)
        bar(12, 12)
        printed = streams[1].getvalue().decode()
    assert "6/12 sentences" in printed and printed.endswith("12/12 sentences\n")


def test_quiet_silences_third_party_progress_bars(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """transformers' GGUF conversion draws a bare tqdm bar on stderr; -q hides it."""
    import reportgen.pipeline
    from reportgen.errors import ModelError

    def convert(*args: object, **kwargs: object) -> None:
        from tqdm.auto import tqdm

        for _ in tqdm(range(3), desc="Converting and de-quantizing GGUF tensors..."):
            pass
        raise ModelError("stop here")

    monkeypatch.setattr(reportgen.pipeline, "build_report", convert)
    code, _, err = run("-q", "Cats sleep.", "-o", str(tmp_path / "r.html"))
    assert code == 1 and err == "Error: stop here\n"  # the error, and nothing else
    code, _, err = run("Cats sleep.", "-o", str(tmp_path / "r.html"))
    assert "Converting" in err  # without -q the bar shows
