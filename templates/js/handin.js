/* The hand-in: heatmaps sized from their token count (heatmap.js), the submission maps'
 * colour range (pairs.js), and the layout of "Print the submission": one pair's
 * submission block alone on one A4 page (print.js prints it). */
"use strict";
(function () {
  const RG = window.reportgen;

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

  // Up to this many tokens an axis labels every one (the hand-in asks for readable labels
  // at 100); past it every k-th (k = n / this, rounded up), by its token still: Plotly
  // lays out every label, so a 512-token page's three heatmaps labelled in full took 14 s
  // of its first screen, and 128 labels an axis about 0.4 s.
  const MAX_LABELS = 128;

  /** Size a heatmap from its token count so the colour bar sits right beside the map. */
  RG.fitHeatmap = function (fig, nq, nk, div) {
    const room = div && div.clientWidth ? div.clientWidth : null;
    const size = RG.heatmapSize(Math.max(nq, nk), room);
    fig.layout.width = size.width;
    fig.layout.height = size.height;
    // The tokens as labels, in a font that fits its cell.
    for (const axis of [fig.layout.xaxis, fig.layout.yaxis]) {
      axis.tickmode = "array";
      axis.tickfont = { size: size.font };
      axis.automargin = true;
      const step = Math.ceil(axis.tickvals.length / MAX_LABELS); // heatmap.js sets them
      if (step > 1) {
        axis.tickvals = axis.tickvals.filter((_, i) => i % step === 0);
        axis.ticktext = axis.ticktext.filter((_, i) => i % step === 0);
      }
    }
  };

  /** The submission maps' spec: the colour range leaves special-token columns out
   * (analysis.submission_range), so the outlined cells can be told apart. */
  RG.submissionSpec = function (t, seqK) {
    const spec = RG.clone(RG.page.figures.attention);
    const special = (j) => !!seqK.special[t.k.positions[j]];
    const allSpecial = t.k.positions.every((_, j) => special(j));
    const empty = !t.rows.length || !t.rows[0].length;
    const top = empty ? 1 : RG.largest(t.rows, (i, j) => !allSpecial && special(j));
    spec.data[0].zmin = 0;
    spec.data[0].zmax = Math.max(top, 0.01);
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

  /** Draw everything, then show only `anchor`'s submission block, maps sized for A4;
   * returns what gives the page back (print.js calls it after printing). */
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
    return RG.endSubmissionPrint;
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
})();
