"""The live state is the database's state: at any event, the snapshot a reload gets shows the same counts."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from generation.runs.execution import run_execute
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
