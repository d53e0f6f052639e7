"""Fixtures for provider tests: an HTTP client with short timeouts (the fake server, `fake`, is shared
from tests/conftest.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import uvloop

from generation.providers.http import make_client


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # A short read timeout so the "timeout" fault costs the suite well under a second. Not a short connect
    # timeout: no fault is injected there, and a loaded machine can take over half a second to accept.
    http = make_client(read_timeout=0.25, connect_timeout=5.0)
    yield http
    await http.aclose()


def pytest_asyncio_loop_factories(config, item):
    """The worker runs providers on uvloop, tests on the standard loop; the connection code runs on both."""
    module = getattr(getattr(item, "module", None), "__name__", "")
    if module.endswith("test_transport"):
        return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
    return {"asyncio": asyncio.new_event_loop}
