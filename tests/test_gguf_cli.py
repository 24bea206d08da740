"""The real SmolLM2 GGUF through the CLI: a causal LM's report, offline, end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from reportgen import gguf
from reportgen.cli import main

from .conftest import open_report, outside_requests
from .test_gguf import EXPECTED_TOP5, PROMPT, _real_smollm2

pytestmark = pytest.mark.gguf


@pytest.fixture(scope="module")
def causal_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    source = _real_smollm2()
    folder = tmp_path_factory.mktemp("causal")
    out, data = folder / "report-causal.html", folder / "causal.json"
    result = CliRunner().invoke(
        main, [PROMPT, "-m", str(source), "-o", str(out), "--export-json", str(data)]
    )
    assert result.exit_code == 0, result.stderr
    return out, json.loads(data.read_text())


def test_next_tokens_equal_the_models_own_logits(
    causal_report: tuple[Path, dict[str, Any]],
) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, exported = causal_report
    assert exported["model"]["layers"] == 30 and exported["model"]["heads"] == 9
    assert exported["model"]["kind"] == "causal"
    item = exported["items"][0]
    folder = gguf.materialize(_real_smollm2())  # cached by the CLI run above
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager").eval()
    enc = tok(PROMPT, return_tensors="pt")
    with torch.inference_mode():
        out = model(**enc, output_attentions=True)
    probs = torch.softmax(out.logits[0, -1].float(), dim=-1)
    top = torch.topk(probs, 5)
    expected = [tok.decode([int(i)]) for i in top.indices]
    assert [t["token"] for t in item["next_tokens"]] == expected == EXPECTED_TOP5
    # The report's model runs sdpa (capture.py), this reference eager: 30 layers of
    # different rounding move a probability by a few 1e-6.
    np.testing.assert_allclose(
        [t["probability"] for t in item["next_tokens"]], top.values.numpy(), atol=1e-5
    )
    att = np.array(item["attention"])
    assert att.shape[:2] == (30, 9)
    direct = torch.stack(out.attentions, dim=1)[0].numpy()
    np.testing.assert_allclose(att, direct, atol=1e-5)
    # Causal: nothing above the diagonal.
    assert np.abs(np.triu(att, k=1)).max() < 1e-6


@pytest.mark.browser
def test_causal_report_renders_masked_and_shows_predictions(
    browser: Any, causal_report: tuple[Path, dict[str, Any]]
) -> None:
    path, _ = causal_report
    page, log = open_report(browser, path)
    assert log.errors == [] and outside_requests(log, path) == []
    assert "30 layers × 9 heads" in page.locator(".rg-facts").text_content()
    z = page.locator('#s1 [data-plot="head"]').evaluate("el => el.data[0].z")
    n = len(z)
    assert all(z[i][j] is None for i in range(n) for j in range(i + 1, n))
    assert all(z[i][j] is not None for i in range(n) for j in range(i + 1))
    text = page.locator("#s1").text_content()
    for token in EXPECTED_TOP5:
        assert token.strip() in text
