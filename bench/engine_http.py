"""What HTTP costs the scheduler: the same scenarios on the simulated clock and through the fake server.

Two kinds of rows, each efficiency = bound / measured, and HTTP must keep at least 95% of the simulated
efficiency:
- b-constant: 200 scenes of 8 s, no quota (constant latency, so the bound is exact), time-scaled x0.25;
- gpt-image: issue 13's profile (200 x 45 s lognormal, rolling 50/min), time-scaled x0.2 (a 12 s window),
  once with the quota told (Retry-After and x-ratelimit-* headers) and once hidden (the fake server omits
  both, as a silent gateway does), so the scheduler must infer the rate from its 429s.
The engine's own times (admission delay, the quota window, timeouts) are scaled along with the server's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from typing import Any

from bench import write_json
from generation.engine.clock import LoopClock, run_virtual
from generation.engine.config import EngineConfig
from generation.engine.limiter import SlidingWindowLimiter
from generation.engine.planner import make_jobs, simulate
from generation.engine.scheduler import Scheduler
from generation.fakeprovider.config import FakeConfig, Latency
from generation.fakeprovider.server import FakeProviderServer
from generation.providers.http import make_client
from generation.providers.openai import OpenAIProvider

SCENES = 200
LATENCY = 8.0  # seconds, as the product owner's example
TIME_SCALE = 0.25  # the HTTP run's 8 s requests take 2 s of wall time
GPT_SCALE = 0.2  # 45 s requests take 9 s, the 60 s window 12 s: about 50 s a run
GPT_RPM, GPT_MEAN, GPT_SIGMA = 50, 45.0, 0.15
WINDOW = 60.0
SEND_MARGIN = 0.1  # seconds of wall time, see http_run


def scaled_config(scale: float) -> EngineConfig:
    base = EngineConfig()
    fields = (
        "admission_delay",
        "rate_window_seconds",
        "quota_wait_default",
        "request_timeout",
        "backoff_base",
    )
    return dataclasses.replace(base, **{name: getattr(base, name) * scale for name in fields})


def gpt_bound(scale: float) -> float:
    return (WINDOW * (math.ceil(SCENES / GPT_RPM) - 1) + GPT_MEAN) * scale


async def http_run(url: str, config: EngineConfig) -> tuple[float, int, int]:
    # As many connections as the engine's ceiling, so the client never caps what the quota allows.
    client = make_client(max_connections=EngineConfig().max_concurrency)
    provider = OpenAIProvider(api_key="bench-key", base_url=url, client=client)
    try:
        started = time.perf_counter()
        # Redis's limiter keeps 0.1 s of margin for a 60 s window; time-scaled, loopback on a busy machine
        # still takes milliseconds unscaled, so the margin is too.
        window = config.rate_window_seconds
        limiter = SlidingWindowLimiter(LoopClock(), None, window=window, margin=SEND_MARGIN)
        result = await Scheduler(provider, config=config, limiter=limiter).run(make_jobs(SCENES))
        elapsed = time.perf_counter() - started
    finally:
        await provider.aclose()
    assert len(result.succeeded) == SCENES, result.failed
    return elapsed, result.requests, result.quota_errors


def over_http(fake: FakeConfig, config: EngineConfig) -> tuple[float, int, int]:
    server = FakeProviderServer(fake).start_in_thread()
    try:
        return asyncio.run(http_run(server.base_url("openai"), config))
    finally:
        server.stop_thread()


def simulated(provider: dict[str, Any]) -> tuple[float, int, int]:
    [result], _ = run_virtual(simulate(scenes=SCENES, provider=provider, config=EngineConfig()))
    return result.elapsed, result.requests, result.quota_errors


def row(name: str, measured: float, bound: float, requests: int, quota_errors: int, **extra: Any) -> dict:
    return {
        "scenario": name,
        "scenes": SCENES,
        "measured_s": round(measured, 3),
        "bound_s": round(bound, 3),
        "efficiency": round(bound / measured, 4),
        "requests": requests,
        "quota_errors": quota_errors,
        **extra,
    }


def constant_rows() -> list[dict]:
    sim_s, requests, errors = simulated({"latency": LATENCY})
    fake = FakeConfig(latency=Latency(kind="constant", seconds=LATENCY), time_scale=TIME_SCALE)
    http_s, http_requests, http_errors = over_http(fake, scaled_config(TIME_SCALE))
    sim = row("b-constant-simulated", sim_s, LATENCY, requests, errors)
    http = row(
        "b-constant-http", http_s, LATENCY * TIME_SCALE, http_requests, http_errors, time_scale=TIME_SCALE
    )
    http["http_vs_simulated"] = round(http["efficiency"] / sim["efficiency"], 4)
    return [sim, http]


def gpt_rows(*, hidden: bool) -> list[dict]:
    label = "gpt-image-hidden" if hidden else "gpt-image-told"
    provider = {
        "latency": GPT_MEAN,
        "latency_sigma": GPT_SIGMA,
        "requests_per_minute": GPT_RPM,
        "send_rate_headers": not hidden,
        "send_retry_after": not hidden,
    }
    sim_s, requests, errors = simulated(provider)
    median = GPT_MEAN * math.exp(-(GPT_SIGMA**2) / 2)
    fake = FakeConfig(
        latency=Latency(kind="lognormal", seconds=median, sigma=GPT_SIGMA),
        time_scale=GPT_SCALE,
        rpm=GPT_RPM,
        seed=7,
        omit=["retry_after", "rate_headers"] if hidden else [],
    )
    http_s, http_requests, http_errors = over_http(fake, scaled_config(GPT_SCALE))
    sim = row(f"{label}-simulated", sim_s, gpt_bound(1.0), requests, errors)
    http = row(
        f"{label}-http", http_s, gpt_bound(GPT_SCALE), http_requests, http_errors, time_scale=GPT_SCALE
    )
    http["http_vs_simulated"] = round(http["efficiency"] / sim["efficiency"], 4)
    return [sim, http]


def main(argv: list[str] | None = None) -> list[dict]:
    only = set(argv or [])  # e.g. ["gpt-image"]: just those rows
    rows = [] if only and "b-constant" not in only else constant_rows()
    if not only or "gpt-image" in only:
        rows += [*gpt_rows(hidden=False), *gpt_rows(hidden=True)]
    write_json("engine_http", rows)
    for item in rows:
        kept = (
            f", HTTP keeps {item['http_vs_simulated']:.1%} (target >= 95%)"
            if "http_vs_simulated" in item
            else ""
        )
        print(
            f"{item['scenario']:<26} {item['measured_s']:>8.2f}s bound {item['bound_s']:>7.2f}s "
            f"efficiency {item['efficiency']:.3f}, {item['requests']} requests, "
            f"{item['quota_errors']} quota errors{kept}"
        )
    return rows


if __name__ == "__main__":
    main()
