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
  RG.state = { wordLevel: false, hideSpecial: false, leaveOutFirst: false };
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
