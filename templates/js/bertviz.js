/* Everything bertviz's head view needs, in one place: the two-line require.js stand-in
 * its script calls, its parameters, its fixed element ids (#layer, #filter, #vis inside
 * the root div), its 0-based layer labels, renamed the report's way, and what its lines
 * are: a clicked line is told as an "rg-headview-pick" event (qk.js listens). */
"use strict";
(function () {
  const RG = window.reportgen;
  const ASK_LINES = 100000; // ~1.5 s of drawing on a slow laptop core

  /** bertviz loads d3 and jQuery through require.js; the page inlines both. */
  RG.installRequireStandIn = function () {
    window.require = { config: function () {} };
    window.requirejs = function (deps, callback) {
      callback(window.jQuery, window.d3);
    };
  };

  /** bertviz's parameters. Its `attention` list holds one self-attention map (with the
   * five sentence-pair filters when the input is a pair), or, for an encoder-decoder
   * model, bertviz's own encoder-decoder form: "Encoder", "Decoder" and "Cross".
   * `axes`, one per item of that list: its map and the sentence position of each of its
   * left (query) and right (key) tokens. */
  function params(shown, layers, domId, chosen) {
    const axes = [];
    const one = function (name, s, mi) {
      const t = s.at(0, 0);
      const attn = layers.map((l) => Array.from({ length: s.heads }, (_, h) => s.at(l, h).rows));
      axes.push({ map: mi, q: t.q.positions, k: t.k.positions });
      return { view: t, item: { name: name, attn: attn, left_text: t.q.labels, right_text: t.k.labels } };
    };
    const names = { encoder_self: "Encoder", decoder_self: "Decoder", cross: "Cross" };
    const attention = [];
    if (shown.length > 1) {
      shown.forEach((s, mi) => attention.push(one(names[s.meta.id] || s.meta.name, s, mi).item));
    } else {
      const first = one(null, shown[0], 0);
      attention.push(first.item);
      const b = first.view.q.boundary;
      if (shown[0].meta.query_seq === shown[0].meta.key_seq && b !== null) {
        // bertviz's sentence-pair filters: All, A->A, B->B, A->B, B->A (on the drawn axis,
        // so they follow the word-level and hide-special toggles).
        const full = first.item.attn;
        const labels = first.item.left_text;
        const ranges = { a: [0, b], b: [b, labels.length] };
        first.item.name = RG.page.pair_filters[0];
        [["a", "a"], ["b", "b"], ["a", "b"], ["b", "a"]].forEach(function (p, i) {
          const qr = ranges[p[0]];
          const kr = ranges[p[1]];
          attention.push({
            name: RG.page.pair_filters[i + 1],
            attn: full.map((heads) => heads.map((rows) => rows.slice(qr[0], qr[1]).map((row) => row.slice(kr[0], kr[1])))),
            left_text: labels.slice(qr[0], qr[1]),
            right_text: labels.slice(kr[0], kr[1]),
          });
          axes.push({ map: 0, q: axes[0].q.slice(qr[0], qr[1]), k: axes[0].k.slice(kr[0], kr[1]) });
        });
      }
    }
    const bertviz = {
      attention: attention,
      default_filter: "0",
      root_div_id: domId,
      layer: layers.includes(chosen.layer) ? chosen.layer : layers[0],
      heads: chosen.head === null ? null : [chosen.head], // one head, when the grid chose it
      include_layers: layers,
    };
    return { bertviz: bertviz, axes: axes };
  }

  /** Tell a click on a line of the head view, as an "rg-headview-pick" event on `root`
   * ({map, layer, head, query, key, drawn, shift}: sentence positions). bertviz draws one
   * line per head and token pair (<g class="headAttention" head-index> > <g> > <line
   * left-token-index right-token-index stroke-opacity>), every head's line of a pair in
   * the same place, so the clicked element is the topmost whatever its colour: the pair's
   * head is the one whose line is strongest (stroke-opacity is weight / heads shown, 0 for
   * a head not shown), ties to the lower head; `drawn` heads draw the pair. Delegated
   * from our own box, which bertviz's redraws (layer, filter) leave in place. */
  function wirePicks(root, box, axes) {
    box.addEventListener("click", function (ev) {
      const line = ev.target.closest("#attention line");
      if (!line) return;
      const i = line.getAttribute("left-token-index");
      const j = line.getAttribute("right-token-index");
      const same = '#attention line[left-token-index="' + i + '"][right-token-index="' + j + '"]';
      let head = -1;
      let best = 0;
      let drawn = 0;
      for (const l of box.querySelectorAll(same)) {
        const opacity = +l.getAttribute("stroke-opacity");
        if (!(opacity > 0)) continue;
        drawn += 1;
        if (opacity <= best) continue;
        best = opacity;
        head = +l.parentNode.parentNode.getAttribute("head-index");
      }
      if (head < 0) return; // a line no shown head draws (report.css lets clicks through)
      const filter = box.querySelector("#filter");
      const axis = axes[filter ? +filter.value : 0];
      const detail = {
        map: axis.map,
        layer: +box.querySelector("#layer").value,
        head: head,
        query: axis.q[+i],
        key: axis.k[+j],
        drawn: drawn,
        shift: ev.shiftKey,
      };
      root.dispatchEvent(new CustomEvent("rg-headview-pick", { bubbles: true, detail: detail }));
    });
  }

  function button(text, onClick) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "rg-more";
    b.textContent = text;
    b.addEventListener("click", () => onClick().catch(RG.fail));
    return b;
  }

  async function drawHeadView(entry, root, allLayers) {
    const holder = root.querySelector('[data-plot="headview"]');
    const maps = await RG.decodedMaps(entry);
    const d = maps[0];
    const domId = "rg-hv-" + entry.section.id;
    const oneLayer = entry.data.layer_at_a_time && !allLayers;
    // bertviz draws one SVG line per head and token pair of the layer shown: 3.1 million
    // for 12 heads x 512 tokens, a minute of frozen page. Past ASK_LINES the head view
    // waits for a click, so a long input opens and stays responsive.
    const lines = d.meta.heads * d.meta.n_query * d.meta.n_key;
    if (oneLayer && !entry.headViewAsked && lines > ASK_LINES) {
      holder.replaceChildren(
        button("Draw the head view (" + lines.toLocaleString("en") + " lines: slow)", function () {
          entry.headViewAsked = true;
          return drawHeadView(entry, root, false);
        }),
      );
      return;
    }
    // The grid of all heads may have chosen a head (grid.js); else the page's first one.
    const chosen = entry.headViewChoice || { layer: RG.page.start_layer, head: null };
    const layers = oneLayer
      ? [Math.min(chosen.layer, d.meta.layers - 1)]
      : Array.from({ length: d.meta.layers }, (_, l) => l);
    const shown = await Promise.all(maps.map((_, i) => RG.shownMaps(entry, i))); // views.js
    const { bertviz: p, axes } = params(shown, layers, domId, chosen);
    // bertviz's markup contract: #root > select#layer (+ select#filter) and div#vis.
    holder.textContent = "";
    const box = document.createElement("div");
    box.id = domId;
    box.className = "rg-bertviz";
    const bar = document.createElement("span");
    bar.append("Layer: ");
    const layerSelect = document.createElement("select");
    layerSelect.id = "layer";
    bar.append(layerSelect);
    if (p.attention.length > 1) {
      bar.append(" Attention: ");
      const filter = document.createElement("select");
      filter.id = "filter";
      RG.fillSelect(filter, p.attention.map((a) => a.name));
      bar.append(filter);
    }
    box.append(bar);
    if (oneLayer) {
      box.append(" ", button("Load all " + d.meta.layers + " layers", () => drawHeadView(entry, root, true)));
    }
    const vis = document.createElement("div");
    vis.id = "vis";
    box.append(vis);
    holder.append(box);
    window.reportgenHeadView(p);
    wirePicks(root, box, axes);
    // bertviz labels layers 0-based; the report names them 1-based with the index in brackets.
    layerSelect.querySelectorAll("option").forEach((o) => (o.textContent = +o.value + 1 + " [" + o.value + "]"));
  }

  RG.registerView("headview", (entry, root) => drawHeadView(entry, root, false));
})();
