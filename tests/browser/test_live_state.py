"""The live state is the database's state (issue 14), with two users in real browsers on a real
`runstudio` with the embedded defaults (SQLite, the in-memory channel layer): a page loaded mid-run or
mid-wait shows exactly what a page that watched live shows, a run started from the command line shows up
within 2 s, and a teammate's new scene appears on the other user's grid.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect

from projects.management.commands.seed_demo import DEMO_USER, TEAMMATE
from tests.browser.conftest import QUOTA_ENV, ROOT, run_studio
from tests.browser.test_live_studio import READY_AT_LEAST_JS, RUN_TIMEOUT_MS, status_json, wait_finished

SHOWN = ("progress-text", "run-meta", "quota-banner", "project-totals")
SHOWN_JS = """ids => ids.map(id => { const el = document.getElementById(id);
  return el.hidden ? null : el.textContent; })"""
# Resolves with the page's clock once a run started by `who` shows as running.
# Every text #run-meta shows from now on, in window.metaShown.
RECORD_META_JS = """() => { const meta = document.getElementById('run-meta'); window.metaShown = [];
  new MutationObserver(() => window.metaShown.push(meta.textContent))
    .observe(meta, {childList: true, characterData: true, subtree: true}); }"""
SEES_RUN_JS = """who => { const meta = document.getElementById('run-meta').textContent;
  return /^Running/.test(meta) && meta.includes(`started by ${who}`) && Date.now(); }"""


@pytest.fixture
def waiting_studio(template, tmp_path):
    """Quota refusals with a budget of 10 minutes: the run waits (a minute or so) rather than giving up."""
    with run_studio(template, tmp_path, {**QUOTA_ENV, "GEN_QUOTA_WAIT_MAX_TOTAL": "600"}) as server:
        yield server


def shown(page: Page) -> list[str | None]:
    return page.evaluate(SHOWN_JS, list(SHOWN))


def assert_same_as_live(live: Page, reloaded: Page) -> list[str | None]:
    """Both pages count on their own clocks and take each event a few milliseconds apart: read them back to
    back until they agree, for at most a second (a reload that lagged showed lower counts for ~53 s)."""
    for _ in range(20):
        a, b, c = shown(live), shown(reloaded), shown(live)
        if a == b == c:
            return a
        live.wait_for_timeout(50)
    raise AssertionError(f"the reloaded page shows {b}, the live one {a}")


def test_a_reload_mid_run_and_mid_wait_shows_exactly_the_live_counts_and_banner(waiting_studio, open_project):
    owner = open_project(waiting_studio, DEMO_USER, "quota")
    teammate = open_project(waiting_studio, TEAMMATE, "quota")
    owner.click("#btn-start")
    owner.wait_for_function(READY_AT_LEAST_JS, arg=1, timeout=RUN_TIMEOUT_MS)

    teammate.reload()  # mid-run
    expect(teammate.locator("#run-meta")).to_have_text(re.compile(r"^(Running|Waiting)"))
    assert_same_as_live(owner, teammate)

    banner = owner.locator("#quota-banner")
    expect(banner).to_have_text(
        re.compile(r"^Waiting for the quota: \d+ s; gives up after 10 min of waiting$")
    )
    teammate.reload()  # mid-wait
    expect(teammate.locator("#quota-banner")).to_be_visible()
    progress, meta, text, totals = assert_same_as_live(owner, teammate)
    assert re.search(r"[1-9]\d* quota waits? \(\d+ s\)", meta), meta
    assert re.search(r"ETA \d+", progress), f"the ETA counts down through the wait: {progress}"
    assert totals.startswith("Project: "), totals
    # The page counts the wait while it lasts; the database says the same.
    owner.wait_for_function(
        "() => /quota waits? \\(([1-9]\\d*) s\\)/.test(document.getElementById('run-meta').textContent)"
    )
    stored = status_json(owner, waiting_studio, "quota")["run"]
    assert stored["quota_waits"] >= 1 and stored["wait"]["kind"] == "quota"

    owner.click("#btn-stop")
    for page in (owner, teammate):
        wait_finished(page, "stopped")


def test_a_run_started_from_the_command_line_shows_up_within_two_seconds(studio, open_project):
    owner = open_project(studio, DEMO_USER, "cli")
    project = str(studio.projects["cli"])
    command = [sys.executable, "manage.py", "generate", project, "--as", TEAMMATE]
    cli = subprocess.Popen(command, cwd=ROOT, env=studio.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        seen_at = owner.wait_for_function(SEES_RUN_JS, arg=TEAMMATE, polling=50, timeout=30_000).json_value()
        created = status_json(owner, studio, "cli")["run"]["created"]
        started_at = owner.evaluate("iso => Date.parse(iso)", created)
        assert seen_at - started_at < 2000, (
            f"the page saw the run {seen_at - started_at:.0f} ms after it began"
        )
        owner.wait_for_function(READY_AT_LEAST_JS, arg=2, timeout=RUN_TIMEOUT_MS)  # and follows it
        wait_finished(owner)
    finally:
        out, err = cli.communicate(timeout=60)
    assert cli.returncode == 0, err.decode()
    expect(owner.locator("#snackbar")).to_have_text(re.compile(r"^Generated"))


def test_a_teammates_new_scene_appears_live_on_the_other_users_grid(studio, open_project):
    owner = open_project(studio, DEMO_USER, "edits")
    teammate = open_project(studio, TEAMMATE, "edits")
    before = owner.locator(".tile").count()

    teammate.goto(studio.project_url("edits") + "scenes/new/")
    teammate.fill("#id_prompt", "Gopal rows a boat across the moonlit river")
    teammate.locator("form button[type=submit]").first.click()

    expect(owner.locator(".tile")).to_have_count(before + 1, timeout=5_000)
    expect(owner.locator(".tile").last).to_contain_text("Gopal rows a boat across the moonlit river")
    expect(owner.locator("#project-totals")).to_contain_text(f"of {before + 1} scenes")


def test_a_snapshot_drawn_after_its_tiles_keeps_the_newer_events_that_came_meanwhile(studio, open_project):
    """A snapshot draws its run once the tiles it asked for are drawn; an event that arrived meanwhile is
    newer and must stay. (A page reloaded mid-wait showed the snapshot's older counts and ETA until the
    wait ended, while the page that watched live showed the event's.) The test plays the socket, and holds
    the page's tile fetch and its polls (this layer's pages poll a silent socket) until it says."""
    page = open_project(studio, DEMO_USER, "edits")
    sockets, tiles, polls = [], [], []
    page.route_web_socket(re.compile(r"/ws/projects/"), lambda ws: sockets.append(ws))
    page.route(re.compile(r"/tiles/"), lambda route: tiles.append(route))
    page.route(re.compile(r"/status\.json"), lambda route: polls.append(route))
    page.reload()
    expect(page.locator("#live")).to_have_attribute("data-connected", "1")
    snapshot = json.loads(page.locator("#initial-snapshot").text_content())
    first = page.locator(".tile").first
    version = first.get_attribute("data-version")
    first.evaluate("tile => { tile.dataset.version = 'older'; }")  # so the snapshot asks for that tile

    run = _active_run(requests=11)
    sockets[0].send(json.dumps({"type": "snapshot", **snapshot, "run": run}))
    for _ in range(100):  # the route reaches the test as an event of its own
        if tiles:
            break
        page.wait_for_timeout(50)
    assert len(tiles) == 1, "the snapshot asked for the tile it saw changed"
    progress = {**{k: run[k] for k in COUNTED}, "requests": 13, "status": "running"}
    event = {"type": "run.progress", "run": run["id"], "seq": 1, **progress, "in_flight": 1, "concurrency": 1}
    sockets[0].send(json.dumps({"type": "batch", "events": [event]}))
    expect(page.locator("#run-meta")).to_contain_text("13 requests")

    tiles[0].continue_()
    expect(first).to_have_attribute("data-version", version)  # drawn: the snapshot's run came due
    expect(page.locator("#run-meta")).to_contain_text("13 requests")


def test_counts_older_than_the_ones_shown_never_take_the_page_back(studio, open_project):
    """A socket's snapshot is read after it joined the project's group, so events sent meanwhile reach
    the page after it, older than what it drew. (A page reloaded mid-wait showed those older counts and
    ETA, a second off the live page's, until its next poll.) The test plays the socket."""
    page = open_project(studio, DEMO_USER, "edits")
    sockets = []
    page.route_web_socket(re.compile(r"/ws/projects/"), lambda ws: sockets.append(ws))
    page.reload()
    expect(page.locator("#live")).to_have_attribute("data-connected", "1")
    snapshot = json.loads(page.locator("#initial-snapshot").text_content())
    run = _active_run(requests=13)
    sockets[0].send(json.dumps({"type": "snapshot", **snapshot, "run": run}))
    expect(page.locator("#run-meta")).to_contain_text("13 requests")

    earlier = (datetime.fromisoformat(run["counts_at"]) - timedelta(seconds=1)).isoformat()
    older = {**{k: run[k] for k in COUNTED}, "requests": 12, "counts_at": earlier, "status": "running"}
    progress = {"type": "run.progress", "run": run["id"], "seq": 1, **older, "in_flight": 1, "concurrency": 1}
    item = {"id": snapshot["scenes"][0]["id"], "position": 1, "title": "", "prompt": ""}
    scene = {"type": "scene.started", "run": run["id"], "seq": 2, "item": item, "counts": older}
    newer = {**progress, "seq": 3, "requests": 14, "counts_at": run["counts_at"]}
    page.evaluate(RECORD_META_JS)
    sockets[0].send(json.dumps({"type": "batch", "events": [progress, scene]}))
    sockets[0].send(json.dumps({"type": "batch", "events": [newer]}))
    expect(page.locator("#run-meta")).to_contain_text("14 requests")  # both batches were handled
    shown = page.evaluate("() => window.metaShown")
    assert not [text for text in shown if "12 requests" in text], shown


COUNTED = (
    "total",
    "succeeded",
    "failed",
    "skipped",
    "requests",
    "retries",
    "quota_errors",
    "quota_waits",
    "quota_wait_seconds",
    "pacing_seconds",
    "counts_at",
    "eta_at",
)


def _active_run(**counts: int) -> dict:
    now = datetime.now(UTC).isoformat()
    run = dict.fromkeys(COUNTED, 0) | {"counts_at": now, "eta_at": None, "total": 3}
    return (
        run
        | counts
        | {
            "id": 999_999,
            "status": "running",
            "active": True,
            "kind": "scenes",
            "removed": 0,
            "reason": "",
            "summary": "",
            "requested_by": TEAMMATE,
            "created": now,
            "started": now,
            "finished": None,
            "quota_resume_at": None,
            "wait": None,
        }
    )
