/* The inlined libraries (jQuery, d3, plotly.js, bertviz's head view): each is a
 * gzip+base64 data block, inflated by the browser and run in order. */
"use strict";
(function () {
  const RG = window.reportgen;

  /** Every browser since 2023 has DecompressionStream (Chrome 80, Firefox 113, Safari 16.4). */
  RG.supported = function () {
    return typeof DecompressionStream !== "undefined";
  };

  /** `setup` runs first: the report passes bertviz's require.js stand-in (bertviz.js);
   * the atlas page, which has no bertviz, passes nothing. */
  RG.loadLibraries = async function (...setup) {
    for (const step of setup) step();
    // Inflate all at once (off the main thread), then run them in order.
    const blocks = Array.from(document.querySelectorAll('script[type="application/x-reportgen-lib"]'));
    const sources = await Promise.all(blocks.map((el) => RG.decodeText(el.textContent)));
    for (const source of sources) {
      const script = document.createElement("script");
      script.textContent = source;
      document.head.appendChild(script);
    }
  };
})();
