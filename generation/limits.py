"""One limiter per provider credential in this process, shared by every run that uses the credential."""

from __future__ import annotations

from generation.engine.clock import LoopClock
from generation.engine.config import EngineConfig
from generation.engine.limiter import Limiter, make_limiter
from generation.providers.base import Provider

_LIMITERS: dict[str, Limiter] = {}


def limiter_for(provider: Provider, config: dict) -> Limiter:
    if provider.credential not in _LIMITERS:
        _LIMITERS[provider.credential] = make_limiter(EngineConfig.from_mapping(config), LoopClock())
    return _LIMITERS[provider.credential]
