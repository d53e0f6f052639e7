"""What HTTP costs the scheduler: one scenario on the simulated clock and through the fake server over HTTP.

Both runs use the same scheduler settings and the same latency per request (constant, so the bound is
exact and no sampling noise hides the overhead): 200 scenes of 8 s, time-scaled for the HTTP run. The
figure of merit is efficiency = bound / measured; HTTP must keep at least 95% of the simulated efficiency.
"""

from __future__ import annotations

import asyncio
import math
import time

from bench import write_json
from generation.engine.clock import run_virtual
from generation.engine.config import EngineConfig
from generation.engine.jobs import Job
from generation.engine.scheduler import Scheduler
from generation.fakeprovider.config import FakeConfig, Latency
from generation.fakeprovider.server import FakeProviderServer
from generation.providers.base import ImageRequest
from generation.providers.openai import OpenAIProvider
from generation.providers.simulated import SimulatedProvider

SCENES = 200
LATENCY = 8.0  # seconds, as the product owner's example
TIME_SCALE = 0.25  # the HTTP run's 8 s requests take 2 s of wall time
CONFIG = EngineConfig()  # the defaults: start 5, max 16


def jobs() -> list[Job]:
    return [
        Job(key=i, request=ImageRequest(prompt=f"Scene {i} prompt", seed=i, label=f"Scene {i}"))
        for i in range(1, SCENES + 1)
    ]


def bound(latency: float) -> float:
    return max(SCENES * latency / CONFIG.max_concurrency, latency)


async def simulated_run() -> float:
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await Scheduler(SimulatedProvider(latency=LATENCY), config=CONFIG).run(jobs())
    assert len(result.succeeded) == SCENES
    return loop.time() - started


async def http_run(url: str) -> tuple[float, int]:
    provider = OpenAIProvider(api_key="bench-key", base_url=url)
    try:
        started = time.perf_counter()
        result = await Scheduler(provider, config=CONFIG).run(jobs())
        elapsed = time.perf_counter() - started
    finally:
        await provider.aclose()
    assert len(result.succeeded) == SCENES, result.failed
    return elapsed, result.requests


def main() -> list[dict]:
    simulated_s = run_virtual(simulated_run())
    config = FakeConfig(latency=Latency(kind="constant", seconds=LATENCY), time_scale=TIME_SCALE)
    server = FakeProviderServer(config).start_in_thread()
    try:
        http_s, requests = asyncio.run(http_run(server.base_url("openai")))
    finally:
        server.stop_thread()
    sim_eff = bound(LATENCY) / simulated_s
    http_eff = bound(LATENCY * TIME_SCALE) / http_s
    rows = [
        {
            "scenario": "b-constant-simulated",
            "scenes": SCENES,
            "measured_s": round(simulated_s, 3),
            "bound_s": bound(LATENCY),
            "efficiency": round(sim_eff, 4),
            "requests": SCENES,
        },
        {
            "scenario": "b-constant-http",
            "scenes": SCENES,
            "measured_s": round(http_s, 3),
            "bound_s": round(bound(LATENCY * TIME_SCALE), 3),
            "time_scale": TIME_SCALE,
            "efficiency": round(http_eff, 4),
            "requests": requests,
            "http_vs_simulated": round(http_eff / sim_eff, 4),
        },
    ]
    write_json("engine_http", rows)
    print(
        f"{SCENES} scenes of {LATENCY:g} s at C={CONFIG.max_concurrency}: "
        f"simulated efficiency {sim_eff:.3f}, "
        f"over HTTP (x{TIME_SCALE:g} time) {http_eff:.3f}: HTTP keeps {http_eff / sim_eff:.1%} "
        f"(target >= 95%; ceiling {math.ceil(SCENES / CONFIG.max_concurrency)} rounds)"
    )
    return rows


if __name__ == "__main__":
    main()
