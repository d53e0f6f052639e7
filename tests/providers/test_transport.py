"""The providers' HTTP client keeps a connection per concurrent request and reuses it: httpcore's own pool
closed every freed connection past 16 open ones (a new TCP, with a real provider TLS, connection per
image) and, told to keep more, walked all of them on every request and response (encode/httpcore#1035)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpcore
import httpx
import pytest

from generation.providers.http import make_client
from generation.providers.transport import ConnectionPerTransport
from tests.scale.servers import Cluster


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


IMAGE = {"model": "gpt-image-1", "prompt": "A lighthouse", "n": 1, "size": "1024x1024"}
KEY = {"Authorization": "Bearer sk-test"}


async def _connects(client: httpx.AsyncClient, url: str, *, requests: int, concurrency: int) -> int:
    """How many TCP connections the requests opened (httpcore's trace reports each connect)."""
    connects = 0
    gate = asyncio.Semaphore(concurrency)

    async def trace(event: str, info: dict) -> None:
        nonlocal connects
        connects += event == "connection.connect_tcp.complete"

    async def one() -> None:
        async with gate:
            response = await client.post(
                f"{url}/v1/images/generations", json=IMAGE, headers=KEY, extensions={"trace": trace}
            )
            assert response.status_code == 200

    await asyncio.gather(*(one() for _ in range(requests)))
    return connects


async def test_concurrent_requests_reuse_one_connection_each(provider_process):
    client = make_client()
    try:
        connects = await _connects(client, provider_process, requests=1000, concurrency=100)
    finally:
        await client.aclose()
    assert connects <= 100, f"{connects} connections for 1000 requests, 100 at a time"


async def test_a_request_costs_the_pool_the_same_with_many_connections_open(provider_process, monkeypatch):
    probes = 0
    probe = httpcore.AsyncHTTP11Connection.has_expired

    def counted(self) -> bool:
        nonlocal probes
        probes += 1
        return probe(self)

    client = make_client()
    try:
        await _connects(client, provider_process, requests=64, concurrency=64)  # 64 connections open
        monkeypatch.setattr(httpcore.AsyncHTTP11Connection, "has_expired", counted)
        await _connects(client, provider_process, requests=640, concurrency=64)
    finally:
        await client.aclose()
    assert probes / 640 <= 4, f"{probes / 640:.0f} connection probes per request"


async def test_requests_past_the_limit_wait_for_a_free_connection(fake):
    client = make_client(max_connections=2)
    try:
        connects = await _connects(client, fake.url, requests=20, concurrency=20)
    finally:
        await client.aclose()
    assert 1 <= connects <= 2


async def test_a_failed_request_frees_its_connection():
    client = make_client(max_connections=1, connect_timeout=0.5)
    try:
        for _ in range(3):  # would wait forever on the second if the first kept the only slot
            with pytest.raises(httpx.ConnectError):
                await asyncio.wait_for(client.get("http://127.0.0.1:9/"), timeout=5)
    finally:
        await client.aclose()


async def test_a_connection_idle_past_its_keep_alive_is_closed_and_replaced(fake):
    transport = ConnectionPerTransport(max_connections=4, keepalive_expiry=0.05)
    client = httpx.AsyncClient(transport=transport)
    try:
        await _connects(client, fake.url, requests=1, concurrency=1)
        await asyncio.sleep(0.1)
        connects = await _connects(client, fake.url, requests=1, concurrency=1)
        kept = len(transport._idle)
    finally:
        await client.aclose()
    assert connects == 1
    assert kept == 1  # the old one closed, not kept beside the new one


async def test_a_response_read_after_the_client_closed_leaves_no_connection_open(fake):
    transport = ConnectionPerTransport(max_connections=4, keepalive_expiry=30)
    client = httpx.AsyncClient(transport=transport)
    request = client.build_request("GET", f"{fake.url}/_fake/health")
    response = await client.send(request, stream=True)
    await client.aclose()
    await response.aread()
    await response.aclose()
    assert response.status_code == 200 and not transport._idle


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
