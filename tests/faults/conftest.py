"""Fixtures of the fault suite: the generation tests' run starter, and real servers for those that need
them (PostgreSQL, Redis, a tmpfs), which fail rather than skip under CI."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.generation.conftest import start
from tests.scale.conftest import (
    database_url,
    make_cluster,
    postgres_server,
    pytest_runtest_makereport,
    sql,
    template_database,
)
from tests.scale.servers import RedisServer, Unavailable

# The scale suite's servers and cluster (one PostgreSQL per session, a fresh database per test).
__all__ = [
    "database_url",
    "make_cluster",
    "postgres_server",
    "pytest_runtest_makereport",
    "sql",
    "start",
    "template_database",
]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    try:
        server = RedisServer.start()
    except Unavailable as missing:
        unavailable(str(missing))
    yield server
    server.stop()


def unavailable(reason: str):
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"{reason}: CI must run the fault suite (.ci/run installs it)")
    pytest.skip(reason)
