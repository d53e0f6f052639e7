"""The live state is the database's state (issue 14), with two users in real browsers on a real
`runstudio` with the embedded defaults (SQLite, the in-memory channel layer): a page loaded mid-run or
mid-wait shows exactly what a page that watched live shows, a run started from the command line shows up
within 2 s, and a teammate's new scene appears on the other user's grid.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from playwright.sync_api import Page, expect

from projects.management.commands.seed_demo import DEMO_USER, TEAMMATE
from tests.browser.conftest import QUOTA_ENV, ROOT, run_studio
from tests.browser.test_live_studio import READY_AT_LEAST_JS, RUN_TIMEOUT_MS, status_json, wait_finished

SHOWN = ("progress-text", "run-meta", "quota-banner", "project-totals")
SHOWN_JS = """ids => ids.map(id => { const el = document.getElementById(id);
  return el.hidden ? null : el.textContent; })"""
# Resolves with the page's clock once a run started by `who` shows as running.
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
