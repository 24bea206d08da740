/* The lab views: Python-built grids (focus, entropy), attention rollout, minimal
 * pairs and the submission block. Registers hooks that report.js calls. */
"use strict";
(function () {
  const RG = (window.reportgen = window.reportgen || {});
  RG.sectionHooks = RG.sectionHooks || [];
  RG.sectionRenderers = RG.sectionRenderers || {};

  /** Draw every `[data-figure=name]` inside `root` from `figures[name]` (built in Python). */
  async function drawFigures(root, figures) {
    for (const div of root.querySelectorAll("[data-figure]")) {
      const fig = figures && figures[div.dataset.figure];
      if (!fig) continue;
      await Plotly.react(div, fig.data, fig.layout, { displaylogo: false, responsive: true });
    }
  }

  // ---------- rollout (Abnar & Zuidema 2020) ----------
  function matmul(a, b) {
    const n = a.length;
    const m = b[0].length;
    const out = [];
    for (let i = 0; i < n; i++) {
      const row = new Array(m).fill(0);
      const ai = a[i];
      for (let k = 0; k < b.length; k++) {
        const v = ai[k];
        if (v === 0) continue;
        const bk = b[k];
        for (let j = 0; j < m; j++) row[j] += v * bk[j];
      }
      out.push(row);
    }
    return out;
  }

  /** Cumulative rollout up to `layer` (0-based), cached per sentence. */
  RG.rollout = function (entry, decoded, layer) {
    entry.rolloutCache = entry.rolloutCache || [];
    const cache = entry.rolloutCache;
    for (let l = cache.length; l <= layer; l++) {
      const avg = RG.layerAverage(decoded, l);
      const a = avg.map(function (row, i) {
        const mixed = row.map((v, j) => 0.5 * v + (i === j ? 0.5 : 0));
        const total = mixed.reduce((x, y) => x + y, 0);
        return mixed.map((v) => v / total);
      });
      cache.push(l === 0 ? a : matmul(a, cache[l - 1]));
    }
    return cache[layer];
  };

  async function drawRollout(entry) {
    const root = entry.section.querySelector('[data-view="rollout"]');
    if (!root) return;
    const maps = await RG.decodedMaps(entry);
    const d = maps[0];
    if (d.meta.q !== d.meta.k) return; // rollout needs a square self-attention map
    const layer = RG.controlValue(root, "layer", d.meta.layers - 1);
    const seq = entry.data.seqs[d.meta.q];
    const t = RG.transform(RG.rollout(entry, d, layer), seq, seq);
    await RG.heatmap(root.querySelector('[data-plot="rollout"]'), t,
      "Rollout through layers 1-" + (layer + 1), d.meta.causal);
  }

  RG.sectionHooks.push(async function (entry) {
    await drawFigures(entry.section, entry.data.figures);
    await drawRollout(entry);
    const select = entry.section.querySelector('[data-view="rollout"] select');
    if (select && !select.dataset.wired) {
      select.dataset.wired = "1";
      select.addEventListener("change", () => drawRollout(entry).catch(RG.fail));
    }
  });

  // ---------- minimal pairs ----------
  function outline(axisQ, axisK, rowsAt, colsAt) {
    // Rectangles around the focus row(s) and candidate column(s), in drawn coordinates.
    const shapes = [];
    const span = function (idx) {
      const v = idx.filter((i) => i >= 0);
      return v.length ? [Math.min.apply(null, v) - 0.5, Math.max.apply(null, v) + 0.5] : null;
    };
    const r = span(rowsAt.map((p) => axisQ.at[p]));
    const c = span(colsAt.map((p) => axisK.at[p]));
    const line = { color: "#ff2d55", width: 3 };
    if (r) shapes.push({ type: "rect", xref: "x", yref: "y", x0: -0.5, x1: axisK.labels.length - 0.5, y0: r[0], y1: r[1], line: line });
    if (c) shapes.push({ type: "rect", xref: "x", yref: "y", x0: c[0], x1: c[1], y0: -0.5, y1: axisQ.labels.length - 0.5, line: line });
    return shapes;
  }

  function sideTransform(entry, decoded, layer, head) {
    const seq = entry.data.seqs[decoded.meta.q];
    return RG.transform(RG.headMatrix(decoded, layer, head), seq, entry.data.seqs[decoded.meta.k]);
  }

  /** A - B: token by token when the drawn axes match, else over aligned words. */
  function difference(pair, ea, eb, da, db, layer, head) {
    const ta = sideTransform(ea, da, layer, head);
    const tb = sideTransform(eb, db, layer, head);
    const sameShape = ta.rows.length === tb.rows.length && ta.rows[0].length === tb.rows[0].length;
    if (sameShape && ea.data.seqs[0].tokens.length === eb.data.seqs[0].tokens.length) {
      const label = (x, y) => (x === y ? x : x + " / " + y);
      return {
        t: { rows: ta.rows.map((row, i) => row.map((v, j) => v - tb.rows[i][j])), q: ta.q, k: ta.k },
        qLabels: ta.q.labels.map((x, i) => label(x, tb.q.labels[i])),
        kLabels: ta.k.labels.map((x, i) => label(x, tb.k.labels[i])),
      };
    }
    // Word level with specials as their own words; hidden specials are left out.
    const seqA = ea.data.seqs[0];
    const seqB = eb.data.seqs[0];
    const wa = RG.mergeGroups(RG.headMatrix(da, layer, head), seqA.words, seqA.words);
    const wb = RG.mergeGroups(RG.headMatrix(db, layer, head), seqB.words, seqB.words);
    const word = (seq, g) => g.map((i) => seq.tokens[i]).join("");
    const isSpecial = (seq, g) => g.length === 1 && seq.special[g[0]];
    const pairs = pair.data.alignment.filter(
      (p) => !(RG.state.hideSpecial && isSpecial(seqA, seqA.words[p[0]])),
    );
    const labels = pairs.map(function (p) {
      const x = word(seqA, seqA.words[p[0]]);
      const y = word(seqB, seqB.words[p[1]]);
      return x === y ? x : x + " / " + y;
    });
    const rows = pairs.map((pi) => pairs.map((pj) => wa[pi[0]][pj[0]] - wb[pi[1]][pj[1]]));
    const axis = { labels: labels, positions: labels.map((_, i) => i), at: [] };
    return { t: { rows: rows, q: axis, k: axis }, qLabels: labels, kLabels: labels };
  }

  async function drawPair(pair) {
    const root = pair.section;
    const ea = RG.sentences.get(pair.data.a);
    const eb = RG.sentences.get(pair.data.b);
    const da = (await RG.decodedMaps(ea))[0];
    const db = (await RG.decodedMaps(eb))[0];
    const view = root.querySelector('[data-view="pair"]');
    const layer = RG.controlValue(view, "layer", RG.page.startLayer);
    const head = RG.controlValue(view, "head", RG.page.startHead);
    const name = "Layer " + (layer + 1) + ", Head " + (head + 1);
    await RG.heatmap(view.querySelector('[data-plot="pair-a"]'), sideTransform(ea, da, layer, head), "A · " + name, da.meta.causal);
    await RG.heatmap(view.querySelector('[data-plot="pair-b"]'), sideTransform(eb, db, layer, head), "B · " + name, db.meta.causal);
    const diff = difference(pair, ea, eb, da, db, layer, head);
    // A symmetric range around the largest difference, so small differences still show.
    const spec = RG.clone(RG.page.figures.difference);
    let largest = 0;
    for (const row of diff.t.rows) for (const v of row) largest = Math.max(largest, Math.abs(v));
    spec.data[0].zmin = -Math.max(largest, 0.01);
    spec.data[0].zmax = Math.max(largest, 0.01);
    await RG.heatmap(view.querySelector('[data-plot="pair-diff"]'), diff.t, "A − B · " + name, false,
      spec, { qLabels: diff.qLabels, kLabels: diff.kLabels });
    await drawFigures(root, pair.data.figures);
    await drawSubmission(pair, ea, eb, da, db);
  }

  async function drawSubmission(pair, ea, eb, da, db) {
    const box = pair.section.querySelector('[data-view="submission"]');
    if (!box || !ea.data.focus || !eb.data.focus) return;
    const layer = pair.data.chosen[0];
    const head = pair.data.chosen[1];
    const expected = pair.data.expected || [0, 1];
    const sides = [
      [ea, da, "submit-a", expected[0], "A"],
      [eb, db, "submit-b", expected[1], "B"],
    ];
    for (const [entry, decoded, plot, cand, tag] of sides) {
      const focus = entry.data.focus;
      const t = sideTransform(entry, decoded, layer, head);
      const word = focus.candidates[cand].word;
      const title = tag + ": '" + focus.word + "' → '" + word + "' · Layer " + (layer + 1) + ", Head " + (head + 1);
      const spec = RG.submissionSpec ? RG.submissionSpec(t, entry.data.seqs[decoded.meta.k]) : null;
      await RG.heatmap(box.querySelector('[data-plot="' + plot + '"]'), t, title, decoded.meta.causal, spec, {
        shapes: outline(t.q, t.k, focus.positions, focus.candidates[cand].positions),
        filename: "attention-" + pair.section.id + "-" + tag + "-L" + (layer + 1) + "-H" + (head + 1),
      });
    }
  }

  RG.sectionRenderers["section.rg-pair"] = async function (pair) {
    if (!pair.wired) {
      pair.wired = true;
      pair.section.querySelectorAll('[data-view="pair"] select').forEach((el) =>
        el.addEventListener("change", () => drawPair(pair).catch(RG.fail)),
      );
    }
    await drawPair(pair);
  };
})();
