"""How each fake API speaks: the base class answers like a plain local server, and each provider module
subclasses it with that provider's own error bodies and headers."""

from __future__ import annotations

import json
import math
from typing import Any, ClassVar

from aiohttp import web

from generation.fakeprovider.config import FakeConfig
from generation.fakeprovider.limits import Verdict
from generation.fakeprovider.recorder import RecordedRequest

# The server object, for handlers: typed Any so this module need not import the server (a cycle).
SERVER: web.AppKey[Any] = web.AppKey("fake_provider_server")
RECORD = web.RequestKey("fake_record", RecordedRequest)  # what the recorder holds for this request
LATENCY = web.RequestKey("fake_latency", float)  # seconds this request should take, already scaled

HTML_PAGE = (
    "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center>"
    "<hr><center>nginx</center></body></html>"
)


def json_reply(
    body: Any, *, status: int = 200, headers: dict[str, str] | None = None, fault: str | None = None
) -> web.Response:
    """A JSON answer; the "truncated" fault cuts it in half, as a dropped proxy buffer would."""
    text = json.dumps(body)
    if fault == "truncated":
        text = text[: len(text) // 2]
    return web.Response(text=text, status=status, headers=headers, content_type="application/json")


def retry_after_headers(seconds: float | None) -> dict[str, str]:
    if seconds is None:
        return {}
    # Retry-After carries whole seconds by the HTTP spec; the -ms variant keeps scaled waits precise.
    return {
        "retry-after": str(max(0, math.ceil(seconds))),
        "retry-after-ms": str(max(0, round(seconds * 1000))),
    }


def bearer(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class Style:
    name: ClassVar[str] = "local"
    sleeps_in_gate: ClassVar[bool] = True  # False where the handler spends the latency itself (ComfyUI)
    needs_key: ClassVar[bool] = False

    def credential(self, request: web.Request) -> str:
        return bearer(request)

    def authorized(self, request: web.Request, config: FakeConfig) -> bool:
        key = self.credential(request)
        if config.api_key is not None:
            return key == config.api_key
        return bool(key) or not self.needs_key

    def auth_error(self, request: web.Request) -> web.Response:
        return json_reply({"error": "Unauthorized"}, status=401)

    def quota_error(self, verdict: Verdict) -> web.Response:
        return json_reply(
            {"detail": "Too many requests"}, status=429, headers=retry_after_headers(verdict.retry_after)
        )

    def server_error(self, status: int) -> web.Response:
        reason = "Internal Server Error" if status == 500 else "Service Unavailable"
        return web.Response(text=f"{status} {reason}\n\nServer got itself in trouble", status=status)

    def success_headers(self, verdict: Verdict) -> dict[str, str]:
        return {}


def html_error() -> web.Response:
    return web.Response(text=HTML_PAGE, status=502, content_type="text/html")
