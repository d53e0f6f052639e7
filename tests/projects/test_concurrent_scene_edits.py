"""Concurrent scene moves, deletes, creates and imports on PostgreSQL, with 12 threads.

The threads run in a subprocess (postgres_scene_races.py) whose DATABASE_URL points at a throwaway
PostgreSQL on loopback (tests/scale/servers.py), because this process's database is fixed at start-up.
Without PostgreSQL the test skips locally and fails under CI (CI=true).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.scale.conftest import postgres_server  # one per session; skips locally, fails under CI
from tests.scale.servers import PostgresServer

__all__ = ["postgres_server"]

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.postgres


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    return postgres_server.create_database("races")


def test_scene_edits_from_12_threads_keep_positions_and_never_fail(postgres_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": postgres_url, "DB_CONN_MAX_AGE": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/projects/postgres_scene_races.py", "-q", "-rs", "-s"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert "6 passed" in done.stdout, done.stdout[-3000:]
