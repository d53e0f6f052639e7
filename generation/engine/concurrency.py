"""How many requests to keep in flight.

Two sources, the better one wins:
- a known rate r (configured, learned from headers, inferred from 429s): Little's law says r x L
  requests in flight saturate it, so the target is r x (a high percentile of latency) plus a margin
  (`set_rate_target`); the limiter paces the sends, the target only has to be high enough;
- no known rate: found by feel, as TCP finds its window:
  - slow start: +1 per request admitted, so it grows per admission delay, not per round trip (a refusal
    comes back in a fraction of a second while an admitted request runs for its full latency). What one
    delay admits is what was sent the delay before, so the window grows by about `start` per delay, not
    twofold (5 to 100 in under 10 s at the defaults), with no cap but the safety ceiling `maximum`;
  - then +1 per round trip (1/level per success) and a multiplicative decrease on each concurrency error;
  - a level that failed is only probed again after a streak of successes that doubles with every failed
    probe, so a hard cap of 3 costs a handful of 429s per run instead of one every few requests.
Once a concurrency error revealed a cap, the limit never passes it, whatever the rate allows.
"""

from __future__ import annotations

import math

from generation.engine.config import EngineConfig

DECREASE = 0.7  # as TCP CUBIC: halving would idle a 3-slot provider for a round trip per probe
FIRST_PROBE_ROUNDS = 2  # first re-probe of a failed level after 2 rounds of successes below it
MAX_PROBE_GAP = 256  # successes; bounds how long a raised provider limit goes unnoticed


class AdaptiveConcurrency:
    def __init__(self, *, start: int, minimum: int, maximum: int, grow_on_admission: bool = False) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self._window = float(start)
        self.slow_start = True
        # Slow start counts admissions (on_admitted) instead of successes.
        self.grow_on_admission = grow_on_admission
        # The lowest level (requests in flight) at which a concurrency error came back, and how many
        # successes in a row to see below it before trying it again.
        self.failed_level: int | None = None
        self._probe_gap = 0
        self._streak = 0
        self.rate_target: int | None = None  # from a known rate, see set_rate_target

    @classmethod
    def from_config(cls, config: EngineConfig, *, start: int | None = None) -> AdaptiveConcurrency:
        start = config.start_concurrency if start is None else start
        return cls(
            start=max(config.min_concurrency, min(config.max_concurrency, start)),
            minimum=config.min_concurrency,
            maximum=config.max_concurrency,
            grow_on_admission=True,
        )

    @property
    def limit(self) -> int:
        if self.rate_target is not None:
            # The rate sets the level; slow start's window only still matters as a found cap.
            level = self.rate_target if self.failed_level is None else min(self.rate_target, self._window)
        else:
            level = self._window
        return max(self.minimum, min(self.maximum, int(level)))

    def set_rate_target(self, target: int | None) -> None:
        """The level a known quota needs (r x L + margin); None when the rate is unknown again."""
        self.rate_target = target
        if target is not None and self.failed_level is None:
            self.slow_start = False
            self._window = float(min(self.maximum, target))

    def on_admitted(self) -> None:
        """A request was not refused within the admission delay: slow start grows by one."""
        if self.grow_on_admission and self.slow_start and self.rate_target is None:
            self._grow_to(self._window + 1)

    def on_success(self) -> None:
        if self.slow_start:
            if not self.grow_on_admission:
                self._grow_to(self._window + 1)
        elif self.failed_level is not None and self.limit + 1 >= self.failed_level:
            self._streak += 1
            if self._streak >= self._probe_gap:
                self._streak = 0
                self._grow_to(self._window_level() + 1)
        else:
            self._grow_to(self._window + 1 / self._window)

    def on_quota_error(self, level: int) -> None:
        """A request sent while `level` requests (itself included) were in flight got a concurrency
        error (or a quota error that could be one)."""
        self.slow_start = False
        if self.failed_level is not None and level >= self.failed_level:
            self._probe_gap = min(MAX_PROBE_GAP, self._probe_gap * 2)
        else:
            self.failed_level = level
            self._probe_gap = FIRST_PROBE_ROUNDS * level
        self._streak = 0
        self._window = max(float(self.minimum), min(self._window, level) * DECREASE)

    def hold_at_least(self, accepted: int) -> None:
        """`accepted` requests ran at once without a refusal: a cap is not below that."""
        if self.failed_level is not None:
            accepted = min(accepted, self.failed_level - 1)
        self._window = max(self._window, float(min(self.maximum, accepted)))

    def _window_level(self) -> int:
        return max(self.minimum, min(self.maximum, int(self._window)))

    def _grow_to(self, window: float) -> None:
        self._window = min(float(self.maximum), window)


def rate_target(
    *, rate: float, window: float, latency: float | None, margin: float, burst: int, remaining: int
) -> int:
    """Requests in flight that keep a quota of `rate` per `window` busy: Little's law (r x L plus a
    margin), and never fewer than the quota allows at once (`burst`: a rolling window's whole quota), so
    a window's slots are used as soon as they free; never more than there are jobs."""
    wanted = burst + 2
    if latency is not None:
        wanted = max(wanted, math.ceil(rate / window * latency * (1 + margin)) + 2)
    return max(1, min(wanted, remaining))
