// A tile's "prompt changed since this image/failure" note describes the state the page loaded with. Once a
// run gives the scene a new image or a new failure (storyboard.js changes its data-status), both are of the
// current prompt, so the note goes.
(() => {
  "use strict";
  const grid = document.getElementById("storyboard");
  if (!grid) return;
  new MutationObserver((changes) => {
    for (const change of changes) {
      const tile = change.target;
      const now = tile.dataset.status;
      // The first status comes from the page's own snapshot (no old value): nothing happened yet.
      if (change.oldValue === null || change.oldValue === now) continue;
      if (now === "ready" || now === "failed") tile.querySelectorAll("[data-stale]").forEach((n) => n.remove());
    }
  }).observe(grid, { subtree: true, attributes: true, attributeFilter: ["data-status"], attributeOldValue: true });
})();
