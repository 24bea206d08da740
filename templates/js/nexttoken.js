/* The next-token view of causal models: a layers x tokens heatmap of the attention
 * from the last position (or the focus word) to every earlier token, averaged over
 * heads or for one head. Registers a section hook that report.js calls. */
"use strict";
(function () {
  const RG = (window.reportgen = window.reportgen || {});
  RG.sectionHooks = RG.sectionHooks || [];

  function report(err) {
    if (RG.fail) RG.fail(err);
    else console.error("reportgen:", err);
  }

  /** Row of `rows` averaged over `positions` (the pieces of the followed word). */
  function meanRow(rows, positions) {
    const out = new Array(rows[0].length).fill(0);
    for (const p of positions) rows[p].forEach((v, j) => (out[j] += v / positions.length));
    return out;
  }

  async function drawNext(entry) {
    const root = entry.section.querySelector('[data-view="next"]');
    const next = entry.data.next;
    if (!root || !next) return;
    if (!root.dataset.rgWired) {
      root.dataset.rgWired = "1";
      root.querySelectorAll("select").forEach((el) =>
        el.addEventListener("change", () => drawNext(entry).catch(report)),
      );
    }
    const maps = await RG.decodedMaps(entry);
    const d = maps[0];
    const seq = entry.data.seqs[d.meta.q];
    const source = next.sources[RG.controlValue(root, "source", 0)];
    const head = RG.controlValue(root, "head", -1);
    const layers = Array.from({ length: d.meta.layers }, (_, l) => l);
    const rows = layers.map((l) =>
      meanRow(head < 0 ? RG.layerAverage(d, l) : RG.headMatrix(d, l, head), source.positions),
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
    const spec = JSON.parse(JSON.stringify(RG.page.figures.attention));
    spec.layout.yaxis.title = { text: "Layer" };
    const title = "From " + source.label + " · " + what;
    await RG.heatmap(root.querySelector('[data-plot="next"]'), t, title, true, spec);
  }

  RG.sectionHooks.push(drawNext);
})();
