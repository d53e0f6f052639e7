"""Builds providers from Django settings: credentials come from the environment, never a committed file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from generation.credentials.models import KEYED_PROVIDERS, ProviderKey
from generation.credentials.services import project_api_key
from generation.providers import available, get_provider
from generation.providers.base import Provider
from generation.providers.http import credential_id

_CACHE: dict[tuple[str, str, str], Provider] = {}
# The test-only providers draw fake images: a production project picking one would look broken.
TEST_ONLY_PROVIDERS = frozenset({"simulated", "fake"})


def provider_options(name: str) -> dict[str, Any]:
    options = {k: v for k, v in settings.GENERATION_PROVIDERS.get(name, {}).items() if v not in ("", None)}
    workflow_path = options.pop("workflow_path", None)
    if name == "comfyui" and workflow_path:
        options["workflow"] = json.loads(Path(workflow_path).read_text())
    return options


def provider_cache_clear() -> None:
    """Forget the built providers, so the next provider_for reads the settings again (tests change them)."""
    _CACHE.clear()


def provider_for(name: str, model: str = "", *, api_key: str = "") -> Provider:
    """One long-lived instance per provider, model and key in a process, so HTTP connections are reused.
    `api_key` is a project's own key; without one the studio's (from its environment) is sent."""
    # Keyed by the key's id, not the key: the cache is no second place a secret sits in the clear.
    key = (name, model, credential_id(name, api_key) if api_key else "")
    if key not in _CACHE:
        options = provider_options(name)
        if model:
            options["model"] = model
        if api_key:
            options["api_key"] = api_key
        _CACHE[key] = get_provider(name, **options)
    return _CACHE[key]


def offered_providers() -> list[str]:
    """The providers a project may choose here: the test-only ones only in development."""
    return [name for name in available() if settings.DEBUG or name not in TEST_ONLY_PROVIDERS]


def keyed_providers() -> list[str]:
    """The offered providers a project may set its own key for."""
    offered = offered_providers()
    return [name for name in KEYED_PROVIDERS if name in offered]


def project_provider(*, project_id: int, name: str, model: str = "") -> Provider:
    """The provider a project's run uses: with the project's own key when it has one for `name`.
    KeyUnreadable when that key cannot be unsealed."""
    return provider_for(name, model, api_key=project_api_key(project_id=project_id, provider=name))


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


def provider_statuses(names: list[str], *, project_id: int | None = None) -> list[ProviderStatus]:
    """Readiness from the configuration alone (the project's own keys included): no request is sent
    (a server may still be down)."""
    hints = {}
    if project_id is not None:
        hints = dict(ProviderKey.objects.filter(project_id=project_id).values_list("provider", "hint"))
    return [_status(name, hints.get(name)) for name in names]


def _status(name: str, project_hint: str | None = None) -> ProviderStatus:
    label, needs = PROVIDER_NEEDS.get(name, (name, ()))
    if project_hint is not None:
        return ProviderStatus(name, label, True, f"Configured: this project's own key (…{project_hint}).")
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
