"""Run events reach a loopback receiver signed, with retries and backoff after a failing delivery."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.db import database_sync_to_async

from generation.providers.simulated import SimulatedProvider
from generation.runs import services
from generation.runs.execution import run_execute
from projects import services as project_services
from webhooks import signing
from webhooks.deliver import webhooks_deliver_forever
from webhooks.models import Delivery
from webhooks.services import endpoint_create

pytestmark = pytest.mark.django_db(transaction=True)
FAST = {"backoff_base": 0.01, "quota_wait_default": 0.05, "grace_timeout": 2.0, "jitter": 0.0}


@pytest.fixture
def fast_webhooks(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    settings.WEBHOOKS_BACKOFF_SECONDS = 0.05
    settings.WEBHOOKS_POLL_SECONDS = 0.02


def _setup(team, url: str, prompts: list[str], events=()):
    for prompt in prompts:
        project_services.scene_create(project=team.project, prompt=prompt)
    endpoint = endpoint_create(project=team.project, url=url, events=events, user=team.owner)
    run, _ = services.run_start(project=team.project, user=team.editor, overrides=FAST)
    return endpoint, run


def _settled() -> bool:
    return not Delivery.objects.filter(status="pending").exists()


async def _run_with_deliverer(run, provider, receiver, predicate):
    """Execute the run with the deliverer beside it, as in the worker, until every delivery is settled."""
    deliverer = asyncio.create_task(webhooks_deliver_forever())
    try:
        await run_execute(run_id=run.pk, worker="w1", provider=provider)
        await receiver.wait_for(predicate)
        # The deliverer records an answer just after the receiver saw it.
        for _ in range(500):
            if await database_sync_to_async(_settled)():
                break
            await asyncio.sleep(0.02)
    finally:
        deliverer.cancel()


async def test_a_loopback_receiver_gets_signed_run_finished_after_a_failing_first_delivery(
    team, receiver, fast_webhooks
):
    receiver.fail_first = True
    endpoint, run = await database_sync_to_async(_setup)(team, receiver.url, ["A river", "A goat"])
    provider = SimulatedProvider(latency=0.01)
    await _run_with_deliverer(run, provider, receiver, lambda: receiver.ok("run.finished"))

    finished = receiver.ok("run.finished")[0]
    header = finished.headers[signing.HEADER]
    assert signing.verify(endpoint.secret, header, finished.body)
    assert not signing.verify("another secret", header, finished.body)
    data = json.loads(finished.body)
    assert data["project"] == team.project.pk and data["data"]["run"]["status"] == "completed"
    assert data["data"]["run"]["succeeded"] == 2
    first_tries = [r for r in receiver.requests if r.headers["X-Answered"] == "500"]
    assert "run.finished" in {r.event for r in first_tries}
    delivery = await database_sync_to_async(Delivery.objects.prefetch_related("log").get)(
        endpoint=endpoint, event="run.finished"
    )
    log = list(delivery.log.all())
    assert delivery.status == "delivered" and delivery.attempts == 2
    assert [a.status_code for a in log] == [500, 200] and all(a.response_ms is not None for a in log)


async def test_every_event_of_a_run_is_delivered(team, receiver, fast_webhooks):
    endpoint, run = await database_sync_to_async(_setup)(team, receiver.url, ["A river", "A forbidden goat"])
    provider = SimulatedProvider(latency=0.01, safety_word="forbidden")
    await _run_with_deliverer(run, provider, receiver, lambda: receiver.ok("run.finished"))
    events = sorted(r.event for r in receiver.requests)
    assert events == ["run.finished", "run.started", "scene.failed", "scene.ready"]
    failed = json.loads(next(r.body for r in receiver.requests if r.event == "scene.failed"))
    assert failed["data"]["scene"]["status"] == "failed" and failed["data"]["scene"]["last_error"]


async def test_an_endpoint_gets_only_the_events_it_asked_for(team, receiver, fast_webhooks):
    endpoint, run = await database_sync_to_async(_setup)(
        team, receiver.url, ["A river"], events=["run.finished"]
    )
    await _run_with_deliverer(
        run, SimulatedProvider(latency=0.01), receiver, lambda: receiver.ok("run.finished")
    )
    assert [r.event for r in receiver.requests] == ["run.finished"]


async def test_a_quota_stop_sends_run_parked(team, receiver, fast_webhooks):
    endpoint, run = await database_sync_to_async(_setup)(
        team, receiver.url, ["A", "B", "C"], events=["run.parked", "run.finished"]
    )
    provider = SimulatedProvider(latency=0.01, daily_quota=1)
    await _run_with_deliverer(run, provider, receiver, lambda: receiver.ok("run.parked"))
    assert [r.event for r in receiver.requests] == ["run.parked"]


async def test_a_dead_receiver_never_holds_up_the_run(team, fast_webhooks, unused_tcp_port):
    endpoint, run = await database_sync_to_async(_setup)(
        team, f"http://127.0.0.1:{unused_tcp_port}/hook", ["A river"]
    )
    deliverer = asyncio.create_task(webhooks_deliver_forever())
    try:
        async with asyncio.timeout(10):
            finished = await run_execute(run_id=run.pk, worker="w1", provider=SimulatedProvider(latency=0.01))
    finally:
        deliverer.cancel()
    assert finished.status == "completed"
