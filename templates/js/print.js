/* Printing, for every page kind: the one place that draws everything before printing and
 * gives the page back after. The browser snapshots the page right after "beforeprint"
 * without waiting for async drawing, so a Print button draws every section first (lazy.js),
 * applies a print layout if it has one (the submission sheet, handin.js), narrows plots
 * wider than an A4 page, prints, and restores all of it on "afterprint". Ctrl+P gets the
 * narrowing of what is drawn, and starts drawing the rest for a second attempt. */
"use strict";
(function () {
  const RG = window.reportgen;
  const A4_WIDTH_PX = 700; // 210 mm less 2 x 12 mm margins, at 96 px per inch
  let widened = [];
  let undoLayout = null; // the print layout's restore, until "afterprint"

  /** Narrow every plot wider than A4 (Plotly redraws synchronously, before the snapshot). */
  RG.fitForPrint = function () {
    for (const div of document.querySelectorAll(".js-plotly-plot")) {
      const width = div._fullLayout ? div._fullLayout.width : 0;
      if (width <= A4_WIDTH_PX) continue;
      const x = div.layout.xaxis || {};
      widened.push([div, { width: div.layout.width, "xaxis.tickmode": x.tickmode,
        "yaxis.tickmode": (div.layout.yaxis || {}).tickmode }]);
      const update = { width: A4_WIDTH_PX };
      // Token labels that no longer fit their narrower cells give way to a few numbers.
      const n = x.ticktext ? x.ticktext.length : 0;
      const s = RG.page.heatmap_size; // every page kind's rg-config carries it
      if (n && (A4_WIDTH_PX - s.margin_x - s.colorbar) / n < s.min_cell) {
        update["xaxis.tickmode"] = "auto";
        update["yaxis.tickmode"] = "auto";
      }
      Plotly.relayout(div, update);
    }
  };

  /** Give the narrowed plots their width back. */
  RG.unfitForPrint = function () {
    const back = widened;
    widened = [];
    for (const [div, update] of back) {
      if (update.width === undefined) update.width = null;
      Plotly.relayout(div, update);
    }
  };

  /** Draw everything, apply `layout` (async, returns its restore function), fit to A4. */
  RG.prepareForPrint = async function (layout) {
    await RG.drawEverything(); // lazy.js
    RG.restoreAfterPrint();
    if (layout) undoLayout = await layout();
    RG.fitForPrint();
  };

  /** Undo everything printing changed (on "afterprint"). */
  RG.restoreAfterPrint = function () {
    RG.unfitForPrint();
    const undo = undoLayout;
    undoLayout = null;
    if (undo) undo();
  };

  async function printWith(what, layout) {
    const status = document.getElementById("rg-print-status");
    if (status) status.textContent = "Drawing " + what + " for printing…";
    await RG.prepareForPrint(layout).catch(RG.fail);
    if (status) status.textContent = "";
    window.print();
  }

  /** main.js, for every page kind: the browser's print events and the page's Print
   * buttons, where it has them. */
  RG.setupPrinting = function () {
    window.addEventListener("beforeprint", function () {
      RG.fitForPrint();
      RG.drawEverything().catch(RG.fail);
    });
    window.addEventListener("afterprint", () => RG.restoreAfterPrint());
    const whole = document.getElementById("rg-print");
    if (whole) whole.addEventListener("click", () => printWith("every view", null));
    const sheet = document.getElementById("rg-print-submission");
    const pair = document.getElementById("rg-submission-pair");
    if (sheet && pair) {
      sheet.addEventListener("click", () => printWith("the submission", () => RG.prepareSubmissionPrint(pair.value)));
    }
  };
})();
