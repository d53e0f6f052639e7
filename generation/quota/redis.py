"""A Limiter shared by every process that sends with one provider credential, kept in Redis.

Pacing is a sliding log of send times, as SlidingWindowLimiter (which got within 1% of the bound in
simulation), kept in a Redis list that one Lua script checks and appends to, so N workers together send
at most R requests in any window, at 100% of the quota. The pause after a quota error is a key holding a
deadline, only ever extended, and a quota learned from x-ratelimit-* headers is shared through a key too,
so a worker that has not seen the header yet does not outpace the others. Every time is Redis's own
(TIME inside the scripts): one clock for all hosts, whatever their skew.

Why not the `limits` library (its moving window is the same log): it stamps sends with the client's
time.time() inside its call and admits on an integer-second window, so the admission check cannot carry
a margin for the delay between admitting a send and the provider receiving it. Two workers sharing a
test quota at 100% through it drew about 5 refusals per 125 requests at window boundaries; with the
margin in the script, 0-4 per 180 (tests/scale). It also needs a second round trip to learn when a slot
frees, and puts the quota in its key, so a learned quota would start from an empty log.

If Redis stops answering, each process paces itself with a local limiter until it answers again: worse
pacing (quota errors then pause each process on its own) beats every run stalling. When it comes back
without its data (a restart), the window starts full: see _SEND.
"""

from __future__ import annotations

import asyncio
import logging
import secrets

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from generation.engine.clock import Clock, LoopClock
from generation.engine.limiter import MIN_WAIT, WINDOW_SECONDS, FairShares, SlidingWindowLimiter
from generation.providers.base import RateLimit

logger = logging.getLogger("generation.limiter")

KEY_PREFIX = "scenestudio:limiter"
# The log keeps at least this many sends, also while the quota is unknown (nothing waits then), so a
# quota learned later starts from the true history.
HISTORY = 10_000
LEARNED_TTL_SECONDS = 24 * 3600
# A send is logged when it is admitted, and counted by the provider when it arrives: milliseconds later,
# and not always the same number (a cold connection, a busy event loop). Admitting a send exactly when a
# slot frees in our log could land it before the slot frees in the provider's: this margin avoids that,
# for 0.2% of a one-minute window.
MARGIN_SECONDS = 0.1

# KEYS: log, pause, learned rate, epoch. ARGV: limit (0: unknown), window, margin, history, a new epoch
# id, the epoch this process saw last ('' for none). Returns {1} when the send is logged (it may go now),
# else {0, seconds to wait}; then the learned rate and the epoch.
#
# The epoch key holds an id for as long as Redis keeps its data. A process that saw one and finds none
# knows Redis lost the log (a restart without persistence): sends it logged in the last window still
# count at the provider, so the log is filled with `limit` sends at now, treating the window as full
# for one window instead of letting every process burst into a quota that is already spent.
_SEND = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local limit, window, margin = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local epoch = redis.call('GET', KEYS[4])
if not epoch then
    epoch = ARGV[5]
    redis.call('SET', KEYS[4], epoch)
    if ARGV[6] ~= '' and limit > 0 then
        redis.call('DEL', KEYS[1])
        local stamp = string.format('%.6f', now)
        for _ = 1, limit do
            redis.call('LPUSH', KEYS[1], stamp)
        end
        redis.call('PEXPIRE', KEYS[1], math.ceil((window + margin) * 1000))
    end
end
local learned = redis.call('GET', KEYS[3]) or ''
local pause = tonumber(redis.call('GET', KEYS[2]) or '0')
if pause > now then
    return {0, string.format('%.6f', pause - now), learned, epoch}
end
if limit > 0 then
    local oldest = redis.call('LINDEX', KEYS[1], limit - 1)
    if oldest then
        local frees = tonumber(oldest) + window + margin
        if frees > now then
            return {0, string.format('%.6f', frees - now), learned, epoch}
        end
    end
end
redis.call('LPUSH', KEYS[1], string.format('%.6f', now))
redis.call('LTRIM', KEYS[1], 0, math.max(limit, tonumber(ARGV[4])) - 1)
redis.call('PEXPIRE', KEYS[1], math.ceil((window + margin) * 1000))
return {1, '0', learned, epoch}
"""

# KEYS: pause. ARGV: seconds from now. A pause is extended, never shortened.
_PAUSE = """
local t = redis.call('TIME')
local seconds = tonumber(ARGV[1])
local deadline = tonumber(t[1]) + tonumber(t[2]) / 1e6 + seconds
if deadline > tonumber(redis.call('GET', KEYS[1]) or '0') then
    redis.call('SET', KEYS[1], string.format('%.6f', deadline), 'PX', math.ceil(seconds * 1000) + 1000)
end
return 1
"""


class RedisLimiter(FairShares):
    """The Limiter protocol over Redis, for one credential.

    Fair shares (join/leave/runs) count the runs of this process only, for now.

    `window` is the quota's window; with `burst`, the quota is a token bucket instead, paced as `burst`
    sends per the time the bucket takes to refill them.
    """

    def __init__(
        self,
        url: str,
        credential: str,
        requests_per_minute: float | None,
        *,
        window: float = WINDOW_SECONDS,
        burst: int | None = None,
        margin: float = MARGIN_SECONDS,
        clock: Clock | None = None,
    ) -> None:
        super().__init__()
        self.url = url
        self.window = float(window)
        self.burst = burst
        self.margin = margin
        self.clock = clock or LoopClock()
        self.requests_per_minute = requests_per_minute
        names = ("sends", "pause", "rate", "epoch")
        self._keys = [f"{KEY_PREFIX}:{credential}:{name}" for name in names]
        self._epoch = ""  # the id of the Redis data this process last saw (see _SEND)
        # The id this process gives the data if it finds none: drawn again only once used, because
        # random bytes are a system call, and on the loop one lets the ORM's thread take the GIL.
        self._new_epoch = secrets.token_hex(8)
        self._local = SlidingWindowLimiter(self.clock, requests_per_minute, window=self.window)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scripts: tuple[Redis, AsyncScript, AsyncScript] | None = None
        self._degraded = False
        self._next_send_at = -1.0  # clock time Redis's last answer said a send may go

    # -- the Limiter protocol ------------------------------------------------------------------------

    async def acquire(self) -> None:
        """Wait for pacing and any pause, then log the send.

        Cancelled while Redis runs the script, the send may be logged without being made: one slot
        unused for a window, on the safe side of the quota."""
        while True:
            try:
                wait = await self._try_send()
            except RedisError:
                self._note_failure("acquire")
                await self._local.acquire()
                return
            self._degraded = False
            self._next_send_at = self.clock.now() + wait
            if wait <= 0:
                self._mirror(self.clock.now())
                return
            await self.clock.sleep(wait)

    def next_send_in(self) -> float:
        """Seconds until a send may go, as of Redis's last answer (for telling people why none is sent)."""
        if self._degraded:
            return self._local.next_send_in()
        return max(0.0, self._next_send_at - self.clock.now())

    async def pause_until(self, until: float) -> None:
        await self._local.pause_until(until)
        try:
            redis, _, pause = self._clients()
            # Sent as "seconds from now": the script turns it into a deadline on Redis's clock.
            await pause(keys=[self._keys[1]], args=[repr(max(0.0, until - self.clock.now()))], client=redis)
        except RedisError:
            self._note_failure("pause")

    async def learn(self, rate: RateLimit) -> None:
        # As the local limiters: only the limit is adopted (see _LocalLimiter.learn).
        if not rate.limit_requests or rate.limit_requests == self.requests_per_minute:
            return
        self._adopt(float(rate.limit_requests))
        try:
            redis, *_ = self._clients()
            await redis.set(self._keys[2], rate.limit_requests, ex=LEARNED_TTL_SECONDS)
        except RedisError:
            self._note_failure("learn")

    # -- internals -----------------------------------------------------------------------------------

    async def _try_send(self) -> float:
        """Log a send and return 0, or return how long to wait before trying again."""
        redis, send, _ = self._clients()
        limit, window = self._shape()
        args = [limit, repr(window), repr(self.margin), HISTORY, self._new_epoch, self._epoch]
        admitted, wait, learned, epoch = await send(keys=self._keys, args=args, client=redis)
        if epoch == self._new_epoch:  # this send created the epoch: the next one must be told apart
            self._new_epoch = secrets.token_hex(8)
        if self._epoch and epoch != self._epoch:
            logger.warning("Redis lost the limiter's log (restarted?): treating the window as full")
        self._epoch = epoch
        if learned and float(learned) != self.requests_per_minute:
            # Another process learned the quota: adopt it, and ask again with it unless already sent.
            self._adopt(float(learned))
            return 0.0 if admitted else MIN_WAIT
        return 0.0 if admitted else max(MIN_WAIT, float(wait))

    def _shape(self) -> tuple[int, float]:
        """(sends, seconds) allowed in any sliding window; 0 sends while the quota is unknown."""
        rate = self.requests_per_minute
        if rate is None:
            return 0, self.window
        if self.burst is None:
            return max(1, int(rate)), self.window
        return self.burst, self.burst * 60.0 / rate

    def _adopt(self, requests_per_minute: float) -> None:
        self.requests_per_minute = requests_per_minute
        self._local.requests_per_minute = requests_per_minute

    def _clients(self) -> tuple[Redis, AsyncScript, AsyncScript]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._scripts is None:
            # redis-py's asyncio connections belong to the loop that opened them: one client per loop.
            redis = Redis.from_url(self.url, decode_responses=True)
            self._scripts = (redis, redis.register_script(_SEND), redis.register_script(_PAUSE))
            self._loop = loop
        return self._scripts

    def _mirror(self, now: float) -> None:
        """Log the send in the local fallback too: if Redis goes away, this process's pacing starts from
        its own last window, not from an empty log that would let it burst. Trimmed as it goes."""
        self._local._record(now)
        self._local._pacing_wait(now)  # drops the sends that left the window

    def _note_failure(self, what: str) -> None:
        if not self._degraded:
            logger.warning("Redis failed (%s); pacing in this process until it answers", what, exc_info=True)
        self._degraded = True
