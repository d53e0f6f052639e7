from __future__ import annotations

from decimal import Decimal

import pytest
from channels.db import database_sync_to_async

from generation.costs.models import Budget
from generation.models import BatchRun
from generation.runs import providers as factory
from generation.runs import services
from generation.runs.execution import run_execute
from tests.costs.conftest import FAST, openai

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def priced_as_openai(team, settings, fake):
    # The project's provider prices the run before it starts: the fake server's OpenAI flavor.
    factory.provider_cache_clear()
    settings.GENERATION_PROVIDERS = {**settings.GENERATION_PROVIDERS, "fake": {"base_url": fake.url}}
    team.project.provider = "fake"
    team.project.save()
    yield
    factory.provider_cache_clear()


def start(team, concurrency: int = 1):
    overrides = {**FAST, "start_concurrency": concurrency, "max_concurrency": concurrency}
    run, created = services.run_start(project=team.project, user=team.editor, overrides=overrides)
    assert created
    return run


def set_budget(amount: str, **owner) -> None:
    Budget.objects.update_or_create(**owner, defaults={"amount": Decimal(amount)})


def test_a_run_that_would_exceed_the_project_budget_is_refused_with_the_estimate(team, four_scenes):
    set_budget("0.10", project=team.project)
    with pytest.raises(services.RunRefused) as refused:
        start(team)
    # 4 images at the table's $0.063 (gpt-image-1, medium, 1536x1024).
    assert "$0.2520" in refused.value.message and "$0.1000" in refused.value.message
    assert not BatchRun.objects.exists()


def test_a_monthly_budget_per_person_refuses_too(team, four_scenes):
    set_budget("0.05", user=team.editor)
    with pytest.raises(services.RunRefused, match="budget"):
        start(team)
    set_budget("5", user=team.editor)
    assert start(team).pk


async def test_a_run_that_reaches_its_budget_stops_cleanly_and_resumes_once_it_is_raised(
    team, four_scenes, fake, http
):
    await database_sync_to_async(set_budget)("1.00", project=team.project)
    run = await database_sync_to_async(start)(team)
    await database_sync_to_async(set_budget)("0.10", project=team.project)  # lowered before it ran
    provider = openai(fake, http)
    run = await run_execute(run_id=run.pk, worker="w1", provider=provider)
    assert run.status == "stopped" and run.reason.startswith("Budget reached")
    assert run.succeeded == 1 and run.cost <= Decimal("0.10")
    await database_sync_to_async(set_budget)("1.00", project=team.project)
    again = await database_sync_to_async(start)(team)
    again = await run_execute(run_id=again.pk, worker="w1", provider=provider)
    assert again.status == "completed" and again.succeeded + again.skipped == 4


async def test_requests_in_flight_never_take_the_run_past_its_budget(team, four_scenes, fake, http):
    await database_sync_to_async(set_budget)("1.00", project=team.project)
    run = await database_sync_to_async(start)(team, concurrency=4)
    await database_sync_to_async(set_budget)("0.13", project=team.project)
    run = await run_execute(run_id=run.pk, worker="w1", provider=openai(fake, http))
    # Two requests fit 0.13 at $0.063 each; a third would not, even before either is billed.
    assert len(fake.recorder.find("/v1/images")) == 2
    assert run.succeeded == 2 and run.cost <= Decimal("0.13")
    assert run.reason.startswith("Budget reached")
