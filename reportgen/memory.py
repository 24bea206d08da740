"""Know before running: what an input will cost, checked before the forward pass.

Two limits, both stated in one line with what to do when an input is over them:
- memory: the stored float32 maps, the eager attention of the largest layer batch and
  the report's packing, against what this machine (or its cgroup) has available;
- the page: under PAGE_BUDGET_VALUES a report carries every value of every map. Over it
  the report is a long-input page (``extract.extract_long``): each layer is reduced as it
  streams, a chunk of query rows at a time while the model keeps its fast kernel
  (one layer's whole eager attention for the models that need eager), plus the reduced
  records (:func:`long_values`), and that is what is checked instead.

Nothing here imports torch: the model's shape comes in as a :class:`ModelShape`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reportgen.errors import InputError
from reportgen.mixing import NORM
from reportgen.tiles import chunk_rows

# A page carries at most this many attention values in full (layers x heads x q x k,
# summed over every map of every sentence). The measurement: SmolLM2 at ~850
# tokens is 195M values and took 1.6 GB of browser JS heap, about 8 bytes per value;
# 40M values keep the page near 320 MB, which a laptop's browser tab carries with room
# for Plotly and the head view (Chrome starts refusing allocations near 2-4 GB per tab).
PAGE_BUDGET_VALUES = 40_000_000

# Eager attention holds the scores, the softmax output and the masked copy at once.
EAGER_COPIES = 3
# The report's packing of one map: row quantisation to uint16 and its copy, two byte
# planes and their temporaries (bytes per value, at the peak of pack_attention).
PACK_BYTES_PER_VALUE = 10
# Attention rollout for the export: per-layer averages and the products, float64 [L, n, n].
ROLLOUT_BYTES_PER_LAYER_VALUE = 16
# Kept free for the interpreter, allocator slack and everything this estimate leaves out.
HEADROOM_BYTES = 256 * 1024**2
# Where the kernel describes this process's memory (module constants, for tests).
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")
PROC_MEMINFO = Path("/proc/meminfo")


# Long inputs: overview blocks per axis (the reduction's, extract.LongSink: 128 x 128 per
# head keeps 30 x 9 heads near 4.4M values) and exact rows per input counted by the
# estimate (the last position and a focus word's pieces; a word of more pieces adds a
# few rows of n values, far inside HEADROOM_BYTES).
OVERVIEW_BLOCKS = 128
LONG_ROWS = 4
# Reducing one layer as it streams, where the model runs eager attention (the layer's
# weights arrive whole): a head-averaged n x n float32 map and one head's logs and masks
# for its entropy (bytes per n x n value).
REDUCE_BYTES_PER_VALUE = 16
# Elsewhere the model keeps its fast attention and a long input's weights are made a
# chunk of query rows at a time (tiles.chunk_rows: at 8,192 tokens 128 rows, over every
# key where the call has a mask, else tiles of tiles.TILE_KEYS keys): at 8,192 tokens
# and 9 heads 128 rows of scores are 38 MB where the whole layer would be 2.4 GB.
# One chunk's scores, its softmax in place, the causal mask and the reduction's float64
# temporaries (pooled sums, entropy's logs), in bytes per value of heads x rows x n.
CHUNK_BYTES_PER_VALUE = 24
# With the norm measure on a long input, each chunk's norm rows and their normalised copy
# (extract.LongSink pools them like the weights), bytes per value of heads x rows x n.
NORM_CHUNK_BYTES_PER_VALUE = 8


@dataclass(frozen=True)
class ModelShape:
    """What the estimate needs to know about a loaded model."""

    name: str
    kind: str  # "encoder", "causal" or "encoder-decoder"
    layers: int
    heads: int
    decoder_layers: int = 0  # encoder-decoder models only
    hidden: int = 0
    intermediate: int = 0
    vocab: int = 0
    last_logits_only: bool = True  # causal models: logits at the last position only
    on_gpu: bool = False  # the forward pass's memory is the GPU's, not this machine's
    # The model runs eager attention (capture.needs_eager: softcapping, ALiBi, ...): every
    # layer's scores exist whole. Else its fast kernel runs and weights are rebuilt.
    eager: bool = False


@dataclass(frozen=True)
class Estimate:
    """Bytes an input needs beyond the loaded model, by where they go."""

    maps: int  # every stored float32 map
    forward: int  # eager attention and activations of the largest batch's layer
    report: int  # packing the largest map for the page, and the export's rollout

    @property
    def host(self) -> int:
        """What this machine's memory must hold at the peak."""
        return self.maps + max(self.forward, self.report) + HEADROOM_BYTES


def map_values(shape: ModelShape, n: int, m: int | None = None) -> int:
    """Attention values of one input of `n` tokens (decoder input `m` tokens)."""
    values = shape.layers * shape.heads * n * n
    if shape.kind == "encoder-decoder":
        m = n if m is None else m
        values += shape.decoder_layers * shape.heads * (m * m + m * n)
    return values


def long_values(
    shape: ModelShape, n: int, m: int | None = None, measures: tuple[str, ...] = ()
) -> int:
    """Values a long-input page carries for one input: the block-pooled overview and the
    exact rows of every head (``LongAttention``), per map; with `measures`, norm's
    overview and every measure's exact rows (``LongMeasures``)."""

    def reduced(layers: int, nq: int, nk: int, rows: int) -> int:
        return (
            layers * shape.heads * (min(nq, OVERVIEW_BLOCKS) * min(nk, OVERVIEW_BLOCKS) + rows * nk)
        )

    values = reduced(shape.layers, n, n, LONG_ROWS)
    for name in measures:
        if name == NORM:
            values += reduced(shape.layers, n, n, LONG_ROWS)
        else:  # a per-layer measure: exact rows only, one map a layer
            values += shape.layers * LONG_ROWS * n
    if shape.kind == "encoder-decoder":
        m = n if m is None else m
        values += reduced(shape.decoder_layers, m, m, 1) + reduced(shape.decoder_layers, m, n, 1)
    return values


def estimate(
    shape: ModelShape,
    lengths: Sequence[int],
    batch_size: int,
    *,
    long: bool = False,
    measures: tuple[str, ...] = (),
) -> tuple[Estimate, int]:
    """The memory `lengths` need (and the GPU's share of the forward pass, 0 on CPU).

    `long`: the long-input page, whose maps are reduced as they stream (only the reduced
    records are kept; reducing a layer adds its temporaries to the forward pass), with
    the context-mixing `measures` named (the short page's are within its map budget).
    """
    if not lengths:
        return Estimate(0, 0, 0), 0
    if long:
        return _long_estimate(shape, lengths, batch_size, measures)
    values = [map_values(shape, n) for n in lengths]
    maps = 4 * sum(values)
    forward = _forward_bytes(shape, lengths, batch_size)
    largest = max(range(len(lengths)), key=lambda i: values[i])
    n = lengths[largest]
    report = PACK_BYTES_PER_VALUE * values[largest] + (
        ROLLOUT_BYTES_PER_LAYER_VALUE * shape.layers * n * n
    )
    if shape.on_gpu:
        return Estimate(maps, 0, report), forward
    return Estimate(maps, forward, report), 0


def _forward_bytes(
    shape: ModelShape,
    lengths: Sequence[int],
    batch_size: int,
    attention_copies: int = EAGER_COPIES,
) -> int:
    """Attention (its scores, `attention_copies` times) and activations of the largest
    batch's layer."""
    ordered = sorted(lengths)
    forward = 0
    size = max(1, batch_size)
    for start in range(0, len(ordered), size):
        chunk = ordered[start : start + size]
        b, n = len(chunk), chunk[-1]
        attention = attention_copies * 4 * b * shape.heads * n * n
        activations = 4 * b * n * (4 * shape.hidden + shape.intermediate)
        logits = 4 * b * shape.vocab * (1 if shape.last_logits_only else n)
        forward = max(forward, attention + activations + logits)
    return forward


def _long_estimate(
    shape: ModelShape, lengths: Sequence[int], batch_size: int, measures: tuple[str, ...]
) -> tuple[Estimate, int]:
    values = [long_values(shape, n, measures=measures) for n in lengths]
    n = max(lengths)
    report = PACK_BYTES_PER_VALUE * max(values)
    if shape.eager:
        # Each layer's eager weights arrive whole and are reduced on this machine: one
        # item's layer copied here (from the GPU, or from half precision) and the
        # reduction's temporaries.
        reduce = 4 * shape.heads * n * n + REDUCE_BYTES_PER_VALUE * n * n
        forward = _forward_bytes(shape, lengths, batch_size)
    else:
        # The fast kernel never holds a layer's scores (a causal one; an encoder's padding
        # mask may take the math kernel: one n x n score copy a head); the weights are made
        # a chunk of query rows at a time and reduced at once (tiles.py).
        rows = chunk_rows(n, OVERVIEW_BLOCKS)
        reduce = CHUNK_BYTES_PER_VALUE * shape.heads * rows * n
        if NORM in measures:
            reduce += NORM_CHUNK_BYTES_PER_VALUE * shape.heads * rows * n
        if set(measures) - {NORM}:
            # The exact rows' per-layer measures: every key's value through every head
            # (heads x n x d) and a few rows' n x d contributions (mixing.layer_measures).
            reduce += 4 * shape.heads * n * shape.hidden + 12 * LONG_ROWS * n * shape.hidden
        forward = _forward_bytes(shape, lengths, batch_size, attention_copies=0)
        if shape.kind != "causal":
            forward += 4 * shape.heads * n * n
    if shape.on_gpu:
        return Estimate(4 * sum(values), reduce, report), forward
    return Estimate(4 * sum(values), forward + reduce, report), 0


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _cgroup_free() -> int | None:
    """Bytes left under this process's cgroup limit (v2, else v1), or None without one.

    Inactive file cache counts as free: the kernel drops it before it kills anything.
    """
    root = CGROUP_ROOT
    own = ""
    for line in (_read(PROC_CGROUP) or "").splitlines():
        if line.startswith("0::"):
            own = line[3:].strip("/")
    candidates = [
        (root / own / "memory.max", root / own / "memory.current", "inactive_file"),
        (root / "memory.max", root / "memory.current", "inactive_file"),
        (
            root / "memory" / "memory.limit_in_bytes",
            root / "memory" / "memory.usage_in_bytes",
            "total_inactive_file",
        ),
    ]
    for limit_path, usage_path, cache_key in candidates:
        limit, usage = _read(limit_path), _read(usage_path)
        if limit is None or usage is None or not usage.isdigit():
            continue
        if not limit.isdigit() or int(limit) >= 1 << 60:  # "max", or v1's "no limit"
            return None
        cache = 0
        for line in (_read(limit_path.with_name("memory.stat")) or "").splitlines():
            key, _, value = line.partition(" ")
            if key == cache_key and value.isdigit():
                cache = int(value)
        return max(0, int(limit) - int(usage) + cache)
    return None


def _meminfo_available() -> int | None:
    for line in (_read(PROC_MEMINFO) or "").splitlines():
        if line.startswith("MemAvailable:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1]) * 1024
    return None


def available_memory() -> int | None:
    """Bytes this process can still allocate: the tighter of its cgroup and the machine."""
    found = [v for v in (_cgroup_free(), _meminfo_available()) if v is not None]
    return min(found) if found else None


def human(size: int) -> str:
    """Bytes as the one-line messages print them ("1.4 GB", "310 MB")."""
    if size >= 1024**3:
        return f"{size / 1024**3:.1f} GB"
    return f"{max(1, round(size / 1024**2))} MB"


def _largest_fitting(fits: Callable[[int], bool], upper: int) -> int:
    """The largest N in 1..upper with fits(N) (fits is monotone), or 0 when none does."""
    low, high = 0, upper
    while low < high:
        mid = (low + high + 1) // 2
        if fits(mid):
            low = mid
        else:
            high = mid - 1
    return low


def is_long(shape: ModelShape, lengths: Sequence[int]) -> bool:
    """Whether these inputs' full maps are over the page budget (a long-input page)."""
    return sum(map_values(shape, n) for n in lengths) > PAGE_BUDGET_VALUES


def check_fits(
    shape: ModelShape,
    lengths: Sequence[int],
    batch_size: int,
    *,
    available: int | None,
    gpu_free: int | None = None,
    weights: int = 0,
    measures: tuple[str, ...] = (),
) -> bool:
    """Refuse, in one line, an input this machine or a page cannot carry; else say
    whether it takes the long-input page (over the page budget in full).

    `available` is this machine's free memory in bytes (None: unknown, not checked);
    `gpu_free` the GPU's, when the model runs there; `weights` what the weights will take
    there (the check runs before they load); `measures` the context-mixing measures
    named (a long input's cost them too). Raises :class:`InputError` naming what it
    needs, what there is, and the `--max-tokens` that would fit.
    """
    machine_free = available
    if weights:
        if shape.on_gpu and gpu_free is not None:
            gpu_free = max(0, gpu_free - weights)
        elif not shape.on_gpu and available is not None:
            available = max(0, available - weights)
    if not lengths:
        return False
    longest = max(lengths)

    def cut(limit: int) -> list[int]:
        return [min(n, limit) for n in lengths]

    def need_of(ls: Sequence[int]) -> tuple[Estimate, int]:
        return estimate(shape, ls, batch_size, long=is_long(shape, ls), measures=measures)

    def host_fits(limit: int) -> bool:
        return available is None or need_of(cut(limit))[0].host <= available

    def gpu_fits(limit: int) -> bool:
        return gpu_free is None or need_of(cut(limit))[1] <= gpu_free

    long = is_long(shape, lengths)
    need, gpu_need = need_of(lengths)
    weights_here = 0 if shape.on_gpu else weights
    weights_note = f", {human(weights_here)} of weights" if weights_here else ""
    if available is not None and need.host > available:
        fit = _largest_fitting(lambda k: host_fits(k) and gpu_fits(k), longest)
        what = "reduced attention records" if long else "attention maps"
        raise InputError(
            f"this input needs about {human(need.host + weights_here)} of memory for model "
            f"'{shape.name}' ({human(need.maps)} of {what}, "
            f"{human(max(need.forward, need.report))} at the peak of the forward pass "
            f"and packing{weights_note}) but {human(machine_free or 0)} is available; "
            + _what_to_do(fit, longest)
        )
    if gpu_free is not None and gpu_need > gpu_free:
        fit = _largest_fitting(gpu_fits, longest)
        raise InputError(
            f"this input's forward pass needs about {human(gpu_need)} of GPU memory for "
            f"model '{shape.name}' but {human(gpu_free)} is free"
            + (f" besides about {human(weights)} for its weights" if weights else "")
            + "; "
            + _what_to_do(fit, longest)
        )
    if long:
        # Over the budget in full, each input becomes a reduced long-input view; only
        # many long inputs together can still be too much for one page.
        reduced = sum(long_values(shape, n, measures=measures) for n in lengths)
        if reduced > PAGE_BUDGET_VALUES:
            raise InputError(
                f"these {len(lengths)} inputs' reduced attention is {reduced / 1e6:.0f}M "
                f"values, more than one page carries ({PAGE_BUDGET_VALUES / 1e6:.0f}M, "
                f"about {8 * PAGE_BUDGET_VALUES / 1e6:.0f} MB of browser memory); "
                "split them over several reports"
            )
    return long


def _what_to_do(fit: int, longest: int) -> str:
    if fit >= 2:
        return (
            f"use --max-tokens {fit} (the longest input has {longest} tokens), "
            "a shorter input, or a smaller model"
        )
    return "use a smaller model or a much shorter input"


def model_shape(spec: Any) -> ModelShape:
    """A :class:`ModelShape` from an opened model (``reportgen.models.ModelSpec``)."""
    from reportgen import capture
    from reportgen.models import count_field

    config = spec.config
    try:
        text = config.get_text_config()
    except (AttributeError, ValueError):
        text = config
    info = spec.info
    hidden = count_field(text, "hidden_size", "n_embd", "d_model") or 0
    decoder_layers = 0
    if info.kind == "encoder-decoder":
        decoder_layers = count_field(text, "num_decoder_layers", "decoder_layers") or info.layers
    return ModelShape(
        name=info.name,
        kind=info.kind,
        layers=info.layers,
        heads=info.heads,
        decoder_layers=decoder_layers,
        hidden=hidden,
        intermediate=count_field(text, "intermediate_size", "n_inner", "d_ff") or 4 * hidden,
        vocab=count_field(text, "vocab_size") or 0,
        last_logits_only=spec.last_logits_only,
        on_gpu=str(spec.device).startswith("cuda"),
        eager=capture.needs_eager(config) is not None,
    )


def weight_bytes(shape: ModelShape, dtype: str) -> int:
    """About what the weights will take once loaded: attention (4 h^2; cross-attention
    doubles it in a decoder), a gated or plain MLP (at most 3 h i) and the embeddings.
    The checks run before the weights load, so the memory they will hold is not free."""
    h, i = shape.hidden, shape.intermediate
    params = shape.layers * (4 * h * h + 3 * h * i)
    params += shape.decoder_layers * (8 * h * h + 3 * h * i)
    params += shape.vocab * h
    return params * (2 if dtype in ("float16", "bfloat16") else 4)


def gpu_free_memory(loaded: Any) -> int | None:
    """Free bytes on the model's CUDA device, or None elsewhere."""
    if not str(loaded.device).startswith("cuda"):
        return None
    import torch

    free, _ = torch.cuda.mem_get_info(loaded.device)
    return int(free)


def check_input(
    spec: Any, lengths: Sequence[int], batch_size: int, measures: tuple[str, ...] = ()
) -> bool:
    """:func:`check_fits` for an opened model on this machine, before the forward pass:
    True when the input takes the long-input page. Its weights are counted unless they are
    loaded already (a caller's model object: the memory they take is taken)."""
    shape = model_shape(spec)
    return check_fits(
        shape,
        lengths,
        batch_size,
        available=available_memory(),
        gpu_free=gpu_free_memory(spec),
        weights=0 if spec.weights_loaded else weight_bytes(shape, spec.dtype),
        measures=measures,
    )
