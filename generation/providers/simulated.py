"""A fake image API on the engine's clock: latency, quotas, caps and faults, for tests and benchmarks.

Randomness is keyed by (seed, prompt, how many times that prompt was accepted), so two schedulers running the
same scenes see the same latency and faults for each scene's n-th request, whatever their order.
"""

from __future__ import annotations

import functools
import io
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from generation.engine.clock import Clock, LoopClock
from generation.providers import register
from generation.providers.base import (
    AuthError,
    DailyQuotaError,
    ImageRequest,
    ImageResult,
    Provider,
    QuotaError,
    RateLimit,
    SafetyError,
    TransientError,
)

WINDOW_SECONDS = 60.0
HANG_SECONDS = 24 * 3600.0

Latency = float | Callable[[ImageRequest, random.Random], float]


@dataclass(frozen=True)
class SimRecord:
    """One request as the server saw it."""

    at: float
    prompt: str
    outcome: str  # "ok", "rate_limited", "concurrency_limited", "daily_quota", "transient", ...
    in_flight: int  # accepted requests being processed when it arrived, itself included if accepted


@functools.cache
def png_bytes(shade: int) -> bytes:
    from PIL import Image  # only needed once per shade, and the cache keeps it cheap

    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (40 * shade % 256, 90, 140)).save(buffer, "PNG")
    return buffer.getvalue()


@dataclass(frozen=True)
class SimSettings:
    latency: Latency = 8.0  # seconds; the mean if latency_sigma is set; or a function of (request, rng)
    latency_sigma: float | None = None  # lognormal sigma
    seed: int = 0
    max_concurrent: int | None = None  # 429 beyond this many requests in flight
    concurrency_retry_after: float = 1.0
    requests_per_minute: int | None = None  # per rolling window of window_seconds
    window_seconds: float = WINDOW_SECONDS
    rejected_count: bool = False  # 429s count against the window too (OpenAI's do)
    send_rate_headers: bool = False  # report the limit as x-ratelimit-* headers would
    send_retry_after: bool = True
    daily_quota: int | None = None  # accepted requests, then DailyQuotaError
    transient_rate: float = 0.0  # share answering 500 after the latency
    timeout_rate: float = 0.0  # share answering 504 after timeout_after
    timeout_after: float = 60.0
    hang_rate: float = 0.0  # share never answering (exercises the client's own timeout)
    reject_latency: float = 0.2  # how long a 429 or safety refusal takes
    safety_word: str | None = None  # prompts containing it get SafetyError
    auth_failure: bool = False  # every request gets AuthError


@register("simulated")
class SimulatedProvider(Provider):
    name = "simulated"

    def __init__(
        self, *, model: str = "sim-1", credential: str = "", clock: Clock | None = None, **settings: object
    ) -> None:
        """`settings` are SimSettings fields, e.g. latency=8, latency_sigma=0.5, max_concurrent=3."""
        super().__init__(model=model, credential=credential)
        self.clock = clock or LoopClock()
        self.settings = SimSettings(**settings)  # type: ignore[arg-type]
        self.records: list[SimRecord] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._window: deque[float] = deque()
        self._sent_per_prompt: dict[str, int] = {}
        self._accepted = 0

    # -- counters for assertions -----------------------------------------------------------------

    @property
    def requests(self) -> int:
        return len(self.records)

    @property
    def rejections(self) -> int:
        """429s of any kind (rate, concurrency, daily)."""
        return sum(1 for r in self.records if r.outcome.endswith(("_limited", "_quota")))

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.records if r.outcome == outcome)

    def latency_for(self, request: ImageRequest, nth: int = 0) -> float:
        """The latency of the nth accepted request (0-based) with this prompt: benchmarks sum these."""
        return self._draws(request, nth)[1]

    # -- the API ---------------------------------------------------------------------------------

    async def generate(self, request: ImageRequest) -> ImageResult:
        now = self.clock.now()
        rejection = self._admission_error(request, now)
        if rejection is not None:
            await self.clock.sleep(self.settings.reject_latency)
            raise rejection
        # Counted over accepted requests only, so a scene's n-th processed request draws the same
        # latency and faults however many 429s a scheduler collected before it.
        nth = self._sent_per_prompt.get(request.prompt, 0)
        self._sent_per_prompt[request.prompt] = nth + 1
        self._accepted += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.records.append(SimRecord(now, request.prompt, "ok", self.in_flight))
        try:
            return await self._process(request, nth, len(self.records) - 1)
        finally:
            self.in_flight -= 1

    def _admission_error(self, request: ImageRequest, now: float) -> Exception | None:
        """What the gateway answers before any work is done; records rejections."""
        settings = self.settings
        if settings.auth_failure:
            return self._reject(request, now, "auth", AuthError("Invalid API key", http_status=401))
        if settings.daily_quota is not None and self._accepted >= settings.daily_quota:
            error = DailyQuotaError("Daily image quota reached", retry_after=None)
            return self._reject(request, now, "daily_quota", error)
        self._expire(now)
        limit = settings.requests_per_minute
        if limit is not None and len(self._window) >= limit:
            # Seconds until enough of the window's sends expire to leave one slot free.
            frees = self._window[len(self._window) - limit] + settings.window_seconds
            retry_after = max(0.001, frees - now)
            return self._reject(request, now, "rate_limited", self._quota_error("Rate limit", retry_after))
        if settings.max_concurrent is not None and self.in_flight >= settings.max_concurrent:
            error = self._quota_error("Too many concurrent requests", settings.concurrency_retry_after)
            return self._reject(request, now, "concurrency_limited", error)
        self._window.append(now)
        return None

    def _reject(self, request: ImageRequest, now: float, outcome: str, error: Exception) -> Exception:
        if self.settings.rejected_count and outcome.endswith("_limited"):
            self._window.append(now)
        self.records.append(SimRecord(now, request.prompt, outcome, self.in_flight))
        return error

    def _quota_error(self, message: str, retry_after: float) -> QuotaError:
        return QuotaError(
            f"429 {message}",
            retry_after=retry_after if self.settings.send_retry_after else None,
            rate_limit=self._rate_limit(),
        )

    async def _process(self, request: ImageRequest, nth: int, index: int) -> ImageResult:
        if self.settings.safety_word and self.settings.safety_word.lower() in request.prompt.lower():
            await self.clock.sleep(self.settings.reject_latency)
            self._mark(index, "safety")
            raise SafetyError("The prompt was rejected by the safety system", http_status=400)
        fault, latency = self._draws(request, nth)
        if fault < self.settings.hang_rate:
            self._mark(index, "hang")
            await self.clock.sleep(HANG_SECONDS)
        if fault < self.settings.hang_rate + self.settings.timeout_rate:
            await self.clock.sleep(self.settings.timeout_after)
            self._mark(index, "timeout")
            raise TransientError("504 Gateway timeout", http_status=504)
        await self.clock.sleep(latency)
        if fault < self.settings.hang_rate + self.settings.timeout_rate + self.settings.transient_rate:
            self._mark(index, "transient")
            raise TransientError("500 Internal server error", http_status=500)
        shade = sum(map(ord, request.prompt)) % 4
        return ImageResult(
            image=png_bytes(shade), seed=request.seed, model=self.model, rate_limit=self._rate_limit()
        )

    # -- helpers ---------------------------------------------------------------------------------

    def _draws(self, request: ImageRequest, nth: int) -> tuple[float, float]:
        """(fault draw, latency) of the nth request with this prompt."""
        rng = random.Random(f"{self.settings.seed}:{request.prompt}:{nth}")
        fault = rng.random()
        return fault, self._draw_latency(request, rng)

    def _draw_latency(self, request: ImageRequest, rng: random.Random) -> float:
        if callable(self.settings.latency):
            return self.settings.latency(request, rng)
        if self.settings.latency_sigma is None:
            return self.settings.latency
        # A lognormal with the requested mean: mu = ln(mean) - sigma^2 / 2.
        mu = math.log(self.settings.latency) - self.settings.latency_sigma**2 / 2
        return rng.lognormvariate(mu, self.settings.latency_sigma)

    def _expire(self, now: float) -> None:
        while self._window and now - self._window[0] >= self.settings.window_seconds:
            self._window.popleft()

    def _mark(self, index: int, outcome: str) -> None:
        record = self.records[index]
        self.records[index] = SimRecord(record.at, record.prompt, outcome, record.in_flight)

    def _rate_limit(self) -> RateLimit | None:
        if not self.settings.send_rate_headers or self.settings.requests_per_minute is None:
            return None
        remaining = max(0, self.settings.requests_per_minute - len(self._window))
        return RateLimit(limit_requests=self.settings.requests_per_minute, remaining_requests=remaining)
