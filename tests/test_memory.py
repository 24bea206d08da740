"""memory: the estimate, the one-line refusals, `--max-tokens`, and what the kernel reports."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from reportgen import memory
from reportgen.cli import main
from reportgen.config import ReportConfig
from reportgen.errors import InputError
from reportgen.memory import ModelShape, check_fits, estimate, map_values

# SmolLM2-135M's shape: 30 layers x 9 heads, hidden 576, MLP 1536, 49,152 words.
SMOL = ModelShape("smol", "causal", 30, 9, hidden=576, intermediate=1536, vocab=49152)


def test_estimate_counts_maps_eager_layer_and_packing() -> None:
    need, gpu = estimate(SMOL, [1000], batch_size=1)
    values = 30 * 9 * 1000 * 1000
    assert gpu == 0 and need.maps == 4 * values
    attention = memory.EAGER_COPIES * 4 * 9 * 1000 * 1000
    assert need.forward == attention + 4 * 1000 * (4 * 576 + 1536) + 4 * 49152
    assert need.report == memory.PACK_BYTES_PER_VALUE * values + 16 * 30 * 1000 * 1000
    assert need.host == need.maps + max(need.forward, need.report) + memory.HEADROOM_BYTES


def test_estimate_batches_by_length_and_keeps_all_logits_without_logits_to_keep() -> None:
    shape = ModelShape("m", "causal", 2, 4, hidden=8, intermediate=32, vocab=100)
    all_logits = ModelShape(
        "m", "causal", 2, 4, hidden=8, intermediate=32, vocab=100, last_logits_only=False
    )
    # Sorted by length, batches of 2: (3, 5) and (9,): the largest batch-layer is (1, 9).
    need, _ = estimate(shape, [9, 3, 5], batch_size=2)
    one = 3 * 4 * 4 * 9 * 9 + 4 * 9 * (4 * 8 + 32) + 4 * 100
    pair = 3 * 4 * 2 * 4 * 5 * 5 + 4 * 2 * 5 * (4 * 8 + 32) + 4 * 2 * 100
    assert need.forward == max(one, pair)
    more, _ = estimate(all_logits, [9], batch_size=1)
    assert more.forward - estimate(shape, [9], 1)[0].forward == 4 * 100 * 8


def test_encoder_decoder_counts_three_maps_and_gpu_takes_the_forward_pass() -> None:
    shape = ModelShape("t5", "encoder-decoder", 2, 2, decoder_layers=3, hidden=8)
    assert map_values(shape, 10, 4) == 2 * 2 * 100 + 3 * 2 * (16 + 40)
    gpu_shape = ModelShape("m", "encoder", 2, 2, hidden=8, on_gpu=True)
    need, gpu = estimate(gpu_shape, [50], 1)
    assert need.forward == 0 and gpu == 3 * 4 * 2 * 50 * 50 + 4 * 50 * 4 * 8


def test_too_little_memory_is_one_line_with_the_max_tokens_that_fits() -> None:
    need, _ = estimate(SMOL, [300], 1)
    available = memory.HEADROOM_BYTES + (need.host - memory.HEADROOM_BYTES) // 4
    with pytest.raises(InputError) as err:
        check_fits(SMOL, [300], 1, available=available)
    text = str(err.value)
    assert "\n" not in text
    assert f"needs about {memory.human(need.host)}" in text
    assert f"but {memory.human(available)} is available" in text
    fit = int(re.search(r"--max-tokens (\d+)", text).group(1))  # type: ignore[union-attr]
    assert estimate(SMOL, [fit], 1)[0].host <= available < estimate(SMOL, [fit + 1], 1)[0].host


def test_over_the_page_budget_the_input_takes_the_long_page() -> None:
    """Past the budget the page is reduced; only many long inputs at once are refused."""
    assert check_fits(SMOL, [60, 10], 1, available=None) is False
    assert check_fits(SMOL, [900, 10], 1, available=None) is True
    with pytest.raises(InputError, match=r"more than one page carries .*; split them") as err:
        check_fits(SMOL, [4000] * 40, 1, available=None)
    assert "\n" not in str(err.value)


def test_a_4000_token_smollm2_input_fits_8_gb_and_an_impossible_one_is_refused() -> None:
    """The long path's estimate: a chunk of query rows of one layer made at a time
    beside the fast kernel, and the reduced records."""
    long, _ = estimate(SMOL, [4000], 1, long=True)
    full, _ = estimate(SMOL, [4000], 1)
    assert long.maps == 4 * memory.long_values(SMOL, 4000) < full.maps // 50
    assert long.host < 1024**3 < 3 * 1024**3 < full.host
    assert check_fits(SMOL, [4000], 1, available=8 * 1024**3) is True
    with pytest.raises(InputError) as err:
        check_fits(SMOL, [30_000], 1, available=2 * 1024**3)
    text = str(err.value)
    assert "\n" not in text and "of reduced attention records" in text
    fit = int(re.search(r"--max-tokens (\d+)", text).group(1))  # type: ignore[union-attr]
    assert 4000 < fit < 30_000
    assert estimate(SMOL, [fit], 1, long=True)[0].host <= 2 * 1024**3


def test_the_long_path_counts_a_chunk_of_rows_or_a_whole_eager_layer() -> None:
    n = 8192
    fast, _ = estimate(SMOL, [n], 1, long=True)
    chunk = memory.CHUNK_BYTES_PER_VALUE * 9 * 128 * n  # tiles.chunk_rows: 64 + 8192 / 128
    activations = 4 * n * (4 * 576 + 1536) + 4 * 49152
    assert fast.forward == activations + chunk
    eager = ModelShape(
        "smol", "causal", 30, 9, hidden=576, intermediate=1536, vocab=49152, eager=True
    )
    slow, _ = estimate(eager, [n], 1, long=True)
    layer = memory.EAGER_COPIES * 4 * 9 * n * n
    assert slow.forward == activations + layer + 4 * 9 * n * n + 16 * n * n
    # SmolLM2's full context: about 1 GB on the fast kernel, 10 GB on eager.
    assert fast.host < 1.2 * 1024**3 < 9 * 1024**3 < slow.host


def test_the_long_path_counts_the_measures_it_is_asked_for() -> None:
    """Norm adds its chunk rows and a second overview and rows on the page; a per-layer
    measure every key's value through every head and its exact rows (mixing.py)."""
    n = 8192
    plain, _ = estimate(SMOL, [n], 1, long=True)
    norm, _ = estimate(SMOL, [n], 1, long=True, measures=("norm",))
    alti, _ = estimate(SMOL, [n], 1, long=True, measures=("alti",))
    chunk = memory.NORM_CHUNK_BYTES_PER_VALUE * 9 * 128 * n
    assert norm.forward == plain.forward + chunk
    assert norm.maps == 2 * plain.maps
    assert alti.forward == plain.forward + 4 * 9 * n * 576 + 12 * memory.LONG_ROWS * n * 576
    assert alti.maps == plain.maps + 4 * 30 * memory.LONG_ROWS * n
    # SmolLM2's full context with every measure still fits a few GB.
    everything, _ = estimate(SMOL, [n], 1, long=True, measures=("norm", "norm_layer", "alti"))
    assert everything.host < 2 * 1024**3


def test_nothing_fits_suggests_a_smaller_model() -> None:
    with pytest.raises(InputError, match="use a smaller model"):
        check_fits(SMOL, [50], 1, available=1024)


def test_gpu_memory_is_checked_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    shape = ModelShape("m", "causal", 2, 16, hidden=64, on_gpu=True)
    with pytest.raises(InputError, match=r"GPU memory .* but 1 MB is free; use --max-tokens"):
        check_fits(shape, [600], 1, available=None, gpu_free=1024**2)


def _fake_kernel(tmp_path: Path, cgroup: str, files: dict[str, str], meminfo_kb: int) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "cgroup").write_text(cgroup)
    (tmp_path / "proc" / "meminfo").write_text(
        f"MemTotal: 99999999 kB\nMemAvailable: {meminfo_kb} kB\n"
    )
    for rel, text in files.items():
        path = tmp_path / "cg" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(memory, "CGROUP_ROOT", tmp_path / "cg")
    monkeypatch.setattr(memory, "PROC_CGROUP", tmp_path / "proc" / "cgroup")
    monkeypatch.setattr(memory, "PROC_MEMINFO", tmp_path / "proc" / "meminfo")
    return tmp_path


def test_available_memory_reads_cgroup_v2_with_cache_as_free(kernel: Path) -> None:
    _fake_kernel(
        kernel,
        "0::/job\n",
        {
            "job/memory.max": "1000000000\n",
            "job/memory.current": "700000000\n",
            "job/memory.stat": "anon 1\ninactive_file 100000000\n",
        },
        meminfo_kb=10_000_000,
    )
    assert memory.available_memory() == 400_000_000


def test_available_memory_reads_cgroup_v1_and_takes_the_tighter(kernel: Path) -> None:
    _fake_kernel(
        kernel,
        "4:memory:/x\n",
        {
            "memory/memory.limit_in_bytes": "2000000000",
            "memory/memory.usage_in_bytes": "500000000",
            "memory/memory.stat": "total_inactive_file 0\n",
        },
        meminfo_kb=1000,  # the machine is tighter than the cgroup
    )
    assert memory.available_memory() == 1000 * 1024


def test_no_cgroup_limit_falls_back_to_meminfo(kernel: Path) -> None:
    _fake_kernel(
        kernel,
        "0::/\n",
        {"memory.max": "max\n", "memory.current": "5\n"},
        meminfo_kb=2048,
    )
    assert memory.available_memory() == 2048 * 1024


def test_cli_refuses_before_the_forward_pass(
    tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reportgen import extract

    def no_forward(*_: object, **__: object) -> None:
        raise AssertionError("the forward pass ran")

    monkeypatch.setattr(extract, "forward_batch", no_forward)
    monkeypatch.setattr(memory, "available_memory", lambda: 1024**2)
    out = tmp_path / "r.html"
    result = CliRunner().invoke(
        main, ["A sentence of several words.", "-m", str(tiny_bert), "-o", str(out), "-q"]
    )
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: this input needs about")
    assert "but 1 MB is available" in lines[0] and "Traceback" not in result.output
    assert not out.exists()


def test_max_tokens_truncates_with_the_warning(tiny_bert: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    text = "one two three four five six seven eight nine ten"
    result = CliRunner().invoke(
        main, [text, "-m", str(tiny_bert), "-o", str(out), "--max-tokens", "5"]
    )
    assert result.exit_code == 0, result.output
    assert "truncated from 12 to 5 tokens (--max-tokens)" in result.stderr
    from reportgen.pipeline import build_report

    report = build_report(text, str(tiny_bert), max_tokens=5)
    amap = report.extraction.results[0].maps[0]
    assert amap.attention.shape == (2, 4, 5, 5) and amap.query.tokens[0] == "[CLS]"
    assert report.extraction.results[0].truncated


def test_max_tokens_help() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert "--max-tokens N" in result.output
    bad = CliRunner().invoke(main, ["x", "--max-tokens", "1"])
    assert bad.exit_code == 2


def test_the_weights_are_counted_before_they_load(
    tiny_bert: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check runs on the opened model, before its weights load: their estimate is
    within a fifth of the loaded parameters, and it is part of what the input needs."""
    from reportgen.models import load_weights, open_model

    spec = open_model(ReportConfig(model=str(tiny_bert)))
    shape = memory.model_shape(spec)
    model = load_weights(spec).model
    actual = sum(p.numel() * p.element_size() for p in model.parameters())
    assert abs(memory.weight_bytes(shape, "float32") - actual) < actual / 5
    need = memory.estimate(shape, [12], 1, long=False)[0].host
    weights = memory.weight_bytes(shape, "float32")
    # Free memory that holds the input's needs but not the weights as well: refused.
    monkeypatch.setattr(memory, "available_memory", lambda: need + weights // 2)
    with pytest.raises(InputError, match="of weights"):
        memory.check_input(spec, [12], 1)
    monkeypatch.setattr(memory, "available_memory", lambda: need + weights)
    assert memory.check_input(spec, [12], 1) is False
