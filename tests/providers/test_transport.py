"""The providers' connections (transport.py: httpx over aiohttp's pool), on both event loops the studio
uses: the worker's uvloop and the standard loop (conftest.py runs each test here on both). Connections
are kept and reused, one per concurrent request, and each socket-level failure reaches the providers as
the httpx error they turn into a retry or a reason."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import aiohttp
import httpx
import pytest
import trustme

from generation.providers.http import make_client
from generation.providers.transport import AiohttpTransport, _mapped
from tests.scale.servers import Cluster

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
IMAGE = {"model": "gpt-image-1", "prompt": "A lighthouse", "n": 1, "size": "1024x1024"}
KEY = {"Authorization": "Bearer sk-test"}


class Counted:
    """A client on the providers' transport that counts the TCP connections it opens."""

    def __init__(self, *, max_connections: int = 128, keepalive_expiry: float = 30.0, **options) -> None:
        self.connects = 0
        trace = aiohttp.TraceConfig()
        trace.on_connection_create_end.append(self._connected)
        self.transport = AiohttpTransport(
            max_connections=max_connections,
            keepalive_expiry=keepalive_expiry,
            trace_configs=[trace],
            **options,
        )
        self.client = httpx.AsyncClient(transport=self.transport, timeout=httpx.Timeout(10, pool=None))

    async def _connected(self, session, context, params) -> None:
        self.connects += 1

    async def images(self, url: str, *, requests: int, concurrency: int) -> None:
        gate = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with gate:
                response = await self.client.post(f"{url}/v1/images/generations", json=IMAGE, headers=KEY)
                assert response.status_code == 200

        await asyncio.gather(*(one() for _ in range(requests)))


@pytest.fixture
async def counted() -> AsyncIterator[Callable[..., Counted]]:
    made: list[Counted] = []

    def make(**options) -> Counted:
        made.append(Counted(**options))
        return made[-1]

    yield make
    for one in made:
        await one.client.aclose()


@pytest.fixture(scope="module")
def provider_process(tmp_path_factory) -> Iterator[str]:
    """The fake provider in a process of its own, as a worker meets a provider: a server in the test's
    own event loop answers in lockstep with the client and hides the churn."""
    # The scale suite's cluster, for its fake-provider process only: the database is never opened.
    cluster = Cluster(
        tmp_path_factory.mktemp("fakeprovider"), database_url="sqlite:///unused", redis_url=None, env={}
    )
    try:
        yield cluster.start_fake_provider("--latency", "0")
    finally:
        cluster.stop()


async def _head(reader: asyncio.StreamReader) -> int:
    """Read a request's head; returns its Content-Length."""
    return _content_length(await reader.readuntil(b"\r\n\r\n"))


def _content_length(head: bytes) -> int:
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


async def test_concurrent_requests_reuse_one_connection_each(provider_process, counted):
    client = counted()
    await client.images(provider_process, requests=1000, concurrency=100)
    assert client.connects <= 100, f"{client.connects} connections for 1000 requests, 100 at a time"


async def test_requests_past_the_limit_wait_for_a_free_connection(fake, counted):
    client = counted(max_connections=2)
    await client.images(fake.url, requests=20, concurrency=20)
    assert 1 <= client.connects <= 2


async def test_requests_send_what_httpx_built_and_reuse_the_connection(serve, counted):
    seen: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            seen.append(head)
            body = await reader.readexactly(_content_length(head))
            writer.write(_response(str(len(body)).encode()))
            await writer.drain()

    url = await serve(record)
    client = counted()
    for size in (0, 10, 200_000):
        response = await client.client.post(url, content=b"x" * size, headers={"X-Key": "k"})
        assert response.text == str(size)
    assert client.connects == 1
    head = seen[1].lower()
    assert b"x-key: k" in head and b"content-length: 10" in head
    # Only httpx's headers: aiohttp adds none of its own (no second User-Agent, Accept or length).
    assert head.count(b"user-agent: python-httpx") == 1 and b"aiohttp" not in head
    assert head.count(b"content-length") == 1 and head.count(b"accept:") == 1


async def test_a_failed_request_frees_its_connection():
    client = make_client(max_connections=1, connect_timeout=0.5)
    try:
        for _ in range(3):  # would wait forever on the second if the first kept the only slot
            with pytest.raises(httpx.ConnectError):
                await asyncio.wait_for(client.get("http://127.0.0.1:9/"), timeout=5)
    finally:
        await client.aclose()


async def test_a_connection_idle_past_its_keep_alive_is_closed_and_replaced(fake, counted):
    client = counted(max_connections=4, keepalive_expiry=0.05)
    await client.images(fake.url, requests=1, concurrency=1)
    await asyncio.sleep(0.2)
    await client.images(fake.url, requests=1, concurrency=1)
    assert client.connects == 2


async def test_closing_the_client_closes_its_connections(fake, counted):
    client = counted(max_connections=4, keepalive_expiry=30)
    await client.images(fake.url, requests=3, concurrency=3)
    (session,) = client.transport._sessions.values()
    await client.client.aclose()
    assert session.closed and not client.transport._sessions


async def test_with_a_proxy_in_the_environment_requests_go_through_it(fake, monkeypatch):
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", fake.url)
    client = make_client()
    try:
        # A host that resolves nowhere: only the proxy (the fake server on loopback) can answer.
        response = await client.get("http://images.invalid/_fake/health")
    finally:
        await client.aclose()
    assert response.status_code == 200


async def test_a_large_response_arrives_whole_in_chunks(serve):
    body = bytes(range(256)) * 8192  # 2 MiB

    async def large(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _head(reader)
        writer.write(_response(body))
        await writer.drain()

    client = make_client()
    try:
        async with client.stream("GET", await serve(large)) as response:
            chunks = [chunk async for chunk in response.aiter_raw()]
    finally:
        await client.aclose()
    assert b"".join(chunks) == body and len(chunks) > 1


async def test_a_gzipped_body_is_decoded_once(serve):
    import gzip

    packed = gzip.compress(b'{"ok": true}')

    async def zipped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _head(reader)
        writer.write(_response(packed, b"Content-Encoding: gzip"))
        await writer.drain()

    client = make_client()
    try:
        response = await client.get(await serve(zipped))
    finally:
        await client.aclose()
    assert response.json() == {"ok": True}


async def test_a_server_that_never_answers_is_a_read_timeout(serve):
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    client = make_client(read_timeout=0.2)
    try:
        with pytest.raises(httpx.ReadTimeout):
            await asyncio.wait_for(client.get(await serve(silent)), timeout=3)
    finally:
        await client.aclose()


async def test_a_server_that_stops_reading_the_request_is_a_write_timeout(serve):
    async def stalled(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    transport = AiohttpTransport(max_connections=1, keepalive_expiry=5)
    client = httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(5, write=0.3))
    try:
        with pytest.raises(httpx.WriteTimeout):
            await asyncio.wait_for(client.post(await serve(stalled), content=b"x" * 64_000_000), 5)
        # The connection it was stuck on is not kept: the next request opens its own.
        with pytest.raises(httpx.WriteTimeout):
            await asyncio.wait_for(client.post(await serve(stalled), content=b"x" * 64_000_000), 5)
    finally:
        await client.aclose()


async def test_a_large_body_to_a_slow_reader_arrives_whole(serve):
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        length = await _head(reader)
        body = b""
        while len(body) < length:
            body += await reader.read(256 * 1024)
            await asyncio.sleep(0.01)  # slower than the client writes: its chunks wait, none past 2 s
        writer.write(_response(str(len(body)).encode() + b" " + str(body.count(b"y")).encode()))
        await writer.drain()

    client = httpx.AsyncClient(
        transport=AiohttpTransport(max_connections=1, keepalive_expiry=5), timeout=httpx.Timeout(5, write=2)
    )
    try:
        response = await client.post(await serve(slow), content=b"y" * 8_000_000)
    finally:
        await client.aclose()
    assert response.text == "8000000 8000000"


@pytest.mark.parametrize(
    "answer",
    [b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10, b"HELLO THERE\r\n\r\n"],
    ids=["cut-mid-body", "not-http"],
)
async def test_an_answer_cut_short_or_not_http_is_a_protocol_error_not_a_response(serve, answer):
    async def broken(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _head(reader)
        writer.write(answer)
        await writer.drain()
        writer.close()

    client = make_client()
    try:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(await serve(broken))
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
        transport=AiohttpTransport(max_connections=2, keepalive_expiry=5, verify=trusted)
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


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (aiohttp.ConnectionTimeoutError("connect"), httpx.ConnectTimeout),
        (aiohttp.SocketTimeoutError("read"), httpx.ReadTimeout),
        (aiohttp.ServerDisconnectedError(), httpx.RemoteProtocolError),
        (aiohttp.ClientPayloadError("short"), httpx.RemoteProtocolError),
        (aiohttp.ClientOSError(104, "reset"), httpx.ReadError),
    ],
    ids=["connect-timeout", "read-timeout", "disconnected", "short-body", "reset"],
)
def test_aiohttp_failures_become_the_httpx_errors_providers_map(raised, expected):
    request = httpx.Request("GET", "http://images.example/")
    with pytest.raises(expected) as caught, _mapped(request):
        raise raised
    assert caught.value.request is request and isinstance(caught.value, httpx.TransportError)
