"""How many requests to keep in flight: AIMD with slow start and probe backoff.

Providers rarely publish their concurrency cap, and a rate quota acts like one (Little's law: r * L requests
in flight saturate it), so the level is found by feel, the way TCP finds its window:
- slow start: +1 per success (doubling per round trip) until the first quota error;
- then +1 per round trip (1/level per success) and a multiplicative decrease on each quota error;
- a level that failed is only probed again after a streak of successes that doubles with every failed
  probe, so a hard cap of 3 costs a handful of 429s per run instead of one every few requests.
"""

from __future__ import annotations

from generation.engine.config import EngineConfig

DECREASE = 0.7  # as TCP CUBIC: halving would idle a 3-slot provider for a round trip per probe
FIRST_PROBE_ROUNDS = 2  # first re-probe of a failed level after 2 rounds of successes below it
MAX_PROBE_GAP = 256  # successes; bounds how long a raised provider limit goes unnoticed


class AdaptiveConcurrency:
    def __init__(self, *, start: int, minimum: int, maximum: int) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self._window = float(start)
        self.slow_start = True
        # The lowest level (requests in flight) at which a quota error came back, and how many
        # successes in a row to see below it before trying it again.
        self.failed_level: int | None = None
        self._probe_gap = 0
        self._streak = 0

    @classmethod
    def from_config(cls, config: EngineConfig) -> AdaptiveConcurrency:
        return cls(
            start=config.start_concurrency,
            minimum=config.min_concurrency,
            maximum=config.max_concurrency,
        )

    @property
    def limit(self) -> int:
        return max(self.minimum, min(self.maximum, int(self._window)))

    def on_success(self) -> None:
        if self.slow_start:
            self._grow_to(self._window + 1)
        elif self.failed_level is not None and self.limit + 1 >= self.failed_level:
            self._streak += 1
            if self._streak >= self._probe_gap:
                self._streak = 0
                self._grow_to(self.limit + 1)
        else:
            self._grow_to(self._window + 1 / self._window)

    def on_quota_error(self, level: int) -> None:
        """A request sent while `level` requests (itself included) were in flight got a quota error."""
        self.slow_start = False
        if self.failed_level is not None and level >= self.failed_level:
            self._probe_gap = min(MAX_PROBE_GAP, self._probe_gap * 2)
        else:
            self.failed_level = level
            self._probe_gap = FIRST_PROBE_ROUNDS * level
        self._streak = 0
        self._window = max(float(self.minimum), min(self._window, level) * DECREASE)

    def _grow_to(self, window: float) -> None:
        self._window = min(float(self.maximum), window)
