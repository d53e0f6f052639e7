// Live storyboard: applies the server's snapshot and events to the grid. Plain JavaScript, no build step.
// The database is the truth: on (re)connect, or on a gap in an event sequence, the page asks for a snapshot.
(() => {
  "use strict";
  const live = document.getElementById("live");
  if (!live) return;

  const $ = (id) => document.getElementById(id);
  const canEdit = live.dataset.canEdit === "1";
  const STATUS_LABELS = { pending: "Pending", generating: "Generating", ready: "Ready", failed: "Failed", skipped: "Skipped" };
  const state = { socket: null, runId: null, lastSeq: null, retryDelay: 500, countdown: null, run: null, poller: null };

  // ---- tiles -------------------------------------------------------------------------------------
  function tile(id) {
    return document.querySelector(`.tile[data-scene="${id}"]`);
  }

  function setScene(scene) {
    const el = tile(scene.id);
    if (!el) return;
    el.className = el.className.replace(/\bstatus-\w+/, "") + ` status-${scene.status}`;
    el.dataset.status = scene.status;
    el.querySelector("[data-status]").textContent = STATUS_LABELS[scene.status] || scene.status;
    el.querySelector("[data-reason]").textContent = scene.status === "failed" ? scene.reason || "" : "";
    const retry = el.querySelector(".retry-form");
    if (retry) {
      // One form, two meanings: a failed scene is retried, a ready one regenerated (its image is kept as a version).
      retry.hidden = scene.status !== "failed" && scene.status !== "ready";
      retry.querySelector("button").textContent = scene.status === "ready" ? "Regenerate" : "Retry";
    }
    if (scene.thumbnail) {
      setThumbnail(el, scene.thumbnail, scene.position);
      enableExport();
    }
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

  function setThumbnail(el, url, position) {
    const box = el.querySelector(".thumb");
    let img = box.querySelector("img");
    if (!img) {
      box.textContent = "";
      img = document.createElement("img");
      img.alt = `Scene ${position || el.dataset.position}`;
      box.appendChild(img);
    }
    if (img.getAttribute("src") !== url) img.src = url;
  }

  function sceneEvent(ev, status) {
    const id = ev.item.id;
    const el = tile(id);
    if (!el) return;
    if (status === "skipped" && ev.reason !== "empty prompt") return; // an image already there: tile unchanged
    setScene({ id, status, reason: ev.reason, thumbnail: ev.thumbnail, position: ev.item.position });
  }

  // ---- run panel ---------------------------------------------------------------------------------
  function fmtSeconds(s) {
    if (s === null || s === undefined) return "—";
    s = Math.max(0, Math.round(s));
    return s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
  }

  function setRun(run) {
    state.run = run;
    const progress = $("progress");
    if (!run) {
      progress.hidden = true;
      setButtons(null);
      return;
    }
    progress.hidden = false;
    const done = run.succeeded + run.failed + run.skipped;
    $("progress-bar").max = Math.max(run.total, 1);
    $("progress-bar").value = done;
    const eta = run.active && run.eta_seconds !== undefined ? ` · ETA ${fmtSeconds(run.eta_seconds)}` : "";
    const label = run.kind === "characters" ? "references" : "scenes";
    $("progress-text").textContent =
      `${done} / ${run.total} ${label} done · ${run.succeeded} succeeded · ${run.failed} failed · ${run.skipped} skipped${eta}`;
    const when = run.started || run.created;
    const at = when ? new Date(when).toLocaleTimeString() : "";
    const status = run.active ? (run.status === "stopping" ? "Stopping" : "Running") : `Last run ${run.status}`;
    $("run-meta").textContent =
      `${status} · started by ${run.requested_by || "someone"} at ${at} · ${run.requests} requests · ` +
      `${run.retries} retries · ${fmtSeconds(run.quota_wait_seconds)} waiting for quota`;
    setButtons(run);
    if (!run.active) hideBanner();
    else if (run.quota_resume_at && $("quota-banner").hidden) {
      // Loaded or reconnected in the middle of a quota wait: the snapshot says when it ends.
      const seconds = (new Date(run.quota_resume_at) - Date.now()) / 1000;
      if (seconds > 0) showBanner(seconds, (left) => `Quota limit - waiting ${left} s`);
    }
  }

  function setButtons(run) {
    if (!canEdit) return;
    const active = Boolean(run && run.active);
    $("btn-start").hidden = active;
    $("btn-start").textContent = run && !active && run.status === "stopped" ? "Resume" : "Generate all scenes";
    $("btn-stop").hidden = !active;
    $("btn-stop").disabled = Boolean(run && run.status === "stopping");
    const failed = document.querySelectorAll('.tile[data-status="failed"], .tile.status-failed').length;
    $("btn-retry-failed").hidden = active || failed === 0;
  }

  function mergeRun(ev, fields) {
    const run = Object.assign({}, state.run || {}, fields, { id: ev.run });
    setRun(run);
  }

  // ---- quota banner and snackbar ----------------------------------------------------------------
  function showBanner(seconds, text) {
    const banner = $("quota-banner");
    const until = Date.now() + seconds * 1000;
    clearInterval(state.countdown);
    const draw = () => {
      const left = Math.max(0, Math.ceil((until - Date.now()) / 1000));
      banner.textContent = text(left);
      if (left <= 0) hideBanner();
    };
    banner.hidden = false;
    draw();
    state.countdown = setInterval(draw, 250);
  }

  function showQuota(ev) {
    showBanner(ev.seconds, (left) => `Quota limit - waiting ${left} s, retry ${ev.attempt} of ${ev.max_attempts}`);
  }

  function showPacing(ev) {
    if (ev.seconds === undefined) return;
    const rate = ev.requests_per_minute ? ` (${ev.requests_per_minute} requests/minute)` : "";
    showBanner(ev.seconds, (left) => `Pacing to the provider's quota${rate} - next request in ${left} s`);
  }

  function hideBanner() {
    clearInterval(state.countdown);
    $("quota-banner").hidden = true;
  }

  function snackbar(text, kind) {
    const bar = $("snackbar");
    bar.textContent = text;
    bar.className = `snackbar ${kind || ""}`;
    bar.hidden = false;
    clearTimeout(bar._timer);
    bar._timer = setTimeout(() => (bar.hidden = true), 8000);
  }

  // ---- events ------------------------------------------------------------------------------------
  const handlers = {
    snapshot(ev) {
      ev.scenes.forEach(setScene);
      setRun(ev.run);
      state.runId = ev.run ? ev.run.id : null;
      state.lastSeq = null; // the next event of the run sets the baseline
    },
    "run.started"(ev) {
      hideBanner();
      mergeRun(ev, Object.assign({}, ev, { active: true, eta_seconds: null }));
    },
    "run.progress"(ev) {
      mergeRun(ev, {
        succeeded: ev.succeeded, failed: ev.failed, skipped: ev.skipped, total: ev.total,
        requests: ev.requests, retries: ev.retries, eta_seconds: ev.eta_seconds, active: true,
      });
      if (ev.in_flight > 0 && !$("quota-banner").hidden && state.run.status !== "waiting_quota") hideBanner();
    },
    "run.quota_wait"(ev) {
      showQuota(ev);
      mergeRun(ev, { status: "waiting_quota", active: true });
    },
    "run.pacing": (ev) => showPacing(ev),
    "run.stopping"(ev) {
      mergeRun(ev, { status: "stopping", active: true });
      snackbar(`Stopping: ${ev.message}`);
    },
    "run.finished"(ev) {
      mergeRun(ev, Object.assign({}, ev, { active: false }));
      hideBanner();
      snackbar(ev.summary, ev.failed ? "warn" : "ok");
    },
    "scene.started": (ev) => sceneEvent(ev, "generating"),
    "scene.succeeded": (ev) => sceneEvent(ev, "ready"),
    "scene.failed": (ev) => sceneEvent(ev, "failed"),
    "scene.skipped": (ev) => sceneEvent(ev, "skipped"),
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
    if (ev.type.startsWith("character.") && ev.type === "character.succeeded") $("missing-refs") && ($("missing-refs").hidden = true);
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
    try {
      const response = await fetch(live.dataset.status, { credentials: "same-origin" });
      if (response.ok) handle(Object.assign({ type: "snapshot" }, await response.json()));
    } catch (err) {
      /* offline: the next poll or reconnect catches up */
    }
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}${live.dataset.ws}`);
    state.socket = socket;
    socket.onopen = () => {
      state.retryDelay = 500;
      live.dataset.connected = "1";
      clearInterval(state.poller);
    };
    socket.onmessage = (message) => {
      const data = JSON.parse(message.data);
      // Live events arrive coalesced in batches; replies and snapshots arrive alone.
      (data.type === "batch" ? data.events : [data]).forEach(handle);
    };
    socket.onclose = () => {
      live.dataset.connected = "0";
      clearInterval(state.poller);
      state.poller = setInterval(poll, 2000); // keep the page true while the socket is down
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
})();
