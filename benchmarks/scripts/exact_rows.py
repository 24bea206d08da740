"""The long path's exact rows against eager attention, in its own process.

Usage: exact_rows.py MODEL TEXT_FILE EXPORT_JSON
Runs the model once more on eager attention over the text (every layer's weights, about
1 GB at 900 tokens for SmolLM2) and compares the export's exact rows (the long path's,
on the fast kernel, at the export's 1e-6) with eager's rows at the same positions.
Prints one JSON line: worst (largest absolute difference), rows, layers, heads."""

import json
import sys
from pathlib import Path

import numpy as np
import torch

from reportgen.config import ReportConfig
from reportgen.models import load_model

model_path, text_path, export_path = sys.argv[1:4]
text = Path(text_path).read_text(encoding="utf-8")
item = json.loads(Path(export_path).read_text(encoding="utf-8"))["items"][0]
loaded = load_model(ReportConfig(model=model_path, device="cpu"))
loaded.model.set_attn_implementation("eager")
enc = loaded.tokenizer(text, return_tensors="pt")
with torch.inference_mode():
    out = loaded.model(**enc, output_attentions=True)
eager = torch.stack(out.attentions, dim=1)[0].numpy()  # [layers, heads, n, n]
worst = 0.0
for row in item["rows"]:
    got = np.asarray(row["attention"])
    worst = max(worst, float(np.abs(got - eager[:, :, row["position"], :]).max()))
print(json.dumps({"worst": worst, "rows": len(item["rows"]), "layers": int(eager.shape[0])}))
