"""Quota bookkeeping for the fake server: a rolling requests-per-window limit, a per-day budget and a
concurrency cap, each per provider and key, as real APIs count them per credential."""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from generation.fakeprovider.config import FakeConfig


@dataclass
class _Bucket:
    window: deque[float] = field(default_factory=deque)
    in_flight: int = 0
    used: int = 0  # towards the daily limit
    day_started: float | None = None  # when the current daily window began (daily_window_seconds)


@dataclass(frozen=True)
class Verdict:
    outcome: str  # "ok", "daily_quota", "quota" (rpm window) or "concurrency"
    retry_after: float | None = None  # seconds, already scaled
    limit: int | None = None
    remaining: int | None = None
    reset: float | None = None  # seconds until the oldest request leaves the window


def told(verdict: Verdict, config: FakeConfig, flavor: str) -> Verdict:
    """The verdict as the server tells it: without what the config omits for this flavor."""
    if config.omits("retry_after", flavor):
        verdict = dataclasses.replace(verdict, retry_after=None)
    if config.omits("rate_headers", flavor):
        verdict = dataclasses.replace(verdict, limit=None, remaining=None, reset=None)
    return verdict


class Limits:
    def __init__(self, config: Callable[[], FakeConfig], clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()

    def admit(self, provider: str, key: str) -> Verdict:
        """Admit one request or say why not; an admitted request must be released()."""
        config = self._config()
        with self._lock:
            bucket = self._buckets.setdefault((provider, key), _Bucket())
            now = self._clock()
            window = config.scaled(config.window_seconds)
            while bucket.window and bucket.window[0] <= now - window:
                bucket.window.popleft()
            day_reset = self._new_day(config, bucket, now)
            if config.daily_exhausted or (
                config.daily_limit is not None and bucket.used >= config.daily_limit
            ):
                return Verdict("daily_quota", retry_after=config.scaled(20.0), reset=day_reset)
            if config.rpm is not None and len(bucket.window) >= config.rpm:
                wait = bucket.window[0] + window - now
                return Verdict("quota", retry_after=wait, limit=config.rpm, remaining=0, reset=wait)
            if config.max_concurrent is not None and bucket.in_flight >= config.max_concurrent:
                return Verdict(
                    "concurrency", retry_after=config.scaled(1.0), **self._usage(config, bucket, now)
                )
            bucket.window.append(now)
            bucket.used += 1
            bucket.in_flight += 1
            return Verdict("ok", **self._usage(config, bucket, now))

    @staticmethod
    def _new_day(config: FakeConfig, bucket: _Bucket, now: float) -> float | None:
        """Start the daily count over once its window passed; seconds to the next reset (or None)."""
        if config.daily_window_seconds is None:
            return None
        day = config.scaled(config.daily_window_seconds)
        if bucket.day_started is None or now - bucket.day_started >= day:
            bucket.day_started, bucket.used = now, 0
        return bucket.day_started + day - now

    def release(self, provider: str, key: str) -> None:
        with self._lock:
            bucket = self._buckets.get((provider, key))
            if bucket is not None:  # None when a reset() came while the request was in flight
                bucket.in_flight = max(0, bucket.in_flight - 1)

    def in_flight(self, provider: str | None = None) -> int:
        with self._lock:
            return sum(b.in_flight for (p, _), b in self._buckets.items() if provider in (None, p))

    def _usage(self, config: FakeConfig, bucket: _Bucket, now: float) -> dict:
        if config.rpm is None:
            return {}
        window = config.scaled(config.window_seconds)
        reset = bucket.window[0] + window - now if bucket.window else 0.0
        return {"limit": config.rpm, "remaining": max(0, config.rpm - len(bucket.window)), "reset": reset}


def pick_fault(config: FakeConfig, rng: random.Random) -> str | None:
    """The fault for this request: the next queued one, else a draw from the configured rates."""
    if config.fail_next:
        try:
            return config.fail_next.pop(0)
        except IndexError:  # another thread took the last one
            return None
    if not config.faults:
        return None
    draw = rng.random()
    for name, rate in config.faults.items():
        draw -= rate
        if draw < 0:
            return name
    return None
