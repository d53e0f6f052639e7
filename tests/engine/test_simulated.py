"""The simulated provider behaves like the APIs it stands in for."""

from __future__ import annotations

import asyncio
import io
import statistics

import pytest
from PIL import Image

from generation.providers import get_provider
from generation.providers.base import DailyQuotaError, ImageRequest, QuotaError, TransientError
from generation.providers.simulated import SimulatedProvider

pytestmark = pytest.mark.looptime

REQUEST = ImageRequest(prompt="a lighthouse at dusk")


async def test_it_is_registered_as_simulated():
    assert isinstance(get_provider("simulated", latency=1.0), SimulatedProvider)


async def test_it_returns_a_valid_png_after_its_latency(looptime):
    result = await SimulatedProvider(latency=3.0).generate(REQUEST)

    assert looptime == 3.0
    assert Image.open(io.BytesIO(result.image)).format == "PNG"


async def test_it_refuses_beyond_its_rolling_quota_until_a_slot_frees():
    provider = SimulatedProvider(latency=1.0, requests_per_minute=2, send_rate_headers=True)
    await provider.generate(REQUEST)
    await provider.generate(REQUEST)
    with pytest.raises(QuotaError) as refused:
        await provider.generate(REQUEST)

    assert refused.value.retry_after == pytest.approx(58.0)  # the first send, at 0, expires at 60
    assert refused.value.rate_limit.limit_requests == 2
    assert provider.count("rate_limited") == 1


async def test_it_refuses_beyond_its_concurrency_with_a_short_retry_after():
    provider = SimulatedProvider(latency=5.0, max_concurrent=2)
    outcomes = await asyncio.gather(*(provider.generate(REQUEST) for _ in range(3)), return_exceptions=True)

    refused = [o for o in outcomes if isinstance(o, QuotaError)]
    assert len(refused) == 1
    assert refused[0].retry_after == 1.0
    assert provider.max_in_flight == 2


async def test_it_ends_with_a_daily_quota_error_after_n_requests():
    provider = SimulatedProvider(latency=1.0, daily_quota=2)
    await provider.generate(REQUEST)
    await provider.generate(REQUEST)

    with pytest.raises(DailyQuotaError):
        await provider.generate(REQUEST)


async def test_its_faults_are_transient_errors():
    with pytest.raises(TransientError, match="500"):
        await SimulatedProvider(latency=1.0, transient_rate=1.0).generate(REQUEST)
    with pytest.raises(TransientError, match="504"):
        await SimulatedProvider(timeout_rate=1.0, timeout_after=30.0).generate(REQUEST)


def test_lognormal_latencies_have_the_requested_mean():
    provider = SimulatedProvider(latency=8.0, latency_sigma=0.5, seed=1)
    latencies = [provider.latency_for(ImageRequest(prompt=f"scene {i}")) for i in range(4000)]

    assert statistics.fmean(latencies) == pytest.approx(8.0, rel=0.03)
    assert max(latencies) > 2 * 8.0  # heavy tail


def test_the_same_seed_gives_the_same_latency_per_scene():
    first, second = (
        SimulatedProvider(latency=8.0, latency_sigma=0.5),
        SimulatedProvider(latency=8.0, latency_sigma=0.5),
    )

    assert first.latency_for(REQUEST) == second.latency_for(REQUEST)
