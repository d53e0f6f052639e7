"""Scale-out fixtures: one redis-server and one PostgreSQL per session on loopback (temp dirs, free ports),
a migrated template database, and per test a `cluster` of studio processes on a fresh copy of it.

The tests talk to the processes over HTTP, WebSockets and SQL only, never through Django in this process,
so they need no `db` mark. Without the servers they skip locally, and fail under CI (CI=true), which must
run them (.ci/run installs both from Debian).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.scale.servers import Cluster, PostgresServer, RedisServer, Unavailable
from tests.support.unavailable import unavailable

TEMPLATE_DB = "scenestudio_template"
_databases = itertools.count(1)


def pytest_configure(config: pytest.Config) -> None:
    # Selectable with `-m scale` (or left out with `-m "not scale"`); `make test` runs it.
    config.addinivalue_line("markers", "scale: real PostgreSQL, Redis and several studio processes")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    try:
        server = RedisServer.start()
    except Unavailable as missing:
        unavailable(str(missing))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer.start()
    except Unavailable as missing:
        unavailable(str(missing))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def template_database(postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Migrated once; each test's database is a copy (CREATE DATABASE ... TEMPLATE), made in milliseconds."""
    url = postgres_server.create_database(TEMPLATE_DB)
    Cluster(tmp_path_factory.mktemp("migrate"), database_url=url, redis_url=None, env={}).migrate()
    return TEMPLATE_DB


@pytest.fixture
def database_url(postgres_server: PostgresServer, template_database: str) -> str:
    return postgres_server.create_database(f"scale_{next(_databases)}", template=template_database)


@pytest.fixture
def sql(database_url: str) -> Iterator[psycopg.Connection]:
    """Plain SQL on the test's database, to watch what the processes wrote."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def make_cluster(
    database_url: str, redis_server: RedisServer, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator:
    """make_cluster(**env) -> a Cluster on this test's database; every process ends with the test."""
    redis_server.flush()  # limiter logs and pauses of earlier tests
    clusters: list[Cluster] = []

    def make(**env: str) -> Cluster:
        cluster = Cluster(tmp_path, database_url=database_url, redis_url=redis_server.url, env=env)
        clusters.append(cluster)
        return cluster

    yield make
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for cluster in clusters:
        if failed:
            print(cluster.logs())  # shown with the failure
        cluster.stop()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report
