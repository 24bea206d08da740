/* The page's maths on plain rows: hiding special tokens, word merging, entropy, rollout,
 * the difference of a minimal pair. Each mirrors a function of reportgen/analysis.py,
 * and tests/test_agreement.py checks that the two agree to 1e-6. No DOM here. */
"use strict";
(function () {
  const RG = window.reportgen;

  function renormalise(rows) {
    return rows.map(function (row) {
      const total = row.reduce((a, b) => a + b, 0);
      return total > 0 ? row.map((v) => v / total) : row.map(() => 1 / row.length);
    });
  }

  /** analysis.drop_positions: remove rows/columns whose flag is false, renormalise rows. */
  RG.dropPositions = function (rows, keepQ, keepK) {
    const kept = rows.filter((_, i) => keepQ[i]).map((row) => row.filter((_, j) => keepK[j]));
    return renormalise(kept);
  };

  /** analysis.merge_groups: TO a word sums its pieces, FROM a word averages them. */
  RG.mergeGroups = function (rows, groupsQ, groupsK) {
    return groupsQ.map(function (gq) {
      return groupsK.map(function (gk) {
        let total = 0;
        for (const i of gq) for (const j of gk) total += rows[i][j];
        return total / gq.length;
      });
    });
  };

  /** analysis.mean_entropy of one map: the mean over rows of each row's entropy (nats). */
  RG.rowEntropy = function (rows) {
    let sum = 0;
    for (const row of rows) {
      let h = 0;
      for (const p of row) if (p > 0) h -= p * Math.log(p);
      sum += h;
    }
    return rows.length ? sum / rows.length : 0;
  };

  RG.matmul = function (a, b) {
    const m = b.length ? b[0].length : 0;
    return a.map(function (ai) {
      const row = new Array(m).fill(0);
      for (let k = 0; k < b.length; k++) {
        const v = ai[k];
        if (v === 0) continue;
        const bk = b[k];
        for (let j = 0; j < m; j++) row[j] += v * bk[j];
      }
      return row;
    });
  };

  /** analysis.rollout, one layer at a time: `previous` is the rollout below (or null),
   * `average` this layer's head average; returns the rollout through this layer. */
  RG.rolloutStep = function (previous, average) {
    const a = average.map(function (row, i) {
      const mixed = row.map((v, j) => 0.5 * v + (i === j ? 0.5 : 0));
      const total = mixed.reduce((x, y) => x + y, 0);
      return mixed.map((v) => v / total);
    });
    return previous ? RG.matmul(a, previous) : a;
  };

  /** A word's label: its pieces joined, less lone whitespace glyphs ("␣" + "Das" -> "Das");
   * nexttoken._word_text in Python. */
  const BLANK = /^[␣↵⇥]+$/;
  RG.wordLabel = function (parts) {
    const solid = parts.filter((p) => !BLANK.test(p));
    return (solid.length ? solid : parts).join("");
  };

  /** One SeqRecord's axis after the toggles `opts` ({wordLevel, hideSpecial}). */
  RG.axis = function (seq, opts) {
    const n = seq.tokens.length;
    const keep = seq.tokens.map((_, i) => !(opts.hideSpecial && seq.special[i]));
    if (!keep.some(Boolean)) keep.fill(true); // a sentence of only special tokens
    const index = new Map();
    let kept = 0;
    for (let i = 0; i < n; i++) if (keep[i]) index.set(i, kept++);
    let groups = [];
    if (opts.wordLevel) {
      for (const g of seq.words) {
        const mapped = g.filter((i) => keep[i]).map((i) => index.get(i));
        if (mapped.length) groups.push(mapped);
      }
    } else {
      groups = Array.from({ length: kept }, (_, i) => [i]);
    }
    const keptTokens = seq.tokens.filter((_, i) => keep[i]);
    const labels = groups.map((g) => RG.wordLabel(g.map((i) => keptTokens[i])));
    // Original position of each group's first piece, for the causal mask.
    const orig = [];
    for (let i = 0; i < n; i++) if (keep[i]) orig.push(i);
    const positions = groups.map((g) => orig[g[0]]);
    const members = groups.map((g) => g.map((k) => orig[k])); // original positions of each
    const at = new Array(n).fill(-1); // original position -> index on the drawn axis
    groups.forEach((g, gi) => g.forEach((k) => (at[orig[k]] = gi)));
    // Sentence pairs: index on the drawn axis of segment B's first token (null: no pair).
    let boundary = null;
    if (seq.b_start !== undefined && seq.b_start !== null) {
      const b = positions.findIndex((p) => p >= seq.b_start);
      boundary = b > 0 ? b : null;
    }
    // `tags`: short labels for a strip of buttons (a long page's blocks name their range).
    return { keep: keep, groups: groups, labels: labels, tags: labels, positions: positions, members: members, at: at, boundary: boundary };
  };

  /** Apply the toggles (default: the page's) to one map's rows; returns {rows, q, k}. */
  RG.transform = function (rows, seqQ, seqK, opts) {
    opts = opts || RG.state;
    const q = RG.axis(seqQ, opts);
    const k = RG.axis(seqK, opts);
    let out = RG.dropPositions(rows, q.keep, k.keep);
    out = opts.wordLevel ? RG.mergeGroups(out, q.groups, k.groups) : out;
    return { rows: out, q: q, k: k };
  };

  /** Whether drawn key column `j` of `t` is an attention sink, a column that the page's
   * one sink control leaves out of colour ranges: on a long page the key blocks found in
   * Python (figures.sink_columns, carried as the axis's `sinks`), on a short page key
   * position 0, where causal models put theirs. */
  RG.isSink = (t, j) => (t.k.sinks ? t.k.sinks.has(j) : t.k.positions[j] === 0);

  /** Minimal pair, same drawn shape: A - B cell by cell. */
  RG.subtract = function (rowsA, rowsB) {
    return rowsA.map((row, i) => row.map((v, j) => v - rowsB[i][j]));
  };

  /** Minimal pair, different tokenisations: A - B over aligned words (word level, specials
   * their own words). `alignment` holds [word in A, word in B] pairs. */
  RG.alignedDifference = function (rowsA, seqA, rowsB, seqB, alignment) {
    const wa = RG.mergeGroups(rowsA, seqA.words, seqA.words);
    const wb = RG.mergeGroups(rowsB, seqB.words, seqB.words);
    return alignment.map((pi) => alignment.map((pj) => wa[pi[0]][pj[0]] - wb[pi[1]][pj[1]]));
  };

  /** A row averaged over `positions` (the pieces of the followed word). */
  RG.meanRow = function (rows, positions) {
    const out = new Array(rows[0].length).fill(0);
    for (const p of positions) rows[p].forEach((v, j) => (out[j] += v / positions.length));
    return out;
  };
})();
