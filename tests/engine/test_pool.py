"""The pool: bounded, work-conserving, and one started/finished hook pair per request."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from generation.providers.simulated import SimulatedProvider
from tests.engine.helpers import RecordingHooks, ScriptedProvider, make_jobs, make_scheduler, now

pytestmark = pytest.mark.looptime


async def test_concurrency_never_exceeds_the_maximum():
    provider = SimulatedProvider(latency=8.0, latency_sigma=0.5)
    result = await make_scheduler(provider, start_concurrency=2, max_concurrency=4).run(make_jobs(60))

    assert provider.max_in_flight == 4
    assert len(result.succeeded) == 60


async def test_a_freed_slot_starts_the_next_scene_at_once():
    # Scene 1 takes 30 s; the other slot works through the 1 s scenes meanwhile, no batch waits for it.
    provider = ScriptedProvider({"Scene 1: a lighthouse at dusk": [30.0]}, latency=1.0)
    hooks = RecordingHooks()
    result = await make_scheduler(provider, hooks, start_concurrency=2, max_concurrency=2).run(make_jobs(12))

    assert [hooks.starts(key)[0] for key in range(2, 13)] == [float(t) for t in range(11)]
    assert result.elapsed == pytest.approx(30.0)


async def test_every_request_gets_one_started_and_one_finished_hook_numbered_per_job():
    provider = SimulatedProvider(latency=4.0, latency_sigma=0.5, max_concurrent=2, transient_rate=0.3, seed=3)
    hooks = RecordingHooks()
    result = await make_scheduler(provider, hooks, start_concurrency=4).run(make_jobs(20))

    started = [(key, n) for key, n, _ in hooks.of("started")]
    finished = [(key, n) for key, n, *_ in hooks.of("finished")]
    assert sorted(started) == sorted(finished)
    assert len(started) == len(set(started)) == provider.requests == result.requests
    for key, count in Counter(key for key, _ in started).items():
        assert sorted(n for k, n in started if k == key) == list(range(1, count + 1))
    assert result.quota_errors > 0 and result.retries > 0


async def test_a_job_sent_before_goes_ahead_of_jobs_never_sent():
    provider = SimulatedProvider(latency=5.0, max_concurrent=1, concurrency_retry_after=1.0)
    hooks = RecordingHooks()
    await make_scheduler(provider, hooks, start_concurrency=2, max_concurrency=2).run(make_jobs(3))

    # Scene 2 was refused at t=0; when scene 1 frees the provider, scene 2 goes before scene 3.
    assert hooks.starts(2)[-1] < hooks.starts(3)[0]


async def test_progress_reports_counts_concurrency_and_an_eta():
    snapshots = []

    class ProgressHooks(RecordingHooks):
        async def progress(self, snapshot):
            snapshots.append((now(), snapshot))

    provider = SimulatedProvider(latency=10.0)
    await make_scheduler(provider, ProgressHooks(), start_concurrency=2, max_concurrency=2).run(make_jobs(4))

    at, first = snapshots[0]
    assert (at, first.succeeded, first.remaining, first.total) == (10.0, 1, 3, 4)
    assert first.concurrency == 2
    assert first.eta_seconds == pytest.approx(15.0)  # 3 left x 10 s / 2 slots
    assert snapshots[-1][1].remaining == 0


async def test_outcomes_close_together_share_a_progress_report_and_none_waits_past_the_interval():
    reports, successes = [], []

    class ProgressHooks(RecordingHooks):
        async def job_succeeded(self, job, result, attempts):
            successes.append(now())

        async def progress(self, snapshot):
            reports.append((now(), snapshot.succeeded))

    provider = SimulatedProvider(latency=1.0, latency_sigma=0.5, seed=3)
    scheduler = make_scheduler(
        provider, ProgressHooks(), start_concurrency=40, max_concurrency=40, progress_interval=0.5
    )
    await scheduler.run(make_jobs(120))

    times = [at for at, _ in reports]
    assert len(reports) < len(successes) / 3  # 120 outcomes, a report per half second at most
    assert all(later - earlier >= 0.5 - 1e-9 for earlier, later in itertools.pairwise(times[:-1]))
    for number, at in enumerate(successes, start=1):
        # The first report on or after each success counts it, and comes within the interval.
        shown_at, shown = next((t, count) for t, count in reports if t >= at)
        assert shown >= number and shown_at - at <= 0.5 + 1e-9
    assert reports[-1][1] == 120


async def test_a_zero_progress_interval_reports_every_outcome():
    reports = []

    class ProgressHooks(RecordingHooks):
        async def progress(self, snapshot):
            reports.append(snapshot.succeeded)

    provider = SimulatedProvider(latency=1.0, latency_sigma=0.5, seed=3)
    scheduler = make_scheduler(
        provider, ProgressHooks(), start_concurrency=40, max_concurrency=40, progress_interval=0
    )
    await scheduler.run(make_jobs(30))
    assert reports[:-1] == list(range(1, 31))  # then the run's closing report
