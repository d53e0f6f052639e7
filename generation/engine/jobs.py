"""What goes into a run and what comes out of it."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Hashable
from dataclasses import dataclass, field

from generation.engine.profile import CredentialProfile
from generation.providers.base import ImageRequest


@dataclass(frozen=True)
class Job:
    key: Hashable  # the adapter's id for the scene, e.g. a Scene pk
    request: ImageRequest
    label: str = ""  # "Scene 3"; defaults to request.label, then the key

    @property
    def name(self) -> str:
        return self.label or self.request.label or str(self.key)


class StopReason(enum.StrEnum):
    COMPLETED = "completed"  # every job succeeded or failed
    STOPPED = "stopped"  # stop() was called
    DAILY_QUOTA = "daily_quota"  # the provider's daily quota is spent
    QUOTA_WAIT_EXCEEDED = "quota_wait_exceeded"  # quota waits would pass quota_wait_max_total
    AUTH = "auth"  # the credential was refused: no other job can succeed either
    STORAGE = "storage"  # the store cannot keep any image (disk full, read-only): stop burning quota
    ERROR = "error"  # a bug or a broken limiter/hook backend; the message says which


@dataclass(frozen=True)
class Failure:
    kind: str  # ProviderError.kind: "transient", "safety", "auth", "invalid", "storage", ...
    reason: str
    attempts: int  # requests sent for the job in this run


@dataclass
class Counters:
    """The counts every layer reports (scheduler, progress, result, the seed's benchmark, the runner's
    carried totals): one type, so adding two runs' counts is `a + b`."""

    requests: int = 0  # requests sent, quota-rejected ones included
    retries: int = 0  # re-sends after a transient failure
    quota_errors: int = 0
    quota_wait_seconds: float = 0.0  # time dispatch was paused by quota errors
    pacing_seconds: float = 0.0  # time dispatch waited for the limiter to stay within the quota
    succeeded: int = 0
    failed: int = 0

    def __add__(self, other: Counters) -> Counters:
        return Counters(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in dataclasses.fields(self)}
        )


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
    eta_seconds: float | None  # None until the plan has a latency (a first answer, or the profile's)
    paused_until: float | None  # clock time dispatch resumes, while a quota pause holds it
    # Live: a wait in progress counts up to now.
    quota_wait_seconds: float = 0.0
    pacing_seconds: float = 0.0

    @property
    def counters(self) -> Counters:
        return Counters(
            requests=self.requests,
            retries=self.retries,
            quota_errors=self.quota_errors,
            quota_wait_seconds=self.quota_wait_seconds,
            pacing_seconds=self.pacing_seconds,
            succeeded=self.succeeded,
            failed=self.failed,
        )


@dataclass
class RunResult:
    succeeded: list[Hashable] = field(default_factory=list)
    failed: dict[Hashable, Failure] = field(default_factory=dict)
    # Never sent in this run. Jobs in neither list nor in `succeeded`/`failed` were sent but left
    # unfinished (stopped, or refused by a spent daily quota): both kinds are resumable.
    not_attempted: list[Hashable] = field(default_factory=list)
    stop_reason: StopReason = StopReason.COMPLETED
    stop_message: str = ""
    counters: Counters = field(default_factory=Counters)
    elapsed: float = 0.0
    # What the run learned about its credential, to start the next run from (see profile.py).
    profile: CredentialProfile | None = None

    @property
    def requests(self) -> int:
        return self.counters.requests

    @property
    def retries(self) -> int:
        return self.counters.retries

    @property
    def quota_errors(self) -> int:
        return self.counters.quota_errors

    @property
    def quota_wait_seconds(self) -> float:
        return self.counters.quota_wait_seconds

    @property
    def pacing_seconds(self) -> float:
        return self.counters.pacing_seconds
