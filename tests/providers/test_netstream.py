"""The providers' connections run on asyncio's own transports (netstream.py), on both event loops the
studio uses: the worker's uvloop and the standard loop (conftest.py runs each test on both). Each
socket-level failure still reaches the providers as the httpx error they turn into a retry or a reason."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
import trustme

from generation.providers.http import make_client
from generation.providers.netstream import AsyncioStream
from generation.providers.transport import ConnectionPerTransport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _head(reader: asyncio.StreamReader) -> int:
    """Read a request's head; returns its Content-Length."""
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def _response(body: bytes, *extra: bytes) -> bytes:
    return b"\r\n".join([b"HTTP/1.1 200 OK", b"Content-Length: %d" % len(body), *extra, b"", body])


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[str]]]:
    servers: list[asyncio.Server] = []

    async def start(handler: Handler, *, tls: ssl.SSLContext | None = None) -> str:
        server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=tls)
        servers.append(server)
        scheme = "https" if tls else "http"
        return f"{scheme}://localhost:{server.sockets[0].getsockname()[1]}/"

    yield start
    for server in servers:
        server.close()


async def _echo_length(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers each request on the connection with the length of the body it got."""
    try:
        while True:
            body = await reader.readexactly(await _head(reader))
            writer.write(_response(str(len(body)).encode()))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


async def test_requests_go_over_asyncio_transports_and_reuse_the_connection(serve):
    url = await serve(_echo_length)
    streams = []

    async def trace(event: str, info: dict) -> None:
        if event == "connection.connect_tcp.complete":
            streams.append(info["return_value"])

    client = make_client()
    try:
        for size in (0, 10, 200_000):  # the last one larger than what a write holds back
            response = await client.post(url, content=b"x" * size, extensions={"trace": trace})
            assert response.text == str(size)
    finally:
        await client.aclose()
    assert len(streams) == 1 and isinstance(streams[0], AsyncioStream)


async def test_a_large_response_arrives_whole(serve):
    body = bytes(range(256)) * 8192  # 2 MiB: reading pauses and resumes on the way

    async def large(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _head(reader)
        writer.write(_response(body))
        await writer.drain()

    client = make_client()
    try:
        async with client.stream("GET", await serve(large)) as response:
            chunks = [chunk async for chunk in response.aiter_raw()]
            await asyncio.sleep(0.05)  # the server gets ahead of the reader
    finally:
        await client.aclose()
    assert b"".join(chunks) == body


async def test_a_server_that_never_answers_is_a_read_timeout(serve):
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    client = make_client(read_timeout=0.2)
    try:
        with pytest.raises(httpx.ReadTimeout):
            await asyncio.wait_for(client.get(await serve(silent)), timeout=3)
    finally:
        await client.aclose()


async def test_a_server_that_stops_reading_is_a_write_timeout(serve):
    async def stalled(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    transport = ConnectionPerTransport(max_connections=1, keepalive_expiry=5)
    client = httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(5, write=0.3))
    try:
        with pytest.raises(httpx.WriteTimeout):
            await asyncio.wait_for(client.post(await serve(stalled), content=b"x" * 64_000_000), 5)
    finally:
        await client.aclose()


async def test_a_connection_cut_mid_response_is_an_error_not_a_short_body(serve):
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
        await writer.drain()
        writer.close()

    client = make_client()
    try:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(await serve(cut))
    finally:
        await client.aclose()


async def test_a_kept_connection_the_server_closed_is_replaced_without_an_error(serve):
    connections = 0

    async def once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await _head(reader)
        writer.write(_response(b"ok"))  # says nothing of closing, then closes while the client idles
        await writer.drain()
        writer.close()

    url = await serve(once)
    client = make_client()
    try:
        assert (await client.get(url)).text == "ok"
        await asyncio.sleep(0.1)
        assert (await client.get(url)).text == "ok"
    finally:
        await client.aclose()
    assert connections == 2


async def test_https_verifies_the_server_and_refuses_a_wrong_name(serve):
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(server_context)
    trusted = ssl.create_default_context()
    authority.configure_trust(trusted)
    url = await serve(_echo_length, tls=server_context)

    client = httpx.AsyncClient(
        transport=ConnectionPerTransport(max_connections=2, keepalive_expiry=5, verify=trusted)
    )
    try:
        assert (await client.post(url, content=b"abc")).text == "3"
        wrong = url.replace("localhost", "127.0.0.1")  # the certificate names localhost only
        with pytest.raises(httpx.ConnectError):
            await client.get(wrong)
    finally:
        await client.aclose()
    untrusting = make_client()  # the public roots: the test authority is not among them
    try:
        with pytest.raises(httpx.ConnectError):
            await untrusting.get(url)
    finally:
        await untrusting.aclose()


async def test_nothing_listening_is_a_connect_error():
    client = make_client(connect_timeout=1)
    try:
        with pytest.raises(httpx.ConnectError):
            await client.get("http://127.0.0.1:9/")
    finally:
        await client.aclose()
