"""Fixtures for cost, budget, daily-quota and estimate tests: the fake provider server on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from generation.fakeprovider import FakeProviderServer
from generation.providers.gemini import GeminiProvider
from generation.providers.http import make_client
from generation.providers.openai import OpenAIProvider
from projects import services as project_services
from tests.generation.conftest import FAST, fast_simulated, simulated  # noqa: F401  (re-exported)


@pytest.fixture(autouse=True)
def published_prices(request):
    """Transactional tests flush the tables the data migration seeded: seed them again."""
    if "django_db_setup" in request.fixturenames or request.node.get_closest_marker("django_db"):
        from generation.costs.models import Price
        from generation.costs.seed import prices_seed

        request.getfixturevalue("_django_db_helper")
        prices_seed(Price)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    http = make_client(read_timeout=5, connect_timeout=1)
    yield http
    await http.aclose()


def openai(fake: FakeProviderServer, client: httpx.AsyncClient, **options) -> OpenAIProvider:
    return OpenAIProvider(api_key="sk-test-cost", base_url=fake.base_url("openai"), client=client, **options)


def gemini(fake: FakeProviderServer, client: httpx.AsyncClient, **options) -> GeminiProvider:
    return GeminiProvider(
        api_key="AIza-test-cost", base_url=fake.base_url("gemini"), client=client, **options
    )


@pytest.fixture
def four_scenes(team):
    return [
        project_services.scene_create(project=team.project, prompt=f"A lighthouse, take {i}")
        for i in range(4)
    ]
