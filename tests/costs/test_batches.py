from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from generation.batches.openai import OpenAIBatches
from generation.models import BatchRun, ProviderBatch
from generation.providers.base import ImageRequest
from generation.runs import providers as factory
from generation.runs import services
from generation.runs.execution import run_execute
from projects.models import Scene
from tests.costs.conftest import FAST, openai
from tests.generation.conftest import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

# Half of the fake server's usage-based price (1056 output tokens at $40/1M, 4 prompt words at $5/1M).
HALF_USAGE_COST = (Decimal("0.04224") + 4 * Decimal("0.000005")) / 2


async def finished(batches: OpenAIBatches, batch_id: str):
    for _ in range(100):
        state = await batches.poll(batch_id)
        if state.done:
            return state
        await asyncio.sleep(0.02)
    raise AssertionError("the batch never ended")


def items(count: int) -> list[tuple[str, ImageRequest]]:
    return [(f"item-{i}", ImageRequest(prompt=f"A lighthouse {i}")) for i in range(count)]


async def test_the_fake_batch_api_completes_with_partial_failures(fake, http):
    fake.configure(batch_delay_seconds=0.05, batch_fail_ids=["item-2"])
    batches = OpenAIBatches(openai(fake, http))
    batch_id = await batches.submit(items(4))
    assert (await batches.poll(batch_id)).status == "in_progress"
    state = await finished(batches, batch_id)
    assert state.status == "completed"
    ok = {o.custom_id for o in state.outcomes if o.result is not None}
    assert ok == {"item-0", "item-1", "item-3"}
    [failed] = [o for o in state.outcomes if o.error is not None]
    assert failed.custom_id == "item-2" and failed.error.kind == "safety"
    [sent] = fake.recorder.find("/v1/files", method="POST")
    assert sent.form["purpose"] == "batch" and b'"url": "/v1/images/generations"' in sent.files[0].data


async def test_an_expired_batch_returns_the_work_it_completed_and_fails_the_rest(fake, http):
    fake.configure(batch_delay_seconds=0.01, batch_expire=True)
    batches = OpenAIBatches(openai(fake, http))
    state = await finished(batches, await batches.submit(items(4)))
    assert state.status == "expired"
    assert sum(o.result is not None for o in state.outcomes) == 2
    assert all("expired" in o.error.message for o in state.outcomes if o.error is not None)


async def test_a_cancelled_batch_ends_with_what_it_had_done(fake, http):
    fake.configure(batch_delay_seconds=60)
    batches = OpenAIBatches(openai(fake, http))
    batch_id = await batches.submit(items(4))
    await batches.cancel(batch_id)
    state = await finished(batches, batch_id)
    assert state.status == "cancelled" and sum(o.result is not None for o in state.outcomes) == 2


@pytest.fixture
def batch_mode(team, settings, fake):
    factory.provider_cache_clear()
    settings.GENERATION_BATCH_POLL_SECONDS = 0.05
    settings.GENERATION_PROVIDERS = {**settings.GENERATION_PROVIDERS, "fake": {"base_url": fake.url}}
    team.project.provider = "fake"
    team.project.save()
    yield
    factory.provider_cache_clear()


def start_batch(team) -> BatchRun:
    run, created = services.run_start(project=team.project, user=team.editor, overrides=FAST, mode="batch")
    assert created
    return run


async def test_a_batch_run_completes_at_half_the_synchronous_price(team, four_scenes, batch_mode, fake, http):
    fake.configure(batch_delay_seconds=0.2)
    run = await database_sync_to_async(start_batch)(team)
    run = await run_execute(run_id=run.pk, worker="w1", provider=openai(fake, http))
    assert run.status == "completed" and run.succeeded == 4
    assert run.cost == 4 * HALF_USAGE_COST
    assert len(fake.recorder.find("/v1/batches", method="POST")) == 1
    assert not fake.recorder.find("/v1/images/generations")  # nothing went synchronously
    batch = await database_sync_to_async(ProviderBatch.objects.get)(run=run)
    assert batch.provider_id.startswith("batch_") and batch.state == "done"


async def test_a_worker_that_takes_a_polling_run_over_polls_the_same_batch(
    team, four_scenes, batch_mode, fake, http
):
    fake.configure(batch_delay_seconds=1.0)
    run = await database_sync_to_async(start_batch)(team)
    first = asyncio.ensure_future(run_execute(run_id=run.pk, worker="w1", provider=openai(fake, http)))
    await wait_until(ProviderBatch.objects.filter(run=run).exclude(provider_id="").exists, timeout=4.0)
    first.cancel()  # the worker dies mid-poll
    with pytest.raises(asyncio.CancelledError):
        await first
    stale = timezone.now() - timedelta(seconds=60)
    await database_sync_to_async(BatchRun.objects.filter(pk=run.pk).update)(heartbeat=stale)
    run = await run_execute(run_id=run.pk, worker="w2", provider=openai(fake, http))
    assert run.status == "completed" and run.succeeded == 4
    assert len(fake.recorder.find("/v1/batches", method="POST")) == 1  # submitted once, billed once


async def test_failed_items_are_left_failed_with_their_reasons(team, four_scenes, batch_mode, fake, http):
    fake.configure(batch_delay_seconds=0.05, batch_fail_ids=[f"item-{four_scenes[1].pk}"])
    run = await database_sync_to_async(start_batch)(team)
    run = await run_execute(run_id=run.pk, worker="w1", provider=openai(fake, http))
    assert run.succeeded == 3 and run.failed == 1
    failed = await database_sync_to_async(Scene.objects.get)(pk=four_scenes[1].pk)
    assert failed.status == "failed" and "safety" in failed.last_error


async def test_a_broken_image_in_a_batch_fails_its_scene_with_the_reason_and_the_rest_are_kept(
    team, four_scenes, batch_mode, fake, http
):
    broken = four_scenes[2]
    fake.configure(batch_delay_seconds=0.05, batch_broken_ids=[f"item-{broken.pk}"])
    run = await database_sync_to_async(start_batch)(team)
    run = await run_execute(run_id=run.pk, worker="w1", provider=openai(fake, http))
    assert run.status == "completed" and run.succeeded == 3 and run.failed == 1
    scene = await database_sync_to_async(Scene.objects.get)(pk=broken.pk)
    assert scene.status == "failed" and not scene.image
    assert "not an image we can store" in scene.last_error
    kept = await database_sync_to_async(list)(Scene.objects.filter(status="ready").exclude(image=""))
    assert len(kept) == 3


async def test_a_stop_cancels_the_provider_batch_and_keeps_what_it_completed(
    team, four_scenes, batch_mode, fake, http
):
    fake.configure(batch_delay_seconds=60)
    run = await database_sync_to_async(start_batch)(team)
    task = asyncio.ensure_future(run_execute(run_id=run.pk, worker="w1", provider=openai(fake, http)))
    await wait_until(lambda: fake.recorder.find("/v1/batches", method="GET"), timeout=4.0)
    await database_sync_to_async(services.run_stop)(run=run)
    run = await asyncio.wait_for(task, 10)
    assert run.status == "stopped" and run.succeeded == 2
    assert len(fake.recorder.find("/cancel")) == 1


def test_a_provider_without_a_batch_api_refuses_batch_mode(team, four_scenes, settings):
    factory.provider_cache_clear()
    team.project.provider = "sketch"
    team.project.save()
    with pytest.raises(services.RunRefused, match="no batch API"):
        start_batch(team)


async def test_the_fake_gemini_batch_mode_completes_with_partial_failures_and_cancels(fake, http):
    from generation.batches.gemini import GeminiBatches
    from tests.costs.conftest import gemini

    fake.configure(batch_delay_seconds=0.05, batch_fail_ids=["item-1"])
    batches = GeminiBatches(gemini(fake, http))
    batch_id = await batches.submit(items(3))
    assert batch_id.startswith("batches/")
    sent = fake.recorder.last(":batchGenerateContent")
    assert sent.path == "/v1beta/models/gemini-2.5-flash-image:batchGenerateContent"
    state = await finished(batches, batch_id)
    assert state.status == "completed"
    assert {o.custom_id for o in state.outcomes if o.result is not None} == {"item-0", "item-2"}
    assert state.outcomes[0].result.meta["usage"]["candidatesTokenCount"] == 1290

    fake.configure(batch_delay_seconds=60, batch_fail_ids=[])
    other = await batches.submit(items(4))
    await batches.cancel(other)
    state = await finished(batches, other)
    assert state.status == "cancelled" and sum(o.result is not None for o in state.outcomes) == 2


async def test_a_gemini_batch_run_costs_half_the_image_model_price(
    team, four_scenes, batch_mode, fake, http, settings
):
    from tests.costs.conftest import gemini

    settings.GENERATION_PROVIDERS = {
        **settings.GENERATION_PROVIDERS,
        "fake": {"base_url": fake.url, "flavor": "gemini"},
    }
    fake.configure(batch_delay_seconds=0.1)
    run = await database_sync_to_async(start_batch)(team)
    run = await run_execute(run_id=run.pk, worker="w1", provider=gemini(fake, http))
    assert run.status == "completed" and run.succeeded == 4
    # gemini-2.5-flash-image: 1290 output tokens at $30/1M plus the prompt's 4 tokens at $0.30/1M, halved.
    assert run.cost == 4 * (Decimal("0.0387") + 4 * Decimal("0.0000003")) / 2


async def test_a_broken_image_in_a_gemini_batch_fails_its_scene_alone(
    team, four_scenes, batch_mode, fake, http, settings
):
    from tests.costs.conftest import gemini

    settings.GENERATION_PROVIDERS = {
        **settings.GENERATION_PROVIDERS,
        "fake": {"base_url": fake.url, "flavor": "gemini"},
    }
    broken = four_scenes[0]
    fake.configure(batch_delay_seconds=0.1, batch_broken_ids=[f"item-{broken.pk}"])
    run = await database_sync_to_async(start_batch)(team)
    run = await run_execute(run_id=run.pk, worker="w1", provider=gemini(fake, http))
    assert run.succeeded == 3 and run.failed == 1
    scene = await database_sync_to_async(Scene.objects.get)(pk=broken.pk)
    assert scene.status == "failed" and "not an image we can store" in scene.last_error
