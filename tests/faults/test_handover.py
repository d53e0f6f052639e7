"""Processes that die or are told to go, in one process on SQLite: SIGTERM hands the run back at once,
a run whose CLI died is resumed by the next `generate` or stopped by `stoprun`, and the counters stay
exact across a takeover. tests/faults/test_processes.py does the same with real processes and signals."""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from generation.models import BatchRun, GenerationAttempt, SceneVersion
from generation.providers.simulated import SimulatedProvider
from generation.runs import providers as factory
from generation.runs import services
from generation.runs.execution import RunExecution
from generation.runs.worker import Supervisor
from projects import services as project_services
from projects.models import Scene
from tests.faults.checks import assert_counts_match_rows, assert_nothing_lost
from tests.generation.conftest import Stalling, take_over, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

FAST = {"backoff_base": 0.01, "quota_wait_default": 0.05, "grace_timeout": 5.0, "jitter": 0.0}


@pytest.fixture
def project(team):
    for i in range(1, 9):
        project_services.scene_create(project=team.project, prompt=f"Scene prompt {i}")
    return team.project


@pytest.fixture
def simulated_default(settings):
    factory.provider_cache_clear()
    settings.GENERATION_PROVIDER = "simulated"
    settings.GENERATION_PROVIDERS = {**settings.GENERATION_PROVIDERS, "simulated": {"latency": 0.3}}
    yield
    factory.provider_cache_clear()


def new_run(project, user, **overrides) -> BatchRun:
    run, created = services.run_start(project=project, user=user, overrides={**FAST, **overrides})
    assert created
    return run


def orphan(run_id: int, owner: str = "cli-4242") -> None:
    """What a `generate` killed with -9 leaves: the run held by a dead owner, scenes generating."""
    stale = timezone.now() - timedelta(seconds=services.LEASE_SECONDS + 1)
    BatchRun.objects.filter(pk=run_id).update(status="running", owner=owner, heartbeat=stale)
    run = BatchRun.objects.get(pk=run_id)
    Scene.objects.filter(pk__in=run.scenes.values("pk")[:3]).update(status="generating", claimed_by=run_id)


async def test_sigterm_hands_the_run_back_and_another_worker_resumes_it_at_once(
    project, team, simulated_default, settings
):
    run = await database_sync_to_async(new_run)(project, team.editor, max_concurrency=2, start_concurrency=2)
    leaving = Supervisor()
    leaving.wake(run.pk)
    await wait_until(lambda: SceneVersion.objects.count() >= 2)
    await wait_until(lambda: GenerationAttempt.objects.filter(status="running").count() == 2)

    async with asyncio.timeout(8):
        await leaving.shut_down()  # what SIGTERM does
    row = await database_sync_to_async(BatchRun.objects.get)(pk=run.pk)
    assert (row.status, row.owner, row.stop_requested) == ("queued", "", False)
    # The two requests in flight finished and were stored; nothing was cut off or left generating.
    sent = GenerationAttempt.objects.exclude(error_kind="not_sent")
    assert not await database_sync_to_async(sent.exclude(status="succeeded").exists)()
    done = await database_sync_to_async(SceneVersion.objects.count)()
    assert done == await database_sync_to_async(sent.count)()
    await database_sync_to_async(assert_nothing_lost)(project, Path(settings.MEDIA_ROOT), resumable=True)

    taking = Supervisor()
    started = asyncio.get_running_loop().time()
    taking.wake(run.pk)  # the wake-up the hand-back sent; no lease to wait for
    await wait_until(lambda: BatchRun.objects.filter(pk=run.pk, owner=taking.worker_id).exists(), 2)
    assert asyncio.get_running_loop().time() - started < 2
    await wait_until(lambda: not BatchRun.objects.get(pk=run.pk).is_active(), 15)
    row = await database_sync_to_async(BatchRun.objects.get)(pk=run.pk)
    assert (row.status, row.succeeded, row.failed) == ("completed", 8, 0)
    await database_sync_to_async(assert_counts_match_rows)(row)
    await database_sync_to_async(assert_nothing_lost)(project, Path(settings.MEDIA_ROOT), resumable=False)


def test_generate_resumes_a_run_whose_cli_died(project, team, settings):
    settings.GENERATION_PROVIDERS = {**settings.GENERATION_PROVIDERS, "simulated": {"latency": 0.001}}
    factory.provider_cache_clear()
    run = new_run(project, team.owner)
    BatchRun.objects.filter(pk=run.pk).update(provider="simulated")
    orphan(run.pk)
    out, err = io.StringIO(), io.StringIO()
    call_command("generate", str(project.pk), stdout=out, stderr=err)
    assert f"Resuming run {run.pk}" in err.getvalue()
    assert "Successfully generated all 8 scenes!" in out.getvalue()
    run.refresh_from_db()
    assert (run.status, run.succeeded) == ("completed", 8)
    assert_nothing_lost(project, Path(settings.MEDIA_ROOT), resumable=False)


def test_generate_refuses_a_run_a_live_worker_holds_and_names_the_way_out(project, team):
    run = new_run(project, team.owner)
    services.run_claim(run_id=run.pk, worker="worker-alive")
    with pytest.raises(CommandError, match=f"--take-over.*stoprun {run.pk}"):
        call_command("generate", str(project.pk), stdout=io.StringIO(), stderr=io.StringIO())


def test_stoprun_stops_an_orphaned_run_and_releases_its_scenes(project, team, settings):
    run = new_run(project, team.owner)
    orphan(run.pk)
    GenerationAttempt.objects.create(run=run, number=1, scene=project.scenes.first(), started=timezone.now())
    out = io.StringIO()
    call_command("stoprun", str(run.pk), stdout=out)
    run.refresh_from_db()
    assert (run.status, run.owner, run.reason) == ("stopped", "", "Stopped with manage.py stoprun")
    assert f"Run {run.pk} stopped" in out.getvalue()
    assert set(project.scenes.values_list("status", "claimed_by")) == {("pending", None)}
    assert run.requests == 1
    assert_nothing_lost(project, Path(settings.MEDIA_ROOT), resumable=True)
    # The project is free again: the next run starts.
    assert services.run_start(project=project, user=team.owner)[1]


def test_stoprun_by_project_stops_a_queued_run(project, team):
    run = new_run(project, team.owner)
    call_command("stoprun", "--project", project.title, stdout=io.StringIO())
    run.refresh_from_db()
    assert run.status == "stopped"


async def test_counters_after_a_takeover_equal_the_requests_really_sent(project, team):
    run = await database_sync_to_async(new_run)(project, team.owner, max_concurrency=3, start_concurrency=3)
    claimed = await database_sync_to_async(services.run_claim)(run_id=run.pk, worker="a")
    first = Stalling(answers=4)
    dying = asyncio.create_task(RunExecution(claimed, provider=first, worker="a").execute())
    # Killed with three requests hanging and the four answered ones recorded (an answered attempt stays
    # "running" until its image is stored with it).
    succeeded = GenerationAttempt.objects.filter(status="succeeded")
    await wait_until(lambda: first.sent == 7 and succeeded.count() == 4)
    dying.cancel()  # kill -9: its last progress write is up to a second old

    taken = await database_sync_to_async(take_over)(run.pk, "b")
    second = SimulatedProvider(latency=0.01)
    row = await RunExecution(taken, provider=second, worker="b").execute()
    assert (row.status, row.succeeded) == ("completed", 8)
    assert row.requests == first.sent + second.requests
    await database_sync_to_async(assert_counts_match_rows)(row)
