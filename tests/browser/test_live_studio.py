"""The live storyboard in a real browser against a real `runstudio`: runs, teammates, viewers, stop and
resume, quota waits, reloads and a phone-width screen. Every wait is for a condition, never a fixed time.
"""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from projects.management.commands.seed_demo import DEMO_USER, TEAMMATE
from tests.browser.conftest import VIEWER

TOTAL, EMPTY = 20, 2  # the demo story: 20 scenes, two of them with empty prompts
RUN_TIMEOUT_MS = 30_000

COUNTS_JS = """() => {
  const counts = {pending: 0, generating: 0, ready: 0, failed: 0, skipped: 0};
  for (const tile of document.querySelectorAll('.tile')) counts[tile.dataset.status] += 1;
  return counts;
}"""
READY = '.tile[data-status="ready"]'
READY_AT_LEAST_JS = f"n => document.querySelectorAll('{READY}').length >= n"
# Records every change of the number of ready tiles, to tell "filled one by one" from "appeared at once".
RECORD_FILLING_JS = """() => {
  const count = () => document.querySelectorAll('.tile[data-status="ready"]').length;
  window.readyHistory = [count()];
  new MutationObserver(() => {
    const n = count();
    if (window.readyHistory[window.readyHistory.length - 1] !== n) window.readyHistory.push(n);
  }).observe(document.getElementById('storyboard'), {subtree: true, attributeFilter: ['data-status']});
}"""
THUMBNAILS_LOADED_JS = """() => [...document.querySelectorAll('.tile[data-status="ready"]')].every(
  t => { const img = t.querySelector('.thumb img'); return img && img.complete && img.naturalWidth > 0; })"""
# A viewer's own socket, opened from the page so it carries the session cookie, asking to start a run.
SOCKET_START_JS = """path => new Promise(resolve => {
  const socket = new WebSocket(`ws://${location.host}${path}`);
  socket.onmessage = message => {
    const event = JSON.parse(message.data);
    if (event.type === 'snapshot') socket.send(JSON.stringify({action: 'start'}));
    if (['error', 'ack', 'refused'].includes(event.type)) { socket.close(); resolve(event); }
  };
  socket.onclose = () => resolve({type: 'closed'});
})"""
# The reloaded page is true once every scene the database had ready is ready, the run shows as running with
# at least that many done, and its socket is live for what comes next. Returns when, in ms since navigation.
RECOVERED_JS = """ids => {
  const text = id => document.getElementById(id).textContent;
  const live = document.getElementById('live').dataset.connected === '1';
  const tile = id => document.querySelector(`.tile[data-scene="${id}"]`);
  const ready = ids.every(id => tile(id).dataset.status === 'ready');
  return live && ready && /^Running/.test(text('run-meta')) && parseInt(text('progress-text')) >= ids.length
    && performance.now();
}"""
STATUS_JS = "url => fetch(url, {credentials: 'same-origin'}).then(r => r.json())"


def counts(page: Page) -> dict[str, int]:
    return page.evaluate(COUNTS_JS)


def wait_running(page: Page) -> None:
    expect(page.locator("#run-meta")).to_have_text(re.compile(r"^Running"))


def wait_finished(page: Page, status: str = "completed") -> None:
    expect(page.locator("#run-meta")).to_have_text(re.compile(rf"^Last run {status}"), timeout=RUN_TIMEOUT_MS)


def progress_line(*, succeeded: int, failed: int, skipped: int, total: int = TOTAL) -> str:
    done = succeeded + failed + skipped
    return f"{done} / {total} scenes done · {succeeded} succeeded · {failed} failed · {skipped} skipped"


def status_json(page: Page, studio, project: str) -> dict:
    return page.evaluate(STATUS_JS, f"{studio.url}/projects/{studio.projects[project]}/status.json")


def generate_references(page: Page) -> None:
    """The real flow: a run refused for missing references, then the button that generates them."""
    expect(page.locator("#missing-refs")).to_be_visible()
    page.click("#btn-start")
    expect(page.locator("#snackbar")).to_contain_text("need a reference image first")
    page.click("#btn-characters")
    expect(page.locator("#progress-text")).to_have_text(re.compile(r"^3 / 3 references done"))
    wait_finished(page)
    expect(page.locator("#missing-refs")).to_be_hidden()


def test_a_user_watches_tiles_fill_and_a_teammate_sees_the_same_progress(studio, open_project, artifacts):
    owner = open_project(studio, DEMO_USER, "demo")
    teammate = open_project(studio, TEAMMATE, "demo")
    generate_references(owner)
    expect(teammate.locator("#progress-text")).to_have_text(re.compile(r"^3 / 3 references done"))
    for page in (owner, teammate):
        page.evaluate(RECORD_FILLING_JS)

    owner.click("#btn-start")
    owner.wait_for_function(READY_AT_LEAST_JS, arg=4, timeout=RUN_TIMEOUT_MS)
    owner.locator("#storyboard").screenshot(path=artifacts / "grid-mid-run.png")
    mid = counts(owner)
    assert mid["pending"] + mid["generating"] > 0, f"the screenshot should show a run in progress: {mid}"
    teammate.wait_for_function(READY_AT_LEAST_JS, arg=4, timeout=RUN_TIMEOUT_MS)
    expect(teammate.locator("#run-meta")).to_contain_text(f"started by {DEMO_USER}")

    summary = f"Generated {TOTAL - EMPTY - 1} of {TOTAL} scenes (1 failed, {EMPTY} skipped)"
    for page in (owner, teammate):
        wait_finished(page)
        expect(page.locator("#snackbar")).to_have_text(summary)
        expect(page.locator("#progress-text")).to_have_text(
            progress_line(succeeded=TOTAL - EMPTY - 1, failed=1, skipped=EMPTY)
        )
        assert counts(page) == {"pending": 0, "generating": 0, "ready": 17, "failed": 1, "skipped": 2}
        history = page.evaluate("window.readyHistory")
        assert history == sorted(history) and len(history) >= 5, f"tiles did not fill one by one: {history}"
    failed_tile = owner.locator('.tile[data-status="failed"]')
    expect(failed_tile.locator("[data-reason]")).to_contain_text("safety")
    expect(failed_tile.locator(".retry-form")).to_be_visible()
    expect(owner.locator("#btn-retry-failed")).to_be_visible()
    # The page loaded with no images; the export it offers must follow the run, not the page load.
    expect(teammate.locator("#export-tools a", has_text="Download ZIP")).to_have_attribute(
        "href", f"/projects/{studio.projects['demo']}/export.zip"
    )
    owner.locator("#storyboard").screenshot(path=artifacts / "grid-end.png")
    # Both pages ask for each new thumbnail at the same moment: each must get a real image.
    for page in (owner, teammate):
        page.wait_for_function(THUMBNAILS_LOADED_JS, timeout=5_000)


def test_a_viewer_sees_no_start_button_and_cannot_start_over_the_socket(studio, open_project):
    viewer = open_project(studio, VIEWER, "demo")
    expect(viewer.locator(".run-controls")).to_have_count(0)
    expect(viewer.locator("#btn-start")).to_have_count(0)
    expect(viewer.locator(".retry-form")).to_have_count(0)
    before = status_json(viewer, studio, "demo")["run"]

    reply = viewer.evaluate(SOCKET_START_JS, studio.ws_path("demo"))

    assert reply == {"type": "error", "message": "Only editors and owners can do that."}
    after = status_json(viewer, studio, "demo")["run"]
    assert after == before, "a viewer's start must not create or change a run"


def test_stop_then_resume_completes_the_project(studio, open_project):
    owner = open_project(studio, DEMO_USER, "stop")
    owner.click("#btn-start")
    owner.wait_for_function(READY_AT_LEAST_JS, arg=3, timeout=RUN_TIMEOUT_MS)
    owner.click("#btn-stop")

    wait_finished(owner, "stopped")
    expect(owner.locator("#btn-start")).to_have_text("Resume")
    expect(owner.locator("#btn-stop")).to_be_hidden()
    stopped = counts(owner)
    ready, left = stopped["ready"], stopped["pending"]
    assert stopped["generating"] == 0 and left > 0 and ready + left == TOTAL - EMPTY, stopped
    expect(owner.locator("#snackbar")).to_have_text(
        f"Generated {ready} of {TOTAL} scenes ({EMPTY} skipped, {left} not attempted)"
    )

    owner.click("#btn-start")
    wait_running(owner)
    wait_finished(owner)
    assert counts(owner) == {"pending": 0, "generating": 0, "ready": 18, "failed": 0, "skipped": 2}
    # The resumed run skips what the first one finished, and says so in its counts and snackbar.
    missing = "missing scene" if left == 1 else "missing scenes"
    resumed = f"Generated the {left} {missing}; {TOTAL - EMPTY} of {TOTAL} now have images"
    expect(owner.locator("#snackbar")).to_have_text(resumed)
    expect(owner.locator("#progress-text")).to_have_text(
        progress_line(succeeded=left, failed=0, skipped=TOTAL - left)
    )


def test_a_reload_mid_run_shows_the_true_state_and_keeps_updating(studio, open_project):
    """How fast it shows it is a benchmark figure (`python -m bench reload`, target under 1 s), not a
    timed assertion here."""
    owner = open_project(studio, DEMO_USER, "reload")
    owner.click("#btn-start")
    owner.wait_for_function(READY_AT_LEAST_JS, arg=3, timeout=RUN_TIMEOUT_MS)

    # The database's view just before the reload: what the reloaded page must show at least.
    truth = [s["id"] for s in status_json(owner, studio, "reload")["scenes"] if s["status"] == "ready"]
    owner.reload(wait_until="commit")
    owner.wait_for_function(RECOVERED_JS, arg=truth, polling=25, timeout=10_000)
    ready = counts(owner)["ready"]
    assert ready < TOTAL - EMPTY, "the reload should have happened mid-run"
    owner.wait_for_function(READY_AT_LEAST_JS, arg=ready + 1)  # and it keeps updating

    wait_finished(owner)
    assert counts(owner) == {"pending": 0, "generating": 0, "ready": 18, "failed": 0, "skipped": 2}
    expect(owner.locator("#snackbar")).to_have_text(f"Generated 18 of {TOTAL} scenes ({EMPTY} skipped)")


def test_a_quota_wait_shows_a_countdown_banner(quota_studio, open_project, artifacts):
    owner = open_project(quota_studio, DEMO_USER, "quota")
    owner.click("#btn-start")

    banner = owner.locator("#quota-banner")
    wording = re.compile(r"^Waiting for the quota: (\d+) s; gives up after 10 min of waiting$")
    expect(banner).to_have_text(wording)
    first = int(wording.match(banner.text_content()).group(1))
    # Without Retry-After the engine infers the rolling window from the 429 and waits for it to free up
    # (at most a window), instead of a blind 15 s default.
    assert 1 <= first <= 61, f"a wait for the 60 s window to free up should show, not {first} s"
    owner.wait_for_function(
        "n => parseInt(document.getElementById('quota-banner').textContent.match(/quota: (\\d+) s/)[1]) < n",
        arg=first,
    )
    owner.screenshot(path=artifacts / "quota-banner.png")

    owner.reload()  # mid-wait: the snapshot says when the wait ends, so the countdown comes back
    expect(banner).to_have_text(re.compile(r"^Waiting for the quota: \d+ s"))

    owner.click("#btn-stop")  # a stop ends the wait at once; nobody has to sit through it
    wait_finished(owner, "stopped")
    expect(banner).to_be_hidden()


def test_the_page_works_at_phone_width(studio, open_project, artifacts):
    phone = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
    owner = open_project(studio, DEMO_USER, "phone", device_scale_factor=2, **phone)
    assert owner.evaluate("document.documentElement.scrollWidth") <= 390, "the page scrolls sideways"
    start = owner.locator("#btn-start").bounding_box()
    assert start["x"] >= 0 and start["x"] + start["width"] <= 390
    columns = {round(box["x"]) for box in (t.bounding_box() for t in owner.locator(".tile").all())}
    assert len(columns) == 2, f"tiles should sit in two columns on a phone, got x positions {columns}"

    owner.locator("#btn-start").tap()
    wait_running(owner)
    wait_finished(owner)
    snackbar = owner.locator("#snackbar")
    expect(snackbar).to_have_text(f"Generated 18 of {TOTAL} scenes ({EMPTY} skipped)")
    box = snackbar.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390, f"the snackbar overflows the screen: {box}"
    owner.wait_for_function(THUMBNAILS_LOADED_JS)
    assert owner.evaluate("document.documentElement.scrollWidth") <= 390
    owner.screenshot(path=artifacts / "phone-end.png", full_page=True)
