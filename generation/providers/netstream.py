"""An httpcore network backend on asyncio's own transports, for the providers' connections.

httpcore reaches sockets through anyio, which under asyncio costs every read and write a cancel scope
with its own loop timer, an exception-mapping context manager, a checkpoint and a pause/resume of
reading (encode/httpx#3215; httpcore took a native asyncio backend out and declined to put one back,
encode/httpcore#930). Here this backend took 5-20% off the client's CPU per request on loopback, run to
run (the rest is httpx, httpcore and h11 themselves). This is the backend httpcore's
`network_backend` argument is for, built the way pydantic/httpx2#1170 builds its own: a protocol that
buffers what arrives, reads that return buffered bytes at once or wait on one future with a timer, and
writes that wait only when the transport pushes back.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections import deque
from collections.abc import Iterable
from typing import Any

import httpcore

# Reading pauses past this much unread (a response nobody reads yet) and resumes below the low mark.
HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024
# Writes up to this size wait to go out together with the next read: httpcore writes a request's head,
# body and end separately, and on loopback each write is a send() of its own.
COALESCE = 64 * 1024


class _Protocol(asyncio.Protocol):
    """Holds what the server sent until a read takes it, and whether the connection is still open."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.eof = False
        self.error: BaseException | None = None
        self.paused_reading = False
        self.paused_writing = False
        self._readable: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered > HIGH_WATER and not self.paused_reading and self.transport is not None:
            self.paused_reading = True
            self.transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake_reader()
        return False  # close our side too: HTTP/1.1 has no use for a half-open connection

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self._wake_reader()
        self.resume_writing()

    def pause_writing(self) -> None:
        self.paused_writing = True

    def resume_writing(self) -> None:
        self.paused_writing = False
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    def take(self, max_bytes: int) -> bytes:
        chunk = self.chunks.popleft()
        if len(chunk) > max_bytes:
            self.chunks.appendleft(chunk[max_bytes:])
            chunk = chunk[:max_bytes]
        self.buffered -= len(chunk)
        if self.paused_reading and self.buffered < LOW_WATER and self.transport is not None:
            self.paused_reading = False
            self.transport.resume_reading()
        return chunk

    async def readable(self, timeout: float | None) -> None:
        self._readable = asyncio.get_running_loop().create_future()
        await _within(self._readable, timeout, httpcore.ReadTimeout)

    async def writable(self, timeout: float | None) -> None:
        if self.paused_writing:
            self._writable = asyncio.get_running_loop().create_future()
            await _within(self._writable, timeout, httpcore.WriteTimeout)

    def _wake_reader(self) -> None:
        if self._readable is not None and not self._readable.done():
            self._readable.set_result(None)
        self._readable = None


async def _within(future: asyncio.Future[None], timeout: float | None, error: type[Exception]) -> None:
    """Wait for `future`, raising `error` past `timeout` seconds: one loop timer, no task, no scope."""
    if timeout is None:
        await future
        return
    timer = asyncio.get_running_loop().call_later(timeout, _expire, future, error, timeout)
    try:
        await future
    finally:
        timer.cancel()


def _expire(future: asyncio.Future[None], error: type[Exception], timeout: float) -> None:
    if not future.done():
        future.set_exception(error(f"no progress for {timeout:g} s"))


class AsyncioStream(httpcore.AsyncNetworkStream):
    def __init__(self, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self._unsent: list[bytes] = []
        self._unsent_size = 0

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if self._unsent:
            await self._flush(b"", timeout)
        protocol = self._protocol
        while not protocol.chunks:
            if protocol.eof:
                if protocol.error is not None:
                    raise httpcore.ReadError(str(protocol.error) or repr(protocol.error))
                return b""
            await protocol.readable(timeout)
        return protocol.take(max_bytes)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        if self._unsent_size + len(buffer) <= COALESCE:
            self._unsent.append(buffer)
            self._unsent_size += len(buffer)
            return
        await self._flush(buffer, timeout)

    async def _flush(self, buffer: bytes, timeout: float | None) -> None:
        data = b"".join((*self._unsent, buffer))
        self._unsent.clear()
        self._unsent_size = 0
        if self._transport.is_closing():
            raise httpcore.WriteError("the connection is closed")
        self._transport.write(data)
        await self._protocol.writable(timeout)
        if self._protocol.error is not None:
            raise httpcore.WriteError(str(self._protocol.error))

    async def aclose(self) -> None:
        self._transport.close()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport = await loop.start_tls(
                    self._transport, self._protocol, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError as error:
            self._transport.close()
            raise httpcore.ConnectTimeout("the TLS handshake timed out") from error
        except (OSError, ssl.SSLError) as error:
            self._transport.close()
            raise httpcore.ConnectError(str(error)) from error
        if transport is None:
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        self._protocol.transport = transport  # type: ignore[assignment]
        return AsyncioStream(transport, self._protocol)  # type: ignore[arg-type]

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            # An idle connection the server has closed (or written to out of turn) is no use.
            return bool(self._protocol.chunks) or self._protocol.eof
        names = {"client_addr": "sockname", "server_addr": "peername"}
        if info in ("ssl_object", "socket", *names):
            return self._transport.get_extra_info(names.get(info, info))
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[tuple[int, int, int | bytes | None]] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        local = (local_address, 0) if local_address else None
        try:
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_connection(_Protocol, host, port, local_addr=local)
        except TimeoutError as error:
            raise httpcore.ConnectTimeout(f"connecting to {host}:{port} timed out") from error
        except OSError as error:
            raise httpcore.ConnectError(str(error)) from error
        sock: socket.socket = transport.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)  # type: ignore[arg-type]
        return AsyncioStream(transport, protocol)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
