// Full-size viewer: a thumbnail opens its scene's image with every version side by side. Arrow keys go to
// the previous or next scene with an image, Esc closes, and focus goes back to the thumbnail. Without
// JavaScript the thumbnail is a plain link to the full image.
(() => {
  "use strict";
  const grid = document.getElementById("storyboard");
  if (!grid) return;
  const ui = {};
  let opener = null;
  let shown = null; // the tile on show

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function build() {
    ui.dialog = el("dialog", "viewer");
    ui.dialog.id = "viewer";
    ui.dialog.setAttribute("aria-labelledby", "viewer-title");
    const body = el("div", "viewer-body");
    const head = el("div", "viewer-head");
    ui.title = el("h2", "", "");
    ui.title.id = "viewer-title";
    const nav = el("div", "viewer-nav");
    ui.prev = el("button", "small", "← Previous");
    ui.next = el("button", "small", "Next →");
    ui.close = el("button", "small", "Close");
    [ui.prev, ui.next, ui.close].forEach((b) => { b.type = "button"; nav.appendChild(b); });
    head.append(ui.title, nav);
    ui.main = el("img", "viewer-main");
    ui.prompt = el("p", "viewer-prompt");
    ui.note = el("p", "stale");
    ui.versionsHeading = el("h3", "sr-only", "Versions");
    ui.versions = el("ol", "viewer-versions");
    ui.versions.setAttribute("aria-label", "Versions");
    body.append(head, ui.main, ui.prompt, ui.note, ui.versionsHeading, ui.versions);
    ui.dialog.appendChild(body);
    document.body.appendChild(ui.dialog);
    ui.close.addEventListener("click", () => ui.dialog.close());
    ui.prev.addEventListener("click", () => step(-1));
    ui.next.addEventListener("click", () => step(1));
    ui.dialog.addEventListener("keydown", (event) => {
      if (event.key === "ArrowRight") { event.preventDefault(); step(1); }
      if (event.key === "ArrowLeft") { event.preventDefault(); step(-1); }
    });
    ui.dialog.addEventListener("close", () => {
      shown = null;
      if (opener && document.contains(opener)) opener.focus();
    });
  }

  function pictured() {
    return [...grid.querySelectorAll(".tile")].filter((tile) => tile.querySelector(".thumb img"));
  }

  function step(by) {
    const tiles = pictured();
    const index = tiles.indexOf(shown);
    const next = tiles[index + by];
    if (next) {
      opener = next.querySelector(".thumb-link") || opener;
      show(next);
    }
  }

  function caption(version) {
    const parts = [`v${version.number}`];
    if (version.current) parts.push("current");
    if (version.provider) parts.push(version.model ? `${version.provider} / ${version.model}` : version.provider);
    if (version.created) parts.push(new Date(version.created).toLocaleString());
    return parts.join(" · ");
  }

  function showImage(url, alt) {
    ui.main.src = url;
    ui.main.alt = alt;
  }

  async function show(tile) {
    shown = tile;
    const name = tile.querySelector(".num") ? tile.querySelector(".num").textContent : "Scene";
    ui.title.textContent = name;
    showImage(tile.dataset.image, `${name}, full size`);
    ui.prompt.textContent = "";
    ui.note.hidden = true;
    ui.versions.textContent = "";
    const tiles = pictured();
    ui.prev.disabled = tiles.indexOf(tile) <= 0;
    ui.next.disabled = tiles.indexOf(tile) >= tiles.length - 1;
    if (!ui.dialog.open) ui.dialog.showModal();
    let data;
    try {
      const response = await fetch(tile.dataset.versions, { credentials: "same-origin" });
      if (!response.ok || shown !== tile) return;
      data = await response.json();
    } catch (err) {
      return; // the image alone still shows
    }
    ui.title.textContent = data.title;
    ui.prompt.textContent = data.prompt;
    const current = data.versions.find((v) => v.current);
    if (current && current.stale) {
      ui.note.textContent = "Prompt changed since this image.";
      ui.note.hidden = false;
    }
    data.versions.forEach((version) => ui.versions.appendChild(versionItem(data, version)));
    tile.dataset.versionCount = String(data.versions.length);
  }

  function versionItem(data, version) {
    const item = el("li", version.current ? "current" : "");
    const figure = el("figure");
    const button = el("button", "link-image");
    button.type = "button";
    const label = `${data.title}, version ${version.number}${version.current ? " (current)" : ""}`;
    button.setAttribute("aria-label", `Show ${label} large`);
    const img = el("img");
    img.src = version.image;
    img.alt = label;
    img.loading = "lazy";
    button.appendChild(img);
    button.addEventListener("click", () => showImage(version.image, label));
    figure.append(button, el("figcaption", "", caption(version) + (version.stale ? " · older prompt" : "")));
    item.appendChild(figure);
    return item;
  }

  grid.addEventListener("click", (event) => {
    const img = event.target.closest(".thumb img");
    if (!img || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
    const tile = img.closest(".tile");
    if (!tile) return;
    event.preventDefault();
    if (!ui.dialog) build();
    opener = tile.querySelector(".thumb-link") || img;
    show(tile);
  });

  // A thumbnail that arrived live (storyboard.js adds a bare <img>) gets the same link as server-rendered ones,
  // so the keyboard reaches it too.
  function linkThumbnails() {
    for (const img of grid.querySelectorAll(".thumb > img")) {
      const tile = img.closest(".tile");
      const link = el("a", "thumb-link");
      link.href = tile.dataset.image;
      link.setAttribute("aria-label", `View ${tile.querySelector(".num").textContent.toLowerCase()} full size`);
      img.replaceWith(link);
      link.appendChild(img);
    }
  }
  new MutationObserver(linkThumbnails).observe(grid, { childList: true, subtree: true });
})();
