/* The head atlas page: inflate plotly.js, draw one layers x heads grid per statistic and
 * the coreference grid, and show any chosen head's values and example sentences.
 * Standalone (no report.js); data comes only from the JSON block, text via textContent. */
"use strict";
(function () {
  const dataBlock = document.getElementById("rg-atlas-data");
  if (!dataBlock) return; // the per-sentence report: nothing to do here
  const data = JSON.parse(dataBlock.textContent);
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
  const chosen = { layer: 0, head: 0 };

  function fail(err) {
    console.error("reportgen atlas:", err);
    const box = document.createElement("div");
    box.className = "rg-error";
    box.textContent = "This atlas could not draw a view: " + (err && err.message ? err.message : err);
    document.body.prepend(box);
  }

  async function inflate(b64) {
    if (typeof DecompressionStream === "undefined") {
      throw new Error("this browser cannot inflate the inlined plotly.js (no DecompressionStream); open the atlas in a current browser");
    }
    const bin = atob(b64.trim());
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new TextDecoder().decode(await new Response(stream).arrayBuffer());
  }

  async function loadLibraries() {
    const blocks = Array.from(document.querySelectorAll('script[type="application/x-reportgen-lib"]'));
    const sources = await Promise.all(blocks.map((el) => inflate(el.textContent)));
    for (const source of sources) {
      const script = document.createElement("script");
      script.textContent = source; // allowed by the page's CSP hash of this exact text
      document.head.appendChild(script);
    }
  }

  const range = (n) => Array.from({ length: n }, (_, i) => i + 1);

  function gridPlot(el, name, grid) {
    let zmax = 0;
    for (const row of grid) for (const v of row) zmax = Math.max(zmax, v);
    const trace = {
      type: "heatmap",
      z: grid,
      x: range(data.heads),
      y: range(data.layers),
      zmin: 0,
      zmax: name === "coref" ? 1 : Math.max(zmax, 1e-6),
      colorscale: "Viridis",
      hovertemplate: "Layer %{y}, Head %{x}<br>" + STAT_TITLES[name] + " = %{z:.3f}<extra></extra>",
    };
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
        if (p) choose(p.y - 1, p.x - 1, true);
      });
    });
  }

  function similarPlot(el, sim) {
    const groups = {};
    sim.label.forEach(function (label, i) {
      (groups[label] = groups[label] || []).push(i);
    });
    const traces = Object.keys(groups).sort().map(function (label) {
      const idx = groups[label];
      return {
        type: "scatter",
        mode: "markers+text",
        name: label,
        x: idx.map((i) => sim.x[i]),
        y: idx.map((i) => sim.y[i]),
        text: idx.map((i) => "L" + (sim.layer[i] + 1) + "H" + (sim.head[i] + 1)),
        customdata: idx.map((i) => [sim.layer[i], sim.head[i]]),
        textposition: "top center",
        textfont: { size: 9 },
        hovertemplate: "%{text}: " + label + "<extra></extra>",
      };
    });
    const layout = {
      height: 520,
      margin: { l: 40, r: 10, t: 10, b: 40 },
      xaxis: { zeroline: false, showticklabels: false },
      yaxis: { zeroline: false, showticklabels: false, scaleanchor: "x" },
      legend: { orientation: "h" },
    };
    return window.Plotly.newPlot(el, traces, layout, { displayModeBar: false, responsive: true }).then(function () {
      el.on("plotly_click", function (ev) {
        const p = ev.points && ev.points[0];
        if (p && p.customdata) choose(p.customdata[0], p.customdata[1], true).catch(fail);
      });
    });
  }

  function valuesTable() {
    const body = document.querySelector("#rg-atlas-values tbody");
    body.textContent = "";
    const l = chosen.layer;
    const h = chosen.head;
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
      td.textContent = data.coref[l][h].toFixed(3);
      tr.append(th, td);
      body.appendChild(tr);
    }
  }

  async function drawExamples() {
    const root = document.getElementById("rg-atlas-examples");
    root.querySelectorAll(".rg-plot").forEach((el) => window.Plotly.purge(el));
    root.textContent = "";
    const key = chosen.layer + "-" + chosen.head;
    const rows = data.examples[key] || [];
    const stat = data.signature[chosen.layer][chosen.head];
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

  function choose(layer, head, scroll) {
    chosen.layer = layer;
    chosen.head = head;
    document.getElementById("rg-atlas-layer").value = String(layer);
    document.getElementById("rg-atlas-head").value = String(head);
    document.getElementById("rg-atlas-label").textContent =
      "Layer " + (layer + 1) + ", Head " + (head + 1) + ": " + data.labels[layer][head];
    document.querySelectorAll(".rg-labels td.rg-chosen").forEach((td) => td.classList.remove("rg-chosen"));
    const cell = document.querySelector('.rg-labels td[data-layer="' + layer + '"][data-head="' + head + '"]');
    if (cell) cell.classList.add("rg-chosen");
    valuesTable();
    const section = document.getElementById("rg-head");
    section.dataset.rgRendered = "0";
    if (scroll) section.scrollIntoView({ behavior: "smooth", block: "start" });
    return drawExamples().then(function () {
      section.dataset.rgRendered = "1";
    });
  }

  async function main() {
    // The label table works before any library loads: the first screen needs no plotly.
    document.querySelectorAll(".rg-labels td[data-layer]").forEach(function (td) {
      td.addEventListener("click", () => choose(+td.dataset.layer, +td.dataset.head, true).catch(fail));
    });
    await loadLibraries();
    const pick = () =>
      choose(+document.getElementById("rg-atlas-layer").value, +document.getElementById("rg-atlas-head").value, false).catch(fail);
    document.getElementById("rg-atlas-layer").addEventListener("change", pick);
    document.getElementById("rg-atlas-head").addEventListener("change", pick);
    const plots = [];
    for (const s of data.stats) {
      const el = document.querySelector('[data-stat="' + s.name + '"]');
      if (el && s.grid) plots.push(gridPlot(el, s.name, s.grid));
    }
    const corefEl = document.querySelector('[data-stat="coref"]');
    if (corefEl && data.coref) plots.push(gridPlot(corefEl, "coref", data.coref));
    const similarEl = document.querySelector("[data-similar]");
    if (similarEl && data.similar) plots.push(similarPlot(similarEl, data.similar));
    await Promise.all(plots);
    await choose(0, 0, false);
    document.body.dataset.rgReady = "1";
  }

  main().catch(fail);
})();
