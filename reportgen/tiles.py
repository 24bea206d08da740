"""Long inputs: one layer's weights reduced tile by tile, on the model's device.

What a long input's page keeps of a layer (``config.LongAttention``): the block-pooled
overview, the first position's share, each head's mean row entropy and the exact rows,
and, with the norm measure, norm's pooled overview. None of it needs the layer's heads x
n x n weights at once, so they are made a tile at a time (a few query blocks by a few
thousand keys) and reduced at once, in torch on the device the model runs on; only the
reduced numbers (kilobytes) reach numpy.

A tile's weights come three ways, the reduction being the same:

- **From each row's log-sum-exp** (:func:`reduce_site` with ``lse``): the capture seam ran
  the fast kernel that also returns it (``capture.attention``), so a tile is
  ``exp(q k^T * scaling - lse)`` in one pass, its log already in hand for the entropy
  (``-sum w log w``), no second softmax, and a causal layer's tiles above the diagonal
  are never made;
- **rebuilt** from the queries and keys (``capture.rebuild_weights``), a chunk of query
  rows over every key at a time, where the call has a mask, a bias or a dtype the kernel
  with the log-sum-exp does not take;
- **given** (:func:`reduce_weights`): a layer that arrived whole from eager attention.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

# Query rows a tile spans at least (whole query blocks, so each tile's rows fall into
# known blocks), and keys at least (whole key blocks): at 4,000 tokens and 9 heads a
# 93 x 512 tile of scores is 1.7 MB, so a tile's passes (exp, masks, pooling, entropy)
# stay in the 2 MB L2 and 32 MB L3 of a 2-core EPYC, and its two float32 planes are
# written into scratch made once a layer (measured there, one SmolLM2-shaped layer: 0.17 s
# at 4,000 tokens and 0.77 s at 8,000, against 0.25 s and 1.05 s with 2,048-key tiles
# allocated afresh).
TILE_ROWS = 64
TILE_KEYS = 512
# Log-weights are clamped from below here: torch's vectorised exp leaves its fast path for
# arguments whose results underflow (7-15 ms against 1 ms for a 9 x 64 x 2,048 tile on a
# 2-core CPU), which the far keys of long rows are. A weight under e^-80 (1.8e-35) is thus
# counted as 1.8e-35, 29 orders of magnitude under what float32 can add to a row's total;
# the keys a causal mask hides are exact zeros.
UNDERFLOW = -80.0


def chunk_rows(n: int, blocks: int) -> int:
    """The most query rows a chunk of an `n`-token layer pooled into `blocks` blocks a
    side spans: whole blocks until TILE_ROWS are reached (memory.py counts it)."""
    return min(n, TILE_ROWS + -(-n // max(1, blocks)))


@dataclass(frozen=True)
class Plan:
    """What to keep of one item's layer: the overview's ``[start, end)`` blocks of query
    rows and of keys, and the query positions whose rows are kept exactly."""

    query_blocks: tuple[tuple[int, int], ...]
    key_blocks: tuple[tuple[int, int], ...]
    positions: tuple[int, ...]

    @cached_property
    def query_sizes(self) -> NDArray[np.float64]:
        """Each query block's rows: the pooled sums over these are the overview's means."""
        return np.array([hi - lo for lo, hi in self.query_blocks], dtype=np.float64)


@dataclass(frozen=True)
class Reduced:
    """One item's layer, reduced (numpy): `pooled` ``[heads, query blocks, key blocks]``
    holds each block's summed rows (divide by the block's rows for the overview); `first`
    and `entropy` ``[heads]`` the rows' sums of the weight on position 0 and of their
    entropy (nats); `rows` ``[positions, heads, keys]`` the exact rows; `norm_pooled` as
    `pooled` for the norm measure's rows, where its key norms were given."""

    pooled: NDArray[np.float64]
    first: NDArray[np.float64]
    entropy: NDArray[np.float64]
    rows: NDArray[np.float32]
    norm_pooled: NDArray[np.float64] | None = None


def _groups(blocks: tuple[tuple[int, int], ...], least: int) -> list[tuple[int, int]]:
    """Consecutive blocks grouped into runs of at least `least` positions: ``[first
    block, end block)`` index pairs."""
    out: list[tuple[int, int]] = []
    start = 0
    for i, (_, hi) in enumerate(blocks):
        if hi - blocks[start][0] >= least or i == len(blocks) - 1:
            out.append((start, i + 1))
            start = i + 1
    return out


@lru_cache(maxsize=1024)
def _block_ids(blocks: tuple[tuple[int, int], ...], first: int, end: int, device: str) -> Any:
    """Each position of blocks ``first..end`` numbered by its block, from 0: made once per
    run of blocks (every layer of an input has the same plan)."""
    import torch

    sizes = torch.tensor([hi - lo for lo, hi in blocks[first:end]], device=device)
    return torch.repeat_interleave(torch.arange(end - first, device=device), sizes)


class _Sums:
    """The running sums of one item's layer, on the device (float64)."""

    def __init__(self, plan: Plan, heads: int, n_keys: int, device: Any, norm: bool) -> None:
        import torch

        shape = (heads, len(plan.query_blocks), len(plan.key_blocks))
        self.plan = plan
        self.pooled = torch.zeros(shape, dtype=torch.float64, device=device)
        self.norm_pooled = torch.zeros(shape, dtype=torch.float64, device=device) if norm else None
        self.first = torch.zeros(heads, dtype=torch.float64, device=device)
        self.entropy = torch.zeros(heads, dtype=torch.float64, device=device)
        self.rows = torch.zeros((len(plan.positions), heads, n_keys), device=device)

    def ids(self, query: bool, first: int, end: int) -> Any:
        blocks = self.plan.query_blocks if query else self.plan.key_blocks
        return _block_ids(blocks, first, end, str(self.pooled.device))

    def add(
        self,
        w: Any,
        log_w: Any,
        rows: tuple[int, int],
        keys: tuple[int, int],
        blocks: tuple[tuple[int, int], tuple[int, int]],
        norms: Any,
    ) -> Any:
        """Add one tile: `w` ``[heads, rows, keys]`` and its log (None: take it from w)
        for query rows `rows` (whole query blocks `blocks[0]`) and keys `keys` (whole key
        blocks `blocks[1]`); with key `norms`, return the tile's norm products
        ``[heads, rows, key blocks]`` pooled over its key blocks (normalised later, per
        row, once every key has been seen)."""
        import torch

        (r0, r1), (k0, k1) = rows, keys
        (qa, qz), (ka, kz) = blocks
        device = w.device
        row_ids = self.ids(True, qa, qz)
        key_ids = self.ids(False, ka, kz)
        heads = w.shape[0]
        # Rows into their query blocks, then keys into their key blocks: [heads, qb, kb].
        by_rows = torch.zeros((heads, qz - qa, k1 - k0), dtype=w.dtype, device=device)
        by_rows.index_add_(1, row_ids, w)
        pooled = torch.zeros((heads, qz - qa, kz - ka), dtype=w.dtype, device=device)
        pooled.index_add_(2, key_ids, by_rows)
        self.pooled[:, qa:qz, ka:kz] += pooled
        if k0 == 0:
            self.first += w[:, :, 0].sum(-1, dtype=torch.float64)
        if log_w is None:
            self.entropy -= torch.special.xlogy(w, w).sum(dtype=torch.float64, dim=(-1, -2))
        else:
            self.entropy -= torch.linalg.vecdot(w, log_w, dim=-1).sum(-1, dtype=torch.float64)
        for r, p in enumerate(self.plan.positions):
            if r0 <= p < r1:
                self.rows[r, :, k0:k1] = w[:, p - r0]
        if norms is None:
            return None
        products = w * norms[:, None, k0:k1]
        by_keys = torch.zeros((heads, r1 - r0, kz - ka), dtype=w.dtype, device=device)
        return by_keys.index_add_(2, key_ids, products)

    def add_norm(self, by_keys: Any, blocks: tuple[int, int]) -> None:
        """A chunk of rows' norm products over every key block: each row divided by its
        total (the norm measure's rows sum to 1), then pooled into its query block."""
        import torch

        qa, qz = blocks
        rows = by_keys / by_keys.sum(-1, keepdim=True).clamp_min(1e-30)
        row_ids = self.ids(True, qa, qz)
        shape = (rows.shape[0], qz - qa, rows.shape[-1])
        pooled = torch.zeros(shape, dtype=rows.dtype, device=rows.device)
        assert self.norm_pooled is not None
        self.norm_pooled[:, qa:qz] += pooled.index_add_(1, row_ids, rows)

    def result(self) -> Reduced:
        return Reduced(
            pooled=self.pooled.cpu().numpy(),
            first=self.first.cpu().numpy(),
            entropy=self.entropy.cpu().numpy(),
            rows=self.rows.cpu().numpy(),
            norm_pooled=None if self.norm_pooled is None else self.norm_pooled.cpu().numpy(),
        )


def _tiles(plan: Plan, causal: bool) -> Iterator[tuple[tuple[int, int], list[tuple[int, int]]]]:
    """Row chunks (query block runs) and, for each, its key tiles (key block runs) as
    ``(first, end)`` block index pairs. A causal layer's keys (its blocks are the query
    blocks: one sequence) stop at the chunk's last row's block: the rest are hidden."""
    key_runs = _groups(plan.key_blocks, TILE_KEYS)
    for qa, qz in _groups(plan.query_blocks, TILE_ROWS):
        runs = key_runs
        if causal:
            runs = [(ka, min(kz, qz)) for ka, kz in key_runs if ka < qz]
        yield (qa, qz), runs


def reduce_site(site: Any, plan: Plan, *, lse: Any = None, norms: Any = None) -> Reduced:
    """One item's layer from its attention call (`site`: ``capture.Site`` of one item, batch
    1, cropped to its tokens): from each row's log-sum-exp `lse` ``[heads, q]`` where the
    capture has it, else rebuilt a chunk of rows at a time. `norms` ``[heads, k]``: the
    keys' value norms, for the norm measure's overview (mixing.value_norms)."""
    import torch

    from reportgen import capture

    heads, nq = int(site.query.shape[1]), int(site.query.shape[2])
    nk = int(site.key.shape[2])
    causal = capture.is_causal_call(site) and nq == nk
    sums = _Sums(plan, heads, nk, site.query.device, norms is not None)
    qb, kb = plan.query_blocks, plan.key_blocks
    if lse is None:
        for (qa, qz), _ in _tiles(plan, False):
            r0, r1 = qb[qa][0], qb[qz - 1][1]
            w = site.weights(r0, r1, crop=True)[0]  # [heads, rows, keys up to r1 if causal]
            k1 = int(w.shape[-1])
            kz = next(i for i, (_, hi) in enumerate(kb) if hi >= k1) + 1
            if k1 < kb[kz - 1][1]:  # cropped mid-block: the rest of the block is zero
                w = torch.nn.functional.pad(w, (0, kb[kz - 1][1] - k1))
            part = sums.add(w, None, (r0, r1), (0, kb[kz - 1][1]), ((qa, qz), (0, kz)), norms)
            if part is not None:
                full = torch.zeros((heads, r1 - r0, len(kb)), dtype=part.dtype, device=part.device)
                full[..., :kz] = part
                sums.add_norm(full, (qa, qz))
        return sums.result()
    query = site.query[0].float()
    groups = heads // int(site.key.shape[1])
    key_t = site.key[0].float().repeat_interleave(groups, dim=0).transpose(-1, -2)
    chunks = list(_tiles(plan, causal))
    # One scratch for every tile's log-weights and weights: the tiles reuse warm memory.
    widest = max((kb[kz - 1][1] - kb[ka][0] for _, runs in chunks for ka, kz in runs), default=0)
    tallest = max((qb[qz - 1][1] - qb[qa][0] for (qa, qz), _ in chunks), default=0)
    scratch = torch.empty((2, heads * tallest * widest), device=query.device)
    for (qa, qz), runs in chunks:
        r0, r1 = qb[qa][0], qb[qz - 1][1]
        minus = lse[:, r0:r1, None].neg().float()
        q = query[:, r0:r1]
        by_keys = None
        if norms is not None:
            by_keys = torch.zeros((heads, r1 - r0, len(kb)), device=q.device)
        for ka, kz in runs:
            k0, k1 = kb[ka][0], kb[kz - 1][1]
            shape = (heads, r1 - r0, k1 - k0)
            log_w, w = (plane[: shape[0] * shape[1] * shape[2]].view(shape) for plane in scratch)
            # log w = q k^T * scaling - lse, in one pass; the diagonal's tile is masked.
            torch.baddbmm(minus, q, key_t[:, :, k0:k1], alpha=site.scaling, out=log_w)
            torch.exp(log_w.clamp_(min=UNDERFLOW), out=w)
            if causal and k1 > r0 + 1:  # a tile on the diagonal (keys end at r1)
                c = max(k0, r0)  # keys from c on may come after a row
                hidden = torch.ones(r1 - r0, k1 - c, dtype=torch.bool, device=q.device)
                hidden = hidden.triu(r0 - c + 1)
                w[..., c - k0 :].masked_fill_(hidden, 0.0)
                log_w[..., c - k0 :].masked_fill_(hidden, 0.0)
            part = sums.add(w, log_w, (r0, r1), (k0, k1), ((qa, qz), (ka, kz)), norms)
            if by_keys is not None:
                by_keys[..., ka:kz] = part
        if by_keys is not None:
            sums.add_norm(by_keys, (qa, qz))
    return sums.result()


def reduce_weights(weights: Any, plan: Plan, norms: Any = None) -> Reduced:
    """One item's layer that arrived whole (eager attention): ``[heads, q, k]`` weights,
    reduced as the tiles are (one chunk of rows over every key at a time)."""
    import torch

    heads, nq, nk = (int(x) for x in weights.shape)
    w_all = torch.as_tensor(weights)
    sums = _Sums(plan, heads, nk, w_all.device, norms is not None)
    qb, kb = plan.query_blocks, plan.key_blocks
    for (qa, qz), _ in _tiles(plan, False):
        r0, r1 = qb[qa][0], qb[qz - 1][1]
        w = w_all[:, r0:r1].float()
        part = sums.add(w, None, (r0, r1), (0, nk), ((qa, qz), (0, len(kb))), norms)
        if part is not None:
            sums.add_norm(part, (qa, qz))
    return sums.result()


__all__ = [
    "TILE_KEYS",
    "TILE_ROWS",
    "Plan",
    "chunk_rows",
    "Reduced",
    "reduce_site",
    "reduce_weights",
]
