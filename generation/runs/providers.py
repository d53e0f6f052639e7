"""Builds providers from Django settings: credentials come from the environment, never a committed file."""

from __future__ import annotations

import json
from dataclasses import dataclass
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


@dataclass(frozen=True)
class ProviderStatus:
    """What the settings page says about one provider: its name, a label people read, whether a run
    could use it with the studio's environment as it is, and what is missing if not."""

    name: str
    label: str
    ready: bool
    detail: str


# name -> (label, what it needs: (settings key, environment variable) pairs that must be set).
PROVIDER_NEEDS: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "sketch": ("Sketch (offline storyboard panels)", ()),
    "openai": ("OpenAI Images", (("api_key", "OPENAI_API_KEY"),)),
    "gemini": ("Google Gemini / Imagen", (("api_key", "GEMINI_API_KEY"),)),
    "comfyui": ("ComfyUI (your server)", (("workflow_path", "COMFYUI_WORKFLOW"),)),
    "a1111": ("Automatic1111 (your server)", ()),
    "fake": ("Fake provider (for tests)", ()),
    "simulated": ("Simulated provider (for tests)", ()),
}
SERVER_URL = {"comfyui": "COMFYUI_URL", "a1111": "A1111_URL", "openai": "OPENAI_BASE_URL"}


def provider_statuses(names: list[str]) -> list[ProviderStatus]:
    """Readiness from the configuration alone: no request is sent (a server may still be down)."""
    return [_status(name) for name in names]


def _status(name: str) -> ProviderStatus:
    label, needs = PROVIDER_NEEDS.get(name, (name, ()))
    options = settings.GENERATION_PROVIDERS.get(name, {})
    missing = [variable for key, variable in needs if not options.get(key)]
    if missing:
        return ProviderStatus(name, label, False, "Not configured: set " + " and ".join(missing) + ".")
    if name in SERVER_URL and options.get("base_url"):
        detail = f"Configured: talks to {options['base_url']} ({SERVER_URL[name]})."
    elif needs:
        detail = "Configured: " + ", ".join(variable for _, variable in needs) + " set."
    else:
        detail = "Ready: needs no configuration."
    return ProviderStatus(name, label, True, detail)
