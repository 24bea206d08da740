"""Page timings in headless Chromium, with the flags the browser tests use."""

from __future__ import annotations

import shutil
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .measure import say
from .table import Row, fmt_s
from .targets import Target

# The benchmark's own copy of the test suite's browser (tests/conftest.py), so that
# nothing here imports the tests.
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

# Installed before the page's own scripts: when each section (and the body) first gets
# data-rg-rendered / data-rg-ready, in ms since navigation start. Kept as strings: the
# repository holds no JavaScript files outside templates/js (tests/test_style.py).
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

TALL_VIEWPORT = 8000  # px: the whole Winograd report on one screen


def browser_available() -> bool:
    return Path(CHROMIUM).exists()


class Browser:
    """One headless Chromium for every page timing."""

    def __init__(self) -> None:
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        self.browser = self._pw.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)

    def close(self) -> None:
        self.browser.close()
        self._pw.stop()

    def _open(self, height: int = 900) -> tuple[Any, Any, list[str]]:
        """An offline context and page, and the console errors it will collect."""
        context = self.browser.new_context(offline=True, viewport={"width": 1400, "height": height})
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        return context, page, errors

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
        context, page, errors = self._open(height)
        page.add_init_script(RECORD_TIMES_JS)
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

    def time_panel(
        self, path: Path, cells: Sequence[tuple[int, int]], anchor: str = "s1"
    ) -> dict[str, Any]:
        """Seconds from a real mouse click on cell (i, j) of section `anchor`'s one-head
        heatmap until the "why this weight" panel is drawn, once per cell in turn, in the
        page's own clock (the section unpacked its queries and keys when it was drawn)."""
        context, page, errors = self._open()
        out: dict[str, Any] = {}
        heatmap = f'#{anchor} [data-plot="head"]'
        panel = f'#{anchor} [data-view="qk"]'
        try:
            page.goto(path.resolve().as_uri())
            page.wait_for_selector(f"#{anchor}[data-rg-rendered='1']", state="attached")
            page.locator(heatmap).scroll_into_view_if_needed()
            times = []
            for i, j in cells:
                x, y = page.evaluate(CELL_POINT_JS, [heatmap, i, j])
                page.evaluate(PANEL_WATCH_JS, panel)
                page.mouse.click(x, y)
                page.wait_for_selector(f'{panel}[data-rg-rendered="1"]', state="attached")
                page.wait_for_function("() => window.__rgPanel.drawn !== undefined")
                mark = page.evaluate("window.__rgPanel")
                times.append((mark["drawn"] - mark["down"]) / 1000)
            out["clicks"] = times
            out["slowest"] = max(times)
            out["median"] = statistics.median(times)
        except Exception as exc:  # a timeout is a result here, not a crash
            out["failed"] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        out["errors"] = errors
        context.close()
        return out


# Where a one-head heatmap draws cell (i, j), in page coordinates (plotly's own axes).
CELL_POINT_JS = """([sel, i, j]) => {
  const gd = document.querySelector(sel);
  const r = gd.getBoundingClientRect();
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  return [r.left + xa._offset + xa.l2p(j), r.top + ya._offset + ya.l2p(i)];
}"""

# Before a click: the page's own times of the next mousedown and of the panel's next
# data-rg-rendered="1" (lazy.js sets it once Plotly has drawn the panel's charts).
PANEL_WATCH_JS = """(sel) => {
  const panel = document.querySelector(sel);
  delete panel.dataset.rgRendered;
  window.__rgPanel = {};
  document.addEventListener("mousedown", () => { window.__rgPanel.down = performance.now(); },
    { capture: true, once: true });
  new MutationObserver((records, observer) => {
    if (panel.dataset.rgRendered === "1") {
      window.__rgPanel.drawn = performance.now();
      observer.disconnect();
    }
  }).observe(panel, { attributes: true, attributeFilter: ["data-rg-rendered"] });
}"""


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


def browser_row(measure: str, result: dict[str, Any], key: str, target: Target) -> Row:
    """A page timing against its target; a console error misses it too."""
    errors = len(result.get("errors", []))
    note = f"— ({errors} console errors)"
    if key in result:
        seconds = result[key]
        return Row.check(measure, fmt_s(seconds), note, target, seconds, also=not errors)
    return Row(measure, f"not done: {result.get('failed', '?')}", note, str(target), False)
