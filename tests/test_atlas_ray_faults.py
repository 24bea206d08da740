"""Ray faults, tested: a worker killed with SIGKILL mid-run, and SIGTERM to the driver.

A killed worker never gives a wrong total: the run finishes with the local engine's
totals (Ray restarts the actor and retries its block) or stops with one line. SIGTERM
to a driver that started its own Ray leaves no output, no temporary file and none of
the Ray processes it started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from reportgen.atlas import AtlasOptions, build_atlas
from reportgen.config import ReportConfig
from reportgen.errors import ReportgenError

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


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
    corpus = _corpus(tmp_path / "big.jsonl", 6000)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "atlas.html"
    before = _ray_processes()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "reportgen", "--atlas", "-i", str(corpus), "-m", str(tiny_bert)]
        + ["-o", str(out), "--engine", "ray", "--batch-size", "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL),
    )
    assert proc.stderr is not None
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            seen.append(line)
            if line.startswith("Ray:"):  # the pool is about to start
                break
        assert seen and seen[-1].startswith("Ray:"), "".join(seen)
        time.sleep(3)  # workers loading and extracting
        assert proc.poll() is None, "the run finished before SIGTERM"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    lines = [x for x in err.strip().splitlines() if x.strip()]
    assert lines and "Traceback" not in err and "no atlas written" in lines[-1]
    assert list(out_dir.iterdir()) == []  # no output, no temporary file
    deadline = time.monotonic() + 30
    while _ray_processes() - before and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _ray_processes() - before == set(), "Ray processes outlived the driver"
