// Full-size viewer: a thumbnail opens its scene's image with every version side by side. Arrow keys go to
// the previous or next scene with an image, Esc closes, and focus goes back to the thumbnail. Without
// JavaScript the thumbnail is a plain link to the full image.
(() => {
  "use strict";
  const grid = document.getElementById("storyboard");
  if (!grid) return;
  const ui = {};
  // Scenes by id, not elements: a redraw (a teammate's edit, a run's end) replaces tiles and their links.
  let opener = null; // the scene whose thumbnail gets focus back
  let shown = null; // the scene on show

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
    ui.close.addEventListener("click", closeViewer);
    ui.prev.addEventListener("click", () => step(-1));
    ui.next.addEventListener("click", () => step(1));
    // On the document, not the dialog: when a nav button is disabled under focus, focus falls to <body>.
    document.addEventListener("keydown", onKey);
    // The dialog's own "close" event comes a task later, after the browser has put focus back on whatever
    // opened the dialog; closeViewer() settles focus at once, this covers a close the page did not start.
    ui.dialog.addEventListener("close", () => { if (shown) giveBackFocus(); });
  }

  function onKey(event) {
    if (!ui.dialog.open) return;
    if (event.key === "Escape") { event.preventDefault(); closeViewer(); }
    if (event.key === "ArrowRight") { event.preventDefault(); step(1); }
    if (event.key === "ArrowLeft") { event.preventDefault(); step(-1); }
  }

  function closeViewer() {
    ui.dialog.close();
    giveBackFocus();
  }

  function giveBackFocus() {
    shown = null;
    const link = opener && thumbnail(opener);
    if (link) link.focus();
  }

  function pictured() {
    return [...grid.querySelectorAll(".tile")].filter((tile) => tile.querySelector(".thumb img"));
  }

  function thumbnail(scene) {
    const tile = grid.querySelector(`.tile[data-scene="${scene}"]`);
    return tile && (tile.querySelector(".thumb-link") || tile.querySelector(".thumb img"));
  }

  // The tiles with an image, and where the scene on show is among them (-1: not there any more).
  function place() {
    const tiles = pictured();
    return { tiles, index: tiles.findIndex((tile) => tile.dataset.scene === shown) };
  }

  function setNav() {
    const { tiles, index } = place();
    const focused = document.activeElement;
    ui.prev.disabled = index <= 0;
    ui.next.disabled = index < 0 || index >= tiles.length - 1;
    if (focused && focused.disabled) [ui.prev, ui.next, ui.close].find((button) => !button.disabled).focus();
  }

  function step(by) {
    const { tiles, index } = place();
    const next = index < 0 ? null : tiles[index + by];
    if (next) {
      opener = next.dataset.scene;
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
    const scene = tile.dataset.scene;
    shown = scene;
    const name = tile.querySelector(".num") ? tile.querySelector(".num").textContent : "Scene";
    ui.title.textContent = name;
    showImage(tile.dataset.image, `${name}, full size`);
    ui.prompt.textContent = "";
    ui.note.hidden = true;
    ui.versions.textContent = "";
    setNav();
    if (!ui.dialog.open) ui.dialog.showModal();
    let data;
    try {
      const response = await fetch(tile.dataset.versions, { credentials: "same-origin" });
      if (!response.ok || shown !== scene) return;
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
    opener = tile.dataset.scene;
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
  function redrawn() {
    linkThumbnails();
    if (shown) setNav();
  }
  new MutationObserver(redrawn).observe(grid, { childList: true, subtree: true });
})();
