"""The API script against a live `runstudio` (Daphne plus its embedded worker) over real HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.script import storyboard_script

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


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[str, str]]:
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
