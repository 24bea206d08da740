"""GPU check for issue 21: the long path on the fast kernel, at long context, on a GPU.

A Llama with the 1B shape (16 layers, 32 heads, 8 key-value heads, head dim 64; random
weights, bfloat16) runs through ``extract.extract_long`` (sdpa computes the outputs, the
capture rebuilds the weights 256 query rows at a time) and through a bare sdpa forward
pass over the same tokens; the script prints peak GPU memory and time of each, and the
memory formula of the README ("Long inputs") beside the measured peak. First, a float32
Llama of the same head shape checks on the GPU that the long path's exact rows equal
eager attention's within 1e-5.

    python benchmarks/gpu_check.py [--tokens 8192,32768] [--tokenizer DIR] [--budget S]

Skipped (exit 0) without a GPU. Needs torch and transformers; the tokenizer is any
local tokenizer folder (default: the embedded model's). Sizes run in order until the
time budget is spent; each prints one JSON line, then one Markdown table."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SHAPE = {"layers": 16, "heads": 32, "kv_heads": 8, "head_dim": 64, "hidden": 2048, "mlp": 8192}
DEVICE = "cuda"  # --device cpu: a dry run of the same steps (no memory figures)


def sync() -> None:
    import torch

    if DEVICE == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak() -> int:
    import torch

    if DEVICE == "cuda":
        torch.cuda.synchronize()
        return int(torch.cuda.max_memory_allocated())
    return 0


def llama(tok: Any, n: int, layers: int, dtype: Any) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from reportgen import capture

    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=SHAPE["hidden"],
        intermediate_size=SHAPE["mlp"],
        num_hidden_layers=layers,
        num_attention_heads=SHAPE["heads"],
        num_key_value_heads=SHAPE["kv_heads"],
        head_dim=SHAPE["head_dim"],
        max_position_embeddings=n + 8,
    )
    torch.manual_seed(0)
    with torch.device(DEVICE):
        model = LlamaForCausalLM(cfg).to(dtype).eval()
    model.set_attn_implementation(capture.register())
    return model


def loaded_model(tok: Any, model: Any, n: int) -> Any:
    import torch

    from reportgen.config import ModelInfo
    from reportgen.models import LoadedModel

    info = ModelInfo(
        "llama-1b-shape", "LlamaForCausalLM", "causal", model.config.num_hidden_layers,
        SHAPE["heads"], n + 8,
    )  # fmt: skip
    return LoadedModel(info, tok, model, torch.device(DEVICE), n + 8, True)


def text_of(tok: Any, n: int) -> str:
    words = [
        "the",
        "animal",
        "did",
        "not",
        "cross",
        "the",
        "street",
        "because",
        "it",
        "was",
        "too",
        "tired",
        "and",
    ]
    text = " ".join(words[i % len(words)] for i in range(n))
    ids = tok(text)["input_ids"]
    return tok.decode(ids[1 : n - 1]) if len(ids) > n else text


def long_path(tok: Any, model: Any, n: int) -> tuple[Any, float, int]:

    from reportgen.config import InputBatch, ReportConfig, SentenceInput
    from reportgen.extract import extract_long

    item = SentenceInput(text_of(tok, n), focus="animal", source="gpu-check")
    config = ReportConfig(device=DEVICE, max_tokens=n)
    sync()
    start = time.perf_counter()
    out = extract_long(InputBatch(items=(item,)), config, loaded_model(tok, model, n))
    return out, time.perf_counter() - start, peak()


def bare(tok: Any, model: Any, n: int) -> tuple[float, int]:
    import torch

    enc = tok(text_of(tok, n), return_tensors="pt", truncation=True, max_length=n).to(DEVICE)
    model.set_attn_implementation("sdpa")
    try:
        with torch.inference_mode():
            model.model(**enc)  # warm-up
            sync()
            start = time.perf_counter()
            model.model(**enc)
            elapsed = time.perf_counter() - start
            return elapsed, peak()
    finally:
        from reportgen import capture

        model.set_attn_implementation(capture.register())


def formula(n: int, layers: int, weights: int) -> int:
    """The README's memory formula for the forward pass and one rebuilt chunk (float32
    upper bounds; the records are on the host), plus the weights."""
    from reportgen import memory

    forward = 4 * n * (4 * SHAPE["hidden"] + SHAPE["mlp"])
    chunk = (
        memory.CHUNK_BYTES_PER_VALUE
        * SHAPE["heads"]
        * memory.chunk_rows(n, memory.OVERVIEW_BLOCKS)
        * n
    )
    return weights + forward + chunk


def exact_rows(tok: Any, n: int = 1024) -> float:
    """Largest difference between the long path's exact rows and eager's (float32)."""
    import numpy as np
    import torch

    model = llama(tok, n, 2, torch.float32)
    long, _, _ = long_path(tok, model, n)
    amap = long.results[0].maps[0]
    enc = tok(text_of(tok, n), return_tensors="pt", truncation=True, max_length=n).to(DEVICE)
    model.set_attn_implementation("eager")
    with torch.inference_mode():
        att = model.model(**enc, output_attentions=True).attentions
    own = torch.stack([a[0] for a in att]).float().cpu().numpy()
    worst = max(float(np.abs(r.attention - own[:, :, r.position, :]).max()) for r in amap.rows)
    return worst


def main() -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", default="4096,8192,16384,32768")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--layers", type=int, default=SHAPE["layers"])
    parser.add_argument("--exact-tokens", type=int, default=1024)
    parser.add_argument("--tokenizer", default=None)
    parser.add_argument("--budget", type=float, default=420.0, help="seconds for all sizes")
    args = parser.parse_args()
    global DEVICE
    DEVICE = args.device
    if DEVICE == "cuda" and not torch.cuda.is_available():
        print("gpu_check: skipped, no CUDA GPU here")
        return 0
    from transformers import AutoTokenizer

    folder = args.tokenizer
    if folder is None:
        from reportgen.models import embedded_model_path

        folder = str(embedded_model_path())
    tok = AutoTokenizer.from_pretrained(folder)
    tok.model_max_length = 1 << 20
    began = time.perf_counter()
    worst = exact_rows(tok, args.exact_tokens)
    print(json.dumps({"exact_rows_max_abs_vs_eager": worst}), flush=True)
    rows = []
    for n in (int(t) for t in args.tokens.split(",")):
        if time.perf_counter() - began > args.budget:
            print(json.dumps({"tokens": n, "skipped": "time budget spent"}), flush=True)
            continue
        model = llama(tok, n, args.layers, torch.bfloat16)
        weights = sum(p.numel() * p.element_size() for p in model.parameters())
        t_bare, m_bare = bare(tok, model, n)
        long, t_long, m_long = long_path(tok, model, n)
        got = len(long.results[0].maps[0].query.tokens)
        row = {
            "tokens": got,
            "bare_sdpa_s": round(t_bare, 3),
            "bare_peak_gb": round(m_bare / 1e9, 2),
            "long_s": round(t_long, 2),
            "long_peak_gb": round(m_long / 1e9, 2),
            "formula_gb": round(formula(got, args.layers, weights) / 1e9, 2),
            "ratio": round(t_long / t_bare, 1),
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
        del model, long
        if DEVICE == "cuda":
            torch.cuda.empty_cache()
    where = torch.cuda.get_device_name() if DEVICE == "cuda" else "CPU (dry run)"
    print(f"\n{where}, torch {torch.__version__}")
    print(
        f"exact rows against eager (float32, {args.exact_tokens:,} tokens): max abs {worst:.1e}\n"
    )
    print("| tokens | bare sdpa forward | long path | peak GPU (long / bare) | formula |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['tokens']:,} | {r['bare_sdpa_s']} s | {r['long_s']} s ({r['ratio']}x) | "
            f"{r['long_peak_gb']} / {r['bare_peak_gb']} GB | {r['formula_gb']} GB |"
        )
    return 0 if worst < 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
