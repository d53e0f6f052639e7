"""Recognise a rolling-window quota from its 429s when the provider does not say its limit.

With an unknown quota every 429 would otherwise cost a window slot (rejections count on OpenAI) and cut
throughput, so when a 429 looks like a rolling window's, the scheduler paces to what the window held.

With a Retry-After (or RetryInfo) it looks like one when all of these hold:
- the Retry-After is long (a concurrency cap says "retry in 1 s"; short ones are not trusted);
- it matches our own prediction, the time until the oldest send in the window expires;
- the window holds at least as many sends as any window we ever saw fully accepted (else the limit
  is plainly higher and the 429 came from something else).

Without one (`infer_hidden`), the count of sends accepted in the window before the refused one is the
limit, unless a concurrency cap could explain the refusal as well: every send in the window was still
running, or the refused request was sent with as many in flight as an earlier refusal (of a cap, not a
window), or no earlier refusal exists (with something else in flight). Both kinds then stay possible;
the next refusal at a lower level settles it.
"""

from __future__ import annotations

import bisect
import math
from collections import deque

WINDOW_SECONDS = 60.0
# For a 60 s window; other windows (a test's fake server) scale them.
MIN_RETRY_AFTER = 5.0
TOLERANCE = 1.5  # headers round to whole seconds, networks add delay


class _Send:
    __slots__ = ("at", "number", "refused")

    def __init__(self, at: float, number: int) -> None:
        self.at, self.number, self.refused = at, number, False


class WindowInference:
    def __init__(self, window: float = WINDOW_SECONDS) -> None:
        self.window = window
        self._sent: deque[_Send] = deque()  # several share an instant, hence the sequence numbers
        self._accepted: list[float] = []  # sorted: a window's count is two bisections, not a scan
        self._sequence = 0
        self.max_accepted_in_window = 0

    def sent(self, at: float) -> int:
        """Note a send; returns its sequence number for `infer`."""
        self._sequence += 1
        self._sent.append(_Send(at, self._sequence))
        while self._sent and self._sent[0].at < at - 2 * self.window:
            self._sent.popleft()
        return self._sequence

    def refused(self, sequence: int) -> None:
        """Send number `sequence` got a quota error."""
        for send in self._sent:
            if send.number == sequence:
                send.refused = True

    def accepted(self, sent_at: float) -> None:
        """A request sent at `sent_at` got past the quota (whatever came of it)."""
        accepted = self._accepted
        bisect.insort(accepted, sent_at)
        del accepted[: bisect.bisect_left(accepted, sent_at - 2 * self.window)]
        # Completions arrive out of order, so this can undercount a window: a lower bound, as needed.
        held = bisect.bisect_right(accepted, sent_at) - bisect.bisect_right(accepted, sent_at - self.window)
        self.max_accepted_in_window = max(self.max_accepted_in_window, held)

    def _send(self, sequence: int) -> _Send | None:
        return next((s for s in self._sent if s.number == sequence), None)

    def _earlier(self, send: _Send) -> list[_Send]:
        return [s for s in self._sent if s.number < send.number and send.at - self.window < s.at]

    def held(self, sequence: int) -> int:
        """Sends in the window before send number `sequence`, refused ones included."""
        send = self._send(sequence)
        return len(self._earlier(send)) if send is not None else 0

    def infer(self, sequence: int, retry_after: float | None) -> int | None:
        """Requests a window implied by a 429 for send number `sequence`, or None if unsure."""
        scale = self.window / WINDOW_SECONDS
        if retry_after is None or retry_after < MIN_RETRY_AFTER * scale:
            return None
        send = self._send(sequence)
        if send is None:
            return None
        earlier = [s.at for s in self._earlier(send)]
        if not earlier or len(earlier) < self.max_accepted_in_window:
            return None
        predicted = earlier[0] + self.window - send.at
        if abs(predicted - retry_after) > TOLERANCE * scale:
            return None
        return len(earlier)

    def infer_hidden(self, sequence: int, *, level: int, refused_level: float) -> int | None:
        """The window's limit from a 429 that said nothing, or None when a concurrency cap explains it.

        `level`: our requests in flight when the refused one was sent, itself included;
        `refused_level`: the lowest level a refusal that could be a cap's came at (inf: none yet)."""
        send = self._send(sequence)
        if send is None:
            return None
        earlier = self._earlier(send)
        accepted = sum(1 for s in earlier if not s.refused)
        # All of the window's sends still running, or a level as high as a refusal that was not the
        # window's: a cap could explain it. The first refusal of all could be a cap's too, unless it
        # came with nothing else in flight. Wrongly taken for a window, a cap would pace the run to a
        # fraction of its quota for good; wrongly taken for a cap, a window costs one more refusal.
        if accepted <= level - 1:
            return None
        if level > 1 and (math.isinf(refused_level) or level >= refused_level):
            return None
        # Refused sends count on some servers (OpenAI) and not on others: assume they do (the higher
        # guess; if they do not, the next refusal comes sooner and lowers the rate). Then the limit
        # is above what the window held when it last accepted a send, and at most what it holds now.
        last = max((s for s in earlier if not s.refused), key=lambda s: s.number)
        held_then = sum(1 for s in self._earlier(last))
        return min(len(earlier), held_then + 1)
