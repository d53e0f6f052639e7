"""A refused key, end to end: the real OpenAI client against the fake server. After the first 401 no
further request goes out, every request sent has its attempt row, and the run ends saying why."""

from __future__ import annotations

from pathlib import Path

import pytest
from channels.db import database_sync_to_async

from generation.fakeprovider import FakeConfig, FakeProviderServer
from generation.models import GenerationAttempt
from generation.providers import get_provider
from generation.runs.execution import run_execute
from projects import services as project_services
from tests.faults.checks import assert_counts_match_rows, assert_nothing_lost

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

WAVE = 3  # requests the run may have in flight before the first answer
ANSWER_SECONDS = 0.5  # the fake's latency: the first 401 reaches the client this long after it was sent


async def test_after_the_first_401_no_further_request_is_sent(team, start, settings):
    for i in range(1, 13):
        await database_sync_to_async(project_services.scene_create)(project=team.project, prompt=f"Shot {i}")
    config = FakeConfig(api_key="the-right-key", seed=3)
    config.latency.seconds = ANSWER_SECONDS
    async with FakeProviderServer(config) as server:
        provider = get_provider("openai", api_key="a-revoked-key", base_url=server.base_url("openai"))
        run = await database_sync_to_async(start)(
            project=team.project,
            overrides={"start_concurrency": WAVE, "max_concurrency": WAVE, "small_batch": 0},
        )
        run = await run_execute(run_id=run.pk, worker="w1", provider=provider)
        sent = server.requests
    assert 1 <= len(sent) <= WAVE and {r.outcome for r in sent} == {"auth"}
    first_refusal = min(r.received for r in sent)
    # Only the first wave, all sent before any answer came back: none after the refusal was known.
    assert all(r.received - first_refusal < ANSWER_SECONDS for r in sent)
    assert run.status == "failed" and "credential" in run.reason
    sent_rows = GenerationAttempt.objects.filter(run=run).exclude(error_kind="not_sent")
    rows = await database_sync_to_async(sent_rows.count)()
    assert rows == len(sent)
    await database_sync_to_async(assert_counts_match_rows)(run)
    await database_sync_to_async(assert_nothing_lost)(team.project, Path(settings.MEDIA_ROOT), resumable=True)
