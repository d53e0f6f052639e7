"""The batch scheduler: a work-conserving pool paced per credential, with retries and a clean stop.

Each job runs in its own task but only sends when the dispatcher admits it: a free slot under the adaptive
concurrency limit, then the limiter's pacing and pauses. A freed slot admits the next job at once (no
lockstep batches, no cooldowns). Jobs already sent once (requeued after a quota error, or retrying after
a transient one) are admitted before jobs never sent, so started scenes finish first.

Errors, by type:
- TransientError: retried by tenacity with exponential backoff (2 s, 4 s ...), up to max_attempts.
- QuotaError: does not spend an attempt. The job goes back to the head of the queue, the credential pauses
  (Retry-After, or a doubling default) and concurrency drops; a Retry-After that reveals a rolling window
  sets the limiter's rate (inference.py). 429s from requests sent before the last pause began add
  nothing. A run whose quota waits would pass quota_wait_max_total stops; DailyQuotaError stops it at once.
- SafetyError, InvalidRequestError: the job fails at once. AuthError too, and the run stops, since no
  other job can succeed with that credential.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from generation.engine.clock import Clock, LoopClock
from generation.engine.concurrency import AdaptiveConcurrency
from generation.engine.config import EngineConfig
from generation.engine.hooks import Hooks
from generation.engine.inference import WindowInference
from generation.engine.jobs import Failure, Job, Progress, RunResult, StopReason
from generation.engine.limiter import Limiter, make_limiter
from generation.providers.base import (
    AuthError,
    DailyQuotaError,
    ImageResult,
    Provider,
    ProviderError,
    QuotaError,
    RateLimit,
    TransientError,
)

logger = logging.getLogger("generation.engine")

_SENT_BEFORE, _NEVER_SENT = 0, 1  # admission priorities: lower goes first
# A Retry-After of 0 (or a rounding crumb) must not turn a wave of 429s into a busy loop.
MIN_QUOTA_WAIT = 0.25


# Waiting for the limiter longer than this is announced through Hooks.pacing (the run is not stuck).
PACING_NOTICE_SECONDS = 1.0


class Interrupted(Exception):
    """A request still in flight when the grace period after stop() ran out, cancelled."""


class _Stopped(Exception):
    """Unwinds a job's task when the run stops; the job stays resumable."""


@dataclass(eq=False)
class _JobState:
    job: Job
    index: int
    transient_failures: int  # prior runs included
    attempts: int = 0  # requests sent in this run
    priority: int = _NEVER_SENT
    level: int = 0  # requests in flight, this one included, when the last one was sent
    sent_at: float = 0.0
    send_number: int = 0
    succeeded: bool = False
    failure: Failure | None = None


@dataclass
class _Stats:
    requests: int = 0
    retries: int = 0
    quota_errors: int = 0
    quota_wait: float = 0.0
    successes: int = 0
    success_latency: float = 0.0


def jittered(rng: random.Random, seconds: float, fraction: float) -> float:
    return seconds * rng.uniform(1.0 - fraction, 1.0 + fraction)


class Scheduler:
    """Runs one batch of jobs against one provider credential. Make a new one per run."""

    def __init__(
        self,
        provider: Provider,
        *,
        config: EngineConfig | None = None,
        clock: Clock | None = None,
        hooks: Hooks | None = None,
        limiter: Limiter | None = None,
        concurrency: AdaptiveConcurrency | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.provider = provider
        self.config = config or EngineConfig()
        self.clock = clock or LoopClock()
        self.hooks = hooks or Hooks()
        # Pass a shared limiter when several runs use one credential, so they share its quota.
        self.limiter = limiter or make_limiter(self.config, self.clock)
        self.concurrency = concurrency or AdaptiveConcurrency.from_config(self.config)
        self.rng = rng or random.Random()
        self.stats = _Stats()
        self._states: list[_JobState] = []
        self._waiting: list[tuple[int, int, asyncio.Future[int]]] = []
        self._in_flight = 0
        self._requests: set[asyncio.Task[ImageResult]] = set()
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()
        self._finished = asyncio.Event()
        self._unfinished = 0
        self._stop_reason: StopReason | None = None
        self._stop_message = ""
        self._dispatcher: asyncio.Task[None] | None = None
        self._started_at: float | None = None
        self._pause_end = -math.inf
        self._pause_set_at = -math.inf
        self._quota_streak = 0
        self._windows = WindowInference()  # recognises a rolling-window quota from its 429s

    # -- the run -------------------------------------------------------------------------------

    async def run(self, jobs: Iterable[Job]) -> RunResult:
        if self._started_at is not None:
            raise RuntimeError("A Scheduler runs once; make a new one for the next run")
        self._started_at = self.clock.now()
        self._states = [
            _JobState(job, index, transient_failures=job.prior_failures) for index, job in enumerate(jobs)
        ]
        self._unfinished = len(self._states)
        if not self._states:
            self._finished.set()
        self._dispatcher = asyncio.create_task(self._dispatch())
        workers = [asyncio.create_task(self._run_job(state)) for state in self._states]
        try:
            await self._until_done_or_stopped()
            if self._stop_reason is not None:
                await self._emit(self.hooks.run_stopping(self._stop_reason, self._stop_message))
                await self._drain()
            await asyncio.gather(*workers)
        finally:
            # Only does anything when run() itself was cancelled or a bug escaped a worker.
            self._dispatcher.cancel()
            for task in [*workers, *self._requests]:
                task.cancel()
        result = self._result()
        await self._emit(self.hooks.progress(self.snapshot()))
        return result

    def stop(self, reason: StopReason = StopReason.STOPPED, message: str = "Stopped on request") -> None:
        """Send nothing more and end every wait now; requests in flight get grace_timeout to finish."""
        if self._stop_reason is None:
            self._stop_reason, self._stop_message = reason, message
            logger.warning("Stopping the run (%s): %s", reason.value, message)
        self._stopped.set()
        if self._dispatcher is not None:
            self._dispatcher.cancel()
        for *_, future in self._waiting:
            if not future.done():
                future.set_exception(_Stopped())
        self._waiting.clear()

    async def _until_done_or_stopped(self) -> None:
        waits = {asyncio.ensure_future(self._finished.wait()), asyncio.ensure_future(self._stopped.wait())}
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    async def _drain(self) -> None:
        """Give requests in flight the grace period, then cancel the stragglers."""
        if self._requests:
            await asyncio.wait(set(self._requests), timeout=self.config.grace_timeout)
        for request in self._requests:
            request.cancel()

    # -- one job ---------------------------------------------------------------------------------

    async def _run_job(self, state: _JobState) -> None:
        try:
            await self._run_job_to_outcome(state)
        except Exception as error:
            # E.g. a shared limiter's backend is down: stop cleanly, leaving the jobs resumable.
            logger.exception("%s: the engine failed", state.job.name)
            self.stop(StopReason.ERROR, f"Engine error: {type(error).__name__}: {error}")
        finally:
            self._unfinished -= 1
            if not self._unfinished:
                self._finished.set()

    async def _run_job_to_outcome(self, state: _JobState) -> None:
        try:
            result = await self._retrying(state)(self._attempt, state)
        except _Stopped:
            return
        except ProviderError as error:
            await self._fail(state, error)
        else:
            state.succeeded = True
            logger.info("%s done after %d attempt(s)", state.job.name, state.attempts)
            await self._emit(self.hooks.job_succeeded(state.job, result, state.attempts))
        await self._emit(self.hooks.progress(self.snapshot()))

    def _retrying(self, state: _JobState) -> AsyncRetrying:
        # The only retry layer: providers must not retry on their own (an SDK's retries off).
        return AsyncRetrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_after_attempt(max(1, self.config.max_attempts - state.job.prior_failures)),
            wait=lambda _: self._backoff(state),
            sleep=self._sleep,
            before_sleep=self._before_retry(state),
            reraise=True,
        )

    def _backoff(self, state: _JobState) -> float:
        nominal = self.config.backoff_base * 2 ** (state.transient_failures - 1)
        return jittered(self.rng, nominal, self.config.jitter)

    def _before_retry(self, state: _JobState) -> Callable[[RetryCallState], None]:
        def log(retry_state: RetryCallState) -> None:
            self.stats.retries += 1
            logger.info("Retrying in %dms...", round((retry_state.upcoming_sleep or 0) * 1000))

        return log

    async def _attempt(self, state: _JobState) -> ImageResult:
        """Send until the provider accepts the request: quota rejections requeue it without spending
        one of the job's attempts. Raises the TransientError for tenacity to retry."""
        while True:
            try:
                result = await self._send(state)
            except QuotaError as error:
                state.priority = _SENT_BEFORE
                await self._on_quota(state, error)
            except TransientError:
                state.transient_failures += 1
                state.priority = _SENT_BEFORE
                raise
            except Interrupted:
                raise _Stopped() from None
            else:
                await self._on_success(result)
                return result

    async def _send(self, state: _JobState) -> ImageResult:
        state.level = await self._admit(state)
        if self._stop_reason is not None:  # stopped between admission and this task waking up
            self._release()
            raise _Stopped()
        state.attempts += 1
        attempt_no, state.sent_at = state.attempts, self.clock.now()
        self.stats.requests += 1
        state.send_number = self._windows.sent(state.sent_at)
        # The request starts before the hook runs, so the limiter's send time stays the real one.
        request = asyncio.create_task(self._call(state.job))
        self._requests.add(request)
        try:
            await self._emit(self.hooks.attempt_started(state.job, attempt_no))
            await asyncio.wait({request})
        finally:
            if not request.done():  # run() itself was cancelled
                request.cancel()
            self._requests.discard(request)
            self._release()
        error, result = self._outcome(request)
        latency = self.clock.now() - state.sent_at
        if not isinstance(error, QuotaError | Interrupted):
            self._windows.accepted(state.sent_at)
        await self._emit(self.hooks.attempt_finished(state.job, attempt_no, error, result, latency))
        if error is not None:
            logger.warning("%s attempt %d failed: %s", state.job.name, attempt_no, error)
            raise error
        assert result is not None
        self.stats.successes += 1
        self.stats.success_latency += latency
        return result

    async def _call(self, job: Job) -> ImageResult:
        timeout = self.config.request_timeout
        try:
            async with asyncio.timeout(timeout):
                return await self.provider.generate(job.request)
        except TimeoutError:
            raise TransientError(f"No answer after {timeout:g}s") from None
        except ProviderError:
            raise
        except Exception as error:
            # A provider must raise typed errors; a stray one is a bug, but it should not sink the run.
            logger.exception("%s: provider %s raised an untyped error", job.name, self.provider.name)
            raise TransientError(f"Unexpected {type(error).__name__}: {error}") from error

    def _outcome(self, request: asyncio.Task[ImageResult]) -> tuple[BaseException | None, ImageResult | None]:
        if request.cancelled():
            grace = self.config.grace_timeout
            return Interrupted(f"Cancelled: still running {grace:g}s after the run stopped"), None
        error = request.exception()
        return (error, None) if error is not None else (None, request.result())

    async def _fail(self, state: _JobState, error: ProviderError) -> None:
        state.failure = Failure(kind=error.kind, reason=error.message, attempts=state.attempts)
        if isinstance(error, TransientError):
            logger.warning("Skipping %s after %d failed attempts", state.job.name, state.transient_failures)
        else:
            logger.warning("Skipping %s: %s (%s)", state.job.name, error.message, error.kind)
        await self._emit(self.hooks.job_failed(state.job, error, state.attempts))
        if isinstance(error, AuthError):
            self.stop(StopReason.AUTH, f"The provider refused the credential: {error.message}")

    async def _sleep(self, seconds: float) -> None:
        """The clock's sleep, cut short by stop() (raises _Stopped then)."""
        if self._stop_reason is None:
            sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
            stopped = asyncio.ensure_future(self._stopped.wait())
            try:
                await asyncio.wait({sleeper, stopped}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                stopped.cancel()
        if self._stop_reason is not None:
            raise _Stopped()

    # -- admission -------------------------------------------------------------------------------

    async def _admit(self, state: _JobState) -> int:
        """Wait for the dispatcher to hand this job a slot; returns the requests now in flight."""
        if self._stop_reason is not None:
            raise _Stopped()
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (state.priority, state.index, future))
        self._wake.set()
        return await future

    async def _dispatch(self) -> None:
        try:
            await self._dispatch_forever()
        except Exception as error:
            logger.exception("The dispatcher failed")
            self.stop(StopReason.ERROR, f"Engine error: {type(error).__name__}: {error}")

    async def _dispatch_forever(self) -> None:
        while True:
            while not (self._waiting and self._in_flight < self.concurrency.limit):
                self._wake.clear()
                await self._wake.wait()
            # Pacing last: the limiter records the send time, so nothing may wait after it.
            await self._paced_acquire()
            while self._waiting:
                *_, future = heapq.heappop(self._waiting)
                if not future.done():
                    self._in_flight += 1
                    future.set_result(self._in_flight)
                    break

    async def _paced_acquire(self) -> None:
        """Take a send slot from the limiter; a wait long enough for a person to notice is announced."""
        acquire = asyncio.ensure_future(self.limiter.acquire())
        try:
            done, _ = await asyncio.wait({acquire}, timeout=PACING_NOTICE_SECONDS)
            # A quota pause holds the limiter too, but it was announced as a quota wait already.
            if not done and self.clock.now() >= self._pause_end:
                estimate = getattr(self.limiter, "next_send_in", lambda: None)()
                rate = getattr(self.limiter, "requests_per_minute", None)
                await self._emit(self.hooks.pacing(estimate, rate))
            await acquire
        finally:
            acquire.cancel()  # only does anything when the dispatcher itself is cancelled (a stop)

    def _release(self) -> None:
        self._in_flight -= 1
        self._wake.set()

    # -- feedback --------------------------------------------------------------------------------

    async def _on_success(self, result: ImageResult) -> None:
        self._quota_streak = 0
        self.concurrency.on_success()
        self._wake.set()
        if result.rate_limit is not None:
            await self.limiter.learn(result.rate_limit)

    async def _on_quota(self, state: _JobState, error: QuotaError) -> None:
        self.stats.quota_errors += 1
        if error.rate_limit is not None:
            await self.limiter.learn(error.rate_limit)
        if isinstance(error, DailyQuotaError):
            self.stop(StopReason.DAILY_QUOTA, f"The provider's daily quota is spent: {error.message}")
        if self._stop_reason is not None:
            raise _Stopped()
        if state.sent_at < self._pause_set_at:
            # Sent before the last pause began: that pause and decrease already answer this 429.
            return
        self.concurrency.on_quota_error(state.level)
        await self._infer_rate(state, error)
        await self._pause(error)

    async def _infer_rate(self, state: _JobState, error: QuotaError) -> None:
        rate = self._windows.infer(state.send_number, error.retry_after)
        known = getattr(self.limiter, "requests_per_minute", None)
        if rate is not None and (known is None or rate < known):
            logger.info("Quota looks like %d requests a minute; pacing to it", rate)
            await self.limiter.learn(RateLimit(limit_requests=rate))

    async def _pause(self, error: QuotaError) -> None:
        now = self.clock.now()
        self._quota_streak += 1
        if error.retry_after is not None:
            seconds = max(MIN_QUOTA_WAIT, error.retry_after)
        else:
            nominal = self.config.quota_wait_default * 2 ** (self._quota_streak - 1)
            seconds = jittered(self.rng, nominal, self.config.jitter)
        until = now + seconds
        extension = max(0.0, until - max(now, self._pause_end))
        budget = self.config.quota_wait_max_total
        if self.stats.quota_wait + extension > budget:
            self.stop(
                StopReason.QUOTA_WAIT_EXCEEDED,
                f"Quota waits would pass {budget:g}s in total ({self.stats.quota_wait:.0f}s so far); "
                "the scenes left can resume later",
            )
            raise _Stopped()
        self.stats.quota_wait += extension
        self._pause_end, self._pause_set_at = max(self._pause_end, until), now
        await self.limiter.pause_until(until)
        logger.warning("Quota limit - waiting %gs", round(seconds, 1))
        await self._emit(self.hooks.quota_wait(seconds, until, self._quota_streak, error))
        await self._emit(self.hooks.progress(self.snapshot()))

    # -- reporting -------------------------------------------------------------------------------

    def snapshot(self) -> Progress:
        now = self.clock.now()
        succeeded = sum(1 for s in self._states if s.succeeded)
        failed = sum(1 for s in self._states if s.failure is not None)
        remaining = len(self._states) - succeeded - failed
        return Progress(
            total=len(self._states),
            succeeded=succeeded,
            failed=failed,
            in_flight=self._in_flight,
            remaining=remaining,
            concurrency=self.concurrency.limit,
            requests=self.stats.requests,
            retries=self.stats.retries,
            quota_errors=self.stats.quota_errors,
            elapsed=now - (self._started_at if self._started_at is not None else now),
            eta_seconds=self._eta(remaining, now),
            paused_until=self._pause_end if self._pause_end > now else None,
        )

    def _eta(self, remaining: int, now: float) -> float | None:
        if not self.stats.successes:
            return None
        mean_latency = self.stats.success_latency / self.stats.successes
        eta = remaining * mean_latency / self.concurrency.limit
        rate = getattr(self.limiter, "requests_per_minute", None)
        if rate:
            eta = max(eta, remaining * 60.0 / rate)
        return eta + max(0.0, self._pause_end - now)

    def _result(self) -> RunResult:
        result = RunResult(
            stop_reason=self._stop_reason or StopReason.COMPLETED,
            stop_message=self._stop_message,
            requests=self.stats.requests,
            retries=self.stats.retries,
            quota_errors=self.stats.quota_errors,
            quota_wait_seconds=self.stats.quota_wait,
            elapsed=self.clock.now() - (self._started_at or 0.0),
        )
        for state in self._states:
            key = state.job.key
            if state.succeeded:
                result.succeeded.append(key)
            elif state.failure is not None:
                result.failed[key] = state.failure
            elif state.attempts:
                result.interrupted[key] = state.transient_failures
            else:
                result.not_attempted.append(key)
        return result

    @staticmethod
    async def _emit(call: Awaitable[None]) -> None:
        try:
            await call
        except Exception:
            logger.exception("A scheduler hook failed; the run goes on")
