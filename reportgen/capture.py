"""The capture seam: one attention function that every supported family calls.

transformers 5 routes each attention module of BERT, RoBERTa, DistilBERT, GPT-2, Llama
(and GGUF), BART, Marian and T5 through ``ALL_ATTENTION_FUNCTIONS``. reportgen registers
:func:`attention` there under :data:`NAME` and loads models with
``attn_implementation=NAME``. Inside it the module's query and key (Llama's after rotary
embedding, before grouped-query expansion), the mask, the scaling and T5's relative
``position_bias`` are all at hand: the weights are rebuilt from them in float32, exactly
as eager attention computes them, while the layer's output comes from the fast kernel
(``sdpa_attention_forward``), so the model's outputs are the fast kernel's.

Outside a :func:`routed` block the function is plain sdpa attention: nothing is
computed that nobody reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any

NAME = "reportgen"

# What a consumer can name from one attention call (extract.LayerSink.names).
WEIGHTS, QUERIES, KEYS, VALUES = "weights", "queries", "keys", "values"
NAMES = (WEIGHTS, QUERIES, KEYS, VALUES)


@dataclass(frozen=True)
class Site:
    """What one attention call saw: the module's tensors, before any expansion.

    `query` is ``(batch, heads, q, d)``; `key` and `value` are ``(batch, kv_heads, k, d)``
    (grouped-query models have fewer key-value heads). Valid only during delivery.
    """

    module: Any
    query: Any
    key: Any
    value: Any
    mask: Any
    scaling: float
    is_causal: bool | None
    position_bias: Any
    # Each query row's log-sum-exp of its scores, ``(batch, heads, q)`` float32, where the
    # call ran the kernel that returns it (a route that asks, see :func:`attention`).
    lse: Any = None

    def item(self, b: int, nq: int, nk: int) -> Site:
        """Item `b` of the batch alone, cropped to its `nq` queries and `nk` keys (right
        padding): batch 1, its mask and bias rows as they apply to it."""

        def crop(t: Any, last: int) -> Any:
            if t is None:
                return None
            t = t[b : b + 1] if t.shape[0] > 1 else t
            t = t if t.shape[-2] == 1 else t[..., :nq, :]
            return t[..., :last]

        return Site(
            self.module,
            self.query[b : b + 1, :, :nq],
            self.key[b : b + 1, :, :nk],
            self.value[b : b + 1, :, :nk],
            crop(self.mask, nk),
            self.scaling,
            self.is_causal,
            crop(self.position_bias, nk),
            None if self.lse is None else self.lse[b : b + 1, :, :nq],
        )

    def weights(self, start: int = 0, stop: int | None = None, *, crop: bool = False) -> Any:
        """The layer's attention weights, float32 ``(batch, heads, q, k)``; with `start`
        and `stop`, only those query rows (a long input's layer a few rows at a time);
        with `crop`, see :func:`rebuild_weights`."""
        return rebuild_weights(self, start, stop, crop=crop)


# One (stream, layer) per module of the model being captured, and who receives it.
Deliver = Callable[[str, int, Site], None]


@dataclass(frozen=True)
class _Route:
    layers: dict[int, tuple[str, int]]  # id(module) -> (stream, layer)
    deliver: Deliver
    lse: bool = False  # run the kernel that returns each row's log-sum-exp, where it can


_ROUTE: ContextVar[_Route | None] = ContextVar("reportgen_capture", default=None)


def _rows(t: Any, start: int, stop: int) -> Any:
    """Query rows of a ``(..., q, k)`` mask or bias; a broadcast row axis stays whole."""
    return t if t.shape[-2] == 1 else t[..., start:stop, :]


def is_causal_call(site: Site) -> bool:
    """Whether sdpa reads the call as causal: no mask, and the call or module says so."""
    if site.mask is not None:
        return False
    return bool(
        site.is_causal if site.is_causal is not None else getattr(site.module, "is_causal", True)
    )


def rebuild_weights(
    site: Site, start: int = 0, stop: int | None = None, *, crop: bool = False
) -> Any:
    """Softmax of ``q k^T * scaling + position_bias + mask`` in float32, with the mask
    read as sdpa reads it (boolean: keep; float: added; none: causal when the module is),
    for query rows ``start:stop`` (all by default). With `crop`, a causal call's keys
    after the last row, all zero weight, are left out: ``(batch, heads, rows, stop)``,
    half the work of a layer's rows on average."""
    import torch

    stop = site.query.shape[-2] if stop is None else stop
    query, key = site.query[..., start:stop, :].float(), site.key.float()
    if crop and is_causal_call(site) and site.query.shape[-2] == site.key.shape[-2]:
        key = key[..., :stop, :]
    groups = query.shape[1] // key.shape[1]
    if groups > 1:  # grouped-query attention: query head h reads key head h // groups
        key = key.repeat_interleave(groups, dim=1)
    # In place after the product: one layer's scores and its weights are the peak.
    scores = torch.matmul(query, key.transpose(-1, -2)).mul_(site.scaling)
    if site.position_bias is not None:
        scores.add_(_rows(site.position_bias, start, stop).float())
    low = torch.finfo(torch.float32).min  # eager's fill: a fully masked row stays finite
    mask = site.mask
    if mask is None:
        nq, nk = scores.shape[-2:]
        # Upper-left aligned, as sdpa's is_causal (transformers crops longer keys): row i
        # (of the whole layer) keeps keys 0..i, so only keys from `start` on can be masked
        # in rows start..stop.
        if is_causal_call(site) and site.query.shape[-2] > 1 and start < nk:
            above = torch.ones(nq, nk - start, dtype=torch.bool, device=scores.device)
            scores[..., start:].masked_fill_(above.triu(1), low)
    elif mask.dtype == torch.bool:
        scores.masked_fill_(~_rows(mask, start, stop), low)
    else:
        scores.add_(_rows(mask, start, stop).float())
    return torch.softmax(scores, dim=-1)


def _lse_kernel_takes(site: Site, dropout: float) -> bool:
    """Whether the call is one that torch's flash kernel for CPU computes exactly as sdpa
    would (sdpa picks that kernel for it): float32 on the CPU, no mask or bias, no
    dropout, queries and keys of one length (self-attention)."""
    import torch

    q = site.query
    return (
        q.device.type == "cpu"
        and q.dtype == site.key.dtype == site.value.dtype == torch.float32
        and site.mask is None
        and site.position_bias is None
        and not dropout
        and q.shape[-2] == site.key.shape[-2]
        and q.shape[-1] == site.value.shape[-1]
    )


def _with_lse(site: Site) -> tuple[Any, Any]:
    """The call's output, as sdpa_attention_forward returns it (``(batch, q, heads, d)``),
    and each row's log-sum-exp ``(batch, heads, q)``: the fast kernel, with the log-sum-exp
    it computes anyway (issue 21: a tile's weights are then ``exp(q k^T * scale - lse)``)."""
    import torch

    groups = site.query.shape[1] // site.key.shape[1]
    key, value = site.key, site.value
    if groups > 1:  # grouped-query attention, as sdpa_attention_forward's repeat_kv
        key = key.repeat_interleave(groups, dim=1)
        value = value.repeat_interleave(groups, dim=1)
    causal = is_causal_call(site) and site.query.shape[-2] > 1
    out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
        site.query, key, value, 0.0, causal, scale=site.scaling
    )[:2]
    return out.transpose(1, 2).contiguous(), lse


def attention(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    position_bias: Any = None,
    **kwargs: Any,
) -> tuple[Any, None]:
    """The registered attention function: hand the call to the active route, then compute
    the output with sdpa."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    route = _ROUTE.get()
    if route is not None:
        where = route.layers.get(id(module))
        if where is not None:
            scale = scaling if scaling is not None else query.shape[-1] ** -0.5
            site = Site(module, query, key, value, attention_mask, scale, is_causal, position_bias)
            if route.lse and _lse_kernel_takes(site, dropout):
                out, lse = _with_lse(site)
                route.deliver(where[0], where[1], replace(site, lse=lse))
                return out, None
            route.deliver(where[0], where[1], site)
    return sdpa_attention_forward(
        module,
        query,
        key,
        value,
        attention_mask,
        dropout=dropout,
        scaling=scaling,
        is_causal=is_causal,
        position_bias=position_bias,
        **kwargs,
    )


# Families whose attention scores are exactly ``q k^T * scaling + position_bias + mask``
# as the function receives them (each checked against eager in tests/test_capture.py
# and tests/test_families.py), by config.model_type.
EXACT_FAMILIES = frozenset(
    {"bert", "roberta", "xlm-roberta", "distilbert", "gpt2", "llama", "mistral", "qwen2"}
    | {"bart", "marian", "t5", "mt5"}
)


def needs_eager(config: Any) -> str | None:
    """Why the weights of a model with this configuration cannot be rebuilt from what
    its attention function receives (so it runs eager attention), or None.

    Terms the function does not see or the rebuild does not add (ALiBi biases, soft-capped
    logits, learned sink logits) would give guessed weights, never shown.
    """
    kind = getattr(config, "model_type", "")
    if getattr(config, "attn_logit_softcapping", None) is not None:
        return f"'{kind}' soft-caps its attention scores"
    if getattr(config, "alibi", False) or kind in ("bloom", "mpt"):
        return f"'{kind}' adds ALiBi position biases inside its attention"
    if kind == "gpt_oss":
        return f"'{kind}' adds learned sink logits to its attention"
    if kind not in EXACT_FAMILIES:
        return f"the rebuild of the weights is not verified for the '{kind}' architecture"
    return None


_registered = False


def register() -> str:
    """Register the function and its mask (sdpa's) with transformers, once; return NAME."""
    global _registered
    if not _registered:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

        AttentionInterface.register(NAME, attention)
        AttentionMaskInterface.register(NAME, sdpa_mask)
        _registered = True
    return NAME


@contextmanager
def routed(
    layers: dict[int, tuple[str, int]], deliver: Deliver, lse: bool = False
) -> Iterator[None]:
    """Within the block, every call from a module in `layers` is delivered; with `lse`,
    calls the flash kernel takes run it and are delivered with each row's log-sum-exp."""
    token = _ROUTE.set(_Route(layers, deliver, lse))
    try:
        yield
    finally:
        _ROUTE.reset(token)


@contextmanager
def eager(model: Any) -> Iterator[None]:
    """Within the block, `model` runs transformers' eager attention (which returns its
    weights as outputs), for architectures whose attention modules are not declared."""
    before = getattr(model.config, "_attn_implementation", None)
    if before != NAME:
        yield
        return
    model.set_attn_implementation("eager")
    try:
        yield
    finally:
        model.set_attn_implementation(NAME)
