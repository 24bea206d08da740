"""extract: model loading and attention tensors, checked against direct model calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from reportgen.config import ReportConfig
from reportgen.errors import InputError, ModelError
from reportgen.extract import _check_layer, _row_tolerance, _top_tokens, extract
from reportgen.inputs import collect_inputs
from reportgen.models import embedded_model_path, load_model
from reportgen.tokens import readable

from .conftest import WINOGRAD


def _direct(folder: Path | str, text: str) -> tuple[list[str], np.ndarray]:
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder, attn_implementation="eager").eval()
    enc = tok(text, return_tensors="pt")
    with torch.inference_mode():
        out = model(**enc, output_attentions=True)
    att = torch.stack(out.attentions, dim=1)[0].numpy()
    return tok.convert_ids_to_tokens(enc["input_ids"][0]), att


def test_tiny_bert_batched_equals_single_forward(tiny_bert: Path) -> None:
    texts = ["A short one.", "A noticeably longer sentence than the first one, padded less."]
    ex = extract(collect_inputs(texts), ReportConfig(model=str(tiny_bert), batch_size=2))
    assert ex.model.layers == 2 and ex.model.heads == 4 and ex.model.kind == "encoder"
    for text, result in zip(texts, ex.results, strict=True):
        tokens, direct = _direct(tiny_bert, text)
        amap = result.maps[0]
        assert list(amap.query.tokens) == tokens  # padding stripped
        assert amap.attention.shape == direct.shape
        np.testing.assert_allclose(amap.attention, direct, atol=1e-6)
        np.testing.assert_allclose(amap.attention.sum(-1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_embedded_model_matches_direct_call() -> None:
    ex = extract(collect_inputs(list(WINOGRAD)), ReportConfig())
    assert (ex.model.layers, ex.model.heads, ex.model.architecture) == (6, 12, "BertModel")
    tokens, direct = _direct(embedded_model_path(), WINOGRAD[0])
    got = ex.results[0].maps[0].attention
    assert list(ex.results[0].maps[0].query.tokens) == tokens
    # The engine's model runs sdpa (capture.py): its hidden states round differently from
    # an eager run's by ~1e-7 a layer, which moves six layers' weights by up to ~2e-6.
    np.testing.assert_allclose(got, direct, atol=5e-6)
    assert ex.results[0].maps[0].query.display[1] == "The"  # original text, not "the"
    # Given the same layer inputs, the weights are eager's: softmax(q k^T / sqrt(d)),
    # recomputed in float64 from the model's own hidden states and projections.
    tok = AutoTokenizer.from_pretrained(embedded_model_path())
    model = AutoModel.from_pretrained(embedded_model_path(), attn_implementation="sdpa").eval()
    with torch.inference_mode():
        states = model(**tok(WINOGRAD[0], return_tensors="pt"), output_hidden_states=True)
    for layer, block in enumerate(model.encoder.layer):
        attn = block.attention.self
        h = states.hidden_states[layer][0].double()
        heads, size = got.shape[1], attn.attention_head_size

        def project(linear: Any, h: Any = h, heads: int = heads, size: int = size) -> Any:
            out = h @ linear.weight.detach().double().T + linear.bias.detach().double()
            return out.view(-1, heads, size).transpose(0, 1)

        scores = project(attn.query) @ project(attn.key).transpose(-1, -2) / size**0.5
        want = torch.softmax(scores, dim=-1).numpy()
        np.testing.assert_allclose(got[layer], want, atol=1e-6, err_msg=f"layer {layer + 1}")


def test_word_ids_and_specials(tiny_bert: Path) -> None:
    ex = extract(collect_inputs(["The councilmen refused."]), ReportConfig(model=str(tiny_bert)))
    seq = ex.results[0].maps[0].query
    assert seq.special[0] and seq.special[-1]
    assert seq.word_ids[0] is None and seq.word_ids[-1] is None
    pieces = [t for t, w in zip(seq.tokens, seq.word_ids, strict=True) if w == 1]
    assert len(pieces) > 1 and "".join(readable(p) for p in pieces) == "councilmen"


def test_sentence_pair_boundary(tiny_bert: Path) -> None:
    batch = collect_inputs(["A man plays."], None, text_pair="Music is made.")
    amap = extract(batch, ReportConfig(model=str(tiny_bert))).results[0].maps[0]
    b = amap.sentence_b_start
    assert b is not None and amap.query.tokens[b - 1] == "[SEP]"
    assert amap.query.tokens[b] == "music"


def test_truncation_warns_and_no_truncate_refuses(tiny_bert: Path) -> None:
    long = " ".join(["word"] * 300)
    ex = extract(collect_inputs([long]), ReportConfig(model=str(tiny_bert)))
    assert ex.results[0].truncated and ex.results[0].maps[0].attention.shape[-1] == 128
    assert "truncated from 302 to 128" in ex.warnings[0]
    with pytest.raises(InputError, match="at most 128"):
        extract(collect_inputs([long]), ReportConfig(model=str(tiny_bert), truncate=False))


def test_uncached_hub_id_is_a_clear_error() -> None:
    with pytest.raises(ModelError, match="not in the Hugging Face cache"):
        load_model(ReportConfig(model="no-such-org/no-such-model"))


def test_folder_without_tokenizer(tiny_bert: Path, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text((tiny_bert / "config.json").read_text())
    with pytest.raises(ModelError, match="tokenizer"):
        load_model(ReportConfig(model=str(tmp_path)))


def test_model_without_attention(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "resnet"}')
    with pytest.raises(ModelError, match="no attention"):
        load_model(ReportConfig(model=str(tmp_path)))


@pytest.mark.parametrize(
    ("token", "shown"), [("Ġthe", "the"), ("▁the", "the"), ("##men", "men"), ("[CLS]", "[CLS]")]
)
def test_readable(token: str, shown: str) -> None:
    assert readable(token) == shown


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_rows_pass_the_dtypes_own_tolerance(tiny_bert: Path, dtype: str) -> None:
    """bfloat16 rounds each weight to 8 bits: its rows miss 1 by more than float32's 1e-3."""
    from reportgen.pipeline import build_report

    report = build_report(["Hi.", WINOGRAD[0]], str(tiny_bert), dtype=dtype, device="cpu")
    att = report.extraction.results[1].maps[0].attention
    assert np.abs(att.sum(-1) - 1).max() <= _row_tolerance(getattr(torch, dtype))


def test_row_tolerance_follows_the_dtype_and_the_message_does_not_blame_the_model() -> None:
    assert _row_tolerance(torch.float32) == pytest.approx(1e-3)
    assert _row_tolerance(torch.float16) > 1e-3
    assert _row_tolerance(torch.bfloat16) > _row_tolerance(torch.float16)
    bad = torch.full((1, 2, 2), 0.6)
    with pytest.raises(ModelError) as info:
        _check_layer("m (argument 1)", bad, 1, _row_tolerance(torch.bfloat16))
    assert "off by up to 0.2" in str(info.value) and "this model" not in str(info.value)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_non_finite_weight_is_caught_by_its_rows_sum(bad: float) -> None:
    weights = torch.full((2, 3, 3), 1 / 3)
    _check_layer("m", weights, 2)  # rows summing to 1 pass
    weights[1, 2, 0] = bad
    with pytest.raises(ModelError, match="non-finite attention weights"):
        _check_layer("m", weights, 2)


def test_tied_next_tokens_keep_the_lower_id_first() -> None:
    """Equal probabilities read the same on every run: topk's order among ties is not."""

    class Ids:
        def decode(self, ids: list[int]) -> str:
            return str(ids[0])

    logits = torch.zeros(50)
    logits[[7, 3, 41, 12, 30, 5]] = torch.tensor([2.0, 2.0, 2.0, 1.0, 1.0, 1.0])
    tokens = _top_tokens(Ids(), logits)
    assert [t.token for t in tokens] == ["3", "7", "41", "5", "12"]


def test_a_local_model_is_named_by_its_folder_where_it_is_opened(
    tiny_bert: Path, tmp_path: Path
) -> None:
    """Privacy where the name enters: the opened model and the warnings name no folders."""
    from reportgen.models import open_model

    assert open_model(ReportConfig(model=str(tiny_bert))).info.name == tiny_bert.name
    source = tmp_path / "deep" / "inputs.txt"
    source.parent.mkdir()
    source.write_text("word " * 40 + "\n", encoding="utf-8")
    ex = extract(collect_inputs((), str(source)), ReportConfig(model=str(tiny_bert), max_tokens=8))
    assert ex.model.name == tiny_bert.name
    assert ex.warnings and ex.warnings[0].startswith("inputs.txt:1: truncated from")
    assert not [w for w in ex.warnings if str(tmp_path) in w]
