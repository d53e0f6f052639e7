"""Shared HTTP plumbing for the image providers: one client factory and the helpers that turn
transport failures, status codes, rate-limit headers and image bodies into the typed errors of base.py.

Nothing here knows a provider's error vocabulary; each provider module maps its own bodies and falls
back to `error_for_status` for whatever it does not recognise.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import io
import json
import math
import re
import ssl
import time
import urllib.request
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, TypeVar

import certifi
import httpx
from PIL import Image, UnidentifiedImageError

from generation.providers.base import (
    AuthError,
    InvalidRequestError,
    Provider,
    ProviderError,
    QuotaError,
    RateLimit,
    TransientError,
)
from generation.providers.redact import redact
from generation.providers.transport import AiohttpTransport

READ_TIMEOUT = 90.0  # image APIs routinely take 20-60 s; past 90 s a retry is the better bet
CONNECT_TIMEOUT = 10.0
# Images up to this size are decoded and checked on the event loop (see off_loop): a tenth of a ms.
INLINE_BYTES = 16 * 1024
T = TypeVar("T")
_MIMES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)")
_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def make_client(
    *,
    read_timeout: float = READ_TIMEOUT,
    connect_timeout: float = CONNECT_TIMEOUT,
    max_connections: int = 128,  # the engine's default concurrency ceiling
    keepalive_expiry: float = 30.0,
) -> httpx.AsyncClient:
    """The one way providers build a client: HTTP/1.1, a connection kept alive for each concurrent
    request, on aiohttp's pool and parser (see transport.py).

    The pool timeout is unbounded on purpose: the engine caps concurrency per provider, so a wait for a
    free connection is queueing we asked for, not a provider failure.
    """
    timeout = httpx.Timeout(connect=connect_timeout, read=read_timeout, write=30.0, pool=None)
    options: dict[str, Any] = dict(timeout=timeout, http2=False, follow_redirects=False)
    if urllib.request.getproxies():
        # httpx routes through HTTP(S)_PROXY only with its own transport, so a proxied client keeps it.
        limits = httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=keepalive_expiry,
        )
        return httpx.AsyncClient(limits=limits, verify=_ssl_context(), **options)
    transport = AiohttpTransport(
        max_connections=max_connections, keepalive_expiry=keepalive_expiry, verify=_ssl_context()
    )
    return httpx.AsyncClient(transport=transport, **options)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # The same verification httpx does by default, built once: loading the CA bundle takes ~50 ms.
    return ssl.create_default_context(cafile=certifi.where())


def credential_id(prefix: str, secret: str) -> str:
    """A stable, non-secret id for a credential, so providers sharing a key share one quota."""
    return f"{prefix}:{hashlib.sha256(secret.encode()).hexdigest()[:12]}"


class HttpProvider(Provider):
    """Base for providers that talk HTTP: owns (or borrows) a client and maps transport failures."""

    label: ClassVar[str] = "The image service"  # shown to users in error messages

    def __init__(
        self, *, base_url: str, model: str, credential: str, client: httpx.AsyncClient | None
    ) -> None:
        super().__init__(model=model, credential=credential)
        self.base_url = base_url.rstrip("/")
        self._owns_client = client is None
        self._client = client or make_client()

    def __repr__(self) -> str:
        # Deliberately no key, password or URL userinfo: reprs end up in logs.
        return f"<{type(self).__name__} model={self.model!r} credential={self.credential!r}>"

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._client.request(method, _parsed(url), **kwargs)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            # A settings mistake, not an outage: retrying cannot help.
            raise InvalidRequestError(f"{self.label} address is not a valid http(s) URL") from exc
        except httpx.TimeoutException as exc:
            raise TransientError(f"{self.label} did not answer in time") from exc
        except httpx.ConnectError as exc:
            raise TransientError(f"Could not connect to {self.label}") from exc
        except httpx.TransportError as exc:
            raise TransientError(f"{self.label} closed the connection unexpectedly") from exc


@functools.lru_cache(maxsize=256)
def _parsed(url: str) -> httpx.URL:
    """A provider's few endpoints, parsed once: given a string, httpx parses it and checks its host on
    every request (a twentieth of the event loop's CPU per image here)."""
    return httpx.URL(url)


def parse_duration(text: str | None) -> float | None:
    """Parse Go-style durations as OpenAI sends them ("1s", "6m0s", "20ms", "1h2m3.5s") or Google's "13s"."""
    if not text:
        return None
    text = text.strip()
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        try:
            return max(0.0, float(text))  # a bare number means seconds
        except ValueError:
            return None
    return sum(float(n) * _DURATION_UNITS[u] for n, u in parts)


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from retry-after-ms (preferred, finer) or retry-after (seconds or HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    try:
        return int(headers[name])
    except (KeyError, ValueError):
        return None


def parse_rate_limit(headers: Mapping[str, str]) -> RateLimit | None:
    """The x-ratelimit-*-requests trio, or None when the server sent none of it."""
    limit = _int_header(headers, "x-ratelimit-limit-requests")
    remaining = _int_header(headers, "x-ratelimit-remaining-requests")
    reset = parse_duration(headers.get("x-ratelimit-reset-requests"))
    if limit is None and remaining is None and reset is None:
        return None
    return RateLimit(limit_requests=limit, remaining_requests=remaining, reset_seconds=reset)


def quota_wait(headers: Mapping[str, str], rate_limit: RateLimit | None) -> float | None:
    """How long a 429 asks us to wait: the explicit header, else the window reset if it is spent."""
    wait = parse_retry_after(headers)
    if wait is None and rate_limit and rate_limit.remaining_requests == 0:
        wait = rate_limit.reset_seconds
    return wait


def wait_text(seconds: float | None) -> str:
    """ "retry in 13s" for messages; sub-second waits round up so users never read "0s"."""
    if seconds is None:
        return "retry later"
    return f"retry in {max(1, math.ceil(seconds))}s"


def json_body(response: httpx.Response) -> Any:
    """The parsed JSON body, or None when it is not JSON (HTML error pages, truncated bodies)."""
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None


def require_json(response: httpx.Response, label: str) -> dict:
    body = json_body(response)
    if not isinstance(body, dict):
        raise TransientError(f"{label} sent an unreadable response", http_status=response.status_code)
    return body


def short(text: object, limit: int = 160, *, secrets: tuple[str, ...] = ()) -> str:
    """Trim a provider-supplied message for display, scrubbing any secret it might echo back."""
    result = redact(" ".join(str(text or "").split()), secrets)
    return result if len(result) <= limit else result[: limit - 1] + "…"


def error_for_status(response: httpx.Response, label: str) -> ProviderError:
    """Fallback mapping for statuses a provider module did not recognise more precisely."""
    status = response.status_code
    if status in (401, 403):
        return AuthError(f"{label} rejected the credentials", http_status=status)
    if status == 429:
        limits = parse_rate_limit(response.headers)
        wait = quota_wait(response.headers, limits)
        return QuotaError(
            f"{label} rate limit reached ({wait_text(wait)})", retry_after=wait, rate_limit=limits
        )
    if status in (408, 409, 425) or status >= 500:
        return TransientError(f"{label} had a server error ({status})", http_status=status)
    return InvalidRequestError(f"{label} rejected the request ({status})", http_status=status)


def decode_base64(data: str | None, label: str) -> bytes:
    if not isinstance(data, str) or not data:
        raise TransientError(f"{label} sent no image data")
    if data.startswith("data:"):
        data = data.partition(",")[2]  # some servers wrap the payload as a data: URL
    for altchars in (None, b"-_"):
        try:
            return base64.b64decode(data, altchars=altchars, validate=True)
        except (binascii.Error, ValueError):
            continue
    raise TransientError(f"{label} sent a corrupt image (bad base64)")


def check_image(data: bytes, label: str) -> str:
    """Return the image's MIME type, or raise TransientError when the bytes are not a whole image.

    A PNG is checked by its chunks' CRCs, up to IEND (verify): that catches a cut or damaged file
    without decoding the pixels, which for a 1024x1024 PNG costs ten times as much (26 ms of CPU
    against 2.4). JPEG and WebP carry no such checksums, so they are decoded (load): verify() lets a
    cut one through."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            fmt = image.format or ""
            if fmt == "PNG":
                image.verify()
            else:
                image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise TransientError(f"{label} sent a broken image") from exc
    return _MIMES.get(fmt, f"image/{fmt.lower() or 'png'}")


async def image_from_base64(data: str | None, label: str) -> tuple[bytes, str]:
    """Decode and verify, off the event loop when large: a large JPEG takes tens of ms to check."""
    return await off_loop(len(data or ""), _decode_and_check, data, label)


async def image_from_bytes(data: bytes, label: str) -> str:
    return await off_loop(len(data), check_image, data, label)


async def off_loop(size: int, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`func(*args, **kwargs)` on `size` bytes of image: in a thread when large, here when small, where
    the work costs less than the hop to a thread and back (50-150 µs of CPU) and holds the loop no longer."""
    if size <= INLINE_BYTES:
        return func(*args, **kwargs)
    return await asyncio.to_thread(func, *args, **kwargs)


def _decode_and_check(data: str | None, label: str) -> tuple[bytes, str]:
    raw = decode_base64(data, label)
    return raw, check_image(raw, label)
