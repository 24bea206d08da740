/* The head atlas page's views (reportgen --atlas): one layers x heads grid per statistic
 * and the coreference grid (a diverging scale about chance, each head's interval on
 * hover), the heads laid out by likeness (a few named, the rest on hover), and the
 * chosen head's values and example sentences. They register like the report's (RG.registerView, keyed by
 * data-view) and main.js draws them (its "atlas" entry), lazily as the report's. The
 * page's one data block is rg-data-rg-main, an AtlasRecord (format: reportgen/store.py);
 * text reaches the page only via textContent. */
"use strict";
(function () {
  const RG = window.reportgen;
  const STAT_TITLES = {
    to_first: "to_first",
    to_special: "to_special",
    to_punct: "to_punct",
    to_self: "to_self",
    to_prev: "to_prev",
    to_next: "to_next",
    entropy: "entropy (nats)",
    coref: "coreference accuracy",
  };
  const range = (n) => Array.from({ length: n }, (_, i) => i + 1);

  // Diverging (ColorBrewer RdBu, colour-blind safe): red below a random pick, white at
  // it, blue above, so 0.45 and 0.60 differ in hue and the baseline is visible.
  const DIVERGING = [
    [0, "#b2182b"],
    [0.25, "#ef8a62"],
    [0.5, "#f7f7f7"],
    [0.75, "#67a9cf"],
    [1, "#2166ac"],
  ];
  const fixed3 = (v) => v.toFixed(3);

  /** The coreference grid's trace settings: the colour range Python chose (symmetric
   * about chance, so chance sits at the scale's white middle) and each head's interval. */
  function corefScale(data) {
    const sc = data.coref_scale;
    return {
      zmin: sc.zmin,
      zmax: sc.zmax,
      zmid: sc.chance,
      colorscale: DIVERGING,
      text: sc.low.map((row, l) => row.map((lo, h) => fixed3(lo) + "–" + fixed3(sc.high[l][h]))),
      hovertemplate: "Layer %{y}, Head %{x}<br>accuracy = %{z:.3f} (95% interval %{text})<extra></extra>",
      colorbar: {
        tickvals: [sc.zmin, sc.chance, sc.zmax].filter((v) => v >= 0 && v <= 1),
        ticktext: [sc.zmin, sc.chance, sc.zmax]
          .filter((v) => v >= 0 && v <= 1)
          .map((v) => (v === sc.chance ? "chance " : "") + v.toFixed(2)),
      },
    };
  }

  function gridPlot(el, data, name, grid) {
    let zmax = 0;
    for (const row of grid) for (const v of row) zmax = Math.max(zmax, v);
    let trace = {
      type: "heatmap",
      z: grid,
      x: range(data.heads),
      y: range(data.layers),
      zmin: 0,
      zmax: Math.max(zmax, 1e-6),
      colorscale: "Viridis",
      hovertemplate: "Layer %{y}, Head %{x}<br>" + STAT_TITLES[name] + " = %{z:.3f}<extra></extra>",
    };
    if (name === "coref" && data.coref_scale) trace = Object.assign(trace, corefScale(data));
    const layout = {
      title: { text: STAT_TITLES[name], font: { size: 14 } },
      height: 80 + 26 * data.layers,
      margin: { l: 50, r: 10, t: 30, b: 40 },
      xaxis: { title: { text: "head" }, dtick: 1 },
      yaxis: { title: { text: "layer" }, dtick: 1, autorange: "reversed" },
    };
    return window.Plotly.newPlot(el, [trace], layout, { displayModeBar: false, responsive: true }).then(function () {
      el.on("plotly_click", function (ev) {
        const p = ev.points && ev.points[0];
        if (p) RG.chooseHead(p.y - 1, p.x - 1);
      });
    });
  }

  const headName = (sim, i) => "L" + (sim.layer[i] + 1) + "H" + (sim.head[i] + 1);

  /** Names on the map: the few heads Python chose, then the chosen head (boxed). Each
   * name sits out from the map's centre along its point's direction (the axes share a
   * scale), at alternating lengths, so names of nearby heads do not sit on each other. */
  function mapAnnotations(sim, chosen) {
    const n = sim.x.length;
    const cx = sim.x.reduce((a, b) => a + b, 0) / n;
    const cy = sim.y.reduce((a, b) => a + b, 0) / n;
    const note = function (i, k, isChosen) {
      const dx = sim.x[i] - cx;
      const dy = sim.y[i] - cy;
      const len = Math.hypot(dx, dy) || 1;
      const reach = isChosen ? 64 : k % 2 ? 42 : 26;
      return {
        x: sim.x[i],
        y: sim.y[i],
        text: headName(sim, i) + (isChosen ? " (chosen)" : ""),
        showarrow: true,
        arrowhead: isChosen ? 2 : 0,
        arrowwidth: 1,
        ax: (dx / len) * reach,
        ay: (-dy / len) * reach, // pixels grow downwards
        font: { size: isChosen ? 12 : 11 },
        bgcolor: isChosen ? "#fff" : "rgba(255,255,255,0.85)",
        bordercolor: isChosen ? "#3b0f70" : "rgba(0,0,0,0)",
      };
    };
    // The chosen head, if it is one of the named, is named once (as chosen).
    const notes = sim.labelled.filter((i) => i !== chosen).map((i, k) => note(i, k, false));
    if (chosen !== null && chosen >= 0 && chosen < n) notes.push(note(chosen, 0, true));
    return notes;
  }

  /** The head shown under "One head up close", as an index into the map's lists. */
  function chosenIndex(data) {
    const view = document.querySelector('[data-view="atlas-head"]');
    if (!view) return null;
    return RG.controlValue(view, "layer", 0) * data.heads + RG.controlValue(view, "head", 0);
  }

  function similarPlot(el, data) {
    const sim = data.similar;
    const groups = {};
    sim.label.forEach(function (label, i) {
      (groups[label] = groups[label] || []).push(i);
    });
    // Markers only: at 30 x 9 heads every name on the map would overlap; hover names them.
    const traces = Object.keys(groups).sort().map(function (label) {
      const idx = groups[label];
      return {
        type: "scatter",
        mode: "markers",
        name: label,
        x: idx.map((i) => sim.x[i]),
        y: idx.map((i) => sim.y[i]),
        text: idx.map(function (i) {
          const acc = data.coref ? " · accuracy " + fixed3(data.coref[sim.layer[i]][sim.head[i]]) : "";
          return headName(sim, i) + ": " + label + acc;
        }),
        customdata: idx.map((i) => [sim.layer[i], sim.head[i]]),
        marker: { size: sim.x.length > 100 ? 7 : 9, opacity: 0.85, line: { width: 0.5, color: "#fff" } },
        hovertemplate: "%{text}<extra></extra>",
      };
    });
    const layout = {
      height: 520,
      margin: { l: 40, r: 10, t: 10, b: 40 },
      xaxis: { zeroline: false, showticklabels: false },
      yaxis: { zeroline: false, showticklabels: false, scaleanchor: "x" },
      legend: { orientation: "h" },
      hovermode: "closest",
      annotations: mapAnnotations(sim, chosenIndex(data)),
    };
    return window.Plotly.newPlot(el, traces, layout, { displayModeBar: false, responsive: true }).then(function () {
      el.on("plotly_click", function (ev) {
        const p = ev.points && ev.points[0];
        if (p && p.customdata) RG.chooseHead(p.customdata[0], p.customdata[1]);
      });
    });
  }

  /** Name the chosen head on the map of heads, if the map is drawn (it draws lazily and
   * then reads the chosen head itself). */
  function markChosen(data) {
    const el = document.querySelector('[data-view="atlas-similar"]');
    if (!el || !data.similar || !el.data) return Promise.resolve();
    return window.Plotly.relayout(el, { annotations: mapAnnotations(data.similar, chosenIndex(data)) });
  }

  function valuesTable(root, data, l, h) {
    const body = root.querySelector("#rg-atlas-values tbody");
    body.textContent = "";
    for (const s of data.stats) {
      const tr = document.createElement("tr");
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = s.name;
      const td = document.createElement("td");
      td.textContent = s.grid ? s.grid[l][h].toFixed(3) : "n/a";
      tr.append(th, td);
      body.appendChild(tr);
    }
    if (data.coref) {
      const tr = document.createElement("tr");
      const th = document.createElement("th");
      th.textContent = "coreference accuracy";
      const td = document.createElement("td");
      const sc = data.coref_scale;
      td.textContent =
        fixed3(data.coref[l][h]) + (sc ? " (95% interval " + fixed3(sc.low[l][h]) + "–" + fixed3(sc.high[l][h]) + ")" : "");
      tr.append(th, td);
      body.appendChild(tr);
    }
  }

  async function drawExamples(view, data, layer, head) {
    const root = view.querySelector("#rg-atlas-examples");
    root.querySelectorAll(".rg-plot").forEach((el) => window.Plotly.purge(el));
    root.textContent = "";
    const rows = data.examples[layer + "-" + head] || [];
    const stat = data.signature[layer][head];
    if (!rows.length) {
      const p = document.createElement("p");
      p.className = "rg-caption";
      p.textContent = "No example sentence (none short enough, or the statistic never applied).";
      root.appendChild(p);
      return;
    }
    for (const [i, ex] of rows.entries()) {
      const sentence = data.sentences[ex.sentence];
      const fig = document.createElement("figure");
      fig.className = "rg-example";
      fig.dataset.example = String(i);
      const cap = document.createElement("figcaption");
      cap.textContent = sentence.source + ": " + stat + " = " + ex.value.toFixed(3) + " · " + sentence.tokens.join(" ");
      const plot = document.createElement("div");
      plot.className = "rg-plot";
      fig.append(cap, plot);
      root.appendChild(fig);
      // Tokens may repeat ("the" twice): category axes need distinct labels.
      const labels = sentence.tokens.map((t, j) => t + " ·" + j);
      // Each map on its own scale: a head's pattern shows even when its weights are small.
      let top = 0;
      for (const row of ex.map) for (const v of row) top = Math.max(top, v);
      await window.Plotly.newPlot(
        plot,
        [{ type: "heatmap", z: ex.map, x: labels, y: labels, zmin: 0, zmax: Math.max(top, 1e-6), colorscale: "Viridis",
           hovertemplate: "%{y} → %{x}: %{z:.3f}<extra></extra>" }],
        {
          height: Math.min(640, 160 + 16 * labels.length),
          margin: { l: 110, r: 10, t: 10, b: 110 },
          xaxis: { tickangle: -60, automargin: true, title: { text: "to" } },
          yaxis: { autorange: "reversed", automargin: true, title: { text: "from" } },
        },
        { displayModeBar: false, responsive: true },
      );
    }
  }

  RG.registerView("atlas-grid", function (entry, root) {
    const name = root.dataset.stat;
    const grid = name === "coref" ? entry.data.coref : (entry.data.stats.find((st) => st.name === name) || {}).grid;
    return grid ? gridPlot(root, entry.data, name, grid) : Promise.resolve();
  });

  RG.registerView("atlas-similar", function (entry, root) {
    return entry.data.similar ? similarPlot(root, entry.data) : Promise.resolve();
  });

  /** The chosen head (the Layer and Head selects): its label, values and example maps;
   * the label table of the same section marks it. */
  RG.registerView("atlas-head", function (entry, root) {
    const data = entry.data;
    const layer = RG.controlValue(root, "layer", 0);
    const head = RG.controlValue(root, "head", 0);
    root.querySelector("#rg-atlas-label").textContent =
      "Layer " + (layer + 1) + ", Head " + (head + 1) + ": " + data.labels[layer][head];
    entry.section.querySelectorAll(".rg-labels td.rg-chosen").forEach((td) => td.classList.remove("rg-chosen"));
    const cell = entry.section.querySelector('.rg-labels td[data-layer="' + layer + '"][data-head="' + head + '"]');
    if (cell) cell.classList.add("rg-chosen");
    valuesTable(root, data, layer, head);
    return Promise.all([markChosen(data), drawExamples(root, data, layer, head)]);
  });

  /** Choose a head from a grid or the label table: set the head view's selects and let
   * their change redraw it (main.js wires every selector one way), then scroll to it. */
  RG.chooseHead = function (layer, head) {
    const view = document.querySelector('[data-view="atlas-head"]');
    view.querySelector('[data-control="layer"]').value = String(layer);
    const select = view.querySelector('[data-control="head"]');
    select.value = String(head);
    select.dispatchEvent(new Event("change"));
    view.closest("section").scrollIntoView({ behavior: "smooth", block: "start" });
  };

  /** main.js's atlas entry: the label table's cells choose their head. */
  RG.setupAtlas = function () {
    document.querySelectorAll(".rg-labels td[data-layer]").forEach(function (td) {
      td.addEventListener("click", () => RG.chooseHead(+td.dataset.layer, +td.dataset.head));
    });
  };
})();
