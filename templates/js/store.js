/* Decoding the page's data (format: reportgen/store.py): gzip+base64 blocks through
 * the browser's DecompressionStream, packed attention maps into Float32Arrays, and
 * slices of a decoded map as plain rows. */
"use strict";
(function () {
  const RG = window.reportgen;

  function base64Bytes(text) {
    const bin = atob(text.trim());
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  async function gunzip(bytes) {
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  RG.decodeText = async function (b64) {
    return new TextDecoder().decode(await gunzip(base64Bytes(b64)));
  };

  /** One MapRecord: low-byte plane then high-byte plane of uint16 values / scale. */
  RG.decodeMap = async function (m) {
    const planes = await gunzip(base64Bytes(m.data));
    const count = planes.length / 2;
    const values = new Float32Array(count);
    for (let i = 0; i < count; i++) values[i] = (planes[i] | (planes[count + i] << 8)) / m.scale;
    return { meta: m, values: values };
  };

  /** IEEE half precision (one uint16) as a number. */
  function halfValue(h) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) return sign * frac * Math.pow(2, -24); // subnormal
    if (exp === 31) return frac ? NaN : sign * Infinity;
    return sign * (1 + frac / 1024) * Math.pow(2, exp - 15);
  }

  /** Packed half values (store.pack_half): the two byte planes of little-endian float16,
   * as a Float32Array (which holds every half value exactly). */
  RG.decodeHalf = async function (b64) {
    const planes = await gunzip(base64Bytes(b64));
    const count = planes.length / 2;
    const values = new Float32Array(count);
    for (let i = 0; i < count; i++) values[i] = halfValue(planes[i] | (planes[count + i] << 8));
    return values;
  };

  /** A sentence entry's maps, decoded once. */
  /** The sentence's maps as weights, whatever the Measure choice (the hand-in answer). */
  RG.weightMaps = async function (entry) {
    if (!entry.maps) entry.maps = await Promise.all(entry.data.maps.map(RG.decodeMap));
    return entry.maps;
  };

  RG.decodedMaps = async function (entry) {
    await RG.weightMaps(entry);
    const id = RG.state.measure;
    const record = (entry.data.measures || []).find((m) => m.id === id);
    if (!record) return entry.maps; // the weights
    // The Measure choice swaps the first map's weights for the measure's map (the same
    // tokens; a per-layer measure has one "head"); every other map stays weights.
    entry.measured = entry.measured || {};
    if (!entry.measured[id]) entry.measured[id] = [await RG.decodeMap(record.map), ...entry.maps.slice(1)];
    return entry.measured[id];
  };

  /** What a view's title adds for map `mi` under the Measure choice: "" for weights, else
   * the measure's label (per-layer measures say that they have no heads). */
  RG.measureTitle = function (entry, mi) {
    const record = mi === 0 && (entry.data.measures || []).find((m) => m.id === RG.state.measure);
    if (!record) return "";
    const choice = RG.page.measures.find((m) => m.id === record.id);
    return " · " + choice.label + (choice.per_layer ? " (per layer: no heads)" : "");
  };

  /** One head's map as an array of rows (plain arrays). */
  RG.headMatrix = function (decoded, layer, head) {
    const m = decoded.meta;
    const base = (layer * m.heads + head) * m.n_query * m.n_key;
    const rows = [];
    for (let i = 0; i < m.n_query; i++) {
      rows.push(Array.from(decoded.values.subarray(base + i * m.n_key, base + (i + 1) * m.n_key)));
    }
    return rows;
  };

  /** Mean over one layer's heads. */
  RG.layerAverage = function (decoded, layer) {
    const m = decoded.meta;
    const rows = [];
    for (let i = 0; i < m.n_query; i++) rows.push(new Array(m.n_key).fill(0));
    for (let h = 0; h < m.heads; h++) {
      const base = (layer * m.heads + h) * m.n_query * m.n_key;
      for (let i = 0; i < m.n_query; i++) {
        for (let j = 0; j < m.n_key; j++) rows[i][j] += decoded.values[base + i * m.n_key + j] / m.heads;
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
})();
