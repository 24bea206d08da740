"""Context mixing: how much each token contributes, counting values and the residual stream.

Weights alone mislead: a head may put most of its weight on a token whose value vector,
through the output projection, is tiny (Kobayashi et al. 2020, "Attention is Not Only a
Weight: Analyzing Transformers with Vector Norms"), and most of a token's own information
travels through the residual connection (Ferrando et al. 2022, "Measuring the Mixing of
Contextual Information in the Transformer", ALTI). For layer l, head h, query i, key j,
with alpha the weights and ``f_h(x_j) = W_O[:, h] v^h_j`` token j's value through head
h's slice of the output projection:

- ``norm``: ``alpha^h_ij ||f_h(x_j)||``, rows normalised (per head);
- ``norm_layer``: ``|| sum_h alpha^h_ij f_h(x_j) ||``, rows normalised (per layer);
- ``alti``: ``T_i(x_j) = sum_h alpha^h_ij f_h(x_j) + [i = j] x_i`` (x: the residual
  entering the block); post-norm blocks pass it through the block's LayerNorm as a linear
  map (``gamma (T - mean T) / sigma_i``), pre-norm blocks keep it; then
  ``c_ij = max(0, ||y_i||_1 - ||y_i - T~_i(x_j)||_1)``, rows normalised, with y_i the
  block's LayerNorm output (post-norm) or the residual after attention (pre-norm).

Every layer's decomposition is checked to rebuild the block's own output, observed by
hooks in the same pass; a model where it does not is not shown these measures.

This module runs inside the forward pass (torch, on the model's device); ALTI rollout,
a product over layers, is numpy in :mod:`reportgen.analysis`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NORM, NORM_LAYER, ALTI = "norm", "norm_layer", "alti"
MEASURES = (NORM, NORM_LAYER, ALTI)
# Query rows per step of the per-layer measures: each step holds rows x n x d floats.
ROW_CHUNK = 64


@dataclass(frozen=True)
class BlockParts:
    """Where a family's attention block keeps its parts, relative to the block.

    `out` is the output projection; `norm` the LayerNorm after the residual sum
    (post-norm) or the norm the attention reads through (pre-norm).
    """

    out: str
    norm: str
    post: bool


_BERT = BlockParts("attention.output.dense", "attention.output.LayerNorm", post=True)
_BART = BlockParts("self_attn.out_proj", "self_attn_layer_norm", post=True)
_LLAMA = BlockParts("self_attn.o_proj", "input_layernorm", post=False)
# The families whose blocks the decomposition covers, by config.model_type; any other
# architecture gets the measures withheld with one line, not guessed.
FAMILIES: dict[str, BlockParts] = {
    "bert": _BERT,
    "roberta": _BERT,
    "xlm-roberta": _BERT,
    "distilbert": BlockParts("attention.out_lin", "sa_layer_norm", post=True),
    "gpt2": BlockParts("attn.c_proj", "ln_1", post=False),
    "llama": _LLAMA,
    "mistral": _LLAMA,
    "qwen2": _LLAMA,
    "bart": _BART,
    "marian": _BART,
    "t5": BlockParts("layer.0.SelfAttention.o", "layer.0.layer_norm", post=False),
}


@dataclass(frozen=True)
class Block:
    """One layer's resolved modules (see :class:`BlockParts`)."""

    out: Any
    norm: Any
    post: bool


def find_blocks(model: Any, attention: dict[int, str]) -> dict[int, Block] | str:
    """Each layer's block, from its attention module's qualified name; or why not.

    `attention` maps a layer index to the attention module's name in `model`.
    """
    kind = getattr(model.config, "model_type", "")
    parts = FAMILIES.get(kind)
    if parts is None:
        return f"the decomposition does not cover the '{kind}' architecture"
    found: dict[int, Block] = {}
    for layer, name in attention.items():
        bits = name.split(".")
        for cut in range(len(bits) - 1, 0, -1):
            block = model.get_submodule(".".join(bits[:cut]))
            try:
                out, norm = block.get_submodule(parts.out), block.get_submodule(parts.norm)
            except AttributeError:
                continue
            found[layer] = Block(out, norm, parts.post)
            break
        else:
            return f"layer {layer + 1} has no '{parts.out}' and '{parts.norm}' beside its attention"
    return found


def out_matrix(out: Any) -> Any:
    """The output projection as ``(d_model, heads * d_head)`` and its bias (or None).

    torch Linear stores ``(out, in)``; GPT-2's Conv1D stores ``(in, out)``.
    """
    import torch

    weight = out.weight if isinstance(out, torch.nn.Linear) else out.weight.t()
    bias = getattr(out, "bias", None)
    # Parameters, read without autograd whoever calls.
    return weight.detach(), None if bias is None else bias.detach()


def tolerance(dtype: Any) -> float:
    """How closely the decomposition must rebuild a block's output, relative to its scale:
    float32 sums of a few hundred products, or the few bits of half precision."""
    import torch

    return max(1e-4, 16 * torch.finfo(dtype).eps)


@dataclass(frozen=True)
class LayerInputs:
    """One item's layer, unpadded: what the measures are computed from.

    `alpha` ``(heads, n, n)``; `value` ``(kv_heads, n, d_head)``; `x` the residual
    entering the block ``(n, d)``; `attn_out` the output projection's output ``(n, d)``;
    `y` the block's LayerNorm output (post-norm only) ``(n, d)``.
    """

    alpha: Any
    value: Any
    x: Any
    attn_out: Any
    y: Any
    block: Block


@dataclass(frozen=True)
class LayerMeasures:
    """What the measures give for one layer (float32 numpy, None when not named), and how
    far the decomposition is from the block's own output (relative)."""

    norm: Any
    norm_layer: Any
    alti: Any
    error: float


def _rows(m: Any) -> Any:
    """Rows divided by their sum (a row of zeros stays zeros)."""
    s = m.sum(dim=-1, keepdim=True)
    return m / s.clamp_min(1e-30)


def layer_measures(inp: LayerInputs, names: frozenset[str]) -> LayerMeasures:
    """The named measures of one layer, in float32 on the layer's device."""
    import torch

    alpha = inp.alpha.float()
    heads, n, _ = alpha.shape
    value = inp.value.float()
    if value.shape[0] != heads:  # grouped-query attention: head h reads kv head h // g
        value = value.repeat_interleave(heads // value.shape[0], dim=0)
    weight, bias = out_matrix(inp.block.out)
    d_model = weight.shape[0]
    w = weight.float().reshape(d_model, heads, -1)
    # f[h, j] = W_O[:, h] v^h_j: every token's value through every head, (heads, n, d).
    f = torch.einsum("hjk,dhk->hjd", value, w)
    x = inp.x.float()
    b = bias.float() if bias is not None else torch.zeros(d_model, device=x.device)
    # The self-check: sum_j of the pieces plus the bias must be the block's own output.
    mixed = torch.einsum("hij,hjd->id", alpha, f)
    if inp.block.post:
        norm = inp.block.norm
        z = mixed + b + x
        mean = z.mean(dim=-1, keepdim=True)
        sigma = torch.sqrt(z.var(dim=-1, unbiased=False, keepdim=True) + norm.eps)
        gamma = norm.weight.float()
        beta = norm.bias.float() if norm.bias is not None else 0.0
        rebuilt, observed = gamma * (z - mean) / sigma + beta, inp.y.float()
    else:
        rebuilt, observed = mixed + b, inp.attn_out.float()
    error = float((rebuilt - observed).abs().max()) / max(1.0, float(observed.abs().max()))
    out_norm = out_layer = out_alti = None
    if NORM in names:
        out_norm = _rows(alpha * f.norm(dim=-1)[:, None, :]).cpu().numpy()
    if NORM_LAYER in names or ALTI in names:
        layer_rows = torch.empty(n, n) if NORM_LAYER in names else None
        alti_rows = torch.empty(n, n) if ALTI in names else None
        y = inp.y.float() if inp.block.post else x + inp.attn_out.float()
        for start in range(0, n, ROW_CHUNK):
            stop = min(n, start + ROW_CHUNK)
            # T[i, j] = sum_h alpha_ij f_h(x_j) for the chunk's query rows: (rows, n, d).
            t = torch.einsum("hij,hjd->ijd", alpha[:, start:stop], f)
            if layer_rows is not None:
                layer_rows[start:stop] = t.norm(dim=-1).cpu()
            if alti_rows is not None:
                rows = torch.arange(start, stop, device=t.device)
                t[rows - start, rows] += x[start:stop]
                if inp.block.post:
                    t = gamma * (t - t.mean(dim=-1, keepdim=True)) / sigma[start:stop, None]
                yi = y[start:stop, None, :]
                c = yi.abs().sum(dim=-1) - (yi - t).abs().sum(dim=-1)
                alti_rows[start:stop] = c.clamp_min(0).cpu()
        if layer_rows is not None:
            out_layer = _rows(layer_rows).numpy()
        if alti_rows is not None:
            out_alti = _rows(alti_rows).numpy()
    return LayerMeasures(out_norm, out_layer, out_alti, error)
