/* "Why this weight": a clicked cell of a sentence's one-head heatmap (query i, key j)
 * explained from the queries and keys the page carries (reportgen/store.py QKRecord):
 * q_i and k_j over the head dimension, their elementwise product, the score
 * q.k * scaling (+ T5's position bias, + the causal mask), the row's scores before the
 * softmax, and the weight recomputed here in float64 beside the stored one. A second key
 * (shift-click, or the Compare select) shows both scores and the dimensions of
 * q_i * (k_a - k_b) that carry their difference. A clicked line of the head view
 * (bertviz.js's "rg-headview-pick") opens the same panel for its layer, head and pair.
 * RG.qkRow and RG.qkContrast hold the maths, DOM-free; tests/test_agreement.py checks
 * them against numpy. */
"use strict";
(function () {
  const RG = window.reportgen;
  const TOP_DIMS = 5; // dimensions named for a difference of two scores

  /** One query's row from plain arrays, in float64: q [d], keys [n][d], the layer's
   * scaling, bias [n] (T5) or null, and how many keys the query sees (`visible`: i + 1 in
   * a causal map, else n). Returns {dots, scores, weights}: q.k per key, the scores
   * before the softmax (null where masked) and the softmax (0 where masked). */
  RG.qkRow = function (q, keys, scaling, bias, visible) {
    const dots = keys.map(function (k) {
      let s = 0;
      for (let t = 0; t < q.length; t++) s += q[t] * k[t];
      return s;
    });
    const scores = dots.map((v, j) => (j < visible ? v * scaling + (bias ? bias[j] : 0) : null));
    let top = -Infinity;
    for (const s of scores) if (s !== null && s > top) top = s;
    const exps = scores.map((s) => (s === null ? 0 : Math.exp(s - top)));
    const total = exps.reduce((a, b) => a + b, 0);
    return { dots: dots, scores: scores, weights: exps.map((e) => e / total) };
  };

  /** The terms of q.k_a - q.k_b = sum_t q_t (ka_t - kb_t), largest magnitude first (ties
   * by dimension), the first `top` of them, and their whole sum. */
  RG.qkContrast = function (q, ka, kb, top) {
    const terms = q.map((v, t) => ({ dim: t, value: v * (ka[t] - kb[t]) }));
    const total = terms.reduce((a, x) => a + x.value, 0);
    terms.sort((x, y) => Math.abs(y.value) - Math.abs(x.value) || x.dim - y.dim);
    return { terms: terms.slice(0, top), total: total };
  };

  /** The sentence's queries, keys and bias, decoded once. */
  async function decodedQK(entry) {
    if (!entry.qkDecoded) {
      const rec = entry.data.qk;
      const parts = await Promise.all([
        RG.decodeHalf(rec.q),
        RG.decodeHalf(rec.k),
        rec.bias ? RG.decodeHalf(rec.bias) : null,
      ]);
      entry.qkDecoded = { rec: rec, q: parts[0], k: parts[1], bias: parts[2] };
    }
    return entry.qkDecoded;
  }

  const slice = (arr, start, count) => Array.from(arr.subarray(start, start + count));

  /** Head `head`'s q_i, every key of its key-value head (h // (heads / kv_heads)) and
   * its bias row (null without one), from the decoded arrays. */
  RG.qkSlices = function (dq, layer, head, i) {
    const r = dq.rec;
    const d = r.head_dim;
    const n = r.n;
    const kvHead = Math.floor(head / (r.heads / r.kv_heads));
    const q = slice(dq.q, ((layer * r.heads + head) * n + i) * d, d);
    const keys = Array.from({ length: n }, (_, j) => slice(dq.k, ((layer * r.kv_heads + kvHead) * n + j) * d, d));
    const bias = dq.bias ? slice(dq.bias, ((layer * r.heads + head) * n + i) * n, n) : null;
    return { q: q, keys: keys, bias: bias, kvHead: kvHead };
  };

  const headViewOf = (entry) => entry.section.querySelector('[data-view="head"]');

  /** What the heatmap above shows now: its map, layer and head, and the page's state. */
  function shownKey(headView) {
    const s = RG.state;
    return [
      RG.controlValue(headView, "map", 0),
      RG.controlValue(headView, "layer", RG.page.start_layer),
      RG.controlValue(headView, "head", RG.page.start_head),
      s.measure,
      s.wordLevel,
      s.hideSpecial,
    ].join(",");
  }

  const tokenLabel = (seq, p) => "'" + seq.tokens[p] + "' [" + p + "]";

  /** Set a select of the heatmap to `value` where it offers it; whether it changed. */
  function turn(select, value) {
    const v = String(value);
    if (!select || select.value === v || !select.querySelector('option[value="' + v + '"]')) return false;
    select.value = v;
    return true;
  }

  /** A line of the head view was clicked (bertviz.js): its pair opens here, in the head
   * that line stands for. The heatmap above is turned to that head first (its change
   * redraws it, and its redraw this panel), so both show the same weight. Shift on
   * another key of the same query compares the two in the panel's head. */
  function fromHeadView(entry, root, headView, pick) {
    const compare = root.querySelector('[data-control="compare"]');
    const status = entry.section.querySelector("[data-qk-from-lines]");
    const m = entry.data.maps[pick.map];
    const qSeq = entry.data.seqs[m.query_seq];
    const kSeq = entry.data.seqs[m.key_seq];
    const last = entry.qkPick;
    if (pick.shift && last && last.query === pick.query && last.key !== pick.key) {
      compare.value = String(pick.key);
      status.textContent = "Compared in Why this weight above: keys " + tokenLabel(kSeq, last.key) + " and " +
        tokenLabel(kSeq, pick.key) + " of query " + tokenLabel(qSeq, pick.query) + ".";
      RG.drawView(entry, root).catch(RG.fail); // lazy.js
      return;
    }
    compare.value = "-1";
    const turned = ["map", "layer", "head"].map((name) =>
      turn(headView.querySelector('[data-control="' + name + '"]'), pick[name]),
    );
    // The rule that chose the head is stated while the panel shows what it chose.
    entry.qkPick = { query: pick.query, key: pick.key, line: { drawn: pick.drawn, shown: shownKey(headView) } };
    status.textContent = "Opened in Why this weight above: Layer " + (pick.layer + 1) + ", Head " + (pick.head + 1) +
      ", query " + tokenLabel(qSeq, pick.query) + " → key " + tokenLabel(kSeq, pick.key) +
      ". Shift-click another line of the same query to compare two keys.";
    if (turned.some(Boolean)) {
      headView.querySelector('[data-control="head"]').dispatchEvent(new Event("change")); // main.js
    } else {
      RG.drawView(entry, root).catch(RG.fail);
    }
  }

  /** Clicks on the heatmap choose the cell, and so do clicks on the head view's lines; a
   * redraw of the heatmap (its selects, the grid of all heads, a toggle) redraws the
   * panel for the head now shown. Wired once per section. */
  function wire(entry, root, headView) {
    if (root.dataset.qkWired) return;
    const plot = headView.querySelector('[data-plot="head"]');
    if (typeof plot.on !== "function") return; // the heatmap is drawn first (page order)
    root.dataset.qkWired = "1";
    entry.section.querySelector('[data-view="headview"]').classList.add("rg-qk-lines"); // report.css
    entry.section.addEventListener("rg-headview-pick", (ev) => fromHeadView(entry, root, headView, ev.detail));
    entry.section.querySelector("[data-qk-goto]").addEventListener("click", () => root.scrollIntoView({ block: "start" }));
    const compare = root.querySelector('[data-control="compare"]');
    plot.on("plotly_click", function (ev) {
      const p = ev.points && ev.points[0];
      if (!p) return;
      const m = entry.data.maps[0];
      const i = RG.axis(entry.data.seqs[m.query_seq], RG.state).positions[p.y];
      const j = RG.axis(entry.data.seqs[m.key_seq], RG.state).positions[p.x];
      const pick = entry.qkPick;
      if (ev.event && ev.event.shiftKey && pick && pick.query === i && pick.key !== j) {
        compare.value = String(j); // a second key of the same row
      } else {
        entry.qkPick = { query: i, key: j };
        compare.value = "-1";
      }
      RG.drawView(entry, root).catch(RG.fail); // lazy.js
    });
    plot.on("plotly_afterplot", function () {
      if (root.dataset.qkShown !== shownKey(headView)) RG.drawView(entry, root).catch(RG.fail);
    });
  }

  /** Why the panel cannot explain what the heatmap shows, or "". */
  function unexplained(entry, mi) {
    const { measure, wordLevel } = RG.state; // main.js's page-wide choices
    if (measure !== "weights") {
      // The Measure select offers only the page's measures (store.PageSettings.measures).
      const choice = RG.page.measures.find((m) => m.id === measure);
      return "This panel explains attention weights only; the heatmap above shows " +
        choice.label + " (the Measure choice). Choose weights to use it.";
    }
    if (mi !== 0) return "Queries and keys are kept for the first map (" + entry.data.maps[0].name + ") only.";
    if (wordLevel) return "This panel explains the weights of tokens: turn off 'word level' to click one.";
    return "";
  }

  const fmt = (v, digits) => (v === null ? "masked" : v.toFixed(digits === undefined ? 4 : digits));
  const signed = (v) => (v >= 0 ? "+" : "") + v.toFixed(4);

  function cell(tag, text) {
    const el = document.createElement(tag);
    el.textContent = text;
    return el;
  }

  function table(rows, header) {
    const t = document.createElement("table");
    t.className = "rg-table";
    const head = document.createElement("tr");
    header.forEach((h) => head.append(cell("th", h)));
    t.append(head);
    rows.forEach(function (r) {
      const tr = document.createElement("tr");
      r.forEach((v, c) => tr.append(cell(c ? "td" : "th", v)));
      t.append(tr);
    });
    return t;
  }

  /** The bar charts over the head dimension: each of `series` ([label, values]) on its
   * own row, one x axis (the dimension). */
  function vectorFigure(series, d) {
    const gap = 0.06;
    const h = (1 - gap * (series.length - 1)) / series.length;
    const layout = {
      height: 110 * series.length + 60,
      margin: { l: 60, r: 20, t: 28, b: 40 },
      showlegend: false,
      xaxis: { title: { text: "dimension of the head (0 to " + (d - 1) + ")" }, anchor: "y" + series.length },
      annotations: [],
    };
    const data = series.map(function (s, r) {
      const axis = r ? "y" + (r + 1) : "y";
      const top = 1 - r * (h + gap);
      layout[r ? "yaxis" + (r + 1) : "yaxis"] = { domain: [top - h, top], zeroline: true };
      layout.annotations.push({
        text: RG.plotText(s[0]), xref: "paper", yref: "paper", x: 0, y: top, xanchor: "left", yanchor: "bottom", showarrow: false,
      });
      return {
        type: "bar", x: s[1].map((_, t) => t), y: s[1], yaxis: axis, marker: { color: s[2] },
        hovertemplate: "dimension %{x}: %{y:.4f}<extra>" + RG.plotText(s[0]) + "</extra>",
      };
    });
    return { data: data, layout: layout };
  }

  /** The row's scores before the softmax, one bar per key (masked keys left out), the
   * chosen keys in colour; the weight on hover. */
  function rowFigure(row, labels, chosen, queryLabel) {
    const xs = labels.map((_, j) => j);
    const colours = xs.map((j) => (j === chosen[0] ? "#e8590c" : j === chosen[1] ? "#1c7ed6" : "#adb5bd"));
    return {
      data: [{
        type: "bar", x: xs, y: row.scores, marker: { color: colours },
        customdata: xs.map((j) => [labels[j], row.weights[j]]),
        hovertemplate: "key %{x}: %{customdata[0]}<br>score %{y:.4f}<br>weight %{customdata[1]:.4f}<extra></extra>",
      }],
      layout: {
        height: 260,
        margin: { l: 60, r: 20, t: 30, b: 80 },
        title: { text: RG.plotText("Scores of query '" + queryLabel + "' before the softmax (weight on hover)"), font: { size: 13 } },
        xaxis: { tickvals: xs, ticktext: labels.map(RG.plotText), tickangle: -45 },
        yaxis: { title: { text: "score" } },
      },
    };
  }

  RG.registerView("qk", async function (entry, root) {
    const headView = headViewOf(entry);
    wire(entry, root, headView);
    root.dataset.qkShown = shownKey(headView);
    const note = root.querySelector("[data-qk-note]");
    const body = root.querySelector("[data-qk-body]");
    const mi = RG.controlValue(headView, "map", 0);
    const layer = RG.controlValue(headView, "layer", RG.page.start_layer);
    const head = RG.controlValue(headView, "head", RG.page.start_head);
    const m = entry.data.maps[0];
    const qSeq = entry.data.seqs[m.query_seq];
    const kSeq = entry.data.seqs[m.key_seq];
    const compare = root.querySelector('[data-control="compare"]');
    RG.fillSelect(compare, kSeq.tokens.map((t, j) => j + 1 + " [" + j + "] " + t));
    const why = unexplained(entry, mi);
    const pick = entry.qkPick;
    const dq = await decodedQK(entry); // with the section, so that a click only draws
    if (why || !pick) {
      note.textContent = why || "Click a cell of the heatmap above, or a line of the head view below, to see why it has its weight.";
      body.hidden = true;
      return;
    }
    const r = dq.rec;
    const i = pick.query;
    const b = +compare.value;
    const keys = b >= 0 && b !== pick.key ? [pick.key, b] : [pick.key];
    const sl = RG.qkSlices(dq, layer, head, i);
    const scaling = r.scaling[layer];
    const row = RG.qkRow(sl.q, sl.keys, scaling, sl.bias, m.causal ? i + 1 : r.n);
    const stored = (await RG.weightMaps(entry))[0];
    const storedAt = (j) => stored.values[((layer * m.heads + head) * m.n_query + i) * m.n_key + j];
    const label = tokenLabel;
    const line = pick.line && pick.line.shown === root.dataset.qkShown ? pick.line : null;

    note.textContent =
      "Layer " + (layer + 1) + ", Head " + (head + 1) + " · query " + label(qSeq, i) + " → key " +
      keys.map((j) => label(kSeq, j)).join(" and ") +
      (r.kv_heads < r.heads ? " · grouped-query attention: this head reads key head " + (sl.kvHead + 1) + " of " + r.kv_heads : "") +
      (line === null
        ? ""
        : line.drawn === 1
          ? " · from the head view's line of this head"
          : " · from the head view, where every head shown draws this pair's line in the same place: this head's weight is the largest of the " +
            line.drawn + " there");
    const terms = ["score = q·k × scaling (" + scaling.toPrecision(4) + ")"];
    if (sl.bias) terms.push("+ T5's relative position bias");
    if (m.causal) terms.push("+ the causal mask (keys after the query: −∞)");
    const positions = r.rotary
      ? "Rotary positions: q and k are rotated by their positions before the product, so positions are already inside them."
      : sl.bias
        ? "T5 has no position embeddings: positions enter only through the bias term, one learned value per head and distance."
        : "Positions entered at the input as embeddings, so they are inside q and k.";
    root.querySelector("[data-qk-formula]").textContent =
      terms.join(" ") + "; weight = softmax of the row's scores. " + positions +
      " q and k are stored at half precision: weights rebuilt from them differ from the extraction's by at most " +
      r.error.toExponential(1) + " in this sentence; the stored weight is rounded to 1/" + m.scale +
      (RG.state.hideSpecial ? " (the heatmap shows rows renormalised without special tokens)." : ".");

    const header = ["key", "q·k", "× scaling"].concat(sl.bias ? ["+ bias"] : []).concat(
      ["= score", "weight (recomputed)", "stored weight", "difference"],
    );
    const rows = keys.map(function (j) {
      const w = row.weights[j];
      const s = storedAt(j);
      return [label(kSeq, j), fmt(row.dots[j]), fmt(row.dots[j] * scaling)]
        .concat(sl.bias ? [fmt(sl.bias[j])] : [])
        .concat([fmt(row.scores[j]), fmt(w, 6), fmt(s, 6), signed(w - s)]);
    });
    root.querySelector("[data-qk-table]").replaceChildren(table(rows, header));

    const ka = sl.keys[keys[0]];
    const series = [
      ["q_" + i + " (query " + label(qSeq, i) + ")", sl.q, "#495057"],
      ["k_" + keys[0] + " (key " + label(kSeq, keys[0]) + ")", ka, "#e8590c"],
      ["q ∘ k: elementwise product, sum " + row.dots[keys[0]].toFixed(4) + " = q·k", sl.q.map((v, t) => v * ka[t]), "#e8590c"],
    ];
    const contrast = root.querySelector("[data-qk-contrast]");
    if (keys.length > 1) {
      const kb = sl.keys[keys[1]];
      const c = RG.qkContrast(sl.q, ka, kb, TOP_DIMS);
      series.push(["k_" + keys[1] + " (key " + label(kSeq, keys[1]) + ")", kb, "#1c7ed6"]);
      series.push(["q ∘ (k_" + keys[0] + " − k_" + keys[1] + "), sum " + c.total.toFixed(4), sl.q.map((v, t) => v * (ka[t] - kb[t])), "#7048e8"]);
      const sa = row.scores[keys[0]];
      const sb = row.scores[keys[1]];
      contrast.textContent =
        "Scores: " + label(kSeq, keys[0]) + " " + fmt(sa) + ", " + label(kSeq, keys[1]) + " " + fmt(sb) +
        (sa !== null && sb !== null ? " (difference " + signed(sa - sb) + ")" : "") +
        ". q·(k_a − k_b) = " + c.total.toFixed(4) + " (× scaling " + (c.total * scaling).toFixed(4) +
        (sl.bias ? ", + bias difference " + signed(sl.bias[keys[0]] - sl.bias[keys[1]]) : "") +
        "); the dimensions that carry most of it: " +
        c.terms.map((x) => "dimension " + x.dim + " " + signed(x.value)).join(", ") + ".";
      contrast.hidden = false;
    } else {
      contrast.hidden = true;
    }
    body.hidden = false;
    const vf = vectorFigure(series, r.head_dim);
    await Plotly.react(root.querySelector('[data-plot="qk-vectors"]'), vf.data, vf.layout, RG.plotConfig());
    const rf = rowFigure(row, kSeq.tokens, keys, qSeq.tokens[i]);
    await Plotly.react(root.querySelector('[data-plot="qk-row"]'), rf.data, rf.layout, RG.plotConfig());
  });
})();
