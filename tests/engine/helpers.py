"""Shared pieces for the engine tests: jobs, a hook recorder, a scripted provider, the loop clock."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Hashable
from typing import Any

from generation.engine.config import EngineConfig
from generation.engine.hooks import Hooks
from generation.engine.jobs import Job, RunResult, StopReason
from generation.engine.profile import CredentialProfile
from generation.engine.scheduler import Scheduler
from generation.providers.base import ImageRequest, ImageResult, Provider, ProviderError, QuotaError

Step = float | BaseException


def now() -> float:
    return asyncio.get_running_loop().time()


def make_jobs(count: int, *, words: str = "a lighthouse at dusk") -> list[Job]:
    return [
        Job(key=i, request=ImageRequest(prompt=f"Scene {i}: {words}"), label=f"Scene {i}")
        for i in range(1, count + 1)
    ]


def make_scheduler(
    provider: Provider, hooks: Hooks | None = None, *, profile: CredentialProfile | None = None, **config: Any
) -> Scheduler:
    return Scheduler(
        provider, config=EngineConfig(**config), hooks=hooks, rng=random.Random(1), profile=profile
    )


def unfinished(result: RunResult, jobs: list[Job]) -> list[Hashable]:
    """Keys sent in the run but neither succeeded nor failed (resumable, as never-sent ones are)."""
    done = {*result.succeeded, *result.failed, *result.not_attempted}
    return [job.key for job in jobs if job.key not in done]


def resumable(result: RunResult, jobs: list[Job]) -> list[Job]:
    """The jobs a later run should resume, in their original order."""
    finished = {*result.succeeded, *result.failed}
    return [job for job in jobs if job.key not in finished]


async def stop_at(scheduler: Scheduler, at: float) -> None:
    await asyncio.sleep(at - now())
    scheduler.stop()


class RecordingHooks(Hooks):
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        return [event[1:] for event in self.events if event[0] == kind]

    def starts(self, key: Hashable) -> list[float]:
        """Clock times the requests for `key` were sent."""
        return [at for k, _, at in self.of("started") if k == key]

    async def attempt_started(self, job: Job, attempt_no: int) -> None:
        self.events.append(("started", job.key, attempt_no, now()))

    async def attempt_finished(
        self,
        job: Job,
        attempt_no: int,
        error: BaseException | None,
        result: ImageResult | None,
        latency: float,
    ) -> None:
        kind = type(error).__name__ if error is not None else None
        self.events.append(("finished", job.key, attempt_no, kind, result is not None, latency))

    async def job_succeeded(self, job: Job, result: ImageResult, attempts: int) -> None:
        self.events.append(("succeeded", job.key, attempts))

    async def job_failed(self, job: Job, error: ProviderError, attempts: int) -> None:
        self.events.append(("failed", job.key, error.kind, attempts))

    async def quota_wait(self, seconds: float, until: float, wait_no: int, error: QuotaError) -> None:
        self.events.append(("quota_wait", seconds, until, wait_no))

    async def run_stopping(self, reason: StopReason, message: str) -> None:
        self.events.append(("stopping", reason, message))

    async def pacing(self, seconds: float | None, requests_per_minute: float | None) -> None:
        self.events.append(("pacing", now(), seconds, requests_per_minute))


class ScriptedProvider(Provider):
    """Answers each prompt from a script: a number is a successful request of that many seconds, an
    exception is raised after `error_latency`. Once a script runs out, requests take `latency`."""

    name = "scripted"

    def __init__(self, script: dict[str, list[Step]] | None = None, *, latency: float = 1.0) -> None:
        super().__init__()
        self.script = {prompt: list(steps) for prompt, steps in (script or {}).items()}
        self.latency = latency
        self.error_latency = 0.5
        self.sent: list[tuple[str, float]] = []

    async def generate(self, request: ImageRequest) -> ImageResult:
        self.sent.append((request.prompt, now()))
        steps = self.script.get(request.prompt)
        step = steps.pop(0) if steps else self.latency
        if isinstance(step, BaseException):
            await asyncio.sleep(self.error_latency)
            raise step
        await asyncio.sleep(step)
        return ImageResult(image=b"\x89PNG fake")
