// Live storyboard: applies the server's snapshot and events (docs/events.md) to the page. Plain JavaScript,
// no build step. The database is the truth: on (re)connect, on a gap in an event sequence, and while the
// socket is silent on a layer that cannot carry other processes' events, the page reads a snapshot.
// Tiles are the server's alone (templates/projects/_scene_tile.html, fetched from scene_tiles); the
// banner and progress text are this file's alone, built from the same fields a snapshot or an event has.
(() => {
  "use strict";
  const live = document.getElementById("live");
  const configElement = document.getElementById("live-config");
  if (!live || !configElement) return;

  const config = JSON.parse(configElement.textContent);
  const $ = (id) => document.getElementById(id);
  const grid = $("storyboard");
  const state = {
    socket: null, runId: null, lastSeq: null, retryDelay: 500, run: null, wait: null,
    lastMessage: 0, lastPoll: 0, polling: false, changes: 0, // changes: to state.run, counted
  };

  // ---- words ------------------------------------------------------------------------------------
  function plural(count, one, many) {
    return `${count} ${count === 1 ? one : many || one + "s"}`;
  }

  function fmtSeconds(s) {
    if (s === null || s === undefined || Number.isNaN(s)) return "—";
    s = Math.max(0, Math.round(s));
    return s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
  }

  function fmtBudget(s) {
    return s >= 60 && s % 60 === 0 ? `${s / 60} min` : fmtSeconds(s);
  }

  const secondsUntil = (iso) => (Date.parse(iso) - Date.now()) / 1000;

  // The one place banner text is built: from a run.quota_wait/run.pacing event or a snapshot's run.wait.
  function bannerText(wait, left) {
    if (wait.kind === "quota") {
      return `Waiting for the quota: ${fmtSeconds(left)}; gives up after ${fmtBudget(wait.budget_seconds)} of waiting`;
    }
    const rate = wait.requests_per_minute ? ` (${wait.requests_per_minute} requests/minute)` : "";
    return `Pacing to the provider's quota${rate}: next request in ${fmtSeconds(left)}`;
  }

  function totalsText(t) {
    if (!t || !t.scenes) return "";
    const have = t.images === 1 ? "has an image" : "have images";
    return `Project: ${t.images} of ${plural(t.scenes, "scene")} ${have} · ${t.failed} failed · ` +
      `${t.pending} pending · ${plural(t.empty, "empty prompt")}`;
  }

  // ---- tiles: fetched from the server, never drawn here -----------------------------------------
  const tiles = { dirty: new Set(), all: false, busy: false, settled: [] };

  function tile(id) {
    return grid.querySelector(`.tile[data-scene="${id}"]`);
  }

  function refreshTiles(ids) {
    ids.forEach((id) => tiles.dirty.add(String(id)));
    flushTiles();
  }

  function refreshGrid() {
    tiles.all = true;
    flushTiles();
  }

  // Runs `then` once every tile asked for so far is drawn: the end of a run shows after its last tiles.
  function whenTilesDrawn(then) {
    tiles.settled.push(then);
    flushTiles();
  }

  // One request at a time; what changes meanwhile is gathered into the next one.
  async function flushTiles() {
    if (tiles.busy) return;
    if (!tiles.all && !tiles.dirty.size) {
      tiles.settled.splice(0).forEach((then) => then());
      return;
    }
    tiles.busy = true;
    const all = tiles.all;
    const ids = [...tiles.dirty];
    tiles.all = false;
    tiles.dirty.clear();
    try {
      const url = all ? config.tiles : `${config.tiles}?ids=${ids.join(",")}`;
      const response = await fetch(url, { credentials: "same-origin" });
      if (response.ok) {
        const html = await response.text();
        if (all) applyGrid(html);
        else replaceTiles(html, ids);
        const totals = response.headers.get("X-Project-Totals");
        if (totals) $("project-totals").textContent = totalsText(JSON.parse(totals));
        afterTiles();
      }
    } catch (err) {
      /* offline: the next event, poll or snapshot asks again */
    } finally {
      tiles.busy = false;
    }
    flushTiles();
  }

  function parse(html) {
    const box = document.createElement("template");
    box.innerHTML = html;
    return box.content;
  }

  function replaceTiles(html, ids) {
    const found = new Set();
    parse(html).querySelectorAll(".tile").forEach((fresh) => {
      const old = tile(fresh.dataset.scene);
      found.add(fresh.dataset.scene);
      if (old) morph(old, fresh);
      else tiles.all = true; // a scene this page has not seen: the whole grid, in order
    });
    if (ids.some((id) => !found.has(id))) tiles.all = true; // deleted meanwhile
  }

  // The same scenes in the same order: tile by tile, in place; else the grid as the server drew it.
  function applyGrid(html) {
    const fresh = parse(html);
    const next = [...fresh.querySelectorAll(".tile")];
    const shown = [...grid.querySelectorAll(".tile")];
    const same = next.length > 0 && next.length === shown.length &&
      next.every((t, i) => t.dataset.scene === shown[i].dataset.scene);
    if (same) next.forEach((t, i) => morph(shown[i], t));
    else grid.replaceChildren(fresh);
  }

  // An image already shown stays (no reload, no flicker); one that arrived live loads now, as the old
  // page did: lazy loading would leave it unloaded until scrolled to.
  function keepImages(old, fresh) {
    const shown = new Map([...old.querySelectorAll("img")].map((img) => [img.getAttribute("src"), img]));
    fresh.querySelectorAll("img").forEach((img) => {
      const same = shown.get(img.getAttribute("src"));
      if (same) img.replaceWith(same);
      else img.loading = "eager";
    });
  }

  // The tile element stays (observers, focus): its attributes and content become the server's.
  function morph(old, fresh) {
    const focusable = "a, button, input, select, textarea";
    const index = [...old.querySelectorAll(focusable)].indexOf(document.activeElement);
    [...old.attributes].forEach((a) => { if (!fresh.hasAttribute(a.name)) old.removeAttribute(a.name); });
    [...fresh.attributes].forEach((a) => { if (old.getAttribute(a.name) !== a.value) old.setAttribute(a.name, a.value); });
    keepImages(old, fresh);
    old.replaceChildren(...fresh.childNodes);
    if (index >= 0) {
      const again = old.querySelectorAll(focusable)[index];
      if (again) again.focus();
    }
  }

  function afterTiles() {
    if (grid.querySelector('.tile[data-has-image="1"]')) enableExport();
    setButtons(state.run);
  }

  // A snapshot names every scene with its tile's version: fetch only the tiles that differ.
  function reconcile(scenes) {
    const shown = [...grid.querySelectorAll(".tile")];
    const sameScenes = shown.length === scenes.length &&
      scenes.every((scene, i) => shown[i].dataset.scene === String(scene.id));
    if (!sameScenes) {
      refreshGrid();
      return;
    }
    const stale = scenes.filter((scene, i) => shown[i].dataset.version !== scene.version);
    if (stale.length) refreshTiles(stale.map((scene) => scene.id));
  }

  // Item events carry the run's counts as their write stored them.
  function takeCounts(ev) {
    if (ev.counts && state.run && state.run.id === ev.run && !older(ev.run, ev.counts)) mergeRun(ev, ev.counts);
  }

  // Counts taken before the ones shown: sent while the snapshot that drew them was being read. The row
  // never goes back (its counts_at only grows), and neither does the page.
  function older(runId, counts) {
    const run = state.run;
    if (!run || run.id !== runId || !run.counts_at || !counts.counts_at) return false;
    return Date.parse(counts.counts_at) < Date.parse(run.counts_at);
  }

  function sceneEvent(ev) {
    takeCounts(ev);
    const id = ev.item.id;
    if (!tile(id)) {
      refreshGrid(); // never dropped: a scene added since the page loaded
      return;
    }
    // Skipped because it has an image, or another run holds it: the tile is unchanged.
    if (ev.type === "scene.skipped" && ev.reason_code !== "empty_prompt") return;
    refreshTiles([id]);
  }

  // The page may have loaded before any scene had an image: the first one makes the ZIP worth offering.
  function enableExport() {
    const tools = $("export-tools");
    const disabled = tools && tools.querySelector("button[disabled]");
    if (!disabled || !tools.dataset.zip) return;
    const link = document.createElement("a");
    link.className = "button";
    link.href = tools.dataset.zip;
    link.textContent = "Download ZIP";
    disabled.replaceWith(link);
    const why = $("zip-why");
    if (why) why.remove();
  }

  // ---- run panel and banner ---------------------------------------------------------------------
  function quotaWaited(run) {
    // Stored up to counts_at; a wait still on grows until it ends, on every page alike.
    let seconds = run.quota_wait_seconds || 0;
    const wait = state.wait;
    if (run.active && wait && wait.kind === "quota" && run.counts_at) {
      const end = Math.min(Date.now(), Date.parse(wait.until));
      seconds += Math.max(0, (end - Date.parse(run.counts_at)) / 1000);
    }
    return seconds;
  }

  function runStatus(run) {
    if (!run.active) return `Last run ${run.status}`;
    return { stopping: "Stopping", waiting_quota: "Waiting for the quota", queued: "Queued" }[run.status] || "Running";
  }

  function draw() {
    drawRun();
    drawBanner();
  }

  function drawRun() {
    const run = state.run;
    const progress = $("progress");
    if (!run) {
      progress.hidden = true;
      setButtons(null);
      return;
    }
    progress.hidden = false;
    const done = run.succeeded + run.failed + run.skipped;
    $("progress-bar").max = Math.max(run.total, 1);
    $("progress-bar").value = Math.min(done, run.total);
    const eta = run.active && run.eta_at ? ` · ETA ${fmtSeconds(secondsUntil(run.eta_at))}` : "";
    const label = run.kind === "characters" ? "references" : "scenes";
    $("progress-text").textContent =
      `${done} / ${run.total} ${label} done · ${run.succeeded} succeeded · ${run.failed} failed · ` +
      `${run.skipped} skipped${eta}`;
    const when = run.started || run.created;
    const at = when ? new Date(when).toLocaleTimeString() : "";
    $("run-meta").textContent =
      `${runStatus(run)} · started by ${run.requested_by || "someone"} at ${at} · ` +
      `${plural(run.requests, "request")} · ${plural(run.retries, "retry", "retries")} · ` +
      `${plural(run.quota_waits || 0, "quota wait")} (${fmtSeconds(quotaWaited(run))}) · ` +
      `${fmtSeconds(run.pacing_seconds || 0)} pacing`;
    setButtons(run);
  }

  function drawBanner() {
    const banner = $("quota-banner");
    const wait = state.run && state.run.active ? state.wait : null;
    const left = wait ? Math.ceil(secondsUntil(wait.until)) : 0;
    if (!wait || left <= 0) {
      banner.hidden = true;
      return;
    }
    banner.textContent = bannerText(wait, left);
    banner.hidden = false;
  }

  function setRun(run) {
    state.changes += 1;
    state.run = run;
    state.wait = run && run.active ? run.wait || null : null;
    draw();
  }

  // An end is drawn after its last tiles; whatever reached the run meanwhile came later, and stays.
  function setRunAfterTiles(run, then) {
    const seen = state.changes;
    whenTilesDrawn(() => {
      if (state.changes === seen) setRun(run);
      then();
    });
  }

  function mergeRun(ev, fields) {
    state.changes += 1;
    state.run = Object.assign({}, state.run || {}, fields, { id: ev.run });
    draw();
  }

  function setButtons(run) {
    if (!config.can_edit) return;
    const active = Boolean(run && run.active);
    $("btn-start").hidden = active;
    $("btn-start").textContent = run && !active && run.status === "stopped" ? "Resume" : "Generate all scenes";
    $("btn-stop").hidden = !active;
    $("btn-stop").disabled = Boolean(run && run.status === "stopping");
    const failed = grid.querySelectorAll('.tile[data-status="failed"]').length;
    $("btn-retry-failed").hidden = active || failed === 0;
  }

  function snackbar(text, kind) {
    const bar = $("snackbar");
    bar.textContent = text;
    bar.className = `snackbar ${kind || ""}`;
    bar.hidden = false;
    clearTimeout(bar._timer);
    bar._timer = setTimeout(() => (bar.hidden = true), 8000);
  }

  // ---- events (docs/events.md) --------------------------------------------------------------------
  const COUNTS = [
    "total", "succeeded", "failed", "skipped", "requests", "retries", "quota_errors", "quota_waits",
    "quota_wait_seconds", "pacing_seconds", "counts_at", "eta_at", "status",
  ];

  const handlers = {
    snapshot(ev) {
      reconcile(ev.scenes);
      $("project-totals").textContent = totalsText(ev.totals);
      // A run this page watched ended unseen (its events came from another process): say how it went.
      const was = state.run;
      const ended = was && was.active && ev.run && ev.run.id === was.id && !ev.run.active;
      if (!ended) setRun(ev.run);
      else setRunAfterTiles(ev.run, () => ev.run.summary && snackbar(ev.run.summary, ev.run.failed ? "warn" : "ok"));
      state.runId = ev.run ? ev.run.id : null;
      state.lastSeq = null; // the next event of the run sets the baseline
    },
    "run.started"(ev) {
      setRun(Object.assign({}, ev, { active: true }));
    },
    "run.progress"(ev) {
      if (older(ev.run, ev)) return;
      const fields = { active: true };
      COUNTS.forEach((key) => { if (ev[key] !== undefined) fields[key] = ev[key]; });
      // Running again: the quota wait is over (the snapshot says the same once the row says running).
      if (ev.status !== "waiting_quota" && state.wait && state.wait.kind === "quota") state.wait = null;
      mergeRun(ev, fields);
    },
    "run.quota_wait"(ev) {
      state.wait = { kind: "quota", until: ev.until, quota_waits: ev.quota_waits, budget_seconds: ev.budget_seconds };
      mergeRun(ev, { status: "waiting_quota", quota_waits: ev.quota_waits, active: true });
    },
    "run.pacing"(ev) {
      const quota = state.wait && state.wait.kind === "quota";
      if (ev.until && !quota) state.wait = { kind: "pacing", until: ev.until, requests_per_minute: ev.requests_per_minute };
      draw();
    },
    "run.stopping"(ev) {
      mergeRun(ev, { status: "stopping", active: true });
      snackbar(`Stopping: ${ev.message}`);
    },
    "run.finished"(ev) {
      // The end releases scenes without events of their own (a stop puts unfinished ones back): redraw all.
      tiles.all = true;
      const run = Object.assign({}, ev, { active: false });
      setRunAfterTiles(run, () => snackbar(ev.summary, ev.failed ? "warn" : "ok"));
    },
    "scene.started": sceneEvent,
    "scene.succeeded": sceneEvent,
    "scene.failed": sceneEvent,
    "scene.skipped": sceneEvent,
    "scenes.changed": () => refreshGrid(),
    "character.started": takeCounts,
    "character.failed": takeCounts,
    "character.succeeded"(ev) {
      takeCounts(ev);
      if ($("missing-refs")) $("missing-refs").hidden = true;
    },
    refused(ev) {
      snackbar(ev.message, "error");
      if (ev.missing && ev.missing.length && $("missing-refs")) {
        $("missing-names").textContent = ev.missing.join(", ");
        $("missing-refs").hidden = false;
      }
    },
    error: (ev) => snackbar(ev.message, "error"),
  };

  function handle(ev) {
    if (ev.run !== undefined && ev.seq !== undefined) {
      const gap = ev.run === state.runId && state.lastSeq !== null && ev.seq > state.lastSeq + 1;
      state.runId = ev.run;
      state.lastSeq = ev.seq;
      if (gap) send({ action: "snapshot" }); // events are droppable; the snapshot is the truth
    }
    const handler = handlers[ev.type];
    if (handler) handler(ev);
  }

  // ---- transport ---------------------------------------------------------------------------------
  function send(message) {
    if (state.socket && state.socket.readyState === WebSocket.OPEN) {
      state.socket.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  async function poll() {
    if (state.polling) return;
    state.polling = true;
    const asked = (state.lastPoll = Date.now());
    try {
      const response = await fetch(config.status, { credentials: "same-origin" });
      // A socket message that arrived meanwhile is newer than this answer.
      if (response.ok && state.lastMessage <= asked) {
        handle(Object.assign({ type: "snapshot" }, await response.json()));
      }
    } catch (err) {
      /* offline: the next poll or reconnect catches up */
    } finally {
      state.polling = false;
    }
  }

  // Polls while the socket is down, and (config.poll_seconds) while it is silent on a layer that cannot
  // carry another process's events, such as a run started by `manage.py generate`.
  function maybePoll() {
    const now = Date.now();
    const open = state.socket && state.socket.readyState === WebSocket.OPEN;
    const every = config.poll_seconds ? config.poll_seconds * 1000 : null;
    const silent = every !== null && now - state.lastMessage >= every && now - state.lastPoll >= every;
    if ((!open && now - state.lastPoll >= 2000) || (open && silent)) poll();
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}${config.ws}`);
    state.socket = socket;
    socket.onopen = () => {
      state.retryDelay = 500;
      live.dataset.connected = "1";
    };
    socket.onmessage = (message) => {
      state.lastMessage = Date.now();
      const data = JSON.parse(message.data);
      // Live events arrive coalesced in batches; replies and snapshots arrive alone.
      (data.type === "batch" ? data.events : [data]).forEach(handle);
    };
    socket.onclose = () => {
      live.dataset.connected = "0";
      setTimeout(connect, state.retryDelay);
      state.retryDelay = Math.min(state.retryDelay * 2, 5000);
    };
  }

  // Forms work without JavaScript; with a live socket they go over it and the page stays in place.
  document.addEventListener("submit", (event) => {
    const form = event.target.closest("form[data-action]");
    if (!form) return;
    const message = { action: form.dataset.action };
    const scene = form.querySelector('input[name="scene"]');
    if (scene) message.scene = Number(scene.value);
    if (send(message)) event.preventDefault();
  });

  const initial = document.getElementById("initial-snapshot");
  if (initial) handle(Object.assign({ type: "snapshot" }, JSON.parse(initial.textContent)));
  connect();
  setInterval(maybePoll, 250);
  setInterval(draw, 250); // countdowns: the banner, the ETA, the seconds waited
})();
