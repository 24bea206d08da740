"""One long-input measurement in its own process, so ru_maxrss is its peak.

Usage: long_input.py MODE MODEL TEXT_FILE OUT_HTML
  bare: reportgen loads the model; one eager forward pass over the text, nothing kept.
  sdpa: the same with the model's fast attention (torch's scaled_dot_product_attention),
        what the long path keeps running while it rebuilds the weights it needs.
  ours: the real CLI on the whole text as one JSONL input, writing the HTML report and
        --export-json beside it.
Prints one JSON line: work (s, the forward pass or the CLI), total (s, from the start of
this script, imports included), peak (bytes), size and export (bytes; 0 when bare)."""

import json
import resource
import sys
import time
from pathlib import Path

START = time.perf_counter()


def bare(model_path: str, text: str, attention: str = "eager") -> float:
    import torch

    from reportgen.config import ReportConfig
    from reportgen.models import load_model

    loaded = load_model(ReportConfig(model=model_path, device="cpu"))
    loaded.model.set_attn_implementation(attention)
    enc = loaded.tokenizer(text, return_tensors="pt")
    begin = time.perf_counter()
    with torch.inference_mode():
        loaded.model(**enc)  # eager attention, computed and dropped layer by layer
    return time.perf_counter() - begin


def ours(model_path: str, text: str, out: Path) -> float:
    from reportgen.cli import main

    source = out.with_suffix(".jsonl")
    source.write_text(json.dumps({"text": text}) + "\n", encoding="utf-8")
    args = ["-i", str(source), "-m", model_path, "--device", "cpu", "-q", "-o", str(out)]
    args += ["--export-json", str(out.with_suffix(".json"))]
    begin = time.perf_counter()
    try:
        main(args, standalone_mode=False)
    except SystemExit as exc:
        if exc.code:
            raise
    return time.perf_counter() - begin


mode, model_path, text_path, out_path = sys.argv[1:5]
text = Path(text_path).read_text(encoding="utf-8")
out = Path(out_path)
if mode in ("bare", "sdpa"):
    work, size, export = bare(model_path, text, "eager" if mode == "bare" else "sdpa"), 0, 0
else:
    work = ours(model_path, text, out)
    size, export = out.stat().st_size, out.with_suffix(".json").stat().st_size
record = {
    "work": work,
    "total": time.perf_counter() - START,
    "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    "size": size,
    "export": export,
}
print(json.dumps(record))
