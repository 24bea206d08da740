"""Bad invocations and interrupts: a one-line error, a non-zero exit, no traceback,
and no report written or changed (an older report at the output path stays as it was).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from reportgen.cli import main
from reportgen.render import write_atomic

from .conftest import signal_mid_run

OLD_REPORT = b"<!DOCTYPE html><title>an older report</title>\n"
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@dataclass
class Workspace:
    """A scratch folder, the tiny model and an output folder holding an older report."""

    tmp: Path
    model: Path
    monkeypatch: pytest.MonkeyPatch
    cleanups: list[Callable[[], object]] = field(default_factory=list)

    @property
    def out_dir(self) -> Path:
        return self.tmp / "out"

    @property
    def report(self) -> Path:
        return self.out_dir / "report.html"

    def file(self, name: str, data: bytes | str) -> str:
        path = self.tmp / name
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        return str(path)

    def model_copy(self, name: str, keep: Callable[[str], bool]) -> str:
        folder = self.tmp / name
        folder.mkdir()
        for item in self.model.iterdir():
            if keep(item.name):
                shutil.copy(item, folder / item.name)
        return str(folder)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes: a temp file left behind shows up here."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# ---------- the cases: each returns the arguments (after setting up what it needs) ----------


def _unreadable(w: Workspace) -> list[str]:
    path = Path(w.file("locked.txt", "a sentence\n"))
    if IS_ROOT:
        # root reads a chmod 000 file anyway: simulate the PermissionError that the
        # read would raise for anyone else.
        real = Path.read_bytes

        def read_bytes(self: Path) -> bytes:
            if self == path:
                raise PermissionError(13, "Permission denied", str(self))
            return real(self)

        w.monkeypatch.setattr(Path, "read_bytes", read_bytes)
    else:
        path.chmod(0)
        w.cleanups.append(lambda: path.chmod(0o644))
    return ["-i", str(path)]


def _read_only_folder(w: Workspace) -> list[str]:
    if IS_ROOT:
        # chmod does not stop root; the immutable flag does (where chattr works).
        chattr = shutil.which("chattr")
        if chattr is None:
            pytest.skip("running as root and chattr is missing: cannot make a folder read-only")
        done = subprocess.run([chattr, "+i", str(w.out_dir)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"running as root and chattr +i failed: {done.stderr.decode().strip()}")
        w.cleanups.append(lambda: subprocess.run([chattr, "-i", str(w.out_dir)], check=True))
    else:
        w.out_dir.chmod(0o555)
        w.cleanups.append(lambda: w.out_dir.chmod(0o755))
    return ["hello", "-o", str(w.report)]


def _long_sentence(w: Workspace) -> list[str]:
    return [" ".join(["word"] * 300), "--no-truncate"]


Setup = Callable[[Workspace], list[str]]
CASES: list[tuple[str, Setup, int, str]] = [
    # Input files.
    ("missing file", lambda w: ["-i", str(w.tmp / "missing.txt")], 2, "does not exist"),
    (
        "input name too long",
        lambda w: ["-i", str(w.tmp / ("i" * 300 + ".txt"))],
        2,
        "File name too long",
    ),
    ("unreadable file", _unreadable, 2, "cannot read input file"),
    ("folder as input", lambda w: ["-i", str(w.tmp)], 2, "is a folder, not a file"),
    (
        "binary file",
        lambda w: ["-i", w.file("model.bin", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")],
        2,
        "looks binary",
    ),
    (
        "non-UTF-8 file",
        lambda w: ["-i", w.file("latin1.txt", "café au lait\n".encode("latin-1"))],
        2,
        "is not UTF-8 text (bad byte at offset 3)",
    ),
    (
        "malformed JSONL",
        lambda w: ["-i", w.file("bad.jsonl", '{"text": "one"}\n\n{"text": "two"\n')],
        2,
        "bad.jsonl line 3: not valid JSON",
    ),
    (
        "JSONL line not an object",
        lambda w: ["-i", w.file("list.jsonl", '{"text": "one"}\n["two"]\n')],
        2,
        "list.jsonl line 2: expected a JSON object",
    ),
    (
        "JSONL unknown key",
        lambda w: ["-i", w.file("key.jsonl", '{"text": "one", "txet": "two"}\n')],
        2,
        "key.jsonl line 1: unknown key(s) txet",
    ),
    (
        "JSONL lone surrogate",
        lambda w: ["-i", w.file("sur.jsonl", '{"text": "a \\ud800 b"}\n')],
        2,
        "sur.jsonl line 1: not valid UTF-8 text",
    ),
    ("empty file", lambda w: ["-i", w.file("empty.txt", b"")], 2, "no sentences given"),
    (
        "only comments",
        lambda w: ["-i", w.file("comments.txt", "\n# nothing here\n   \n")],
        2,
        "no sentences given",
    ),
    ("no sentences at all", lambda w: [], 2, "no sentences given"),
    ("blank sentence argument", lambda w: ["   "], 2, "sentence argument 1 is empty"),
    ("undecodable argument", lambda w: ["caf\udce9"], 2, "argument 1: not valid UTF-8 text"),
    # Option values.
    ("unknown device", lambda w: ["x", "--device", "tpu"], 2, "Invalid value for '--device'"),
    ("unknown dtype", lambda w: ["x", "--dtype", "int3"], 2, "Invalid value for '--dtype'"),
    ("layer zero", lambda w: ["x", "--layer", "0"], 2, "Invalid value for '--layer'"),
    ("batch size zero", lambda w: ["x", "--batch-size", "0"], 2, "'--batch-size'"),
    ("layer beyond the model", lambda w: ["x", "--layer", "9"], 2, "--layer 9 is out of range"),
    ("too long with --no-truncate", _long_sentence, 2, "the model takes at most 128"),
    (
        "focus word not in sentence",
        lambda w: ["the dog", "--focus", "cat", "--candidates", "dog,the"],
        2,
        "the word 'cat' is not in the sentence",
    ),
    # Output paths.
    (
        "output in a missing folder",
        lambda w: ["x", "-o", str(w.tmp / "nope" / "r.html")],
        2,
        "Invalid value for '-o' / '--output': folder",
    ),
    (
        "export in a missing folder",
        lambda w: ["x", "--export-json", str(w.tmp / "nope" / "d.json")],
        2,
        "Invalid value for '--export-json'",
    ),
    ("output is a folder", lambda w: ["x", "-o", str(w.out_dir)], 2, "is a directory"),
    ("output in a read-only folder", _read_only_folder, 2, "cannot write to"),
    (
        "output name too long",
        lambda w: ["x", "-o", str(w.out_dir / ("r" * 300 + ".html"))],
        2,
        "File name too long",
    ),
    # Models.
    (
        "uncached model id",
        lambda w: ["x", "-m", "no-such-org/no-such-model"],
        1,
        "is not a local folder, not in the Hugging Face cache",
    ),
    ("model path that does not exist", lambda w: ["x", "-m", "./nope"], 2, "no such file"),
    (
        "model folder without a tokenizer",
        lambda w: ["x", "-m", w.model_copy("no-tok", lambda n: not n.startswith("tokenizer"))],
        1,
        "has no tokenizer files",
    ),
    (
        "model folder without config.json",
        lambda w: ["x", "-m", w.model_copy("no-cfg", lambda n: n != "config.json")],
        1,
        "has no config.json",
    ),
    (
        "model folder with corrupt config.json",
        lambda w: ["x", "-m", _replaced(w, "config.json", b"{not json")],
        1,
        "cannot read the configuration of model",
    ),
    (
        "model config with a wrong field type",
        lambda w: ["x", "-m", _replaced(w, "config.json", _bad_heads(w))],
        1,
        "cannot read the configuration of model",
    ),
    (
        "model folder with corrupt tokenizer.json",
        lambda w: ["x", "-m", _replaced(w, "tokenizer.json", b"{}")],
        1,
        "cannot load a tokenizer for model",
    ),
    (
        "model folder with corrupt weights",
        lambda w: ["x", "-m", _replaced(w, "model.safetensors", b"not a safetensors file")],
        1,
        "with readable attention: Error while deserializing header",
    ),
]


def _replaced(w: Workspace, name: str, data: bytes) -> str:
    """A copy of the tiny model with one file's bytes replaced."""
    folder = Path(w.model_copy("corrupt", lambda n: n != name))
    (folder / name).write_bytes(data)
    return str(folder)


def _bad_heads(w: Workspace) -> bytes:
    config = json.loads((w.model / "config.json").read_text(encoding="utf-8"))
    config["num_attention_heads"] = "four"
    return json.dumps(config).encode()


def _args(w: Workspace, args: list[str]) -> list[str]:
    if "-m" not in args:
        args = [*args, "-m", str(w.model)]
    if "-o" not in args:
        args = [*args, "-o", str(w.report)]
    return args


def assert_one_line_error(code: int, stderr: str, expected_code: int, message: str) -> None:
    assert code == expected_code, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert lines, "no error message"
    assert lines[-1].startswith("Error: "), stderr
    assert message in lines[-1], stderr
    assert sum(line.startswith("Error") for line in lines) == 1, stderr


@pytest.mark.parametrize(
    ("setup", "code", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_invocation(
    tiny_bert: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    setup: Setup,
    code: int,
    message: str,
) -> None:
    w = Workspace(tmp_path, tiny_bert, monkeypatch)
    w.out_dir.mkdir()
    w.report.write_bytes(OLD_REPORT)
    monkeypatch.chdir(tmp_path)
    try:
        args = _args(w, setup(w))
        before = snapshot(w.out_dir)
        result = CliRunner().invoke(main, args)
        # A bug would surface as an exception that CliRunner caught, not SystemExit.
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(
            result.exception
        )
        assert_one_line_error(result.exit_code, result.stderr, code, message)
        assert result.stdout == ""
        assert snapshot(w.out_dir) == before
        assert not (tmp_path / "nope").exists() and not (tmp_path / "report.html").exists()
    finally:
        for cleanup in reversed(w.cleanups):
            cleanup()


# ---------- real processes ----------


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", PYTHONUNBUFFERED="1")
    return env


def test_undecodable_argv_bytes_in_a_real_process(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    out.write_bytes(OLD_REPORT)
    proc = subprocess.run(
        [sys.executable.encode(), b"-m", b"reportgen", b"caf\xe9", b"-o", bytes(out)],
        capture_output=True,
        env=_env(),
        timeout=120,
    )
    stderr = proc.stderr.decode("utf-8", "replace")
    assert_one_line_error(proc.returncode, stderr, 2, "argument 1: not valid UTF-8 text")
    assert out.read_bytes() == OLD_REPORT
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_during_extraction_leaves_the_old_report(
    tiny_bert: Path, tmp_path: Path, sig: int
) -> None:
    """SIGINT (or SIGTERM, its twin) to a real process while it extracts: exit 130, one
    line, old report intact, no temporary file."""
    sentences = tmp_path / "many.jsonl"
    # ~27 tokens: 4,000 of them stay under the page budget (memory.PAGE_BUDGET_VALUES).
    line = "the animal did not cross the street because " * 3
    sentences.write_text(
        "".join(json.dumps({"text": f"{i} {line}"}) + "\n" for i in range(4000)), encoding="utf-8"
    )
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    report = out_dir / "report.html"
    report.write_bytes(OLD_REPORT)
    code, rest, stderr = signal_mid_run(
        ["-i", str(sentences), "-m", str(tiny_bert), "-o", str(report)]
        + ["--batch-size", "2", "--max-sentences", "4000"],
        _env(),
        "extracting attention",
        sig,
        pause=0.5,  # inside the forward passes (torch, tokenizers), not before them
    )
    assert code == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert stderr.strip().splitlines()[-1] == "reportgen: interrupted; no report written"
    assert rest == ""
    assert report.read_bytes() == OLD_REPORT
    assert sorted(p.name for p in out_dir.iterdir()) == ["report.html"]


def test_interrupt_while_writing_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C in the middle of the write: the temp file goes, the old report stays."""
    target = tmp_path / "report.html"
    target.write_bytes(OLD_REPORT)

    def interrupted(self: Path, data: bytes) -> int:
        with open(self, "wb") as f:
            f.write(data[:10])
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_bytes", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, "<!DOCTYPE html>" + "x" * 10_000)
    assert target.read_bytes() == OLD_REPORT
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
