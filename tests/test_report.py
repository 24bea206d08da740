"""report: what the report decides to show, checked on seeded arrays and real models."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from reportgen import analysis
from reportgen.cli import main
from reportgen.config import (
    AttentionMap,
    AttentionResult,
    ModelInfo,
    SentenceInput,
    TokenSeq,
)
from reportgen.errors import InputError
from reportgen.report.heads import choose_head
from reportgen.report.headstats import focus_doc
from reportgen.safety import public_name

from .conftest import WINOGRAD, random_attention


def _info(layers: int, heads: int) -> ModelInfo:
    return ModelInfo("m", "BertModel", "encoder", layers, heads)


def test_seed_head_when_the_model_has_it() -> None:
    choice = choose_head(_info(12, 12), None, None)
    assert (choice.layer, choice.head) == (9, 4)
    assert "coreference" in choice.note


def test_fallback_to_last_layer_first_head_and_says_so() -> None:
    choice = choose_head(_info(6, 12), None, None)
    assert (choice.layer, choice.head) == (5, 0)
    assert "no Layer 10, Head 5" in choice.note


def test_out_of_range_names_valid_range() -> None:
    with pytest.raises(InputError, match=r"--head 13 is out of range: this model has heads 1-12"):
        choose_head(_info(6, 12), 2, 13)


def _result(
    text: str, words: list[str], focus: str, candidates: tuple[str, ...], rng: np.random.Generator
) -> AttentionResult:
    # One token per word, with offsets into `text`, between [CLS] and [SEP].
    offsets: list[tuple[int, int]] = [(0, 0)]
    pos = 0
    for w in words:
        start = text.index(w, pos)
        offsets.append((start, start + len(w)))
        pos = start + len(w)
    offsets.append((0, 0))
    tokens = ("[CLS]", *words, "[SEP]")
    n = len(tokens)
    seq = TokenSeq(
        tokens,
        tokens,
        (None, *range(len(words)), None),
        tuple(offsets),
        (True, *[False] * len(words), True),
        text,
    )
    att = random_attention(rng, (2, 2, n, n))
    item = SentenceInput(text, focus=focus, candidates=candidates, source="test")
    return AttentionResult(item, (AttentionMap("Self-attention", seq, seq, att, id="self"),))


def test_focus_scores_are_raw_attention_for_single_piece_words(rng: np.random.Generator) -> None:
    words = ["The", "cat", "saw", "it", "and", "the", "dog"]
    result = _result("The cat saw it and the dog", words, "it", ("cat", "dog"), rng)
    doc = focus_doc(result)
    assert doc is not None
    att = result.maps[0].attention
    np.testing.assert_allclose(doc.scores[..., 0], att[:, :, 4, 2])
    np.testing.assert_allclose(doc.scores[..., 1], att[:, :, 4, 7])
    top = doc.ranked[0][0]
    assert top.value == pytest.approx(att[:, :, 4, 2].max())


def test_missing_focus_word_names_sentence_and_word(rng: np.random.Generator) -> None:
    result = _result("The cat sat", ["The", "cat", "sat"], "it", ("cat",), rng)
    with pytest.raises(InputError, match="the word 'it' is not in the sentence 'The cat sat'"):
        focus_doc(result)


def test_ambiguous_word_uses_first_and_says_so(rng: np.random.Generator) -> None:
    words = ["the", "cat", "and", "the", "dog"]
    result = _result("the cat and the dog", words, "the", ("dog",), rng)
    doc = focus_doc(result)
    assert doc is not None and doc.positions == (1,)
    assert doc.notes == ("'the' appears 2 times; the first is used.",)


@pytest.mark.slow
def test_export_focus_and_pair_numbers_on_the_embedded_model(tmp_path: Path) -> None:
    out, data = tmp_path / "r.html", tmp_path / "d.json"
    result = CliRunner().invoke(
        main,
        [
            *WINOGRAD,
            "--compare",
            "--focus",
            "it",
            "--candidates",
            "animal,street",
            "-o",
            str(out),
            "--export-json",
            str(data),
        ],
    )
    assert result.exit_code == 0, result.stderr
    exported = json.loads(data.read_text())
    for item in exported["items"]:
        att = np.array(item["attention"])
        tokens = item["tokens"]
        focus = item["focus"]
        assert focus["positions"] == [tokens.index("it")]
        for cand in focus["candidates"]:
            (pos,) = cand["positions"]
            assert tokens[pos] == cand["word"]
            np.testing.assert_allclose(
                np.array(cand["scores"]), att[:, :, tokens.index("it"), pos], atol=1e-12
            )
        np.testing.assert_allclose(item["rollout"], analysis.rollout(att), atol=1e-9)
        assert np.array(item["entropy"]["nats"]).shape == (6, 12)
    pair = exported["pairs"][0]
    assert (pair["a_index"], pair["b_index"]) == (0, 1)
    assert pair["headline"].startswith("In ") and "of 72 heads 'it'" in pair["headline"]
    html = out.read_text()
    assert pair["headline"].replace("'", "&#39;").replace(">", "&gt;") in html


# --- no local paths in what is shared ---------------------------------------------------


@pytest.mark.parametrize(
    ("name", "public"),
    [
        ("/home/alice/models/my-bert", "my-bert"),
        ("/home/alice/models/smol.Q4_1.gguf", "smol.Q4_1.gguf"),
        ("~/models/my-bert/", "my-bert"),
        ("./my-bert", "my-bert"),
        ("/home/alice/x.txt:3", "x.txt:3"),
        ("bert-base-uncased", "bert-base-uncased"),
        ("google-bert/bert-base-cased", "google-bert/bert-base-cased"),  # a hub id stays whole
        ("argument 2", "argument 2"),
        ("<stdin>:4", "<stdin>:4"),
    ],
)
def test_public_name(name: str, public: str) -> None:
    assert public_name(name) == public


def test_no_local_folder_in_page_or_export(tiny_bert: Path, tmp_path: Path) -> None:
    """An absolute model path and an absolute input path reach neither file."""
    inputs = tmp_path / "private-folder" / "lab.txt"
    inputs.parent.mkdir()
    # Longer than tiny_bert's 128 tokens: the truncation warning names its input line.
    inputs.write_text("Cats sleep.\n" + "word " * 300 + "\n", encoding="utf-8")
    out, data = tmp_path / "r.html", tmp_path / "r.json"
    args = ["-m", str(tiny_bert.resolve()), "-i", str(inputs.resolve()), "-o", str(out)]
    result = CliRunner().invoke(main, [*args, "--export-json", str(data)])
    assert result.exit_code == 0, result.stderr
    html, exported = out.read_text(encoding="utf-8"), data.read_text(encoding="utf-8")
    for text in (html, exported):
        assert str(tiny_bert.resolve().parent) not in text
        assert str(inputs.parent.resolve()) not in text
        assert "private-folder" not in text
    assert f"<code>{tiny_bert.name}</code> (BertModel, encoder)" in html
    assert "lab.txt:2: truncated" in html
    assert json.loads(exported)["model"]["name"] == tiny_bert.name


# --- the hand-in: one answer per pair, in words ------------------------------------------


def test_lab_head_is_named_only_for_a_12_by_12_bert() -> None:
    assert "the lab's head" in choose_head(_info(12, 12), None, None).note
    llama = ModelInfo("m", "LlamaForCausalLM", "causal", 30, 9)
    note = choose_head(llama, None, None).note
    assert "the lab's head" not in note and "not one" in note
    assert "the lab's head" not in choose_head(_info(24, 16), None, None).note


def _demo_html(tmp_path: Path) -> tuple[str, dict[str, Any]]:
    out, data = tmp_path / "r.html", tmp_path / "d.json"
    demo = Path(__file__).resolve().parent.parent / "sample_inputs" / "winograd.jsonl"
    result = CliRunner().invoke(main, ["-i", str(demo), "-o", str(out), "--export-json", str(data)])
    assert result.exit_code == 0, result.stderr
    return out.read_text(), json.loads(data.read_text())


class _Text(HTMLParser):
    """Text of the elements with a given class, by class (one string per element)."""

    def __init__(self, classes: set[str]) -> None:
        super().__init__(convert_charrefs=True)
        self.classes = classes
        self.open: list[tuple[str, str | None]] = []
        self.found: dict[str, list[str]] = {c: [] for c in classes}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "input", "meta", "link"):
            return
        mine = set((dict(attrs).get("class") or "").split()) & self.classes
        name = mine.pop() if mine else None
        if name:
            self.found[name].append("")
        self.open.append((tag, name))

    def handle_endtag(self, tag: str) -> None:
        while self.open:
            if self.open.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        for _, name in self.open:
            if name:
                self.found[name][-1] += data


@pytest.mark.slow
def test_demo_names_one_head_per_pair_and_the_header_agrees(tmp_path: Path) -> None:
    html, data = _demo_html(tmp_path)
    parser = _Text({"rg-headline", "rg-facts", "rg-numbers", "rg-rule", "rg-answer-mark"})
    parser.feed(html)
    found = parser.found
    pair = data["pairs"][0]
    layer, head = (pair["best_head"][k] for k in ("layer_index", "head_index"))
    name = f"Layer {layer + 1}, Head {head + 1}"
    # The demo's first pair has gold answers ('animal' in A, 'street' in B).
    a, b = data["items"][0]["focus"], data["items"][1]["focus"]
    sa = np.stack([np.array(c["scores"]) for c in a["candidates"]], -1)
    sb = np.stack([np.array(c["scores"]) for c in b["candidates"]], -1)
    answer = analysis.pair_answer(sa, sb, 0, 1)
    assert answer.head == (layer, head) and answer.shows_pattern
    # The export carries the same answer with the counts behind it.
    exported = pair["answer"]
    assert exported["head"] == pair["best_head"] and exported["expected"] == ["animal", "street"]
    assert exported["gold"] and exported["shows_pattern"] and exported["heads"] == 72
    both = (
        (np.argmax(sa, -1) == answer.expected[0]) & (np.argmax(sb, -1) == answer.expected[1])
    ).sum()
    assert exported["heads_right_in_both"] == answer.correct == both
    assert f"Hand in {name}" in found["rg-headline"][0]
    assert f"Shown first{name}: the head minimal pair 1 hands in" in found["rg-facts"][0]
    # Numbers labelled with the words they connect and the sentence they come from.
    assert (
        f"'it' → 'animal': {sa[layer, head, 0]:.2f} in A, {sb[layer, head, 0]:.2f} in B"
        in found["rg-numbers"][0]
    )
    assert "gold answers are 'animal' in A and 'street' in B" in found["rg-rule"][0]
    # A pair where no head shows the pattern says so, and what is shown instead.
    flat = [h for h in found["rg-headline"] if "No head shows the expected pattern" in h]
    assert flat and all("The submission block shows Layer" in h for h in flat)
    # The focus view marks each sentence's gold answer.
    marks = found["rg-answer-mark"]
    assert "\u2018animal\u2019" in marks and "\u2018street\u2019" in marks


@pytest.mark.slow
def test_entropy_number_and_verdict_use_one_measure(tmp_path: Path) -> None:
    html, data = _demo_html(tmp_path)
    item = data["items"][0]
    nats = np.array(item["entropy"]["nats"])  # [layers, heads]
    n = len(item["tokens"])
    means = nats.mean(axis=1)
    verdicts = ["diffuse" if m >= 0.5 * np.log(n) else "focused" for m in means]
    assert item["entropy"]["layer_verdicts"] == verdicts
    row = "<tr><th>Mean head entropy (nats)</th>" + "".join(f"<td>{m:.2f}</td>" for m in means)
    assert row in html
    assert html.count("0 means all attention on one token") == 1  # the unit, explained once
    assert f"ln&nbsp;n = {np.log(n):.2f} for these {n} tokens" in html


def test_lab_head_needs_bert_itself() -> None:
    for arch in ("RobertaModel", "AlbertModel"):
        note = choose_head(ModelInfo("m", arch, "encoder", 12, 12), None, None).note
        assert "the lab's head" not in note and "not one" in note
