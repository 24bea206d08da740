"""GGUF: SmolLM2's first run dequantises into a fresh cache, a second loads the cached copy."""

from __future__ import annotations

import subprocess
import time

from .. import targets
from ..context import Context
from ..fixtures import smollm2
from ..inputs import PROMPT_CAUSAL
from ..measure import output, reportgen_cmd, say, script, script_env
from ..table import Row, fmt_s


def rows(ctx: Context) -> list[Row]:
    source = smollm2()
    if not source.is_file():
        return [
            Row.info("GGUF second run vs first", "skipped", f"no {source}", "make fetch-smollm2")
        ]
    say("GGUF: SmolLM2 load with a cold, then a warm dequantisation cache")
    env = {"REPORTGEN_CACHE": str(ctx.work / "gguf-cache"), "HF_HUB_OFFLINE": "1"}
    loads = [
        float(output(script("gguf_load.py", source), "GGUF load", **env).strip().splitlines()[-1])
        for _ in range(2)
    ]
    cmd = reportgen_cmd(PROMPT_CAUSAL, "-m", str(source), "-o", str(ctx.work / "causal.html"))
    start = time.perf_counter()
    subprocess.run(cmd, capture_output=True, env=script_env(**env), check=True)
    warm_e2e = time.perf_counter() - start
    speedup = loads[0] / loads[1]
    return [
        Row.check(
            "GGUF (SmolLM2-135M): model ready, second run vs first",
            fmt_s(loads[1]),
            f"first run (dequantise + cache) {fmt_s(loads[0])}",
            targets.GGUF_SPEEDUP,
            speedup,
            shown=f"{speedup:.1f}x faster",
        ),
        Row.info("GGUF: a later run, end to end (reportgen CLI)", fmt_s(warm_e2e)),
    ]
