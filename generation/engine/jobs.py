"""What goes into a run and what comes out of it."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

from generation.providers.base import ImageRequest


@dataclass(frozen=True)
class Job:
    key: Hashable  # the adapter's id for the scene, e.g. a Scene pk
    request: ImageRequest
    label: str = ""  # "Scene 3"; defaults to request.label, then the key
    # Transient failures in earlier runs: they count against max_attempts, so a resumed scene does
    # not get a fresh budget (it always gets at least one attempt, though).
    prior_failures: int = 0

    @property
    def name(self) -> str:
        return self.label or self.request.label or str(self.key)


class StopReason(enum.StrEnum):
    COMPLETED = "completed"  # every job succeeded or failed
    STOPPED = "stopped"  # stop() was called
    DAILY_QUOTA = "daily_quota"  # the provider's daily quota is spent
    QUOTA_WAIT_EXCEEDED = "quota_wait_exceeded"  # quota waits would pass quota_wait_max_total
    AUTH = "auth"  # the credential was refused: no other job can succeed either
    ERROR = "error"  # a bug or a broken limiter/hook backend; the message says which


@dataclass(frozen=True)
class Failure:
    kind: str  # ProviderError.kind: "transient", "safety", "auth", "invalid", ...
    reason: str
    attempts: int  # requests sent for the job in this run


@dataclass(frozen=True)
class Progress:
    total: int
    succeeded: int
    failed: int
    in_flight: int
    remaining: int  # neither succeeded nor failed yet
    concurrency: int  # current adaptive limit
    requests: int
    retries: int
    quota_errors: int
    elapsed: float
    eta_seconds: float | None  # None until a first request has finished
    paused_until: float | None  # clock time dispatch resumes, while a quota pause holds it


@dataclass
class RunResult:
    succeeded: list[Hashable] = field(default_factory=list)
    failed: dict[Hashable, Failure] = field(default_factory=dict)
    # Sent in this run but unfinished when it ended: key -> transient failures so far (prior included).
    interrupted: dict[Hashable, int] = field(default_factory=dict)
    not_attempted: list[Hashable] = field(default_factory=list)  # never sent: untouched
    stop_reason: StopReason = StopReason.COMPLETED
    stop_message: str = ""
    requests: int = 0  # requests sent, quota-rejected ones included
    retries: int = 0  # re-sends after a transient failure
    quota_errors: int = 0
    quota_wait_seconds: float = 0.0  # time dispatch was paused by quota errors
    elapsed: float = 0.0

    def remaining_jobs(self, jobs: Iterable[Job]) -> list[Job]:
        """The jobs a later run should resume, in their original order, with failure counts carried."""
        untouched = set(self.not_attempted)
        remaining = []
        for job in jobs:
            if job.key in self.interrupted:
                remaining.append(dataclasses.replace(job, prior_failures=self.interrupted[job.key]))
            elif job.key in untouched:
                remaining.append(job)
        return remaining
