"""How long would a batch take? The real scheduler, run on a simulated clock against a simulated provider.

    plan(scenes=120, profile=CredentialProfile(rate=50, latency_mean=45, latency_p90=60))
    -> Plan(duration_s=..., requests=..., ...)

The provider is built from a credential's learned profile (rate and window, concurrency cap, latency
mean and spread, daily cap) or given as SimulatedProvider settings; the scheduler starts from the same
profile, as a real run on that credential would. Virtual time: an hour-long batch plans in well under
a second. The benchmark (bench/engine_sim.py) runs its scenarios through `simulate`, the same code.

Call it from synchronous code (a management command; a view through asyncio.to_thread): it runs its own
event loop. It needs `looptime` (a main dependency, since the studio estimates before runs).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from generation.engine.clock import run_virtual
from generation.engine.config import EngineConfig
from generation.engine.jobs import Job, RunResult
from generation.engine.limiter import Limiter, make_limiter
from generation.engine.profile import CredentialProfile
from generation.engine.scheduler import Scheduler
from generation.providers.base import ImageRequest
from generation.providers.simulated import SimulatedProvider

DEFAULT_LATENCY = 8.0  # seconds, when neither the profile nor the settings know better
RNG_SEED = 7


@dataclass(frozen=True)
class Plan:
    duration_s: float
    requests: int  # requests the run is expected to send, quota-refused ones included
    quota_errors: int
    succeeded: int
    failed: int
    stop_reason: str
    quota_wait_seconds: float
    pacing_seconds: float
    profile: CredentialProfile  # what the simulated run ends up knowing


def make_jobs(count: int, *, offset: int = 0) -> list[Job]:
    return [
        Job(key=i, request=ImageRequest(prompt=f"Scene {i}: a lighthouse at dusk", label=f"Scene {i}"))
        for i in range(offset + 1, offset + count + 1)
    ]


def provider_settings(profile: CredentialProfile | None) -> dict[str, Any]:
    """SimulatedProvider settings that behave like the credential the profile describes."""
    if profile is None:
        return {"latency": DEFAULT_LATENCY}
    settings: dict[str, Any] = {"latency": profile.latency_mean or DEFAULT_LATENCY, "rejected_count": True}
    sigma = profile.latency_sigma()
    if sigma:
        settings["latency_sigma"] = sigma
    if profile.rate:
        settings.update(requests_per_minute=max(1, int(profile.rate)), window_seconds=profile.window)
    if profile.concurrency_cap:
        settings["max_concurrent"] = profile.concurrency_cap
    if profile.daily_cap:
        settings["daily_quota"] = profile.daily_cap
    return settings


async def simulate(
    *,
    scenes: int,
    provider: Mapping[str, Any],
    config: EngineConfig,
    profile: CredentialProfile | None = None,
    runs: int = 1,
    seed: int = RNG_SEED,
) -> tuple[list[RunResult], SimulatedProvider]:
    """Run `runs` schedulers at once (sharing one credential's limiter, `scenes` split between them)
    against one SimulatedProvider; call on a virtual-time loop (clock.run_virtual)."""
    sim = SimulatedProvider(**provider)
    limiter: Limiter = make_limiter(config, sim.clock)
    share, extra = divmod(scenes, runs)
    batches, offset = [], 0
    for index in range(runs):
        count = share + (1 if index < extra else 0)
        batches.append(make_jobs(count, offset=offset))
        offset += count
    schedulers = [
        Scheduler(sim, config=config, limiter=limiter, rng=random.Random(seed + i), profile=profile)
        for i in range(runs)
    ]
    results = await asyncio.gather(*(s.run(jobs) for s, jobs in zip(schedulers, batches, strict=True)))
    return list(results), sim


def plan(
    *,
    scenes: int,
    profile: CredentialProfile | None = None,
    provider: Mapping[str, Any] | None = None,
    config: EngineConfig | None = None,
) -> Plan:
    """Expected duration and requests of a batch of `scenes` on a credential like `profile`.

    `provider` overrides the simulated provider's settings built from the profile (SimSettings fields,
    e.g. {"requests_per_minute": 20, "latency": 30}); `config` is the run's engine config."""
    config = config or EngineConfig()
    settings = {**provider_settings(profile), **(provider or {})}
    [result], _ = run_virtual(simulate(scenes=scenes, provider=settings, config=config, profile=profile))
    counters = result.counters
    return Plan(
        duration_s=result.elapsed,
        requests=counters.requests,
        quota_errors=counters.quota_errors,
        succeeded=len(result.succeeded),
        failed=len(result.failed),
        stop_reason=result.stop_reason.value,
        quota_wait_seconds=counters.quota_wait_seconds,
        pacing_seconds=counters.pacing_seconds,
        profile=result.profile or CredentialProfile(),
    )
