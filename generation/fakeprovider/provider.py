"""The "fake" provider name: a real provider client (OpenAI style by default) aimed at the fake server.

Without base_url it starts one fake server per process in a background thread, so `PROVIDER=fake`
works with nothing else running; with base_url it talks to a standalone `python -m generation.fakeprovider`.
"""

from __future__ import annotations

import threading
from typing import Any

from generation.fakeprovider.config import FakeConfig, Latency
from generation.fakeprovider.server import FakeProviderServer
from generation.fakeprovider.workflows import text_workflow
from generation.providers import get_provider, register
from generation.providers.base import Provider

_lock = threading.Lock()
_shared: FakeProviderServer | None = None


def shared_server() -> FakeProviderServer:
    """The process-wide in-thread fake server (2 s lognormal latency, 20 requests per minute)."""
    global _shared
    with _lock:
        if _shared is None:
            config = FakeConfig(latency=Latency(kind="lognormal", seconds=2.0), rpm=20)
            _shared = FakeProviderServer(config).start_in_thread()
        return _shared


@register("fake")
def fake_provider(
    *, flavor: str = "openai", base_url: str = "", api_key: str = "fake-key", **options: Any
) -> Provider:
    if flavor not in ("openai", "gemini", "comfyui", "a1111"):
        raise KeyError(f"Unknown fake provider flavor {flavor!r}")
    root = base_url.rstrip("/") or shared_server().url
    url = root + "/v1beta" if flavor == "gemini" and not root.endswith("/v1beta") else root
    if flavor in ("openai", "gemini"):
        options["api_key"] = api_key
    if flavor == "comfyui":
        options.setdefault("workflow", text_workflow())
        options.setdefault("poll_interval", 0.1)
    return get_provider(flavor, base_url=url, **options)
