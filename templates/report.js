/* reportgen's page script: inflate the inlined libraries and the compact attention
 * store, then draw each sentence's views when it scrolls into sight.
 * Data comes only from JSON blocks (never eval); text is set with textContent. */
"use strict";
(function () {
  const RG = (window.reportgen = window.reportgen || {});
  const page = JSON.parse(document.getElementById("rg-config").textContent);
  const state = { wordLevel: false, hideSpecial: false };
  const sentences = new Map(); // anchor -> {section, data, maps (decoded), rendered}
  const HEAD_VIEW_ASK_LINES = 100000; // ~1.5 s of drawing on a slow laptop core

  // ---------- decoding ----------
  function base64Bytes(text) {
    const bin = atob(text.trim());
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  async function gunzip(bytes) {
    if (typeof DecompressionStream === "undefined") return RG.gunzipSlow(bytes);
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  // ---------- inflate for browsers without DecompressionStream ----------
  // A plain reading of RFC 1951 (deflate) and RFC 1952 (gzip): slower than the
  // browser's own, used only where DecompressionStream is missing (Firefox < 113,
  // Safari < 16.4), so the report still opens there.
  const LEN_BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
  const LEN_EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
  const DIST_BASE = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577];
  const DIST_EXTRA = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];
  const CLEN_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

  /** Canonical Huffman code from code lengths: counts per length and symbols in code order. */
  function huffman(lengths) {
    const count = new Uint16Array(16);
    for (const len of lengths) count[len]++;
    count[0] = 0;
    const offset = new Uint16Array(16);
    for (let len = 1; len < 16; len++) offset[len] = offset[len - 1] + count[len - 1];
    const symbol = new Uint16Array(lengths.length);
    lengths.forEach((len, sym) => { if (len) symbol[offset[len]++] = sym; });
    return { count: count, symbol: symbol };
  }

  RG.inflateRaw = function (data, start, sizeHint) {
    let pos = start;
    let bitBuf = 0;
    let bitCount = 0;
    let out = new Uint8Array(Math.max(sizeHint || 0, 1024));
    let n = 0;
    const need = function (extra) {
      if (n + extra <= out.length) return;
      const bigger = new Uint8Array(Math.max(out.length * 2, n + extra));
      bigger.set(out.subarray(0, n));
      out = bigger;
    };
    const bits = function (count) {
      while (bitCount < count) {
        if (pos >= data.length) throw new Error("compressed data is truncated");
        bitBuf |= data[pos++] << bitCount;
        bitCount += 8;
      }
      const value = bitBuf & ((1 << count) - 1);
      bitBuf >>>= count;
      bitCount -= count;
      return value;
    };
    const decode = function (h) {
      // Codes are packed most significant bit first: read one bit at a time.
      let code = 0;
      let first = 0;
      let index = 0;
      for (let len = 1; len < 16; len++) {
        code |= bits(1);
        const count = h.count[len];
        if (code - count < first) return h.symbol[index + (code - first)];
        index += count;
        first = (first + count) << 1;
        code <<= 1;
      }
      throw new Error("bad Huffman code in compressed data");
    };
    let fixed = null;
    let last = 0;
    while (!last) {
      last = bits(1);
      const type = bits(2);
      if (type === 0) {
        bitBuf = 0;
        bitCount = 0;
        const len = data[pos] | (data[pos + 1] << 8);
        pos += 4; // LEN and its complement NLEN
        need(len);
        out.set(data.subarray(pos, pos + len), n);
        pos += len;
        n += len;
        continue;
      }
      let lit;
      let dist;
      if (type === 1) {
        if (!fixed) {
          const l = new Array(288).fill(8, 0, 144).fill(9, 144, 256).fill(7, 256, 280).fill(8, 280, 288);
          fixed = { lit: huffman(l), dist: huffman(new Array(30).fill(5)) };
        }
        lit = fixed.lit;
        dist = fixed.dist;
      } else if (type === 2) {
        const nlen = bits(5) + 257;
        const ndist = bits(5) + 1;
        const ncode = bits(4) + 4;
        const clen = new Array(19).fill(0);
        for (let i = 0; i < ncode; i++) clen[CLEN_ORDER[i]] = bits(3);
        const ch = huffman(clen);
        const lengths = [];
        while (lengths.length < nlen + ndist) {
          const sym = decode(ch);
          if (sym < 16) lengths.push(sym);
          else if (sym === 16) {
            const prev = lengths[lengths.length - 1];
            for (let r = 3 + bits(2); r > 0; r--) lengths.push(prev);
          } else {
            for (let r = sym === 17 ? 3 + bits(3) : 11 + bits(7); r > 0; r--) lengths.push(0);
          }
        }
        lit = huffman(lengths.slice(0, nlen));
        dist = huffman(lengths.slice(nlen, nlen + ndist));
      } else {
        throw new Error("bad block type in compressed data");
      }
      for (;;) {
        let sym = decode(lit);
        if (sym < 256) {
          need(1);
          out[n++] = sym;
        } else if (sym === 256) {
          break;
        } else {
          sym -= 257;
          const len = LEN_BASE[sym] + bits(LEN_EXTRA[sym]);
          const d = decode(dist);
          const back = DIST_BASE[d] + bits(DIST_EXTRA[d]);
          need(len);
          for (let i = 0; i < len; i++, n++) out[n] = out[n - back];
        }
      }
    }
    return out.subarray(0, n);
  };

  /** gzip member: skip the header (RFC 1952), inflate, size from the trailer. */
  RG.gunzipSlow = function (bytes) {
    if (bytes[0] !== 0x1f || bytes[1] !== 0x8b || bytes[2] !== 8) throw new Error("not gzip data");
    const flags = bytes[3];
    let pos = 10;
    if (flags & 4) pos += 2 + (bytes[pos] | (bytes[pos + 1] << 8));
    if (flags & 8) while (bytes[pos++]);
    if (flags & 16) while (bytes[pos++]);
    if (flags & 2) pos += 2;
    const end = bytes.length;
    const size = (bytes[end - 4] | (bytes[end - 3] << 8) | (bytes[end - 2] << 16) | (bytes[end - 1] << 24)) >>> 0;
    return RG.inflateRaw(bytes, pos, size);
  };

  RG.decodeText = async function (b64) {
    return new TextDecoder().decode(await gunzip(base64Bytes(b64)));
  };

  /** Decode one packed map: two byte planes of 16-bit sum-preserving quantised weights. */
  RG.decodeMap = async function (m) {
    const planes = await gunzip(base64Bytes(m.data));
    const count = planes.length / 2;
    const values = new Float32Array(count);
    for (let i = 0; i < count; i++) values[i] = (planes[i] | (planes[count + i] << 8)) / m.scale;
    return { meta: m, values: values };
  };

  /** One head's map as an array of rows (plain arrays). */
  RG.headMatrix = function (decoded, layer, head) {
    const m = decoded.meta;
    const base = (layer * m.heads + head) * m.nq * m.nk;
    const rows = [];
    for (let i = 0; i < m.nq; i++) {
      rows.push(Array.from(decoded.values.subarray(base + i * m.nk, base + (i + 1) * m.nk)));
    }
    return rows;
  };

  RG.layerAverage = function (decoded, layer) {
    const m = decoded.meta;
    const rows = [];
    for (let i = 0; i < m.nq; i++) rows.push(new Array(m.nk).fill(0));
    for (let h = 0; h < m.heads; h++) {
      const base = (layer * m.heads + h) * m.nq * m.nk;
      for (let i = 0; i < m.nq; i++) {
        for (let j = 0; j < m.nk; j++) rows[i][j] += decoded.values[base + i * m.nk + j] / m.heads;
      }
    }
    return rows;
  };

  /** Mean over every layer and head. */
  RG.allLayersAverage = function (decoded) {
    const L = decoded.meta.layers;
    const rows = RG.layerAverage(decoded, 0);
    for (let l = 1; l < L; l++) {
      const next = RG.layerAverage(decoded, l);
      rows.forEach((row, i) => row.forEach((_, j) => (row[j] += next[i][j])));
    }
    return rows.map((row) => row.map((v) => v / L));
  };

  // ---------- transforms (mirror reportgen/analysis.py) ----------
  function renormalise(rows) {
    return rows.map(function (row) {
      const total = row.reduce((a, b) => a + b, 0);
      return total > 0 ? row.map((v) => v / total) : row.map(() => 1 / row.length);
    });
  }

  /** Remove rows/columns whose keep flag is false and renormalise rows (drop_positions). */
  RG.dropPositions = function (rows, keepQ, keepK) {
    const kept = rows.filter((_, i) => keepQ[i]).map((row) => row.filter((_, j) => keepK[j]));
    return renormalise(kept);
  };

  /** Word level: TO a word sums its pieces, FROM a word averages them (merge_groups). */
  RG.mergeGroups = function (rows, groupsQ, groupsK) {
    return groupsQ.map(function (gq) {
      return groupsK.map(function (gk) {
        let total = 0;
        for (const i of gq) for (const j of gk) total += rows[i][j];
        return total / gq.length;
      });
    });
  };

  RG.rowEntropy = function (rows) {
    let sum = 0;
    for (const row of rows) {
      let h = 0;
      for (const p of row) if (p > 0) h -= p * Math.log(p);
      sum += h;
    }
    return rows.length ? sum / rows.length : 0;
  };

  // Positions and labels of one token sequence after the current toggles.
  function view(seq) {
    const n = seq.tokens.length;
    const keep = seq.tokens.map((_, i) => !(state.hideSpecial && seq.special[i]));
    if (!keep.some(Boolean)) keep.fill(true); // a sentence of only special tokens
    const index = new Map();
    let kept = 0;
    for (let i = 0; i < n; i++) if (keep[i]) index.set(i, kept++);
    let groups = [];
    if (state.wordLevel) {
      for (const g of seq.words) {
        const mapped = g.filter((i) => keep[i]).map((i) => index.get(i));
        if (mapped.length) groups.push(mapped);
      }
    } else {
      groups = Array.from({ length: kept }, (_, i) => [i]);
    }
    const keptTokens = seq.tokens.filter((_, i) => keep[i]);
    // A word's label joins its pieces, less lone whitespace glyphs (SentencePiece's "▁" -> "␣").
    const blank = /^[␣↵⇥]+$/;
    const labels = groups.map(function (g) {
      const parts = g.map((i) => keptTokens[i]);
      const solid = parts.filter((p) => !blank.test(p));
      return (solid.length ? solid : parts).join("");
    });
    // Original position of each group's first piece, for the causal mask.
    const orig = [];
    for (let i = 0; i < n; i++) if (keep[i]) orig.push(i);
    const positions = groups.map((g) => orig[g[0]]);
    const at = new Array(n).fill(-1); // original position -> index on the drawn axis
    groups.forEach((g, gi) => g.forEach((k) => (at[orig[k]] = gi)));
    // Sentence pairs: index on the drawn axis of segment B's first token (null: no pair).
    let boundary = null;
    if (seq.bStart !== undefined && seq.bStart !== null) {
      const b = positions.findIndex((p) => p >= seq.bStart);
      boundary = b > 0 ? b : null;
    }
    return { keep: keep, groups: groups, labels: labels, positions: positions, at: at, boundary: boundary };
  }

  /** Apply the page's toggles to one map's rows; returns {rows, q, k}. */
  RG.transform = function (rows, seqQ, seqK) {
    const q = view(seqQ);
    const k = view(seqK);
    let out = RG.dropPositions(rows, q.keep, k.keep);
    out = state.wordLevel ? RG.mergeGroups(out, q.groups, k.groups) : out;
    return { rows: out, q: q, k: k };
  };

  // ---------- drawing ----------
  function plotText(s) {
    // Plotly reads a subset of HTML in labels; entities keep every token literal.
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function clone(obj) {
    return JSON.parse(JSON.stringify(obj));
  }

  /** Draw rows `t` (from RG.transform) into `div`. `opts`: {shapes, filename, labels}. */
  function heatmap(div, t, title, causal, spec, opts) {
    opts = opts || {};
    const fig = clone(spec || page.figures.attention);
    const nq = t.rows.length;
    const nk = nq ? t.rows[0].length : 0;
    const xs = Array.from({ length: nk }, (_, j) => j);
    const ys = Array.from({ length: nq }, (_, i) => i);
    const qLabels = (opts.qLabels || t.q.labels).map(plotText);
    const kLabels = (opts.kLabels || t.k.labels).map(plotText);
    const z = t.rows.map(function (row, i) {
      return row.map(function (v, j) {
        return causal && t.k.positions[j] > t.q.positions[i] ? null : v;
      });
    });
    const trace = fig.data[0];
    trace.z = z;
    trace.x = xs;
    trace.y = ys;
    if (nq * nk <= 65536) {
      trace.customdata = ys.map((i) => xs.map((j) => [qLabels[i], kLabels[j]]));
      trace.hovertemplate =
        "Query %{y}: %{customdata[0]}<br>Key %{x}: %{customdata[1]}<br>weight %{z:.3f}<extra></extra>";
    } else {
      trace.hovertemplate = "Query %{y} → Key %{x}<br>weight %{z:.3f}<extra></extra>";
    }
    fig.layout.title.text = plotText(title); // titles hold user words (focus, candidates)
    fig.layout.xaxis.tickvals = xs;
    fig.layout.xaxis.ticktext = kLabels;
    fig.layout.yaxis.tickvals = ys;
    fig.layout.yaxis.ticktext = qLabels;
    const size = Math.max(360, Math.min(900, 120 + 18 * Math.max(nq, nk)));
    fig.layout.height = size;
    if (Math.max(nq, nk) > 80) {
      fig.layout.xaxis.tickmode = "auto";
      fig.layout.yaxis.tickmode = "auto";
    }
    if (RG.fitHeatmap) RG.fitHeatmap(fig, nq, nk, div); // templates/js/handin.js
    if (opts.shapes) fig.layout.shapes = (fig.layout.shapes || []).concat(opts.shapes);
    // Sentence pairs: a line between segment A and segment B on each axis that has one.
    const edge = { color: "#e8590c", width: 2 };
    const cuts = [];
    if (t.k.boundary !== undefined && t.k.boundary !== null) {
      const x = t.k.boundary - 0.5;
      cuts.push({ type: "line", xref: "x", yref: "y", x0: x, x1: x, y0: -0.5, y1: nq - 0.5, line: edge });
    }
    if (t.q.boundary !== undefined && t.q.boundary !== null) {
      const y = t.q.boundary - 0.5;
      cuts.push({ type: "line", xref: "x", yref: "y", x0: -0.5, x1: nk - 0.5, y0: y, y1: y, line: edge });
    }
    if (cuts.length) fig.layout.shapes = (fig.layout.shapes || []).concat(cuts);
    const config = { displaylogo: false, responsive: true };
    if (opts.filename) config.toImageButtonOptions = { format: "png", filename: opts.filename, scale: 2 };
    return Plotly.react(div, fig.data, fig.layout, config);
  }

  function controlValue(root, name, fallback) {
    const el = root.querySelector('[data-control="' + name + '"]');
    return el ? +el.value : fallback;
  }

  async function decodedMaps(entry) {
    if (!entry.maps) entry.maps = await Promise.all(entry.data.maps.map(RG.decodeMap));
    return entry.maps;
  }

  /** Encoder and decoder may differ in depth or width: fit a select to the drawn map. */
  function fitSelect(root, name, count) {
    const select = root.querySelector('[data-control="' + name + '"]');
    if (!select) return;
    const options = Array.from(select.options).filter((o) => +o.value >= 0);
    if (options.length === count) return;
    const keep = Math.min(+select.value, count - 1);
    options.forEach((o) => o.remove());
    const extra = select.querySelector('option[value="-1"]'); // "all layers" stays last
    for (let i = 0; i < count; i++) {
      const o = document.createElement("option");
      o.value = String(i);
      o.textContent = i + 1 + " [" + i + "]";
      select.insertBefore(o, extra);
    }
    select.value = String(keep);
  }

  async function drawHead(entry) {
    const root = entry.section.querySelector('[data-view="head"]');
    if (!root) return;
    const maps = await decodedMaps(entry);
    const mi = controlValue(root, "map", 0);
    fitSelect(root, "layer", maps[mi].meta.layers);
    fitSelect(root, "head", maps[mi].meta.heads);
    const layer = controlValue(root, "layer", page.startLayer);
    const head = controlValue(root, "head", page.startHead);
    const d = maps[mi];
    const seqs = entry.data.seqs;
    const t = RG.transform(RG.headMatrix(d, layer, head), seqs[d.meta.q], seqs[d.meta.k]);
    const title = "Layer " + (layer + 1) + ", Head " + (head + 1) + (maps.length > 1 ? " · " + d.meta.name : "");
    await heatmap(root.querySelector('[data-plot="head"]'), t, title, d.meta.causal);
  }

  async function drawAverage(entry) {
    const root = entry.section.querySelector('[data-view="average"]');
    if (!root) return;
    const maps = await decodedMaps(entry);
    const d = maps[controlValue(root, "map", 0)];
    fitSelect(root, "layer", d.meta.layers);
    const layer = controlValue(root, "layer", page.startLayer);
    const seqs = entry.data.seqs;
    const t = RG.transform(layer < 0 ? RG.allLayersAverage(d) : RG.layerAverage(d, layer), seqs[d.meta.q], seqs[d.meta.k]);
    const entropy = RG.rowEntropy(t.rows);
    const n = t.rows.length ? t.rows[0].length : 1;
    root.querySelector("[data-entropy]").textContent =
      "mean entropy " + entropy.toFixed(3) + " nats (" + (n > 1 ? entropy / Math.log(n) : 0).toFixed(3) +
      " of the maximum log n)";
    const what = layer < 0
      ? "All " + d.meta.layers + " layers, average of " + d.meta.layers * d.meta.heads + " heads"
      : "Layer " + (layer + 1) + ", average of " + d.meta.heads + " heads";
    await heatmap(root.querySelector('[data-plot="average"]'), t, what + (maps.length > 1 ? " · " + d.meta.name : ""), d.meta.causal);
  }

  /** bertviz's parameters. Its `attention` list holds one self-attention map (with the
   * five sentence-pair filters when the input is a pair), or, for an encoder-decoder
   * model, bertviz's own encoder-decoder form: "Encoder", "Decoder" and "Cross". */
  function headViewParams(entry, maps, layers, domId) {
    const seqs = entry.data.seqs;
    const one = function (name, decoded) {
      const m = decoded.meta;
      const t = RG.transform(RG.headMatrix(decoded, 0, 0), seqs[m.q], seqs[m.k]);
      const attn = layers.map((l) =>
        Array.from({ length: m.heads }, (_, h) => RG.transform(RG.headMatrix(decoded, l, h), seqs[m.q], seqs[m.k]).rows),
      );
      return { view: t, item: { name: name, attn: attn, left_text: t.q.labels, right_text: t.k.labels } };
    };
    const attention = [];
    if (maps.length > 1) {
      // "Encoder self-attention" -> "Encoder", "Decoder self-attention" -> "Decoder", "Cross-attention" -> "Cross".
      for (const d of maps) attention.push(one(d.meta.name.split(/[\s-]/)[0], d).item);
    } else {
      const first = one(null, maps[0]);
      attention.push(first.item);
      const b = first.view.q.boundary;
      if (maps[0].meta.q === maps[0].meta.k && b !== null) {
        // bertviz's sentence-pair filters: All, A->A, B->B, A->B, B->A (on the drawn axis,
        // so they follow the word-level and hide-special toggles).
        const full = first.item.attn;
        const labels = first.item.left_text;
        const ranges = { a: [0, b], b: [b, labels.length] };
        first.item.name = page.pairFilters[0];
        [["a", "a"], ["b", "b"], ["a", "b"], ["b", "a"]].forEach(function (p, i) {
          const qr = ranges[p[0]];
          const kr = ranges[p[1]];
          attention.push({
            name: page.pairFilters[i + 1],
            attn: full.map((heads) => heads.map((rows) => rows.slice(qr[0], qr[1]).map((row) => row.slice(kr[0], kr[1])))),
            left_text: labels.slice(qr[0], qr[1]),
            right_text: labels.slice(kr[0], kr[1]),
          });
        });
      }
    }
    return {
      attention: attention,
      default_filter: "0",
      root_div_id: domId,
      layer: layers.includes(page.startLayer) ? page.startLayer : layers[0],
      heads: null,
      include_layers: layers,
    };
  }

  async function drawHeadView(entry, allLayers) {
    const holder = entry.section.querySelector('[data-plot="headview"]');
    if (!holder) return;
    const maps = await decodedMaps(entry);
    const d = maps[0];
    const domId = "rg-hv-" + entry.section.id;
    const oneLayer = entry.data.layerAtATime && !allLayers;
    // bertviz draws one SVG line per head and token pair of the layer shown: 3.1 million
    // for 12 heads x 512 tokens, a minute of frozen page. Past HEAD_VIEW_ASK_LINES the
    // head view waits for a click, so a long input opens and stays responsive.
    const lines = d.meta.heads * d.meta.nq * d.meta.nk;
    if (oneLayer && !entry.headViewAsked && lines > HEAD_VIEW_ASK_LINES) {
      const ask = document.createElement("button");
      ask.type = "button";
      ask.className = "rg-more";
      ask.textContent = "Draw the head view (" + lines.toLocaleString("en") + " lines: slow)";
      ask.addEventListener("click", function () {
        entry.headViewAsked = true;
        drawHeadView(entry, false).catch(fail);
      });
      holder.replaceChildren(ask);
      return;
    }
    const layers = oneLayer ? [Math.min(page.startLayer, d.meta.layers - 1)] : Array.from({ length: d.meta.layers }, (_, l) => l);
    const params = headViewParams(entry, maps, layers, domId);
    // bertviz's markup contract: #root > select#layer (+ select#filter) and div#vis.
    holder.textContent = "";
    const root = document.createElement("div");
    root.id = domId;
    root.className = "rg-bertviz";
    const bar = document.createElement("span");
    bar.append("Layer: ");
    const layerSelect = document.createElement("select");
    layerSelect.id = "layer";
    bar.append(layerSelect);
    if (params.attention.length > 1) {
      bar.append(" Attention: ");
      const filter = document.createElement("select");
      filter.id = "filter";
      params.attention.forEach(function (a, i) {
        const o = document.createElement("option");
        o.value = String(i);
        o.textContent = a.name;
        filter.append(o);
      });
      bar.append(filter);
    }
    root.append(bar);
    if (oneLayer) {
      const more = document.createElement("button");
      more.type = "button";
      more.className = "rg-more";
      more.textContent = "Load all " + d.meta.layers + " layers";
      more.addEventListener("click", () => drawHeadView(entry, true).catch(fail));
      root.append(" ", more);
    }
    const vis = document.createElement("div");
    vis.id = "vis";
    root.append(vis);
    holder.append(root);
    window.reportgenHeadView(params);
    // bertviz labels layers 0-based; the report names them 1-based with the index in brackets.
    layerSelect.querySelectorAll("option").forEach((o) => (o.textContent = +o.value + 1 + " [" + o.value + "]"));
  }

  async function render(entry) {
    entry.section.dataset.rgRendered = "0";
    await drawHead(entry);
    await drawAverage(entry);
    for (const hook of RG.sectionHooks) await hook(entry);
    await drawHeadView(entry, false);
    entry.rendered = true;
    entry.section.dataset.rgRendered = "1";
  }

  async function drawOther(other) {
    other.section.dataset.rgRendered = "0";
    await other.draw();
    other.rendered = true;
    other.section.dataset.rgRendered = "1";
  }

  function fail(err) {
    console.error("reportgen:", err);
    const box = document.getElementById("rg-error") || document.createElement("div");
    box.id = "rg-error";
    box.className = "rg-error";
    box.textContent = "This report could not draw a view: " + (err && err.message ? err.message : err);
    document.body.prepend(box);
  }

  // Views in templates/js/ register here before this script runs:
  // async function (entry) -> void, called when a sentence is drawn or redrawn.
  RG.sectionHooks = RG.sectionHooks || [];
  RG.page = page;
  RG.state = state;
  RG.sentences = sentences;
  RG.heatmap = heatmap;
  RG.decodedMaps = decodedMaps;
  RG.controlValue = controlValue;
  RG.fail = fail;
  RG.clone = clone;
  RG.plotText = plotText;

  function wire(entry) {
    const sec = entry.section;
    sec.querySelectorAll('[data-view="head"] select').forEach((el) =>
      el.addEventListener("change", () => drawHead(entry).catch(fail)),
    );
    sec.querySelectorAll('[data-view="average"] select').forEach((el) =>
      el.addEventListener("change", () => drawAverage(entry).catch(fail)),
    );
  }

  // Other lazily drawn sections (minimal pairs) register a renderer by class name.
  RG.sectionRenderers = RG.sectionRenderers || {};
  const others = [];

  function rerenderAll() {
    for (const entry of sentences.values()) if (entry.rendered) render(entry).catch(fail);
    for (const other of others) if (other.rendered) drawOther(other).catch(fail);
  }

  async function loadLibraries() {
    window.require = { config: function () {} };
    window.requirejs = function (deps, callback) {
      callback(window.jQuery, window.d3);
    };
    // Inflate all at once (off the main thread), then run them in order.
    const blocks = Array.from(document.querySelectorAll('script[type="application/x-reportgen-lib"]'));
    const sources = await Promise.all(blocks.map((el) => RG.decodeText(el.textContent)));
    for (const source of sources) {
      const script = document.createElement("script");
      script.textContent = source;
      document.head.appendChild(script);
    }
  }

  function setupNav() {
    const search = document.getElementById("rg-search");
    if (!search) return;
    search.addEventListener("input", function () {
      const needle = search.value.trim().toLowerCase();
      document.querySelectorAll("#rg-sentence-list li").forEach(function (li) {
        li.hidden = needle !== "" && !li.dataset.text.includes(needle);
      });
    });
  }

  async function main() {
    await loadLibraries();
    setupNav();
    document.getElementById("rg-word-level").addEventListener("change", function (e) {
      state.wordLevel = e.target.checked;
      rerenderAll();
    });
    document.getElementById("rg-hide-special").addEventListener("change", function (e) {
      state.hideSpecial = e.target.checked;
      rerenderAll();
    });
    const queue = [];
    const observer = new IntersectionObserver(
      function (records) {
        for (const r of records) {
          if (!r.isIntersecting) continue;
          observer.unobserve(r.target);
          const entry = sentences.get(r.target.id);
          if (entry) queue.push(entry);
          else {
            const other = others.find((o) => o.section === r.target);
            if (other) queue.push(other);
          }
        }
        drain();
      },
      { rootMargin: "300px 0px" },
    );
    let draining = false;
    async function drain() {
      if (draining) return;
      draining = true;
      while (queue.length) {
        const next = queue.shift();
        if (next.rendered) continue; // queued twice: by scrolling and by printing
        await (next.draw ? drawOther(next) : render(next)).catch(fail);
      }
      draining = false;
    }
    document.querySelectorAll("section.rg-sentence").forEach(function (section) {
      const data = JSON.parse(document.getElementById("rg-data-" + section.id).textContent);
      const entry = { section: section, data: data, maps: null, rendered: false };
      sentences.set(section.id, entry);
      wire(entry);
      observer.observe(section);
    });
    for (const [selector, renderer] of Object.entries(RG.sectionRenderers)) {
      document.querySelectorAll(selector).forEach(function (section) {
        const data = JSON.parse(document.getElementById("rg-data-" + section.id).textContent);
        const other = { section: section, data: data, rendered: false };
        other.draw = () => renderer(other);
        others.push(other);
        observer.observe(section);
      });
    }
    // Printing needs every figure, but the browser snapshots the page right after
    // "beforeprint" without waiting for async drawing: the Print button draws everything
    // first, then prints. ("beforeprint" still starts the drawing for a second attempt.)
    const drawEverything = async function () {
      for (const entry of sentences.values()) if (!entry.rendered) queue.push(entry);
      for (const other of others) if (!other.rendered) queue.push(other);
      await drain();
      while (draining) await new Promise((resolve) => setTimeout(resolve, 50));
    };
    RG.drawEverything = drawEverything;
    window.addEventListener("beforeprint", () => drawEverything().catch(fail));
    const printButton = document.getElementById("rg-print");
    if (printButton) {
      printButton.addEventListener("click", async function () {
        const status = document.getElementById("rg-print-status");
        status.textContent = "Drawing every view for printing…";
        await drawEverything().catch(fail);
        status.textContent = "";
        window.print();
      });
    }
    document.body.dataset.rgReady = "1";
  }

  main().catch(fail);
})();
