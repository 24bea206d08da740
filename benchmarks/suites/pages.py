"""Browser: headless Chromium draws the Winograd pair (and its qk panel after a click), 200
sentences and the 512-token report."""

from __future__ import annotations

from .. import targets
from ..browser import TALL_VIEWPORT, Browser, browser_row, median_browser
from ..context import Context
from ..fixtures import built, long_page, many_page, pair_page
from ..measure import say
from ..table import Row

# Cells of the first sentence's one-head heatmap clicked in turn, (query, key): "it" (10)
# on "animal" (2) and "street" (8) first, as the lab asks, then elsewhere.
PANEL_CELLS = ((10, 2), (10, 8), (3, 2), (13, 5), (5, 0), (8, 8))


def rows(ctx: Context) -> list[Row]:
    if not ctx.browser:
        return []
    # Pages the size suites wrote; written here when this suite runs alone.
    pair_html = built(pair_page(ctx.work))
    many_html = built(many_page(ctx.work))
    long_html = built(long_page(ctx.work))
    say("browser: headless Chromium")
    browser = Browser()
    out: list[Row] = []
    try:
        browser.time_report(pair_html, everything=False)  # warm-up: a browser already running
        # A viewport tall enough for the whole report, so "every figure" is on screen.
        r = median_browser(
            browser, pair_html, ctx.reps, "everything", everything=True, height=TALL_VIEWPORT
        )
        out.append(
            browser_row(
                "Browser: Winograd pair, every figure drawn",
                r,
                "everything",
                targets.WINOGRAD_BROWSER,
            )
        )
        r = browser.time_panel(pair_html, PANEL_CELLS)
        say(f"  {pair_html.name}, panel: {r}")
        slowest = f"; slowest {r['slowest'] * 1000:.0f} ms" if "slowest" in r else ""
        out.append(
            browser_row(
                "Browser: Winograd pair, a heatmap click until the qk panel is drawn "
                f"(median of {len(PANEL_CELLS)} clicks{slowest})",
                r,
                "median",
                targets.QK_PANEL,
            )
        )
        r = median_browser(browser, many_html, ctx.reps, "first_screen", everything=False)
        out.append(
            browser_row(
                f"Browser: 200 sentences, first screen drawn ({r.get('visible', '?')} sections)",
                r,
                "first_screen",
                targets.MANY_BROWSER,
            )
        )
        r = browser.time_report(
            long_html, everything=False, timeout_s=ctx.long_timeout, switch_head=3
        )
        say(f"  {long_html.name}: {r}")
        out.append(
            browser_row(
                "Browser: 512 tokens, first screen drawn", r, "first_screen", targets.LONG_OPEN
            )
        )
        out.append(
            browser_row(
                "Browser: 512 tokens, then switch the heatmap to another head",
                r,
                "switch",
                targets.LONG_SWITCH,
            )
        )
    finally:
        browser.close()
    return out
