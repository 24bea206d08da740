/* The hand-in: heatmaps sized from their token count, the submission maps' colour range,
 * and "Print the submission" (one pair's submission block alone on one A4 page).
 * Hooks that heatmap.js and pairs.js call when present. */
"use strict";
(function () {
  const RG = (window.reportgen = window.reportgen || {});

  /** Width, height and tick font (px) of an n-token heatmap: figures.heatmap_size. */
  RG.heatmapSize = function (n, room) {
    const s = RG.page.heatmap_size;
    n = Math.max(n, 1);
    let cell = Math.max(s.cell - Math.max(0, n - s.full_cells) * s.shrink, s.min_cell);
    const extraX = s.margin_x + s.colorbar;
    // Below min_cell the view scrolls sideways instead of squeezing the labels.
    if (room && n * cell + extraX > room) cell = Math.max((room - extraX) / n, s.min_cell);
    const side = n * cell;
    const font = Math.floor(Math.min(s.max_font, cell - 1));
    return { width: Math.round(side + extraX), height: Math.round(side + s.margin_y), font: font };
  };

  /** Size a heatmap from its token count so the colour bar sits right beside the map. */
  RG.fitHeatmap = function (fig, nq, nk, div) {
    if (!RG.page || !RG.page.heatmap_size) return;
    const room = div && div.clientWidth ? div.clientWidth : null;
    const size = RG.heatmapSize(Math.max(nq, nk), room);
    fig.layout.width = size.width;
    fig.layout.height = size.height;
    // Every token labelled, in a font that fits its cell.
    fig.layout.xaxis.tickmode = "array";
    fig.layout.yaxis.tickmode = "array";
    fig.layout.xaxis.tickfont = { size: size.font };
    fig.layout.yaxis.tickfont = { size: size.font };
    fig.layout.xaxis.automargin = true;
    fig.layout.yaxis.automargin = true;
  };

  /** The submission maps' spec: the colour range leaves special-token columns out
   * (analysis.submission_range), so the outlined cells can be told apart. */
  RG.submissionSpec = function (t, seqK) {
    const spec = RG.clone(RG.page.figures.attention);
    let top = 0;
    let any = false;
    const special = (j) => !!seqK.special[t.k.positions[j]];
    const allSpecial = t.k.positions.every((_, j) => special(j));
    for (const row of t.rows) {
      row.forEach(function (v, j) {
        if (allSpecial || !special(j)) {
          any = true;
          top = Math.max(top, v);
        }
      });
    }
    spec.data[0].zmin = 0;
    spec.data[0].zmax = Math.max(any ? top : 1, 0.01);
    return spec;
  };

  // ---------- Print the submission ----------
  const PRINT_CLASS = "rg-print-submission";
  const TARGET_CLASS = "rg-print-target";
  // Two maps side by side on A4 (700 px across): tight margins, small ticks, thin bar.
  const SHEET_MAP = {
    width: 348,
    height: 420,
    margin: { l: 56, r: 4, t: 40, b: 56 },
    "title.font.size": 12,
  };
  let restore = [];

  /** Draw everything, then show only `anchor`'s submission block, maps sized for A4. */
  RG.prepareSubmissionPrint = async function (anchor) {
    await RG.drawEverything(); // lazy.js
    RG.endSubmissionPrint();
    const section = document.getElementById(anchor);
    if (!section) throw new Error("no minimal pair " + anchor);
    document.body.classList.add(PRINT_CLASS);
    section.classList.add(TARGET_CLASS);
    for (const div of section.querySelectorAll(".rg-submission .js-plotly-plot")) {
      const l = div.layout;
      const font = (axis) => (l[axis].tickfont ? l[axis].tickfont.size : null);
      restore.push([div, {
        width: l.width, height: l.height, margin: RG.clone(l.margin || {}),
        "xaxis.tickfont.size": font("xaxis"), "yaxis.tickfont.size": font("yaxis"),
        "xaxis.tickmode": l.xaxis.tickmode, "yaxis.tickmode": l.yaxis.tickmode,
        "title.font.size": null,
      }]);
      // Every token labelled while a label still fits its cell (7 px at least).
      const n = div.data[0].z.length;
      const cell = (SHEET_MAP.width - 120) / Math.max(n, 1);
      const size = Math.min(9, Math.floor(cell - 1));
      const mode = size >= 7 ? "array" : "auto";
      await Plotly.relayout(div, Object.assign({}, SHEET_MAP, {
        "xaxis.tickmode": mode, "yaxis.tickmode": mode,
        "xaxis.tickfont.size": size, "yaxis.tickfont.size": size,
      }));
      await Plotly.restyle(div, { "colorbar.thickness": 8, "colorbar.title.side": "right" });
    }
  };

  RG.endSubmissionPrint = function () {
    document.body.classList.remove(PRINT_CLASS);
    document.querySelectorAll("." + TARGET_CLASS).forEach((el) => el.classList.remove(TARGET_CLASS));
    const back = restore;
    restore = [];
    for (const [div, size] of back) {
      Plotly.relayout(div, size).catch(RG.fail);
      Plotly.restyle(div, { "colorbar.thickness": 14, "colorbar.title.side": "top" }).catch(RG.fail);
    }
  };

  function wirePrintButton() {
    const button = document.getElementById("rg-print-submission");
    const choice = document.getElementById("rg-submission-pair");
    if (!button || !choice) return;
    button.addEventListener("click", async function () {
      const status = document.getElementById("rg-print-status");
      if (status) status.textContent = "Drawing the submission for printing…";
      await RG.prepareSubmissionPrint(choice.value).catch(RG.fail);
      if (status) status.textContent = "";
      window.addEventListener("afterprint", RG.endSubmissionPrint, { once: true });
      window.print();
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", wirePrintButton);
  else wirePrintButton();
})();

/* Printing the whole report: plots drawn wider than an A4 page are narrowed before the
 * browser lays out the pages, and given their width back afterwards. */
(function () {
  const RG = (window.reportgen = window.reportgen || {});
  const A4_WIDTH_PX = 700; // 210 mm less 2 x 12 mm margins, at 96 px per inch
  let widened = [];

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
      const s = RG.page && RG.page.heatmap_size;
      if (s && n && (A4_WIDTH_PX - s.margin_x - s.colorbar) / n < s.min_cell) {
        update["xaxis.tickmode"] = "auto";
        update["yaxis.tickmode"] = "auto";
      }
      // Plotly draws synchronously here, before the browser takes its print snapshot.
      Plotly.relayout(div, update);
    }
  };

  RG.unfitForPrint = function () {
    const back = widened;
    widened = [];
    for (const [div, update] of back) {
      if (update.width === undefined) update.width = null;
      Plotly.relayout(div, update);
    }
  };

  window.addEventListener("beforeprint", () => RG.fitForPrint());
  window.addEventListener("afterprint", () => RG.unfitForPrint());
})();
