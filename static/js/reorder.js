// Drag and drop in the grid for editors: drop a tile before or after another one; the new order goes to the
// server's scenes reorder, and the page reloads to show the order (and the message) as the database has it.
// The keyboard uses each tile's "Move earlier"/"Move later" buttons, which are plain forms.
(() => {
  "use strict";
  const grid = document.getElementById("storyboard");
  const anyMove = grid && grid.querySelector(".move[data-move]");
  if (!anyMove) return; // viewers: nothing to move
  const url = anyMove.dataset.move;
  let dragged = null;

  function tiles() {
    return [...grid.querySelectorAll(".tile")];
  }

  function clearMarks() {
    grid.querySelectorAll(".drop-before, .drop-after").forEach((t) => t.classList.remove("drop-before", "drop-after"));
  }

  function after(tile, event) {
    const box = tile.getBoundingClientRect();
    return event.clientX > box.left + box.width / 2;
  }

  for (const tile of tiles()) tile.draggable = true;

  grid.addEventListener("dragstart", (event) => {
    const tile = event.target.closest && event.target.closest(".tile");
    if (!tile) return;
    dragged = tile;
    tile.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", tile.dataset.scene);
  });

  grid.addEventListener("dragover", (event) => {
    const tile = event.target.closest(".tile");
    if (!dragged || !tile || tile === dragged) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    clearMarks();
    tile.classList.add(after(tile, event) ? "drop-after" : "drop-before");
  });

  grid.addEventListener("dragleave", (event) => {
    if (!grid.contains(event.relatedTarget)) clearMarks();
  });

  grid.addEventListener("dragend", () => {
    if (dragged) dragged.classList.remove("dragging");
    dragged = null;
    clearMarks();
  });

  grid.addEventListener("drop", async (event) => {
    const tile = event.target.closest(".tile");
    if (!dragged || !tile || tile === dragged) return;
    event.preventDefault();
    const moved = dragged;
    tile.insertAdjacentElement(after(tile, event) ? "afterend" : "beforebegin", moved);
    clearMarks();
    await save(moved);
  });

  async function save(moved) {
    const body = new URLSearchParams();
    body.set("order", tiles().map((t) => t.dataset.scene).join(","));
    body.set("moved", moved.dataset.scene);
    const token = document.querySelector('input[name="csrfmiddlewaretoken"]');
    try {
      await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": token ? token.value : "" },
        body,
      });
    } finally {
      // Success or not, the server's order (and its message) is what the page must show.
      location.reload();
    }
  }
})();
