"""The scheduler against the seed's algorithm and the theoretical bound, on simulated time.

Every scenario runs the scheduler and the seed's lockstep batches (generation.engine.baseline) on fresh
copies of the same simulated provider, whose latencies are keyed by scene, so both see the same work.
The bound follows /work/shared/PERFORMANCE.md:
    bound   = max(sum(S) / C, 60 (ceil(N / R) - 1) + L, max(S))     (no failed requests: p = 0)
    ceiling = sum(S) / C + (1 - 1/C) max(S)                         (Graham: any work-conserving pool)
C is the engine's max_concurrency, or the provider's cap when lower; L the mean latency. A rate-bound
scenario is judged against the bound, a concurrency-bound one against the ceiling.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from bench import write_json
from bench.baseline import run_baseline
from generation.engine.clock import run_virtual
from generation.engine.config import EngineConfig
from generation.engine.jobs import Job
from generation.engine.scheduler import Scheduler
from generation.providers.base import ImageRequest
from generation.providers.simulated import SimRecord, SimulatedProvider

SEED = 7
SWEEP_SEEDS = range(10)
LOGNORMAL = {"latency": 8.0, "latency_sigma": 0.5, "seed": SEED}
ROLLING_30 = {**LOGNORMAL, "requests_per_minute": 30, "rejected_count": True}


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    scenes: int
    provider: dict[str, Any]
    engine: dict[str, Any] = field(default_factory=dict)  # EngineConfig overrides

    def config(self) -> EngineConfig:
        return EngineConfig.from_mapping(self.engine)

    def concurrency(self) -> int:
        cap = self.provider.get("max_concurrent")
        return min(self.config().max_concurrency, cap or math.inf)


SCENARIOS = [
    Scenario("a-defaults", "20 scenes x 8 s, no provider limit, engine defaults", 20, {"latency": 8.0}),
    Scenario(
        "a-c20",
        "20 scenes x 8 s, no provider limit, start=max concurrency=20 (N)",
        20,
        {"latency": 8.0},
        {"start_concurrency": 20, "max_concurrency": 20},
    ),
    Scenario("b", "200 scenes lognormal(8 s, sigma 0.5), defaults", 200, LOGNORMAL),
    Scenario(
        "c-known",
        "200 lognormal, rolling 30 rpm (429s count), engine told R=30",
        200,
        ROLLING_30,
        {"requests_per_minute": 30},
    ),
    Scenario(
        "c-headers",
        "200 lognormal, rolling 30 rpm (429s count), R learned from x-ratelimit headers",
        200,
        {**ROLLING_30, "send_rate_headers": True},
    ),
    Scenario(
        "c-unknown",
        "200 lognormal, rolling 30 rpm (429s count), R unknown, Retry-After only",
        200,
        ROLLING_30,
    ),
    Scenario(
        "e-10rpm",
        "200 lognormal, rolling 10 rpm (429s count), R unknown: the seed's worst case in PERFORMANCE.md",
        200,
        {**ROLLING_30, "requests_per_minute": 10},
    ),
    Scenario(
        "d",
        "200 lognormal, provider allows 3 concurrent (429, Retry-After 1 s), defaults",
        200,
        {**LOGNORMAL, "max_concurrent": 3},
    ),
]


def make_jobs(count: int) -> list[Job]:
    return [
        Job(key=i, request=ImageRequest(prompt=f"Scene {i}: a lighthouse at dusk", label=f"Scene {i}"))
        for i in range(1, count + 1)
    ]


async def _run_scheduler(scenario: Scenario, jobs: list[Job]) -> tuple[Any, SimulatedProvider]:
    provider = SimulatedProvider(**scenario.provider)
    scheduler = Scheduler(provider, config=scenario.config(), rng=random.Random(SEED))
    return await scheduler.run(jobs), provider


async def _run_seed(scenario: Scenario, jobs: list[Job]) -> Any:
    return await run_baseline(SimulatedProvider(**scenario.provider), jobs)


def bounds(scenario: Scenario, jobs: list[Job]) -> dict[str, Any]:
    probe = SimulatedProvider(**scenario.provider)
    latencies = [probe.latency_for(job.request) for job in jobs]
    total, longest, count = sum(latencies), max(latencies), len(latencies)
    c = scenario.concurrency()
    concurrency_term = total / c
    rate = scenario.provider.get("requests_per_minute")
    rate_term = 60 * (math.ceil(count / rate) - 1) + total / count if rate else 0.0
    rate_bound = rate_term > concurrency_term
    return {
        "bound_s": max(concurrency_term, rate_term, longest),
        "ceiling_s": concurrency_term + (1 - 1 / c) * longest,
        "judged_against": "bound" if rate_bound else "ceiling",
        "effective_concurrency": c,
    }


def sweep(scenario: Scenario) -> dict[str, Any] | None:
    """The judged ratio over other latency seeds: one seed's tail can flatter or hurt a scenario."""
    if scenario.provider.get("latency_sigma") is None:
        return None
    ratios = []
    for seed in SWEEP_SEEDS:
        variant = dataclasses.replace(scenario, provider={**scenario.provider, "seed": seed})
        jobs = make_jobs(variant.scenes)
        result, _ = run_virtual(_run_scheduler(variant, jobs))
        limits = bounds(variant, jobs)
        ratios.append(result.elapsed / limits[f"{limits['judged_against']}_s"])
    return {"seeds": len(ratios), "mean": round(statistics.fmean(ratios), 3), "max": round(max(ratios), 3)}


def quota_share_after(records: list[SimRecord], start: float) -> float:
    later = [r for r in records if r.at >= start]
    rejected = sum(1 for r in later if r.outcome.endswith("_limited"))
    return rejected / len(later) if later else 0.0


def measure(scenario: Scenario) -> dict[str, Any]:
    jobs = make_jobs(scenario.scenes)
    result, provider = run_virtual(_run_scheduler(scenario, jobs))
    seed = run_virtual(_run_seed(scenario, jobs))
    row = {
        "scenario": scenario.name,
        "description": scenario.description,
        "scenes": scenario.scenes,
        "config": scenario.config().as_dict(),
        "provider": {k: v for k, v in scenario.provider.items() if not callable(v)},
        "measured_s": round(result.elapsed, 1),
        "succeeded": len(result.succeeded),
        "stop_reason": result.stop_reason.value,
        "requests": result.requests,
        "quota_errors": result.quota_errors,
        "quota_share_after_60s": round(quota_share_after(provider.records, 60.0), 4),
        "seed_s": round(seed.elapsed, 1),
        "seed_succeeded": len(seed.succeeded),
        "seed_requests": seed.requests,
        "seed_quota_errors": seed.quota_errors,
        **bounds(scenario, jobs),
    }
    reference = row[f"{row['judged_against']}_s"]
    row["bound_s"], row["ceiling_s"] = round(row["bound_s"], 1), round(row["ceiling_s"], 1)
    row["ratio"] = round(result.elapsed / reference, 3)
    row["ratio_to_bound"] = round(result.elapsed / row["bound_s"], 3)
    row["vs_seed"] = round(result.elapsed / seed.elapsed, 3)
    row["ratio_over_seeds"] = sweep(scenario)
    return row


def print_table(rows: list[dict[str, Any]]) -> None:
    header = (
        f"{'scenario':<10} {'N':>4} {'measured':>9} {'bound':>7} {'ceiling':>8} {'ratio':>12} "
        f"{'seed':>7} {'vs seed':>8} {'reqs':>5} {'429s':>5} {'429>60s':>8} {'done':>5} {'seed done':>9}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        judged = f"{row['ratio']:.3f} ({row['judged_against'][0]})"
        print(
            f"{row['scenario']:<10} {row['scenes']:>4} {row['measured_s']:>9.1f} {row['bound_s']:>7.1f} "
            f"{row['ceiling_s']:>8.1f} {judged:>12} {row['seed_s']:>7.1f} {row['vs_seed']:>8.3f} "
            f"{row['requests']:>5} {row['quota_errors']:>5} {row['quota_share_after_60s']:>8.1%} "
            f"{row['succeeded']:>5} {row['seed_succeeded']:>9}"
        )
    print("ratio: measured / (b)ound for rate-bound scenarios, / (c)eiling for concurrency-bound ones")
    for row in rows:
        if row["ratio_over_seeds"]:
            spread = row["ratio_over_seeds"]
            print(
                f"  {row['scenario']}: ratio over {spread['seeds']} latency seeds: "
                f"mean {spread['mean']:.3f}, max {spread['max']:.3f}"
            )
    for row in rows:
        print(f"  {row['scenario']}: {row['description']}")


def main() -> None:
    # The engine logs every 429 at WARNING; thousands of them would bury the table.
    logging.getLogger("generation.engine").setLevel(logging.ERROR)
    started = time.perf_counter()
    rows = [measure(scenario) for scenario in SCENARIOS]
    print_table(rows)
    path = write_json("engine", rows)
    print(f"wrote {path} in {time.perf_counter() - started:.1f}s wall time")


if __name__ == "__main__":
    main()
