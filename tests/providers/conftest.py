"""Fixtures for provider tests: a fake provider server on loopback, started in the test's event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from generation.fakeprovider import FakeConfig, FakeProviderServer
from generation.providers.http import make_client


@pytest.fixture
async def fake() -> AsyncIterator[FakeProviderServer]:
    async with FakeProviderServer(FakeConfig(seed=7)) as server:
        yield server


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # A short read timeout so the "timeout" fault costs the suite well under a second.
    http = make_client(read_timeout=0.25, connect_timeout=0.5)
    yield http
    await http.aclose()
