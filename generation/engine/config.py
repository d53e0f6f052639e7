"""Every tunable of the batch engine in one place, with per-run overrides from a plain mapping."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

LIMITERS = ("window", "bucket")


@dataclass(frozen=True)
class EngineConfig:
    # Adaptive concurrency: slow start from `start`, never outside [min, max]. The working point comes
    # from the quota (Little's law: rate x latency in flight) or from slow start; `max` is only a safety
    # ceiling, high enough for a 50/min quota at 45 s (about 38 in flight) with room to spare.
    start_concurrency: int = 5
    min_concurrency: int = 1
    max_concurrency: int = 128
    # A batch of at most this many jobs starts all at once, unless a known quota allows fewer at once.
    small_batch: int = 20
    # A request not refused this long after it was sent counts as admitted (slow start grows on it),
    # until a quota error shows how fast refusals come back (then admission_factor x that latency).
    admission_delay: float = 0.5
    admission_factor: float = 3.0
    # With a known rate r, the in-flight target is r x (this percentile of latency) x (1 + margin) + 2.
    latency_percentile: float = 0.9
    concurrency_margin: float = 0.2
    # Requests per quota window per credential; None = unknown: no pacing until the limit is learned
    # (x-ratelimit-* headers, or inferred from the first quota errors).
    requests_per_minute: float | None = None
    # The quota's window: a minute for every real API (tests shorten it along with a fake server's).
    rate_window_seconds: float = 60.0
    # "window" mirrors a rolling 60 s window (a sliding log, reaches the bound in simulation);
    # "bucket" is a token bucket for providers whose quota is a bucket.
    limiter: str = "window"
    # Token-bucket capacity; None = 1 token, i.e. even pacing with no burst.
    bucket_burst: int | None = None
    # Transient errors (5xx, timeouts): attempts per job and backoff (base, 2x base, ...).
    max_attempts: int = 3
    backoff_base: float = 2.0
    # Each wait is drawn uniformly within +-jitter of its nominal length, so retries spread out.
    jitter: float = 0.2
    # Quota errors without Retry-After wait this long, doubling while they keep coming.
    quota_wait_default: float = 15.0
    # Quota waiting beyond this total ends the run (the scenes left can resume later).
    quota_wait_max_total: float = 600.0
    # After stop(), requests in flight get this long to finish before they are cancelled.
    grace_timeout: float = 30.0
    # A request with no answer after this long counts as a transient failure.
    request_timeout: float = 90.0
    # Progress after outcomes is reported at most this often (seconds): outcomes coming closer together
    # share one report, sent when the interval is up with the counts as they are then. 0 reports each.
    progress_interval: float = 0.1

    def __post_init__(self) -> None:
        problems = self._problems()
        if problems:
            raise ValueError(f"Invalid engine config: {'; '.join(problems)}")

    def _problems(self) -> list[str]:
        problems = []
        if not 1 <= self.min_concurrency <= self.start_concurrency <= self.max_concurrency:
            problems.append(
                "need 1 <= min_concurrency <= start_concurrency <= max_concurrency, got "
                f"{self.min_concurrency}, {self.start_concurrency}, {self.max_concurrency}"
            )
        if self.small_batch < 0:
            problems.append(f"small_batch must not be negative, got {self.small_batch}")
        if not 0 < self.latency_percentile <= 1:
            problems.append(f"latency_percentile must be in (0, 1], got {self.latency_percentile}")
        if not self.rate_window_seconds > 0:
            problems.append(f"rate_window_seconds must be positive, got {self.rate_window_seconds}")
        if self.requests_per_minute is not None and not self.requests_per_minute > 0:
            problems.append(f"requests_per_minute must be positive or None, got {self.requests_per_minute}")
        if self.limiter not in LIMITERS:
            problems.append(f"limiter must be one of {', '.join(LIMITERS)}, got {self.limiter!r}")
        if self.bucket_burst is not None and self.bucket_burst < 1:
            problems.append(f"bucket_burst must be at least 1 or None, got {self.bucket_burst}")
        if self.max_attempts < 1:
            problems.append(f"max_attempts must be at least 1, got {self.max_attempts}")
        if not 0 <= self.jitter < 1:
            problems.append(f"jitter must be in [0, 1), got {self.jitter}")
        for name in (
            "backoff_base",
            "quota_wait_default",
            "quota_wait_max_total",
            "grace_timeout",
            "admission_delay",
            "admission_factor",
            "concurrency_margin",
        ):
            if getattr(self, name) < 0:
                problems.append(f"{name} must not be negative, got {getattr(self, name)}")
        if not self.request_timeout > 0:
            problems.append(f"request_timeout must be positive, got {self.request_timeout}")
        return problems

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, base: EngineConfig | None = None) -> EngineConfig:
        """Override `base` (default: the defaults) with `values`, e.g. a run's JSON options.

        Unknown keys and values of the wrong type raise ValueError naming the key.
        """
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise ValueError(f"Unknown engine setting(s): {', '.join(unknown)}; known: {', '.join(fields)}")
        base = base or cls()
        changes = {name: _coerce(name, value) for name, value in values.items()}
        return dataclasses.replace(base, **changes)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce(name: str, value: Any) -> Any:
    """Accept JSON-ish values: ints for floats, None only where None is allowed."""
    nullable = name in ("requests_per_minute", "bucket_burst")
    if value is None:
        if nullable:
            return None
        raise ValueError(f"Engine setting {name} cannot be empty")
    if name == "limiter":
        if not isinstance(value, str):
            raise ValueError(f"Engine setting limiter must be a string, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"Engine setting {name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"Engine setting {name} must be finite, got {value!r}")
    if name in _INT_FIELDS:
        if value != int(value):
            raise ValueError(f"Engine setting {name} must be a whole number, got {value!r}")
        return int(value)
    return float(value)


_INT_FIELDS = frozenset(
    {"start_concurrency", "min_concurrency", "max_concurrency", "bucket_burst", "max_attempts", "small_batch"}
)
