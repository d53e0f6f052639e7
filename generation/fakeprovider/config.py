"""What the fake provider server does, as one mutable dataclass: tests and benchmarks change it at run
time through the Python API or POST /_fake/config, and every request reads it afresh."""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass, field
from typing import Any

# Faults a request can be given, in addition to the quota and safety behaviour:
FAULTS = (
    "500",  # internal error in the provider's own JSON style
    "503",  # overloaded / unavailable, provider style
    "timeout",  # hang until the client gives up (or hang_seconds pass)
    "drop",  # close the connection without an answer
    "html",  # a proxy's 502 HTML page instead of JSON
    "truncated",  # 200 with the JSON body cut in half
    "not_image",  # 200, valid JSON and base64, but the bytes are not an image
    "bad_base64",  # 200, valid JSON, the image field is not base64
    "truncated_image",  # 200, valid base64 of a PNG cut in half
)
BODY_FAULTS = frozenset({"truncated", "not_image", "bad_base64", "truncated_image"})
# What the server can keep to itself, as gateways that say nothing about their quota do:
OMITTABLE = (
    "retry_after",  # Retry-After and retry-after-ms, Gemini's RetryInfo, "try again in" in messages
    "rate_headers",  # x-ratelimit-* headers and the limit in error messages (Gemini's quotaValue)
)


@dataclass
class Latency:
    """How long a request takes before time_scale: a constant, or a lognormal around a median."""

    kind: str = "constant"  # "constant" or "lognormal"
    seconds: float = 0.0  # the constant, or the lognormal's median
    sigma: float = 0.5  # lognormal spread; 0.5 puts 95% within about x0.4..x2.7 of the median

    def sample(self, rng: random.Random) -> float:
        if self.seconds <= 0:
            return 0.0
        if self.kind == "lognormal":
            return rng.lognormvariate(math.log(self.seconds), self.sigma)
        return self.seconds


@dataclass
class FakeConfig:
    latency: Latency = field(default_factory=Latency)
    time_scale: float = 1.0  # multiplies latencies, quota windows and the waits the server announces
    max_concurrent: int | None = None  # in-flight requests per provider and key; 429 beyond
    rpm: int | None = None  # requests per rolling window per provider and key; 429 beyond
    window_seconds: float = 60.0  # the rpm window before time_scale
    daily_limit: int | None = None  # requests per provider and key before the per-day quota is spent
    daily_exhausted: bool = False  # the per-day quota is spent from the start
    # Seconds (before time_scale) after which daily_limit starts over: a short "day" for tests. Set, the
    # OpenAI flavor answers a spent day as a requests-per-day 429 with x-ratelimit-reset-requests.
    daily_window_seconds: float | None = None
    faults: dict[str, float] = field(default_factory=dict)  # fault name -> probability per request
    fail_next: list[str] = field(default_factory=list)  # faults for the next requests, in order
    safety_words: list[str] = field(default_factory=lambda: ["forbidden"])  # case-insensitive
    api_key: str | None = None  # the one key accepted; None accepts any non-empty key
    basic_auth: list[str] | None = None  # [user, password] the a1111 API requires, or None
    hang_seconds: float = 300.0  # how long "timeout" hangs at most (real seconds, not scaled)
    image_max_side: int = 64  # generated PNGs keep the requested aspect ratio within this many pixels
    gemini_block_style: str = "finish_reason"  # or "prompt_feedback": how Gemini reports safety blocks
    gemini_snake_case: bool = False  # answer with inline_data/mime_type instead of inlineData/mimeType
    seed: int | None = None  # seeds latency and fault sampling for reproducible runs
    # Provider batch APIs (OpenAI /v1/batches): seconds before a batch completes (before time_scale);
    # custom_ids that fail and the share of items failing at random; whether the batch expires at that
    # time instead (the first half of its items done, the rest failed); a cancelled batch keeps the
    # first half too. Items in batch_broken_ids succeed with a truncated image.
    batch_delay_seconds: float = 1.0
    batch_fail_ids: list[str] = field(default_factory=list)
    batch_broken_ids: list[str] = field(default_factory=list)
    batch_fail_rate: float = 0.0
    batch_expire: bool = False
    # What to keep quiet about: OMITTABLE names, for every flavor, or "flavor:name" for one
    # ("gemini:retry_after" drops RetryInfo for Gemini only).
    omit: list[str] = field(default_factory=list)

    def omits(self, what: str, flavor: str) -> bool:
        return what in self.omit or f"{flavor}:{what}" in self.omit

    def scaled(self, seconds: float) -> float:
        return seconds * self.time_scale

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a partial JSON-style update; unknown names raise ValueError (the admin answers 400)."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = set(changes) - names
        if unknown:
            raise ValueError(f"unknown config fields: {', '.join(sorted(unknown))}")
        bad = set(changes.get("faults") or {}) | set(changes.get("fail_next") or [])
        if bad - set(FAULTS):
            raise ValueError(f"unknown faults: {', '.join(sorted(bad - set(FAULTS)))}")
        bad_omit = {item.rpartition(":")[2] for item in changes.get("omit") or []} - set(OMITTABLE)
        if bad_omit:
            known = ", ".join(OMITTABLE)
            raise ValueError(f"unknown omit names: {', '.join(sorted(bad_omit))}; known: {known}")
        for name, value in changes.items():
            if name == "latency" and isinstance(value, dict):
                value = Latency(**{**dataclasses.asdict(self.latency), **value})
            elif name == "latency" and isinstance(value, int | float):
                value = Latency(seconds=float(value))
            setattr(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
