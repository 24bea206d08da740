/* The coordinator, last in load order: load the libraries, find the sections (every
 * <section id> with a <script id="rg-data-ID"> data block), wire the toggles and each
 * view's selectors, then draw lazily. */
"use strict";
(function () {
  const RG = window.reportgen;

  /** The one way a selector is wired: a change redraws the view that holds it. */
  function wireSelectors(entry) {
    for (const root of entry.section.querySelectorAll("[data-view]")) {
      const draw = RG.views[root.dataset.view];
      if (!draw) continue;
      root.querySelectorAll("select[data-control]").forEach((el) =>
        el.addEventListener("change", () => draw(entry, root).catch(RG.fail)),
      );
    }
  }

  function wireToggle(id, key) {
    const box = document.getElementById(id);
    if (!box) return;
    box.addEventListener("change", function () {
      RG.state[key] = box.checked;
      RG.redrawAll();
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

  async function main() {
    setupSearch();
    if (!RG.supported()) {
      RG.notice("This report needs a browser from 2023 or later (Chrome 80, Firefox 113, Safari 16.4) to draw its figures.");
      document.body.dataset.rgReady = "unsupported";
      return;
    }
    await RG.loadLibraries(RG.installRequireStandIn); // bertviz.js
    wireToggle("rg-word-level", "wordLevel");
    wireToggle("rg-hide-special", "hideSpecial");
    wireToggle("rg-leave-out-first", "leaveOutFirst");
    const entries = [];
    document.querySelectorAll("section[id]").forEach(function (section) {
      const data = RG.readJson("rg-data-" + section.id);
      if (!data) return;
      const entry = { section: section, data: data, maps: null, rendered: false };
      RG.sections.set(section.id, entry);
      wireSelectors(entry);
      entries.push(entry);
    });
    RG.watchSections(entries);
    RG.setupPrinting();
    document.body.dataset.rgReady = "1";
  }

  main().catch(RG.fail);
})();
