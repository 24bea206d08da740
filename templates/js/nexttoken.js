/* The next-token view of causal models: a layers x tokens heatmap of the attention
 * from the last position (or the focus word) to every earlier token, averaged over
 * heads or for one head. */
"use strict";
(function () {
  const RG = window.reportgen;

  RG.registerView("next", async function (entry, root) {
    const next = entry.data.next;
    if (!next) return;
    const d = (await RG.decodedMaps(entry))[0];
    const seq = entry.data.seqs[d.meta.query_seq];
    const source = next.sources[RG.controlValue(root, "source", 0)];
    const head = Math.min(RG.controlValue(root, "head", -1), d.meta.heads - 1); // a per-layer measure: one
    const layers = Array.from({ length: d.meta.layers }, (_, l) => l);
    const rows = layers.map((l) =>
      RG.meanRow(head < 0 ? RG.layerAverage(d, l) : RG.headMatrix(d, l, head), source.positions),
    );
    // One pseudo-token per layer on the query axis, so the page's toggles (word level,
    // hide special tokens) apply to the key axis exactly as in the other views.
    const layerSeq = {
      tokens: layers.map((l) => "Layer " + (l + 1) + " [" + l + "]"),
      words: layers.map((l) => [l]),
      special: layers.map(() => false),
    };
    const t = RG.transform(rows, layerSeq, seq);
    const from = Math.max.apply(null, source.positions);
    t.q.positions = layers.map(() => from); // keys after the followed position are masked
    const what = head < 0 ? "average of " + d.meta.heads + " heads" : "Head " + (head + 1);
    const spec = RG.clone(RG.page.figures.attention);
    spec.layout.yaxis.title = { text: "Layer" };
    await RG.heatmap(root.querySelector('[data-plot="next"]'), t, "From " + source.label + " · " + what, true, spec);
  });
})();
