"""Redis restarted under the shared limiter and the channel layer: the limiter must not forget the sends
of the last window, and a WebSocket's channel must still be created."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from types import SimpleNamespace

import pytest
from redis.exceptions import RedisError, ResponseError

from generation.live.layers import RetryingPubSubChannelLayer
from generation.quota import redis as limiter_module
from generation.quota.redis import RedisLimiter
from tests.generation.conftest import poll_until

pytestmark = pytest.mark.faults

RATE, WINDOW = 5, 1.5


async def test_after_a_redis_restart_the_limiter_treats_the_window_as_full(redis_server):
    limiter = RedisLimiter(redis_server.url, "restart-key", RATE, window=WINDOW, margin=0.0)
    loop = asyncio.get_running_loop()
    for _ in range(RATE):
        await limiter.acquire()
    filled = loop.time()
    await asyncio.to_thread(redis_server.restart)  # every key is gone, the provider's window is not
    sends = []
    async with asyncio.timeout(10):
        while len(sends) < RATE:
            await limiter.acquire()
            sends.append(loop.time())
    # No window of WINDOW seconds holds more than RATE sends: the five after the restart wait for the
    # five before it to leave the window.
    assert sends[0] - filled >= WINDOW * 0.9


async def test_the_limiter_draws_an_epoch_id_only_when_it_creates_an_epoch(redis_server, monkeypatch):
    # Random bytes are a system call, and on the event loop one lets the ORM's thread take the GIL: a
    # send that finds the epoch in place needs none. After a restart one is drawn, and the restart seen.
    drawn = []
    draw = SimpleNamespace(token_hex=lambda n: drawn.append(n) or secrets.token_hex(n))
    monkeypatch.setattr(limiter_module, "secrets", draw)
    limiter = RedisLimiter(redis_server.url, "epoch-key", 1000, window=WINDOW, margin=0.0)
    for _ in range(20):
        await limiter.acquire()
    assert len(drawn) <= 2  # the first epoch, and the next candidate once that one was taken
    first = limiter._epoch
    await asyncio.to_thread(redis_server.restart)
    async with asyncio.timeout(5):
        while limiter._epoch == first:  # the first call after the restart finds the connection closed
            await limiter.acquire()
    assert limiter._epoch
    assert len(drawn) <= 3


async def test_a_new_channel_is_created_after_a_redis_restart(redis_server):
    layer = RetryingPubSubChannelLayer(hosts=[redis_server.url])
    try:
        await layer.new_channel()
        await asyncio.to_thread(redis_server.restart)
        channel = await layer.new_channel()  # the first WebSocket to a Daphne after the restart
        await layer.group_add("project-1", channel)
        await layer.group_send("project-1", {"type": "hello"})
        async with asyncio.timeout(5):
            assert (await layer.receive(channel))["type"] == "hello"
    finally:
        await layer.flush()


class SilentRedis:
    """A TCP proxy in front of Redis that drops every reply: a request leaves and its answer never
    comes, as when another coroutine on the same connection read it."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.tasks: set[asyncio.Task] = set()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return f"redis://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(self._forward(reader, writer))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, upstream = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        try:
            while data := await reader.read(65536):
                upstream.write(data)
        finally:
            upstream.close()
            writer.close()


async def test_a_call_on_a_redis_that_never_answers_fails_in_bounded_time(redis_server, monkeypatch):
    monkeypatch.setattr("generation.live.layers.ATTEMPT_SECONDS", 0.5)
    async with SilentRedis(redis_server.port) as url:
        layer = RetryingPubSubChannelLayer(hosts=[url])
        call = asyncio.ensure_future(layer.new_channel())
        try:
            done, _ = await asyncio.wait({call}, timeout=15)
            # redis-py alone reads each reply for 5 s, ten times over: a WebSocket connect waited minutes.
            assert done, "new_channel still waiting after 15 s on a Redis that never answers"
            with pytest.raises(OSError):
                call.result()
        finally:
            call.cancel()
            await layer.flush()


async def test_a_failed_call_drops_the_connection_and_keeps_every_subscription(redis_server):
    layer = RetryingPubSubChannelLayer(hosts=[redis_server.url])
    try:
        first = await layer.new_channel()  # a socket open before the fault
        await layer.group_add("project-1", first)
        shard = layer._get_layer()._shards[0]
        confused = shard._pubsub
        real_subscribe = confused.subscribe

        async def subscribe_once_confused(*channels):
            confused.subscribe = real_subscribe
            raise ResponseError("unknown subcommand 'SETINFO'. Try CLIENT HELP.")  # another reader's reply

        confused.subscribe = subscribe_once_confused
        async with asyncio.timeout(10):
            second = await layer.new_channel()
            assert shard._pubsub is not confused  # the next attempt ran on a connection of its own
            await layer.group_add("project-1", second)
            await layer.group_send("project-1", {"type": "hello"})
            assert (await layer.receive(first))["type"] == "hello"
            assert (await layer.receive(second))["type"] == "hello"
            await layer.send(first, {"type": "direct"})
            assert (await layer.receive(first))["type"] == "direct"
    finally:
        await layer.flush()


async def test_sockets_open_before_an_outage_receive_again_when_redis_is_back(redis_server, monkeypatch):
    monkeypatch.setattr("generation.live.layers.ATTEMPT_SECONDS", 0.3)
    monkeypatch.setattr("generation.live.layers.RETRY_DELAYS", (0.1,))
    layer = RetryingPubSubChannelLayer(hosts=[redis_server.url])
    try:
        first = await layer.new_channel()
        await layer.group_add("project-1", first)
        restart = asyncio.ensure_future(asyncio.to_thread(redis_server.restart, down_seconds=3.0))
        pubsub = layer._get_layer()._shards[0]._pubsub

        async def gone() -> bool:
            return redis_server.process.poll() is not None and not pubsub.connection.is_connected

        # Down, and the layer knows it: a subscribe written to a connection whose peer is gone raises nothing.
        await poll_until(gone)
        with pytest.raises((RedisError, OSError)):  # every attempt falls inside the outage
            await layer.new_channel()
        await restart
        async with asyncio.timeout(10):  # no call of the first socket's own brings it back
            while True:
                with contextlib.suppress(TimeoutError):  # a publish out of time, or nothing received yet
                    await layer.group_send("project-1", {"type": "hello"})
                    async with asyncio.timeout(0.5):
                        assert (await layer.receive(first))["type"] == "hello"
                        break
    finally:
        await layer.flush()
