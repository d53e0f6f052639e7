"""Per-credential request pacing, quota pauses and fair sharing between runs.

One limiter guards one credential (requests sharing an API key share its quota). This module holds the
in-process implementations; a Redis-backed one shared across processes implements the same `Limiter`
protocol (generation/quota/redis.py), which is why the waiting methods are async.

Fair sharing: every run using the limiter `join`s it and `leave`s at its end; `runs()` tells each how
many share the quota, so each sizes its concurrency to its share, and sends are granted first come,
first served (each scheduler asks for one send at a time, so turns alternate between runs).
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from typing import Protocol

from generation.engine.clock import Clock
from generation.engine.config import EngineConfig
from generation.providers.base import RateLimit

WINDOW_SECONDS = 60.0  # the default quota window; EngineConfig.rate_window_seconds sets a limiter's
MIN_WAIT = 1e-6  # pacing waits are at least this long, so the clock moves past float rounding


class Limiter(Protocol):
    # Requests allowed per `window` seconds (the name says "minute": the window is one for real APIs);
    # None while the quota is unknown.
    requests_per_minute: float | None
    window: float

    async def acquire(self) -> None:
        """Wait until one request may be sent (pacing, any pause, and the turn of other runs), then
        count it as sent. Cancelling the awaiting task interrupts the wait and counts nothing."""

    async def pause_until(self, until: float) -> None:
        """Hold all dispatch to this credential until clock time `until` (never shortens a pause)."""

    async def learn(self, rate: RateLimit) -> None:
        """Adopt what the provider said (or the scheduler inferred) about its quota."""

    def next_send_in(self) -> float:
        """Seconds until acquire() would let a request go, for telling people why nothing is sent."""

    def join(self, run: object) -> None:
        """`run` now sends with this credential: it gets an equal share of the quota."""

    def leave(self, run: object) -> None:
        """`run` is done: its share goes back to the others at once."""

    def runs(self) -> int:
        """How many runs share the quota now (at least 1)."""


class FairShares:
    """Join/leave bookkeeping, for limiters that only share within this process."""

    def __init__(self) -> None:
        self._runs: set[int] = set()

    def join(self, run: object) -> None:
        self._runs.add(id(run))

    def leave(self, run: object) -> None:
        self._runs.discard(id(run))

    def runs(self) -> int:
        return max(1, len(self._runs))


class _LocalLimiter(FairShares):
    def __init__(self, clock: Clock, requests_per_minute: float | None, *, window: float) -> None:
        super().__init__()
        self.clock = clock
        self.requests_per_minute = requests_per_minute
        self.window = window
        self.paused_until = -math.inf
        # Waiting acquirers in arrival order, with their loop (a ticket of a closed loop is dropped).
        self._queue: deque[tuple[object, asyncio.AbstractEventLoop]] = deque()

    async def acquire(self) -> None:
        ticket = (object(), asyncio.get_running_loop())
        self._queue.append(ticket)
        try:
            # Re-check after every sleep: a pause may have been extended or the rate learned meanwhile.
            while True:
                now = self.clock.now()
                wait = self._wait(now)
                if self._head() is ticket:
                    if wait <= 0:
                        self._record(now)
                        return
                    await self.clock.sleep(wait)
                else:
                    # Not our turn: the head takes the next slot; look again once it may have.
                    await self.clock.sleep(max(wait, MIN_WAIT))
        finally:
            self._queue.remove(ticket)

    def _head(self) -> object:
        while self._queue and self._queue[0][1].is_closed():
            self._queue.popleft()
        return self._queue[0] if self._queue else None

    def _wait(self, now: float) -> float:
        # A pause within a microsecond of its end counts as over: asyncio fires timers that close
        # early, so sleeping off a float crumb would spin without the clock moving.
        pause = self.paused_until - now
        return max(pause if pause > MIN_WAIT else 0.0, self._pacing_wait(now))

    async def pause_until(self, until: float) -> None:
        self.paused_until = max(self.paused_until, until)

    def next_send_in(self) -> float:
        now = self.clock.now()
        return max(self.paused_until - now, self._pacing_wait(now), 0.0)

    async def learn(self, rate: RateLimit) -> None:
        # Only the limit is adopted: remaining/reset mean different things for windows and buckets, and
        # the Retry-After of a 429 already says how long to hold off.
        if rate.limit_requests and rate.limit_requests != self.requests_per_minute:
            self._set_rate(float(rate.limit_requests))

    def _set_rate(self, requests_per_minute: float) -> None:
        self.requests_per_minute = requests_per_minute

    def _pacing_wait(self, now: float) -> float:
        raise NotImplementedError

    def _record(self, now: float) -> None:
        raise NotImplementedError


class SlidingWindowLimiter(_LocalLimiter):
    """A log of send times mirroring the server's rolling window: at most R sends in any window.

    Runs at 100% of the quota: in simulation this reached the bound where a bucket at 60% lost 1.8x.
    """

    def __init__(
        self,
        clock: Clock,
        requests_per_minute: float | None,
        *,
        window: float = WINDOW_SECONDS,
        margin: float = 0.0,
    ) -> None:
        super().__init__(clock, requests_per_minute, window=window)
        # A server stamps a send when it arrives, a little after we do: a margin keeps a send that
        # goes the instant a slot frees in our log from landing before it frees in the server's.
        self.margin = margin
        self._sent: deque[float] = deque()

    def _pacing_wait(self, now: float) -> float:
        # Same comparison as a server counting sends in (now - window, now].
        while self._sent and now - self._sent[0] >= self.window:
            self._sent.popleft()
        if self.requests_per_minute is None:
            return 0.0
        limit = max(1, int(self.requests_per_minute))
        if len(self._sent) < limit:
            return 0.0
        # At least one tick: in floating point, s + window - now can be <= 0 while now - s < window.
        return max(MIN_WAIT, self._sent[len(self._sent) - limit] + self.window + self.margin - now)

    def _record(self, now: float) -> None:
        # Kept even while the quota is unknown, so a limit learned later starts from the true history.
        self._sent.append(now)


class TokenBucketLimiter(_LocalLimiter):
    """Tokens refill at R per window up to `burst`; for providers whose quota is a bucket."""

    def __init__(
        self,
        clock: Clock,
        requests_per_minute: float | None,
        *,
        burst: int = 1,
        window: float = WINDOW_SECONDS,
    ) -> None:
        super().__init__(clock, requests_per_minute, window=window)
        self.burst = burst
        self._tokens = float(burst)
        self._updated: float | None = None

    def _refill(self, now: float) -> None:
        if self._updated is not None and self.requests_per_minute is not None:
            gained = (now - self._updated) * self.requests_per_minute / self.window
            self._tokens = min(float(self.burst), self._tokens + gained)
        self._updated = now

    def _pacing_wait(self, now: float) -> float:
        self._refill(now)
        if self.requests_per_minute is None or self._tokens >= 1.0:
            return 0.0
        return max(MIN_WAIT, (1.0 - self._tokens) * self.window / self.requests_per_minute)

    def _record(self, now: float) -> None:
        if self.requests_per_minute is not None:
            self._tokens -= 1.0

    def _set_rate(self, requests_per_minute: float) -> None:
        self._refill(self.clock.now())
        super()._set_rate(requests_per_minute)


def make_limiter(
    config: EngineConfig, clock: Clock, *, window: float | None = None
) -> SlidingWindowLimiter | TokenBucketLimiter:
    """The limiter `config` asks for; `window` overrides config.rate_window_seconds."""
    window = config.rate_window_seconds if window is None else window
    if config.limiter == "bucket":
        return TokenBucketLimiter(
            clock, config.requests_per_minute, burst=config.bucket_burst or 1, window=window
        )
    return SlidingWindowLimiter(clock, config.requests_per_minute, window=window)
