"""An httpx transport that keeps one connection per httpcore pool, so a request's bookkeeping costs the
same with 2 connections open or 128.

httpcore 1.0's pool walks every connection it holds on each request and each response
(`_assign_requests_to_connections`): an expiry probe with a poll() per idle socket, and a keep-alive count
that is quadratic and counts busy connections as idle, so past `max_keepalive_connections` open
connections it closes every connection a response frees (encode/httpcore#1035, still open). At the engine's
concurrency that is a new TCP (with a real provider, TLS) connection per image, or with a larger keep-alive
limit about ten times the client CPU per request. Here each connection is an `httpx.AsyncHTTPTransport`
of its own (its pool of one is cheap to walk), lent to one request at a time: the most recently freed
first, so idle ones age out from the other end.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator

import httpcore
import httpx

from generation.providers.netstream import AsyncioBackend

BACKEND = AsyncioBackend()


class ConnectionPerTransport(httpx.AsyncBaseTransport):
    def __init__(
        self, *, max_connections: int, keepalive_expiry: float, verify: ssl.SSLContext | bool = True
    ) -> None:
        self._max = max_connections
        self._expiry = keepalive_expiry
        self._verify = verify
        self._idle: deque[tuple[httpx.AsyncHTTPTransport, float]] = deque()  # oldest on the left
        self._lent = 0
        self._freed: asyncio.Event | None = None  # made on the first wait, in the loop that waits
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = await self._borrow()
        try:
            response = await transport.handle_async_request(request)
        except BaseException:
            await self._give_back(transport)
            raise
        # Given back when httpx closes the response, which it does once the body is read.
        response.stream = _Returning(response.stream, self, transport)
        return response

    async def _borrow(self) -> httpx.AsyncHTTPTransport:
        # The one place idle connections are aged out: where one is about to be reused.
        await self._expire(time.monotonic())
        while not self._idle and self._lent >= self._max:
            # As the stock pool with pool=None: wait for a connection, however long (the engine caps
            # concurrency, so this is queueing asked for, not a failure).
            if self._freed is None:
                self._freed = asyncio.Event()
            await self._freed.wait()
        self._lent += 1
        if self._idle:
            return self._idle.pop()[0]
        return self._one_connection()

    def _one_connection(self) -> httpx.AsyncHTTPTransport:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1, keepalive_expiry=self._expiry)
        transport = httpx.AsyncHTTPTransport(limits=limits, verify=self._verify, http2=False)
        # httpx takes no network backend, so its pool is built again, the same but on asyncio's own
        # transports (netstream.py); httpx maps the pool's errors and wraps its responses as before.
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=transport._pool._ssl_context,
            max_connections=1,
            max_keepalive_connections=1,
            keepalive_expiry=self._expiry,
            http1=True,
            http2=False,
            network_backend=BACKEND,
        )
        return transport

    async def _give_back(self, transport: httpx.AsyncHTTPTransport) -> None:
        self._lent -= 1
        if self._closed:  # the client closed while this response was being read
            await transport.aclose()
            return
        self._idle.append((transport, time.monotonic()))
        if self._freed is not None:
            self._freed.set()
            self._freed = None

    async def _expire(self, now: float) -> None:
        # The left end has waited longest: close what outlived the keep-alive (the socket and the object).
        while self._idle and now - self._idle[0][1] > self._expiry:
            transport, _ = self._idle.popleft()
            await transport.aclose()

    async def aclose(self) -> None:
        self._closed = True
        while self._idle:
            transport, _ = self._idle.popleft()
            await transport.aclose()


class _Returning(httpx.AsyncByteStream):
    """A response body that gives its connection back once closed."""

    def __init__(
        self,
        stream: httpx.AsyncByteStream,
        owner: ConnectionPerTransport,
        transport: httpx.AsyncHTTPTransport,
    ) -> None:
        self._stream, self._owner, self._transport = stream, owner, transport
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self._stream.aclose()
        finally:
            await self._owner._give_back(self._transport)
