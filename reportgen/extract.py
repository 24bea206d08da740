"""The forward pass: attention streamed layer by layer, as the model computes it.

A forward hook on every attention module (eager implementation) sees one layer's
``(batch, heads, q, k)`` weights while the pass runs; each item's slice is copied
straight into its consumer (a preallocated float32 ``[layers, heads, q, k]`` map, or a
reducer that keeps only what the page needs) and the layer is released. No stack of
every layer (``output_attentions``) is ever held, except as the fallback for
architectures that declare no recordable attention modules.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from reportgen import analysis, capture, memory, mixing, tiles
from reportgen.config import (
    AttentionMap,
    AttentionResult,
    ExactRow,
    Extraction,
    InputBatch,
    LongAttention,
    LongExtraction,
    LongMeasures,
    LongResult,
    Measures,
    NextToken,
    QueriesKeys,
    ReportConfig,
    SentenceInput,
    TokenSeq,
)
from reportgen.errors import InputError, ModelError
from reportgen.models import LoadedModel, Log, ModelSpec, load_model
from reportgen.safety import public_name
from reportgen.tokens import token_seq

Progress = Callable[[int, int], None]

ROW_SUM_TOLERANCE = 1e-3
TOP_NEXT_TOKENS = 5
# The streams of attention a model can have: one for encoder-only and causal models,
# three for encoder-decoder models.
SELF, DECODER, CROSS = "self", "decoder", "cross"


def _quiet_log(_: str) -> None:
    pass


@dataclass(frozen=True)
class Captured:
    """One item's layer of one stream: what its sink named (capture.NAMES), else None.

    `weights` is float32 ``[heads, q, k]`` (the sink's buffer, or a read-only view valid
    only during the call); `queries` ``[heads, q, d]``; `keys` and `values`
    ``[kv_heads, k, d]`` (grouped-query models: query head h reads key head
    ``h // (heads / kv_heads)``), float32 copies, Llama's after rotary embedding.
    """

    weights: NDArray[np.float32] | None
    queries: NDArray[np.float32] | None = None
    keys: NDArray[np.float32] | None = None
    values: NDArray[np.float32] | None = None
    # The context-mixing measures the sink named (mixing.MEASURES), self stream only, or
    # why they are withheld for this model.
    mixing: mixing.LayerMeasures | None = None
    withheld: str | None = None
    # The layer reduced (tiles.py), for a sink with a `plan`, in place of its weights.
    reduced: tiles.Reduced | None = None
    # The query positions `mixing` holds, when it holds only some rows of the layer (a
    # long input's exact rows, after the chunks of its weights); None: every row.
    positions: tuple[int, ...] | None = None
    # With `queries` named: the call's scaling, and T5's relative position bias
    # ``[heads, q, k]`` float32 (None where the family has none), the score's other terms.
    scaling: float | None = None
    bias: NDArray[np.float32] | None = None


class LayerSink(Protocol):
    """Receives one item's attention, one layer of one stream at a time.

    `names` says what it reads from the pass (a subset of capture.NAMES); only that is
    computed and copied, as TransformerLens's ``run_with_cache(names_filter=...)``. A
    sink with a ``plan(stream, nq, nk) -> tiles.Plan`` method that names only weights and
    measures takes each layer reduced to that plan (``Captured.reduced``, made tile by
    tile on the device, so no layer's full weights exist), norm's overview with it, and
    every named measure once more, after the layer, at the query rows its `positions`
    attribute names (``{stream: positions}``), with the self-check's verdict.
    """

    names: frozenset[str]

    def buffer(
        self, stream: str, layer: int, shape: tuple[int, int, int]
    ) -> NDArray[np.float32] | None:
        """A float32 ``[heads, q, k]`` array to fill with this layer's weights, or None to
        be handed a read-only view of the rebuilt weights (no copy on CPU)."""
        ...

    def take(self, stream: str, layer: int, captured: Captured) -> None:
        """Called once per layer with what the sink named."""
        ...


class StoreSink:
    """Keeps every layer: writes each into one preallocated ``[layers, heads, q, k]`` map,
    the self stream's named measures into ``[layers, (heads,) n, n]`` arrays and, with
    `qk`, its queries and keys (the page's "why this weight" panel)."""

    def __init__(
        self, layers: dict[str, int], measures: tuple[str, ...] = (), qk: bool = False
    ) -> None:
        self.layers = layers
        qk_names = (capture.QUERIES, capture.KEYS) if qk else ()
        self.names = frozenset({capture.WEIGHTS, *measures, *qk_names})
        self.maps: dict[str, NDArray[np.float32]] = {}
        self.measures: dict[str, NDArray[np.float32]] = {}
        self.withheld: str | None = None
        # The self stream's layers, by index: queries, keys, scaling, position bias.
        self.qk: dict[int, tuple[Any, Any, float, Any]] = {}

    def buffer(self, stream: str, layer: int, shape: tuple[int, int, int]) -> NDArray[np.float32]:
        arr = self.maps.get(stream)
        if arr is None:
            arr = np.empty((self.layers[stream], *shape), dtype=np.float32)
            self.maps[stream] = arr
        return arr[layer]

    def take(self, stream: str, layer: int, captured: Captured) -> None:
        if captured.withheld is not None and self.withheld is None:
            self.withheld = captured.withheld
        if stream == SELF and captured.queries is not None and captured.keys is not None:
            assert captured.scaling is not None  # delivered with the queries
            self.qk[layer] = (captured.queries, captured.keys, captured.scaling, captured.bias)
        m = captured.mixing
        if m is None:
            return
        for name in self.names & set(mixing.MEASURES):
            value = getattr(m, name)
            arr = self.measures.get(name)
            if arr is None:
                arr = np.empty((self.layers[stream], *value.shape), dtype=np.float32)
                self.measures[name] = arr
            arr[layer] = value

    def queries_keys(self, rotary: bool) -> QueriesKeys | None:
        """The self stream's queries and keys, every layer; None when not named."""
        count = self.layers.get(SELF, 0)
        if not count or len(self.qk) != count:
            return None
        layers = [self.qk[i] for i in range(count)]
        biases = [b for *_, b in layers]
        return QueriesKeys(
            queries=np.stack([q for q, *_ in layers]),
            keys=np.stack([k for _, k, *_ in layers]),
            scaling=tuple(float(s) for _, _, s, _ in layers),
            bias=None if any(b is None for b in biases) else np.stack(biases),
            rotary=rotary,
        )

    def result(self) -> Measures | None:
        """The measures kept, with ALTI's rollout; None when none were named or kept."""
        if self.withheld is not None or not self.measures:
            return None
        alti = self.measures.get(mixing.ALTI)
        return Measures(
            norm=self.measures.get(mixing.NORM),
            norm_layer=self.measures.get(mixing.NORM_LAYER),
            alti=alti,
            alti_rollout=None if alti is None else analysis.alti_rollout(alti).astype(np.float32),
        )


@dataclass(frozen=True)
class HookedModule:
    """An attention module whose output carries one layer's weights at `index`."""

    module: Any
    name: str
    stream: str
    layer: int
    index: int


def attention_modules(model: Any) -> list[HookedModule]:
    """The model's attention modules, by stream and layer, from its recordable outputs.

    Follows transformers' own rule for ``output_attentions`` (each sub-model's
    ``_can_record_outputs``, class and optional layer name), so the hooks see exactly
    what the model would return; cross-attention of encoder-decoder models is its own
    stream, and self-attention inside the decoder of one is the "decoder" stream.
    """
    from transformers.modeling_utils import PreTrainedModel

    found: list[tuple[str, Any, str, int]] = []

    def specs_of(module: Any) -> list[tuple[str, Any, str | None, int]]:
        out: list[tuple[str, Any, str | None, int]] = []
        for key, spec in (getattr(module, "_can_record_outputs", None) or {}).items():
            if key not in ("attentions", "cross_attentions"):
                continue
            for s in spec if isinstance(spec, list) else [spec]:
                if isinstance(s, type):
                    out.append((key, s, None, 1))
                elif isinstance(getattr(s, "target_class", None), type):
                    out.append((key, s.target_class, s.layer_name, int(s.index)))
        return out

    def walk(module: Any, name: str, specs: list[tuple[str, Any, str | None, int]]) -> None:
        for key, cls, layer_name, index in specs:
            if not isinstance(module, cls):
                continue
            if layer_name is not None and f".{layer_name.strip('.')}." not in name + ".":
                continue
            found.append((name, module, key, index))
        for child_name, child in module.named_children():
            child_specs = specs_of(child) if isinstance(child, PreTrainedModel) else specs
            walk(child, f"{name}.{child_name}", child_specs)

    walk(model, "", specs_of(model))
    decoder_ids: set[int] = set()
    if getattr(model.config, "is_encoder_decoder", False):
        decoder = model.get_decoder() if hasattr(model, "get_decoder") else None
        if decoder is not None:
            decoder_ids = {id(m) for m in decoder.modules()}
    counts: dict[str, int] = {}
    hooked: list[HookedModule] = []
    for name, module, key, index in found:
        if key == "cross_attentions":
            stream = CROSS
        else:
            stream = DECODER if id(module) in decoder_ids else SELF
        hooked.append(HookedModule(module, name.lstrip("."), stream, counts.get(stream, 0), index))
        counts[stream] = counts.get(stream, 0) + 1
    return hooked


def _row_tolerance(dtype: Any) -> float:
    """Half precision rounds every weight to its own few bits: the tolerance follows eps."""
    import torch

    return max(ROW_SUM_TOLERANCE, 8 * torch.finfo(dtype).eps)


def _check_layer(
    label: str, weights: Any, heads: int | None, tol: float = ROW_SUM_TOLERANCE
) -> None:
    """Finite weights whose rows sum to 1, checked on one layer (a torch view of it)."""
    import torch

    if weights.ndim != 3 or (heads is not None and weights.shape[0] != heads):
        raise ModelError(
            f"{label}: expected one (heads, n, n) map per layer, "
            f"got a layer shaped {tuple(weights.shape)}"
        )
    if not weights.numel():
        return
    # One pass over the layer: a NaN or an infinity in a row makes its sum non-finite, so
    # the row sums answer both questions (a full isfinite map and float64 sums each cost
    # as much as the forward pass's own softmax at thousands of tokens). Float32 sums of
    # n weights are exact to far below the tolerance.
    sums = weights.sum(dim=-1)
    if not bool(torch.isfinite(sums).all()):
        raise ModelError(f"{label}: the model returned non-finite attention weights")
    worst = float((sums.double() - 1.0).abs().max())
    if worst > tol:
        raise ModelError(
            f"{label}: attention rows do not sum to 1 (off by up to {worst:.3g}, more than "
            f"rounding explains, {tol:.3g}), so reportgen cannot show them as weights"
        )


def _check_reduced(
    label: str, layer: int, plan: tiles.Plan, reduced: tiles.Reduced, tol: float
) -> None:
    """:func:`_check_layer` for a layer that was reduced as it streamed: its values are
    finite and every query block's rows sum to 1 on average (their summed rows, divided
    by the block's size), as do the exact rows."""
    sizes = plan.query_sizes
    finite = np.isfinite(reduced.pooled).all() and np.isfinite(reduced.rows).all()
    if not (finite and np.isfinite(reduced.entropy).all()):
        raise ModelError(f"{label}: the model returned non-finite attention weights")
    off = np.abs(reduced.pooled.sum(-1) / sizes - 1.0)
    off_rows = np.abs(reduced.rows.sum(-1, dtype=np.float64) - 1.0)
    worst = float(max(off.max(initial=0.0), off_rows.max(initial=0.0)))
    if worst > tol:
        raise ModelError(
            f"{label}: layer {layer + 1}'s attention rows do not sum to 1 (off by up to "
            f"{worst:.3g}, more than rounding explains, {tol:.3g}), so reportgen cannot show "
            "them as weights"
        )


@dataclass(frozen=True)
class Sequences:
    """The token sequences of one item: its input, and the decoder's for encoder-decoders."""

    input: TokenSeq
    b_start: int | None
    decoder: TokenSeq | None = None


@dataclass(frozen=True)
class _Mix:
    """What the hooks saw of one layer's block (batched): see mixing.LayerInputs."""

    x: Any
    attn_out: Any
    y: Any
    block: mixing.Block


SinkFactory = Callable[[SentenceInput, Sequences, dict[str, int]], LayerSink]


def _store_sink(_: SentenceInput, __: Sequences, layers: dict[str, int]) -> LayerSink:
    return StoreSink(layers)


def _store_sinks(measures: tuple[str, ...], qk: bool = False) -> SinkFactory:
    def make(_: SentenceInput, __: Sequences, layers: dict[str, int]) -> LayerSink:
        return StoreSink(layers, measures, qk)

    return make


def token_limit(loaded: ModelSpec | LoadedModel, config: ReportConfig) -> tuple[int | None, str]:
    """The most tokens an input keeps, and why: the model's limit or `--max-tokens`."""
    limit, why = loaded.max_length, "the model's limit"
    if config.max_tokens is not None and (limit is None or config.max_tokens < limit):
        limit, why = config.max_tokens, "--max-tokens"
    return limit, why


def encode(
    loaded: ModelSpec | LoadedModel, item: SentenceInput, config: ReportConfig
) -> tuple[Any, int]:
    """Tokenise one input (cut to :func:`token_limit`); also return its full length."""
    tok = loaded.tokenizer
    kwargs: dict[str, Any] = {"return_offsets_mapping": bool(getattr(tok, "is_fast", False))}
    full = tok(item.text, item.text_pair, **kwargs)
    n = len(full["input_ids"])
    limit, _ = token_limit(loaded, config)
    if limit is not None and n > limit:
        if not config.truncate and config.max_tokens is None:
            raise InputError(
                f"{item.source}: {n} tokens, but the model takes at most {limit} "
                "(drop --no-truncate to cut it to fit)"
            )
        full = tok(item.text, item.text_pair, truncation=True, max_length=limit, **kwargs)
    return full, n


def extract(
    batch: InputBatch,
    config: ReportConfig,
    loaded: LoadedModel | None = None,
    log: Log = _quiet_log,
    progress: Progress | None = None,
    encoded: Sequence[tuple[Any, int]] | None = None,
    qk: bool = False,
) -> Extraction:
    """Run the model over every item and return per-sentence attention maps.

    `encoded` takes the output of :func:`encode` for every item when the caller has
    already tokenised (to check sizes before the forward pass). With `qk`, the first
    map also keeps its queries and keys (``AttentionMap.qk``), except on a model that
    runs eager attention (``Extraction.qk_withheld`` says why, asked or not).
    """
    loaded, encoded, warnings = _prepare(batch, config, loaded, log, encoded)
    results: list[AttentionResult | None] = [None] * len(batch.items)
    withheld: str | None = None
    # Eager attention never calls the capture seam: its queries and keys are never seen
    # (said whether or not they were asked for: the page names the reason either way).
    qk_withheld = loaded.eager_reason
    make = _store_sinks(config.measures, qk and qk_withheld is None)
    for i, res in stream_attention(loaded, batch.items, encoded, config, make, progress):
        sink, seqs, next_tokens = res
        assert isinstance(sink, StoreSink)
        withheld = withheld or sink.withheld
        results[i] = AttentionResult(
            item=batch.items[i],
            maps=_maps(loaded, sink, seqs),
            truncated=len(encoded[i][0]["input_ids"]) < encoded[i][1],
            next_tokens=next_tokens,
        )
    kept = tuple(r for r in results if r is not None)
    if withheld is not None:
        # One model, one answer: a measure withheld for one sentence is shown for none.
        kept = tuple(_without_measures(r) for r in kept)
    return Extraction(
        model=loaded.info,
        results=kept,
        warnings=tuple(warnings),
        measures_withheld=withheld,
        qk_withheld=qk_withheld,
    )


def is_rotary(config: Any) -> bool:
    """Whether a model's positions enter through a rotary embedding of q and k."""
    return any(
        getattr(config, name, None) is not None
        for name in ("rope_theta", "rope_parameters", "rope_scaling")
    )


def _without_measures(result: AttentionResult) -> AttentionResult:
    return replace(result, maps=tuple(replace(m, measures=None) for m in result.maps))


@dataclass(frozen=True)
class MapLayout:
    """Which stream becomes which map: its identifier (what the page data and the export
    key on) and its name (display only)."""

    stream: str
    id: str
    name: str
    query: TokenSeq
    key: TokenSeq
    causal: bool


def map_layout(kind: str, seqs: Sequences) -> tuple[MapLayout, ...]:
    """Which streams become which maps: one naming for full and long extractions."""
    if seqs.decoder is None:
        return (
            MapLayout(SELF, "self", "Self-attention", seqs.input, seqs.input, kind == "causal"),
        )
    dec = seqs.decoder
    return (
        MapLayout(SELF, "encoder_self", "Encoder self-attention", seqs.input, seqs.input, False),
        MapLayout(DECODER, "decoder_self", "Decoder self-attention", dec, dec, True),
        MapLayout(CROSS, "cross", "Cross-attention", dec, seqs.input, False),
    )


def _maps(loaded: LoadedModel, sink: StoreSink, seqs: Sequences) -> tuple[AttentionMap, ...]:
    # Segment B's start belongs to the input's own self-attention only.
    return tuple(
        AttentionMap(
            m.name,
            m.query,
            m.key,
            sink.maps[m.stream],
            causal=m.causal,
            sentence_b_start=seqs.b_start if m.stream == SELF else None,
            id=m.id,
            measures=sink.result() if m.stream == SELF else None,
            qk=sink.queries_keys(is_rotary(loaded.model.config)) if m.stream == SELF else None,
        )
        for m in map_layout(loaded.info.kind, seqs)
    )


def _prepare(
    batch: InputBatch,
    config: ReportConfig,
    loaded: LoadedModel | None,
    log: Log,
    encoded: Sequence[tuple[Any, int]] | None,
) -> tuple[LoadedModel, Sequence[tuple[Any, int]], list[str]]:
    """The model, every item's encoding and the truncation warnings, shared by
    :func:`extract` and :func:`extract_long`."""
    if loaded is None:
        loaded = load_model(config, log)
    if encoded is None:
        encoded = [encode(loaded, item, config) for item in batch.items]
    _, why = token_limit(loaded, config)
    warnings = [
        # Named as the page may name it (the page and the export carry these lines).
        f"{public_name(item.source)}: truncated from {n_full} to "
        f"{len(enc['input_ids'])} tokens ({why})"
        for item, (enc, n_full) in zip(batch.items, encoded, strict=True)
        if len(enc["input_ids"]) < n_full
    ]
    if loaded.eager_reason is not None:
        warnings.append(f"weights from eager attention: {loaded.eager_reason}")
    return loaded, encoded, warnings


def stream_attention(
    loaded: LoadedModel,
    items: Sequence[SentenceInput],
    encoded: Sequence[tuple[Any, int]],
    config: ReportConfig,
    make_sink: SinkFactory,
    progress: Progress | None = None,
) -> Any:
    """Yield ``(index, (sink, sequences, next_tokens))`` per item, in length-sorted batches.

    Each item's sink receives every layer of every stream during its batch's forward pass.
    """

    # Length-sorted batches waste little on padding; callers index results by item.
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]["input_ids"]))
    size = max(1, config.batch_size)
    done = 0
    for start in range(0, len(order), size):
        chunk = order[start : start + size]
        out_chunk = forward_batch(
            loaded, [items[i] for i in chunk], [encoded[i][0] for i in chunk], make_sink
        )
        yield from zip(chunk, out_chunk, strict=True)
        done += len(chunk)
        if progress is not None:
            progress(done, len(order))


def pad_encodings(tokenizer: Any, encodings: Sequence[Any]) -> dict[str, Any]:
    """The one padding of a batch (the tokenizer's own side and pad id), as tensors."""
    keys = ("input_ids", "attention_mask", "token_type_ids")
    features = [{k: list(e[k]) for k in keys if k in e} for e in encodings]
    return dict(tokenizer.pad(features, padding=True, return_tensors="pt"))


def forward_batch(
    loaded: LoadedModel,
    items: Sequence[SentenceInput],
    encodings: Sequence[Any],
    make_sink: SinkFactory,
    streams: tuple[str, ...] | None = None,
    with_next_tokens: bool = True,
) -> list[tuple[LayerSink, Sequences, tuple[NextToken, ...]]]:
    """The one forward pass: pad a batch of encodings, run the model, and hand each
    item's sink every layer of every stream. A consumer names what it reads, and only
    that runs: `streams` (an encoder-decoder asked for ``(SELF,)`` runs its encoder
    alone), `with_next_tokens` (without it a causal LM runs without its LM head)."""
    import torch

    info, tok, model = loaded.info, loaded.tokenizer, loaded.model
    encoder_only = info.kind == "encoder-decoder" and streams == (SELF,)
    wants_logits = info.kind == "causal" and with_next_tokens
    if encoder_only:
        model = model.get_encoder()
    elif info.kind == "causal" and not wants_logits:
        model = getattr(model, "base_model", model)
    inputs = {k: v.to(loaded.device) for k, v in pad_encodings(tok, encodings).items()}
    lengths = [len(e["input_ids"]) for e in encodings]
    seqs: list[Sequences] = []
    for item, encoding, n in zip(items, encodings, lengths, strict=True):
        fast = encoding.encodings[0] if getattr(encoding, "encodings", None) else None
        seq, b_start = token_seq(
            tok, list(encoding["input_ids"]), fast, (item.text, item.text_pair), n
        )
        seqs.append(Sequences(seq, b_start))
    kwargs: dict[str, Any] = {"return_dict": True}
    dec_lengths = lengths
    if info.kind == "encoder-decoder" and not encoder_only:
        dec_ids, dec_mask, dec_seqs = _decoder_inputs(loaded, items)
        kwargs["decoder_input_ids"] = dec_ids.to(loaded.device)
        kwargs["decoder_attention_mask"] = dec_mask.to(loaded.device)
        dec_lengths = [m for _, m in dec_seqs]
        seqs = [Sequences(s.input, s.b_start, d) for s, (d, _) in zip(seqs, dec_seqs, strict=True)]
    elif info.kind == "causal":
        inputs.pop("token_type_ids", None)
        if wants_logits and loaded.last_logits_only:
            # Logits only at each item's last position: at thousands of tokens, all
            # positions' logits would outweigh the attention of a layer.
            kwargs["logits_to_keep"] = torch.tensor(sorted({n - 1 for n in lengths}))
    hooked = attention_modules(loaded.model)
    if streams is not None:
        hooked = [h for h in hooked if h.stream in streams]
    layers: dict[str, int] = {}
    for h in hooked:
        layers[h.stream] = layers.get(h.stream, 0) + 1
    if hooked and layers.get(SELF, 0) != info.layers:
        raise ModelError(
            f"model '{info.name}' has attention in {layers.get(SELF, 0)} of its "
            f"{info.layers} layers (a hybrid architecture?); reportgen needs attention in "
            "every layer"
        )
    sizes = {
        SELF: (lengths, lengths),
        DECODER: (dec_lengths, dec_lengths),
        CROSS: (dec_lengths, lengths),
    }
    sinks: list[LayerSink] = []
    wanted: set[str] = set()  # what any sink of the batch names

    def deliver(
        stream: str,
        layer: int,
        weights: Any,
        site: capture.Site | None,
        mix: _Mix | None = None,
    ) -> None:
        """Hand each item its unpadded slice of one layer: the weights (copied into the
        sink's buffer and checked, or reduced for a sink that takes its layers reduced),
        the states and the measures it names."""
        if weights is not None and getattr(weights, "ndim", 0) != 4:
            weights = None
        if weights is None and capture.WEIGHTS in wanted:
            raise ModelError(
                f"model '{info.name}' returned no attention weights: it does not support "
                "attn_implementation='eager' with attention outputs"
            )
        states = wanted - {capture.WEIGHTS}
        if states and site is None:
            raise ModelError(
                f"model '{info.name}' computes its attention itself, not through "
                f"transformers' attention interface: its {', '.join(sorted(states))} cannot "
                "be captured"
            )
        q_lens, k_lens = sizes[stream]
        # The measures, for the whole batch in one set of kernels (mixing.layer_measures).
        by_item: list[mixing.LayerMeasures] | None = None
        tol = 0.0
        named = wanted & measures
        if named and stream == SELF and mix is not None and site is not None:
            width = max(q_lens)
            by_item = mixing.layer_measures(
                mixing.LayerInputs(
                    alpha=weights[:, :, :width, :width],
                    value=site.value[:, :, :width],
                    x=mix.x[:, :width],
                    attn_out=mix.attn_out[:, :width],
                    y=mix.y[:, :width] if mix.y is not None else None,
                    block=mix.block,
                    lengths=tuple(q_lens),
                ),
                frozenset(named),
            )
            tol = mixing.tolerance(site.value.dtype)
        for b, sink in enumerate(sinks):
            nq, nk = q_lens[b], k_lens[b]
            if reducing:  # a whole layer all the same (eager attention): reduced here
                plan = sink.plan(stream, nq, nk)  # type: ignore[attr-defined]
                reduced = tiles.reduce_weights(weights[b, :, :nq, :nk], plan)
                take_reduced(stream, layer, b, sink, plan, reduced, weights.dtype, False)
                continue
            dest = None
            if capture.WEIGHTS in sink.names:
                dest = sink.buffer(stream, layer, (int(weights.shape[1]), nq, nk))
                if dest is None:
                    view = weights[b, :, :nq, :nk]
                    if view.device.type != "cpu" or view.dtype != torch.float32:
                        view = view.to(device="cpu", dtype=torch.float32)
                    dest = view.numpy()
                else:
                    view = torch.from_numpy(dest)
                    view.copy_(weights[b, :, :nq, :nk])
                where = "" if stream == SELF else f" {stream}"
                _check_layer(
                    f"{info.name}{where} ({items[b].source})",
                    view,
                    info.heads if stream == SELF else None,
                    _row_tolerance(weights.dtype),
                )

            def state(name: str, tensor: Any, n: int, b: int = b, sink: LayerSink = sink) -> Any:
                if name not in sink.names:
                    return None
                return tensor[b, :, :n, :].to(device="cpu", dtype=torch.float32).numpy().copy()

            def bias_of(bias: Any, nq: int, nk: int, b: int = b) -> Any:
                if bias is None:
                    return None
                # (1 or batch, heads, 1 or q, k): T5 computes one bias for the batch.
                row = bias[b if bias.shape[0] > 1 else 0]
                if row.shape[-2] == 1:
                    row = row.expand(-1, nq, -1)
                return row[:, :nq, :nk].to(device="cpu", dtype=torch.float32).numpy().copy()

            measured, withheld = None, None
            if sink.names & measures and stream == SELF:
                if by_item is None:
                    withheld = mix_note or "its attention is not computed through the interface"
                else:
                    measured = by_item[b]
                    withheld = _not_rebuilt(layer, measured.error, tol)
                    if withheld is not None:
                        measured = None
            sink.take(
                stream,
                layer,
                Captured(
                    dest,
                    queries=state(capture.QUERIES, site.query, nq) if site else None,
                    keys=state(capture.KEYS, site.key, nk) if site else None,
                    values=state(capture.VALUES, site.value, nk) if site else None,
                    mixing=measured,
                    withheld=withheld,
                    scaling=site.scaling if site and capture.QUERIES in sink.names else None,
                    bias=(
                        bias_of(site.position_bias, nq, nk)
                        if site and capture.QUERIES in sink.names
                        else None
                    ),
                ),
            )

    def take_reduced(
        stream: str,
        layer: int,
        b: int,
        sink: LayerSink,
        plan: tiles.Plan,
        reduced: tiles.Reduced,
        dtype: Any,
        measured: bool,
    ) -> None:
        """Check one item's reduced layer and hand it over, with why its measures are
        withheld where they are (no block hooks saw it)."""
        where = "" if stream == SELF else f" {stream}"
        _check_reduced(
            f"{info.name}{where} ({items[b].source})", layer, plan, reduced, _row_tolerance(dtype)
        )
        withheld = None
        if sink.names & measures and stream == SELF and not measured:
            withheld = mix_note or "its attention is not computed through the interface"
        sink.take(stream, layer, Captured(None, withheld=withheld, reduced=reduced))

    handles = []
    # Each layer arrives through the capture seam (capture.py) when its module calls the
    # attention interface; a module that computes attention itself is read by a forward
    # hook from its output instead.
    routed: set[tuple[str, int]] = set()

    measures = set(mixing.MEASURES)
    # A layer whose measures are named waits, weights and all, for the hooks that see the
    # block's residual and output (after the attention call), then is delivered at once.
    pending: dict[int, tuple[Any, capture.Site]] = {}
    residual: dict[int, Any] = {}
    attn_out: dict[int, Any] = {}
    blocks: dict[int, mixing.Block] = {}
    mix_note: str | None = None

    reducing = False  # set once the sinks are known: every sink takes layers reduced

    def from_site(stream: str, layer: int, site: capture.Site) -> None:
        routed.add((stream, layer))
        if reducing:
            # Reduced tile by tile on the device (tiles.py): a long input's layer never
            # exists whole (the fast kernel computed the output without it either).
            mixed = stream == SELF and layer in blocks
            q_lens, k_lens = sizes[stream]
            for b, sink in enumerate(sinks):
                one = site.item(b, q_lens[b], k_lens[b])
                norms = None
                if mixed and mixing.NORM in sink.names:
                    norms = mixing.value_norms(one.value, blocks[layer], int(one.query.shape[1]))[0]
                plan = sink.plan(stream, q_lens[b], k_lens[b])  # type: ignore[attr-defined]
                lse = None if one.lse is None else one.lse[0]
                reduced = tiles.reduce_site(one, plan, lse=lse, norms=norms)
                take_reduced(stream, layer, b, sink, plan, reduced, one.query.dtype, mixed)
            if mixed:  # the exact rows' measures wait for the block's output
                pending[layer] = (None, site)
            return
        weights = site.weights() if wanted & (measures | {capture.WEIGHTS}) else None
        if stream == SELF and layer in blocks:
            pending[layer] = (weights, site)
            return
        deliver(stream, layer, weights, site)

    def finish(layer: int, y: Any) -> None:
        if layer not in pending:  # not routed: the measures are withheld in deliver
            return
        weights, site = pending.pop(layer)
        mix = _Mix(residual.pop(layer), attn_out.pop(layer), y, blocks[layer])
        if reducing:
            deliver_positions(layer, site, mix)
        else:
            deliver(SELF, layer, weights, site, mix)

    def deliver_positions(layer: int, site: capture.Site, mix: _Mix) -> None:
        """Every named measure at the query rows the sinks' `positions` name, from those
        rows' weights rebuilt once more (a few rows of n), with the self-check there."""
        lengths = sizes[SELF][0]
        wanted_at = [getattr(sink, "positions", {}).get(SELF, ()) for sink in sinks]
        union = tuple(sorted({p for ps in wanted_at for p in ps}))
        if not union:
            return
        alpha = torch.cat([site.weights(p, p + 1) for p in union], dim=2)
        by_item = mixing.layer_measures(
            mixing.LayerInputs(
                alpha=alpha,
                value=site.value,
                x=mix.x,
                attn_out=mix.attn_out,
                y=mix.y,
                block=mix.block,
                lengths=tuple(lengths),
                positions=union,
            ),
            frozenset(wanted & measures),
        )
        tol = mixing.tolerance(site.value.dtype)
        for sink, at, measured in zip(sinks, wanted_at, by_item, strict=True):
            if not at:
                continue
            pick = [union.index(p) for p in at]
            withheld = _not_rebuilt(layer, measured.error, tol)
            mine = mixing.LayerMeasures(
                norm=None if measured.norm is None else measured.norm[:, pick],
                norm_layer=None if measured.norm_layer is None else measured.norm_layer[pick],
                alti=None if measured.alti is None else measured.alti[pick],
                error=measured.error,
            )
            sink.take(
                SELF,
                layer,
                Captured(
                    None,
                    mixing=None if withheld else mine,
                    withheld=withheld,
                    positions=at,
                ),
            )

    def mixing_hooks() -> None:
        """Hooks that read each self-attention block's residual input, its output
        projection's output and (post-norm) its LayerNorm output."""
        for h in hooked:
            if h.stream != SELF or h.layer not in blocks:
                continue
            block, layer = blocks[h.layer], h.layer

            def read_x(_m: Any, args: Any, kwargs: Any, layer: int = layer) -> None:
                residual[layer] = args[0] if args else kwargs["hidden_states"]

            def read_out(
                _m: Any, _a: Any, out: Any, layer: int = layer, post: bool = block.post
            ) -> None:
                attn_out[layer] = out
                if not post:
                    finish(layer, None)

            def read_y(_m: Any, _a: Any, out: Any, layer: int = layer) -> None:
                finish(layer, out)

            # Post-norm: the residual is the attention's own input; pre-norm: the norm's.
            where = h.module if block.post else block.norm
            handles.append(where.register_forward_pre_hook(read_x, with_kwargs=True))
            handles.append(block.out.register_forward_hook(read_out))
            if block.post:
                handles.append(block.norm.register_forward_hook(read_y))

    table = {id(sub): (h.stream, h.layer) for h in hooked for sub in h.module.modules()}
    # The pass never needs autograd, whoever calls it.
    with torch.inference_mode():
        try:
            if hooked:
                sinks.extend(
                    make_sink(item, seq, layers) for item, seq in zip(items, seqs, strict=True)
                )
                wanted.update(_names(sinks))
                reducing = _reduces(sinks, wanted)
                if wanted & measures:
                    found = mixing.find_blocks(
                        loaded.model, {h.layer: h.name for h in hooked if h.stream == SELF}
                    )
                    if isinstance(found, str):
                        mix_note = found
                    else:
                        blocks.update(found)
                        mixing_hooks()
                for h in hooked:

                    def hook(_m: Any, _a: Any, out: Any, h: HookedModule = h) -> None:
                        if (h.stream, h.layer) in routed:
                            return
                        w = out[h.index] if isinstance(out, tuple) else out
                        deliver(h.stream, h.layer, w, None)

                    handles.append(h.module.register_forward_hook(hook))
                with capture.routed(table, from_site, lse=reducing):
                    out = model(**inputs, **kwargs)
            else:
                # No declared attention modules (an older or custom architecture): take the
                # stacked output of eager attention once, and feed it to the sinks layer by
                # layer all the same.
                with capture.eager(loaded.model):
                    out = model(**inputs, **kwargs, output_attentions=True)
                stacked = (
                    {
                        SELF: out.encoder_attentions,
                        DECODER: out.decoder_attentions,
                        CROSS: out.cross_attentions,
                    }
                    if info.kind == "encoder-decoder" and not encoder_only
                    else {SELF: out.attentions}
                )
                for stream, atts in stacked.items():
                    if atts is None or len(atts) == 0:
                        deliver(stream, 0, None, None)
                    layers[stream] = len(atts)
                if layers[SELF] != info.layers:
                    raise ModelError(
                        f"model '{info.name}' returned attention for {layers[SELF]} of its "
                        f"{info.layers} layers (a hybrid architecture?); reportgen needs "
                        "attention in every layer"
                    )
                sinks.extend(
                    make_sink(item, seq, layers) for item, seq in zip(items, seqs, strict=True)
                )
                wanted.update(_names(sinks))
                reducing = _reduces(sinks, wanted)  # whole layers, reduced all the same
                for stream, atts in stacked.items():
                    for layer, w in enumerate(atts):
                        deliver(stream, layer, w, None)
        except torch.OutOfMemoryError:
            raise ModelError("out of memory: try a smaller --batch-size or --max-tokens") from None
        finally:
            for handle in handles:
                handle.remove()
    results: list[tuple[LayerSink, Sequences, tuple[NextToken, ...]]] = []
    logits = getattr(out, "logits", None) if wants_logits else None
    kept = kwargs.get("logits_to_keep")
    for b, (sink, item_seqs) in enumerate(zip(sinks, seqs, strict=True)):
        next_tokens: tuple[NextToken, ...] = ()
        if logits is not None:
            last = lengths[b] - 1
            # With logits_to_keep, column j holds the j-th kept position.
            row = logits[b, kept.tolist().index(last)] if kept is not None else logits[b, last]
            next_tokens = _top_tokens(tok, row)
        results.append((sink, item_seqs, next_tokens))
    return results


def _reduces(sinks: Sequence[LayerSink], wanted: set[str]) -> bool:
    """Whether every sink takes its layers reduced (a `plan`): weights and measures only."""
    return (
        capture.WEIGHTS in wanted
        and wanted <= {capture.WEIGHTS, *mixing.MEASURES}
        and all(callable(getattr(sink, "plan", None)) for sink in sinks)
    )


def _not_rebuilt(layer: int, error: float, tol: float) -> str | None:
    """Why a layer's measures are withheld, when its decomposition misses the block's own
    output (the self-check); None when it rebuilds it."""
    if error <= tol:
        return None
    return (
        f"in layer {layer + 1} the decomposition rebuilds the block's output only to "
        f"{error:.1e} (tolerance {tol:.0e}): an architecture variant it does not cover"
    )


def _names(sinks: Sequence[LayerSink]) -> set[str]:
    """The union of what the sinks name, checked against capture.NAMES and
    mixing.MEASURES."""
    names: set[str] = set()
    for sink in sinks:
        names |= sink.names
    unknown = names - set(capture.NAMES) - set(mixing.MEASURES)
    if unknown:
        raise ValueError(f"no capture point named {', '.join(sorted(unknown))}")
    return names


def _top_tokens(tokenizer: Any, logits: Any) -> tuple[NextToken, ...]:
    """The model's top predictions from one position's logits."""
    import torch

    probs = torch.softmax(logits.float(), dim=-1)
    # A stable sort: equal probabilities (tied embeddings) keep the lower token id first,
    # so a tie reads the same on every run (topk's order among ties is unspecified).
    values, indices = torch.sort(probs, descending=True, stable=True)
    return tuple(
        NextToken(tokenizer.decode([int(i)]), float(p))
        for p, i in zip(
            values[:TOP_NEXT_TOKENS].tolist(), indices[:TOP_NEXT_TOKENS].tolist(), strict=True
        )
    )


def _decoder_inputs(
    loaded: LoadedModel, items: Sequence[SentenceInput]
) -> tuple[Any, Any, list[tuple[TokenSeq, int]]]:
    """Decoder input ids: the start token followed by the target text (or the input text)."""
    import torch

    tok, model = loaded.tokenizer, loaded.model
    start = getattr(model.config, "decoder_start_token_id", None)
    if start is None:  # transformers 5 keeps it in the generation config
        start = getattr(getattr(model, "generation_config", None), "decoder_start_token_id", None)
    if start is None:
        start = tok.pad_token_id if tok.pad_token_id is not None else tok.bos_token_id
    rows: list[list[int]] = []
    seqs: list[tuple[TokenSeq, int]] = []
    for item in items:
        target = item.target if item.target is not None else item.text
        enc = tok(text_target=target, return_offsets_mapping=bool(getattr(tok, "is_fast", False)))
        ids = [int(start)] + list(enc["input_ids"])
        if loaded.max_length is not None:
            ids = ids[: loaded.max_length]
        rows.append(ids)
        fast = enc.encodings[0] if getattr(enc, "encodings", None) else None
        seq, _ = token_seq(tok, ids[1:], fast, (target, None), len(ids) - 1)
        start_tok = tok.convert_ids_to_tokens([int(start)])[0]
        seq = TokenSeq(
            tokens=(start_tok, *seq.tokens),
            display=(start_tok, *seq.display),
            word_ids=(None, *seq.word_ids),
            offsets=((0, 0), *seq.offsets),
            special=(True, *seq.special),
            text=target,
        )
        seqs.append((seq, len(ids)))
    width = max(len(r) for r in rows)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    ids_t = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids_t[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return ids_t, mask, seqs


# ---------------------------------------------------------------------------------------
# Long inputs: reduce each layer as it streams, keep no full map
# ---------------------------------------------------------------------------------------


class LongSink:
    """Keeps what a long input's page carries of each layer (see ``LongAttention``).

    It takes every layer reduced (its `plan` says to what: tiles.py), so no layer's full
    weights exist: the pooled overview's row sums, its exact rows, the attention to the
    first position and the heads' row entropies, summed on the model's device. Named
    `measures` (mixing.py) are kept as ``LongMeasures``: norm's overview, reduced with the
    weights, and every measure's exact rows (after the layer, ``Captured.positions``).
    """

    def __init__(
        self,
        layers: dict[str, int],
        rows: dict[str, tuple[int, ...]],
        blocks: int,
        measures: tuple[str, ...] = (),
    ) -> None:
        self.layers = layers
        self.positions = rows
        self.blocks = blocks
        self.names = frozenset({capture.WEIGHTS, *measures})
        self.measures = measures
        self.withheld: str | None = None
        self.plans: dict[str, tiles.Plan] = {}
        self.overview: dict[str, NDArray[np.float32]] = {}
        self.rows: dict[str, NDArray[np.float32]] = {}
        self.first_share: dict[str, NDArray[np.float32]] = {}
        self.entropy: dict[str, NDArray[np.float64]] = {}
        self.norm_overview: NDArray[np.float32] | None = None
        # measure -> [rows, layers, heads or 1, n], filled as each layer's rows arrive.
        self.measure_rows: dict[str, NDArray[np.float32]] = {}

    def plan(self, stream: str, nq: int, nk: int) -> tiles.Plan:
        """What each layer of `stream` is reduced to: blocks of near-equal size a side and
        the exact rows' positions (the same for every layer)."""
        if stream not in self.plans:
            self.plans[stream] = tiles.Plan(
                tuple(analysis.block_bounds(nq, self.blocks)),
                tuple(analysis.block_bounds(nk, self.blocks)),
                self.positions.get(stream, ()),
            )
        return self.plans[stream]

    def buffer(self, stream: str, layer: int, shape: tuple[int, int, int]) -> None:
        return None  # never asked: the layers arrive reduced

    def take(self, stream: str, layer: int, captured: Captured) -> None:
        if captured.withheld is not None:
            self.withheld = self.withheld or captured.withheld
        if captured.positions is not None:
            self._take_rows(layer, captured)
            return
        reduced = captured.reduced
        assert reduced is not None  # a sink with a plan gets its layers reduced
        plan = self.plans[stream]
        count = self.layers[stream]
        heads, nq = reduced.pooled.shape[0], plan.query_blocks[-1][1]
        if stream not in self.overview:
            self.overview[stream] = np.empty((count, *reduced.pooled.shape), np.float32)
            self.rows[stream] = np.empty(
                (len(plan.positions), count, *reduced.rows.shape[1:]), np.float32
            )
            self.first_share[stream] = np.empty((count, heads), np.float32)
            self.entropy[stream] = np.empty((count, heads), np.float64)
        sizes = plan.query_sizes
        self.overview[stream][layer] = reduced.pooled / sizes[:, None]
        self.rows[stream][:, layer] = reduced.rows
        self.first_share[stream][layer] = reduced.first / nq
        self.entropy[stream][layer] = reduced.entropy / nq
        if reduced.norm_pooled is not None:  # the norm measure, pooled the same way
            if self.norm_overview is None:
                self.norm_overview = np.empty((count, *reduced.pooled.shape), np.float32)
            self.norm_overview[layer] = reduced.norm_pooled / sizes[:, None]

    def _take_rows(self, layer: int, captured: Captured) -> None:
        """One layer's measures at the exact rows (self stream), in `positions`' order."""
        m = captured.mixing
        if m is None:
            return
        count, heads = self.layers[SELF], self.overview[SELF].shape[1]
        for name in self.measures:
            value = getattr(m, name)  # norm [heads, rows, n]; per layer [rows, n]
            if value is None:
                continue
            value = value.transpose(1, 0, 2) if value.ndim == 3 else value[:, None, :]
            arr = self.measure_rows.get(name)
            if arr is None:
                shape = (value.shape[0], count, heads if name == mixing.NORM else 1)
                arr = np.zeros((*shape, value.shape[-1]), np.float32)
                self.measure_rows[name] = arr
            arr[:, layer] = value

    def long_measures(self) -> LongMeasures | None:
        """The self stream's measures, once every layer has passed; None when none were
        named or the self-check withheld them."""
        if not self.measures or self.withheld is not None:
            return None
        return LongMeasures(
            norm_overview=self.norm_overview,
            rows=tuple((name, self.measure_rows[name]) for name in self.measures),
        )

    def result(self, layout: MapLayout) -> LongAttention:
        """The reduced record of one stream, once every layer has passed."""
        stream, query = layout.stream, layout.query
        plan = self.plans[stream]
        return LongAttention(
            id=layout.id,
            name=layout.name,
            query=query,
            key=layout.key,
            query_blocks=plan.query_blocks,
            key_blocks=plan.key_blocks,
            overview=self.overview[stream],
            rows=tuple(
                ExactRow(p, query.display[p], self.rows[stream][r])
                for r, p in enumerate(plan.positions)
            ),
            first_share=self.first_share[stream],
            entropy=self.entropy[stream],
            causal=layout.causal,
            measures=self.long_measures() if stream == SELF else None,
        )


def row_positions(item: SentenceInput, seqs: Sequences) -> dict[str, tuple[int, ...]]:
    """Exact rows per stream: the focus word's pieces (first match), then the last position."""
    seq = seqs.input
    wanted: list[int] = []
    if item.focus is not None:
        wanted, _ = analysis.find_word(seq.text, seq.offsets, item.focus)
    last = len(seq.tokens) - 1
    rows = {SELF: tuple(sorted({*wanted, last}))}
    if seqs.decoder is not None:
        rows[DECODER] = rows[CROSS] = (len(seqs.decoder.tokens) - 1,)
    return rows


def extract_long(
    batch: InputBatch,
    config: ReportConfig,
    loaded: LoadedModel | None = None,
    log: Log = _quiet_log,
    progress: Progress | None = None,
    encoded: Sequence[tuple[Any, int]] | None = None,
    blocks: int = memory.OVERVIEW_BLOCKS,
) -> LongExtraction:
    """Like :func:`extract`, but every layer is reduced as it streams (see ``LongSink``):
    memory beyond the model is one tile of a layer at a time (tiles.py), made while the
    model keeps its fast kernel (a whole layer for models that need eager), plus the
    reduced records (memory.py counts both).
    """
    loaded, encoded, warnings = _prepare(batch, config, loaded, log, encoded)

    def make(item: SentenceInput, seqs: Sequences, layers: dict[str, int]) -> LayerSink:
        return LongSink(layers, row_positions(item, seqs), blocks, measures=config.measures)

    kind = loaded.info.kind
    results: list[LongResult | None] = [None] * len(batch.items)
    withheld: str | None = None
    for i, (sink, seqs, next_tokens) in stream_attention(
        loaded, batch.items, encoded, config, make, progress
    ):
        assert isinstance(sink, LongSink)
        withheld = withheld or sink.withheld
        results[i] = LongResult(
            item=batch.items[i],
            maps=tuple(sink.result(layout) for layout in map_layout(kind, seqs)),
            truncated=len(encoded[i][0]["input_ids"]) < encoded[i][1],
            next_tokens=next_tokens,
        )
    kept = tuple(r for r in results if r is not None)
    if withheld is not None:  # one model, one answer, as extract's
        kept = tuple(
            replace(r, maps=tuple(replace(m, measures=None) for m in r.maps)) for r in kept
        )
    return LongExtraction(
        model=loaded.info, results=kept, warnings=tuple(warnings), measures_withheld=withheld
    )
