"""The product owner's original algorithm, kept only as the benchmark's point of comparison.

Lockstep batches of 5: each batch waits for its slowest scene, then a 2 s cooldown. Inside a batch each
scene retries transient errors (2 s, 4 s backoff, 3 attempts). Any quota error in a batch sleeps 15 s and
re-sends the whole batch, up to 3 times; scenes still rejected after that are skipped. Same provider
contract and clock as the scheduler, so the comparison is like for like.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

from generation.engine.clock import Clock, LoopClock
from generation.engine.jobs import Counters, Job
from generation.providers.base import ImageResult, Provider, ProviderError, QuotaError, TransientError

logger = logging.getLogger("bench.baseline")


@dataclass(frozen=True)
class BaselineSettings:
    batch_size: int = 5
    cooldown: float = 2.0
    quota_sleep: float = 15.0
    batch_retries: int = 3
    max_attempts: int = 3
    backoff_base: float = 2.0


@dataclass
class BaselineResult:
    succeeded: list[Hashable] = field(default_factory=list)
    failed: list[Hashable] = field(default_factory=list)
    counters: Counters = field(default_factory=Counters)
    elapsed: float = 0.0

    @property
    def requests(self) -> int:
        return self.counters.requests

    @property
    def quota_errors(self) -> int:
        return self.counters.quota_errors


async def run_baseline(
    provider: Provider,
    jobs: Sequence[Job],
    *,
    clock: Clock | None = None,
    settings: BaselineSettings | None = None,
) -> BaselineResult:
    clock = clock or LoopClock()
    settings = settings or BaselineSettings()
    result = BaselineResult()
    started = clock.now()
    for start in range(0, len(jobs), settings.batch_size):
        if start:
            await clock.sleep(settings.cooldown)
        batch = jobs[start : start + settings.batch_size]
        done = await _run_batch(provider, batch, clock, settings, result)
        result.succeeded.extend(job.key for job in batch if job.key in done)
        result.failed.extend(job.key for job in batch if job.key not in done)
    result.counters.succeeded, result.counters.failed = len(result.succeeded), len(result.failed)
    result.elapsed = clock.now() - started
    return result


async def _run_batch(
    provider: Provider,
    batch: Sequence[Job],
    clock: Clock,
    settings: BaselineSettings,
    result: BaselineResult,
) -> set[Hashable]:
    done: set[Hashable] = set()
    for batch_try in range(settings.batch_retries + 1):
        scenes = (_run_scene(provider, job, clock, settings, result) for job in batch)
        outcomes = await asyncio.gather(*scenes)
        done.update(job.key for job, outcome in zip(batch, outcomes, strict=True) if outcome == "ok")
        if "quota" not in outcomes or batch_try == settings.batch_retries:
            break
        logger.info("Quota limit - waiting %gs", settings.quota_sleep)
        await clock.sleep(settings.quota_sleep)  # then the whole batch again, as the seed did
    return done


async def _run_scene(
    provider: Provider, job: Job, clock: Clock, settings: BaselineSettings, result: BaselineResult
) -> str:
    for attempt in range(1, settings.max_attempts + 1):
        result.counters.requests += 1
        try:
            image: ImageResult = await provider.generate(job.request)
        except QuotaError:
            result.counters.quota_errors += 1
            return "quota"
        except TransientError as error:
            logger.info("%s attempt %d failed: %s", job.name, attempt, error)
            if attempt < settings.max_attempts:
                await clock.sleep(settings.backoff_base * 2 ** (attempt - 1))
        except ProviderError:
            return "failed"
        else:
            return "ok" if image.image else "failed"
    logger.info("Skipping %s after %d failed attempts", job.name, settings.max_attempts)
    return "failed"
