"""System checks for common misconfiguration (`manage.py check`, and at the start of every command)."""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings
from django.core.checks import Error, Info, Warning, register

# What each provider cannot work without.
REQUIRED = {
    "openai": ("api_key", "OPENAI_API_KEY"),
    "gemini": ("api_key", "GEMINI_API_KEY"),
    "comfyui": ("workflow_path", "COMFYUI_WORKFLOW"),
}


@register()
def provider_credentials(app_configs=None, **kwargs) -> list:
    name = settings.GENERATION_PROVIDER
    if name not in REQUIRED:
        return []
    key, variable = REQUIRED[name]
    if settings.GENERATION_PROVIDERS.get(name, {}).get(key):
        return []
    return [Error(f"PROVIDER={name} but {variable} is not set.", hint=f"Set {variable}.", id="ops.E001")]


def _on_sqlite() -> bool:
    return settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")


@register()
def channel_layer_in_memory(app_configs=None, **kwargs) -> list:
    """In-memory layer with DEBUG off: fine for one `runstudio` process (the documented small deploy), a
    mistake once the studio is spread over processes, which PostgreSQL suggests: a warning then."""
    backend = settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", "")
    if settings.DEBUG or not backend.endswith("InMemoryChannelLayer"):
        return []
    text = (
        "The in-memory channel layer is in use with DEBUG off: live events and wake-ups do not cross "
        "processes, so only a single `runstudio` process works."
    )
    hint = "Set REDIS_URL for several Daphnes or workers."
    if _on_sqlite():
        return [Info(text, hint=hint, id="ops.I002")]
    return [Warning(text, hint=hint, id="ops.W002")]


def _writable(path: Path) -> bool:
    # A folder that does not exist yet is fine if it can be created: look at the nearest existing parent.
    while not path.exists() and path != path.parent:
        path = path.parent
    return path.is_dir() and os.access(path, os.W_OK | os.X_OK)


@register()
def media_root_writable(app_configs=None, **kwargs) -> list:
    root = Path(settings.MEDIA_ROOT)
    if _writable(root):
        return []
    return [Error(f"MEDIA_ROOT ({root}) is not writable: images cannot be stored.", id="ops.E003")]


@register()
def redis_reachable(app_configs=None, **kwargs) -> list:
    if not settings.REDIS_URL:
        return []
    from ops.health import redis_ping

    ok, detail = redis_ping(settings.REDIS_URL)
    if ok:
        return []
    return [Error(f"REDIS_URL is set but Redis does not answer: {detail}", id="ops.E004")]


@register()
def worker_event_loop(app_configs=None, **kwargs) -> list:
    # Imported here, as ops.health above: only a check that runs needs the worker's module.
    from generation.runs.worker import EVENT_LOOPS

    if settings.WORKER_EVENT_LOOP in EVENT_LOOPS:
        return []
    return [
        Error(
            f"WORKER_EVENT_LOOP is {settings.WORKER_EVENT_LOOP!r}: workers cannot start.",
            hint=f"Set it to one of {', '.join(EVENT_LOOPS)} (uvloop is the default).",
            id="ops.E005",
        )
    ]
