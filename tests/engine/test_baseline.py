"""The seed's lockstep algorithm, as the benchmark models it."""

from __future__ import annotations

import pytest

from bench.baseline import run_baseline
from generation.providers.simulated import SimulatedProvider
from tests.engine.helpers import make_jobs

pytestmark = pytest.mark.looptime


async def test_the_seed_takes_38s_for_20_scenes_of_8s():
    result = await run_baseline(SimulatedProvider(latency=8.0), make_jobs(20))

    assert result.elapsed == pytest.approx(4 * 8.0 + 3 * 2.0)
    assert len(result.succeeded) == 20


async def test_the_seed_resends_the_whole_batch_after_a_quota_error():
    provider = SimulatedProvider(latency=8.0, max_concurrent=3)
    result = await run_baseline(provider, make_jobs(5))

    assert result.requests == 5 * 4  # the batch and its 3 retries, every one with 2 refused
    assert len(result.succeeded) == 3
    assert result.elapsed == pytest.approx(4 * 8.0 + 3 * 15.0)
