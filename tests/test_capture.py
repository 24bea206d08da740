"""capture: the attention function every family calls, and the names a consumer asks for.

The rebuilt weights are checked against a float64 numpy softmax of the same query and
key; a consumer that names only queries and keys gets them (Llama's four query heads
over two key heads) and no weights are computed for it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from reportgen import capture, extract
from reportgen.config import InputBatch, ReportConfig, SentenceInput
from reportgen.models import load_model

TEXT = "The animal didn't cross the street because it was too tired."


def _reference(q: Any, k: Any, scale: float, bias: Any = None, keep: Any = None) -> Any:
    """softmax(q k^T * scale + bias), masked where `keep` is False, in float64 numpy."""
    q, k = np.asarray(q, np.float64), np.asarray(k, np.float64)
    k = np.repeat(k, q.shape[1] // k.shape[1], axis=1)  # query head h reads key head h // g
    s = q @ k.swapaxes(-1, -2) * scale
    if bias is not None:
        s = s + np.asarray(bias, np.float64)
    if keep is not None:
        s = np.where(keep, s, -np.inf)
    s = s - s.max(-1, keepdims=True)
    e = np.exp(s)
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("mask", ["none-causal", "none-bidirectional", "bool", "float"])
def test_rebuilt_weights_are_softmax_of_the_scaled_scores(mask: str) -> None:
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(2, 4, 5, 8, generator=gen)
    k = torch.randn(2, 2, 5, 8, generator=gen)  # grouped-query: 4 query heads, 2 key heads
    bias = torch.randn(1, 4, 5, 5, generator=gen)
    keep = np.tril(np.ones((5, 5), bool))
    module = type("M", (), {"is_causal": mask == "none-causal"})()
    given: Any = None
    if mask == "bool":
        given = torch.from_numpy(np.broadcast_to(keep, (2, 1, 5, 5)).copy())
    elif mask == "float":
        given = torch.where(torch.from_numpy(keep), 0.0, torch.finfo(torch.float32).min)
    site = capture.Site(module, q, k, k, given, 0.3, None, bias)
    got = site.weights().numpy()
    causal = mask != "none-bidirectional"
    want = _reference(q, k, 0.3, bias, keep if causal else None)
    np.testing.assert_allclose(got, want, atol=1e-6)


class _StatesSink:
    """Names queries, keys and values only: no weights for it."""

    names = frozenset({capture.QUERIES, capture.KEYS, capture.VALUES})

    def __init__(self) -> None:
        self.layers: dict[int, extract.Captured] = {}

    def buffer(self, stream: str, layer: int, shape: tuple[int, int, int]) -> None:
        raise AssertionError("a sink that names no weights is asked for a buffer")

    def take(self, stream: str, layer: int, captured: extract.Captured) -> None:
        assert captured.weights is None
        self.layers[layer] = captured


@pytest.mark.parametrize("family", ["bert", "llama"])
def test_a_consumer_gets_what_it_names_and_nothing_else(
    family: str,
    tiny_bert: Path,
    tiny_model: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tiny_bert if family == "bert" else tiny_model("llama")
    config = ReportConfig(model=str(folder))
    loaded = load_model(config)
    items = [SentenceInput(TEXT, source="a"), SentenceInput("A man.", source="b")]
    encodings = [extract.encode(loaded, item, config)[0] for item in items]
    full = extract.forward_batch(loaded, items, encodings, extract._store_sink)

    def no_weights(_site: Any) -> Any:
        raise AssertionError("weights were rebuilt that no consumer named")

    with monkeypatch.context() as m, torch.inference_mode():
        m.setattr(capture, "rebuild_weights", no_weights)
        states = extract.forward_batch(
            loaded, items, encodings, lambda *_: _StatesSink(), with_next_tokens=False
        )
    heads = loaded.info.heads
    kv = 2 if family == "llama" else heads
    for (store, seqs, _), (sink, _, _) in zip(full, states, strict=True):
        assert isinstance(store, extract.StoreSink) and isinstance(sink, _StatesSink)
        n = len(seqs.input.tokens)
        weights = store.maps[extract.SELF]
        assert sorted(sink.layers) == list(range(loaded.info.layers))
        for layer, got in sink.layers.items():
            assert got.queries is not None and got.keys is not None and got.values is not None
            d = got.queries.shape[-1]
            assert got.queries.shape == (heads, n, d) and got.keys.shape == (kv, n, d)
            assert got.values.shape[:2] == (kv, n)
            keep = np.tril(np.ones((n, n), bool)) if family == "llama" else None
            want = _reference(got.queries[None], got.keys[None], d**-0.5, keep=keep)[0]
            np.testing.assert_allclose(weights[layer], want, atol=1e-6, err_msg=f"{layer}")


def test_an_unknown_name_is_refused(tiny_bert: Path) -> None:
    config = ReportConfig(model=str(tiny_bert))
    loaded = load_model(config)
    item = SentenceInput(TEXT, source="a")
    sink = type("S", (_StatesSink,), {"names": frozenset({"residual"})})

    with pytest.raises(ValueError, match="no capture point named residual"):
        extract.forward_batch(
            loaded, [item], [extract.encode(loaded, item, config)[0]], lambda *_: sink()
        )


def test_outside_a_capture_the_function_is_sdpa(tiny_bert: Path) -> None:
    """The loaded model without a route: its outputs are sdpa's, no weights are built."""
    from transformers import AutoModel, AutoTokenizer

    loaded = load_model(ReportConfig(model=str(tiny_bert)))
    sdpa = AutoModel.from_pretrained(tiny_bert, attn_implementation="sdpa").eval()
    enc = AutoTokenizer.from_pretrained(tiny_bert)(TEXT, return_tensors="pt")
    with torch.inference_mode():
        ours = loaded.model(**enc).last_hidden_state
        theirs = sdpa(**enc).last_hidden_state
    assert loaded.model.config._attn_implementation == capture.NAME
    torch.testing.assert_close(ours, theirs, atol=0, rtol=0)


def test_terms_the_rebuild_does_not_see_keep_eager() -> None:
    from transformers import BertConfig, BloomConfig, Gemma2Config, OPTConfig

    assert capture.needs_eager(BertConfig()) is None
    assert "soft-caps" in str(capture.needs_eager(Gemma2Config()))
    assert "ALiBi" in str(capture.needs_eager(BloomConfig()))
    assert "not verified for the 'opt'" in str(capture.needs_eager(OPTConfig()))


def test_a_soft_capped_model_runs_eager_and_says_so(
    tmp_path: Path, tiny_model: Callable[..., Path]
) -> None:
    """Gemma 2 caps its scores inside the attention: rebuilt weights would be guesses, so
    it runs eager attention, its hooks read eager's own weights, and the page says why."""
    folder = tiny_model("gemma2")
    config = ReportConfig(model=str(folder))
    loaded = load_model(config)
    assert loaded.eager_reason is not None and loaded.model.config._attn_implementation == "eager"
    item = SentenceInput(TEXT, source="a")
    ex = extract.extract(InputBatch(items=(item,)), config, loaded)
    assert any("weights from eager attention" in w and "soft-caps" in w for w in ex.warnings)
    enc = loaded.tokenizer(TEXT, return_tensors="pt")
    with torch.inference_mode():
        own = loaded.model(**enc, output_attentions=True).attentions
    np.testing.assert_allclose(ex.results[0].maps[0].attention, torch.cat(own).numpy(), atol=1e-6)


def test_a_soft_capped_models_long_path_reduces_eagers_whole_layers(
    tiny_model: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the long path a model that needs eager hands each layer whole (its hook); the
    layer is reduced as the tiles are (tiles.reduce_weights), to eager's own numbers."""
    from reportgen import analysis, tiles

    monkeypatch.setattr(tiles, "TILE_ROWS", 3)  # several chunks even on a short input
    folder = tiny_model("gemma2")
    config = ReportConfig(model=str(folder))
    loaded = load_model(config)
    batch = InputBatch(items=(SentenceInput(TEXT, source="a"),))
    full = extract.extract(batch, config, loaded).results[0].maps[0]
    long = extract.extract_long(batch, config, loaded, blocks=4).results[0].maps[0]
    from .test_streaming import _block_pool_reference

    att = full.attention.astype(np.float64)
    pooled = _block_pool_reference(att, list(long.query_blocks), list(long.key_blocks))
    np.testing.assert_allclose(long.overview, pooled, atol=1e-6)
    np.testing.assert_allclose(long.entropy, analysis.mean_entropy(full.attention), atol=1e-5)
    np.testing.assert_allclose(long.rows[-1].attention, att[:, :, -1], atol=1e-7)
