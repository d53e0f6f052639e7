"""Registry of providers by name. Each provider lives in its own module and registers itself."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from generation.providers.base import Provider

_FACTORIES: dict[str, Callable[..., Provider]] = {}
_MODULES = {
    "sketch": "generation.providers.sketch",
    "simulated": "generation.providers.simulated",
    "openai": "generation.providers.openai",
    "gemini": "generation.providers.gemini",
    "comfyui": "generation.providers.comfyui",
    "a1111": "generation.providers.a1111",
    "fake": "generation.fakeprovider.provider",
}


def register(name: str) -> Callable[[Callable[..., Provider]], Callable[..., Provider]]:
    def decorator(factory: Callable[..., Provider]) -> Callable[..., Provider]:
        _FACTORIES[name] = factory
        return factory

    return decorator


def available() -> list[str]:
    return sorted(_MODULES)


def get_provider(name: str, **options: Any) -> Provider:
    if name not in _FACTORIES:
        if name not in _MODULES:
            raise KeyError(f"Unknown image provider {name!r}; choose one of {', '.join(available())}")
        importlib.import_module(_MODULES[name])
    return _FACTORIES[name](**options)
