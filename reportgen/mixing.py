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

import numpy as np

NORM, NORM_LAYER, ALTI = "norm", "norm_layer", "alti"
MEASURES = (NORM, NORM_LAYER, ALTI)


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
    """One layer of a padded batch (right padding): what the measures are computed from.

    `alpha` ``(batch, heads, q, n)``, zero on padded keys: every query row (q = n), or
    only the rows at `positions`; `value` ``(batch, kv_heads, n, d_head)``; `x` the
    residual entering the block ``(batch, n, d)``; `attn_out` the output projection's
    output ``(batch, n, d)``; `y` the block's LayerNorm output (post-norm only) ``(batch,
    n, d)``; `lengths` each item's real tokens.
    """

    alpha: Any
    value: Any
    x: Any
    attn_out: Any
    y: Any
    block: Block
    lengths: tuple[int, ...]
    positions: tuple[int, ...] | None = None


@dataclass(frozen=True)
class LayerMeasures:
    """What the measures give for one item's layer (float32 numpy, None when not named),
    and how far the decomposition is from the block's own output (relative).

    Maps are ``[heads, q, n]`` (norm) and ``[q, n]`` (the per-layer ones), over every
    query row or, where the inputs named `positions`, over those rows in their order."""

    norm: Any
    norm_layer: Any
    alti: Any
    error: float


def _rows(m: Any) -> Any:
    """Rows divided by their sum (a row of zeros stays zeros)."""
    s = m.sum(dim=-1, keepdim=True)
    return m / s.clamp_min(1e-30)


# Floats per step of the per-layer measures (rows x n x d for each item of the batch):
# 64 MB, so a 512-token sentence takes ~85 query rows a step and a batch of short
# sentences one step for all.
STEP_VALUES = 1 << 24


def _heads_value(value: Any, heads: int) -> Any:
    """Values per query head: with grouped-query attention head h reads kv head h // g."""
    value = value.float()
    if value.shape[1] != heads:
        value = value.repeat_interleave(heads // value.shape[1], dim=1)
    return value


def value_norms(value: Any, block: Block, heads: int) -> Any:
    """``||f_h(x_j)||`` for every key: ``(batch, heads, n)``.

    ``||W_O[:, h] v||^2 = v^T (W_h^T W_h) v``: through each head's d_head x d_head Gram
    matrix, without forming every f (Kobayashi et al. 2020 take the same norm)."""
    weight, _ = out_matrix(block.out)
    w = weight.float().reshape(weight.shape[0], heads, -1)
    return _norms(_heads_value(value, heads), w)


def _norms(value: Any, w: Any) -> Any:
    """:func:`value_norms` from values already per query head and ``W_O`` as ``(d, heads,
    d_head)``."""
    import torch

    gram = torch.einsum("dhk,dhl->hkl", w, w)
    return ((value @ gram) * value).sum(dim=-1).clamp_min(0).sqrt()


def layer_measures(inp: LayerInputs, names: frozenset[str]) -> list[LayerMeasures]:
    """The named measures of one layer for every item of the batch at once (one set of
    kernels per layer, not per sentence), in float32 on the layer's device.

    Padded keys carry zero weight, so they add nothing to any item's rows; padded query
    rows are computed and dropped. With `positions` only those query rows are computed
    and checked (a long input's exact rows: a few rows of n x d each)."""
    import torch

    alpha = inp.alpha.float()
    batch, heads, nq, n = alpha.shape
    value = _heads_value(inp.value, heads)
    weight, bias = out_matrix(inp.block.out)
    d_model = weight.shape[0]
    w = weight.float().reshape(d_model, heads, -1)
    device = alpha.device
    where = (
        torch.arange(n, device=device)
        if inp.positions is None
        else torch.tensor(inp.positions, device=device, dtype=torch.long)
    )
    x_all = inp.x.float()
    x = x_all[:, where]  # the residual at the query rows
    b = bias.float() if bias is not None else torch.zeros(d_model, device=device)
    # The self-check: sum_j of the pieces plus the bias must be the block's own output.
    # By linearity sum_j alpha_ij f_h(x_j) = W_O[:, h] (sum_j alpha_ij v^h_j): the heads'
    # mixed values through the projection, as the model computes it (fewer operations
    # than through every f at sentence lengths).
    mixed = torch.nn.functional.linear(
        (alpha @ value).transpose(1, 2).reshape(batch, nq, -1), weight.float()
    )
    if inp.block.post:
        norm = inp.block.norm
        z = mixed + b + x
        mean = z.mean(dim=-1, keepdim=True)
        sigma = torch.sqrt(z.var(dim=-1, unbiased=False, keepdim=True) + norm.eps)
        gamma = norm.weight.float()
        beta = norm.bias.float() if norm.bias is not None else 0.0
        rebuilt, observed = gamma * (z - mean) / sigma + beta, inp.y.float()[:, where]
    else:
        rebuilt, observed = mixed + b, inp.attn_out.float()[:, where]
    lengths = torch.tensor(inp.lengths, device=device)
    real = where[None, :] < lengths[:, None]  # (batch, q): real tokens, not padding
    off = ((rebuilt - observed).abs().amax(-1) * real).amax(-1)
    scale = (observed.abs().amax(-1) * real).amax(-1).clamp_min(1.0)
    errors = (off / scale).tolist()
    out_norm = out_layer = out_alti = None
    if NORM in names:
        out_norm = _rows(alpha * _norms(value, w)[:, :, None, :])
        out_norm = out_norm.cpu().numpy()
    if NORM_LAYER in names or ALTI in names:
        layer_rows = torch.empty(batch, nq, n) if NORM_LAYER in names else None
        alti_rows = torch.empty(batch, nq, n) if ALTI in names else None
        # The output each row's pieces are measured against (see the module's doc).
        y = inp.y.float()[:, where] if inp.block.post else x + inp.attn_out.float()[:, where]
        # f[b, h, j] = W_O[:, h] v^h_j: every token's value through every head.
        f = torch.einsum("bhjk,dhk->bhjd", value, w)
        step = max(1, STEP_VALUES // (batch * n * d_model))
        for start in range(0, nq, step):
            stop = min(nq, start + step)
            # T[b, i, j] = sum_h alpha_ij f_h(x_j) for the step's query rows.
            t = torch.einsum("bhij,bhjd->bijd", alpha[:, :, start:stop], f)
            if layer_rows is not None:
                layer_rows[:, start:stop] = t.norm(dim=-1).cpu()
            if alti_rows is not None:
                rows = torch.arange(start, stop, device=device)
                t[:, rows - start, where[start:stop]] += x[:, start:stop]
                if inp.block.post:
                    t = gamma * (t - t.mean(dim=-1, keepdim=True)) / sigma[:, start:stop, None]
                yi = y[:, start:stop, None, :]
                c = yi.abs().sum(dim=-1) - (yi - t).abs().sum(dim=-1)
                alti_rows[:, start:stop] = c.clamp_min(0).cpu()
        if layer_rows is not None:
            out_layer = _rows(layer_rows).numpy()
        if alti_rows is not None:
            out_alti = _rows(alti_rows).numpy()

    def item(m: Any, b: int, k: int) -> Any:
        if m is None:
            return None
        rows = m[b, ..., :k, :k] if inp.positions is None else m[b, ..., :k]
        return np.ascontiguousarray(rows)

    return [
        LayerMeasures(item(out_norm, b, k), item(out_layer, b, k), item(out_alti, b, k), e)
        for b, (k, e) in enumerate(zip(inp.lengths, errors, strict=True))
    ]
