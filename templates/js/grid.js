/* The grid of all heads (bertviz's "model view"): every layer x head of one sentence as a
 * small map, drawn to ONE canvas per grid. It reads the maps every other view reads
 * (RG.shownMaps: the page's toggles applied; a long page's pooled overview), takes each
 * head's entropy from the page (Python's), opens a clicked head in the one-head heatmap
 * and the head view, and, with a set of query tokens chosen in its token strip, shows
 * each head's attention from that set (the summed rows) as a bar strip per head. */
"use strict";
(function () {
  const RG = window.reportgen;
  const SCALE = 2; // canvas pixels per CSS pixel: sharp on screen and in print
  const GAP = 2; // CSS px between cells
  const LABEL = 26; // CSS px for the layer numbers (left) and head numbers (top)
  const MIN_CELL = 24;
  const MAX_CELL = 96;
  const TALLEST = 2000; // CSS px: a deep model's grid gets smaller cells, not a taller page
  const MASKED = [217, 217, 217]; // the heatmaps' grey (figures.py plot_bgcolor)
  const EMPTY = [244, 245, 247];

  /** The page's heatmap colour scale (from Python's spec), as [stop, [r, g, b]]. */
  function colourStops() {
    return RG.page.figures.attention.data[0].colorscale.map(([at, hex]) => [
      at,
      [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)),
    ]);
  }

  function colourAt(stops, v) {
    const x = Math.min(Math.max(v, 0), 1);
    let k = 1;
    while (k < stops.length - 1 && stops[k][0] < x) k++;
    const [a, ca] = stops[k - 1];
    const [b, cb] = stops[k];
    const f = b > a ? (x - a) / (b - a) : 0;
    return ca.map((c, i) => Math.round(c + f * (cb[i] - c)));
  }

  /** For `n` values drawn into `px` pixels: which values each pixel bin covers. */
  function bins(n, px) {
    const count = Math.min(n, px);
    return Array.from({ length: count }, (_, b) => [Math.floor((b * n) / count), Math.floor(((b + 1) * n) / count)]);
  }

  /** One head's map pooled to the cell's bins: the mean of each bin's visible cells
   * (null where all are masked), and the largest bin outside the sink columns. */
  function pooled(t, causal, qb, kb, leaveOutSinks) {
    const values = [];
    for (const [i0, i1] of qb) {
      const row = [];
      for (const [j0, j1] of kb) {
        let sum = 0;
        let count = 0;
        for (let i = i0; i < i1; i++) {
          for (let j = j0; j < j1; j++) {
            if (causal && t.k.positions[j] > t.q.positions[i]) continue;
            sum += t.rows[i][j];
            count++;
          }
        }
        row.push(count ? sum / count : null);
      }
      values.push(row);
    }
    const sinkBin = (b) => Array.from({ length: kb[b][1] - kb[b][0] }, (_, d) => kb[b][0] + d).some((j) => RG.isSink(t, j));
    const top = RG.largest(values, leaveOutSinks ? (i, b) => sinkBin(b) : null);
    return { values: values, top: top };
  }

  /** Each head's attention from the chosen query rows: their rows summed (drawn axis). */
  function fromRows(t, rows) {
    const out = new Array(t.k.labels.length).fill(0);
    for (const i of rows) t.rows[i].forEach((v, j) => (out[j] += v));
    return out;
  }

  function paint(image, x0, y0, w, h, rgb) {
    for (let y = y0; y < y0 + h; y++) {
      let p = (y * image.width + x0) * 4;
      for (let x = 0; x < w; x++, p += 4) {
        image.data[p] = rgb[0];
        image.data[p + 1] = rgb[1];
        image.data[p + 2] = rgb[2];
        image.data[p + 3] = 255;
      }
    }
  }

  /** Geometry of a grid of `layers` x `heads` cells in `room` CSS px. */
  function layout(room, layers, heads) {
    const fit = Math.floor((room - LABEL) / heads) - GAP;
    const cell = Math.max(MIN_CELL, Math.min(MAX_CELL, fit, Math.floor((TALLEST - LABEL) / layers) - GAP));
    const step = cell + GAP;
    return { cell: cell, step: step, width: LABEL + heads * step, height: LABEL + layers * step };
  }

  /** The head's entropy as the page has it (Python's; never computed here): a long page's
   * map record, a short page's entropy grid (of the first map). */
  function entropyText(entry, mi, layer, head) {
    if (entry.data.long) return "entropy " + entry.data.maps[mi].entropy[layer][head].toFixed(3) + " nats";
    const fig = entry.data.figures.entropy.data[0];
    if (mi !== 0) return "entropy: given for the first attention map only";
    return "entropy " + fig.z[layer][head].toFixed(3) + " nats (" + fig.text[layer][head] + ")";
  }

  /** The chosen query set: original positions (short pages) or blocks (long pages), so a
   * choice survives the word-level and special-token toggles. Per map. */
  function selection(entry, mi) {
    if (!entry.gridSelection || entry.gridSelection.mi !== mi) entry.gridSelection = { mi: mi, members: new Set() };
    return entry.gridSelection;
  }

  const isChosen = (sel, axis, i) => axis.members[i].some((p) => sel.members.has(p));

  /** Open `layer`, `head` in the section's one-head heatmap (or a long page's overview)
   * and its head view: set their selects and let the change redraw them, as the atlas's
   * RG.chooseHead does; the head view has no select of ours, so it is told and redrawn. */
  RG.openHead = function (entry, layer, head) {
    const one = entry.section.querySelector('[data-view="head"], [data-view="long"]');
    if (one) {
      one.querySelector('[data-control="layer"]').value = String(layer);
      const select = one.querySelector('[data-control="head"]');
      select.value = String(head);
      select.dispatchEvent(new Event("change")); // main.js redraws the view
      one.scrollIntoView({ behavior: "smooth", block: "start" });
    }
    const headView = entry.section.querySelector('[data-view="headview"]');
    if (headView) {
      entry.headViewChoice = { layer: layer, head: head }; // bertviz.js reads it
      RG.drawView(entry, headView).catch(RG.fail); // lazy.js
    }
  };

  function tokenStrip(entry, root, mi, axis) {
    const strip = root.querySelector("[data-grid-tokens]");
    const sel = selection(entry, mi);
    strip.replaceChildren(
      ...axis.tags.map(function (tag, i) {
        const b = document.createElement("button");
        b.type = "button";
        b.className = "rg-grid-token";
        b.textContent = tag;
        b.title = axis.labels[i];
        b.setAttribute("aria-pressed", String(isChosen(sel, axis, i)));
        b.addEventListener("click", function (ev) {
          const members = axis.members[i];
          const alone = !ev.shiftKey && sel.members.size === members.length && members.every((p) => sel.members.has(p));
          if (!ev.shiftKey) sel.members.clear();
          const on = ev.shiftKey ? !isChosen(sel, axis, i) : !alone;
          members.forEach((p) => (on ? sel.members.add(p) : sel.members.delete(p)));
          RG.drawView(entry, root).catch(RG.fail);
        });
        return b;
      }),
    );
  }

  RG.registerView("grid", async function (entry, root) {
    const mi = RG.controlValue(root, "map", 0);
    const shown = await RG.shownMaps(entry, mi); // views.js: the maps every view shows
    const L = shown.layers;
    const H = shown.heads;
    const causal = shown.meta.causal;
    const first = shown.at(0, 0);
    tokenStrip(entry, root, mi, first.q);
    const sel = selection(entry, mi);
    const chosen = first.q.labels.map((_, i) => i).filter((i) => isChosen(sel, first.q, i));
    const g = layout(root.clientWidth || 900, L, H);
    const canvas = root.querySelector("canvas[data-grid-canvas]");
    canvas.width = g.width * SCALE;
    canvas.height = g.height * SCALE;
    canvas.style.width = g.width + "px";
    canvas.style.height = g.height + "px";
    // Print: as wide as the page allows, no taller than one page (report.css).
    canvas.style.setProperty("--rg-grid-width", g.width + "px");
    canvas.style.setProperty("--rg-grid-ratio", String(g.width / g.height));
    const ctx = canvas.getContext("2d");
    const image = ctx.createImageData(canvas.width, canvas.height);
    image.data.fill(255);
    const px = g.cell * SCALE;
    const stops = colourStops();
    const leaveOut = RG.state.leaveOutSinks;
    const origin = (l, h) => [(LABEL + h * g.step) * SCALE, (LABEL + l * g.step) * SCALE];
    let top = 0;
    if (chosen.length) {
      // One scale for every head, so the heads that look from the set to a word stand out.
      const strips = [];
      for (let l = 0; l < L; l++) {
        for (let h = 0; h < H; h++) {
          const t = shown.at(l, h);
          const v = fromRows(t, chosen);
          top = Math.max(top, RG.largest([v], leaveOut ? (_, j) => RG.isSink(t, j) : null));
          strips.push(v);
        }
      }
      const kb = bins(first.k.labels.length, px);
      strips.forEach(function (v, c) {
        const [x0, y0] = origin(Math.floor(c / H), c % H);
        paint(image, x0, y0, px, px, EMPTY);
        kb.forEach(function ([j0, j1], b) {
          const peak = Math.max(...v.slice(j0, j1));
          const x = x0 + Math.floor((b * px) / kb.length);
          const w = Math.max(1, x0 + Math.floor(((b + 1) * px) / kb.length) - x);
          const hgt = Math.round(Math.min(peak / Math.max(top, 1e-9), 1) * px);
          if (hgt > 0) paint(image, x, y0 + px - hgt, w, hgt, colourAt(stops, peak / Math.max(top, 1e-9)));
        });
      });
    } else {
      // Each head on its own scale, 0 to its largest weight: its pattern shows at a glance.
      const qb = bins(first.q.labels.length, px);
      const kb = bins(first.k.labels.length, px);
      for (let l = 0; l < L; l++) {
        for (let h = 0; h < H; h++) {
          const p = pooled(shown.at(l, h), causal, qb, kb, leaveOut);
          const [x0, y0] = origin(l, h);
          p.values.forEach(function (row, bi) {
            const y = y0 + Math.floor((bi * px) / qb.length);
            const hgt = y0 + Math.floor(((bi + 1) * px) / qb.length) - y;
            row.forEach(function (v, bj) {
              const x = x0 + Math.floor((bj * px) / kb.length);
              const w = x0 + Math.floor(((bj + 1) * px) / kb.length) - x;
              paint(image, x, y, w, hgt, v === null ? MASKED : colourAt(stops, v / Math.max(p.top, 1e-9)));
            });
          });
        }
      }
    }
    ctx.putImageData(image, 0, 0);
    ctx.fillStyle = "#5b6270";
    ctx.font = 11 * SCALE + "px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    for (let h = 0; h < H; h++) ctx.fillText(String(h + 1), (LABEL + h * g.step + g.cell / 2) * SCALE, (LABEL / 2) * SCALE);
    for (let l = 0; l < L; l++) ctx.fillText(String(l + 1), (LABEL / 2) * SCALE, (LABEL + l * g.step + g.cell / 2) * SCALE);
    // What the grid shows, for the caption, for hover and for tests.
    Object.assign(root.dataset, {
      gridMode: chosen.length ? "from" : "maps",
      gridChosen: chosen.join(","),
      gridLayers: String(L),
      gridHeads: String(H),
      gridCell: String(g.cell),
      gridStep: String(g.step),
      gridLabel: String(LABEL),
    });
    const words = chosen.map((i) => "‘" + first.q.tags[i] + "’").join(" + ");
    root.querySelector("[data-grid-selection]").textContent = chosen.length
      ? "Each head's attention from " + words + " (rows summed): one bar per key" +
        (entry.data.long ? " block" : "") + ", every head on one scale, 0 to " + top.toFixed(3) +
        (leaveOut ? " (sink columns left out of the scale)" : "") + ". Click the token again to see the maps."
      : "Each head's map, key across and query down, on its own scale from 0 to its largest weight" +
        (leaveOut ? " outside the sink columns" : "") + (entry.data.long ? " (pooled blocks)" : "") + ".";
    wireCanvas(entry, root, canvas, shown, mi);
  });

  /** Hover names the head (and the key under the pointer); a click opens the head. The
   * listeners are wired once and read what the last drawing left. */
  function wireCanvas(entry, root, canvas, shown, mi) {
    canvas.rgShown = shown;
    canvas.rgShownMap = mi;
    if (canvas.dataset.wired) return;
    canvas.dataset.wired = "1";
    const at = function (ev) {
      const box = canvas.getBoundingClientRect();
      const k = box.width / (+root.dataset.gridLabel + +root.dataset.gridHeads * +root.dataset.gridStep);
      const x = (ev.clientX - box.left) / k - +root.dataset.gridLabel;
      const y = (ev.clientY - box.top) / k - +root.dataset.gridLabel;
      const step = +root.dataset.gridStep;
      const h = Math.floor(x / step);
      const l = Math.floor(y / step);
      if (x < 0 || y < 0 || h >= +root.dataset.gridHeads || l >= +root.dataset.gridLayers) return null;
      return { layer: l, head: h, fx: (x - h * step) / +root.dataset.gridCell, fy: (y - l * step) / +root.dataset.gridCell };
    };
    const readout = root.querySelector("[data-grid-hover]");
    canvas.addEventListener("mousemove", function (ev) {
      const p = at(ev);
      if (!p || p.fx > 1 || p.fy > 1) {
        readout.textContent = "";
        return;
      }
      const s = canvas.rgShown;
      const t = s.at(p.layer, p.head);
      const j = Math.min(Math.floor(p.fx * t.k.labels.length), t.k.labels.length - 1);
      let where;
      if (root.dataset.gridMode === "from") {
        const rows = root.dataset.gridChosen.split(",").map(Number);
        where = "→ " + t.k.labels[j] + ": " + fromRows(t, rows)[j].toFixed(3);
      } else {
        const i = Math.min(Math.floor(p.fy * t.q.labels.length), t.q.labels.length - 1);
        where = t.q.labels[i] + " → " + t.k.labels[j] + ": " + t.rows[i][j].toFixed(3);
      }
      readout.textContent = "Layer " + (p.layer + 1) + ", Head " + (p.head + 1) + " [index (" + p.layer + ", " + p.head +
        ")] · " + entropyText(entry, canvas.rgShownMap, p.layer, p.head) + " · " + where + " · click to open this head";
    });
    canvas.addEventListener("mouseleave", () => (readout.textContent = ""));
    canvas.addEventListener("click", function (ev) {
      const p = at(ev);
      if (p) RG.openHead(entry, p.layer, p.head);
    });
  }
})();
