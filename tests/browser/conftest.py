"""Browser fixtures: `manage.py runstudio` as a subprocess on a seeded temp database, and Debian's Chromium
driven by Playwright. The tests talk to the server over HTTP and WebSockets only, never to a database in
this process, so they need no `db` mark.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from projects.management.commands.seed_demo import DEMO_PASSWORD, DEMO_USER, TEAMMATE, TEAMMATE_PASSWORD
from tests.support import processes
from tests.support.unavailable import unavailable

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SERVER_START_SECONDS = 30.0

VIEWER, VIEWER_PASSWORD = "vera", "storyboard-view"
PASSWORDS = {DEMO_USER: DEMO_PASSWORD, TEAMMATE: TEAMMATE_PASSWORD, VIEWER: VIEWER_PASSWORD}

# The simulated provider refuses prompts containing this word: one demo scene gets it, so a run ends
# with a failure to show (and a snackbar with every kind of count).
SAFETY_WORD = "forbiddenlantern"
FAILING_POSITION = 12
# Copies of the demo project, with references already generated, one per test that runs a batch.
CLONES = ("stop", "reload", "phone", "quota", "cli", "edits", "studio")

# Slow enough to watch: 18 scenes, 3 at a time, 0.6 s each is about 4 s a run.
WATCHABLE_ENV = {
    "SIMULATED_LATENCY": "0.6",
    "GEN_START_CONCURRENCY": "3",
    "GEN_MAX_CONCURRENCY": "3",
    "SIMULATED_SAFETY_WORD": SAFETY_WORD,
}
# 4 requests a minute and no Retry-After: the engine infers the rolling window from the first 429 and
# waits for it to free up, within the default 10 min budget.
QUOTA_ENV = {
    "SIMULATED_LATENCY": "0.3",
    "SIMULATED_RPM": "4",
    "SIMULATED_SEND_RETRY_AFTER": "0",
    "GEN_START_CONCURRENCY": "3",
    "GEN_MAX_CONCURRENCY": "5",
    "GEN_QUOTA_WAIT_DEFAULT": "15",
    "GEN_QUOTA_WAIT_MAX_TOTAL": "600",
}

# Runs inside `manage.py shell -c` against the template database; prints the project ids as JSON.
SETUP_SCRIPT = """
import io, json, os
from django.contrib.auth import get_user_model
from django.core.management import call_command
from projects import services
from projects.management.commands.seed_demo import CHARACTERS, DEMO_USER, SCENES, TEAMMATE, TITLE
from projects.models import Membership, Project, Role

spec = json.loads(os.environ["BROWSER_SETUP"])
call_command("migrate", verbosity=0)
call_command("seed_demo", stdout=io.StringIO())
users = get_user_model().objects
demo, teammate = users.get(username=DEMO_USER), users.get(username=TEAMMATE)
viewer = users.create_user(spec["viewer"], password=spec["viewer_password"])
main = Project.objects.get(title=TITLE, memberships__user=demo)
Membership.objects.create(project=main, user=viewer, role=Role.VIEWER)
failing = main.scenes.get(position=spec["failing_position"])
failing.prompt = failing.prompt + " " + spec["safety_word"]
failing.save(update_fields=["prompt"])
ids = {"demo": main.pk}
for name in spec["clones"]:
    project = services.project_create(title=TITLE + " (" + name + ")", user=demo)
    Membership.objects.create(project=project, user=teammate, role=Role.EDITOR)
    for char_name, aliases, description in CHARACTERS:
        services.character_save(project=project, name=char_name, aliases=aliases, description=description)
    for prompt in SCENES:
        services.scene_create(project=project, prompt=prompt)
    call_command("generate", str(project.pk), "--characters", stdout=io.StringIO())
    ids[name] = project.pk
# The portraits ran on a 0.01 s simulated provider with no quota: what those runs learned about the
# "simulated" credential is not what the tests' servers simulate, so no test starts from it.
from generation.models import LearnedProfile
LearnedProfile.objects.all().delete()
print(json.dumps(ids))
"""


@dataclass(frozen=True)
class Template:
    """A migrated, seeded database and media directory that each server starts from a copy of."""

    path: Path
    projects: dict[str, int]


@dataclass(frozen=True)
class Studio:
    url: str
    projects: dict[str, int]
    log: Path
    env: dict[str, str]  # the server's environment: a command run with it works on the same database

    def project_url(self, name: str) -> str:
        return f"{self.url}/projects/{self.projects[name]}/"

    def ws_path(self, name: str) -> str:
        return f"/ws/projects/{self.projects[name]}/"


def _base_env(workdir: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL", "MEDIA_ROOT"}}
    env.update(
        DATABASE_URL=f"sqlite:///{workdir / 'db.sqlite3'}",
        MEDIA_ROOT=str(workdir / "media"),
        PROVIDER="simulated",
        DEBUG="1",  # seed_demo refuses to run otherwise, and runstudio serves static files only then
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def chromium() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    unavailable(f"{CHROMIUM} is not installed (apt-get install chromium); Playwright never downloads one")


def seed_template(path: Path) -> Template:
    """Migrate and seed the database in `path` (bench/reload.py seeds its own the same way)."""
    spec = {
        "viewer": VIEWER,
        "viewer_password": VIEWER_PASSWORD,
        "failing_position": FAILING_POSITION,
        "safety_word": SAFETY_WORD,
        "clones": list(CLONES),
    }
    # Reference portraits for the clones come from the simulated provider: fast here, nothing to watch.
    env = _base_env(path, {"BROWSER_SETUP": json.dumps(spec), "SIMULATED_LATENCY": "0.01"})
    last_line = processes.setup_script(SETUP_SCRIPT, env=env, what="Seeding the browser-test database")
    return Template(path=path, projects=json.loads(last_line))


@pytest.fixture(scope="session")
def template(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Template:
    try:
        return seed_template(tmp_path_factory.mktemp("studio-template"))
    except RuntimeError as exc:
        pytest.fail(str(exc))


@contextmanager
def run_studio(template: Template, workdir: Path, env: dict[str, str]) -> Iterator[Studio]:
    """A live `runstudio` (Daphne plus the embedded worker) on a copy of the template's database."""
    for source in template.path.glob("db.sqlite3*"):
        shutil.copy2(source, workdir / source.name)
    if (template.path / "media").exists():
        shutil.copytree(template.path / "media", workdir / "media")
    port, log = processes.free_port(), workdir / "server.log"
    args = ["manage.py", "runstudio", "--port", str(port)]
    server_env = _base_env(workdir, env)
    with processes.running(args, env=server_env, log=log) as process:
        try:
            processes.wait_for_port(
                port, what="runstudio", timeout=SERVER_START_SECONDS, process=process, log=log
            )
        except (RuntimeError, TimeoutError) as exc:
            pytest.fail(str(exc))
        yield Studio(url=f"http://127.0.0.1:{port}", projects=template.projects, log=log, env=server_env)


@pytest.fixture(scope="session")
def studio(template: Template, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    with run_studio(template, tmp_path_factory.mktemp("studio"), WATCHABLE_ENV) as server:
        yield server


@pytest.fixture
def quota_studio(template: Template, tmp_path: Path) -> Iterator[Studio]:
    with run_studio(template, tmp_path, QUOTA_ENV) as server:
        yield server


@pytest.fixture(scope="module")
def browser(chromium: Path):
    """Module-scoped: Playwright's sync API keeps an event loop running while it is started, which would
    break every asyncio test that runs after it in the same session."""
    from playwright.sync_api import expect, sync_playwright

    # Runs take seconds and a CI machine may be slow: wait generously, always for a condition.
    expect.set_options(timeout=20_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


OpenProject = Callable[..., object]


@pytest.fixture(scope="session")
def logins() -> dict[tuple[str, str], dict]:
    """Cookies per (server, user): each user logs in through the form once, later contexts reuse them.

    Password hashing makes every login cost about half a second on a busy machine.
    """
    return {}


@pytest.fixture
def open_project(browser, logins: dict[tuple[str, str], dict]) -> Iterator[OpenProject]:
    """open_project(studio, username, project, **context_options) -> a logged-in page with a live socket.

    Each call gets its own browser context, like a second person on another machine (or a second tab of
    the same person: one user's contexts share a session). Uncaught JavaScript errors fail the test, and so
    does anything the page's Content-Security-Policy refused.
    """
    contexts, errors = [], []

    def open_(studio: Studio, username: str, project: str, **context_options):
        key = (studio.url, username)
        context = browser.new_context(storage_state=logins.get(key), **context_options)
        context.set_default_timeout(20_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(f"{username}: {error}"))
        page.on("console", lambda message: _record_csp_violation(errors, username, message))
        if key not in logins:
            log_in(page, studio, username)
            logins[key] = context.storage_state()
        page.goto(studio.project_url(project))
        wait_connected(page)
        return page

    yield open_
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors: {errors}"


def _record_csp_violation(errors: list[str], username: str, message) -> None:
    # Chromium reports every refusal of the policy as a console error naming it.
    if message.type == "error" and "Content Security Policy" in message.text:
        errors.append(f"{username}: {message.text}")


def log_in(page, studio: Studio, username: str) -> None:
    page.goto(f"{studio.url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORDS[username])
    page.click("button[type=submit]")
    page.wait_for_url(f"{studio.url}/")


def wait_connected(page) -> None:
    # Not wait_for_function with a string: when it has to poll, Playwright evals the string in the page,
    # which the page's CSP (no 'unsafe-eval') refuses.
    from playwright.sync_api import expect

    expect(page.locator("#live")).to_have_attribute("data-connected", "1")
