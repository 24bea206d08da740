/* Lazy drawing: a section's views are drawn when it scrolls near the screen, one section
 * at a time; a toggle redraws what is drawn; printing (print.js) draws everything. */
"use strict";
(function () {
  const RG = window.reportgen;
  const queue = [];
  let draining = false;

  /** Draw every registered view of a section, in page order. */
  RG.drawSection = async function (entry) {
    const drawnFor = generation;
    entry.section.dataset.rgRendered = "0";
    for (const root of entry.section.querySelectorAll("[data-view]")) {
      const draw = RG.views[root.dataset.view];
      if (draw) await draw(entry, root);
    }
    entry.rendered = true;
    entry.section.dataset.rgRendered = "1";
    if (drawnFor !== generation) stale(entry); // a toggle changed while it drew
  };

  /** Redraw one view of a drawn section: a selector of its own changed (main.js), or
   * another view chose for it (grid.js); [data-rg-rendered] on it tells when it is done. */
  RG.drawView = async function (entry, root) {
    root.dataset.rgRendered = "0";
    try {
      await RG.views[root.dataset.view](entry, root);
    } finally {
      root.dataset.rgRendered = "1"; // also after a failure, which RG.fail reports
    }
  };

  // A toggle bumps the generation: what was drawn under an older one is drawn again.
  let generation = 0;
  let observer = null;

  /** Forget a section's drawing and watch it again: it is redrawn once near the screen. */
  function stale(entry) {
    entry.rendered = false;
    delete entry.section.dataset.rgRendered;
    observer.unobserve(entry.section);
    observer.observe(entry.section); // reports at once whether it is on screen
  }

  async function drain() {
    if (draining) return;
    draining = true;
    while (queue.length) {
      const next = queue.shift();
      if (next.rendered) continue; // queued twice: by scrolling and by printing
      await RG.drawSection(next).catch(RG.fail);
      // Yield between sections, so clicks and scrolling stay answered while a long
      // page draws (promise chains alone would hold the main thread to the end).
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    draining = false;
  }

  /** Start watching the sections: each is drawn once it comes near the screen. */
  RG.watchSections = function (entries) {
    observer = new IntersectionObserver(
      function (records) {
        for (const r of records) {
          if (!r.isIntersecting) continue;
          observer.unobserve(r.target);
          const entry = RG.sections.get(r.target.id);
          if (entry) queue.push(entry);
        }
        drain();
      },
      { rootMargin: "300px 0px" },
    );
    entries.forEach((entry) => observer.observe(entry.section));
  };

  /** After a toggle: what is drawn is redrawn, the sections on screen first and the
   * rest when scrolled to (redrawing a whole long page at once would freeze it). */
  RG.redrawAll = function () {
    generation += 1;
    for (const entry of RG.sections.values()) if (entry.rendered) stale(entry);
  };

  /** Draw every section not drawn yet; resolves when the queue is empty. */
  RG.drawEverything = async function () {
    for (const entry of RG.sections.values()) if (!entry.rendered) queue.push(entry);
    await drain();
    while (draining) await new Promise((resolve) => setTimeout(resolve, 50));
  };
})();
