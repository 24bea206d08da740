"""Every model family through the real CLI: causal (GPT-2), encoder-decoder (T5, BART),
byte-level encoders (RoBERTa) and BERT sentence pairs.

Tiny random models are built offline from their configs (tests/models.py); each
report's `--export-json` is checked against the model's own `output_attentions`,
and each report is opened in a headless browser.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

from reportgen.cli import main
from reportgen.config import ReportConfig
from reportgen.errors import ModelError
from reportgen.extract import extract
from reportgen.headview import PAIR_FILTERS
from reportgen.inputs import collect_inputs
from reportgen.models import load_model
from reportgen.nexttoken import next_doc
from reportgen.tokens import readable

from .conftest import WINOGRAD, open_report, outside_requests

ATOL = 1e-6
ENC_DEC_MAPS = ["Encoder self-attention", "Decoder self-attention", "Cross-attention"]


@pytest.fixture(scope="session")
def tiny_gpt2(tiny_model: Callable[..., Path]) -> Path:
    return tiny_model("gpt2")


@pytest.fixture(scope="session")
def tiny_t5(tiny_model: Callable[..., Path]) -> Path:
    return tiny_model("t5")


@pytest.fixture(scope="session")
def tiny_bart(tiny_model: Callable[..., Path]) -> Path:
    return tiny_model("bart")


@pytest.fixture(scope="session")
def tiny_roberta(tiny_model: Callable[..., Path]) -> Path:
    return tiny_model("roberta")


def run_cli(args: list[str], out: Path) -> tuple[Path, dict[str, Any]]:
    """Run the real command with `--export-json`; return the report path and the export."""
    export = out.with_suffix(".json")
    result = CliRunner().invoke(main, [*args, "-q", "-o", str(out), "--export-json", str(export)])
    assert result.exit_code == 0, result.output + str(result.exception)
    return out, json.loads(export.read_text(encoding="utf-8"))


def _jsonl(path: Path, rows: list[dict[str, str]]) -> str:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return str(path)


def _layers(attentions: Any) -> np.ndarray:
    return torch.stack(list(attentions), dim=1)[0].numpy()


# ---------------------------------------------------------------------------------------
# Reports, built once per session through the CLI
# ---------------------------------------------------------------------------------------

GPT2_TEXTS = [WINOGRAD[0], "A short one."]
T5_ROWS = [
    {"text": WINOGRAD[0], "target": "Das Tier war zu müde."},
    {"text": "The keys are on the table.", "target": "Die Schlüssel."},
]
PAIR_ROWS = [
    {"text": "A man is playing music.", "text_pair": "Music is made by a man."},
    {"text": "The keys to the cabinet are on the table."},
]


@pytest.fixture(scope="session")
def gpt2_report(tiny_gpt2: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    out = tmp_path_factory.mktemp("gpt2-report") / "gpt2.html"
    return run_cli([*GPT2_TEXTS, "-m", str(tiny_gpt2)], out)


@pytest.fixture(scope="session")
def gpt2_focus_report(tiny_gpt2: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    out = tmp_path_factory.mktemp("gpt2-focus") / "gpt2-focus.html"
    return run_cli([WINOGRAD[0], "-m", str(tiny_gpt2), "--focus", "it"], out)


@pytest.fixture(scope="session")
def t5_report(tiny_t5: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("t5-report")
    return run_cli(
        ["-i", _jsonl(folder / "in.jsonl", T5_ROWS), "-m", str(tiny_t5)], folder / "t5.html"
    )


@pytest.fixture(scope="session")
def roberta_report(tiny_roberta: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("roberta-report")
    path = _jsonl(folder / "in.jsonl", PAIR_ROWS)
    return run_cli(["-i", path, "-m", str(tiny_roberta)], folder / "roberta.html")


@pytest.fixture(scope="session")
def bert_pair_report(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    out = tmp_path_factory.mktemp("bert-pair") / "bert-pair.html"
    args = ["A man plays music.", "--pair", "Music is made by a man.", "-m", str(tiny_bert)]
    return run_cli(args, out)


# ---------------------------------------------------------------------------------------
# The export matches each model's own attention output
# ---------------------------------------------------------------------------------------


def test_gpt2_export_matches_model(tiny_gpt2: Path, gpt2_report: Any) -> None:
    _, export = gpt2_report
    assert export["model"]["kind"] == "causal"
    assert export["model"]["architecture"] == "GPT2LMHeadModel"
    tok = AutoTokenizer.from_pretrained(tiny_gpt2)
    model = AutoModelForCausalLM.from_pretrained(tiny_gpt2, attn_implementation="eager").eval()
    for text, item in zip(GPT2_TEXTS, export["items"], strict=True):
        enc = tok(text, return_tensors="pt")
        with torch.inference_mode():
            out = model(**enc, output_attentions=True)
        assert item["tokens"] == tok.convert_ids_to_tokens(enc["input_ids"][0])
        np.testing.assert_allclose(np.array(item["attention"]), _layers(out.attentions), atol=ATOL)
        # The model's own top-5 after the last position, with their probabilities.
        probs = torch.softmax(out.logits[0, -1], dim=-1)
        top = torch.topk(probs, 5)
        assert [t["token"] for t in item["next_tokens"]] == [
            tok.decode([int(i)]) for i in top.indices
        ]
        np.testing.assert_allclose(
            [t["probability"] for t in item["next_tokens"]], top.values.numpy(), atol=ATOL
        )
    # Causal: nothing above the diagonal.
    att = np.array(export["items"][0]["attention"])
    assert np.all(np.triu(att, k=1) == 0)
    # The ranked heads of the next-token view: attention from the last position.
    (source,) = export["items"][0]["next_token_heads"]
    last = len(export["items"][0]["tokens"]) - 1
    assert source["positions"] == [last]
    for word in source["words"]:
        weights = att[:, :, last, word["positions"]].sum(-1)
        best = word["heads"][0]
        assert best["value"] == pytest.approx(weights.max())
        assert weights[best["layer_index"], best["head_index"]] == pytest.approx(weights.max())


def _check_enc_dec(folder: Path, export: dict[str, Any], rows: list[dict[str, str]]) -> None:
    assert export["model"]["kind"] == "encoder-decoder"
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder, attn_implementation="eager").eval()
    start = model.config.decoder_start_token_id
    for row, item in zip(rows, export["items"], strict=True):
        enc = tok(row["text"], return_tensors="pt")
        dec_ids = [start, *tok(text_target=row["target"])["input_ids"]]
        with torch.inference_mode():
            out = model(**enc, decoder_input_ids=torch.tensor([dec_ids]), output_attentions=True)
        enc_tokens = tok.convert_ids_to_tokens(enc["input_ids"][0])
        dec_tokens = tok.convert_ids_to_tokens(dec_ids)
        assert item["tokens"] == enc_tokens
        np.testing.assert_allclose(
            np.array(item["attention"]), _layers(out.encoder_attentions), atol=ATOL
        )
        dec, cross = item["decoder_attention"], item["cross_attention"]
        assert dec["query_tokens"] == dec["key_tokens"] == dec_tokens
        assert cross["query_tokens"] == dec_tokens and cross["key_tokens"] == enc_tokens
        np.testing.assert_allclose(
            np.array(dec["attention"]), _layers(out.decoder_attentions), atol=ATOL
        )
        np.testing.assert_allclose(
            np.array(cross["attention"]), _layers(out.cross_attentions), atol=ATOL
        )


def test_t5_export_matches_model(tiny_t5: Path, t5_report: Any) -> None:
    _check_enc_dec(tiny_t5, t5_report[1], T5_ROWS)


def test_bart_export_matches_model(tiny_bart: Path, tmp_path: Path) -> None:
    _, export = run_cli(
        ["-i", _jsonl(tmp_path / "in.jsonl", T5_ROWS), "-m", str(tiny_bart)], tmp_path / "b.html"
    )
    assert export["model"]["architecture"] == "BartModel"
    _check_enc_dec(tiny_bart, export, T5_ROWS)


def test_roberta_pair_export_matches_model(tiny_roberta: Path, roberta_report: Any) -> None:
    _, export = roberta_report
    assert export["model"]["kind"] == "encoder"
    tok = AutoTokenizer.from_pretrained(tiny_roberta)
    model = AutoModel.from_pretrained(tiny_roberta, attn_implementation="eager").eval()
    for row, item in zip(PAIR_ROWS, export["items"], strict=True):
        enc = tok(row["text"], row.get("text_pair"), return_tensors="pt")
        with torch.inference_mode():
            out = model(**enc, output_attentions=True)
        assert item["tokens"] == tok.convert_ids_to_tokens(enc["input_ids"][0])
        np.testing.assert_allclose(np.array(item["attention"]), _layers(out.attentions), atol=ATOL)
    assert export["items"][0]["text_pair"] == PAIR_ROWS[0]["text_pair"]
    assert "</s>" in export["items"][0]["tokens"]  # <s> A </s></s> B </s>


def test_readable_tokens_in_report(gpt2_report: Any, t5_report: Any) -> None:
    """Tick labels, head view and the token list use text without "Ġ" or "▁" markers."""
    for path, marker in ((gpt2_report[0], "Ġ"), (t5_report[0], "▁")):
        html = path.read_text(encoding="utf-8")
        data = html.split('id="rg-data-s1">', 1)[1].split("</script>", 1)[0]
        labels = json.loads(data)["seqs"][0]["tokens"]
        assert not any(marker in t for t in labels), labels
        assert "animal" in "".join(labels)


@pytest.mark.parametrize(
    ("token", "shown"),
    [
        ("Ġanimal", "animal"),
        ("▁street", "street"),
        ("##men", "men"),
        ("street</w>", "street"),
        ("</w>", "</w>"),
        ("▁", "␣"),
        ("Ġ", "␣"),
        ("ĠĠĠ", "␣␣␣"),
        ("Ċ", "↵"),
        ("ĊĊ", "↵↵"),
        ("<|endoftext|>", "<|endoftext|>"),
    ],
)
def test_readable_markers(token: str, shown: str) -> None:
    assert readable(token) == shown


def test_lone_sentencepiece_marker_keeps_its_glyph(t5_report: Any) -> None:
    """T5's "▁" + "D" must not read "D", "D" (the marker's offsets overlap the next token)."""
    _, export = t5_report
    html = t5_report[0].read_text(encoding="utf-8")
    data = json.loads(html.split('id="rg-data-s1">', 1)[1].split("</script>", 1)[0])
    raw = export["items"][0]["decoder_attention"]["query_tokens"]
    shown = data["seqs"][1]["tokens"]
    assert len(raw) == len(shown)
    for r, s in zip(raw, shown, strict=True):
        if r == "▁":
            assert s == "␣"


# ---------------------------------------------------------------------------------------
# Refused before any weights are read
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ({"model_type": "mamba", "num_hidden_layers": 2}, "state-space model"),
        ({"model_type": "rwkv", "num_hidden_layers": 2}, "recurrent model"),
        ({"model_type": "xlstm", "num_heads": 2}, "no attention layers"),
        (
            {"model_type": "jamba", "num_hidden_layers": 8, "num_attention_heads": 2},
            "hybrid model: besides attention it has mamba layers",
        ),
        (
            {"model_type": "jamba", "num_hidden_layers": 4, "num_attention_heads": 2},
            "none of its layers has softmax attention",
        ),
        ({"model_type": "longformer", "num_attention_heads": 2}, "sliding-window"),
    ],
)
def test_models_without_readable_attention_are_refused(
    tmp_path: Path, config: dict[str, Any], reason: str
) -> None:
    # Only config.json: a refusal that needed the tokenizer or weights would say so instead.
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match=reason) as info:
        load_model(ReportConfig(model=str(tmp_path)))
    assert str(tmp_path) in str(info.value) and config["model_type"] in str(info.value)
    out = tmp_path.with_name(tmp_path.name + "-r.html")  # not inside the model folder
    result = CliRunner().invoke(main, ["Hello.", "-m", str(tmp_path), "-o", str(out)])
    assert result.exit_code == 1 and reason in result.output
    assert not out.exists()


def test_model_class_that_cannot_record_attention_is_refused(
    tiny_bert: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import BertModel

    monkeypatch.setattr(BertModel, "_can_record_outputs", {"hidden_states": object})
    with pytest.raises(ModelError, match="BertModel cannot return attention weights"):
        load_model(ReportConfig(model=str(tiny_bert)))


# ---------------------------------------------------------------------------------------
# In the browser
# ---------------------------------------------------------------------------------------


def _z(page: Any, selector: str) -> list[list[float | None]]:
    z: list[list[float | None]] = page.eval_on_selector(selector, "el => el.data[0].z")
    return z


def _options(page: Any, selector: str) -> list[str]:
    return [o.strip() for o in page.locator(f"{selector} option").all_text_contents()]


@pytest.mark.browser
def test_causal_report_in_browser(browser: Any, gpt2_report: Any) -> None:
    path = gpt2_report[0]
    page, log = open_report(browser, path)
    assert log.errors == [] and outside_requests(log, path) == []
    for plot in ("head", "average"):
        z = _z(page, f'#s1 [data-plot="{plot}"]')
        n = len(z)
        assert n == 13 and all(len(row) == n for row in z)
        for i in range(n):
            assert all(z[i][j] is None for j in range(i + 1, n)), f"{plot} row {i} not masked"
            assert all(z[i][j] is not None for j in range(i + 1)), f"{plot} row {i} masked"
    ticks = page.locator('#s1 [data-plot="head"] .xtick text').all_text_contents()
    assert "animal" in ticks and not any("Ġ" in t for t in ticks)
    hv = page.locator("#s1 .rg-bertviz svg text").all_text_contents()
    assert "animal" in hv and not any("Ġ" in t for t in hv)
    # The next-token view: top predictions, the last position's attention per layer, ranked heads.
    view = page.locator('#s1 [data-view="next"]')
    assert view.locator(".rg-next-predictions tbody tr").count() == 5
    z = _z(page, '#s1 [data-plot="next"]')
    assert len(z) == 2 and len(z[0]) == 13  # layers x tokens
    np.testing.assert_allclose([sum(v or 0.0 for v in row) for row in z], 1.0, atol=0.01)
    heads = view.locator(".rg-next-heads tbody tr")
    assert heads.count() == 12  # every word before the last token "."
    assert "Layer " in heads.first.text_content() and "[index (" in heads.first.text_content()
    page.select_option('#s1 [data-view="next"] [data-control="head"]', "1")
    page.wait_for_selector('#s1 [data-plot="next"] .gtitle >> text=/Head 2$/')
    assert log.errors == []


@pytest.mark.browser
def test_causal_focus_word_in_next_token_view(browser: Any, gpt2_focus_report: Any) -> None:
    page, log = open_report(browser, gpt2_focus_report[0])
    assert log.errors == []
    sel = '#s1 [data-view="next"] [data-control="source"]'
    assert _options(page, sel) == ["the last position ('.')", "the focus word 'it'"]
    page.select_option(sel, "1")
    page.wait_for_selector('#s1 [data-plot="next"] .gtitle >> text=/focus word/')
    z = _z(page, '#s1 [data-plot="next"]')
    it = 8  # "The animal didn 't cross the street because it": 'it' is token 8
    assert all(row[j] is None for row in z for j in range(it + 1, len(row)))
    assert all(row[j] is not None for row in z for j in range(it + 1))
    tables = page.locator('#s1 [data-view="next"] .rg-next-heads')
    assert tables.count() == 2 and tables.nth(1).locator("tbody tr").count() == 8
    assert log.errors == []


@pytest.mark.browser
def test_encoder_decoder_report_in_browser(browser: Any, t5_report: Any) -> None:
    path = t5_report[0]
    page, log = open_report(browser, path)
    assert log.errors == [] and outside_requests(log, path) == []
    for view in ("head", "average"):
        assert _options(page, f'#s1 [data-view="{view}"] [data-control="map"]') == ENC_DEC_MAPS
    assert _options(page, "#s1 .rg-bertviz #filter") == ["Encoder", "Decoder", "Cross"]
    export = t5_report[1]["items"][0]
    n_enc, n_dec = len(export["tokens"]), len(export["decoder_attention"]["query_tokens"])
    page.select_option('#s1 [data-view="head"] [data-control="map"]', "2")
    page.wait_for_selector('#s1 [data-plot="head"] .gtitle >> text=/Cross-attention$/')
    z = _z(page, '#s1 [data-plot="head"]')
    assert (len(z), len(z[0])) == (n_dec, n_enc)
    page.select_option('#s1 [data-view="head"] [data-control="map"]', "1")
    page.wait_for_selector('#s1 [data-plot="head"] .gtitle >> text=/Decoder self-attention$/')
    z = _z(page, '#s1 [data-plot="head"]')
    assert len(z) == n_dec and z[0][1] is None and z[1][0] is not None  # causal decoder
    page.select_option('#s1 [data-view="average"] [data-control="map"]', "2")
    page.wait_for_selector('#s1 [data-plot="average"] .gtitle >> text=/Cross-attention$/')
    page.select_option("#s1 .rg-bertviz #filter", "2")  # bertviz's own Cross form
    left = page.locator("#s1 .rg-bertviz svg #left text").all_text_contents()
    right = page.locator("#s1 .rg-bertviz svg #right text").all_text_contents()
    assert (len(left), len(right)) == (n_dec, n_enc)
    assert log.errors == []


def _pair_checks(page: Any, n: int, b_start: int) -> None:
    assert _options(page, "#s1 .rg-bertviz #filter") == [name for name, _ in PAIR_FILTERS]
    shapes = page.eval_on_selector('#s1 [data-plot="head"]', "el => el.layout.shapes || []")
    cuts = sorted((s["x0"], s["x1"], s["y0"], s["y1"]) for s in shapes if s["type"] == "line")
    edge = b_start - 0.5
    assert cuts == sorted([(edge, edge, -0.5, n - 0.5), (-0.5, n - 0.5, edge, edge)])


@pytest.mark.browser
def test_roberta_pair_report_in_browser(browser: Any, roberta_report: Any) -> None:
    path, export = roberta_report
    page, log = open_report(browser, path)
    assert log.errors == [] and outside_requests(log, path) == []
    tokens = export["items"][0]["tokens"]
    b_start = tokens.index("</s>") + 2  # <s> A </s></s> B </s>
    _pair_checks(page, len(tokens), b_start)
    # The second sentence has no segment B: no filter, no boundary.
    assert page.locator("#s2 .rg-bertviz #filter").count() == 0
    assert page.eval_on_selector('#s2 [data-plot="head"]', "el => el.layout.shapes || []") == []


@pytest.mark.browser
def test_bert_pair_head_view_offers_ab_filter(browser: Any, bert_pair_report: Any) -> None:
    path, export = bert_pair_report
    page, log = open_report(browser, path)
    assert log.errors == [] and outside_requests(log, path) == []
    tokens = export["items"][0]["tokens"]
    b_start = tokens.index("[SEP]") + 1
    _pair_checks(page, len(tokens), b_start)
    # Choosing "Sentence A -> Sentence B" draws A's tokens on the left, B's on the right.
    page.select_option("#s1 .rg-bertviz #filter", "3")
    left = page.locator("#s1 .rg-bertviz svg #left text").all_text_contents()
    right = page.locator("#s1 .rg-bertviz svg #right text").all_text_contents()
    assert left[0] == "[CLS]" and right[0] == "Music" and len(left) + len(right) == len(tokens)
    # With special tokens hidden the filter stays, cut at the same word.
    page.check("#rg-hide-special")
    page.wait_for_selector("#s1[data-rg-rendered='1']", state="attached")
    _pair_checks(page, len(tokens) - 3, b_start - 2)
    assert log.errors == []


def test_llama_style_gqa_and_bos(tmp_path: Path, tiny_model: Callable[..., Path]) -> None:
    """Grouped-query attention still gives one map per query head; "<s>" is special."""
    folder = tiny_model("llama")
    text = "Das Tier war zu müde."
    ex = extract(collect_inputs([text, "A man."]), ReportConfig(model=str(folder)))
    assert (ex.model.kind, ex.model.layers, ex.model.heads) == ("causal", 2, 4)
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager").eval()
    enc = tok(text, return_tensors="pt")
    with torch.inference_mode():
        out = model(**enc, output_attentions=True)
    amap = ex.results[0].maps[0]
    np.testing.assert_allclose(amap.attention, _layers(out.attentions), atol=ATOL)
    assert amap.causal and amap.query.tokens[0] == "<s>" and amap.query.special[0]
    assert "".join(amap.query.display[1:]).replace("␣", "") == text.replace(" ", "")
    assert len(ex.results[0].next_tokens) == 5
    doc = next_doc(ex.results[0])
    assert doc is not None and [w.word for w in doc.sources[0].words][0] == "Das"  # no "<s>"


def test_byte_level_display_keeps_whole_characters(tiny_gpt2: Path) -> None:
    ex = extract(collect_inputs(["Das Tier war zu müde."]), ReportConfig(model=str(tiny_gpt2)))
    seq = ex.results[0].maps[0].query
    assert any("Ã" in t for t in seq.tokens) or any("ü" in t for t in seq.display)
    assert not any("Ã" in d or "Ġ" in d for d in seq.display)
    assert "ü" in "".join(seq.display)


@pytest.mark.browser
def test_deeper_decoder_gets_its_own_layer_choices(
    browser: Any, tmp_path_factory: pytest.TempPathFactory, tiny_model: Callable[..., Path]
) -> None:
    """An encoder of 2 layers and a decoder of 3: each map's selects fit that map."""
    folder = tiny_model("t5", decoder_layers=3)
    out = tmp_path_factory.mktemp("t5-deep-report") / "t5.html"
    path, data = run_cli(["The cat sat.", "--target", "Die Katze.", "-m", str(folder)], out)
    assert np.array(data["items"][0]["decoder_attention"]["attention"]).shape[0] == 3
    page, log = open_report(browser, path)
    view = '#s1 [data-view="head"]'
    assert len(_options(page, f'{view} [data-control="layer"]')) == 2
    page.select_option(f'{view} [data-control="map"]', "1")
    page.wait_for_selector(f"{view} .gtitle >> text=/Decoder self-attention$/")
    assert _options(page, f'{view} [data-control="layer"]') == ["1 [0]", "2 [1]", "3 [2]"]
    page.select_option(f'{view} [data-control="layer"]', "2")
    page.wait_for_selector(f"{view} .gtitle >> text=/^Layer 3, Head/")
    z = _z(page, f'{view} [data-plot="head"]')
    assert all(abs(sum(v for v in row if v is not None) - 1) < 0.01 for row in z)
    page.select_option(f'{view} [data-control="map"]', "0")
    page.wait_for_selector(f"{view} .gtitle >> text=/Encoder self-attention$/")
    assert len(_options(page, f'{view} [data-control="layer"]')) == 2
    assert log.errors == []
