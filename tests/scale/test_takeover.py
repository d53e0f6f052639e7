"""Lease takeover and fencing, in one process on SQLite: two RunExecutions with different worker ids stand
for two worker processes (what the scale tests check with real processes, here in a second)."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async

from generation.models import BatchRun, GenerationAttempt, SceneVersion
from generation.providers.simulated import SimulatedProvider
from generation.runs import services
from generation.runs.execution import RunExecution
from projects.models import Scene
from tests.generation.conftest import FAST, Stalling, take_over, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def run(team, scenes) -> BatchRun:
    run, _ = services.run_start(project=team.project, user=team.editor, overrides=FAST)
    return run


def claim(run_id: int, worker: str) -> BatchRun | None:
    return services.run_claim(run_id=run_id, worker=worker)


async def test_a_run_taken_over_from_a_dead_worker_generates_only_what_is_left(run):
    dead = RunExecution(await database_sync_to_async(claim)(run.pk, "a"), provider=Stalling(2), worker="a")
    dying = asyncio.create_task(dead.execute())
    await wait_until(
        lambda: (
            SceneVersion.objects.count() == 2 and GenerationAttempt.objects.filter(status="running").exists()
        ),
        timeout=5.0,
    )
    dying.cancel()  # worker "a" dies with requests in flight

    taken = await database_sync_to_async(take_over)(run.pk, "b")
    provider = SimulatedProvider(latency=0.01)
    run = await RunExecution(taken, provider=provider, worker="b").execute()

    assert (run.status, run.succeeded, run.failed, run.skipped, run.owner) == ("completed", 5, 0, 0, "b")
    assert provider.requests == 3  # only the scenes "a" had not generated
    versions = await database_sync_to_async(list)(SceneVersion.objects.values_list("scene_id", flat=True))
    assert sorted(versions) == sorted(set(versions)) and len(versions) == 5
    statuses = await database_sync_to_async(list)(GenerationAttempt.objects.values_list("status", flat=True))
    assert "running" not in statuses and "interrupted" in statuses


async def test_a_worker_that_lost_its_run_stops_at_once_and_writes_nothing_more(run):
    slow = SimulatedProvider(latency=0.3)
    first = RunExecution(await database_sync_to_async(claim)(run.pk, "a"), provider=slow, worker="a")
    losing = asyncio.create_task(first.execute())
    await wait_until(lambda: GenerationAttempt.objects.filter(status="running").count() == 5, timeout=5.0)
    assert await database_sync_to_async(take_over)(run.pk, "b") is not None

    async with asyncio.timeout(2):
        await losing
    assert first.lost
    # Its answers came after the takeover: no image recorded, its attempts interrupted, scenes queued.
    assert not await database_sync_to_async(SceneVersion.objects.exists)()
    statuses = await database_sync_to_async(set)(GenerationAttempt.objects.values_list("status", flat=True))
    assert statuses == {"interrupted"}
    scenes = await database_sync_to_async(set)(Scene.objects.values_list("status", flat=True))
    assert scenes == {"pending"}
    row = await database_sync_to_async(BatchRun.objects.get)(pk=run.pk)
    assert (row.owner, row.status) == ("b", "running")
