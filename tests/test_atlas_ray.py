"""atlas on Ray: one local Ray (2 CPUs) for the module; the result equals the local
engine's within 1e-6, failures are one line, and a missing Ray is an install hint."""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from reportgen.atlas import AtlasOptions, build_atlas
from reportgen.config import ReportConfig
from reportgen.errors import ReportgenError

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ray") / "corpus.jsonl"
    lines = []
    for i in range(30):
        lines.append(
            {
                "text": f"The animal didn't cross the street because it was too tired ({i}).",
                "focus": "it",
                "candidates": ["animal", "street"],
                "answer": "animal",
            }
        )
        lines.append({"text": "Short, punctuated: yes!" + " and more" * (i % 7)})
        lines.append({"text": "No focus here.", "focus": "he", "candidates": ["x"], "answer": "x"})
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    return path


def test_ray_equals_local(local_ray: Any, corpus: Path, tiny_bert: Path) -> None:
    config = ReportConfig(model=str(tiny_bert), batch_size=4)
    local = build_atlas(str(corpus), config, AtlasOptions(engine="local"))
    # Two workers and small blocks: the partial sums really are merged.
    distributed = build_atlas(str(corpus), config, AtlasOptions(engine="ray", workers=2))
    a, b = local.export_data(), distributed.export_data()
    assert (a["sentences"], a["tokens"]) == (b["sentences"], b["tokens"]) == (90, a["tokens"])
    for name, grid in a["statistics"].items():
        np.testing.assert_allclose(b["statistics"][name], grid, atol=1e-6, err_msg=name)
    assert a["coreference"] == b["coreference"]
    assert a["coreference"]["items"] == 30 and a["coreference"]["skipped"] == 30
    assert a["model"] == b["model"]
    np.testing.assert_allclose(
        distributed.sums.js_distance(),
        local.sums.js_distance(),
        atol=1e-6,  # type: ignore[arg-type]
    )
    np.testing.assert_array_equal(local.sums.examples.seq, distributed.sums.examples.seq)  # type: ignore[union-attr]


def test_worker_failure_is_one_line(local_ray: Any, corpus: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    with pytest.raises(ReportgenError) as info:
        build_atlas(
            str(corpus), ReportConfig(model=str(broken)), AtlasOptions(engine="ray", workers=1)
        )
    message = str(info.value)
    assert "\n" not in message and "broken-model" in message


def test_without_ray_an_install_hint(
    monkeypatch: pytest.MonkeyPatch, corpus: Path, tiny_bert: Path
) -> None:
    real_import = builtins.__import__

    def no_ray(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "ray" or name.startswith("ray."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(ReportgenError, match=r"pip install 'reportgen\[ray\]'"):
        build_atlas(str(corpus), ReportConfig(model=str(tiny_bert)), AtlasOptions(engine="ray"))
