"""Streaming extraction: hooks on each attention module, long inputs reduced layer by layer.

Every check is against the model's own `output_attentions`, or an independent numpy
reference, on tiny random models at 2k+ tokens (a few seconds each on two cores).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoModelForCausalLM

from reportgen import analysis, capture, extract, tiles
from reportgen.config import InputBatch, ReportConfig, SentenceInput
from reportgen.export import long_export_data
from reportgen.extract import attention_modules, extract_long
from reportgen.inputs import collect_inputs
from reportgen.models import load_model

from . import models
from .conftest import save_bert

ATOL = 1e-6
LONG = 2100  # tokens: past the 2k the issue asks the tests to reach


def _layers(attentions: Any) -> np.ndarray:
    return torch.stack(list(attentions), dim=1)[0].float().numpy()


def _long_text(tok: Any, tokens: int) -> str:
    """Repeated corpus sentences, cut to about `tokens` tokens."""
    text = " ".join(models.CORPUS[:5])
    while len(tok(text)["input_ids"]) < tokens:
        text = text + " " + text
    words = text.split(" ")
    low, high = 1, len(words)
    while low < high:  # the fewest words that reach `tokens`
        mid = (low + high) // 2
        if len(tok(" ".join(words[:mid]))["input_ids"]) >= tokens:
            high = mid
        else:
            low = mid + 1
    return " ".join(words[:low])


@pytest.fixture(scope="module")
def long_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_bert(tmp_path_factory.mktemp("long-bert"), layers=2, heads=2, max_length=2304)


@pytest.fixture(scope="module")
def long_llama(tiny_model: Callable[..., Path]) -> Path:
    """The tiny Llama with a 4,096-token context (rotary positions need no new weights)."""
    return tiny_model("llama", context=4096)


@pytest.fixture(scope="module")
def family(tiny_model: Callable[..., Path]) -> dict[str, Path]:
    return {
        "gpt2": tiny_model("gpt2"),
        "t5": tiny_model("t5", decoder_layers=3),
        "bart": tiny_model("bart"),
    }


def test_attention_modules_by_stream_and_layer(family: dict[str, Path], long_llama: Path) -> None:
    expected = {
        "gpt2": (AutoModelForCausalLM, {"self": 2}),
        "t5": (AutoModel, {"self": 2, "decoder": 3, "cross": 3}),
        "bart": (AutoModel, {"self": 2, "decoder": 2, "cross": 2}),
        "llama": (AutoModelForCausalLM, {"self": 2}),
    }
    folders = {**family, "llama": long_llama}
    for name, (loader, streams) in expected.items():
        model = loader.from_pretrained(folders[name], attn_implementation="eager")
        hooked = attention_modules(model)
        counts: dict[str, list[int]] = {}
        for h in hooked:
            counts.setdefault(h.stream, []).append(h.layer)
        assert {k: len(v) for k, v in counts.items()} == streams, name
        assert all(v == list(range(len(v))) for v in counts.values()), name


def _spy_forward(monkeypatch: pytest.MonkeyPatch, loaded: Any) -> list[dict[str, Any]]:
    """Record the keyword arguments of every forward call of the loaded model."""
    calls: list[dict[str, Any]] = []
    original = loaded.model.forward

    def forward(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(loaded.model, "forward", forward)
    return calls


def test_streamed_maps_equal_output_attentions_at_2k_tokens_bert(
    long_bert: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = ReportConfig(model=str(long_bert))
    loaded = load_model(config)
    text = _long_text(loaded.tokenizer, LONG)
    calls = _spy_forward(monkeypatch, loaded)
    ex = extract.extract(
        collect_inputs([text, "A short one."]),
        config,
        loaded,
    )
    assert calls and not any(c.get("output_attentions") for c in calls)  # no stacked copy
    model = AutoModel.from_pretrained(long_bert, attn_implementation="eager").eval()
    for text_i, result in zip((text, "A short one."), ex.results, strict=True):
        enc = loaded.tokenizer(text_i, return_tensors="pt")
        with torch.inference_mode():
            own = _layers(model(**enc, output_attentions=True).attentions)
        got = result.maps[0].attention
        assert got.dtype == np.float32 and got.flags.c_contiguous
        np.testing.assert_allclose(got, own, atol=ATOL)
    assert ex.results[0].maps[0].attention.shape[-1] >= LONG


def test_streamed_maps_equal_output_attentions_llama_gpt2_t5_bart(
    family: dict[str, Path], long_llama: Path
) -> None:
    cases = {
        "llama": long_llama,
        "gpt2": family["gpt2"],
        "t5": family["t5"],
        "bart": family["bart"],
    }
    for name, folder in cases.items():
        config = ReportConfig(model=str(folder))
        loaded = load_model(config)
        text = _long_text(loaded.tokenizer, LONG) if name == "llama" else models.CORPUS[0]
        ex = extract.extract(collect_inputs([text, models.CORPUS[3]]), config, loaded)
        causal = loaded.info.kind == "causal"
        model = loaded.model
        for t, result in zip((text, models.CORPUS[3]), ex.results, strict=True):
            enc = loaded.tokenizer(t, return_tensors="pt")
            enc.pop("token_type_ids", None)
            kwargs: dict[str, Any] = {"output_attentions": True}
            if not causal:
                ids = [model.config.decoder_start_token_id] + list(
                    loaded.tokenizer(text_target=t)["input_ids"]
                )
                kwargs["decoder_input_ids"] = torch.tensor([ids])
            with torch.inference_mode(), capture.eager(model):  # transformers' own weights
                out = model(**enc, **kwargs)
            if causal:
                np.testing.assert_allclose(
                    result.maps[0].attention, _layers(out.attentions), atol=ATOL, err_msg=name
                )
                continue
            own = (out.encoder_attentions, out.decoder_attentions, out.cross_attentions)
            for amap, stack in zip(result.maps, own, strict=True):
                np.testing.assert_allclose(amap.attention, _layers(stack), atol=ATOL, err_msg=name)


def test_fallback_without_declared_modules_gives_the_same_maps(
    family: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = ReportConfig(model=str(family["t5"]))
    batch = collect_inputs([models.CORPUS[0], models.CORPUS[4]])
    hooked = extract.extract(batch, config)
    monkeypatch.setattr(extract, "attention_modules", lambda _model: [])
    stacked = extract.extract(batch, config)
    for a, b in zip(hooked.results, stacked.results, strict=True):
        assert [m.name for m in a.maps] == [m.name for m in b.maps]
        for ma, mb in zip(a.maps, b.maps, strict=True):
            # Eager's weights against the capture seam's, rebuilt from the same layers.
            np.testing.assert_allclose(ma.attention, mb.attention, atol=ATOL)


def test_the_long_path_without_declared_modules_reduces_the_stacked_layers(
    family: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No declared attention modules: eager's stacked layers arrive whole and are reduced
    as the tiles are, to the hooked long path's numbers (every stream of an encoder-decoder)."""
    config = ReportConfig(model=str(family["bart"]))
    batch = collect_inputs([models.CORPUS[0]])
    hooked = extract_long(batch, config, blocks=4).results[0].maps
    monkeypatch.setattr(extract, "attention_modules", lambda _model: [])
    stacked = extract_long(batch, config, blocks=4).results[0].maps
    assert [m.name for m in hooked] == [m.name for m in stacked]
    for ma, mb in zip(hooked, stacked, strict=True):
        np.testing.assert_allclose(ma.overview, mb.overview, atol=ATOL)
        np.testing.assert_allclose(ma.rows[-1].attention, mb.rows[-1].attention, atol=ATOL)
        np.testing.assert_allclose(ma.entropy, mb.entropy, atol=1e-5)


def _block_pool_reference(
    att: np.ndarray, qb: list[tuple[int, int]], kb: list[tuple[int, int]]
) -> np.ndarray:
    """Membership matrices, as in the word-level merge: mean over query rows, sum over keys."""
    nq, nk = att.shape[-2:]
    rows = np.zeros((len(qb), nq))
    for i, (s, e) in enumerate(qb):
        rows[i, s:e] = 1.0 / (e - s)
    cols = np.zeros((len(kb), nk))
    for j, (s, e) in enumerate(kb):
        cols[j, s:e] = 1.0
    return rows @ att.astype(np.float64) @ cols.T


def test_block_bounds_cover_every_position_once() -> None:
    for n, blocks in ((2100, 128), (7, 3), (5, 9), (1, 4)):
        bounds = analysis.block_bounds(n, blocks)
        assert bounds[0][0] == 0 and bounds[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
        sizes = [e - s for s, e in bounds]
        assert len(bounds) == min(n, blocks) and max(sizes) - min(sizes) <= 1


def test_block_pool_rows_sum_to_one_and_match_the_reference(rng: np.random.Generator) -> None:
    att = rng.dirichlet(np.ones(301) * 0.3, size=(2, 3, 250)).astype(np.float32)
    qb, kb = analysis.block_bounds(250, 16), analysis.block_bounds(301, 20)
    pooled = analysis.block_pool(att, qb, kb)
    assert pooled.shape == (2, 3, 16, 20) and pooled.dtype == np.float32
    np.testing.assert_allclose(pooled.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(pooled, _block_pool_reference(att, qb, kb), atol=1e-6)


def test_head_entropies_equal_the_float64_reference(rng: np.random.Generator) -> None:
    att = rng.dirichlet(np.ones(40) * 0.2, size=(3, 4, 40)).astype(np.float32)
    att[0, 0, 0] = 0.0
    att[0, 0, 0, 5] = 1.0  # a one-hot row: 0 log 0 = 0
    per_head, layer = analysis.head_entropies(att)
    np.testing.assert_allclose(per_head, analysis.mean_entropy(att), atol=1e-6)
    np.testing.assert_allclose(layer, analysis.mean_entropy(analysis.head_average(att)), atol=1e-6)


@pytest.mark.parametrize(
    ("path", "tile_rows", "tile_keys"),
    [("lse", tiles.TILE_ROWS, tiles.TILE_KEYS), ("lse", 40, 300), ("rebuild", 100, 300)],
)
def test_long_extraction_rows_overview_and_sinks_at_2k_tokens(
    long_llama: Path, path: str, tile_rows: int, tile_keys: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each layer is made a tile at a time (from each row's log-sum-exp, or rebuilt a
    chunk of rows at a time where the fast kernel that returns it does not take the call;
    small tiles cut across the overview's 32-row blocks), never whole, and reduces to the
    eager run's numbers all the same."""
    config = ReportConfig(model=str(long_llama))
    loaded = load_model(config)
    text = _long_text(loaded.tokenizer, LONG)
    item = SentenceInput(text, focus="street", source="long")
    batch = InputBatch(items=(item,))
    spans: list[tuple[int, int]] = []
    rebuild = capture.rebuild_weights

    def spy(site: capture.Site, start: int = 0, stop: int | None = None, **kw: Any) -> Any:
        out = rebuild(site, start, stop, **kw)
        spans.append((int(out.shape[-2]), int(out.shape[-1])))
        return out

    monkeypatch.setattr(capture, "rebuild_weights", spy)
    monkeypatch.setattr(tiles, "TILE_ROWS", tile_rows)
    monkeypatch.setattr(tiles, "TILE_KEYS", tile_keys)
    if path == "rebuild":
        monkeypatch.setattr(capture, "_lse_kernel_takes", lambda *_: False)
    long = extract_long(batch, config, loaded, blocks=64)
    if path == "lse":
        assert spans == []  # every tile from the log-sum-exp: nothing rebuilt
    else:
        # Whole blocks of rows at a time (at least tile_rows), never the layer; causal:
        # each chunk's keys stop at its last row (capture.rebuild_weights' crop).
        assert spans and tile_rows <= max(rows for rows, _ in spans) < 2 * tile_rows
        assert min(keys for _, keys in spans) < max(keys for _, keys in spans)
    amap = long.results[0].maps[0]
    n = len(amap.query.tokens)
    assert n >= LONG
    # Exact rows: the focus word's pieces (first "street"), then the last position.
    focus, _ = analysis.find_word(text, amap.query.offsets, "street")
    assert [r.position for r in amap.rows] == [*focus, n - 1]
    model = AutoModelForCausalLM.from_pretrained(long_llama, attn_implementation="eager").eval()
    with torch.inference_mode():
        own = _layers(
            model(**loaded.tokenizer(text, return_tensors="pt"), output_attentions=True).attentions
        )
    for row in amap.rows:
        assert row.token == amap.query.display[row.position]
        np.testing.assert_allclose(row.attention, own[:, :, row.position, :], atol=ATOL)
    # Overview: 64 blocks a side, rows sum to 1, equal to an independent block pool.
    assert len(amap.query_blocks) == 64 and amap.overview.shape == (2, 4, 64, 64)
    np.testing.assert_allclose(amap.overview.sum(-1), 1.0, atol=1e-5)
    reference = _block_pool_reference(own, list(amap.query_blocks), list(amap.key_blocks))
    np.testing.assert_allclose(amap.overview, reference, atol=1e-6)
    np.testing.assert_allclose(amap.first_share, own[..., 0].mean(-1), atol=1e-6)
    np.testing.assert_allclose(amap.entropy, analysis.mean_entropy(own), atol=1e-5)
    assert amap.causal and len(long.results[0].next_tokens) == 5
    # The export: rows as the issue names them, no full attention array.
    doc = long_export_data(long)
    item_doc = json.loads(json.dumps(doc))["items"][0]
    assert "attention" not in item_doc and len(item_doc["tokens"]) == n
    assert [r["position"] for r in item_doc["rows"]] == [*focus, n - 1]
    last = item_doc["rows"][-1]
    assert (
        np.asarray(last["attention"]).shape == (2, 4, n) and last["token"] == amap.query.display[-1]
    )
    assert np.asarray(item_doc["overview"]["attention"]).shape == (2, 4, 64, 64)
    assert item_doc["overview"]["query_blocks"][0] == [0, amap.query_blocks[0][1]]
    assert np.asarray(item_doc["first_position_share"]).shape == (2, 4)


def test_long_extraction_of_an_encoder_decoder_has_three_streams(family: dict[str, Path]) -> None:
    config = ReportConfig(model=str(family["bart"]))
    batch = collect_inputs([models.CORPUS[0]])
    full = extract.extract(batch, config).results[0].maps
    long = extract_long(batch, config, blocks=4).results[0].maps
    assert [m.name for m in long] == [m.name for m in full]
    for lm, fm in zip(long, full, strict=True):
        reference = _block_pool_reference(fm.attention, list(lm.query_blocks), list(lm.key_blocks))
        np.testing.assert_allclose(lm.overview, reference, atol=1e-6)
        last = len(lm.query.tokens) - 1
        assert lm.rows[-1].position == last
        # The same weights, made a tile at a time from the log-sum-exp: float32 rounding.
        np.testing.assert_allclose(lm.rows[-1].attention, fm.attention[:, :, last, :], atol=1e-6)
