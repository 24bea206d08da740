"""The atlas's consumer of the one engine: tokenize, batch by length, one forward pass
per batch through :func:`reportgen.extract.forward_batch` (the report's padding, hooks
and row-sum check; self-attention only, so an encoder-decoder runs its encoder alone),
and per-batch reductions in torch that leave only running sums (see :mod:`.stats`).

Nothing per sentence outlives its batch except the bounded top-k examples, so memory
is flat however long the corpus. The local engine runs :class:`AtlasExtractor` in this
process; the Ray engine runs the same class inside each worker actor.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

import numpy as np

from reportgen import analysis, capture
from reportgen.atlas.stats import (
    JS_SENTENCES,
    STATS,
    AtlasSums,
    is_punct_token,
    preferred_candidate,
)
from reportgen.config import ReportConfig, SentenceInput
from reportgen.errors import ModelError
from reportgen.extract import SELF, Captured, encode, forward_batch, token_limit
from reportgen.models import LoadedModel
from reportgen.tokens import token_seq

# Sentences longer than this never become examples: their maps would make the page grow.
EXAMPLE_MAX_TOKENS = 48
# Length-sorting window, in batches: a bounded buffer, so padding stays small.
SORT_WINDOW_BATCHES = 64

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Coref:
    """An item's coreference question located in its tokens."""

    focus: tuple[int, ...]
    candidates: tuple[tuple[int, ...], ...]
    answer: int  # index into candidates
    nearest_right: bool  # the nearest candidate before the focus word is the answer
    first_right: bool  # the first candidate is the answer


@dataclass(frozen=True)
class Encoded:
    """One tokenized sentence, in the corpus's order `seq`."""

    seq: int
    source: str
    ids: tuple[int, ...]
    type_ids: tuple[int, ...] | None
    truncated: bool
    coref: Coref | None
    skipped: bool  # had a gold answer, but the focus or a candidate is not in the text
    # The text (and segment B) it came from: examples label their tokens from it as the
    # report does (tokens.token_seq), so one sentence reads the same on both pages.
    texts: tuple[str, str | None] = ("", None)


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive lists of `size` items (the last may be shorter)."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def _coref(item: SentenceInput, offsets: Sequence[tuple[int, int]] | None) -> Coref | None:
    """Locate focus and candidates by the focus grids' rule (first whole-word,
    case-insensitive match); None when any is missing (the item is skipped)."""
    if offsets is None or item.focus is None or item.answer is None:
        return None
    focus, _ = analysis.find_word(item.text, offsets, item.focus)
    cands = [analysis.find_word(item.text, offsets, c)[0] for c in item.candidates]
    if not focus or not all(cands):
        return None
    answer = item.candidates.index(item.answer)
    before = [(min(p), c) for c, p in enumerate(cands) if min(p) < min(focus)]
    nearest = max(before)[1] if before else None
    return Coref(
        focus=tuple(focus),
        candidates=tuple(tuple(p) for p in cands),
        answer=answer,
        nearest_right=nearest == answer,
        first_right=answer == 0,
    )


class AtlasExtractor:
    """Turns batches of sentences into additions to an :class:`AtlasSums`."""

    def __init__(
        self, loaded: LoadedModel, config: ReportConfig | None = None, examples: int = 3
    ) -> None:
        import torch

        self.loaded = loaded
        self.config = config if config is not None else ReportConfig()
        # One cut for every mode: the model's limit or --max-tokens.
        self.limit, _ = token_limit(loaded, self.config)
        self.examples = examples
        tok = loaded.tokenizer
        vocab = max(len(tok), max(tok.all_special_ids, default=0) + 1)
        tokens = tok.convert_ids_to_tokens(list(range(vocab)))
        special = np.zeros(vocab, dtype=bool)
        special[list(tok.all_special_ids)] = True
        punct = np.array([t is not None and is_punct_token(t) for t in tokens]) & ~special
        self._special_np = special
        self._special = torch.from_numpy(special)
        self._punct = torch.from_numpy(punct)
        self._fast = bool(getattr(tok, "is_fast", False))
        self._causal = loaded.info.kind == "causal"
        # Context-mixing measures (reportgen.mixing) from the same pass: coreference is
        # also scored under each (issue 20).
        self.measures = tuple(self.config.measures)
        self._mixed: list[_PaddedSink] = []  # the last batch's sinks, with their measures

    def empty(self) -> AtlasSums:
        info = self.loaded.info
        return AtlasSums.empty(info.layers, info.heads, self.examples)

    # ---------- tokenizing ----------
    def encode(
        self, items: Sequence[SentenceInput], first_seq: int | Sequence[int]
    ) -> list[Encoded]:
        """Tokenize a chunk (one fast batch call for plain sentences); `first_seq` numbers
        the items from there on, or gives each item's number."""
        seqs = range(first_seq, first_seq + len(items)) if isinstance(first_seq, int) else first_seq
        tok = self.loaded.tokenizer
        limit = self.limit
        kwargs: dict[str, Any] = {"return_offsets_mapping": self._fast}
        plain = [i for i, it in enumerate(items) if it.text_pair is None]
        encodings: dict[int, Any] = {}
        if plain:
            batch = tok([items[i].text for i in plain], **kwargs)
            for j, i in enumerate(plain):
                encodings[i] = {k: v[j] for k, v in batch.items()}
        for i, it in enumerate(items):
            if it.text_pair is not None:
                encodings[i] = tok(it.text, it.text_pair, **kwargs)
        out = []
        for i, item in enumerate(items):
            enc = encodings[i]
            truncated = False
            if limit is not None and len(enc["input_ids"]) > limit:
                # The report's rule and message: refuse (--no-truncate) or cut.
                enc, _ = encode(self.loaded, item, self.config)
                truncated = True
            ids = tuple(int(x) for x in enc["input_ids"])
            type_ids = enc.get("token_type_ids")
            offsets = None
            if self._fast and "offset_mapping" in enc:
                # Only segment A's ordinary tokens can match a word of the text.
                offsets = [
                    (0, 0) if self._special_np[t] else (int(a), int(b))
                    for t, (a, b) in zip(ids, enc["offset_mapping"], strict=True)
                ]
                if item.text_pair is not None:
                    seq_ids = enc.sequence_ids() if hasattr(enc, "sequence_ids") else None
                    if seq_ids is not None:
                        offsets = [
                            o if s == 0 else (0, 0) for o, s in zip(offsets, seq_ids, strict=True)
                        ]
            coref = _coref(item, offsets)
            wants = item.focus is not None and item.answer is not None
            out.append(
                Encoded(
                    seq=int(seqs[i]),
                    source=item.source,
                    ids=ids,
                    type_ids=None
                    if type_ids is None or self._causal
                    else tuple(int(x) for x in type_ids),
                    truncated=truncated,
                    coref=coref,
                    skipped=wants and coref is None,
                    texts=(item.text, item.text_pair),
                )
            )
        return out

    def describe(self, enc: Encoded) -> tuple[str, tuple[str, ...]]:
        """Where a sentence came from and its tokens as the page shows them."""
        fast = None
        if enc.texts[0]:  # a hand-built item has no text: it keeps the tokenizer's pieces
            item = SentenceInput(text=enc.texts[0], text_pair=enc.texts[1], source=enc.source)
            again, _ = encode(self.loaded, item, self.config)
            fast = again.encodings[0] if getattr(again, "encodings", None) else None
        seq, _ = token_seq(self.loaded.tokenizer, list(enc.ids), fast, enc.texts, len(enc.ids))
        return enc.source, seq.display

    # ---------- one batch ----------
    def attention(self, batch: Sequence[Encoded]) -> Any:
        """One forward pass through the extraction core (:func:`reportgen.extract.
        forward_batch`: the report's padding, hooks and row-sum check): float32
        ``[layers, batch, heads, n, n]``, zero past each sentence's length."""
        import torch

        info = self.loaded.info
        n = max(len(e.ids) for e in batch)
        out = np.zeros((info.layers, len(batch), info.heads, n, n), dtype=np.float32)
        encodings = [
            {"input_ids": list(e.ids), "attention_mask": [1] * len(e.ids)}
            | ({"token_type_ids": list(e.type_ids)} if e.type_ids is not None else {})
            for e in batch
        ]
        items = [
            SentenceInput(text=e.texts[0], text_pair=e.texts[1], source=e.source) for e in batch
        ]
        # The core makes the sinks in item order: the b-th writes row b.
        self._mixed = [_PaddedSink(out, b, self.measures) for b in range(len(batch))]
        sinks = iter(self._mixed)
        forward_batch(
            self.loaded,
            items,
            encodings,
            lambda *_: next(sinks),
            streams=(SELF,),
            with_next_tokens=False,
        )
        return torch.from_numpy(out)

    def add_batch(self, batch: Sequence[Encoded], acc: AtlasSums) -> None:
        """Run one batch and add its reductions to `acc`."""
        import torch

        with torch.inference_mode():
            att = self.attention(batch)
            self._reduce(att, batch, acc)

    def _reduce(self, att: Any, batch: Sequence[Encoded], acc: AtlasSums) -> None:
        import torch

        L, B, H, n, _ = att.shape
        device = att.device
        lengths = torch.tensor([len(e.ids) for e in batch], device=device)
        ids = torch.zeros((B, n), dtype=torch.long)
        for b, e in enumerate(batch):
            ids[b, : len(e.ids)] = torch.tensor(e.ids)
        pos = torch.arange(n, device=device)
        valid = pos[None, :] < lengths[:, None]  # [B, n]: real tokens, not padding
        special = self._special[ids].to(device) & valid
        special[:, 0] = False
        punct = self._punct[ids].to(device) & valid
        keys = torch.stack([special, punct], dim=-1).to(att.dtype)  # [B, n(key), 2]
        has_next = pos[None, :] + 1 < lengths[:, None]
        masks = torch.stack(
            [valid, valid, valid, valid, valid & (pos >= 1)[None, :], has_next, valid]
        ).to(att.dtype)  # [stat, B, n]
        per_sentence = _row_sums(att, keys, masks)
        # The same statistics under norm (issue 20: does the [CLS] sink survive when the
        # values are counted?), over the same rows.
        norm = self._norm_maps(batch)
        if norm is not None:
            under = _row_sums(torch.from_numpy(norm), keys, masks).sum(2).cpu().numpy()
            kept = acc.measure_sums.get("norm")
            acc.measure_sums["norm"] = under if kept is None else kept + under
        if not torch.isfinite(per_sentence).all():
            raise ModelError(f"{batch[0].source}: the model returned non-finite attention")
        counts = masks.sum(-1, dtype=torch.float64)  # [stat, B]
        acc.sums += per_sentence.sum(2).cpu().numpy()
        acc.rows += counts.sum(1).cpu().numpy()
        lens = [len(e.ids) for e in batch]
        if self._causal:  # row i may see i + 1 keys
            acc.log_keys += sum(math.lgamma(k + 1) for k in lens)
        else:
            acc.log_keys += sum(k * math.log(k) for k in lens)
        acc.sentences += B
        acc.tokens += sum(lens)
        acc.truncated += sum(e.truncated for e in batch)
        acc.coref_skipped += sum(e.skipped for e in batch)
        early = [b for b, e in enumerate(batch) if e.seq < JS_SENTENCES]
        if early:
            self._js(att, valid, early, acc)
        att_np = att.cpu().numpy()
        for b, e in enumerate(batch):
            if e.coref is None:
                continue
            c = e.coref
            k = len(e.ids)
            scores = analysis.focus_scores(att_np[:, b, :, :k, :k], c.focus, c.candidates)
            # Right when the answer's score beats every other's (a tie is wrong); the
            # preference itself is kept for the permutation test (stats.best_head_chance).
            prefer = preferred_candidate(scores)
            acc.coref_right += prefer == c.answer
            acc.coref.add(e.seq, c.answer, len(c.candidates), prefer)
            for name, mapped in self._measure_maps(b, acc).items():
                right = preferred_candidate(analysis.focus_scores(mapped, c.focus, c.candidates))
                counted = acc.measure_right.get(name)
                hit = (right == c.answer).astype(np.int64)
                acc.measure_right[name] = hit if counted is None else counted + hit
            acc.coref_items += 1
            acc.nearest_right += c.nearest_right
            acc.first_right += c.first_right
        if acc.examples is not None and acc.examples.k:
            with np.errstate(divide="ignore", invalid="ignore"):
                means = per_sentence.cpu().numpy() / counts.cpu().numpy()[:, None, :, None]
            means = np.where(np.isfinite(means), means, -np.inf)
            long = np.array([k > EXAMPLE_MAX_TOKENS for k in lens])
            means[:, :, long, :] = -np.inf
            values = np.ascontiguousarray(means.transpose(0, 1, 3, 2))  # [stat, L, H, B]
            by_seq = {e.seq: e for e in batch}
            maps = _LazyMaps(att_np, batch)
            acc.examples.offer(
                values,
                np.array([e.seq for e in batch], dtype=np.int64),
                maps,
                lambda s: self.describe(by_seq[s]),
            )

    def _norm_maps(self, batch: Sequence[Encoded]) -> np.ndarray | None:
        """The batch's norm maps padded as its weights, ``[L, B, H, n, n]``; None unless
        norm was asked for and every sentence has it in every layer."""
        if "norm" not in self.measures:
            return None
        layers = self.loaded.info.layers
        if any(s.withheld is not None or len(s.mixing) != layers for s in self._mixed):
            return None
        n = max(len(e.ids) for e in batch)
        out = np.zeros((layers, len(batch), self.loaded.info.heads, n, n), dtype=np.float32)
        for b, (sink, e) in enumerate(zip(self._mixed, batch, strict=True)):
            k = len(e.ids)
            for layer in range(layers):
                out[layer, b, :, :k, :k] = sink.mixing[layer].norm
        return out

    def _measure_maps(self, b: int, acc: AtlasSums) -> dict[str, np.ndarray]:
        """Sentence `b`'s measures as ``[L, H or 1, n, n]`` maps (ALTI with its rollout);
        none, and the reason kept in `acc`, where the self-check withheld them."""
        if not self.measures:
            return {}
        sink = self._mixed[b]
        if sink.withheld is not None or len(sink.mixing) != self.loaded.info.layers:
            acc.measures_withheld = acc.measures_withheld or sink.withheld or "not captured"
            return {}
        layers = [sink.mixing[layer] for layer in range(self.loaded.info.layers)]
        out: dict[str, np.ndarray] = {}
        for name in self.measures:
            stacked = np.stack([getattr(m, name) for m in layers])
            out[name] = stacked if stacked.ndim == 4 else stacked[:, None]
        if "alti" in out:
            out["alti_rollout"] = analysis.alti_rollout(out["alti"][:, 0])[:, None]
        return out

    def _js(self, att: Any, valid: Any, early: list[int], acc: AtlasSums) -> None:
        """Add the Jensen-Shannon divergence between every two heads' rows (real query
        rows of the sentences in `early`): JS(P, Q) = H((P + Q) / 2) - (H(P) + H(Q)) / 2."""
        import torch

        L, _, H, n, _ = att.shape
        rows = att[:, early].permute(0, 2, 1, 3, 4)  # [L, H, b, n, n]
        rows = rows.reshape(L * H, len(early) * n, n)[:, valid[early].reshape(-1)]
        entropy = -torch.special.xlogy(rows, rows).sum(-1)  # [LH, R]
        for i in range(L * H - 1):
            mix = (rows[i : i + 1] + rows[i + 1 :]) / 2
            js = (
                -torch.special.xlogy(mix, mix).sum(-1) - (entropy[i : i + 1] + entropy[i + 1 :]) / 2
            )
            acc.js_sum[i, i + 1 :] += js.sum(-1, dtype=torch.float64).cpu().numpy()
        acc.js_rows += float(rows.shape[1])


def _row_sums(att: Any, keys: Any, masks: Any) -> Any:
    """Each statistic's row values of ``[L, B, H, n, n]`` maps, summed over each
    sentence's eligible rows in float64 (a corpus has millions of rows): [stat, L, B, H]."""
    import torch
    import torch.nn.functional as F

    to_keys = torch.einsum("lbhqk,bkc->clbhq", att, keys)
    rows = torch.stack(
        [
            att[..., 0],
            to_keys[0],
            to_keys[1],
            att.diagonal(0, -2, -1),
            F.pad(att.diagonal(-1, -2, -1), (1, 0)),  # row i: a[i-1]; row 0 unused
            F.pad(att.diagonal(1, -2, -1), (0, 1)),  # row i: a[i+1]; last row unused
            -torch.special.xlogy(att, att).sum(-1),
        ]
    )  # [stat, L, B, H, n]
    return (rows * masks[:, None, :, None, :]).sum(-1, dtype=torch.float64)


class _PaddedSink:
    """Writes one sentence's self-attention into its row of the batch's padded array, and
    keeps the layers' context-mixing measures where named."""

    def __init__(self, out: np.ndarray, b: int, measures: tuple[str, ...] = ()) -> None:
        self.out, self.b = out, b
        self.names = frozenset({capture.WEIGHTS, *measures})
        self.mixing: dict[int, Any] = {}  # layer -> mixing.LayerMeasures
        self.withheld: str | None = None

    def buffer(self, stream: str, layer: int, shape: tuple[int, int, int]) -> np.ndarray:
        _, nq, nk = shape
        return self.out[layer, self.b, :, :nq, :nk]

    def take(self, stream: str, layer: int, captured: Captured) -> None:
        if captured.withheld is not None:
            self.withheld = self.withheld or captured.withheld
        if captured.mixing is not None:
            self.mixing[layer] = captured.mixing


class _LazyMaps(dict):
    """seq -> that sentence's [L, H, n, n] attention view, made only when read."""

    def __init__(self, att: np.ndarray, batch: Sequence[Encoded]) -> None:
        super().__init__()
        self._att = att
        self._where = {e.seq: (b, len(e.ids)) for b, e in enumerate(batch)}

    def __missing__(self, seq: int) -> np.ndarray:
        b, k = self._where[seq]
        return self._att[:, b, :, :k, :k]


def run_local(
    extractor: AtlasExtractor,
    items: Iterable[SentenceInput],
    batch_size: int,
    progress: Progress | None = None,
) -> AtlasSums:
    """Stream `items` through the model in length-sorted batches; return the totals."""
    acc = extractor.empty()
    seq = 0
    for chunk in batched(items, SORT_WINDOW_BATCHES * batch_size):
        encoded = extractor.encode(chunk, seq)
        seq += len(chunk)
        encoded.sort(key=lambda e: (len(e.ids), e.seq))
        for batch in batched(encoded, batch_size):
            extractor.add_batch(batch, acc)
            if progress is not None:
                progress(acc.sentences)
    return acc


__all__ = ["STATS", "AtlasExtractor", "Encoded", "batched", "run_local"]
