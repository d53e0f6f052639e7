// Multi-select on the storyboard grid: click or Space toggles a scene, Shift-click (or Shift-Space)
// selects the range from the last one toggled, "a" selects all, Escape clears. The form posts the
// checked boxes (they belong to #bulk-form through their form attribute), so it works without this too.
(function () {
  "use strict";
  const form = document.getElementById("bulk-form");
  if (!form) return;
  const grid = document.getElementById("storyboard");
  const count = document.getElementById("selection-count");
  let last = null;

  const boxes = () => Array.from(document.querySelectorAll("input.select-scene"));

  function refresh() {
    const all = boxes();
    let selected = 0;
    for (const box of all) {
      const tile = box.closest(".tile");
      if (tile) tile.classList.toggle("selected-tile", box.checked);
      if (box.checked) selected += 1;
    }
    count.textContent = selected ? `${selected} scene${selected === 1 ? "" : "s"} selected` : "No scene selected";
  }

  function selectRange(from, to, value) {
    const all = boxes();
    const [a, b] = [all.indexOf(from), all.indexOf(to)].sort((x, y) => x - y);
    if (a < 0) return;
    for (let i = a; i <= b; i += 1) all[i].checked = value;
  }

  grid.addEventListener("click", (event) => {
    const box = event.target.closest("input.select-scene");
    if (!box) return;
    if (event.shiftKey && last && last !== box) selectRange(last, box, box.checked);
    last = box;
    refresh();
  });

  grid.addEventListener("keydown", (event) => {
    const box = event.target.closest("input.select-scene");
    if (!box) return;
    if (event.key === " " && event.shiftKey && last && last !== box) {
      event.preventDefault();
      box.checked = !box.checked;
      selectRange(last, box, box.checked);
      last = box;
      refresh();
    }
  });

  document.addEventListener("keydown", (event) => {
    const typing = event.target.closest("input[type=text], input[type=number], textarea, select");
    if (typing) return;
    if (event.key === "Escape") {
      for (const box of boxes()) box.checked = false;
      refresh();
    } else if (event.key === "a" && !event.ctrlKey && !event.metaKey && event.target.closest("#storyboard, #bulk-form")) {
      for (const box of boxes()) box.checked = true;
      refresh();
    }
  });

  document.getElementById("select-all").addEventListener("click", () => {
    for (const box of boxes()) box.checked = true;
    refresh();
  });
  document.getElementById("select-none").addEventListener("click", () => {
    for (const box of boxes()) box.checked = false;
    refresh();
  });
  grid.addEventListener("change", refresh);
  refresh();
})();
