"""The providers' HTTP transport: httpx's client API over aiohttp's connection pool and C parser.

Providers speak httpx (its requests, responses and errors are what their modules map); under it, an
aiohttp connector keeps a connection alive for each concurrent request and llhttp reads the answers.
Against httpcore on asyncio's transports, which this replaces, it took about a quarter off the event
loop's CPU per request on loopback (`python -m bench http_client`). aiohttp's failures reach the
providers as the httpx errors they turn into a retry or a reason; httpx's own error types are kept.

aiohttp has no write timeout, and its read timeout starts once the body is sent: a server that stopped
reading a large body would hold the request forever. A body larger than a socket buffer takes is sent
in chunks instead, and each must leave within the write timeout (_Upload).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any, TypeVar

import aiohttp
import httpx
from yarl import URL

T = TypeVar("T")
# The server broke HTTP: hung up, sent a body shorter than it said, or a head that does not parse.
_PROTOCOL_ERRORS = (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.ClientResponseError)
# A body up to this size is handed to the connection whole: asyncio buffers it, so the write cannot stall.
CHUNK = 64 * 1024
# httpx already sends these (or chose not to): aiohttp must not add its own.
_HTTPX_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Up to `max_connections` connections at once, each kept `keepalive_expiry` seconds after use; a
    request past the limit waits for a free one, however long (the engine caps concurrency, so that is
    queueing asked for, not a provider failure)."""

    def __init__(
        self,
        *,
        max_connections: int,
        keepalive_expiry: float,
        verify: ssl.SSLContext | bool = True,
        trace_configs: Sequence[aiohttp.TraceConfig] = (),
    ) -> None:
        self._max = max_connections
        self._expiry = keepalive_expiry
        self._verify = verify
        self._trace_configs = list(trace_configs)
        # A session belongs to the loop it was made in: one per loop, gone with it (tests run a loop per
        # test; a worker runs one).
        self._sessions: weakref.WeakKeyDictionary[Any, aiohttp.ClientSession] = weakref.WeakKeyDictionary()

    def _session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._max, keepalive_timeout=self._expiry, ssl=self._verify
            )
            session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,  # httpx decodes the body, as it does with its own transports
                skip_auto_headers=_HTTPX_HEADERS,
                cookie_jar=aiohttp.DummyCookieJar(),  # httpx keeps the cookies
                trace_configs=self._trace_configs or None,
            )
            self._sessions[loop] = session
        return session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=None,  # includes the wait for a free connection: unbounded, see the class
            sock_connect=timeouts.get("connect"),
            sock_read=timeouts.get("read"),
        )
        body = await request.aread()
        send = functools.partial(
            self._session().request,
            request.method,
            URL(str(request.url), encoded=True),
            headers=request.headers.multi_items(),
            timeout=timeout,
            allow_redirects=False,  # httpx follows redirects itself, when told to
            compress=None,
        )
        with _mapped(request):
            if len(body) <= CHUNK or timeouts.get("write") is None:
                response = await send(data=body or None)
            else:
                response = await _Upload(body, timeouts["write"]).send(send, request)
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_Body(response, request),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": (response.reason or "").encode()},
        )

    async def aclose(self) -> None:
        sessions = list(self._sessions.values())
        self._sessions.clear()
        for session in sessions:
            with contextlib.suppress(RuntimeError):  # its loop is closed: nothing left to close
                await session.close()


class _Upload:
    """A large request body, sent in chunks, each of which must leave within `timeout` seconds."""

    def __init__(self, body: bytes, timeout: float) -> None:
        self.body, self.timeout = body, timeout
        self.moved = 0.0  # loop time when aiohttp last took a chunk (the one before had left)
        self.sent = False

    async def chunks(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        for start in range(0, len(self.body), CHUNK):
            self.moved = loop.time()
            yield self.body[start : start + CHUNK]
        self.sent = True  # from here aiohttp's read timeout runs

    async def send(self, send: Callable[..., Awaitable[T]], request: httpx.Request) -> T:
        loop = asyncio.get_running_loop()
        self.moved = loop.time()
        task = asyncio.ensure_future(send(data=self.chunks()))
        try:
            while not self.sent and not task.done():
                await asyncio.wait({task}, timeout=max(0.0, self.moved + self.timeout - loop.time()))
                if not self.sent and not task.done() and loop.time() - self.moved >= self.timeout:
                    raise httpx.WriteTimeout("the server stopped reading the request", request=request)
            return await task
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait({task})


class _Body(httpx.AsyncByteStream):
    """A response body read from aiohttp; closing it hands the connection back (or drops it when the body
    was not read to the end)."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response, self._request = response, request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped(self._request):
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        self._response.release()


@contextlib.contextmanager
def _mapped(request: httpx.Request) -> Iterator[None]:
    """aiohttp's failures as the httpx errors providers handle."""
    try:
        yield
    except aiohttp.NonHttpUrlClientError as error:  # as httpx's own transport says of ftp:// and the like
        raise httpx.UnsupportedProtocol(f"not an http(s) URL: {error}", request=request) from error
    except aiohttp.InvalidUrlClientError as error:
        raise httpx.InvalidURL(str(error)) from error
    except aiohttp.ConnectionTimeoutError as error:
        raise httpx.ConnectTimeout(str(error) or "connect timed out", request=request) from error
    except aiohttp.ServerTimeoutError as error:
        raise httpx.ReadTimeout(str(error) or "read timed out", request=request) from error
    except aiohttp.ClientConnectorError as error:  # refused, unreachable, DNS, TLS verification
        raise httpx.ConnectError(str(error), request=request) from error
    except _PROTOCOL_ERRORS as error:
        raise httpx.RemoteProtocolError(str(error), request=request) from error
    except (aiohttp.ClientOSError, aiohttp.ClientConnectionError) as error:
        raise httpx.ReadError(str(error), request=request) from error
