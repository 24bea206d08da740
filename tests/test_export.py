"""export: the `--export-json` document, read back with json.load and compared bit for bit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from reportgen import analysis
from reportgen.config import (
    AttentionMap,
    AttentionResult,
    Extraction,
    ModelInfo,
    NextToken,
    ReportConfig,
    SentenceInput,
    TokenSeq,
)
from reportgen.errors import InputError
from reportgen.export import export_data, head_json, write_export
from reportgen.report.document import build_document

from .conftest import random_attention


def _seq(tokens: list[str], text: str) -> TokenSeq:
    n = len(tokens)
    return TokenSeq(
        tokens=tuple(tokens),
        display=tuple(t.removeprefix("##") for t in tokens),
        word_ids=tuple(None if t.startswith("[") else i for i, t in enumerate(tokens)),
        offsets=tuple((0, 0) for _ in range(n)),
        special=tuple(t.startswith("[") for t in tokens),
        text=text,
    )


def _encoder_result(
    rng: np.random.Generator, text: str, tokens: list[str], layers: int = 2, heads: int = 3
) -> AttentionResult:
    seq = _seq(tokens, text)
    att = random_attention(rng, (layers, heads, len(tokens), len(tokens)))
    return AttentionResult(
        item=SentenceInput(text=text, source="test"),
        maps=(AttentionMap("Self-attention", seq, seq, att, id="self"),),
    )


def _encoder_extraction(rng: np.random.Generator) -> Extraction:
    info = ModelInfo("tiny/bert", "BertModel", "encoder", 2, 3, max_length=128)
    results = (
        _encoder_result(rng, "The cat sat.", ["[CLS]", "the", "cat", "sat", ".", "[SEP]"]),
        _encoder_result(rng, "Café ☕ <b>", ["[CLS]", "cafe", "##é", "<", "b", ">", "[SEP]"]),
    )
    return Extraction(model=info, results=results)


def _write_and_load(tmp_path: Path, data: dict[str, Any]) -> dict[str, Any]:
    path = tmp_path / "export.json"
    size = write_export(path, data)
    assert size == path.stat().st_size
    with path.open(encoding="utf-8") as fh:
        loaded: dict[str, Any] = json.load(fh)
    return loaded


def _assert_bits_equal(values: Any, original: np.ndarray) -> None:
    back = np.array(values, dtype=np.float64)
    assert back.shape == original.shape
    # Every JSON number is exactly a float32: narrowing loses nothing, bit for bit.
    np.testing.assert_array_equal(back.astype(np.float32).astype(np.float64), back)
    np.testing.assert_array_equal(back.astype(np.float32).view(np.uint32), original.view(np.uint32))


def test_structure_and_model_facts(rng: np.random.Generator, tmp_path: Path) -> None:
    extraction = _encoder_extraction(rng)
    doc = _write_and_load(tmp_path, export_data(extraction))
    assert set(doc) == {"model", "items", "pairs"}
    assert doc["model"] == {
        "name": "tiny/bert",
        "architecture": "BertModel",
        "kind": "encoder",
        "layers": 2,
        "heads": 3,
    }
    assert doc["pairs"] == []
    assert [item["text"] for item in doc["items"]] == ["The cat sat.", "Café ☕ <b>"]
    for item, result in zip(doc["items"], extraction.results, strict=True):
        assert set(item) == {"text", "tokens", "attention_map", "attention"}
        assert item["attention_map"] == "self"
        assert item["tokens"] == list(result.maps[0].query.tokens)  # raw, "##é" kept


def test_attention_round_trips_exactly(rng: np.random.Generator, tmp_path: Path) -> None:
    extraction = _encoder_extraction(rng)
    att = extraction.results[0].maps[0].attention
    # Values whose shortest decimal form is long, tiny or subnormal must survive too.
    att[0, 0, 0, :4] = np.array(
        [1 / 3, np.finfo(np.float32).tiny, np.float32(1e-45), np.nextafter(1, 0)], np.float32
    )
    doc = _write_and_load(tmp_path, export_data(extraction))
    for item, result in zip(doc["items"], extraction.results, strict=True):
        _assert_bits_equal(item["attention"], result.maps[0].attention)
        for v in np.ravel(np.array(item["attention"], dtype=object)):
            assert isinstance(v, float)
    assert np.float32(doc["items"][0]["attention"][0][0][0][2]) == np.float32(1e-45)


def test_the_file_is_utf8_json_with_text_kept_literal(
    rng: np.random.Generator, tmp_path: Path
) -> None:
    path = tmp_path / "export.json"
    write_export(path, export_data(_encoder_extraction(rng)))
    raw = path.read_bytes().decode("utf-8")
    assert "Café ☕ <b>" in raw  # ensure_ascii=False: readable, and NaN would be refused
    assert "NaN" not in raw and "Infinity" not in raw


def _encoder_decoder_extraction(rng: np.random.Generator) -> Extraction:
    enc = _seq(["▁Hello", "▁world", "</s>"], "Hello world")
    dec = _seq(["<pad>", "▁Hallo", "▁Welt"], "Hallo Welt")
    item = SentenceInput(text="Hello world", target="Hallo Welt", source="test")
    result = AttentionResult(
        item=item,
        maps=(
            AttentionMap(
                "Encoder self-attention",
                enc,
                enc,
                random_attention(rng, (2, 2, 3, 3)),
                id="encoder_self",
            ),
            AttentionMap(
                "Decoder self-attention",
                dec,
                dec,
                np.tril(random_attention(rng, (2, 2, 3, 3))),
                causal=True,
                id="decoder_self",
            ),
            AttentionMap(
                "Cross-attention", dec, enc, random_attention(rng, (2, 2, 3, 3)), id="cross"
            ),
        ),
    )
    info = ModelInfo("tiny/t5", "T5Model", "encoder-decoder", 2, 2)
    return Extraction(model=info, results=(result,))


def test_encoder_decoder_maps_have_their_own_keys(rng: np.random.Generator, tmp_path: Path) -> None:
    extraction = _encoder_decoder_extraction(rng)
    doc = _write_and_load(tmp_path, export_data(extraction))
    assert doc["model"]["kind"] == "encoder-decoder"
    (item,) = doc["items"]
    assert set(item) == {
        "text",
        "tokens",
        "attention_map",
        "attention",
        "decoder_attention",
        "cross_attention",
    }
    # Named by the maps' stable identifiers, not by their on-screen labels.
    assert item["attention_map"] == "encoder_self"
    assert item["decoder_attention"]["map"] == "decoder_self"
    assert item["cross_attention"]["map"] == "cross"
    enc_map, dec_map, cross_map = extraction.results[0].maps
    assert item["tokens"] == ["▁Hello", "▁world", "</s>"]
    _assert_bits_equal(item["attention"], enc_map.attention)
    assert item["decoder_attention"]["query_tokens"] == ["<pad>", "▁Hallo", "▁Welt"]
    assert item["decoder_attention"]["key_tokens"] == ["<pad>", "▁Hallo", "▁Welt"]
    _assert_bits_equal(item["decoder_attention"]["attention"], dec_map.attention)
    # Cross-attention: decoder tokens ask, encoder tokens answer.
    assert item["cross_attention"]["query_tokens"] == ["<pad>", "▁Hallo", "▁Welt"]
    assert item["cross_attention"]["key_tokens"] == ["▁Hello", "▁world", "</s>"]
    _assert_bits_equal(item["cross_attention"]["attention"], cross_map.attention)


def test_next_tokens_only_where_the_result_has_them(
    rng: np.random.Generator, tmp_path: Path
) -> None:
    seq = _seq(["The", "Ġcat"], "The cat")
    att = np.tril(random_attention(rng, (1, 2, 2, 2)))
    predicted = (NextToken(" sat", 0.5), NextToken(" <eos>", 0.125))
    results = (
        AttentionResult(
            SentenceInput("The cat"),
            (AttentionMap("Self-attention", seq, seq, att, causal=True, id="self"),),
            next_tokens=predicted,
        ),
        AttentionResult(
            SentenceInput("The cat"),
            (AttentionMap("Self-attention", seq, seq, att, causal=True, id="self"),),
        ),
    )
    extraction = Extraction(ModelInfo("gpt", "GPT2LMHeadModel", "causal", 1, 2), results)
    doc = _write_and_load(tmp_path, export_data(extraction))
    first, second = doc["items"]
    assert first["next_tokens"] == [
        {"token": " sat", "probability": 0.5},
        {"token": " <eos>", "probability": 0.125},
    ]
    assert "next_tokens" not in second


def test_text_pair_is_exported(rng: np.random.Generator) -> None:
    result = _encoder_result(rng, "A.", ["[CLS]", "a", ".", "[SEP]", "b", "[SEP]"])
    result = AttentionResult(item=SentenceInput("A.", text_pair="B.", source="t"), maps=result.maps)
    extraction = Extraction(ModelInfo("m", "BertModel", "encoder", 2, 3), (result,))
    assert export_data(extraction)["items"][0]["text_pair"] == "B."


def test_analysis_comes_only_with_the_document(rng: np.random.Generator, tmp_path: Path) -> None:
    extraction = _encoder_extraction(rng)
    bare = export_data(extraction)
    assert not {"entropy", "rollout", "focus"} & set(bare["items"][0])
    document = build_document(extraction, ReportConfig(), "test", ((0, 1),))
    doc = _write_and_load(tmp_path, export_data(extraction, document))
    for item, sdoc, result in zip(
        doc["items"], document.sentences, extraction.results, strict=True
    ):
        np.testing.assert_array_equal(item["entropy"]["nats"], sdoc.stats.entropy)
        assert item["entropy"]["layer_verdicts"] == list(sdoc.stats.verdicts)
        np.testing.assert_allclose(item["rollout"], analysis.rollout(result.maps[0].attention))
    (pair,) = doc["pairs"]
    assert (pair["a_index"], pair["b_index"]) == (0, 1)
    assert pair["best_head"] is None and pair["headline"] is None  # no focus word given


def test_best_head_names_its_indices() -> None:
    assert head_json(4, 3) == {"layer_index": 4, "head_index": 3, "label": "Layer 5, Head 4"}


def test_write_replaces_an_existing_file_whole(rng: np.random.Generator, tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_text("x" * 1_000_000, encoding="utf-8")  # longer than the export
    data = export_data(_encoder_extraction(rng))
    size = write_export(path, data)
    text = path.read_text(encoding="utf-8")
    assert len(text.encode("utf-8")) == size < 1_000_000
    assert json.loads(text) == json.loads(json.dumps(data))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.json"]  # no temp file left


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(
    rng: np.random.Generator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "export.json"
    path.write_text('{"old": true}', encoding="utf-8")

    def half_write(self: Path, data: bytes, *args: Any, **kwargs: Any) -> int:
        with open(self, "wb") as fh:
            fh.write(data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", half_write)
    with pytest.raises(InputError, match="No space left on device"):
        write_export(path, export_data(_encoder_extraction(rng)))
    monkeypatch.undo()
    assert path.read_text(encoding="utf-8") == '{"old": true}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.json"]


def test_write_into_a_missing_folder_is_an_input_error(
    rng: np.random.Generator, tmp_path: Path
) -> None:
    with pytest.raises(InputError, match="does not exist"):
        write_export(tmp_path / "missing" / "e.json", export_data(_encoder_extraction(rng)))
