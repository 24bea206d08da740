"""Running commands and scripts, and timing them."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = Path(__file__).resolve().parent / "scripts"


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def script_env(**extra: str) -> dict[str, str]:
    """The environment for a child: reportgen importable from the checkout."""
    return {**os.environ, "PYTHONPATH": str(REPO), **extra}


def script(name: str, *args: str | Path) -> list[str]:
    """Command line for one of benchmarks/scripts/, under this interpreter (the venv's)."""
    return [sys.executable, str(SCRIPTS / name), *map(str, args)]


def reportgen_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "reportgen", "-q", *args]


def run(cmd: Sequence[str]) -> float:
    """Run a command; return its wall time in seconds (fail loudly on an error)."""
    start = time.perf_counter()
    done = subprocess.run(list(cmd), capture_output=True, text=True, cwd=REPO)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return elapsed


def output(cmd: Sequence[str], what: str, **env: str) -> str:
    """Run a command from the checkout; return its stdout (fail loudly on an error)."""
    done = subprocess.run(
        list(cmd), capture_output=True, text=True, cwd=REPO, env=script_env(**env)
    )
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def run_measured(cmd: Sequence[str]) -> tuple[float, int]:
    """Wall time and the child's own peak RSS in bytes (wait4, not the children max)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        list(cmd), cwd=REPO, env=script_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-3000:]!r}")
    return elapsed, usage.ru_maxrss * 1024


def interleaved_medians(commands: dict[str, list[str]], reps: int) -> dict[str, float]:
    """Run the commands in turn `reps` times, so background load hits them alike."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(reps):
        for name, cmd in commands.items():
            times[name].append(run(cmd))
    say("  " + "; ".join(f"{n}: {', '.join(f'{t:.2f}' for t in ts)} s" for n, ts in times.items()))
    return {name: statistics.median(ts) for name, ts in times.items()}


def mem_available() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
