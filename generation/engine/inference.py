"""Recognise a rolling-window quota from a 429 when the provider does not say its limit.

With an unknown quota every 429 would otherwise cost a window slot (rejections count on OpenAI) and halve
throughput, so when a 429 looks like a rolling window's, the scheduler paces to what the window held.
It looks like one when all of these hold:
- the Retry-After is long (a concurrency cap says "retry in 1 s"; short ones are not trusted);
- it matches our own prediction, the time until the oldest send in the window expires;
- the window holds at least as many sends as any window we ever saw fully accepted (else the limit
  is plainly higher and the 429 came from something else).
"""

from __future__ import annotations

from collections import deque

WINDOW_SECONDS = 60.0
MIN_RETRY_AFTER = 5.0
TOLERANCE = 1.5  # headers round to whole seconds, networks add delay


class WindowInference:
    def __init__(self) -> None:
        self._sent: deque[tuple[float, int]] = deque()  # (time, sequence): several share an instant
        self._accepted: deque[float] = deque()
        self._sequence = 0
        self.max_accepted_in_window = 0

    def sent(self, at: float) -> int:
        """Note a send; returns its sequence number for `infer`."""
        self._sequence += 1
        self._sent.append((at, self._sequence))
        while self._sent and self._sent[0][0] < at - 2 * WINDOW_SECONDS:
            self._sent.popleft()
        return self._sequence

    def accepted(self, sent_at: float) -> None:
        """A request sent at `sent_at` got past the quota (whatever came of it)."""
        self._accepted.append(sent_at)
        while self._accepted and self._accepted[0] < sent_at - 2 * WINDOW_SECONDS:
            self._accepted.popleft()
        # Completions arrive out of order, so this can undercount a window: a lower bound, as needed.
        held = sum(1 for t in self._accepted if sent_at - WINDOW_SECONDS < t <= sent_at)
        self.max_accepted_in_window = max(self.max_accepted_in_window, held)

    def infer(self, sequence: int, retry_after: float | None) -> int | None:
        """Requests a minute implied by a 429 for send number `sequence`, or None if unsure."""
        if retry_after is None or retry_after < MIN_RETRY_AFTER:
            return None
        sent_at = next((t for t, n in self._sent if n == sequence), None)
        if sent_at is None:
            return None
        earlier = [t for t, n in self._sent if n < sequence and sent_at - WINDOW_SECONDS < t]
        if not earlier or len(earlier) < self.max_accepted_in_window:
            return None
        predicted = earlier[0] + WINDOW_SECONDS - sent_at
        if abs(predicted - retry_after) > TOLERANCE:
            return None
        return len(earlier)
