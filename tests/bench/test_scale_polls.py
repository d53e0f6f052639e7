"""bench scale asks whether its runs have finished over one connection per wait: a PostgreSQL connection
forks a backend, whose CPU the benchmark would charge to the studio's database."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path

import psycopg
import pytest

from bench import scale
from tests.scale.conftest import postgres_server  # one per session; skips locally, fails under CI
from tests.scale.servers import PostgresServer

__all__ = ["postgres_server"]

TABLE = "CREATE TABLE generation_batchrun (id integer PRIMARY KEY, finished timestamp NULL)"


@pytest.fixture(autouse=True)
def no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scale.time, "sleep", lambda seconds: None)


def _sessions(server: PostgresServer, database: str) -> int:
    with server.connect() as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s", (database,)).fetchone()
    return row[0]


def _settled_sessions(server: PostgresServer, database: str) -> int:
    """A backend reports its session when it ends; wait until the count stops moving."""
    last, deadline = -1, time.monotonic() + 10
    while time.monotonic() < deadline:
        now = _sessions(server, database)
        if now == last:
            return now
        last = now
        time.sleep(0.3)
    return last


@pytest.mark.postgres
def test_polls_on_postgresql_open_one_session_and_see_the_runs_finish(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.create_database("polls")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(TABLE)
        conn.execute("INSERT INTO generation_batchrun VALUES (1, now()), (2, NULL)")
    before = _settled_sessions(postgres_server, "polls")

    with contextlib.closing(scale.RunsFinished(url)) as finished:
        answers = [finished(2) for _ in range(10)]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("UPDATE generation_batchrun SET finished = now()")
        answers.append(finished(2))

    assert answers == [False] * 10 + [True]
    # One for the poller and one for the update above: not one per poll.
    assert _settled_sessions(postgres_server, "polls") - before == 2


def test_polls_on_sqlite_see_rows_committed_after_they_started(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute(TABLE)
        conn.execute("INSERT INTO generation_batchrun VALUES (1, NULL)")
        conn.commit()

    with contextlib.closing(scale.RunsFinished(f"sqlite:///{path}")) as finished:
        assert finished(1) is False
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.execute("UPDATE generation_batchrun SET finished = '2026-12-03 12:00:00'")
            conn.commit()
        assert finished(1) is True
        assert finished(2) is False
