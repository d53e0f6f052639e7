"""Builds providers from Django settings: credentials come from the environment, never a committed file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings

from generation.providers import get_provider
from generation.providers.base import Provider

_CACHE: dict[tuple[str, str], Provider] = {}


def provider_options(name: str) -> dict[str, Any]:
    options = {k: v for k, v in settings.GENERATION_PROVIDERS.get(name, {}).items() if v not in ("", None)}
    workflow_path = options.pop("workflow_path", None)
    if name == "comfyui" and workflow_path:
        options["workflow"] = json.loads(Path(workflow_path).read_text())
    return options


def provider_cache_clear() -> None:
    """Forget the built providers, so the next provider_for reads the settings again (tests change them)."""
    _CACHE.clear()


def provider_for(name: str, model: str = "") -> Provider:
    """One long-lived instance per provider and model in a process, so HTTP connections are reused."""
    key = (name, model)
    if key not in _CACHE:
        options = provider_options(name)
        if model:
            options["model"] = model
        _CACHE[key] = get_provider(name, **options)
    return _CACHE[key]
