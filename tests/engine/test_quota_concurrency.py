"""Concurrency from the quota (issue 13): Little's law with a known rate, fast starts, no cap at 16."""

from __future__ import annotations

import pytest

from generation.providers.simulated import SimulatedProvider
from tests.engine.helpers import RecordingHooks, ScriptedProvider, make_jobs, make_scheduler

pytestmark = pytest.mark.looptime


async def test_the_in_flight_target_rises_with_a_rate_learned_from_headers():
    # 50 a minute at 45 s needs about 38 in flight (r x L); the old working point was 16.
    provider = SimulatedProvider(
        latency=45.0, latency_sigma=0.15, requests_per_minute=50, send_rate_headers=True, rejected_count=True
    )
    scheduler = make_scheduler(provider)
    result = await scheduler.run(make_jobs(120))

    assert len(result.succeeded) == 120
    assert provider.max_in_flight >= 38
    assert scheduler.concurrency.rate_target is not None and scheduler.concurrency.rate_target >= 38


async def test_a_known_rate_sets_the_target_from_rate_and_latency():
    provider = ScriptedProvider(latency=30.0)
    scheduler = make_scheduler(provider, requests_per_minute=120)
    await scheduler.run(make_jobs(100))

    # 2 requests/s x 30 s = 60 in flight, plus the margin.
    assert scheduler.concurrency.limit >= 60


async def test_a_small_batch_starts_all_at_once():
    hooks = RecordingHooks()
    await make_scheduler(ScriptedProvider(latency=20.0), hooks).run(make_jobs(12))

    assert [hooks.starts(key)[0] for key in range(1, 13)] == [0.0] * 12


async def test_a_known_small_batch_starts_at_once_within_what_the_quota_allows():
    hooks = RecordingHooks()
    result = await make_scheduler(ScriptedProvider(latency=20.0), hooks, requests_per_minute=8).run(
        make_jobs(12)
    )

    first_sends = sorted(hooks.starts(key)[0] for key in range(1, 13))
    assert first_sends[:8] == [0.0] * 8
    assert all(at >= 60.0 for at in first_sends[8:])
    assert result.quota_errors == 0


async def test_an_unknown_limit_grows_past_16_on_admission_before_anything_completes():
    # 60 s requests: slow start must not wait for completions to grow.
    hooks = RecordingHooks()
    provider = SimulatedProvider(latency=60.0)
    await make_scheduler(provider, hooks).run(make_jobs(100))

    started_early = [at for *_, at in hooks.of("started") if at < 10.0]
    assert len(started_early) == 100
    assert provider.max_in_flight == 100
