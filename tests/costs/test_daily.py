from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from generation.costs.daily import daily_reset_at, parked_message
from generation.models import BatchRun
from generation.providers.base import DailyQuotaError
from generation.runs import actions, services
from generation.runs.execution import run_execute
from generation.runs.selectors import runs_needing_a_worker
from tests.costs.conftest import FAST, gemini, openai

pytestmark = pytest.mark.django_db(transaction=True)


def start(team):
    overrides = {**FAST, "start_concurrency": 1, "max_concurrency": 1}
    run, created = services.run_start(project=team.project, user=team.editor, overrides=overrides)
    assert created
    return run


def test_gemini_resets_at_midnight_pacific_and_the_page_says_when(settings):
    settings.GENERATION_DAILY_RESET_SECONDS = None
    now = datetime(2026, 12, 1, 18, 48, tzinfo=UTC)  # 10:48 PST
    reset = daily_reset_at(provider="gemini", error=DailyQuotaError("spent"), now=now)
    assert reset == datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    assert parked_message(provider="gemini", resume_at=reset, now=now) == (
        "Daily quota reached: resumes automatically at 00:00 PT (in 13 h 12 min)"
    )


def test_openai_resets_when_its_header_says_and_a_configured_reset_wins(settings):
    settings.GENERATION_DAILY_RESET_SECONDS = None
    now = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    error = DailyQuotaError("rpd", retry_after=3600)
    assert daily_reset_at(provider="openai", error=error, now=now) == now + timedelta(hours=1)
    assert daily_reset_at(provider="a1111", error=None, now=now) == datetime(2026, 12, 2, tzinfo=UTC)
    settings.GENERATION_DAILY_RESET_SECONDS = 5
    assert daily_reset_at(provider="gemini", error=error, now=now) == now + timedelta(seconds=5)


async def test_an_openai_daily_cap_parks_the_run_and_it_resumes_by_itself_after_the_reset(
    team, four_scenes, fake, http, settings
):
    settings.GENERATION_DAILY_RESET_SECONDS = None  # the fake's requests-per-day reset header decides
    # A 6 s "day": long enough that two requests fit in it on a loaded machine.
    fake.configure(daily_limit=2, daily_window_seconds=6)
    run = await database_sync_to_async(start)(team)
    provider = openai(fake, http)
    run = await run_execute(run_id=run.pk, worker="w1", provider=provider)
    assert run.status == "waiting_daily_quota" and run.succeeded == 2
    assert run.reason.startswith("Daily quota reached: resumes automatically at")
    assert run.quota_resume_at is not None and run.finished is None
    assert run.quota_resume_at <= timezone.now() + timedelta(seconds=6)
    # Parked, it holds the project (one active run) but no worker wants it before the reset.
    assert await database_sync_to_async(runs_needing_a_worker)() == []
    current, created = await database_sync_to_async(services.run_start)(
        project=team.project, user=team.editor
    )
    assert current.pk == run.pk and not created
    sent = len(fake.recorder.requests)
    await asyncio.sleep((run.quota_resume_at - timezone.now()).total_seconds() + 0.1)
    assert len(fake.recorder.requests) == sent  # nothing is retried in between
    assert await database_sync_to_async(runs_needing_a_worker)() == [run.pk]
    run = await run_execute(run_id=run.pk, worker="w2", provider=provider)
    assert run.status == "completed" and run.succeeded == 4


async def test_a_gemini_per_day_quota_parks_until_the_configured_reset(
    team, four_scenes, fake, http, settings
):
    settings.GENERATION_DAILY_RESET_SECONDS = 60
    fake.configure(daily_limit=1)
    run = await database_sync_to_async(start)(team)
    run = await run_execute(run_id=run.pk, worker="w1", provider=gemini(fake, http))
    assert run.status == "waiting_daily_quota" and run.succeeded == 1
    assert timedelta(seconds=55) < run.quota_resume_at - timezone.now() <= timedelta(seconds=60)


async def test_an_editor_can_stop_a_parked_run_or_resume_it_early(team, four_scenes, fake, http, settings):
    settings.GENERATION_DAILY_RESET_SECONDS = 3600
    fake.configure(daily_limit=1, daily_window_seconds=3600)
    provider = openai(fake, http)
    run = await database_sync_to_async(start)(team)
    run = await run_execute(run_id=run.pk, worker="w1", provider=provider)
    assert run.status == "waiting_daily_quota"
    done = await database_sync_to_async(actions.perform_action)(
        project_id=team.project.pk, user=team.editor, action="resume"
    )
    assert done.run.quota_resume_at <= timezone.now()
    assert await database_sync_to_async(runs_needing_a_worker)() == [run.pk]
    fake.configure(daily_limit=None)
    run = await run_execute(run_id=run.pk, worker="w2", provider=provider)
    assert run.status == "completed"

    fake.configure(daily_limit=0)
    await database_sync_to_async(lambda: team.project.scenes.update(image="", status="pending"))()
    again = await database_sync_to_async(start)(team)
    again = await run_execute(run_id=again.pk, worker="w1", provider=provider)
    assert again.status == "waiting_daily_quota"
    stopped = await database_sync_to_async(services.run_stop)(run=again)
    assert stopped.status == "stopped" and "daily quota" in stopped.reason
    assert not await database_sync_to_async(BatchRun.objects.filter(status__in=BatchRun.ACTIVE).exists)()


async def test_spent_billing_credit_ends_the_run_since_no_reset_brings_it_back(team, four_scenes, fake, http):
    fake.configure(daily_limit=1)  # without a daily window the OpenAI flavor answers insufficient_quota
    run = await database_sync_to_async(start)(team)
    run = await run_execute(run_id=run.pk, worker="w1", provider=openai(fake, http))
    assert run.status == "failed" and "billing" in run.reason


async def test_a_worker_resumes_a_parked_run_by_itself_once_the_shortened_reset_passes(
    team, four_scenes, fake, settings, monkeypatch
):
    from generation.runs import providers as factory
    from generation.runs import worker

    factory.provider_cache_clear()
    settings.GENERATION_PROVIDERS = {**settings.GENERATION_PROVIDERS, "fake": {"base_url": fake.url}}
    settings.GENERATION_DAILY_RESET_SECONDS = 1.0
    team.project.provider = "fake"
    await database_sync_to_async(team.project.save)()
    fake.configure(daily_limit=2, daily_window_seconds=4)
    monkeypatch.setattr(worker, "SCAN_SECONDS", 0.1)
    run = await database_sync_to_async(start)(team)
    supervisor = worker.Supervisor()
    scan = asyncio.ensure_future(supervisor.scan_forever())
    seen: list[str] = []
    try:
        for _ in range(400):
            status = await database_sync_to_async(lambda: BatchRun.objects.get(pk=run.pk).status)()
            if not seen or seen[-1] != status:
                seen.append(status)
            if status == "completed":
                break
            await asyncio.sleep(0.05)
    finally:
        scan.cancel()
        await asyncio.gather(scan, *supervisor.tasks.values(), return_exceptions=True)
        factory.provider_cache_clear()
    assert "waiting_daily_quota" in seen and seen[-1] == "completed"
    stored = await database_sync_to_async(BatchRun.objects.get)(pk=run.pk)
    assert stored.succeeded == 4 and stored.finished is not None


async def test_a_parked_run_announces_the_daily_quota_not_a_finish(team, four_scenes, fake, http, settings):
    settings.GENERATION_DAILY_RESET_SECONDS = 3600
    fake.configure(daily_limit=1, daily_window_seconds=3600)
    run = await database_sync_to_async(start)(team)
    events: list[dict] = []
    run = await run_execute(run_id=run.pk, worker="w1", provider=openai(fake, http), listener=events.append)
    last = events[-1]
    assert last["type"] == "run.daily_quota" and last["status"] == "waiting_daily_quota"
    assert last["active"] and last["quota_resume_at"] == run.quota_resume_at.isoformat()
    assert "run.finished" not in {event["type"] for event in events}
