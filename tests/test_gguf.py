"""Tests for reportgen.gguf: finding GGUF files, the cache layout, and dequantising once."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from reportgen import gguf
from reportgen.errors import InputError, ModelError

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPT = "The animal didn't cross the street because it was too"
EXPECTED_TOP5 = [" far", " close", " fast", " busy", " high"]


def _fake_gguf(path: Path, payload: bytes = b"not really weights") -> Path:
    path.write_bytes(gguf.GGUF_MAGIC + payload)
    return path


def _complete_folder(cache: Path, source: Path) -> Path:
    """A cached folder that looks finished for `source`, written by hand."""
    digest = gguf.file_digest(source)
    folder = cache / "gguf" / digest[:16]
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}", encoding="utf-8")
    marker = {
        "format": gguf.CACHE_FORMAT,
        "sha256": digest,
        "source": source.name,
        "weights": gguf.weights_record(folder),
    }
    (folder / gguf.MARKER_NAME).write_text(json.dumps(marker), encoding="utf-8")
    return folder


def _no_loading(*_: Any, **__: Any) -> Any:
    raise AssertionError("the GGUF loader must not run")


# --- find_gguf ---------------------------------------------------------------------------------


def test_find_gguf_file(tmp_path: Path) -> None:
    model = _fake_gguf(tmp_path / "m.gguf")
    assert gguf.find_gguf(model) == model


def test_find_gguf_file_by_magic_without_suffix(tmp_path: Path) -> None:
    blob = _fake_gguf(tmp_path / "sha256-0123abcd")
    assert gguf.find_gguf(blob) == blob


def test_find_gguf_other_file_is_none(tmp_path: Path) -> None:
    other = tmp_path / "config.json"
    other.write_text("{}", encoding="utf-8")
    assert gguf.find_gguf(other) is None


def test_find_gguf_folder_with_one(tmp_path: Path) -> None:
    model = _fake_gguf(tmp_path / "Model.Q4_0.GGUF")
    (tmp_path / "README.md").write_text("hi", encoding="utf-8")
    nested = tmp_path / "sub"
    nested.mkdir()
    _fake_gguf(nested / "ignored.gguf")  # not searched: the lookup is not recursive
    assert gguf.find_gguf(tmp_path) == model


def test_find_gguf_folder_with_two_names_them(tmp_path: Path) -> None:
    _fake_gguf(tmp_path / "a.Q4_0.gguf")
    _fake_gguf(tmp_path / "b.Q8_0.gguf")
    with pytest.raises(InputError, match=r"a\.Q4_0\.gguf, b\.Q8_0\.gguf"):
        gguf.find_gguf(tmp_path)


def test_find_gguf_folder_with_none(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    assert gguf.find_gguf(tmp_path) is None


def test_find_gguf_missing_path(tmp_path: Path) -> None:
    assert gguf.find_gguf(tmp_path / "nope.gguf") is None


# --- cache_root, file_digest ---------------------------------------------------------------------


def test_cache_root_prefers_reportgen_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPORTGEN_CACHE", str(tmp_path / "rc"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert gguf.cache_root() == tmp_path / "rc"


def test_cache_root_uses_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REPORTGEN_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert gguf.cache_root() == tmp_path / "xdg" / "reportgen"


def test_cache_root_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPORTGEN_CACHE", "")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert gguf.cache_root() == tmp_path / ".cache" / "reportgen"


def test_file_digest_is_sha256(tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 17)  # spans several chunks
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert gguf.file_digest(path) == hashlib.sha256(data).hexdigest()


# --- materialize, without a real model -----------------------------------------------------------


def test_materialize_returns_cached_folder_without_loading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _fake_gguf(tmp_path / "m.gguf")
    folder = _complete_folder(tmp_path / "cache", source)
    monkeypatch.setattr(gguf, "_require_extra", _no_loading)
    monkeypatch.setattr(gguf, "_load_from_gguf", _no_loading)
    lines: list[str] = []
    assert gguf.materialize(source, cache_dir=tmp_path / "cache", log=lines.append) == folder
    assert len(lines) == 1 and "cached" in lines[0]


def test_materialize_cache_hit_works_without_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _fake_gguf(tmp_path / "m.gguf")
    folder = _complete_folder(tmp_path / "cache", source)
    monkeypatch.setitem(sys.modules, "gguf", None)
    assert gguf.materialize(source, cache_dir=tmp_path / "cache") == folder


def test_materialize_uses_cache_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = _fake_gguf(tmp_path / "m.gguf")
    folder = _complete_folder(tmp_path / "env-cache", source)
    monkeypatch.setenv("REPORTGEN_CACHE", str(tmp_path / "env-cache"))
    monkeypatch.setattr(gguf, "_load_from_gguf", _no_loading)
    assert gguf.materialize(source) == folder


def test_materialize_missing_extra_gives_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _fake_gguf(tmp_path / "m.gguf")
    monkeypatch.setitem(sys.modules, "gguf", None)  # makes `import gguf` raise ImportError
    monkeypatch.setattr(gguf, "_load_from_gguf", _no_loading)
    with pytest.raises(ModelError) as info:
        gguf.materialize(source, cache_dir=tmp_path / "cache")
    assert "reportgen[gguf]" in str(info.value)
    assert "\n" not in str(info.value)
    assert "reportgen[gguf]" in gguf.GGUF_INSTALL_HINT and "\n" not in gguf.GGUF_INSTALL_HINT


def _fake_save(tokenizer: Any, model: Any, out_dir: Path) -> None:
    (out_dir / "config.json").write_text(json.dumps({"model": model}), encoding="utf-8")
    (out_dir / "tokenizer.json").write_text(json.dumps({"tok": tokenizer}), encoding="utf-8")


def test_materialize_builds_marks_and_reuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _fake_gguf(tmp_path / "m.gguf")
    calls: list[Path] = []

    def fake_load(path: Path) -> tuple[str, str]:
        calls.append(path)
        return "tok", "model"

    monkeypatch.setattr(gguf, "_require_extra", lambda: None)
    monkeypatch.setattr(gguf, "_load_from_gguf", fake_load)
    monkeypatch.setattr(gguf, "_save_checkpoint", _fake_save)
    cache = tmp_path / "cache"
    # Debris under the final name (no marker) is replaced, not trusted.
    debris = cache / "gguf" / gguf.file_digest(source)[:16]
    debris.mkdir(parents=True)
    (debris / "config.json").write_text("half", encoding="utf-8")

    lines: list[str] = []
    folder = gguf.materialize(source, cache_dir=cache, log=lines.append)
    assert folder == debris
    assert json.loads((folder / "config.json").read_text(encoding="utf-8")) == {"model": "model"}
    marker = json.loads((folder / gguf.MARKER_NAME).read_text(encoding="utf-8"))
    assert marker["sha256"] == gguf.file_digest(source)
    assert marker["source"] == "m.gguf"
    assert any("dequantising m.gguf (first run only" in line for line in lines)
    assert [p.name for p in (cache / "gguf").iterdir()] == [folder.name]  # no temp left

    assert gguf.materialize(source, cache_dir=cache) == folder
    assert calls == [source.resolve()]


def test_materialize_different_content_gets_a_different_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gguf, "_require_extra", lambda: None)
    monkeypatch.setattr(gguf, "_load_from_gguf", lambda path: ("tok", "model"))
    monkeypatch.setattr(gguf, "_save_checkpoint", _fake_save)
    first = gguf.materialize(_fake_gguf(tmp_path / "a.gguf", b"1"), cache_dir=tmp_path)
    second = gguf.materialize(_fake_gguf(tmp_path / "b.gguf", b"2"), cache_dir=tmp_path)
    assert first != second and first.parent == second.parent == tmp_path / "gguf"


def test_materialize_keeps_a_concurrent_winner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _fake_gguf(tmp_path / "m.gguf")
    cache = tmp_path / "cache"

    def racing_save(tokenizer: Any, model: Any, out_dir: Path) -> None:
        _fake_save(tokenizer, model, out_dir)
        winner = _complete_folder(cache, source)  # another process renames its copy in first
        (winner / "winner").write_text("yes", encoding="utf-8")

    monkeypatch.setattr(gguf, "_require_extra", lambda: None)
    monkeypatch.setattr(gguf, "_load_from_gguf", lambda path: ("tok", "model"))
    monkeypatch.setattr(gguf, "_save_checkpoint", racing_save)
    folder = gguf.materialize(source, cache_dir=cache)
    assert (folder / "winner").is_file()
    assert [p.name for p in (cache / "gguf").iterdir()] == [folder.name]


def test_materialize_loader_failure_is_one_line_model_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _fake_gguf(tmp_path / "broken.gguf")

    def failing_load(path: Path) -> tuple[Any, Any]:
        raise ValueError("GGUF model with architecture frobnicator is not supported yet.\nmore")

    monkeypatch.setattr(gguf, "_require_extra", lambda: None)
    monkeypatch.setattr(gguf, "_load_from_gguf", failing_load)
    with pytest.raises(ModelError) as info:
        gguf.materialize(source, cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert "broken.gguf" in message and "frobnicator" in message and "\n" not in message
    assert list((tmp_path / "cache" / "gguf").iterdir()) == []  # temp folder removed


def test_materialize_rejects_non_gguf_content(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_text("<html>404</html>", encoding="utf-8")
    with pytest.raises(ModelError, match="not a GGUF file"):
        gguf.materialize(bogus, cache_dir=tmp_path / "cache")


def test_materialize_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        gguf.materialize(tmp_path / "gone.gguf", cache_dir=tmp_path / "cache")


# --- the real SmolLM2 GGUF -----------------------------------------------------------------------


def _real_smollm2() -> Path:
    path = gguf.cache_root() / "models" / SMOLLM2_FILE
    if not path.is_file():
        reason = f"{path} is missing; fetch it first (make demo-causal)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def _top5_and_attention(tokenizer: Any, model: Any) -> tuple[list[str], Any]:
    import torch

    encoded = tokenizer(PROMPT, return_tensors="pt")
    with torch.no_grad():
        out = model(**encoded, output_attentions=True)
    top = torch.topk(out.logits[0, -1], 5).indices.tolist()
    return [tokenizer.decode([i]) for i in top], out.attentions


@pytest.mark.gguf
def test_real_smollm2_materializes_and_matches_direct_gguf(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _real_smollm2()
    pytest.importorskip("gguf")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    folder = gguf.materialize(source, cache_dir=tmp_path)
    first_s = time.perf_counter() - started
    started = time.perf_counter()
    assert gguf.materialize(source, cache_dir=tmp_path) == folder
    second_s = time.perf_counter() - started
    print(f"materialize: first {first_s:.2f} s, cached {second_s:.3f} s")
    assert second_s * 5 <= first_s
    assert (folder / "model.safetensors").is_file() and (folder / "config.json").is_file()

    with monkeypatch.context() as without_gguf:  # the saved folder must not need gguf
        without_gguf.setitem(sys.modules, "gguf", None)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager")
        assert model.dtype == torch.float32
        saved_top5, saved_attn = _top5_and_attention(tokenizer, model)
    n_tokens = len(tokenizer(PROMPT)["input_ids"])
    assert len(saved_attn) == 30
    assert all(tuple(a.shape) == (1, 9, n_tokens, n_tokens) for a in saved_attn)

    direct_tok = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    direct = AutoModelForCausalLM.from_pretrained(
        source.parent, gguf_file=source.name, attn_implementation="eager"
    )
    direct_top5, direct_attn = _top5_and_attention(direct_tok, direct)
    assert saved_top5 == direct_top5 == EXPECTED_TOP5
    for ours, theirs in zip(saved_attn, direct_attn, strict=True):
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)
