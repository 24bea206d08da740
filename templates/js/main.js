/* The coordinator, last in load order, for every page kind: <body data-rg-page> names
 * the entry below. Each entry states what it needs; then one path for all: load the
 * libraries, find the sections (every <section id> or <main id> with a
 * <script id="rg-data-ID"> data block), wire each view's selectors, draw lazily
 * (lazy.js) and wire printing (print.js). */
"use strict";
(function () {
  const RG = window.reportgen;

  /** The one way a selector is wired: a change redraws the view that holds it;
   * [data-rg-rendered] on the view tells when it is done. */
  function wireSelectors(entry) {
    for (const root of entry.section.querySelectorAll("[data-view]")) {
      if (!RG.views[root.dataset.view]) continue;
      root.querySelectorAll("select[data-control]").forEach((el) =>
        el.addEventListener("change", () => RG.drawView(entry, root).catch(RG.fail)), // lazy.js
      );
    }
  }

  /** A page-wide toggle: its checkbox holds RG.state[key] (its default too: the long page
   * leaves sinks out from the start); buttons marked `proxies` flip the same box, so a
   * view can offer the control beside what it changes and it stays one control. */
  function wireToggle(id, key, proxies) {
    const box = document.getElementById(id);
    if (!box) return;
    RG.state[key] = box.checked;
    box.addEventListener("change", function () {
      RG.state[key] = box.checked;
      RG.redrawAll(); // lazy.js
    });
    if (!proxies) return;
    document.querySelectorAll(proxies).forEach((button) =>
      button.addEventListener("click", function () {
        box.checked = !box.checked;
        box.dispatchEvent(new Event("change"));
      }),
    );
  }

  /** The page's Measure choice (report.contributions.MEASURES): RG.state.measure names the
   * map every view of a sentence draws in place of the weights (store.js decodedMaps). */
  function wireMeasure() {
    const select = document.getElementById("rg-measure");
    if (!select) return;
    RG.state.measure = select.value;
    select.addEventListener("change", function () {
      RG.state.measure = select.value;
      RG.redrawAll(); // lazy.js
    });
  }

  function setupSearch() {
    const search = document.getElementById("rg-search");
    if (!search) return;
    search.addEventListener("input", function () {
      const needle = search.value.trim().toLowerCase();
      document.querySelectorAll("#rg-sentence-list li").forEach(function (li) {
        li.hidden = needle !== "" && !li.dataset.text.includes(needle);
      });
    });
  }

  const MODERN = "a browser from 2023 or later (Chrome 80, Firefox 113, Safari 16.4) to draw its figures";
  const PAGES = {
    // The per-sentence report (report.html.j2, render.PAGE_SCRIPTS).
    report: {
      unsupported: "This report needs " + MODERN + ".",
      early: setupSearch, // the sentence list filters without any figure
      beforeLibraries: () => [RG.installRequireStandIn], // bertviz.js: bertviz expects require.js
      setup() {
        wireToggle("rg-word-level", "wordLevel");
        wireToggle("rg-hide-special", "hideSpecial");
        wireToggle("rg-leave-out-sinks", "leaveOutSinks", "[data-sink-toggle]"); // the one sink control
        wireMeasure();
      },
    },
    // The head atlas (atlas.html.j2, render.ATLAS_SCRIPTS).
    atlas: {
      unsupported: "This atlas needs " + MODERN + "; its tables are below.",
      early() {},
      beforeLibraries: () => [],
      setup: () => RG.setupAtlas(), // atlas.js: the label table chooses a head
    },
  };

  async function main() {
    const page = PAGES[document.body.dataset.rgPage];
    if (!page) throw new Error("no page kind '" + document.body.dataset.rgPage + "'");
    page.early();
    if (!RG.supported()) {
      RG.notice(page.unsupported);
      document.body.dataset.rgReady = "unsupported";
      return;
    }
    await RG.loadLibraries(...page.beforeLibraries());
    page.setup();
    const entries = [];
    document.querySelectorAll("section[id], main[id]").forEach(function (section) {
      const data = RG.readJson("rg-data-" + section.id);
      if (!data) return;
      const entry = { section: section, data: data, maps: null, rendered: false };
      RG.sections.set(section.id, entry);
      wireSelectors(entry);
      entries.push(entry);
    });
    RG.watchSections(entries);
    RG.setupPrinting(); // print.js
    document.body.dataset.rgReady = "1";
  }

  main().catch(RG.fail);
})();
