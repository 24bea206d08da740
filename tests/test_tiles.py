"""tiles: a layer reduced tile by tile equals the same reduction of its full weights,
computed independently in float64 numpy, whichever way the tiles are made (from each
row's log-sum-exp, rebuilt rows, or a whole layer given)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from reportgen import analysis, capture, tiles

HEADS, KV, D = 4, 2, 8


def _site(n: int, causal: bool, seed: int = 0) -> capture.Site:
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(1, HEADS, n, D, generator=g) * 2
    k = torch.randn(1, KV, n, D, generator=g) * 2
    v = torch.randn(1, KV, n, D, generator=g)

    class Module:
        is_causal = causal

    return capture.Site(Module(), q, k, v, None, D**-0.5, causal, None)


def _reference(site: capture.Site, causal: bool) -> np.ndarray:
    """softmax(q k^T * scaling) in float64, keys past the row masked where causal."""
    q = site.query[0].double().numpy()
    k = np.repeat(site.key[0].double().numpy(), HEADS // KV, axis=0)
    s = q @ k.transpose(0, 2, 1) * site.scaling
    n = s.shape[-1]
    if causal:
        s = np.where(np.tril(np.ones((n, n), dtype=bool)), s, -np.inf)
    s = s - s.max(-1, keepdims=True)
    w = np.exp(s)
    return w / w.sum(-1, keepdims=True)


def _expected(w: np.ndarray, plan: tiles.Plan, norms: np.ndarray) -> dict[str, Any]:
    """What the reduction should hold, summed the obvious way."""
    pooled = np.stack(
        [
            np.stack([w[:, a:b, c:d].sum(axis=(1, 2)) for c, d in plan.key_blocks], -1)
            for a, b in plan.query_blocks
        ],
        1,
    )
    n_rows = w * norms[:, None, :]
    n_rows = n_rows / n_rows.sum(-1, keepdims=True)
    norm_pooled = np.stack(
        [
            np.stack([n_rows[:, a:b, c:d].sum(axis=(1, 2)) for c, d in plan.key_blocks], -1)
            for a, b in plan.query_blocks
        ],
        1,
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(w > 0, w * np.log(w), 0.0)
    return {
        "pooled": pooled,
        "first": w[:, :, 0].sum(-1),
        "entropy": -plogp.sum(axis=(1, 2)),
        "rows": w[:, list(plan.positions)].transpose(1, 0, 2),
        "norm_pooled": norm_pooled,
    }


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("way", ["lse", "rebuild", "given"])
def test_a_tiled_layer_equals_its_full_reduction(
    causal: bool, way: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small tiles cut the 300 rows and keys into many pieces, unevenly (blocks of 18-19).
    monkeypatch.setattr(tiles, "TILE_ROWS", 40)
    monkeypatch.setattr(tiles, "TILE_KEYS", 70)
    n = 300
    site = _site(n, causal)
    blocks = tuple(analysis.block_bounds(n, 16))
    plan = tiles.Plan(blocks, blocks, (0, 17, 150, n - 1))
    norms = torch.rand(HEADS, n, generator=torch.Generator().manual_seed(1)) + 0.1
    w = _reference(site, causal)
    want = _expected(w, plan, norms.double().numpy())
    if way == "lse":
        _, lse = capture._with_lse(site)
        got = tiles.reduce_site(site, plan, lse=lse[0], norms=norms)
    elif way == "rebuild":
        got = tiles.reduce_site(site, plan, norms=norms)
    else:
        got = tiles.reduce_weights(torch.from_numpy(w.astype(np.float32)), plan, norms=norms)
    np.testing.assert_allclose(got.pooled, want["pooled"], atol=2e-5)
    np.testing.assert_allclose(got.first, want["first"], atol=2e-5)
    np.testing.assert_allclose(got.entropy, want["entropy"], rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(got.rows, want["rows"], atol=1e-6)
    assert got.norm_pooled is not None
    np.testing.assert_allclose(got.norm_pooled, want["norm_pooled"], atol=2e-5)
    # Each query block's rows sum to its size: every row is a distribution.
    sizes = np.array([b - a for a, b in blocks])
    np.testing.assert_allclose(got.pooled.sum(-1), np.broadcast_to(sizes, (HEADS, 16)), rtol=1e-5)


def test_the_log_sum_exp_kernel_gives_sdpas_output_and_the_rows_normaliser() -> None:
    """The capture's fast path: the same output as sdpa_attention_forward, and each row's
    log-sum-exp of its scores."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    site = _site(64, True)

    class Module:
        is_causal = True
        num_key_value_groups = HEADS // KV

    out, lse = capture._with_lse(site)
    want, _ = sdpa_attention_forward(
        Module(), site.query, site.key, site.value, None, scaling=site.scaling, is_causal=True
    )
    np.testing.assert_allclose(out.numpy(), want.numpy(), atol=1e-6)
    q = site.query[0].double()
    k = site.key[0].double().repeat_interleave(HEADS // KV, 0)
    s = q @ k.transpose(-1, -2) * site.scaling
    s = s.masked_fill(torch.ones(64, 64, dtype=torch.bool).triu(1), float("-inf"))
    np.testing.assert_allclose(lse[0].numpy(), torch.logsumexp(s, -1).numpy(), atol=1e-5)


def test_chunks_span_whole_blocks_up_to_the_bound() -> None:
    for n, count in ((8192, 128), (300, 16), (100, 128), (40_000, 128)):
        blocks = tuple(analysis.block_bounds(n, count))
        plan = tiles.Plan(blocks, blocks, ())
        spans = []
        for (qa, qz), runs in tiles._tiles(plan, causal=True):
            spans.append(blocks[qz - 1][1] - blocks[qa][0])
            # Causal: no tile starts after the chunk's last row.
            assert all(blocks[ka][0] <= blocks[qz - 1][1] - 1 for ka, _ in runs)
        assert sum(spans) == n and max(spans) <= tiles.chunk_rows(n, count)
