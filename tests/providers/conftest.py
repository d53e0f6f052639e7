"""Fixtures for provider tests: an HTTP client with short timeouts (the fake server, `fake`, is shared
from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from generation.providers.http import make_client


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # A short read timeout so the "timeout" fault costs the suite well under a second. Not a short connect
    # timeout: no fault is injected there, and a loaded machine can take over half a second to accept.
    http = make_client(read_timeout=0.25, connect_timeout=5.0)
    yield http
    await http.aclose()
