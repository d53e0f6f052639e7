"""Fixtures of the fault suite: the generation tests' run starter, and real servers for those that need
them (PostgreSQL, Redis, a tmpfs), which fail rather than skip under CI."""

from __future__ import annotations

from tests.generation.conftest import start
from tests.scale.conftest import (
    database_url,
    make_cluster,
    postgres_server,
    pytest_runtest_makereport,
    redis_server,
    sql,
    template_database,
)

# The scale suite's servers and cluster (one PostgreSQL per session, a fresh database per test).
__all__ = [
    "database_url",
    "make_cluster",
    "postgres_server",
    "pytest_runtest_makereport",
    "redis_server",
    "sql",
    "start",
    "template_database",
]
