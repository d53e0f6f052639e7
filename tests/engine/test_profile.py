"""A credential's learned profile is reported at the end of a run and carried to the next one."""

from __future__ import annotations

import pytest

from generation.engine.planner import plan
from generation.engine.profile import CredentialProfile, MemoryProfileStore
from generation.providers.simulated import SimulatedProvider
from tests.engine.helpers import RecordingHooks, make_jobs, make_scheduler, now

pytestmark = pytest.mark.looptime

ROLLING_20 = {"latency": 10.0, "requests_per_minute": 20, "rejected_count": True}


async def test_a_run_reports_the_rate_latency_and_concurrency_it_learned():
    result = await make_scheduler(SimulatedProvider(**ROLLING_20)).run(make_jobs(60))

    profile = result.profile
    assert profile.rate == 20
    assert profile.latency_mean == pytest.approx(10.0)
    assert profile.latency_samples == 60
    assert profile.concurrency >= 1


async def test_the_learned_profile_carried_to_the_next_run_avoids_relearning():
    store = MemoryProfileStore()
    provider = SimulatedProvider(**ROLLING_20)
    first = await make_scheduler(provider).run(make_jobs(40))
    await store.save(provider.credential, first.profile)
    assert first.quota_errors > 0  # the first run found the quota by hitting it

    later = SimulatedProvider(**ROLLING_20)
    hooks = RecordingHooks()
    profile = await store.load(later.credential)
    started = now()
    second = await make_scheduler(later, hooks, profile=profile).run(make_jobs(40))

    assert second.quota_errors == 0
    first_sends = sorted(hooks.starts(key)[0] - started for key in range(1, 41))
    assert first_sends[:20] == [0.0] * 20  # what the known quota allows at once, at once
    assert second.elapsed <= first.elapsed


def test_the_planner_runs_the_scheduler_against_the_profile():
    profile = CredentialProfile(rate=20, latency_mean=10.0, latency_p90=10.0)
    estimate = plan(scenes=45, profile=profile)

    # 20 a minute: 20 at 0, 20 at 60, 5 at 120, each 10 s.
    assert estimate.succeeded == 45
    assert estimate.duration_s == pytest.approx(130.0, abs=1.0)
    assert estimate.requests == 45 and estimate.quota_errors == 0
    assert estimate.pacing_seconds > 100


def test_the_planner_takes_provider_settings_over_the_profile():
    estimate = plan(scenes=10, provider={"latency": 4.0})

    assert estimate.duration_s == pytest.approx(4.0)
