"""stop(): nothing new is sent, waits end at once, in-flight work is kept or cancelled after grace."""

from __future__ import annotations

import asyncio

import pytest

from generation.engine.clock import LoopClock
from generation.engine.jobs import StopReason
from generation.engine.limiter import SlidingWindowLimiter
from generation.engine.scheduler import Scheduler
from generation.providers.simulated import SimulatedProvider
from tests.engine.helpers import RecordingHooks, make_jobs, make_scheduler, resumable, stop_at, unfinished

pytestmark = pytest.mark.looptime


async def run_and_stop_at(scheduler, jobs, at):
    stopper = asyncio.create_task(stop_at(scheduler, at))
    result = await scheduler.run(jobs)
    await stopper
    return result


async def test_stop_during_a_quota_wait_ends_the_run_at_once():
    provider = SimulatedProvider(latency=1.0, requests_per_minute=1, send_retry_after=False)
    scheduler = make_scheduler(provider, start_concurrency=1, max_concurrency=1)
    jobs = make_jobs(3)
    result = await run_and_stop_at(scheduler, jobs, at=5.0)

    assert result.elapsed == pytest.approx(5.0)
    assert result.stop_reason == StopReason.STOPPED
    assert result.succeeded == [1]
    assert unfinished(result, jobs) == [2]
    assert result.not_attempted == [3]


async def test_stop_keeps_the_results_of_requests_in_flight():
    provider = SimulatedProvider(latency=10.0)
    hooks = RecordingHooks()
    scheduler = make_scheduler(provider, hooks, start_concurrency=3, max_concurrency=3)
    result = await run_and_stop_at(scheduler, make_jobs(10), at=5.0)

    assert result.succeeded == [1, 2, 3]
    assert sorted(hooks.of("succeeded")) == [(1, 1), (2, 1), (3, 1)]
    assert result.not_attempted == [4, 5, 6, 7, 8, 9, 10]
    assert provider.requests == 3
    assert result.elapsed == pytest.approx(10.0)
    assert hooks.of("stopping")[0][0] == StopReason.STOPPED


async def test_the_grace_timeout_cancels_stragglers_and_reports_them_interrupted():
    provider = SimulatedProvider(latency=100.0)
    hooks = RecordingHooks()
    scheduler = make_scheduler(provider, hooks, start_concurrency=2, max_concurrency=2, grace_timeout=30.0)
    jobs = make_jobs(4)
    result = await run_and_stop_at(scheduler, jobs, at=5.0)

    assert result.elapsed == pytest.approx(35.0)
    assert unfinished(result, jobs) == [1, 2]
    assert result.not_attempted == [3, 4]
    finished = sorted((key, error) for key, _, error, *_ in hooks.of("finished"))
    assert finished == [(1, "Interrupted"), (2, "Interrupted")]


async def test_stop_during_a_backoff_ends_it_at_once():
    provider = SimulatedProvider(latency=1.0, transient_rate=1.0)
    scheduler = make_scheduler(provider, jitter=0.0)
    jobs = make_jobs(1)
    result = await run_and_stop_at(scheduler, jobs, at=2.0)  # failed at 1, backing off until 3

    assert result.elapsed == pytest.approx(2.0)
    assert unfinished(result, jobs) == [1]


async def test_a_second_run_over_the_jobs_left_finishes_them():
    provider = SimulatedProvider(latency=10.0)
    jobs = make_jobs(10)
    first = await run_and_stop_at(make_scheduler(provider, start_concurrency=2, max_concurrency=2), jobs, 5.0)
    assert first.succeeded == [1, 2]

    second = await make_scheduler(provider).run(resumable(first, jobs))

    assert second.succeeded == [3, 4, 5, 6, 7, 8, 9, 10]
    assert second.stop_reason == StopReason.COMPLETED
    assert provider.requests == 10  # nothing sent twice


async def test_stop_before_the_run_leaves_every_job_untouched():
    provider = SimulatedProvider(latency=1.0)
    scheduler = make_scheduler(provider)
    scheduler.stop()
    result = await scheduler.run(make_jobs(3))

    assert result.not_attempted == [1, 2, 3]
    assert provider.requests == 0


async def test_a_broken_limiter_stops_the_run_with_its_error():
    class BrokenLimiter(SlidingWindowLimiter):
        async def acquire(self):
            raise ConnectionError("redis is down")

    limiter = BrokenLimiter(LoopClock(), None)
    scheduler = Scheduler(SimulatedProvider(latency=1.0), limiter=limiter)
    result = await scheduler.run(make_jobs(2))

    assert result.stop_reason == StopReason.ERROR
    assert "redis is down" in result.stop_message
    assert result.not_attempted == [1, 2]
