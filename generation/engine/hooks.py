"""What the scheduler tells the outside world (the Django adapter records rows and pushes live events).

Subclass `Hooks` and override what you need; every method is optional. The scheduler awaits each call
in the job's own task, so a slow hook delays that job only (keep database writes short). An exception
raised by a hook is logged and swallowed: a failed write must never throw away an image already paid for.
"""

from __future__ import annotations

from generation.engine.jobs import Job, Progress, StopReason
from generation.providers.base import ImageResult, ProviderError, QuotaError


class Hooks:
    async def attempt_started(self, job: Job, attempt_no: int) -> None:
        """A request for `job` is being sent. `attempt_no` counts 1, 2, 3... per job per run,
        quota-rejected requests included; exactly one `attempt_finished` follows."""

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
        """Final for this run; `attempts` = requests sent for the job in this run."""

    async def job_failed(self, job: Job, error: ProviderError, attempts: int) -> None:
        """Final for this run: a terminal error, or the last of max_attempts transient failures."""

    async def quota_wait(self, seconds: float, until: float, wait_no: int, error: QuotaError) -> None:
        """All dispatch to the credential pauses until clock time `until`; `wait_no` counts quota waits
        since the last success (1 for the first)."""

    async def pacing(self, seconds: float | None, requests_per_minute: float | None) -> None:
        """Dispatch waits for the limiter to stay within the quota (no error happened); `seconds` is
        the limiter's estimate of when the next request may go, when it can tell."""

    async def run_stopping(self, reason: StopReason, message: str) -> None:
        """The run stops early (stop(), daily quota, quota wait budget, auth); in-flight requests may
        still finish within the grace period before run() returns."""

    async def progress(self, snapshot: Progress) -> None:
        """Counts after every job outcome and quota wait, and once when the run ends; droppable."""
