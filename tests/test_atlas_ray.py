"""atlas on Ray: one local Ray (2 CPUs) for the module; the result equals the local
engine's within 1e-6, failures are one line, and a missing Ray is an install hint.

Faults: a worker killed with SIGKILL mid-run never gives a wrong total (the run finishes
with the local engine's totals, Ray restarting the actor and retrying its block, or
stops with one line); SIGTERM to a driver that started its own Ray leaves no output, no
temporary file and none of the Ray processes it started."""

from __future__ import annotations

import builtins
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from reportgen.atlas import AtlasOptions, build_atlas
from reportgen.config import ReportConfig
from reportgen.errors import ReportgenError

from .conftest import signal_mid_run

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ray") / "corpus.jsonl"
    lines = []
    for i in range(30):
        lines.append(
            {
                "text": f"The animal didn't cross the street because it was too tired ({i}).",
                "focus": "it",
                "candidates": ["animal", "street"],
                "answer": "animal",
            }
        )
        lines.append({"text": "Short, punctuated: yes!" + " and more" * (i % 7)})
        lines.append({"text": "No focus here.", "focus": "he", "candidates": ["x"], "answer": "x"})
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    return path


def test_ray_equals_local(local_ray: Any, corpus: Path, tiny_bert: Path) -> None:
    config = ReportConfig(model=str(tiny_bert), batch_size=4)
    local = build_atlas(str(corpus), config, AtlasOptions(engine="local"))
    # Two workers and small blocks: the partial sums really are merged.
    distributed = build_atlas(str(corpus), config, AtlasOptions(engine="ray", workers=2))
    a, b = local.export_data(), distributed.export_data()
    assert (a["sentences"], a["tokens"]) == (b["sentences"], b["tokens"]) == (90, a["tokens"])
    for name, grid in a["statistics"].items():
        np.testing.assert_allclose(b["statistics"][name], grid, atol=1e-6, err_msg=name)
    assert a["coreference"] == b["coreference"]
    assert a["coreference"]["items"] == 30 and a["coreference"]["skipped"] == 30
    assert a["model"] == b["model"]
    np.testing.assert_allclose(
        distributed.sums.js_distance(),
        local.sums.js_distance(),
        atol=1e-6,  # type: ignore[arg-type]
    )
    np.testing.assert_array_equal(local.sums.examples.seq, distributed.sums.examples.seq)  # type: ignore[union-attr]


def test_worker_failure_is_one_line(local_ray: Any, corpus: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    with pytest.raises(ReportgenError) as info:
        build_atlas(
            str(corpus), ReportConfig(model=str(broken)), AtlasOptions(engine="ray", workers=1)
        )
    message = str(info.value)
    assert "\n" not in message and "broken-model" in message


def test_without_ray_an_install_hint(
    monkeypatch: pytest.MonkeyPatch, corpus: Path, tiny_bert: Path
) -> None:
    real_import = builtins.__import__

    def no_ray(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "ray" or name.startswith("ray."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(ReportgenError, match=r"pip install 'reportgen\[ray\]'"):
        build_atlas(str(corpus), ReportConfig(model=str(tiny_bert)), AtlasOptions(engine="ray"))


def _corpus(path: Path, count: int) -> Path:
    lines = [
        {
            "text": f"The animal didn't cross the street because it was too tired ({i}).",
            "focus": "it",
            "candidates": ["animal", "street"],
            "answer": "animal",
        }
        for i in range(count)
    ]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


def _processes(*names: str) -> set[int]:
    """PIDs whose command line (Ray retitles its workers "ray::...") names any of `names`."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(name in cmd for name in names):
            found.add(int(entry.name))
    return found


def _atlas_worker_pids() -> list[int]:
    return sorted(_processes("AtlasWorker"))


def test_a_worker_killed_mid_run_never_gives_a_wrong_total(
    local_ray: Any, tiny_bert: Path, tmp_path: Path
) -> None:
    corpus = _corpus(tmp_path / "c.jsonl", 240)
    # Batches of one: blocks of 64 sentences (engine.SORT_WINDOW_BATCHES), four blocks.
    config = ReportConfig(model=str(tiny_bert), batch_size=1)
    local = build_atlas(str(corpus), config, AtlasOptions(engine="local"))
    killed: list[int] = []
    after: list[int] = []

    def kill_one(done: int, _total: int | None) -> None:
        if killed:
            after.append(done)
        # After the first partial total has arrived: the run is under way.
        if done and not killed:
            pids = _atlas_worker_pids()
            assert pids, "no AtlasWorker actor is alive mid-run"
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    try:
        distributed = build_atlas(
            str(corpus), config, AtlasOptions(engine="ray", workers=2), progress=kill_one
        )
    except ReportgenError as exc:  # stopping is allowed, in one line
        assert killed and "\n" not in str(exc)
        return
    assert killed and after, "the worker was killed after the last block"
    a, b = local.export_data(), distributed.export_data()
    assert (b["sentences"], b["tokens"]) == (a["sentences"], a["tokens"]) == (240, a["tokens"])
    for name, grid in a["statistics"].items():
        np.testing.assert_allclose(b["statistics"][name], grid, atol=1e-6, err_msg=name)
    assert a["coreference"] == b["coreference"]


def _ray_processes() -> set[int]:
    """PIDs of Ray's own daemons and workers (the head's GCS, raylet, helpers, actors)."""
    return _processes("gcs_server", "raylet", "ray::", "default_worker.py", "ray/_private")


def test_sigterm_to_the_driver_leaves_no_file_and_no_ray(tiny_bert: Path, tmp_path: Path) -> None:
    """SIGTERM to a driver that started its own Ray: one line, no file (not even a
    temporary one), and none of the Ray processes it started outlive it."""
    corpus = _corpus(tmp_path / "big.jsonl", 6000)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    before = _ray_processes()
    code, _, err = signal_mid_run(
        ["--atlas", "-i", str(corpus), "-m", str(tiny_bert), "-o", str(out_dir / "atlas.html")]
        + ["--engine", "ray", "--batch-size", "4"],
        {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"},
        "Ray:",  # the pool is about to start
        signal.SIGTERM,
        pause=3,  # workers loading and extracting
    )
    assert code != 0
    lines = [x for x in err.strip().splitlines() if x.strip()]
    assert lines and "Traceback" not in err and "no atlas written" in lines[-1]
    assert list(out_dir.iterdir()) == []
    deadline = time.monotonic() + 30
    while _ray_processes() - before and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _ray_processes() - before == set(), "Ray processes outlived the driver"
