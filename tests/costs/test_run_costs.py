from __future__ import annotations

from decimal import Decimal

import pytest
from channels.db import database_sync_to_async

from generation.models import BatchRun, GenerationAttempt, Price
from generation.runs import services
from generation.runs.execution import run_execute
from generation.runs.selectors import run_payload
from tests.costs.conftest import FAST, openai, simulated

pytestmark = pytest.mark.django_db(transaction=True)

# The fake server's gpt-image usage: 1056 output tokens at $40/1M, the prompt's words at $5/1M.
USAGE_COST = Decimal("0.04224") + 4 * Decimal("0.000005")


def start(team, **overrides):
    run, created = services.run_start(
        project=team.project,
        user=team.editor,
        overrides={**FAST, "start_concurrency": 1, "max_concurrency": 1, **overrides},
    )
    assert created
    return run


def stored_run(pk: int) -> BatchRun:
    return BatchRun.objects.select_related("requested_by").get(pk=pk)


async def test_every_attempt_records_what_the_provider_bills_and_the_run_adds_it_up(
    team, four_scenes, fake, http
):
    fake.configure(fail_next=["503"])
    run = await database_sync_to_async(start)(team)
    run = await run_execute(run_id=run.pk, worker="w1", provider=openai(fake, http))
    assert run.status == "completed" and run.succeeded == 4
    attempts = await database_sync_to_async(list)(GenerationAttempt.objects.filter(run=run).order_by("pk"))
    assert [a.status for a in attempts] == ["failed", "succeeded", "succeeded", "succeeded", "succeeded"]
    # The 503 is not billed; each image costs what its usage says, not the table's $0.063.
    assert attempts[0].cost is None and not attempts[0].unpriced
    assert {a.cost for a in attempts[1:]} == {USAGE_COST}
    stored = await database_sync_to_async(stored_run)(run.pk)
    assert stored.cost == 4 * USAGE_COST and stored.unpriced == 0
    assert run_payload(stored)["cost_text"] == f"${4 * USAGE_COST:.4f}"


async def test_a_provider_without_a_price_counts_unpriced_attempts_not_zero_dollars(team, four_scenes):
    await database_sync_to_async(Price.objects.filter(provider="simulated").delete)()
    run = await database_sync_to_async(start)(team)
    run = await run_execute(run_id=run.pk, worker="w1", provider=simulated())
    stored = await database_sync_to_async(stored_run)(run.pk)
    assert stored.succeeded == 4
    assert stored.unpriced == 4 and stored.cost == 0
    assert run_payload(stored)["cost_text"] == "$0.0000 + 4 unpriced"
