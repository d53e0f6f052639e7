"""The API script against a live `runstudio` (Daphne plus its embedded worker) over real HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.script import storyboard_script
from webhooks import signing

ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 30.0
SETUP = """
from django.contrib.auth import get_user_model
from api.services import token_create
user = get_user_model().objects.create_user("scripter", password="pw-scripter")
print(token_create(user=user, name="live test")[1])
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL", "MEDIA_ROOT"}}
    env.update(
        DATABASE_URL=f"sqlite:///{workdir / 'db.sqlite3'}",
        MEDIA_ROOT=str(workdir / "media"),
        PROVIDER="sketch",
        DEBUG="1",
        # The receiver below is on loopback; retry fast so the test sees the second attempt soon.
        WEBHOOKS_ALLOW_PRIVATE="1",
        WEBHOOKS_BACKOFF_SECONDS="0.2",
        WEBHOOKS_POLL_SECONDS="0.1",
        PYTHONUNBUFFERED="1",
    )
    return env


def _manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _wait_for(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)  # not listening yet
    pytest.fail(f"runstudio did not answer within {START_SECONDS:g}s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """One server for the module: starting one (migrate, then Daphne) takes seconds."""
    tmp_path = tmp_path_factory.mktemp("live-api")
    env = _env(tmp_path)
    _manage(env, "migrate", "--verbosity", "0")
    token = _manage(env, "shell", "-c", SETUP).strip().splitlines()[-1]
    port, log = _free_port(), tmp_path / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "runstudio", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_for(url + "/healthz", process, log)
        yield url, token
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class HttpxApi:
    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, Any]:
        response = self.client.request(method.upper(), path, json=body)
        return response.status_code, response.json()

    def upload(self, path: str, field: str, filename: str, data: bytes) -> tuple[int, Any]:
        response = self.client.post(path, files={field: (filename, data, "image/png")})
        return response.status_code, response.json()

    def download(self, path: str) -> tuple[int, bytes, str]:
        response = self.client.get(path)
        return response.status_code, response.content, response.headers["content-type"]

    def wait(self) -> None:
        time.sleep(0.1)  # between polls of the run's status; the worker in the server does the work


def test_the_script_runs_against_a_live_daphne(live):
    url, token = live
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        result = storyboard_script(HttpxApi(client))
        assert result["run"]["requested_by"] == "scripter"
        assert client.get("/readyz").json()["status"] == "ok"


class Receiver(BaseHTTPRequestHandler):
    """Answers 500 to the first request of every delivery, 200 to the next."""

    received: list[tuple[dict, bytes, int]] = []
    seen: set[str] = set()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        delivery = self.headers["X-SceneStudio-Delivery"]
        status = 200 if delivery in self.seen else 500
        self.seen.add(delivery)
        self.received.append((dict(self.headers), body, status))
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[Receiver]]]:
    Receiver.received, Receiver.seen = [], set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", Receiver
    server.shutdown()
    server.server_close()


def test_a_live_worker_delivers_signed_run_finished_after_a_failing_first_delivery(live, receiver):
    url, token = live
    hook_url, handler = receiver
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        project = client.post("/api/projects", json={"title": "Hooked"}).json()
        base = f"/api/projects/{project['id']}"
        hook = client.post(base + "/webhooks", json={"url": hook_url, "events": ["run.finished"]}).json()
        client.post(base + "/scenes", json={"prompt": "A lighthouse in fog"})
        run = client.post(base + "/runs", json={}).json()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(status == 200 for *_, status in handler.received):
            time.sleep(0.1)  # the server's worker delivers; this only watches
    answered = [status for *_, status in handler.received]
    assert answered == [500, 200], answered
    headers_seen, body, _ = handler.received[-1]
    assert signing.verify(hook["secret"], headers_seen[signing.HEADER], body)
    event = json.loads(body)
    assert event["event"] == "run.finished" and event["data"]["run"]["id"] == run["id"]
    assert event["data"]["run"]["status"] == "completed"
