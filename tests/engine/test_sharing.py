"""Runs sharing one credential share its quota equally, and a finished run gives its share back."""

from __future__ import annotations

import asyncio

import pytest

from generation.engine.clock import LoopClock
from generation.engine.config import EngineConfig
from generation.engine.limiter import SlidingWindowLimiter
from generation.engine.scheduler import Scheduler
from generation.providers.simulated import SimulatedProvider
from tests.engine.helpers import RecordingHooks, make_jobs

pytestmark = pytest.mark.looptime


def shared_runs(provider, limiter, sizes):
    config = EngineConfig(requests_per_minute=30)
    hooks = [RecordingHooks() for _ in sizes]
    offset, batches = 0, []
    for size in sizes:
        batches.append([job for job in make_jobs(offset + size)][offset:])
        offset += size
    schedulers = [Scheduler(provider, config=config, limiter=limiter, hooks=h) for h in hooks]
    return schedulers, batches, hooks


async def test_two_runs_on_one_key_get_equal_shares():
    provider = SimulatedProvider(latency=8.0, latency_sigma=0.5, requests_per_minute=30, rejected_count=True)
    limiter = SlidingWindowLimiter(LoopClock(), 30)
    schedulers, batches, _ = shared_runs(provider, limiter, [60, 60])

    async def watch():
        await asyncio.sleep(30.0)
        return limiter.runs()

    watcher = asyncio.create_task(watch())
    first, second = await asyncio.gather(*(s.run(b) for s, b in zip(schedulers, batches, strict=True)))

    assert await watcher == 2
    assert len(first.succeeded) == len(second.succeeded) == 60
    assert abs(first.elapsed - second.elapsed) <= 0.1 * max(first.elapsed, second.elapsed)
    assert first.quota_errors + second.quota_errors == 0
    assert limiter.runs() == 1  # both left: an idle key counts one run


async def test_a_finished_run_gives_its_share_back_at_once():
    provider = SimulatedProvider(latency=2.0, requests_per_minute=30, rejected_count=True)
    limiter = SlidingWindowLimiter(LoopClock(), 30)
    schedulers, batches, (_, long_hooks) = shared_runs(provider, limiter, [10, 80])

    async def shares():
        await asyncio.sleep(1.0)
        during = (limiter.runs(), schedulers[1].concurrency.limit)
        await asyncio.sleep(80.0)
        return during, (limiter.runs(), schedulers[1].concurrency.limit)

    watcher = asyncio.create_task(shares())
    short, long = await asyncio.gather(*(s.run(b) for s, b in zip(schedulers, batches, strict=True)))

    (runs_during, level_during), (runs_after, level_after) = await watcher
    assert (runs_during, runs_after) == (2, 1)
    assert level_after > level_during  # sized to the whole quota once the short run left
    assert short.elapsed < 60.0
    # In the first minute the long run had the 20 slots the short run left; from then on all 30.
    sends = [at for *_, at in long_hooks.of("started")]
    assert sum(1 for at in sends if at < 60.0) == 20
    assert sum(1 for at in sends if 60.0 <= at < 120.0) == 30
