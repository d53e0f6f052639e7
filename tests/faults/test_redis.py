"""Redis restarted under the shared limiter and the channel layer: the limiter must not forget the sends
of the last window, and a WebSocket's channel must still be created."""

from __future__ import annotations

import asyncio

import pytest

from generation.live.layers import RetryingPubSubChannelLayer
from generation.quota.redis import RedisLimiter

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
