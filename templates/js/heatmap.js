/* Drawing with Plotly: attention heatmaps filled from decoded rows, and the grids that
 * Python built whole (focus scores, entropy, winners). Only offline buttons. */
"use strict";
(function () {
  const RG = window.reportgen;

  /** Plotly reads a subset of HTML in labels; entities keep every token literal. */
  RG.plotText = function (s) {
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  };

  RG.clone = function (obj) {
    return JSON.parse(JSON.stringify(obj));
  };

  /** Plotly's config: the modebar keeps what works offline (PNG download, zoom, pan,
   * reset); no logo link, no cloud or Chart Studio button. */
  RG.plotConfig = function (filename) {
    const config = {
      displaylogo: false,
      showLink: false,
      showSendToCloud: false,
      showEditInChartStudio: false,
      responsive: true,
    };
    if (filename) config.toImageButtonOptions = { format: "png", filename: filename, scale: 2 };
    return config;
  };

  /** Draw rows `t` (from RG.transform) into `div`. `opts`: {shapes, filename, qLabels, kLabels}. */
  RG.heatmap = function (div, t, title, causal, spec, opts) {
    opts = opts || {};
    const fig = RG.clone(spec || RG.page.figures.attention);
    const nq = t.rows.length;
    const nk = nq ? t.rows[0].length : 0;
    const xs = Array.from({ length: nk }, (_, j) => j);
    const ys = Array.from({ length: nq }, (_, i) => i);
    const qLabels = (opts.qLabels || t.q.labels).map(RG.plotText);
    const kLabels = (opts.kLabels || t.k.labels).map(RG.plotText);
    const z = t.rows.map(function (row, i) {
      return row.map(function (v, j) {
        return causal && t.k.positions[j] > t.q.positions[i] ? null : v;
      });
    });
    const trace = fig.data[0];
    const leaveOutSinks = RG.state.leaveOutSinks; // the page's one sink control
    if (leaveOutSinks && trace.zmin === 0) {
      // The colour range leaves the sink columns out (RG.isSink; the title says so).
      const top = RG.largest(z, (i, j) => RG.isSink(t, j));
      if (top > 0) {
        trace.zmax = top;
        title += " · colour range without position 0";
      }
    }
    trace.z = z;
    trace.x = xs;
    trace.y = ys;
    if (nq * nk <= 65536) {
      trace.customdata = ys.map((i) => xs.map((j) => [qLabels[i], kLabels[j]]));
      trace.hovertemplate =
        "Query %{y}: %{customdata[0]}<br>Key %{x}: %{customdata[1]}<br>weight %{z:.3f}<extra></extra>";
    } else {
      trace.hovertemplate = "Query %{y} → Key %{x}<br>weight %{z:.3f}<extra></extra>";
    }
    fig.layout.title.text = RG.plotText(title); // titles hold user words (focus, candidates)
    fig.layout.xaxis.tickvals = xs;
    fig.layout.xaxis.ticktext = kLabels;
    fig.layout.yaxis.tickvals = ys;
    fig.layout.yaxis.ticktext = qLabels;
    RG.fitHeatmap(fig, nq, nk, div); // handin.js: size, font and which ticks are labelled
    const shapes = (fig.layout.shapes || []).concat(opts.shapes || []);
    // Sentence pairs: a line between segment A and segment B on each axis that has one.
    const edge = { color: "#e8590c", width: 2 };
    if (t.k.boundary !== undefined && t.k.boundary !== null) {
      const x = t.k.boundary - 0.5;
      shapes.push({ type: "line", xref: "x", yref: "y", x0: x, x1: x, y0: -0.5, y1: nq - 0.5, line: edge });
    }
    if (t.q.boundary !== undefined && t.q.boundary !== null) {
      const y = t.q.boundary - 0.5;
      shapes.push({ type: "line", xref: "x", yref: "y", x0: -0.5, x1: nk - 0.5, y0: y, y1: y, line: edge });
    }
    if (shapes.length) fig.layout.shapes = shapes;
    return Plotly.react(div, fig.data, fig.layout, RG.plotConfig(opts.filename));
  };

  /** Draw every `[data-figure=name]` inside `root` from `figures[name]` (built in Python). */
  RG.drawFigures = async function (root, figures) {
    for (const div of root.querySelectorAll("[data-figure]")) {
      const fig = figures && figures[div.dataset.figure];
      if (fig) await Plotly.react(div, fig.data, fig.layout, RG.plotConfig());
    }
  };
})();
