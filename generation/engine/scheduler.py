"""The batch scheduler: a work-conserving pool paced per credential, with retries and a clean stop.

Each job runs in its own task but only sends when the dispatcher admits it: a free slot under the
concurrency limit, then the limiter's pacing and pauses. A freed slot admits the next job at once (no
lockstep batches, no cooldowns). Jobs already sent once (requeued after a quota error, or retrying after
a transient one) are admitted before jobs never sent, so started scenes finish first.

How many to keep in flight (concurrency.py): with a known rate (configured, learned from x-ratelimit-*
headers or from a given CredentialProfile, or inferred from 429s) the level is rate x latency plus a
margin, and a batch starts at what the quota allows at once; with none, a small batch starts all at
once and a larger one slow-starts, growing on admission (a request not refused after a short delay).

Errors, by type:
- TransientError: retried by tenacity with exponential backoff (2 s, 4 s ...), up to max_attempts.
- QuotaError: does not spend an attempt. The job goes back to the head of the queue and the credential
  pauses: Retry-After when given; else until the window frees a slot when the 429 reveals a rolling
  window (inference.py, which then sets the limiter's rate); else a doubling default. Only a 429 that
  looks like a concurrency cap lowers concurrency. 429s from requests sent before the last pause began
  add nothing. A run whose quota waits would pass quota_wait_max_total stops; DailyQuotaError stops it.
- SafetyError, InvalidRequestError: the job fails at once. AuthError too, and the run stops before
  anything else is awaited, since no other job can succeed with that credential.
Hook failures follow the durability contract in hooks.py.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import random
import statistics
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from generation.engine.clock import Clock, LoopClock
from generation.engine.concurrency import AdaptiveConcurrency, rate_target
from generation.engine.config import EngineConfig
from generation.engine.hooks import Hooks, StorageFailure, StoreError
from generation.engine.inference import WindowInference
from generation.engine.jobs import Counters, Failure, Job, Progress, RunResult, StopReason
from generation.engine.limiter import WINDOW_SECONDS, Limiter, make_limiter
from generation.engine.profile import CredentialProfile
from generation.engine.waits import Waits
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
# A Retry-After of 0 (or a rounding crumb) must not turn a wave of 429s into a busy loop (for a 60 s
# window; a test's shorter window scales it).
MIN_QUOTA_WAIT = 0.25
# Waiting for the limiter longer than this is announced through Hooks.pacing (the run is not stuck).
PACING_NOTICE_SECONDS = 1.0
MIN_LATENCY_SAMPLES = 3  # before this many, the profile's latency (if any) stands in
WINDOW_EDGE = 0.8  # with a known rate, a 429 when the window held this share of it is the window's


class Interrupted(Exception):
    """A request still in flight when the grace period after stop() ran out, cancelled."""


class _Stopped(Exception):
    """Unwinds a job's task when the run stops; the job stays resumable."""


class _RecordFailed(TransientError):
    """attempt_started raised: the request was not sent; retried like a transient error."""

    kind = "storage"


@dataclass(eq=False)
class _JobState:
    job: Job
    index: int
    transient_failures: int = 0
    attempts: int = 0  # requests sent in this run
    priority: int = _NEVER_SENT
    level: int = 0  # requests in flight, this one included, when the last one was sent
    sent_at: float = 0.0
    send_number: int = 0
    succeeded: bool = False
    failure: Failure | None = None


def jittered(rng: random.Random, seconds: float, fraction: float) -> float:
    return seconds * rng.uniform(1.0 - fraction, 1.0 + fraction)


def _message(error: BaseException) -> str:
    return getattr(error, "message", None) or str(error) or type(error).__name__


class Scheduler:
    """Runs one batch of jobs against one provider credential. Make a new one per run.

    `profile`: what an earlier run learned about the credential (rate, latency, concurrency); the run
    starts from it, and `profile()` / `RunResult.profile` give the updated one at the end.
    """

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
        profile: CredentialProfile | None = None,
    ) -> None:
        self.provider = provider
        self.config = config or EngineConfig()
        self.clock = clock or LoopClock()
        self.hooks = hooks or Hooks()
        # Pass a shared limiter when several runs use one credential, so they share its quota.
        self.limiter = limiter or make_limiter(self.config, self.clock)
        self._given_concurrency = concurrency is not None
        self.concurrency = concurrency or AdaptiveConcurrency.from_config(self.config)
        self.rng = rng or random.Random()
        self.given_profile = profile
        self.counters = Counters()
        self.waits = Waits()
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
        self._progress_later: asyncio.Task[None] | None = None
        self._progress_at = -math.inf
        self._started_at: float | None = None
        self._pause_set_at = -math.inf
        self._quota_streak = 0
        self._windows = WindowInference(self.limiter.window)  # recognises a rolling window from its 429s
        self._latencies: list[float] = []  # of accepted requests that answered
        self._refusal_latency: float | None = None  # how fast a 429 comes back
        self._min_refused_level = math.inf  # the lowest level a 429 that was not the rate's came at
        self._last_kind = ""
        self._accepted = 0
        self._daily_cap: int | None = None

    # -- the run -------------------------------------------------------------------------------

    async def run(self, jobs: Iterable[Job]) -> RunResult:
        if self._started_at is not None:
            raise RuntimeError("A Scheduler runs once; make a new one for the next run")
        self._started_at = self.clock.now()
        self._states = [_JobState(job, index) for index, job in enumerate(jobs)]
        self._unfinished = len(self._states)
        if not self._states:
            self._finished.set()
        self.limiter.join(self)
        workers: list[asyncio.Task[None]] = []
        try:
            await self._start_from_profile()
            self._dispatcher = asyncio.create_task(self._dispatch())
            workers = [asyncio.create_task(self._run_job(state)) for state in self._states]
            await self._until_done_or_stopped()
            if self._stop_reason is not None:
                await self._emit(self.hooks.run_stopping(self._stop_reason, self._stop_message))
                await self._drain()
            await asyncio.gather(*workers)
        finally:
            self.limiter.leave(self)  # its share goes back to the other runs at once
            # Only does anything when run() itself was cancelled or a bug escaped a worker.
            if self._dispatcher is not None:
                self._dispatcher.cancel()
            if self._progress_later is not None:
                self._progress_later.cancel()  # the last report follows, with the final counts
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

    async def _start_from_profile(self) -> None:
        profile = self.given_profile
        if profile is not None and profile.rate and self.limiter.requests_per_minute is None:
            await self.limiter.learn(RateLimit(limit_requests=max(1, int(profile.rate))))
        if self._given_concurrency:
            return
        count = len(self._states)
        start = self.config.start_concurrency
        if profile is not None and profile.concurrency:
            start = profile.concurrency
        if count <= self.config.small_batch:
            start = count  # a small batch starts at once, unless the known quota says fewer (below)
        self.concurrency = AdaptiveConcurrency.from_config(self.config, start=max(1, start))
        if profile is not None and profile.concurrency_cap:
            self.concurrency.on_quota_error(profile.concurrency_cap + 1)
            self.concurrency.hold_at_least(profile.concurrency_cap)
        self._update_rate_target()

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
            await self._store(state, result)
        await self._progress()

    async def _progress(self) -> None:
        """Report progress after an outcome, at most every `progress_interval`: an outcome inside the
        interval leaves the report to one sent when it is up, with the counts as they are by then."""
        if self._progress_later is not None:
            return
        wait = self._progress_at + self.config.progress_interval - self.clock.now()
        if wait > 0:
            self._progress_later = asyncio.create_task(self._progress_after(wait))
        else:
            await self._report()

    async def _progress_after(self, wait: float) -> None:
        await self.clock.sleep(wait)
        self._progress_later = None
        await self._report()  # not _progress(): a clock short of the deadline by a rounding would loop

    async def _report(self) -> None:
        self._progress_at = self.clock.now()
        await self._emit(self.hooks.progress(self.snapshot()))

    async def _store(self, state: _JobState, result: ImageResult) -> None:
        """The job succeeded only once job_succeeded has stored it (hooks.py)."""
        try:
            await self.hooks.job_succeeded(state.job, result, state.attempts)
        except Exception as error:
            logger.exception("%s: could not store the image", state.job.name)
            self._stop_if_fatal(error)
            await self._fail(state, StorageFailure(f"could not store the image: {_message(error)}"))
            return
        state.succeeded = True
        self.counters.succeeded += 1
        logger.info("%s done after %d attempt(s)", state.job.name, state.attempts)

    def _stop_if_fatal(self, error: BaseException) -> None:
        if isinstance(error, StoreError) and error.fatal:
            self.stop(StopReason.STORAGE, f"The store cannot keep images: {error.message}")

    def _retrying(self, state: _JobState) -> AsyncRetrying:
        # The only retry layer: providers must not retry on their own (an SDK's retries off).
        return AsyncRetrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_after_attempt(max(1, self.config.max_attempts)),
            wait=lambda _: self._backoff(state),
            sleep=self._sleep,
            before_sleep=self._before_retry(state),
            reraise=True,
        )

    def _backoff(self, state: _JobState) -> float:
        nominal = self.config.backoff_base * 2 ** (max(1, state.transient_failures) - 1)
        return jittered(self.rng, nominal, self.config.jitter)

    def _before_retry(self, state: _JobState) -> Callable[[RetryCallState], None]:
        def log(retry_state: RetryCallState) -> None:
            self.counters.retries += 1
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
        attempt_no = state.attempts + 1
        await self._record_attempt(state, attempt_no)
        state.attempts, state.sent_at = attempt_no, self.clock.now()
        self.counters.requests += 1
        state.send_number = self._windows.sent(state.sent_at)
        request = asyncio.create_task(self._call(state.job))
        self._requests.add(request)
        admitted = False
        try:
            done, _ = await asyncio.wait({request}, timeout=self._admission_delay())
            if not done:  # not refused within the admission delay: the provider took it
                admitted = True
                self._on_admitted(state)
                await asyncio.wait({request})
        finally:
            if not request.done():  # run() itself was cancelled
                request.cancel()
            self._requests.discard(request)
            self._release()
        return await self._answer(state, attempt_no, request, admitted)

    async def _record_attempt(self, state: _JobState, attempt_no: int) -> None:
        """No request without its attempt row: a failed record means the request is not sent."""
        try:
            await self.hooks.attempt_started(state.job, attempt_no)
        except Exception as error:
            self._release()
            logger.exception("%s: could not record the attempt", state.job.name)
            self._stop_if_fatal(error)
            raise _RecordFailed(f"could not record the attempt: {_message(error)}") from error
        if self._stop_reason is not None:  # stopped while the row was written: close it, send nothing
            self._release()
            interrupted = Interrupted("Stopped before the request was sent")
            await self._record(self.hooks.attempt_finished(state.job, attempt_no, interrupted, None, 0.0))
            raise _Stopped()

    async def _answer(
        self, state: _JobState, attempt_no: int, request: asyncio.Task[ImageResult], admitted: bool
    ) -> ImageResult:
        error, result = self._outcome(request)
        latency = self.clock.now() - state.sent_at
        if isinstance(error, QuotaError):
            self._windows.refused(state.send_number)
            self._refusal_latency = latency
        elif not isinstance(error, Interrupted):
            self._windows.accepted(state.sent_at)
            self._accepted += 1
            if not admitted:
                self._on_admitted(state)
        await self._record(self.hooks.attempt_finished(state.job, attempt_no, error, result, latency))
        if error is not None:
            logger.warning("%s attempt %d failed: %s", state.job.name, attempt_no, error)
            raise error
        assert result is not None
        self._latencies.append(latency)
        return result

    async def _call(self, job: Job) -> ImageResult:
        timeout = self.config.request_timeout
        try:
            async with asyncio.timeout(timeout):
                return await self.provider.generate(job.request)
        except TimeoutError:
            raise TransientError(f"No answer after {timeout:g}s") from None
        except AuthError as error:
            # Here, in the request's own task: nothing else may be sent with a refused key.
            self.stop(StopReason.AUTH, f"The provider refused the credential: {error.message}")
            raise
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
        self.counters.failed += 1
        if isinstance(error, TransientError) and not isinstance(error, _RecordFailed):
            logger.warning("Skipping %s after %d failed attempts", state.job.name, state.transient_failures)
        else:
            logger.warning("Skipping %s: %s (%s)", state.job.name, error.message, error.kind)
        await self._record(self.hooks.job_failed(state.job, error, state.attempts))

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
        """Take a send slot from the limiter; a wait long enough for a person to notice is announced,
        and every second of it is counted (as a quota wait while a pause holds, else as pacing)."""
        self.waits.pacing_started(self.clock.now())
        acquire = asyncio.ensure_future(self.limiter.acquire())
        try:
            done, _ = await asyncio.wait({acquire}, timeout=PACING_NOTICE_SECONDS)
            # A quota pause holds the limiter too, but it was announced as a quota wait already.
            if not done and not self.waits.paused(self.clock.now()):
                rate = self.limiter.requests_per_minute
                await self._emit(self.hooks.pacing(self.limiter.next_send_in(), rate))
            await acquire
        finally:
            acquire.cancel()  # only does anything when the dispatcher itself is cancelled (a stop)
            self.waits.pacing_ended(self.clock.now())

    def _release(self) -> None:
        self._in_flight -= 1
        self._wake.set()

    def _admission_delay(self) -> float:
        if self._refusal_latency is None:
            return self.config.admission_delay
        return max(self.config.admission_factor * self._refusal_latency, 1e-3)

    def _on_admitted(self, state: _JobState) -> None:
        self.concurrency.on_admitted()
        self._wake.set()

    # -- feedback --------------------------------------------------------------------------------

    async def _on_success(self, result: ImageResult) -> None:
        self._quota_streak = 0
        self.concurrency.on_success()
        if result.rate_limit is not None:
            await self.limiter.learn(result.rate_limit)
        self._update_rate_target()
        self._wake.set()

    def _update_rate_target(self) -> None:
        """With a known rate, the in-flight level is the quota's share x latency (Little's law)."""
        if self._given_concurrency:
            return
        rate = self.limiter.requests_per_minute
        if rate is None:
            self.concurrency.set_rate_target(None)
            return
        share = rate / self.limiter.runs()
        if self.config.limiter == "bucket":
            burst = max(1, (self.config.bucket_burst or 1) // self.limiter.runs())
        else:
            burst = max(1, int(share))
        target = rate_target(
            rate=share,
            window=self.limiter.window,
            latency=self._latency(self.config.latency_percentile),
            margin=self.config.concurrency_margin,
            burst=burst,
            remaining=max(1, len(self._states)),
        )
        self.concurrency.set_rate_target(target)

    def _latency(self, percentile: float | None = None) -> float | None:
        """Observed latency of accepted requests (mean, or a percentile), else the profile's."""
        samples = self._latencies
        profile = self.given_profile
        if len(samples) < MIN_LATENCY_SAMPLES and profile is not None and profile.latency_mean:
            return profile.latency_mean if percentile is None else profile.latency_p90 or profile.latency_mean
        if not samples:
            return None
        if percentile is None:
            return statistics.fmean(samples)
        ordered = sorted(samples)
        return ordered[min(len(ordered) - 1, int(percentile * len(ordered)))]

    async def _on_quota(self, state: _JobState, error: QuotaError) -> None:
        self.counters.quota_errors += 1
        if error.rate_limit is not None:
            await self.limiter.learn(error.rate_limit)
            self._update_rate_target()
        if isinstance(error, DailyQuotaError):
            self._daily_cap = self._accepted
            self.stop(StopReason.DAILY_QUOTA, f"The provider's daily quota is spent: {error.message}")
        if self._stop_reason is not None:
            raise _Stopped()
        if state.sent_at < self._pause_set_at:
            # Sent before the last pause began: that pause and decrease already answer this 429.
            if self._last_kind != "rate":
                self._min_refused_level = min(self._min_refused_level, state.level)
            return
        kind = self._last_kind = await self._classify(state, error)
        if kind != "rate":
            self._min_refused_level = min(self._min_refused_level, state.level)
            self.concurrency.on_quota_error(state.level)
        await self._pause(error, kind)

    async def _classify(self, state: _JobState, error: QuotaError) -> str:
        """ "rate" (a rolling window is full: its rate is learned), "concurrency" (a cap: requests in
        flight must end first) or "unknown"."""
        known = self.limiter.requests_per_minute
        full = known is not None and self._windows.held(state.send_number) >= WINDOW_EDGE * known
        if full and state.level < self._min_refused_level:
            # The window was (nearly) full by our own log, at a level no cap refused: its edge (the
            # server stamps sends a little later than we do, or someone else uses the key).
            return "rate"
        if error.retry_after is not None:
            rate = self._windows.infer(state.send_number, error.retry_after)
            if rate is not None:
                await self._adopt_rate(rate, known)
                return "rate"
            return "unknown"
        rate = self._windows.infer_hidden(
            state.send_number, level=state.level, refused_level=self._min_refused_level
        )
        if rate is not None:
            await self._adopt_rate(rate, known)
            return "rate"
        return "concurrency" if state.level > 1 else "unknown"

    async def _adopt_rate(self, rate: int, known: float | None) -> None:
        if known is None or rate < known:
            logger.info("Quota looks like %d requests a window; pacing to it", rate)
            await self.limiter.learn(RateLimit(limit_requests=rate))
            self._update_rate_target()

    async def _pause(self, error: QuotaError, kind: str) -> None:
        now = self.clock.now()
        self._pause_set_at = now
        shortest = MIN_QUOTA_WAIT * self.limiter.window / WINDOW_SECONDS
        if error.retry_after is not None:
            seconds = max(shortest, error.retry_after)
        elif kind == "concurrency":
            return  # the lowered limit holds dispatch until requests in flight end
        elif kind == "rate" and self.limiter.next_send_in() > 0:
            seconds = max(shortest, self.limiter.next_send_in())  # until the window frees a slot
        else:
            self._quota_streak += 1
            nominal = self.config.quota_wait_default * 2 ** (self._quota_streak - 1)
            seconds = jittered(self.rng, nominal, self.config.jitter)
        if error.retry_after is not None or kind == "rate":
            self._quota_streak += 1
        until = now + seconds
        extension = max(0.0, until - max(now, self.waits.pause_end))
        budget = self.config.quota_wait_max_total
        if self.waits.quota_planned + extension > budget:
            self.stop(
                StopReason.QUOTA_WAIT_EXCEEDED,
                f"Quota waits would pass {budget:g}s in total ({self.waits.quota_planned:.0f}s so far); "
                "the scenes left can resume later",
            )
            raise _Stopped()
        self.waits.pause(now, until)
        await self.limiter.pause_until(until)
        logger.warning("Quota limit - waiting %gs", round(seconds, 1))
        await self._emit(self.hooks.quota_wait(seconds, until, self._quota_streak, error))
        await self._emit(self.hooks.progress(self.snapshot()))

    # -- reporting -------------------------------------------------------------------------------

    def snapshot(self) -> Progress:
        now = self.clock.now()
        counters = self._counters(now)
        remaining = len(self._states) - counters.succeeded - counters.failed
        return Progress(
            total=len(self._states),
            succeeded=counters.succeeded,
            failed=counters.failed,
            in_flight=self._in_flight,
            remaining=remaining,
            concurrency=self.concurrency.limit,
            requests=counters.requests,
            retries=counters.retries,
            quota_errors=counters.quota_errors,
            elapsed=now - (self._started_at if self._started_at is not None else now),
            eta_seconds=self._eta(remaining, now),
            paused_until=self.waits.pause_end if self.waits.paused(now) else None,
            quota_wait_seconds=counters.quota_wait_seconds,
            pacing_seconds=counters.pacing_seconds,
        )

    def _counters(self, now: float) -> Counters:
        counters = Counters(**vars(self.counters))
        counters.quota_wait_seconds = self.waits.quota_seconds(now)
        counters.pacing_seconds = self.waits.pacing_seconds(now)
        return counters

    def _eta(self, remaining: int, now: float) -> float | None:
        """From the pacing plan: the pool's pace, the quota's, and any pause still to sit out."""
        latency = self._latency()
        if latency is None or not remaining:
            return None if latency is None else 0.0
        eta = remaining * latency / self.concurrency.limit
        rate = self.limiter.requests_per_minute
        to_send = max(0, remaining - self._in_flight)
        if rate and to_send:
            share = rate / self.limiter.runs()
            paced = self.limiter.next_send_in() + (to_send - 1) * self.limiter.window / share + latency
            eta = max(eta, paced)
        return eta + max(0.0, self.waits.pause_end - now)

    def profile(self) -> CredentialProfile:
        """What this run knows about its credential now, over what it was given."""
        given = self.given_profile or CredentialProfile(window=self.limiter.window)
        failed = self.concurrency.failed_level
        samples = len(self._latencies)
        return CredentialProfile(
            rate=self.limiter.requests_per_minute or given.rate,
            window=self.limiter.window,
            concurrency=self.concurrency.limit,
            concurrency_cap=(failed - 1) if failed is not None and failed > 1 else given.concurrency_cap,
            latency_mean=self._latency() if samples else given.latency_mean,
            latency_p90=self._latency(0.9) if samples else given.latency_p90,
            latency_samples=samples or given.latency_samples,
            daily_cap=self._daily_cap if self._daily_cap is not None else given.daily_cap,
        )

    def _result(self) -> RunResult:
        result = RunResult(
            stop_reason=self._stop_reason or StopReason.COMPLETED,
            stop_message=self._stop_message,
            counters=self._counters(self.clock.now()),
            elapsed=self.clock.now() - (self._started_at or 0.0),
            profile=self.profile(),
        )
        for state in self._states:
            key = state.job.key
            if state.succeeded:
                result.succeeded.append(key)
            elif state.failure is not None:
                result.failed[key] = state.failure
            elif not state.attempts:
                result.not_attempted.append(key)
        return result

    async def _record(self, call: Awaitable[None]) -> None:
        """A record whose failure cannot undo what happened: logged; a fatal StoreError stops the run."""
        try:
            await call
        except Exception as error:
            logger.exception("A scheduler hook could not record an outcome")
            self._stop_if_fatal(error)

    @staticmethod
    async def _emit(call: Awaitable[None]) -> None:
        """An event: droppable, so a failure is logged and swallowed."""
        try:
            await call
        except Exception:
            logger.exception("A scheduler event hook failed; the run goes on")
