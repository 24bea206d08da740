/* The long-input view (format: LongSentenceRecord in reportgen/store.py): one head's
 * block-pooled overview, labelled with its blocks' token ranges, and its exact rows at
 * token resolution, with a close-up on any block of the text. A colour scale that
 * leaves position 0 out of its range shows what attention sinks hide. Only the shown
 * head is drawn; a section decodes its overview and rows once (blocks^2 and a few rows
 * of n values per head), never a full n x n map. */
"use strict";
(function () {
  const RG = window.reportgen;

  /** A section's maps, decoded once: {meta, overview: Float32Array, rows: [Float32Array]}. */
  async function decodedLong(entry) {
    if (!entry.long) {
      entry.long = Promise.all(
        entry.data.maps.map(async function (m) {
          const overview = await RG.decodeMap({ data: m.overview, scale: m.scale });
          const rows = await Promise.all(m.rows.map((r) => RG.decodeMap({ data: r.data, scale: r.scale })));
          return { meta: m, overview: overview.values, rows: rows.map((r) => r.values) };
        }),
      );
    }
    return entry.long;
  }

  /** Refill a select with `labels` (values 0..n-1) when its list changed; keep the choice. */
  function fillSelect(root, name, labels, key) {
    const select = root.querySelector('[data-control="' + name + '"]');
    if (!select || select.dataset.filledFor === key) return;
    const keep = Math.min(Math.max(+select.value || 0, 0), labels.length - 1);
    select.replaceChildren(
      ...labels.map(function (text, i) {
        const o = document.createElement("option");
        o.value = String(i);
        o.textContent = text;
        return o;
      }),
    );
    select.value = String(Math.max(keep, 0));
    select.dataset.filledFor = key;
  }

  function range(block) {
    return block[1] - block[0] > 1 ? block[0] + "–" + (block[1] - 1) : String(block[0]);
  }

  function blockText(block, tokens) {
    const first = tokens[block[0]];
    const last = tokens[block[1] - 1];
    return "tokens " + range(block) + " (" + (block[1] - block[0] > 1 ? first + " … " + last : first) + ")";
  }

  function drawOverview(div, d, seqs, layer, head, leaveOutFirst) {
    const m = d.meta;
    const qb = m.query_blocks;
    const kb = m.key_blocks;
    const qTokens = seqs[m.query_seq].tokens.map(RG.plotText);
    const kTokens = seqs[m.key_seq].tokens.map(RG.plotText);
    const base = (layer * m.heads + head) * qb.length * kb.length;
    const z = [];
    let top = 0;
    for (let i = 0; i < qb.length; i++) {
      const row = [];
      for (let j = 0; j < kb.length; j++) {
        // Causal: a key block that starts after the query block's last token is unreachable.
        const masked = m.causal && kb[j][0] > qb[i][1] - 1;
        const v = d.overview[base + i * kb.length + j];
        row.push(masked ? null : v);
        if (!masked && !(leaveOutFirst && j === 0) && v > top) top = v;
      }
      z.push(row);
    }
    const fig = RG.clone(RG.page.figures.attention);
    const trace = fig.data[0];
    trace.z = z;
    trace.x = kb.map((_, j) => j);
    trace.y = qb.map((_, i) => i);
    trace.zmin = 0;
    trace.zmax = Math.max(top, 1e-6);
    trace.customdata = qb.map((q) => kb.map((k) => [blockText(q, qTokens), blockText(k, kTokens)]));
    trace.hovertemplate = "Query %{customdata[0]}<br>Key %{customdata[1]}<br>pooled weight %{z:.4f}<extra></extra>";
    const step = Math.max(1, Math.ceil(Math.max(qb.length, kb.length) / 24));
    const xt = kb.map((_, j) => j).filter((j) => j % step === 0);
    const yt = qb.map((_, i) => i).filter((i) => i % step === 0);
    fig.layout.xaxis.tickvals = xt;
    fig.layout.xaxis.ticktext = xt.map((j) => range(kb[j]));
    fig.layout.xaxis.title = { text: "Key block (token positions attended to)" };
    fig.layout.yaxis.tickvals = yt;
    fig.layout.yaxis.ticktext = yt.map((i) => range(qb[i]));
    fig.layout.yaxis.title = { text: "Query block (token positions)" };
    fig.layout.height = 640;
    fig.layout.title.text = RG.plotText(
      "Layer " + (layer + 1) + ", Head " + (head + 1) + " · pooled overview, " + qb.length + " × " + kb.length + " blocks" +
        (d.meta.id !== "self" ? " · " + d.meta.name : ""),
    );
    return Plotly.react(div, fig.data, fig.layout, RG.plotConfig("overview-L" + (layer + 1) + "-H" + (head + 1)));
  }

  function drawRow(div, d, seqs, r, layer, head, stretch, leaveOutFirst) {
    const m = d.meta;
    const row = m.rows[r];
    const n = m.n_key;
    const values = d.rows[r].subarray((layer * m.heads + head) * n, (layer * m.heads + head + 1) * n);
    const tokens = seqs[m.key_seq].tokens;
    const block = stretch > 0 ? m.key_blocks[stretch - 1] : [0, n];
    const xs = [];
    const ys = [];
    const labels = [];
    let top = 0;
    for (let p = block[0]; p < block[1]; p++) {
      xs.push(p);
      ys.push(values[p]);
      labels.push(RG.plotText(tokens[p]));
      if (!(leaveOutFirst && p === 0) && values[p] > top) top = values[p];
    }
    const close = block[1] - block[0] <= 160;
    const trace = {
      type: close ? "bar" : "scatter",
      mode: close ? undefined : "lines",
      x: xs,
      y: ys,
      customdata: labels,
      marker: { color: "#3b6ea5" },
      line: { color: "#3b6ea5", width: 1 },
      hovertemplate: "Key %{x}: %{customdata}<br>weight %{y:.4f}<extra></extra>",
    };
    const layout = {
      title: {
        text: RG.plotText(
          "Layer " + (layer + 1) + ", Head " + (head + 1) + " · exact row of position " + row.position + " (" + row.token + ")",
        ),
      },
      height: 360,
      margin: { l: 60, r: 20, t: 50, b: close ? 110 : 50 },
      xaxis: { title: { text: "Key (token position attended to)" }, range: [block[0] - 0.5, block[1] - 0.5] },
      yaxis: { title: { text: "weight" }, rangemode: "tozero" },
      bargap: 0.1,
    };
    if (close) {
      layout.xaxis.tickmode = "array";
      layout.xaxis.tickvals = xs;
      layout.xaxis.ticktext = labels;
      layout.xaxis.tickangle = -60;
    }
    if (leaveOutFirst && block[0] === 0 && n > 1) layout.yaxis.range = [0, Math.max(top, 1e-6) * 1.05];
    return Plotly.react(div, [trace], layout, RG.plotConfig("row-" + row.position + "-L" + (layer + 1) + "-H" + (head + 1)));
  }

  RG.registerView("long", async function (entry, root) {
    const maps = await decodedLong(entry);
    const mi = Math.min(RG.controlValue(root, "map", 0), maps.length - 1);
    const d = maps[mi];
    const m = d.meta;
    const seqs = entry.data.seqs;
    const layer = Math.min(RG.controlValue(root, "layer", RG.page.start_layer), m.layers - 1);
    const head = Math.min(RG.controlValue(root, "head", RG.page.start_head), m.heads - 1);
    const leaveOutFirst = RG.controlValue(root, "scale", 0) === 1;
    fillSelect(root, "row", m.rows.map((r) => "position " + r.position + " (" + r.token + ")"), m.id);
    const kTokens = seqs[m.key_seq].tokens;
    fillSelect(root, "stretch", ["all " + m.n_key + " positions"].concat(m.key_blocks.map((b) => blockText(b, kTokens))), m.id);
    const overviewDiv = root.querySelector('[data-plot="long-overview"]');
    await drawOverview(overviewDiv, d, seqs, layer, head, leaveOutFirst);
    if (!overviewDiv.dataset.clickWired) {
      // Clicking a block opens the close-up of its key tokens in the exact row below.
      overviewDiv.on("plotly_click", function (ev) {
        const stretch = root.querySelector('[data-control="stretch"]');
        if (!ev.points.length || !stretch) return;
        stretch.value = String(ev.points[0].x + 1);
        stretch.dispatchEvent(new Event("change"));
      });
      overviewDiv.dataset.clickWired = "1";
    }
    const share = m.first_share[layer][head];
    const first = blockText(m.key_blocks[0], kTokens);
    root.querySelector("[data-scale-note]").textContent = leaveOutFirst
      ? "Colour scale: linear from 0 to the largest pooled weight outside the first key block (" + first +
        ", which holds position 0); that column is off the scale and shows at the top colour. This head gives position 0 " +
        (100 * share).toFixed(1) + "% of its attention on average."
      : "Colour scale: linear from 0 to the largest pooled weight, position 0's block included. This head gives position 0 " +
        (100 * share).toFixed(1) + "% of its attention on average; choose 'position 0 left out' to see the rest.";
    if (root.dataset.figuresDrawn !== "1") {
      await RG.drawFigures(root, entry.data.figures); // layers x heads grids, built in Python
      root.dataset.figuresDrawn = "1";
    }
    const r = Math.min(RG.controlValue(root, "row", 0), m.rows.length - 1);
    const rowDiv = root.querySelector('[data-plot="long-row"]');
    const note = root.querySelector("[data-row-note]");
    if (r < 0) {
      note.textContent = "This map keeps no exact rows.";
      return;
    }
    const stretch = RG.controlValue(root, "stretch", 0);
    await drawRow(rowDiv, d, seqs, r, layer, head, stretch, leaveOutFirst);
    const at0 = d.rows[r][(layer * m.heads + head) * m.n_key];
    note.textContent =
      "Exact weights of one query position over every key, stored to 1/65535. " +
      (stretch > 0 ? "Close-up on " + blockText(m.key_blocks[stretch - 1], kTokens) + ". " : "Choose a close-up to read token labels. ") +
      (stretch > 1 ? "" : leaveOutFirst ? "The y-axis leaves position 0 out (its weight: " + at0.toFixed(3) + ")." : "Position 0 has weight " + at0.toFixed(3) + ".");
  });
})();
