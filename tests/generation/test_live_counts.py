"""The live state is the database's state: at any event, the snapshot a reload gets shows the same counts."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from generation.engine.clock import LoopClock
from generation.engine.config import EngineConfig
from generation.models import BatchRun
from generation.providers.base import QuotaError
from generation.runs.execution import run_execute
from generation.runs.recorder import RunRecorder
from generation.selectors import project_snapshot
from tests.generation.conftest import simulated

pytestmark = pytest.mark.django_db(transaction=True)

COUNTS = ("succeeded", "failed", "requests", "retries", "quota_errors")


@pytest.fixture
def read_in_listener(monkeypatch):
    # The listener runs in the event loop; reading the database there is what a reload does at that moment.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


async def test_every_event_is_matched_by_the_snapshot_a_reload_would_get(story, start, read_in_listener):
    project, *_ = story
    run = await database_sync_to_async(start)()
    seen: list[tuple[str, dict, dict]] = []
    outcomes = {"succeeded": 0, "failed": 0}

    def listener(event: dict) -> None:
        stored = project_snapshot(project_id=project.pk)["run"]
        kind = event["type"]
        if kind in {"scene.succeeded", "scene.failed"}:
            outcomes[kind.split(".")[1]] += 1
            seen.append((kind, dict(outcomes), {k: stored[k] for k in outcomes}))
        elif kind == "run.progress":
            seen.append((kind, {k: event[k] for k in COUNTS}, {k: stored[k] for k in COUNTS}))

    # A refusal (failed), quota errors (max_concurrent) and transient errors (retries) all move counts.
    provider = simulated(
        latency=0.02, max_concurrent=2, concurrency_retry_after=0.02, safety_word="river", transient_rate=0.3
    )
    await run_execute(run_id=run.pk, worker="w1", provider=provider, listener=listener)
    assert seen, "the run sent no events"
    # Items finish concurrently, so the row may be a few milliseconds ahead of an event; never behind.
    behind = [(kind, live, stored) for kind, live, stored in seen if any(stored[k] < live[k] for k in live)]
    assert behind == []
    *_, (kind, live, stored) = seen
    assert kind == "run.progress" and live == stored
    assert live["failed"] == 1 and live["retries"] + live["quota_errors"] > 0


@pytest.mark.parametrize(
    ("run_counts", "totals", "message"),
    [
        # A resume: 16 scenes had images before this run.
        (
            (24, 7, 1, 16),
            {"scenes": 24, "images": 23, "failed": 1},
            "Generated the 7 missing scenes; 23 of 24 now have images, 1 failed",
        ),
        (
            (24, 5, 0, 16),
            {"scenes": 24, "images": 21, "failed": 0},
            "Generated 5 of the 8 missing scenes; 21 of 24 now have images",
        ),
        (
            (3, 1, 0, 2),
            {"scenes": 3, "images": 3, "failed": 0},
            "Generated the 1 missing scene; all 3 now have images",
        ),
        # A first full run keeps the product owner's shapes.
        (
            (20, 18, 1, 1),
            {"scenes": 20, "images": 18, "failed": 1},
            "Generated 18 of 20 scenes (1 failed, 1 skipped)",
        ),
        ((20, 20, 0, 0), {"scenes": 20, "images": 20, "failed": 0}, "Successfully generated all 20 scenes!"),
    ],
)
def test_a_resume_is_summed_up_for_the_project_and_a_first_run_as_before(run_counts, totals, message):
    total, succeeded, failed, skipped = run_counts
    run = BatchRun(total=total, succeeded=succeeded, failed=failed, skipped=skipped)
    assert run.summary_message(totals=totals) == message


async def test_a_resumed_run_ends_with_the_projects_totals(story, start):
    project, scenes, _ = story
    first = await database_sync_to_async(start)(scene_ids=[scenes[0].pk])
    await run_execute(run_id=first.pk, worker="w1", provider=simulated())
    resumed = await database_sync_to_async(start)()
    resumed = await run_execute(run_id=resumed.pk, worker="w1", provider=simulated())
    assert resumed.summary == "Generated the 3 missing scenes; 5 of 6 now have images"
    snapshot = await database_sync_to_async(project_snapshot)(project_id=project.pk)
    assert snapshot["totals"] == {"scenes": 6, "images": 5, "failed": 0, "pending": 0, "empty": 1}


async def test_a_page_loaded_mid_wait_gets_the_wait_the_live_event_announced(story):
    project, *_ = story
    run = await database_sync_to_async(BatchRun.objects.create)(
        project=project, provider="sketch", status="running", owner="w", config={"quota_wait_max_total": 600}
    )
    events: list[dict] = []
    config = EngineConfig.from_mapping(run.config)
    recorder = RunRecorder(run, worker="w", config=config, clock=LoopClock(), listener=events.append)

    async def stored_wait():
        return (await database_sync_to_async(project_snapshot)(project_id=project.pk))["run"]["wait"]

    await recorder.pacing(3.0, 20.0)
    pacing = events[-1]
    assert await stored_wait() == {"kind": "pacing", "until": pacing["until"], "requests_per_minute": 20}
    await recorder.quota_wait(59.0, 0.0, 1, QuotaError("slow down", retry_after=59))
    quota = events[-1]
    assert "max_attempts" not in quota  # no "retry 1 of 40": quota waits are bounded by time, not a count
    assert (quota["quota_waits"], quota["budget_seconds"]) == (1, 600)
    assert await stored_wait() == {
        "kind": "quota",
        "until": quota["until"],
        "quota_waits": 1,
        "budget_seconds": 600,
    }


async def test_the_seconds_of_a_quota_wait_are_counted_while_it_lasts(story, start):
    project, *_ = story
    run = await database_sync_to_async(start)(overrides={"start_concurrency": 3})
    during: list[dict] = []

    def listener(event: dict) -> None:
        if event["type"] == "run.progress" and event["status"] == "waiting_quota":
            during.append(event)

    provider = simulated(latency=0.05, max_concurrent=1, concurrency_retry_after=0.3)
    run = await run_execute(run_id=run.pk, worker="w1", provider=provider, listener=listener)
    assert during and run.quota_waits >= 1 and run.quota_wait_seconds >= 0.3
    stored = await database_sync_to_async(project_snapshot)(project_id=project.pk)
    assert stored["run"]["quota_waits"] == run.quota_waits and stored["run"]["counts_at"]
