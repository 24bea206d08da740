"""`build_report(sentences, model=<PreTrainedModel>, tokenizer=<tokenizer>)`: the caller's
loaded model runs as it is (no second copy from disk, its own device and dtype) and comes
back as it was: attention implementation, training mode, forward hooks and the
tokenizer's padding, also when the run fails (issue 23, part 2)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import reportgen
from reportgen.errors import InputError, ModelError
from reportgen.pipeline import Report
from reportgen.safety import public_name

from .conftest import WINOGRAD

TEXTS = list(WINOGRAD)
HOOK_DICTS = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
)


def _load(folder: Path, causal: bool = False, **kwargs: Any) -> tuple[Any, Any]:
    """The model and tokenizer as a notebook loads them (transformers' default attention)."""
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    loader = AutoModelForCausalLM if causal else AutoModel
    return loader.from_pretrained(folder, **kwargs), AutoTokenizer.from_pretrained(folder)


def _export(report: Report, path: Path) -> Any:
    report.export_json(path)
    return json.loads(path.read_text(encoding="utf-8"))


def _close(a: Any, b: Any, where: str = "") -> None:
    """Equal JSON, floats within 1e-6."""
    assert type(a) is type(b), where
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _close(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        if a and all(isinstance(x, float | int) and not isinstance(x, bool) for x in a + b):
            assert np.allclose(a, b, rtol=0, atol=1e-6), where
            return
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{where}[{i}]")
    elif isinstance(a, float):
        assert abs(a - b) <= 1e-6, where
    else:
        assert a == b, where


def _state(model: Any, tokenizer: Any) -> dict[str, Any]:
    """Everything the run may touch and must give back."""
    modules = list(model.modules())
    return {
        "attn": model.config._attn_implementation,
        "training": [m.training for m in modules],
        "hooks": [{name: list(getattr(m, name)) for name in HOOK_DICTS} for m in modules],
        "device": {p.device for p in model.parameters()},
        "dtype": {p.dtype for p in model.parameters()},
        "padding_side": tokenizer.padding_side,
        "pad_token": tokenizer.pad_token,
    }


def _hook_count(model: Any) -> int:
    return sum(len(getattr(m, name)) for m in model.modules() for name in HOOK_DICTS)


@pytest.fixture
def no_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """No configuration, tokenizer or weights read from disk: the object is the model."""

    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("a second copy was read from disk")

    for name in ("_from_pretrained", "open_model", "load_weights", "resolve_source"):
        monkeypatch.setattr(f"reportgen.models.{name}", refuse)


# --- 1. the same export as by folder -----------------------------------------------------


@pytest.mark.parametrize(
    ("family", "causal"),
    [("bert", False), ("gpt2", True), ("llama", True), ("t5", False)],
)
def test_object_gives_the_folder_export(
    family: str,
    causal: bool,
    tiny_bert: Path,
    tiny_model: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tiny_bert if family == "bert" else tiny_model(family)
    by_folder = _export(reportgen.build_report(TEXTS, model=str(folder)), tmp_path / "f.json")
    model, tok = _load(folder, causal)
    for name in ("_from_pretrained", "open_model", "load_weights"):
        monkeypatch.setattr(f"reportgen.models.{name}", pytest.fail)
    report = reportgen.build_report(TEXTS, model=model, tokenizer=tok)
    by_object = _export(report, tmp_path / "o.json")
    _close(by_folder, by_object)
    assert report.document.model.architecture == type(model).__name__


def test_object_pair_report_matches_the_folder(tiny_bert: Path, tmp_path: Path) -> None:
    """The lab's options (a minimal pair, a focus word, candidates, a head) as by folder."""
    options: dict[str, Any] = {
        "compare": True,
        "focus": "it",
        "candidates": "animal,street",
        "layer": 2,
        "head": 3,
        "title": "Same",
    }
    by_folder = reportgen.build_report(TEXTS, model=str(tiny_bert), **options)
    model, tok = _load(tiny_bert)
    by_object = reportgen.build_report(TEXTS, model=model, tokenizer=tok, **options)
    _close(_export(by_folder, tmp_path / "f.json"), _export(by_object, tmp_path / "o.json"))
    assert by_object.html == by_folder.html  # same name, same numbers: the same page


def test_no_second_copy_is_read(tiny_bert: Path, no_disk: None) -> None:
    model, tok = _load(tiny_bert)
    before = [p.data_ptr() for p in model.parameters()]
    report = reportgen.build_report(TEXTS[:1], model=model, tokenizer=tok)
    assert report.document.model.layers == 2
    assert [p.data_ptr() for p in model.parameters()] == before


# --- 2. the object comes back as it was ---------------------------------------------------


def test_object_state_is_unchanged_after_a_run(tiny_model: Callable[..., Path]) -> None:
    model, tok = _load(tiny_model("gpt2"), causal=True)
    seen: list[int] = []
    mine = model.transformer.h[0].register_forward_hook(lambda *_: seen.append(1))
    before = _state(model, tok)
    assert before["pad_token"] is None  # GPT-2 has none: the engine sets one, then not
    reportgen.build_report(TEXTS, model=model, tokenizer=tok)
    assert _state(model, tok) == before
    assert seen  # the caller's own hook stayed and ran with the model
    mine.remove()
    assert _hook_count(model) == 0


@pytest.mark.parametrize("where", ["sink", "forward", "render"])
def test_object_state_is_restored_after_a_failure(
    where: str, tiny_model: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure injected mid-run (while the engine's hooks are on the model, or after the
    pass) still gives the object back as it was."""
    model, tok = _load(tiny_model("llama"), causal=True)
    model.train()
    tok.padding_side = "left"
    before = _state(model, tok)
    during: dict[str, Any] = {}

    def fail(*_: Any, **__: Any) -> None:
        during.update(
            attn=model.config._attn_implementation,
            training=model.training,
            hooks=_hook_count(model),
            padding_side=tok.padding_side,
        )
        raise RuntimeError(f"injected failure in the {where}")

    if where == "sink":
        monkeypatch.setattr("reportgen.extract.StoreSink.take", fail)
    elif where == "forward":
        layer = type(model.model.layers[1])
        monkeypatch.setattr(layer, "forward", fail)
    else:
        monkeypatch.setattr("reportgen.pipeline.build_document", fail)
    with pytest.raises(RuntimeError, match="injected failure"):
        reportgen.build_report(TEXTS, model=model, tokenizer=tok)
    # The failure came mid-run: the engine had changed the object, and put it back.
    assert during["attn"] == "reportgen" and during["training"] is False
    assert during["padding_side"] == "right"
    if where != "render":
        assert during["hooks"] > 0
    monkeypatch.undo()
    assert _state(model, tok) == before
    assert model.training and model.config._attn_implementation == "sdpa"
    assert _hook_count(model) == 0


def test_object_state_is_restored_after_a_refusal(tiny_bert: Path) -> None:
    """A run refused after the tokenizer is set up (a head that does not exist) too."""
    model, tok = _load(tiny_bert)
    tok.padding_side = "left"
    before = _state(model, tok)
    with pytest.raises(InputError):
        reportgen.build_report(TEXTS, model=model, tokenizer=tok, layer=1, head=9)
    assert _state(model, tok) == before


# --- 3. the page's name for the model ----------------------------------------------------


def test_page_names_the_model_without_its_folder(tiny_bert: Path, tmp_path: Path) -> None:
    model, tok = _load(tiny_bert)
    assert model.config.name_or_path == str(tiny_bert)
    report = reportgen.build_report(TEXTS, model=model, tokenizer=tok)
    name = public_name(model.config.name_or_path)
    assert name == tiny_bert.name and report.document.model.name == name
    export = tmp_path / "o.json"
    report.export_json(export)
    for text in (report.html, export.read_text(encoding="utf-8")):
        assert name in text
        assert str(tiny_bert.parent) not in text


def test_page_names_a_hub_model_by_its_id(tiny_bert: Path) -> None:
    model, tok = _load(tiny_bert)
    model.config.name_or_path = "someone/tiny-bert"
    report = reportgen.build_report(TEXTS[:1], model=model, tokenizer=tok)
    assert report.document.model.name == "someone/tiny-bert"
    assert "someone/tiny-bert" in report.html


def test_a_model_built_in_memory_is_named_by_its_class(tiny_bert: Path) -> None:
    from transformers import BertModel

    loaded, tok = _load(tiny_bert)
    model = BertModel(loaded.config.__class__.from_dict(loaded.config.to_dict()))
    model.config.name_or_path = ""
    report = reportgen.build_report(TEXTS[:1], model=model, tokenizer=tok)
    assert report.document.model.name == "BertModel"


# --- 4. training mode and an eager object -------------------------------------------------


def test_train_mode_object_runs_in_eval_and_comes_back_training(
    tiny_bert: Path, tmp_path: Path
) -> None:
    by_folder = _export(reportgen.build_report(TEXTS, model=str(tiny_bert)), tmp_path / "f.json")
    model, tok = _load(tiny_bert)
    model.train()
    model.pooler.eval()  # a mixed state comes back module by module
    before = _state(model, tok)
    # Dropout would change every later layer: the same numbers mean the run was in eval.
    _close(
        by_folder,
        _export(reportgen.build_report(TEXTS, model=model, tokenizer=tok), tmp_path / "o.json"),
    )
    assert _state(model, tok) == before
    assert model.training and not model.pooler.training


def test_eager_object_comes_back_eager(tiny_bert: Path, tmp_path: Path) -> None:
    by_folder = _export(reportgen.build_report(TEXTS, model=str(tiny_bert)), tmp_path / "f.json")
    model, tok = _load(tiny_bert, attn_implementation="eager")
    assert model.config._attn_implementation == "eager"
    report = reportgen.build_report(TEXTS, model=model, tokenizer=tok)
    assert model.config._attn_implementation == "eager"
    _close(by_folder, _export(report, tmp_path / "o.json"))


def test_bfloat16_object_runs_in_its_dtype(tiny_bert: Path) -> None:
    import torch

    model, tok = _load(tiny_bert, dtype=torch.bfloat16)
    before = _state(model, tok)
    report = reportgen.build_report(TEXTS[:1], model=model, tokenizer=tok)
    assert _state(model, tok) == before and before["dtype"] == {torch.bfloat16}
    weights = report.extraction.results[0].maps[0].attention
    assert np.allclose(weights.sum(-1), 1, atol=1e-3)
    with pytest.raises(InputError, match="dtype 'float32'.*bfloat16") as info:
        reportgen.build_report(TEXTS[:1], model=model, tokenizer=tok, dtype="float32")
    assert "\n" not in str(info.value)
    assert _state(model, tok) == before


@pytest.mark.skipif("not __import__('torch').cuda.is_available()")
def test_cuda_object_runs_on_its_gpu(tiny_bert: Path) -> None:
    import torch

    by_folder = reportgen.build_report(TEXTS, model=str(tiny_bert), device="cpu")
    model, tok = _load(tiny_bert)
    model.to("cuda")
    before = _state(model, tok)
    report = reportgen.build_report(TEXTS, model=model, tokenizer=tok)
    assert _state(model, tok) == before and before["device"] == {torch.device("cuda", 0)}
    for x, y in zip(report.extraction.results, by_folder.extraction.results, strict=True):
        assert np.allclose(x.maps[0].attention, y.maps[0].attention, atol=1e-5)
    with pytest.raises(InputError, match="device 'cpu'.*cuda"):
        reportgen.build_report(TEXTS, model=model, tokenizer=tok, device="cpu")
    assert _state(model, tok) == before


# --- refusals, one line each --------------------------------------------------------------


def test_object_without_tokenizer_is_refused(tiny_bert: Path) -> None:
    model, _ = _load(tiny_bert)
    with pytest.raises(InputError, match="needs its tokenizer") as info:
        reportgen.build_report(TEXTS, model=model)
    assert "\n" not in str(info.value)
    with pytest.raises(InputError, match="tokenizer must be the loaded tokenizer"):
        reportgen.build_report(TEXTS, model=model, tokenizer=str(tiny_bert))


def test_tokenizer_without_object_is_refused(tiny_bert: Path) -> None:
    _, tok = _load(tiny_bert)
    with pytest.raises(InputError, match="tokenizer goes with a loaded model object"):
        reportgen.build_report(TEXTS, model=str(tiny_bert), tokenizer=tok)


def test_not_a_model_is_refused(tiny_bert: Path) -> None:
    import torch

    _, tok = _load(tiny_bert)
    with pytest.raises(InputError, match="not a Linear"):
        reportgen.build_report(TEXTS, model=torch.nn.Linear(2, 2), tokenizer=tok)


def test_model_with_its_own_code_is_refused_before_it_runs(
    tiny_bert: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A class that came with the model (trust_remote_code=True) never runs."""
    from transformers import BertModel

    loaded, tok = _load(tiny_bert)
    custom = type("XModel", (BertModel,), {"__module__": "transformers_modules.x.modeling_x"})
    model = custom(loaded.config)
    ran: list[int] = []
    monkeypatch.setattr(custom, "forward", lambda *_, **__: ran.append(1))
    before = _state(model, tok)
    with pytest.raises(ModelError, match="runs its own Python code.*never runs") as info:
        reportgen.build_report(TEXTS, model=model, tokenizer=tok)
    assert "\n" not in str(info.value) and not ran
    assert _state(model, tok) == before


def test_class_without_capturable_attention_is_refused_as_by_folder(
    tiny_bert: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import BertModel

    model, tok = _load(tiny_bert)
    monkeypatch.setattr(BertModel, "_can_record_outputs", {"hidden_states": object})
    with pytest.raises(ModelError) as by_folder:
        reportgen.build_report(TEXTS, model=str(tiny_bert))
    with pytest.raises(ModelError) as by_object:
        reportgen.build_report(TEXTS, model=model, tokenizer=tok)
    reason = "BertModel cannot return attention weights"
    assert reason in str(by_folder.value) and reason in str(by_object.value)
    tail = "has no attention that reportgen can show: "
    assert str(by_object.value).split(tail)[1] == str(by_folder.value).split(tail)[1]
    assert str(by_object.value).startswith(f"model '{tiny_bert.name}' (bert)")


def test_state_space_object_is_refused_as_by_folder(tiny_bert: Path, tmp_path: Path) -> None:
    from transformers import MambaConfig, MambaModel

    config = MambaConfig(
        vocab_size=100, hidden_size=16, state_size=4, num_hidden_layers=2, expand=2
    )
    folder = tmp_path / "mamba"
    folder.mkdir()
    (folder / "config.json").write_text(config.to_json_string())
    _, tok = _load(tiny_bert)
    with pytest.raises(ModelError) as by_folder:
        reportgen.build_report(TEXTS, model=str(folder))
    with pytest.raises(ModelError) as by_object:
        reportgen.build_report(TEXTS, model=MambaModel(config), tokenizer=tok)
    tail = "has no attention that reportgen can show: "
    assert str(by_object.value).split(tail)[1] == str(by_folder.value).split(tail)[1]
    assert "state-space model" in str(by_object.value) and "\n" not in str(by_object.value)


def test_object_measures_and_queries_keys_match_the_folder(
    tiny_model: Callable[..., Path], tmp_path: Path
) -> None:
    """The views that need the model (next tokens, context-mixing measures, queries and
    keys, whose hooks go on the object too) as by folder; the object comes back as it was."""
    folder = tiny_model("gpt2")
    options: dict[str, Any] = {"measures": ("norm", "alti"), "qk": True}
    by_folder = reportgen.build_report(TEXTS, model=str(folder), **options)
    model, tok = _load(folder, causal=True)
    before = _state(model, tok)
    by_object = reportgen.build_report(TEXTS, model=model, tokenizer=tok, **options)
    assert _state(model, tok) == before
    assert by_object.extraction.results[0].next_tokens
    assert by_object.extraction.results[0].maps[0].measures is not None
    assert by_object.extraction.results[0].maps[0].qk is not None
    _close(_export(by_folder, tmp_path / "f.json"), _export(by_object, tmp_path / "o.json"))


def test_buffers_replaced_by_the_forward_come_back(
    tiny_model: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A forward that caches into a buffer (dynamic rotary scaling regrows its table) must
    not leave an inference-mode tensor in the caller's model."""
    model, tok = _load(tiny_model("llama"), causal=True)
    rotary = model.model.rotary_emb
    original = rotary.inv_freq
    forward = type(rotary).forward

    def regrow(self: Any, x: Any, position_ids: Any) -> Any:
        self.inv_freq = self.inv_freq.clone()  # made under the engine's inference_mode
        return forward(self, x, position_ids)

    monkeypatch.setattr(type(rotary), "forward", regrow)
    reportgen.build_report(TEXTS[:1], model=model, tokenizer=tok)
    assert rotary.inv_freq is original and not rotary.inv_freq.is_inference()


def test_a_config_with_the_default_dtype_takes_the_objects(tiny_bert: Path) -> None:
    import torch

    from reportgen.config import ReportConfig

    model, tok = _load(tiny_bert, dtype=torch.bfloat16)
    report = reportgen.build_report(
        TEXTS[:1], model=model, tokenizer=tok, config=ReportConfig(title="Mine")
    )
    assert report.document.model.layers == 2
    with pytest.raises(InputError, match="dtype 'float16'"):
        reportgen.build_report(
            TEXTS[:1], model=model, tokenizer=tok, config=ReportConfig(dtype="float16")
        )
