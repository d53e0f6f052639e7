"""The WebSocket origin check: a page of the server's own origin, or a trusted one, may open a socket.

channels' AllowedHostsOriginValidator compares host names only, so any port or scheme of an allowed host
passed (http://localhost:9999 for a studio on http://127.0.0.1:8000). Browsers send Origin on every
WebSocket handshake, and the socket carries the session cookie, so the origin must be the whole triple.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain

DEFAULT_PORTS = {"http": 80, "https": 443}
# What Django's HTTP side allows when DEBUG is on and ALLOWED_HOSTS is empty.
DEBUG_HOSTS = [".localhost", "127.0.0.1", "[::1]"]


class SameOriginValidator:
    """ASGI middleware refusing a WebSocket handshake whose Origin is neither the server's nor trusted."""

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not origin_allowed(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)


def origin_allowed(scope: dict) -> bool:
    headers = {name: value.decode("latin1") for name, value in scope.get("headers", [])}
    origin = _origin(headers.get(b"origin", ""))
    if origin is None:
        return False
    if any(_matches(origin, trusted) for trusted in settings.CSRF_TRUSTED_ORIGINS):
        return True
    host = headers.get(b"host", "")
    domain, _port = split_domain_port(host)
    allowed_hosts = settings.ALLOWED_HOSTS or (DEBUG_HOSTS if settings.DEBUG else [])
    if not domain or not validate_host(domain, allowed_hosts):
        return False
    return origin == _origin(f"{_scheme(scope, headers)}://{host}")


def _scheme(scope: dict, headers: dict[bytes, str]) -> str:
    """The page's scheme as the HTTP side would see it: wss, or the proxy's header Django is told to trust."""
    if scope.get("scheme") in ("wss", "https"):
        return "https"
    # Daphne leaves "scheme" out of WebSocket scopes, so behind a TLS proxy this header is all there is.
    proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy_header:
        name, secure_value = proxy_header
        name = name.removeprefix("HTTP_").replace("_", "-").lower().encode("latin1")
        if headers.get(name, "").split(",")[0].strip() == secure_value:
            return "https"
    return "http"


def _origin(text: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin, the port made explicit; None for "null" or anything malformed."""
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        return None
    if parts.query or parts.fragment or parts.username or parts.password:
        return None
    return parts.scheme, parts.hostname, port or DEFAULT_PORTS[parts.scheme]


def _matches(origin: tuple[str, str, int], trusted: str) -> bool:
    # CSRF_TRUSTED_ORIGINS may name subdomains as https://*.example.com, as Django's CSRF check allows.
    wildcard = "://*." in trusted
    pattern = _origin(trusted.replace("://*.", "://", 1))
    if pattern is None:
        return False
    scheme, host, port = pattern
    if wildcard:
        return origin[0] == scheme and origin[2] == port and is_same_domain(origin[1], "." + host)
    return origin == pattern
