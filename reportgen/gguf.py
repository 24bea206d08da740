"""GGUF support: dequantise a `.gguf` file once into a plain Hugging Face checkpoint, then cache it.

Loading a GGUF file through transformers dequantises every tensor on each load (slow) and needs
the optional `gguf` and `accelerate` packages. `materialize` does that once per file content,
saves the result as an ordinary checkpoint (config.json, model.safetensors, tokenizer files) under
`<cache root>/gguf/<sha256[:16]>`, and returns that folder on every later call, so the rest of
reportgen loads it like any local model folder, without `gguf`.

Nothing here imports torch or transformers at module level: a cache hit costs one hash of the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reportgen.errors import InputError, ModelError

GGUF_INSTALL_HINT = (
    "reading .gguf models needs the optional extra: pip install 'reportgen[gguf]' "
    "(it installs gguf and accelerate)"
)

GGUF_MAGIC = b"GGUF"
MARKER_NAME = ".complete"
# Bump when the layout of a materialised folder changes, so older folders are rebuilt.
# (A marker without the "weights" record, from before it existed, is rebuilt too; older
# code still accepts the markers written now.)
CACHE_FORMAT = 1
_CHUNK = 1 << 20
_KEY_LENGTH = 16
_PARTIAL_SUFFIX = ".partial"
# A temp folder whose run cannot be asked (another machine sharing the cache, or no pid in
# its name) is left alone for this long.
_STALE_PARTIAL_S = 24 * 3600
_WEIGHTS_GLOB = "*.safetensors"
_EXTRA_MODULES = ("gguf", "accelerate")

Log = Callable[[str], None]


def _quiet_log(_: str) -> None:
    pass


def _has_gguf_magic(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(len(GGUF_MAGIC)) == GGUF_MAGIC
    except OSError:
        return False


def find_gguf(path: Path) -> Path | None:
    """Return the GGUF file that `path` names, or None when `path` is not a GGUF source.

    `path` may be a `.gguf` file (any file that starts with the GGUF magic also counts), or a
    folder holding exactly one `*.gguf` file at its top level. A folder holding several raises
    InputError naming them, since reportgen cannot guess which one is meant.
    """
    if path.is_file():
        return path if path.suffix.lower() == ".gguf" or _has_gguf_magic(path) else None
    if not path.is_dir():
        return None
    try:
        found = sorted(
            child for child in path.iterdir() if child.suffix.lower() == ".gguf" and child.is_file()
        )
    except OSError as exc:
        raise InputError(f"cannot list model folder '{path}': {_one_line(exc)}") from None
    if not found:
        return None
    if len(found) > 1:
        names = ", ".join(child.name for child in found)
        raise InputError(
            f"model folder '{path}' holds several .gguf files ({names}); pass one of them"
        )
    return found[0]


def cache_root() -> Path:
    """Where reportgen caches files: $REPORTGEN_CACHE, else $XDG_CACHE_HOME/reportgen, else
    ~/.cache/reportgen (empty variables count as unset)."""
    explicit = os.environ.get("REPORTGEN_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "reportgen"
    return Path.home() / ".cache" / "reportgen"


def file_digest(path: Path) -> str:
    """The sha256 of a file's content, as hex, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _one_line(exc: BaseException) -> str:
    """An exception as one short line: its first non-empty message line, else its type."""
    for line in str(exc).splitlines():
        line = line.strip()
        if line:
            return line if len(line) <= 300 else line[:297] + "..."
    return type(exc).__name__


def weights_record(folder: Path) -> dict[str, dict[str, Any]]:
    """Size and sha256 of each weights file in `folder`, by file name: what the marker
    ties the cached checkpoint to."""
    return {
        path.name: {"size": path.stat().st_size, "sha256": file_digest(path)}
        for path in sorted(folder.glob(_WEIGHTS_GLOB))
    }


def _read_marker(folder: Path) -> dict[str, Any] | None:
    try:
        marker = json.loads((folder / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def _weights_match(folder: Path, recorded: Any) -> bool:
    """True when the weights files are exactly those recorded, byte for byte. Sizes first
    (cheap, catches truncation); then the hashes (about 0.3 s for 500 MB)."""
    if not isinstance(recorded, dict):
        return False
    try:
        found = {path.name: path for path in folder.glob(_WEIGHTS_GLOB)}
        if set(found) != set(recorded):
            return False
        for name, path in found.items():
            entry = recorded[name]
            if not isinstance(entry, dict) or entry.get("size") != path.stat().st_size:
                return False
        return all(file_digest(path) == recorded[name]["sha256"] for name, path in found.items())
    except OSError:
        return False


def _is_complete(folder: Path, digest: str) -> bool:
    """True when `folder` is a finished checkpoint of the file with this digest whose
    weights are still what was written."""
    marker = _read_marker(folder)
    return (
        marker is not None
        and marker.get("sha256") == digest
        and marker.get("format") == CACHE_FORMAT
        and (folder / "config.json").is_file()
        and _weights_match(folder, marker.get("weights"))
    )


def _require_extra() -> None:
    """Raise ModelError with the install hint unless `gguf` and `accelerate` import."""
    for name in _EXTRA_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            raise ModelError(GGUF_INSTALL_HINT) from None


def _load_from_gguf(gguf_path: Path) -> tuple[Any, Any]:
    """Tokenizer and fully dequantised float32 model read from a GGUF file (slow)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    kwargs: dict[str, Any] = {}
    try:  # transformers >= 5 can keep GGUF blocks packed; ask for plain dense weights.
        from transformers import GgufConfig

        kwargs["quantization_config"] = GgufConfig(dequantize=True)
    except (ImportError, TypeError):
        pass
    # A GGUF file carries no code; trust_remote_code=False keeps transformers from asking.
    common: dict[str, Any] = {
        "gguf_file": name,
        "local_files_only": True,
        "trust_remote_code": False,
    }
    tokenizer: Any = AutoTokenizer.from_pretrained(folder, **common)
    model: Any = AutoModelForCausalLM.from_pretrained(
        folder, attn_implementation="eager", **common, **kwargs
    )
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        # Dense weights already; only the bookkeeping that blocks save_pretrained is left.
        quantizer.remove_quantization_config(model)
    for param_name, param in model.state_dict().items():
        if type(param) is not torch.Tensor or not param.is_floating_point():
            raise ModelError(
                f"GGUF file '{gguf_path.name}' was not fully dequantised "
                f"({param_name} is {type(param).__name__} {param.dtype})"
            )
    if model.dtype != torch.float32:  # e.g. an F16 or BF16 file: upcasting is lossless
        model = model.to(torch.float32)
        dtype_field = "dtype" if hasattr(model.config, "dtype") else "torch_dtype"
        setattr(model.config, dtype_field, torch.float32)
    return tokenizer, model


def _save_checkpoint(tokenizer: Any, model: Any, out_dir: Path) -> None:
    """Write model (safetensors) and tokenizer as an ordinary checkpoint folder."""
    model.save_pretrained(str(out_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(out_dir))


def _write_marker(folder: Path, digest: str, gguf_path: Path) -> None:
    """Write the marker that says `folder` is complete; always the last file written."""
    marker = {
        "format": CACHE_FORMAT,
        "sha256": digest,
        "source": gguf_path.name,
        "source_path": str(gguf_path),
        "size": gguf_path.stat().st_size,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        # Read back from disk, so a later check compares against what really landed.
        "weights": weights_record(folder),
    }
    part = folder / (MARKER_NAME + ".tmp")
    with part.open("w", encoding="utf-8") as handle:
        json.dump(marker, handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(part, folder / MARKER_NAME)


def _host_tag() -> str:
    """A short tag of this machine's name: pids mean nothing on another host."""
    return hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


def _partial_prefix(key: str) -> str:
    """Temp folders are named `.<key>.<host>-<pid>.<random>.partial`."""
    return f".{key}.{_host_tag()}-{os.getpid()}."


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, owned by someone else
        return True
    return True


def _is_stale(entry: Path, host: str, cutoff: float) -> bool:
    """A temp folder whose run on this host has ended, or one older than the cutoff."""
    parts = entry.name.split(".")
    owner = parts[2] if len(parts) == 5 else ""
    tag, _, pid = owner.partition("-")
    if tag == host and pid.isdigit() and int(pid) != os.getpid():
        return not _pid_alive(int(pid))
    return entry.stat().st_mtime < cutoff


def _remove_stale_partials(parent: Path) -> None:
    """Best effort: drop temp folders left by runs that died (killed, out of memory)."""
    cutoff = time.time() - _STALE_PARTIAL_S
    host = _host_tag()
    with contextlib.suppress(OSError):
        for entry in parent.iterdir():
            if entry.name.endswith(_PARTIAL_SUFFIX) and _is_stale(entry, host, cutoff):
                shutil.rmtree(entry, ignore_errors=True)


def _publish(tmp: Path, final: Path, digest: str) -> Path:
    """Rename the finished temp folder into place; keep another process's if it won."""
    if final.exists() and not _is_complete(final, digest):
        # Only complete folders are ever renamed in, so this is debris (or an older format).
        shutil.rmtree(final, ignore_errors=True)
    try:
        os.rename(tmp, final)
    except OSError:
        if _is_complete(final, digest):  # a concurrent run finished first
            shutil.rmtree(tmp, ignore_errors=True)
            return final
        raise
    return final


def materialize(
    gguf_path: Path,
    *,
    cache_dir: Path | None = None,
    log: Log | None = None,
) -> Path:
    """Return a folder holding a plain Hugging Face checkpoint of `gguf_path`.

    The folder is `<cache_dir or cache_root()>/gguf/<sha256[:16]>`. When it already holds a
    complete checkpoint of this file (its `.complete` marker is written last) it is returned at
    once, without importing transformers. Otherwise the file is dequantised through transformers'
    GGUF support (float32, the dtype transformers produces), saved with safetensors beside the
    final folder, marked complete and renamed into place atomically.

    The folder loads with `AutoTokenizer.from_pretrained(folder)` and
    `AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager")`; `gguf` is not
    needed for that. Raises ModelError (one line) when the file cannot be read or converted, or
    when the `reportgen[gguf]` extra is missing and no cached copy exists.
    """
    say = log or _quiet_log
    source = gguf_path.expanduser().resolve()
    if not source.is_file():
        raise InputError(f"GGUF file '{gguf_path}' does not exist")
    if not _has_gguf_magic(source):
        raise ModelError(f"'{gguf_path}' is not a GGUF file (it does not start with 'GGUF')")
    try:
        digest = file_digest(source)
    except OSError as exc:
        raise ModelError(f"cannot read GGUF file '{gguf_path}': {_one_line(exc)}") from None
    parent = (cache_dir if cache_dir is not None else cache_root()).expanduser() / "gguf"
    final = parent / digest[:_KEY_LENGTH]
    _remove_stale_partials(parent)
    if _is_complete(final, digest):
        say(f"using the dequantised copy of {source.name} cached in {final}")
        return final
    if _read_marker(final) is not None:
        # Once: a rebuild records what it writes, so the next run finds a match.
        say(
            f"the cached copy of {source.name} in {final} does not match its marker "
            "(damaged, or from an older reportgen); rebuilding it"
        )

    _require_extra()
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(
            tempfile.mkdtemp(prefix=_partial_prefix(final.name), suffix=_PARTIAL_SUFFIX, dir=parent)
        )
    except OSError as exc:
        raise ModelError(
            f"cannot create the GGUF cache folder under '{parent}' ({_one_line(exc)}); "
            "set REPORTGEN_CACHE to a writable folder"
        ) from None
    try:
        say(f"dequantising {source.name} (first run only, cached in {final})")
        started = time.perf_counter()
        try:
            tokenizer, model = _load_from_gguf(source)
        except ModelError:
            raise
        except Exception as exc:
            raise ModelError(f"cannot load GGUF file '{source.name}': {_one_line(exc)}") from exc
        try:
            _save_checkpoint(tokenizer, model, tmp)
            del tokenizer, model
            _write_marker(tmp, digest, source)
            published = _publish(tmp, final, digest)
        except Exception as exc:
            raise ModelError(
                f"cannot save the dequantised copy of '{source.name}' in '{final}': "
                f"{_one_line(exc)}"
            ) from exc
        say(f"dequantised {source.name} in {time.perf_counter() - started:.1f} s")
        return published
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
