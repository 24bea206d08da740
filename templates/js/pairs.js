/* Minimal pairs: A and B side by side under one selector, their difference, and the
 * submission block's two outlined heatmaps. A pair entry's data is a PairRecord. */
"use strict";
(function () {
  const RG = window.reportgen;

  /** Rectangles around the focus row(s) and candidate column(s), in drawn coordinates. */
  function outline(axisQ, axisK, rowsAt, colsAt) {
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

  /** The two sentences of a pair, with their primary maps decoded: under the Measure
   * choice, or as weights (`weights`: the hand-in answer, which states weights). */
  async function sides(pair, weights) {
    const ea = RG.sections.get(pair.data.a);
    const eb = RG.sections.get(pair.data.b);
    const maps = weights ? RG.weightMaps : RG.decodedMaps;
    return [ea, (await maps(ea))[0], eb, (await maps(eb))[0]];
  }

  function sideTransform(entry, decoded, layer, head) {
    const seqs = entry.data.seqs;
    return RG.transform(RG.headMatrix(decoded, layer, head), seqs[decoded.meta.query_seq], seqs[decoded.meta.key_seq]);
  }

  const both = (x, y) => (x === y ? x : x + " / " + y);

  /** A - B: token by token when the drawn axes match, else over aligned words. */
  function difference(pair, ea, eb, da, db, layer, head) {
    const ta = sideTransform(ea, da, layer, head);
    const tb = sideTransform(eb, db, layer, head);
    const sameShape = ta.rows.length === tb.rows.length && ta.rows[0].length === tb.rows[0].length;
    if (sameShape && ea.data.seqs[0].tokens.length === eb.data.seqs[0].tokens.length) {
      return {
        t: { rows: RG.subtract(ta.rows, tb.rows), q: ta.q, k: ta.k },
        qLabels: ta.q.labels.map((x, i) => both(x, tb.q.labels[i])),
        kLabels: ta.k.labels.map((x, i) => both(x, tb.k.labels[i])),
      };
    }
    // Word level with specials as their own words; hidden specials are left out.
    const seqA = ea.data.seqs[0];
    const seqB = eb.data.seqs[0];
    const isSpecial = (seq, g) => g.length === 1 && seq.special[g[0]];
    const alignment = pair.data.alignment.filter(
      (p) => !(RG.state.hideSpecial && isSpecial(seqA, seqA.words[p[0]])),
    );
    const word = (seq, g) => g.map((i) => seq.tokens[i]).join("");
    const labels = alignment.map((p) => both(word(seqA, seqA.words[p[0]]), word(seqB, seqB.words[p[1]])));
    const rows = RG.alignedDifference(RG.headMatrix(da, layer, head), seqA, RG.headMatrix(db, layer, head), seqB, alignment);
    const axis = { labels: labels, positions: labels.map((_, i) => i), at: [] };
    return { t: { rows: rows, q: axis, k: axis }, qLabels: labels, kLabels: labels };
  }

  RG.registerView("pair", async function (pair, root) {
    const [ea, da, eb, db] = await sides(pair);
    const layer = RG.controlValue(root, "layer", RG.page.start_layer);
    // A per-layer measure has one "head": the layer's map whatever head is chosen.
    const head = Math.min(RG.controlValue(root, "head", RG.page.start_head), da.meta.heads - 1);
    const measure = RG.measureTitle(ea, 0);
    const name = (da.meta.heads > 1 ? "Layer " + (layer + 1) + ", Head " + (head + 1) : "Layer " + (layer + 1)) + measure;
    await RG.heatmap(root.querySelector('[data-plot="pair-a"]'), sideTransform(ea, da, layer, head), "A · " + name, da.meta.causal);
    await RG.heatmap(root.querySelector('[data-plot="pair-b"]'), sideTransform(eb, db, layer, head), "B · " + name, db.meta.causal);
    const diff = difference(pair, ea, eb, da, db, layer, head);
    // A symmetric range around the largest difference, so small differences still show.
    const spec = RG.clone(RG.page.figures.difference);
    const largest = RG.largest(diff.t.rows, null, true);
    spec.data[0].zmin = -Math.max(largest, 0.01);
    spec.data[0].zmax = Math.max(largest, 0.01);
    await RG.heatmap(root.querySelector('[data-plot="pair-diff"]'), diff.t, "A − B · " + name, false,
      spec, { qLabels: diff.qLabels, kLabels: diff.kLabels });
    await RG.drawFigures(root, pair.data.figures);
  });

  RG.registerView("submission", async function (pair, root) {
    const [ea, da, eb, db] = await sides(pair, true);
    if (!ea.data.focus || !eb.data.focus) return;
    const [layer, head] = pair.data.chosen;
    const [expectA, expectB] = pair.data.expected; // the answers' candidate indices
    // The query: the focus word, or where a decoder can see the difference (--focus-at).
    const [rowsA, rowsB] = pair.data.query_rows;
    const [wordA, wordB] = pair.data.query_words;
    const rows = [
      [ea, da, "submit-a", expectA, "A", rowsA, wordA],
      [eb, db, "submit-b", expectB, "B", rowsB, wordB],
    ];
    for (const [entry, decoded, plot, cand, tag, queryRows, queryWord] of rows) {
      const focus = entry.data.focus;
      const t = sideTransform(entry, decoded, layer, head);
      const word = focus.candidates[cand].word;
      const title = tag + ": '" + queryWord + "' → '" + word + "' · Layer " + (layer + 1) + ", Head " + (head + 1);
      const spec = RG.submissionSpec(t, entry.data.seqs[decoded.meta.key_seq]); // handin.js
      await RG.heatmap(root.querySelector('[data-plot="' + plot + '"]'), t, title, decoded.meta.causal, spec, {
        shapes: outline(t.q, t.k, queryRows, focus.candidates[cand].positions),
        filename: "attention-" + pair.section.id + "-" + tag + "-L" + (layer + 1) + "-H" + (head + 1),
      });
    }
  });
})();
