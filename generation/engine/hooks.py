"""What the scheduler tells the outside world (the Django adapter records rows and pushes live events).

Subclass `Hooks` and override what you need; every method is optional. The scheduler awaits each call
in the job's own task, so a slow hook delays that job only (keep database writes short).

The durability contract, i.e. what an exception raised by a hook means:
- `attempt_started` records the attempt before its request goes out. If it raises, the request is NOT
  sent (no request without its attempt row): the job is retried like a transient error and, if it keeps
  failing, fails with kind "storage" and the reason "could not record the attempt: <message>".
- `job_succeeded` stores the image. The job counts as succeeded only once it returns. If it raises, the
  job fails with kind "storage" and the reason "could not store the image: <message>", and `job_failed`
  is called for it.
- Raising `StoreError(message, fatal=True)` from either says the store cannot keep anything any more
  (disk full, read-only media): the run stops at once with StopReason.STORAGE and that message, so no
  more quota is spent on images that cannot be kept.
- `attempt_finished` and `job_failed` are records too, but their failure cannot undo what happened: it
  is logged, and a fatal StoreError still stops the run.
- `quota_wait`, `pacing`, `run_stopping` and `progress` are events, droppable: an exception is logged
  and swallowed.
"""

from __future__ import annotations

from generation.engine.jobs import Job, Progress, StopReason
from generation.providers.base import ImageResult, ProviderError, QuotaError


class StoreError(Exception):
    """A hook could not make its write durable; `fatal` when no later job's write can succeed either."""

    def __init__(self, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.fatal = fatal


class StorageFailure(ProviderError):
    """What `job_failed` gets when the attempt or the image could not be recorded (see above)."""

    kind = "storage"


class Hooks:
    async def attempt_started(self, job: Job, attempt_no: int) -> None:
        """A request for `job` is about to be sent (it is not, if this raises). `attempt_no` counts
        1, 2, 3... per job per run, quota-rejected requests included; exactly one `attempt_finished`
        follows a call that returned."""

    async def attempt_finished(
        self,
        job: Job,
        attempt_no: int,
        error: BaseException | None,
        result: ImageResult | None,
        latency: float,
    ) -> None:
        """The request ended: `result` on success, else `error` (a ProviderError, or
        `Interrupted` when it was cancelled after the grace period)."""

    async def job_succeeded(self, job: Job, result: ImageResult, attempts: int) -> None:
        """Store the image; the job succeeded once this returns. `attempts` = requests sent for the
        job in this run."""

    async def job_failed(self, job: Job, error: ProviderError, attempts: int) -> None:
        """Final for this run: a terminal error, the last of max_attempts transient failures, or a
        store failure (kind "storage")."""

    async def quota_wait(self, seconds: float, until: float, wait_no: int, error: QuotaError) -> None:
        """All dispatch to the credential pauses until clock time `until`; `wait_no` counts quota waits
        since the last success (1 for the first)."""

    async def pacing(self, seconds: float | None, requests_per_minute: float | None) -> None:
        """Dispatch waits for the limiter to stay within the quota (no error happened); `seconds` is
        the limiter's estimate of when the next request may go."""

    async def run_stopping(self, reason: StopReason, message: str) -> None:
        """The run stops early (stop(), daily quota, quota wait budget, auth, storage); in-flight
        requests may still finish within the grace period before run() returns."""

    async def progress(self, snapshot: Progress) -> None:
        """Counts after every job outcome and quota wait, and once when the run ends; droppable."""
