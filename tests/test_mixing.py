"""mixing: norm-based and ALTI contributions, against a hand-computed case and against
their definitions recomputed in float64 numpy from each family's own parameters and its
eager attention (no hooks of ours), and withheld when a block is not covered."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from reportgen import analysis, capture, extract, mixing, tiles
from reportgen.config import InputBatch, ReportConfig, SentenceInput
from reportgen.models import load_model

from .test_streaming import _block_pool_reference

# A sentence that appears in no other test.
TEXT = "The trophy would not fit in the brown suitcase because it was too big."
ALL = mixing.MEASURES


def _block(post: bool, d: int = 2) -> mixing.Block:
    out = torch.nn.Linear(d, d, bias=False)
    with torch.no_grad():
        out.weight.copy_(torch.eye(d))
    return mixing.Block(out, torch.nn.LayerNorm(d), post)


def test_a_hand_computed_pre_norm_layer() -> None:
    """Two heads of width 1, W_O the identity, so f_h(x_j) = v^h_j e_h:
    f_0 = (1,0), (2,0); f_1 = (0,3), (0,0). Worked on paper:
    norm, head 0, row 1: (0.5 * 1, 0.5 * 2) / 1.5; head 1, row 1: (0.75, 0) / 0.75;
    norm_layer row 1: ||(0.5, 0.75)||, ||(1, 0)|| normalised;
    ALTI row 1 with x_1 = (0, 1): T(x_0) = (0.5, 0.75), T(x_1) = (1, 1), y_1 = (1.5, 1.75),
    c = (3.25 - 2.0, 3.25 - 1.25) = (1.25, 2.0), so (5/13, 8/13); row 0 keeps itself."""
    alpha = torch.tensor([[[1.0, 0.0], [0.5, 0.5]], [[1.0, 0.0], [0.25, 0.75]]])
    value = torch.tensor([[[1.0], [2.0]], [[3.0], [0.0]]])
    x = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    attn_out = torch.tensor([[1.0, 3.0], [1.5, 0.75]])
    (got,) = mixing.layer_measures(
        mixing.LayerInputs(
            alpha[None], value[None], x[None], attn_out[None], None, _block(post=False), (2,)
        ),
        frozenset(ALL),
    )
    np.testing.assert_allclose(got.norm[0], [[1, 0], [1 / 3, 2 / 3]], atol=1e-7)
    np.testing.assert_allclose(got.norm[1], [[1, 0], [1, 0]], atol=1e-7)
    a, b = np.sqrt(0.25 + 0.5625), 1.0
    np.testing.assert_allclose(got.norm_layer[1], [a / (a + b), b / (a + b)], atol=1e-7)
    np.testing.assert_allclose(got.alti, [[1, 0], [5 / 13, 8 / 13]], atol=1e-7)
    assert got.error == 0.0


def test_alti_rollout_is_the_product_of_layers() -> None:
    c = np.array([[[1.0, 0.0], [0.5, 0.5]], [[0.2, 0.8], [0.0, 1.0]]])
    got = analysis.alti_rollout(c)
    np.testing.assert_allclose(got[0], c[0])
    # R^2 = C^2 C^1, by hand: row 0 = 0.2 (1, 0) + 0.8 (0.5, 0.5).
    np.testing.assert_allclose(got[1], [[0.6, 0.4], [0.5, 0.5]])


# ---------------------------------------------------------------------------------------
# The definitions, from each family's parameters and its eager run
# ---------------------------------------------------------------------------------------


def _np(t: Any) -> np.ndarray:
    return t.detach().double().numpy()


def _layer_norm(z: np.ndarray, norm: Any) -> np.ndarray:
    mu = z.mean(-1, keepdims=True)
    sd = np.sqrt(z.var(-1, keepdims=True) + norm.eps)
    return _np(norm.weight) * (z - mu) / sd + (0 if norm.bias is None else _np(norm.bias))


def _rms(x: np.ndarray, weight: Any, eps: float) -> np.ndarray:
    return _np(weight) * x / np.sqrt((x**2).mean(-1, keepdims=True) + eps)


def _linear(x: np.ndarray, lin: Any) -> np.ndarray:
    y = x @ _np(lin.weight).T
    return y + _np(lin.bias) if getattr(lin, "bias", None) is not None else y


def _parts(family: str, model: Any, layer: int, x: np.ndarray) -> dict[str, Any]:
    """Each family's value vectors (heads, n, d_head), W_O (d, H*dh), b_O, and the
    post-norm LayerNorm (or None), written from the family's own code, not mixing.py's."""
    cfg = model.config
    if family in ("bert", "roberta"):
        att = model.encoder.layer[layer].attention
        v, out, ln = _linear(x, att.self.value), att.output.dense, att.output.LayerNorm
        heads = cfg.num_attention_heads
    elif family == "bart":
        att = model.layers[layer]  # the encoder itself
        v, out = _linear(x, att.self_attn.v_proj), att.self_attn.out_proj
        ln, heads = att.self_attn_layer_norm, cfg.encoder_attention_heads
    elif family == "gpt2":
        block = model.h[layer]
        xin = _layer_norm(x, block.ln_1)
        qkv = xin @ _np(block.attn.c_attn.weight) + _np(block.attn.c_attn.bias)
        v = qkv[:, 2 * cfg.n_embd :]
        w_o = _np(block.attn.c_proj.weight).T  # Conv1D stores (in, out)
        return _heads(v, cfg.n_head) | {"w": w_o, "b": _np(block.attn.c_proj.bias), "ln": None}
    elif family == "llama":
        block = model.layers[layer]
        xin = _rms(x, block.input_layernorm.weight, cfg.rms_norm_eps)
        v = _heads(_linear(xin, block.self_attn.v_proj), cfg.num_key_value_heads)["v"]
        v = np.repeat(v, cfg.num_attention_heads // cfg.num_key_value_heads, axis=0)
        return {"v": v, "w": _np(block.self_attn.o_proj.weight), "b": None, "ln": None}
    elif family == "t5":
        sa = model.block[layer].layer[0]  # the encoder itself
        xin = _rms(x, sa.layer_norm.weight, sa.layer_norm.variance_epsilon)
        v = _linear(xin, sa.SelfAttention.v)
        return _heads(v, cfg.num_heads) | {
            "w": _np(sa.SelfAttention.o.weight),
            "b": None,
            "ln": None,
        }
    else:
        raise AssertionError(family)
    return _heads(v, heads) | {"w": _np(out.weight), "b": _np(out.bias), "ln": ln}


def _heads(v: np.ndarray, heads: int) -> dict[str, Any]:
    n, width = v.shape
    return {"v": v.reshape(n, heads, width // heads).transpose(1, 0, 2)}


def _rows(m: np.ndarray) -> np.ndarray:
    return m / m.sum(-1, keepdims=True)


def _definitions(p: dict[str, Any], alpha: np.ndarray, x: np.ndarray) -> dict[str, np.ndarray]:
    """The issue's definitions, written out with explicit loops over heads."""
    heads, n, dh = p["v"].shape
    d = p["w"].shape[0]
    f = np.stack([p["v"][h] @ p["w"][:, h * dh : (h + 1) * dh].T for h in range(heads)])
    norm = _rows(alpha * np.linalg.norm(f, axis=-1)[:, None, :])
    t = np.einsum("hij,hjd->ijd", alpha, f)  # sum over heads, per (i, j)
    norm_layer = _rows(np.linalg.norm(t, axis=-1))
    t = t + np.eye(n)[:, :, None] * x[:, None, :]
    b = p["b"] if p["b"] is not None else np.zeros(d)
    z = t.sum(axis=1) + b
    if p["ln"] is not None:
        ln = p["ln"]
        sigma = np.sqrt(z.var(-1, keepdims=True) + ln.eps)
        t = _np(ln.weight) * (t - t.mean(-1, keepdims=True)) / sigma[:, None, :]
        y = _layer_norm(z, ln)
    else:
        y = z
    c = np.abs(y).sum(-1)[:, None] - np.abs(y[:, None, :] - t).sum(-1)
    return {"norm": norm, "norm_layer": norm_layer, "alti": _rows(np.maximum(c, 0))}


def _reference(family: str, loaded: Any, text: str) -> list[dict[str, np.ndarray]]:
    """Per layer, the measures from the eager run's hidden states and weights."""
    model = loaded.model
    enc = loaded.tokenizer(text, return_tensors="pt")
    body = model.get_encoder() if family in ("bart", "t5") else getattr(model, "base_model", model)
    with capture.eager(model), torch.inference_mode():
        out = body(
            input_ids=enc["input_ids"],
            attention_mask=enc["attention_mask"],
            output_attentions=True,
            output_hidden_states=True,
        )
    refs = []
    for layer in range(loaded.info.layers):
        x = _np(out.hidden_states[layer][0])
        alpha = _np(out.attentions[layer][0])
        refs.append(_definitions(_parts(family, body, layer, x), alpha, x))
    return refs


FAMILIES = ["bert", "roberta", "gpt2", "llama", "bart", "t5"]


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_matches_the_definitions(
    family: str, tiny_bert: Path, tiny_model: Callable[..., Path]
) -> None:
    folder = tiny_bert if family == "bert" else tiny_model(family)
    config = ReportConfig(model=str(folder), measures=ALL)
    loaded = load_model(config)
    batch = InputBatch(items=(SentenceInput(TEXT, source="a"), SentenceInput("A cat.", source="b")))
    ex = extract.extract(batch, config, loaded=loaded)
    assert ex.measures_withheld is None
    # One padded batch: the short sentence's measures come from the same kernels as the
    # long one's, and must equal its own unpadded reference.
    for result, text in zip(ex.results, (TEXT, "A cat."), strict=True):
        got = result.maps[0].measures
        assert got is not None and got.norm is not None and got.alti is not None
        for layer, want in enumerate(_reference(family, loaded, text)):
            msg = f"{family} {text!r} layer {layer + 1}"
            np.testing.assert_allclose(got.norm[layer], want["norm"], atol=1e-5, err_msg=msg)
            np.testing.assert_allclose(
                got.norm_layer[layer], want["norm_layer"], atol=1e-5, err_msg=msg
            )
            np.testing.assert_allclose(got.alti[layer], want["alti"], atol=1e-4, err_msg=msg)
        np.testing.assert_allclose(got.alti_rollout, analysis.alti_rollout(got.alti), atol=1e-6)


def test_the_embedded_model_matches_the_definitions() -> None:
    config = ReportConfig(measures=ALL)
    loaded = load_model(config)
    ex = extract.extract(InputBatch(items=(SentenceInput(TEXT, source="a"),)), config, loaded)
    got = ex.results[0].maps[0].measures
    assert got is not None and got.norm is not None and got.alti is not None
    for layer, want in enumerate(_reference("bert", loaded, TEXT)):
        np.testing.assert_allclose(got.norm[layer], want["norm"], atol=1e-5)
        np.testing.assert_allclose(got.alti[layer], want["alti"], atol=1e-4)


def test_only_the_named_measures_are_kept(tiny_bert: Path) -> None:
    config = ReportConfig(model=str(tiny_bert), measures=(mixing.NORM,))
    ex = extract.extract(InputBatch(items=(SentenceInput(TEXT, source="a"),)), config)
    got = ex.results[0].maps[0].measures
    assert got is not None and got.norm is not None
    assert got.norm_layer is None and got.alti is None and got.alti_rollout is None
    plain = extract.extract(
        InputBatch(items=(SentenceInput(TEXT, source="a"),)), ReportConfig(model=str(tiny_bert))
    )
    assert plain.results[0].maps[0].measures is None


class _NoCentre(torch.nn.LayerNorm):
    """A block variant the decomposition does not cover: RMS scaling, no centring."""

    def forward(self, x: Any) -> Any:
        return self.weight * x / torch.sqrt((x * x).mean(-1, keepdim=True) + self.eps) + self.bias


def _altered(loaded: Any) -> Any:
    """The model with layer 2's LayerNorm swapped for the variant above, same parameters."""
    ln = loaded.model.encoder.layer[1].attention.output.LayerNorm
    altered = _NoCentre(ln.normalized_shape, eps=ln.eps)
    altered.load_state_dict(ln.state_dict())
    loaded.model.encoder.layer[1].attention.output.LayerNorm = altered
    return loaded


def test_a_block_it_does_not_cover_is_withheld_not_shown_wrong(tiny_bert: Path) -> None:
    config = ReportConfig(model=str(tiny_bert), measures=ALL)
    loaded = _altered(load_model(config))
    ex = extract.extract(InputBatch(items=(SentenceInput(TEXT, source="a"),)), config, loaded)
    assert ex.measures_withheld is not None and "in layer 2" in ex.measures_withheld
    assert all(m.measures is None for r in ex.results for m in r.maps)
    # The weights are unaffected.
    assert ex.results[0].maps[0].attention.shape[0] == 2


def test_an_architecture_it_does_not_cover_is_named(tiny_bert: Path) -> None:
    config = ReportConfig(model=str(tiny_bert), measures=ALL)
    loaded = load_model(config)
    loaded.model.config.model_type = "mystery"
    ex = extract.extract(InputBatch(items=(SentenceInput(TEXT, source="a"),)), config, loaded)
    assert ex.measures_withheld == "the decomposition does not cover the 'mystery' architecture"


@pytest.mark.gguf
def test_smollm2_matches_the_definitions() -> None:
    """A real GGUF decoder: rotary positions, 9 query heads over 3 key-value heads."""
    from reportgen import gguf

    path = gguf.cache_root() / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        pytest.skip(f"{path} is missing (make fetch-smollm2)")
    config = ReportConfig(model=str(path), measures=ALL)
    loaded = load_model(config)
    text = "The cup fell off the shelf because it was"
    ex = extract.extract(InputBatch(items=(SentenceInput(text, source="a"),)), config, loaded)
    assert ex.measures_withheld is None
    got = ex.results[0].maps[0].measures
    assert got is not None and got.norm is not None and got.alti is not None
    for layer, want in enumerate(_reference("llama", loaded, text)):
        np.testing.assert_allclose(got.norm[layer], want["norm"], atol=1e-5)
        np.testing.assert_allclose(got.alti[layer], want["alti"], atol=1e-4)


# ---------------------------------------------------------------------------------------
# Long inputs: the same measures, streamed in chunks of query rows
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["lse", "rebuild"])
@pytest.mark.parametrize("family", ["llama", "bert"])
def test_long_inputs_measures_equal_the_full_maps(
    family: str,
    path: str,
    tiny_model: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A long input's norm overview and every measure's exact rows, made in small tiles
    (from the log-sum-exp, or rebuilt rows), equal the full maps of the same input
    (pre-norm rotary GQA Llama and post-norm BERT)."""
    from .conftest import save_bert

    folder = (
        tiny_model("llama", context=1024)
        if family == "llama"
        else save_bert(tmp_path, layers=2, heads=2, max_length=1024)
    )
    config = ReportConfig(model=str(folder), measures=ALL)
    loaded = load_model(config)
    text = " ".join([TEXT] * 40)
    item = SentenceInput(text, focus="suitcase", source="long")
    batch = InputBatch(items=(item,))
    full = extract.extract(batch, config, loaded).results[0].maps[0].measures
    assert full is not None and full.norm is not None
    monkeypatch.setattr(tiles, "TILE_ROWS", 40)
    monkeypatch.setattr(tiles, "TILE_KEYS", 100)
    if path == "rebuild":
        monkeypatch.setattr(capture, "_lse_kernel_takes", lambda *_: False)
    long = extract.extract_long(batch, config, loaded, blocks=16)
    assert long.measures_withheld is None
    amap = long.results[0].maps[0]
    got = amap.measures
    assert got is not None and got.norm_overview is not None
    n = len(amap.query.tokens)
    assert n > 300 and len(amap.query_blocks) == 16
    np.testing.assert_allclose(
        got.norm_overview,
        _block_pool_reference(full.norm, list(amap.query_blocks), list(amap.key_blocks)),
        atol=1e-5,
    )
    np.testing.assert_allclose(got.norm_overview.sum(-1), 1.0, atol=1e-5)
    positions = [r.position for r in amap.rows]
    rows = dict(got.rows)
    assert set(rows) == set(ALL)
    np.testing.assert_allclose(
        rows["norm"], full.norm[:, :, positions].transpose(2, 0, 1, 3), atol=1e-5
    )
    for name in ("norm_layer", "alti"):
        want = getattr(full, name)[:, positions][:, :, None].transpose(1, 0, 2, 3)
        np.testing.assert_allclose(rows[name], want, atol=1e-4, err_msg=name)


def test_long_inputs_withhold_measures_a_block_does_not_rebuild(tiny_bert: Path) -> None:
    config = ReportConfig(model=str(tiny_bert), measures=ALL)
    loaded = _altered(load_model(config))
    long = extract.extract_long(
        InputBatch(items=(SentenceInput(TEXT, source="a"),)), config, loaded
    )
    assert long.measures_withheld is not None and "in layer 2" in long.measures_withheld
    assert all(m.measures is None for r in long.results for m in r.maps)
    assert long.results[0].maps[0].overview.shape[0] == 2  # the weights are unaffected
