"""Every second a run waits, counted while it happens: quota pauses and self-pacing, kept apart.

A quota pause (after a 429) holds all dispatch until a clock time; pacing is the dispatcher waiting for
the limiter while jobs are ready (the run holds itself to the quota, or waits its turn on a shared
key). Time spent in a quota pause never counts as pacing too.
"""

from __future__ import annotations

import math


class Waits:
    def __init__(self) -> None:
        self.pause_start = -math.inf
        self.pause_end = -math.inf
        self._quota_closed = 0.0  # pauses that ended before the current one began
        self.quota_planned = 0.0  # the pauses' full lengths when set, for the wait budget
        self._pacing_closed = 0.0
        self._pacing_since: float | None = None
        self._quota_at_pacing_start = 0.0

    def pause(self, now: float, until: float) -> float:
        """Hold dispatch until `until`; returns how much this adds to the pauses already set."""
        extension = max(0.0, until - max(now, self.pause_end))
        if now >= self.pause_end:  # the last pause is over: a new one starts now
            self._quota_closed += self._pause_length()
            self.pause_start = now
        self.pause_end = max(self.pause_end, until)
        self.quota_planned += extension
        return extension

    def paused(self, now: float) -> bool:
        return self.pause_end > now

    def quota_seconds(self, now: float) -> float:
        current = min(now, self.pause_end) - self.pause_start if self.pause_start <= now else 0.0
        return self._quota_closed + max(0.0, current)

    def pacing_started(self, now: float) -> None:
        self._pacing_since = now
        self._quota_at_pacing_start = self.quota_seconds(now)

    def pacing_ended(self, now: float) -> None:
        self._pacing_closed += self._pacing_open(now)
        self._pacing_since = None

    def pacing_seconds(self, now: float) -> float:
        return self._pacing_closed + self._pacing_open(now)

    def _pacing_open(self, now: float) -> float:
        if self._pacing_since is None:
            return 0.0
        paused = self.quota_seconds(now) - self._quota_at_pacing_start
        return max(0.0, now - self._pacing_since - paused)

    def _pause_length(self) -> float:
        return max(0.0, self.pause_end - self.pause_start) if math.isfinite(self.pause_start) else 0.0
