"""One limiter per provider credential, shared by every run that uses the credential.

With REDIS_URL set (several worker processes) the limiter lives in Redis, so all processes share the
credential's quota and pauses; otherwise it lives in this process.
"""

from __future__ import annotations

from django.conf import settings

from generation.engine.clock import LoopClock
from generation.engine.config import EngineConfig
from generation.engine.limiter import Limiter, make_limiter
from generation.providers.base import Provider
from generation.quota.redis import RedisLimiter

_LIMITERS: dict[str, Limiter] = {}


def limiter_for(provider: Provider, config: dict) -> Limiter:
    if provider.credential not in _LIMITERS:
        _LIMITERS[provider.credential] = _make(provider.credential, EngineConfig.from_mapping(config))
    return _LIMITERS[provider.credential]


def _make(credential: str, config: EngineConfig) -> Limiter:
    # The quota's window: a minute for every real API; tests shorten it along with the fake server's.
    window = settings.GENERATION_RATE_WINDOW_SECONDS
    if settings.REDIS_URL:
        burst = (config.bucket_burst or 1) if config.limiter == "bucket" else None
        return RedisLimiter(
            settings.REDIS_URL, credential, config.requests_per_minute, window=window, burst=burst
        )
    return make_limiter(config, LoopClock(), window=window)
