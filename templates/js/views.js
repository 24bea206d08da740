/* A sentence's views: one head, the head average, attention rollout, and the grids that
 * Python drew whole (focus scores, entropy). */
"use strict";
(function () {
  const RG = window.reportgen;

  /** Encoder and decoder may differ in depth or width: fit a select to the drawn map. */
  function fitSelect(root, name, count) {
    const select = root.querySelector('[data-control="' + name + '"]');
    if (select) RG.fillSelect(select, RG.indexLabels(count));
  }

  /** The maps being shown: `{meta, layers, heads, at(layer, head)}`, where at() gives
   * one head's map after the page's toggles ({rows, q, k}, rows [n_query][n_key]), so
   * every view that shows heads reads the same [layers][heads] maps: map `mi`'s attention
   * weights, or the first map's measure under the Measure choice (store.js decodedMaps),
   * or a long page's pooled overview (long.js). */
  RG.shownMaps = async function (entry, mi) {
    if (entry.data.long) return RG.longShownMaps(entry, mi); // long.js
    const d = (await RG.decodedMaps(entry))[mi];
    const [sq, sk] = seqsOf(entry, d);
    return {
      meta: d.meta,
      layers: d.meta.layers,
      heads: d.meta.heads,
      at: (layer, head) => RG.transform(RG.headMatrix(d, layer, head), sq, sk),
    };
  };

  function seqsOf(entry, d) {
    return [entry.data.seqs[d.meta.query_seq], entry.data.seqs[d.meta.key_seq]];
  }

  RG.registerView("head", async function (entry, root) {
    const maps = await RG.decodedMaps(entry);
    const shown = await RG.shownMaps(entry, RG.controlValue(root, "map", 0));
    const m = shown.meta;
    fitSelect(root, "layer", shown.layers);
    fitSelect(root, "head", shown.heads);
    const layer = RG.controlValue(root, "layer", RG.page.start_layer);
    const head = RG.controlValue(root, "head", RG.page.start_head);
    const mi = RG.controlValue(root, "map", 0);
    const measure = RG.measureTitle(entry, mi);
    const where = measure.includes("per layer") ? "Layer " + (layer + 1) : "Layer " + (layer + 1) + ", Head " + (head + 1);
    const title = where + (maps.length > 1 ? " · " + maps[mi].meta.name.split(" · ")[0] : "") + measure;
    await RG.heatmap(root.querySelector('[data-plot="head"]'), shown.at(layer, head), title, m.causal);
  });

  RG.registerView("average", async function (entry, root) {
    const maps = await RG.decodedMaps(entry);
    const d = maps[RG.controlValue(root, "map", 0)];
    fitSelect(root, "layer", d.meta.layers);
    const layer = RG.controlValue(root, "layer", RG.page.start_layer);
    const [sq, sk] = seqsOf(entry, d);
    const t = RG.transform(layer < 0 ? RG.allLayersAverage(d) : RG.layerAverage(d, layer), sq, sk);
    const entropy = RG.rowEntropy(t.rows);
    const n = t.rows.length ? t.rows[0].length : 1;
    root.querySelector("[data-entropy]").textContent =
      "entropy of this averaged map " + entropy.toFixed(3) + " nats (" +
      (n > 1 ? entropy / Math.log(n) : 0).toFixed(3) + " of ln n); the verdicts use each head's own";
    const mi = RG.controlValue(root, "map", 0);
    const what = layer < 0
      ? "All " + d.meta.layers + " layers, average of " + d.meta.layers * d.meta.heads + (d.meta.heads > 1 ? " heads" : " layers")
      : "Layer " + (layer + 1) + (d.meta.heads > 1 ? ", average of " + d.meta.heads + " heads" : "");
    const title = what + (maps.length > 1 ? " · " + d.meta.name.split(" · ")[0] : "") + RG.measureTitle(entry, mi);
    await RG.heatmap(root.querySelector('[data-plot="average"]'), t, title, d.meta.causal);
  });

  /** Rollout through `layer` (0-based), computed up from layer 0 once per sentence and
   * measure. */
  function rolloutThrough(entry, decoded, layer) {
    entry.rollout = entry.rollout || {};
    const cache = (entry.rollout[RG.state.measure] = entry.rollout[RG.state.measure] || []);
    for (let l = cache.length; l <= layer; l++) {
      cache.push(RG.rolloutStep(l ? cache[l - 1] : null, RG.layerAverage(decoded, l)));
    }
    return cache[layer];
  }

  RG.registerView("rollout", async function (entry, root) {
    const d = (await RG.decodedMaps(entry))[0];
    if (d.meta.query_seq !== d.meta.key_seq) return; // rollout needs a square self-attention map
    const layer = RG.controlValue(root, "layer", d.meta.layers - 1);
    const seq = entry.data.seqs[d.meta.query_seq];
    const t = RG.transform(rolloutThrough(entry, d, layer), seq, seq);
    const title = "Rollout through layers 1-" + (layer + 1) + RG.measureTitle(entry, 0);
    await RG.heatmap(root.querySelector('[data-plot="rollout"]'), t, title, d.meta.causal);
  });

  const pythonFigures = (entry, root) => RG.drawFigures(root, entry.data.figures);
  /** The focus grids and ranked table of the Measure choice's variant (the weights' where
   * the section has no variant for it); the others stay hidden and undrawn. */
  RG.registerView("focus", function (entry, root) {
    const variants = Array.from(root.querySelectorAll("[data-measure-variant]"));
    if (!variants.length) return Promise.resolve(); // no candidates: nothing to draw
    const shown = variants.find((v) => v.dataset.measureVariant === RG.state.measure) || variants[0];
    for (const v of variants) v.hidden = v !== shown;
    return RG.drawFigures(shown, entry.data.figures);
  });
  RG.registerView("stats", pythonFigures);
})();
