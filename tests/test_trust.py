"""Trust and limits (issue 14): no code from model folders, no file clobbered, modes kept
private, big inputs refused before the model loads, nothing echoed that drives the
terminal, and a GGUF cache that checks what it finds."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from reportgen import gguf
from reportgen.cli import main
from reportgen.errors import InputError, ModelError
from reportgen.inputs import (
    MAX_CANDIDATES,
    MAX_CHARS,
    MAX_SENTENCES,
    MAX_WORD_CHARS,
    collect_inputs,
)
from reportgen.models import ModelSource, _from_pretrained, embedded_model_path
from reportgen.render import write_atomic
from reportgen.safety import check_outputs, clean_terminal, preview

from .test_gguf import _fake_gguf

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
REPO = Path(__file__).resolve().parent.parent
HTML = "<!DOCTYPE html><title>new</title>"


def cli(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def run_module(*args: str, cwd: Path, input: str = "") -> subprocess.CompletedProcess[str]:
    """`python -m reportgen ...` in a fresh process, offline, this checkout first on the path."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "reportgen", *args],
        cwd=cwd,
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=300,
    )


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr[:2000]
    assert lines[0].startswith("Error: ")
    return lines[0]


@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to load a model fails the test: the checks must come first."""

    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("the model must not load")

    monkeypatch.setattr("reportgen.models.load_model", refuse)


# --- 1. no code from a model folder -------------------------------------------------------------

CUSTOM_CODE = """\
from pathlib import Path
Path(__file__).with_name("MARKER").write_text("custom code ran")
"""


def custom_code_folder(folder: Path) -> Path:
    """A model folder whose config needs its own Python, which writes MARKER when run."""
    folder.mkdir()
    config = {
        "model_type": "reportgen-test-custom",
        "architectures": ["XModel"],
        "auto_map": {
            "AutoConfig": "configuration_x.XConfig",
            "AutoModel": "modeling_x.XModel",
            "AutoTokenizer": ["tokenization_x.XTokenizer", None],
        },
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
    }
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    for name in ("configuration_x.py", "modeling_x.py", "tokenization_x.py"):
        (folder / name).write_text(CUSTOM_CODE, encoding="utf-8")
    return folder


def test_custom_code_never_runs_even_when_answered_yes(tmp_path: Path) -> None:
    folder = custom_code_folder(tmp_path / "custom")
    proc = run_module("hello", "-m", str(folder), "-o", "out.html", cwd=tmp_path, input="y\n" * 20)
    assert proc.returncode == 1
    line = one_error_line(proc.stderr)
    assert "needs its own Python code" in line and "never runs" in line
    assert "[y/N]" not in proc.stdout + proc.stderr
    assert not (folder / "MARKER").exists()
    assert not (tmp_path / "out.html").exists()


def test_every_load_says_trust_remote_code_false(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    class Loader:
        @staticmethod
        def from_pretrained(location: str, **kwargs: Any) -> str:
            calls.append(kwargs)
            if kwargs.get("local_files_only"):
                raise OSError("not cached")
            return "loaded"

    monkeypatch.setattr("reportgen.models._hub_reachable", lambda: True)
    assert _from_pretrained(Loader, ModelSource("m", "/m", True), dtype="x") == "loaded"
    assert _from_pretrained(Loader, ModelSource("org/m", "org/m", False)) == "loaded"
    assert len(calls) == 3
    assert all(kwargs["trust_remote_code"] is False for kwargs in calls)


def test_gguf_loading_says_trust_remote_code_false(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import transformers

    seen: list[dict[str, Any]] = []

    def record(*_: Any, **kwargs: Any) -> Any:
        seen.append(kwargs)
        raise RuntimeError("stop here")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", record)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", record)
    with pytest.raises(RuntimeError, match="stop here"):
        gguf._load_from_gguf(_fake_gguf(tmp_path / "m.gguf"))
    assert seen and seen[0]["trust_remote_code"] is False


# --- 2. writes ----------------------------------------------------------------------------------


def test_new_files_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        write_atomic(tmp_path / "private.html", HTML)
        os.umask(0o022)
        write_atomic(tmp_path / "shared.html", HTML)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "private.html").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "shared.html").stat().st_mode) == 0o644


def test_a_replaced_file_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_text("old")
    target.chmod(0o640)
    old = os.umask(0o022)
    try:
        write_atomic(target, HTML)
    finally:
        os.umask(old)
    assert target.read_text() == HTML
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_umask_077_through_the_cli(tiny_bert: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            "sh",
            "-c",
            'umask 077 && exec "$0" -m reportgen hi -m "$1" -o r.html --export-json r.json',
            sys.executable,
            str(tiny_bert),
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    for name in ("r.html", "r.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600


def test_symlink_is_written_through(tmp_path: Path) -> None:
    real = tmp_path / "real" / "report.html"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "link.html"
    link.symlink_to(real)
    write_atomic(link, HTML)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() == HTML
    assert sorted(p.name for p in real.parent.iterdir()) == ["report.html"]
    dangling = tmp_path / "dangling.html"
    dangling.symlink_to(tmp_path / "real" / "new.html")
    write_atomic(dangling, HTML)
    assert dangling.is_symlink() and (tmp_path / "real" / "new.html").read_text() == HTML


def test_fifo_is_written_directly(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    write_atomic(fifo, HTML)
    reader.join(timeout=30)
    assert got == [HTML.encode()]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["pipe"]


def _mknod(path: Path, kind: int, major: int, minor: int) -> None:
    if not IS_ROOT:
        pytest.skip("mknod needs root")
    try:
        os.mknod(path, kind | 0o666, os.makedev(major, minor))
    except OSError as exc:
        pytest.skip(f"mknod refused here: {exc}")


def test_device_copy_stays_a_device(tmp_path: Path) -> None:
    null = tmp_path / "null"
    _mknod(null, stat.S_IFCHR, 1, 3)  # a copy of /dev/null
    assert write_atomic(null, HTML * 1000) == len(HTML) * 1000
    assert stat.S_ISCHR(os.lstat(null).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["null"]


def test_block_device_is_refused(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    _mknod(disk, stat.S_IFBLK, 7, 0)  # a loop device node; never opened
    with pytest.raises(InputError, match="block device"):
        write_atomic(disk, HTML)
    assert stat.S_ISBLK(os.lstat(disk).st_mode)


def test_dev_null_through_the_cli_stays_a_device(
    tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    null = tmp_path / "null"
    _mknod(null, stat.S_IFCHR, 1, 3)
    code, _, err = cli("hi", "-m", str(tiny_bert), "-o", str(null), "--export-json", str(null))
    assert code == 0, err
    assert stat.S_ISCHR(os.lstat(null).st_mode)


def test_dash_writes_the_report_to_stdout(tiny_bert: Path, tmp_path: Path) -> None:
    code, out, err = cli("hi there", "-m", str(tiny_bert), "-o", "-")
    assert code == 0, err
    assert out.startswith("<!DOCTYPE html>") and out.rstrip().endswith("</html>")
    assert "wrote the report to stdout" in err and "loading" in err
    assert not any(line.startswith("loading ") for line in out.splitlines())
    assert "wrote" not in out[-200:]


def test_dash_in_a_real_pipe(tiny_bert: Path, tmp_path: Path) -> None:
    proc = run_module("hi", "-m", str(tiny_bert), "-o", "-", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("<!DOCTYPE html>") and "wrote the report to stdout" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def _same_file_cases(tmp: Path) -> list[tuple[str, list[str], str]]:
    sentences = tmp / "in.txt"
    link = tmp / "link.html"
    link.symlink_to(sentences)
    hard = tmp / "hard.html"
    os.link(sentences, hard)
    model = tmp / "model"
    return [
        ("input", ["-i", str(sentences), "-o", str(sentences)], "is the input file"),
        ("symlink to input", ["-i", str(sentences), "-o", str(link)], "is the input file"),
        ("hard link to input", ["-i", str(sentences), "-o", str(hard)], "is the input file"),
        ("export on input", ["-i", str(sentences), "--export-json", str(sentences)], "input file"),
        ("both outputs", ["hi", "-o", str(tmp / "r"), "--export-json", str(tmp / "r")], "same"),
        ("both stdout", ["hi", "-o", "-", "--export-json", "-"], "same file"),
        ("model folder", ["hi", "-m", str(model), "-o", str(model / "config.json")], "model"),
        (
            "model file",
            ["hi", "-m", str(tmp / "m.gguf"), "--export-json", str(tmp / "m.gguf")],
            "model",
        ),
        ("in a model subfolder", ["hi", "-m", str(model), "-o", str(model / "s" / "x")], "model"),
    ]


@pytest.mark.parametrize("case", range(9))
def test_outputs_that_would_destroy_something_are_refused(
    tmp_path: Path, no_model: None, case: int
) -> None:
    (tmp_path / "in.txt").write_text("A sentence.\n")
    (tmp_path / "model" / "s").mkdir(parents=True)
    (tmp_path / "model" / "config.json").write_text("{}")
    _fake_gguf(tmp_path / "m.gguf")
    name, args, message = _same_file_cases(tmp_path)[case]
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    code, out, err = cli(*args)
    assert code == 2, (name, err)
    assert message in one_error_line(err), name
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    assert out == ""


def test_output_inside_the_embedded_model_is_refused(no_model: None) -> None:
    target = embedded_model_path() / "reportgen-test-report.html"
    code, _, err = cli("hi", "-o", str(target))
    assert code == 2 and "is inside the model" in one_error_line(err)
    assert not target.exists()


def test_dev_null_twice_is_fine() -> None:
    check_outputs([("-o", Path(os.devnull)), ("--export-json", Path(os.devnull))])


# --- 3. limits, before the model loads ----------------------------------------------------------


def test_50_mb_text_pair_refused_fast(tmp_path: Path, no_model: None) -> None:
    big = "word " * (10 * 1024 * 1024)  # 50 MB
    path = tmp_path / "big.jsonl"
    path.write_text(json.dumps({"text": "A short one.", "text_pair": big}) + "\n")
    del big
    started = time.perf_counter()
    code, _, err = cli("-i", str(path))
    elapsed = time.perf_counter() - started
    line = one_error_line(err)
    assert code == 2 and elapsed < 10, elapsed
    assert '"text_pair" "word word word' in line and f"limit of {MAX_CHARS:,}" in line
    assert len(line) < 250


@pytest.mark.parametrize(
    ("field", "value", "limit"),
    [
        ("text_pair", "x" * (MAX_CHARS + 1), MAX_CHARS),
        ("target", "x" * (MAX_CHARS + 1), MAX_CHARS),
        ("compare", "x" * (MAX_CHARS + 1), MAX_CHARS),
        ("text", "x" * (MAX_CHARS + 1), MAX_CHARS),
        ("focus", "f" * 5_000_000, MAX_WORD_CHARS),
        ("candidates", ["c" * (MAX_WORD_CHARS + 1), "street"], MAX_WORD_CHARS),
    ],
)
def test_every_jsonl_field_has_a_limit(
    tmp_path: Path, no_model: None, field: str, value: Any, limit: int
) -> None:
    record: dict[str, Any] = {"text": "The animal was tired.", field: value}
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps(record) + "\n")
    code, _, err = cli("-i", str(path))
    line = one_error_line(err)
    assert code == 2 and f"limit of {limit:,}" in line and "in.jsonl line 1" in line
    assert len(line) < 300, line


def test_long_focus_on_the_command_line_gives_a_short_line(no_model: None) -> None:
    code, _, err = cli("It was tired.", "--focus", "it" * 50_000)
    line = one_error_line(err)
    assert code == 2 and "--focus" in line and len(line) < 200
    assert '"' + "it" * 20 + '..."' in line


def test_candidate_count_is_limited(tmp_path: Path, no_model: None) -> None:
    path = tmp_path / "many.jsonl"
    path.write_text(json.dumps({"text": "It was tired.", "candidates": ["animal"] * 200_000}))
    started = time.perf_counter()
    code, _, err = cli("-i", str(path))
    assert code == 2 and time.perf_counter() - started < 10
    assert f"200,000 candidates, over the limit of {MAX_CANDIDATES}" in one_error_line(err)
    code, _, err = cli("x", "--candidates", ",".join(["a"] * (MAX_CANDIDATES + 1)))
    assert code == 2 and "--candidates" in one_error_line(err)


def test_title_is_limited(no_model: None) -> None:
    code, _, err = cli("x", "--title", "T" * 5_000)
    line = one_error_line(err)
    assert code == 2 and "--title" in line and "limit of 1,000" in line and len(line) < 200


@pytest.mark.parametrize("suffix", ["txt", "jsonl"])
def test_200000_lines_refused_in_seconds(tmp_path: Path, no_model: None, suffix: str) -> None:
    path = tmp_path / f"corpus.{suffix}"
    line = json.dumps({"text": "The cat sat on the mat."}) if suffix == "jsonl" else "A cat."
    path.write_text((line + "\n") * 200_000)
    started = time.perf_counter()
    code, _, err = cli("-i", str(path))
    elapsed = time.perf_counter() - started
    message = one_error_line(err)
    assert code == 2 and elapsed < 5, elapsed
    assert f"more than {MAX_SENTENCES:,} sentences" in message
    assert "--max-sentences" in message and "--atlas" in message


def test_max_sentences_moves_the_limit(tmp_path: Path, no_model: None) -> None:
    path = tmp_path / "three.txt"
    path.write_text("One.\nTwo.\nThree.\n")
    code, _, err = cli("Zero.", "-i", str(path), "--max-sentences", "3")
    assert code == 2 and "more than 3 sentences" in one_error_line(err)
    batch = collect_inputs(["Zero."], str(path), max_sentences=4)
    assert [item.text for item in batch.items] == ["Zero.", "One.", "Two.", "Three."]
    assert len(collect_inputs(["x"] * 5000, None, max_sentences=None).items) == 5000
    with pytest.raises(InputError, match="more than 2 sentences"):
        collect_inputs(["a", "b", "c"], max_sentences=2)


def test_a_compare_pair_counts_twice(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"text": "A.", "compare": "B."}) + "\n")
    assert len(collect_inputs([], str(path), max_sentences=2).items) == 2
    with pytest.raises(InputError, match="more than 1 sentences"):
        collect_inputs([], str(path), max_sentences=1)


def test_api_checks_the_same_limits(no_model: None) -> None:
    from reportgen.config import SentenceInput
    from reportgen.pipeline import build_report

    with pytest.raises(InputError, match="candidate"):
        build_report([SentenceInput(text="It.", candidates=("a",) * (MAX_CANDIDATES + 1))])
    with pytest.raises(InputError, match='"focus"'):
        build_report([SentenceInput(text="It.", focus="x" * (MAX_WORD_CHARS + 1))])


def test_preview_is_short() -> None:
    assert preview("abc") == "abc"
    assert preview("x" * 1000) == "x" * 40 + "..."


# --- 4. terminal escapes ------------------------------------------------------------------------

PWN = "\x1b]0;pwned\x07"


def test_clean_terminal() -> None:
    assert clean_terminal(f"a{PWN}b") == "ab"
    assert clean_terminal("\x1b[2J\x1b[31mred\x1b[0m") == "red"
    assert clean_terminal("bell\x07 nul\x00 c1\x9b31m del\x7f") == "bell nul c131m del"
    assert clean_terminal("one\ntwo\r\nthree\tfour") == "one two three four"
    assert clean_terminal("evil\u202etxt.exe") == "eviltxt.exe"
    assert clean_terminal("naïve 東京 ✓") == "naïve 東京 ✓"
    assert len(clean_terminal("y" * 10_000)) == 2_000


def test_escapes_from_a_config_never_reach_the_terminal(tmp_path: Path) -> None:
    folder = tmp_path / "hostile"
    folder.mkdir()
    config = {"model_type": f"bert{PWN}", "architectures": [f"Bert{PWN}Model\x1b[2J"]}
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    proc = run_module("hello", "-m", "hostile", "-o", "out.html", cwd=tmp_path)
    assert proc.returncode != 0
    line = one_error_line(proc.stderr)
    assert "\x1b" not in proc.stderr and "\x07" not in proc.stderr
    assert "model type `bert`" in line  # the sequence goes whole, the text around it stays


# --- 5. the GGUF cache checks what it finds ------------------------------------------------------


def _save_with_weights(tokenizer: Any, model: Any, out_dir: Path) -> None:
    (out_dir / "config.json").write_text("{}", encoding="utf-8")
    (out_dir / "model.safetensors").write_bytes(b"W" * 4096)


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []

    def fake_load(path: Path) -> tuple[str, str]:
        calls.append(path)
        return "tok", "model"

    monkeypatch.setattr(gguf, "_require_extra", lambda: None)
    monkeypatch.setattr(gguf, "_load_from_gguf", fake_load)
    monkeypatch.setattr(gguf, "_save_checkpoint", _save_with_weights)
    return calls


def test_marker_records_the_weights(tmp_path: Path, builds: list[Path]) -> None:
    import hashlib

    folder = gguf.materialize(_fake_gguf(tmp_path / "m.gguf"), cache_dir=tmp_path / "c")
    marker = json.loads((folder / gguf.MARKER_NAME).read_text())
    weights = b"W" * 4096
    assert marker["weights"] == {
        "model.safetensors": {"size": 4096, "sha256": hashlib.sha256(weights).hexdigest()}
    }


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(b"W" * 4095 + b"X"),  # same size, other bytes
        lambda p: p.write_bytes(b"W" * 10),  # truncated
        lambda p: p.unlink(),  # gone
        lambda p: p.with_name("extra.safetensors").write_bytes(b"?"),  # an unrecorded shard
    ],
)
def test_damaged_weights_are_rebuilt_once(tmp_path: Path, builds: list[Path], damage: Any) -> None:
    source = _fake_gguf(tmp_path / "m.gguf")
    folder = gguf.materialize(source, cache_dir=tmp_path / "c")
    damage(folder / "model.safetensors")
    lines: list[str] = []
    assert gguf.materialize(source, cache_dir=tmp_path / "c", log=lines.append) == folder
    assert any("does not match its marker" in line and "rebuilding" in line for line in lines)
    assert (folder / "model.safetensors").read_bytes() == b"W" * 4096
    assert not (folder / "extra.safetensors").exists()
    assert gguf.materialize(source, cache_dir=tmp_path / "c") == folder
    assert len(builds) == 2  # built, rebuilt once, then trusted


def test_marker_without_weights_is_rebuilt(tmp_path: Path, builds: list[Path]) -> None:
    source = _fake_gguf(tmp_path / "m.gguf")
    folder = gguf.materialize(source, cache_dir=tmp_path / "c")
    marker = json.loads((folder / gguf.MARKER_NAME).read_text())
    del marker["weights"]  # as written before the record existed
    (folder / gguf.MARKER_NAME).write_text(json.dumps(marker))
    gguf.materialize(source, cache_dir=tmp_path / "c")
    assert len(builds) == 2
    assert "weights" in json.loads((folder / gguf.MARKER_NAME).read_text())


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_partials_of_dead_runs_are_removed_at_the_next_run(
    tmp_path: Path, builds: list[Path]
) -> None:
    source = _fake_gguf(tmp_path / "m.gguf")
    cache = tmp_path / "c"
    gguf.materialize(source, cache_dir=cache)  # the cache hit below must clean up too
    parent = cache / "gguf"
    host = gguf._host_tag()
    day_ago = time.time() - 2 * 24 * 3600
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        folders = {
            "dead": parent / f".abc.{host}-{_dead_pid()}.x1.partial",
            "live": parent / f".abc.{host}-{live.pid}.x2.partial",
            "other host, recent": parent / f".abc.00000000-{_dead_pid()}.x3.partial",
            "other host, old": parent / ".abc.00000000-1.x4.partial",
            "old name, old": parent / ".abc.x5.partial",
            "old name, recent": parent / ".abc.x6.partial",
        }
        for name, folder in folders.items():
            folder.mkdir()
            (folder / "model.safetensors").write_bytes(b"half")
            if name.endswith(", old"):
                os.utime(folder, (day_ago, day_ago))
        gguf.materialize(source, cache_dir=cache)
        kept = {name for name, folder in folders.items() if folder.exists()}
    finally:
        live.kill()
        live.wait()
    assert kept == {"live", "other host, recent", "old name, recent"}
    assert len(builds) == 1


def test_own_partial_names_carry_host_and_pid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []

    def failing_load(path: Path) -> Any:
        seen.extend(p.name for p in (tmp_path / "c" / "gguf").iterdir())
        raise ValueError("stop")

    monkeypatch.setattr(gguf, "_require_extra", lambda: None)
    monkeypatch.setattr(gguf, "_load_from_gguf", failing_load)
    with pytest.raises(ModelError):
        gguf.materialize(_fake_gguf(tmp_path / "m.gguf"), cache_dir=tmp_path / "c")
    assert len(seen) == 1
    parts = seen[0].split(".")
    assert parts[2] == f"{gguf._host_tag()}-{os.getpid()}" and parts[-1] == "partial"
    assert socket.gethostname() not in seen[0]
