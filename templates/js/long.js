/* The long-input view (format: LongSentenceRecord in reportgen/store.py): one head's
 * block-pooled overview, labelled with its blocks' token ranges, and its exact rows at
 * token resolution, with a close-up on any block of the text. The page's one sink
 * control (RG.state.leaveOutSinks, on by default here) leaves the sink columns that
 * Python found (figures.sink_columns) out of the colour range, so the page opens readable.
 * Only the shown head is drawn; a section decodes its overview and rows once (blocks^2
 * and a few rows of n values per head), never a full n x n map. Under the page's Measure
 * choice (RG.state.measure, main.js) the exact rows are the measure's and, where the
 * measure has one (norm), so is the overview; a per-layer measure has one "head". */
"use strict";
(function () {
  const RG = window.reportgen;

  async function decodedRows(rows) {
    return (await Promise.all(rows.map((r) => RG.decodeMap({ data: r.data, scale: r.scale })))).map((r) => r.values);
  }

  /** A section's maps, decoded once: {meta, overview: Float32Array, rows: [Float32Array],
   * measures: {id: {heads, overview: Float32Array or null, rows, sinks}}}. */
  async function decodedLong(entry) {
    if (!entry.long) {
      entry.long = Promise.all(
        entry.data.maps.map(async function (m) {
          const overview = await RG.decodeMap({ data: m.overview, scale: m.scale });
          const measures = {};
          for (const x of m.measures) {
            measures[x.id] = {
              heads: x.heads,
              overview: x.overview === null ? null : (await RG.decodeMap({ data: x.overview, scale: x.scale })).values,
              rows: await decodedRows(x.rows),
              sinks: x.sinks,
            };
          }
          return { meta: m, overview: overview.values, rows: await decodedRows(m.rows), measures: measures };
        }),
      );
    }
    return entry.long;
  }

  /** What map `d` shows under the Measure choice: the exact rows (`rows`, `heads`) and the
   * overview (`overview`, `overviewHeads`, `sinks`), each the measure's where it has them,
   * else the weights'; `label` names the measure ("" for weights), `overviewOf` it or
   * "weights". */
  function measured(d) {
    const x = d.measures[RG.state.measure];
    const weights = { heads: d.meta.heads, overview: d.overview, rows: d.rows, sinks: d.meta.sinks };
    if (!x) return Object.assign(weights, { overviewHeads: d.meta.heads, label: "", overviewOf: "weights" });
    const choice = RG.page.measures.find((c) => c.id === RG.state.measure);
    const label = choice.label + (choice.per_layer ? " (per layer: no heads)" : "");
    const own = x.overview !== null;
    return {
      heads: x.heads,
      rows: x.rows,
      overview: own ? x.overview : d.overview,
      overviewHeads: own ? x.heads : d.meta.heads,
      sinks: own ? x.sinks : d.meta.sinks,
      label: label,
      overviewOf: own ? choice.label : "weights",
    };
  }

  function fill(root, name, labels) {
    const select = root.querySelector('[data-control="' + name + '"]');
    if (select) RG.fillSelect(select, labels);
  }

  function range(block) {
    return block[1] - block[0] > 1 ? block[0] + "–" + (block[1] - 1) : String(block[0]);
  }

  function blockText(block, tokens) {
    const first = tokens[block[0]];
    const last = tokens[block[1] - 1];
    return "tokens " + range(block) + " (" + (block[1] - block[0] > 1 ? first + " … " + last : first) + ")";
  }

  /** A block axis in RG.axis's shape: labels are token ranges; `positions` hold, for the
   * causal mask, a query block's last token and a key block's first. */
  function blockAxis(blocks, tokens, asQuery, sinks) {
    return {
      labels: blocks.map((b) => blockText(b, tokens)),
      tags: blocks.map(range),
      positions: blocks.map((b) => (asQuery ? b[1] - 1 : b[0])),
      members: blocks.map((_, i) => [i]),
      at: blocks.map((_, i) => i),
      boundary: null,
      sinks: sinks,
    };
  }

  /** views.js's RG.shownMaps for a long page: the pooled overview of every head
   * ([layers][heads] maps of blocks; the word-level and special-token toggles do not
   * apply to blocks). */
  RG.longShownMaps = async function (entry, mi) {
    const maps = await decodedLong(entry);
    const d = maps[Math.min(mi, maps.length - 1)];
    const m = d.meta;
    const shown = measured(d);
    const seqs = entry.data.seqs;
    const q = blockAxis(m.query_blocks, seqs[m.query_seq].tokens, true, null);
    const k = blockAxis(m.key_blocks, seqs[m.key_seq].tokens, false, new Set(shown.sinks));
    const nq = m.query_blocks.length;
    const nk = m.key_blocks.length;
    const heads = shown.overviewHeads;
    return {
      meta: m,
      layers: m.layers,
      heads: heads,
      overviewOf: shown.overviewOf,
      sinks: shown.sinks,
      at: function (layer, head) {
        const base = (layer * heads + head) * nq * nk;
        const rows = [];
        for (let i = 0; i < nq; i++) rows.push(Array.from(shown.overview.subarray(base + i * nk, base + (i + 1) * nk)));
        return { rows: rows, q: q, k: k };
      },
    };
  };

  function drawOverview(div, shown, layer, head) {
    const m = shown.meta;
    const t = shown.at(layer, head);
    // Causal: a key block that starts after the query block's last token is unreachable.
    const z = t.rows.map((row, i) => row.map((v, j) => (m.causal && t.k.positions[j] > t.q.positions[i] ? null : v)));
    const top = RG.largest(z, RG.state.leaveOutSinks ? (i, j) => RG.isSink(t, j) : null);
    const fig = RG.clone(RG.page.figures.attention);
    const trace = fig.data[0];
    const qb = m.query_blocks;
    const kb = m.key_blocks;
    trace.z = z;
    trace.x = kb.map((_, j) => j);
    trace.y = qb.map((_, i) => i);
    trace.zmin = 0;
    trace.zmax = Math.max(top, 1e-6);
    const qLabels = t.q.labels.map(RG.plotText);
    const kLabels = t.k.labels.map(RG.plotText);
    trace.customdata = qb.map((_, i) => kb.map((_, j) => [qLabels[i], kLabels[j]]));
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
    const what = shown.overviewOf === "weights" ? "" : " · " + shown.overviewOf;
    fig.layout.title.text = RG.plotText(
      "Layer " + (layer + 1) + ", Head " + (head + 1) + " · pooled overview, " + qb.length + " × " + kb.length + " blocks" +
        (m.id !== "self" ? " · " + m.name : "") + what,
    );
    return Plotly.react(div, fig.data, fig.layout, RG.plotConfig("overview-L" + (layer + 1) + "-H" + (head + 1)));
  }

  /** Whether token position `p` lies in one of map `m`'s key blocks `sinks`. */
  function inSink(m, sinks, p) {
    return sinks.some((j) => m.key_blocks[j][0] <= p && p < m.key_blocks[j][1]);
  }

  function drawRow(div, d, seqs, r, layer, head, stretch) {
    const m = d.meta;
    const shown = measured(d);
    const sinks = shown.sinks;
    const row = m.rows[r];
    const n = m.n_key;
    const h = Math.min(head, shown.heads - 1); // a per-layer measure has one "head"
    const values = shown.rows[r].subarray((layer * shown.heads + h) * n, (layer * shown.heads + h + 1) * n);
    const tokens = seqs[m.key_seq].tokens;
    const block = stretch > 0 ? m.key_blocks[stretch - 1] : [0, n];
    const xs = [];
    const ys = [];
    const labels = [];
    for (let p = block[0]; p < block[1]; p++) {
      xs.push(p);
      ys.push(values[p]);
      labels.push(RG.plotText(tokens[p]));
    }
    const leaveOut = RG.state.leaveOutSinks && sinks.length > 0;
    const top = RG.largest([ys], leaveOut ? (_, j) => inSink(m, sinks, xs[j]) : null);
    const close = block[1] - block[0] <= 160;
    const trace = {
      type: close ? "bar" : "scatter",
      mode: close ? undefined : "lines",
      x: xs,
      y: ys,
      customdata: labels,
      marker: { color: "#3b6ea5" },
      line: { color: "#3b6ea5", width: 1 },
      hovertemplate: "Key %{x}: %{customdata}<br>" + (shown.label ? "share" : "weight") + " %{y:.4f}<extra></extra>",
    };
    const layout = {
      title: {
        text: RG.plotText(
          (shown.heads > 1 ? "Layer " + (layer + 1) + ", Head " + (head + 1) : "Layer " + (layer + 1)) +
            " · exact row of position " + row.position + " (" + row.token + ")" + (shown.label ? " · " + shown.label : ""),
        ),
      },
      height: 360,
      margin: { l: 60, r: 20, t: 50, b: close ? 110 : 50 },
      xaxis: { title: { text: "Key (token position attended to)" }, range: [block[0] - 0.5, block[1] - 0.5] },
      yaxis: { title: { text: shown.label ? "share" : "weight" }, rangemode: "tozero" },
      bargap: 0.1,
    };
    if (close) {
      layout.xaxis.tickmode = "array";
      layout.xaxis.tickvals = xs;
      layout.xaxis.ticktext = labels;
      layout.xaxis.tickangle = -60;
    }
    if (leaveOut && xs.some((p) => inSink(m, sinks, p)) && top > 0) layout.yaxis.range = [0, top * 1.05];
    return Plotly.react(div, [trace], layout, RG.plotConfig("row-" + row.position + "-L" + (layer + 1) + "-H" + (head + 1)));
  }

  /** What the colour scale shows, beside it, with the sink control's state. */
  function scaleNote(root, m, shown, kTokens, share) {
    const columns = shown.sinks;
    const sinks = columns.map((j) => blockText(m.key_blocks[j], kTokens)).join(", ");
    const plural = columns.length > 1 ? "s" : "";
    // Under a per-layer measure the overview stays on the weights: say so first.
    const which =
      RG.state.measure !== "weights" && shown.overviewOf === "weights"
        ? "The pooled overview and the grid show the weights: a per-layer measure has no overview on a long input (every row's contributions take n × d values a layer), only the exact rows below. "
        : "";
    const first = " This head gives position 0 " + (100 * share).toFixed(1) + "% of its attention on average.";
    const leaveOut = RG.state.leaveOutSinks; // the page's one sink control
    let text;
    if (!columns.length) {
      text = "Colour scale: linear from 0 to the largest pooled weight; no column of this page is a sink (rule below)." + first;
    } else if (leaveOut) {
      text = "Colour scale leaves out the sink column" + plural + " at " + sinks +
        ": linear from 0 to the largest pooled weight elsewhere, so the sink" + plural + " show" + (plural ? "" : "s") +
        " at the top colour." + first;
    } else {
      text = "Colour scale: linear from 0 to the largest pooled weight, the sink column" + plural + " at " + sinks + " included." + first;
    }
    root.querySelector("[data-scale-note]").textContent = which + text;
    const button = root.querySelector("[data-sink-toggle]");
    button.hidden = !columns.length;
    button.textContent = leaveOut ? "Show them" : "Leave them out";
  }

  RG.registerView("long", async function (entry, root) {
    const maps = await decodedLong(entry);
    const mi = Math.min(RG.controlValue(root, "map", 0), maps.length - 1);
    const d = maps[mi];
    const m = d.meta;
    const seqs = entry.data.seqs;
    const layer = Math.min(RG.controlValue(root, "layer", RG.page.start_layer), m.layers - 1);
    const head = Math.min(RG.controlValue(root, "head", RG.page.start_head), m.heads - 1);
    fill(root, "row", m.rows.map((r) => "position " + r.position + " (" + r.token + ")"));
    const kTokens = seqs[m.key_seq].tokens;
    fill(root, "stretch", ["all " + m.n_key + " positions"].concat(m.key_blocks.map((b) => blockText(b, kTokens))));
    const overviewDiv = root.querySelector('[data-plot="long-overview"]');
    const shownMaps = await RG.shownMaps(entry, mi);
    await drawOverview(overviewDiv, shownMaps, layer, Math.min(head, shownMaps.heads - 1));
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
    scaleNote(root, m, shownMaps, kTokens, m.first_share[layer][head]);
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
    await drawRow(rowDiv, d, seqs, r, layer, head, stretch);
    const shown = measured(d);
    const at0 = shown.rows[r][(layer * shown.heads + Math.min(head, shown.heads - 1)) * m.n_key];
    const leftOut = RG.state.leaveOutSinks && shown.sinks.length > 0;
    note.textContent =
      (shown.label ? "Exact " + shown.label + " shares" : "Exact weights") + " of one query position over every key, stored to 1/65535. " +
      (stretch > 0 ? "Close-up on " + blockText(m.key_blocks[stretch - 1], kTokens) + ". " : "Choose a close-up to read token labels. ") +
      (leftOut ? "The y-axis leaves the sink column" + (shown.sinks.length > 1 ? "s'" : "'s") + " tokens out of its range. " : "") +
      "Position 0 has " + (shown.label ? "a share of " : "weight ") + at0.toFixed(3) + ".";
  });
})();
