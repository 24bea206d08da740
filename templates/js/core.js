/* reportgen's page namespace and its one registry of views.
 * Each later module adds to window.reportgen (RG). A view is registered under the name
 * its markup carries (<div data-view="NAME">) and draws one section's copy of it:
 *   RG.registerView("NAME", async function (entry, root) { ... });
 * `entry` is the section ({section, data, kind}), `root` the [data-view] element; every
 * <select data-control> inside `root` redraws the view when it changes (main.js).
 * The data format is described once, in reportgen/store.py. */
"use strict";
(function () {
  const RG = (window.reportgen = window.reportgen || {});
  RG.views = {};
  // The page's toggles (main.js reads each from its checkbox); every view reads them here.
  RG.state = { wordLevel: false, hideSpecial: false, leaveOutSinks: false, measure: "weights" };
  RG.sections = new Map(); // section id -> entry

  RG.registerView = function (name, draw) {
    if (name in RG.views) throw new Error("view '" + name + "' is registered twice");
    RG.views[name] = draw;
  };

  RG.readJson = function (id) {
    const el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  };

  RG.page = RG.readJson("rg-config");

  /** The value of a [data-control] select inside `root` (numbers), or `fallback`. */
  RG.controlValue = function (root, name, fallback) {
    const el = root.querySelector('[data-control="' + name + '"]');
    return el ? +el.value : fallback;
  };

  /** Refill `select` with `labels` (values "0".."n-1") when they changed, keeping the
   * choice (clamped) and any option with a negative value ("all layers", "average")
   * where it stands. Every view's select is filled here. */
  RG.fillSelect = function (select, labels) {
    const numbered = Array.from(select.options).filter((o) => +o.value >= 0);
    if (numbered.length === labels.length && numbered.every((o, i) => o.textContent === labels[i])) return;
    const before = numbered.length ? numbered[numbered.length - 1].nextSibling : select.firstChild;
    const keep = +select.value < 0 ? select.value : String(Math.min(Math.max(+select.value || 0, 0), labels.length - 1));
    numbered.forEach((o) => o.remove());
    labels.forEach(function (text, i) {
      const o = document.createElement("option");
      o.value = String(i);
      o.textContent = text;
      select.insertBefore(o, before);
    });
    select.value = keep;
  };

  /** Labels of 0-based indices the page's way: "1 [0]", "2 [1]", ... */
  RG.indexLabels = (count) => Array.from({ length: count }, (_, i) => i + 1 + " [" + i + "]");

  /** The largest value of a grid (rows of numbers; null cells skipped), leaving out the
   * cells where `leaveOut(i, j)` holds; with `abs`, the largest magnitude. 0 if none. */
  RG.largest = function (rows, leaveOut, abs) {
    let top = 0;
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i];
      for (let j = 0; j < row.length; j++) {
        const v = row[j];
        if (v === null || (leaveOut && leaveOut(i, j))) continue;
        const x = abs ? Math.abs(v) : v;
        if (x > top) top = x;
      }
    }
    return top;
  };

  RG.fail = function (err) {
    console.error("reportgen:", err);
    RG.notice("This report could not draw a view: " + (err && err.message ? err.message : err));
  };

  /** One line at the top of the page. */
  RG.notice = function (text) {
    const box = document.getElementById("rg-error") || document.createElement("div");
    box.id = "rg-error";
    box.className = "rg-error";
    box.textContent = text;
    document.body.prepend(box);
  };
})();
