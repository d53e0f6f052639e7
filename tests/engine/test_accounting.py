"""Every second of waiting is counted while it happens, and the ETA follows the pacing plan."""

from __future__ import annotations

import asyncio

import pytest

from generation.providers.base import QuotaError
from tests.engine.helpers import ScriptedProvider, make_jobs, make_scheduler

pytestmark = pytest.mark.looptime


async def snapshots_at(scheduler, times):
    taken = []
    for at in times:
        await asyncio.sleep(at - asyncio.get_running_loop().time())
        taken.append(scheduler.snapshot())
    return taken


async def run_watched(scheduler, jobs, times):
    watcher = asyncio.create_task(snapshots_at(scheduler, times))
    result = await scheduler.run(jobs)
    return result, await watcher


async def test_pacing_is_counted_live_and_apart_from_quota_waits():
    # Two requests a minute: the third and fourth wait for the window, about 60 s of pacing.
    scheduler = make_scheduler(ScriptedProvider(latency=1.0), requests_per_minute=2)
    result, (at_30, at_45) = await run_watched(scheduler, make_jobs(4), [30.0, 45.0])

    assert at_30.pacing_seconds == pytest.approx(30.0)
    assert at_45.pacing_seconds == pytest.approx(45.0)
    assert at_30.quota_wait_seconds == 0.0
    assert result.pacing_seconds == pytest.approx(60.0)
    assert result.quota_wait_seconds == 0.0


async def test_a_quota_pause_is_counted_while_it_lasts_and_the_eta_keeps_counting_down():
    # A Retry-After no rolling window explains (one would free its slot at 60 s): a plain pause.
    provider = ScriptedProvider({"Scene 2: a lighthouse at dusk": [QuotaError("429", retry_after=30.0)]})
    scheduler = make_scheduler(provider, start_concurrency=1, max_concurrency=1, small_batch=0)
    result, (at_10, at_20) = await run_watched(scheduler, make_jobs(3), [10.0, 20.0])

    # Scene 2 is refused at 1.5 and dispatch pauses until 31.5.
    assert at_10.quota_wait_seconds == pytest.approx(8.5)
    assert at_20.quota_wait_seconds == pytest.approx(18.5)
    assert at_10.pacing_seconds == pytest.approx(0.0)
    assert at_10.paused_until == pytest.approx(31.5)
    assert at_10.eta_seconds > at_20.eta_seconds >= 11.5
    assert result.quota_wait_seconds == pytest.approx(30.0)
    assert result.pacing_seconds == pytest.approx(0.0)
