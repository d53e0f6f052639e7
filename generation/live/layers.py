"""The Redis channel layer the studio configures (settings.CHANNEL_LAYERS): channels_redis's pub/sub layer,
retrying the calls a socket makes as it connects.

After a Redis restart each process still holds its old pub/sub connection; the first subscribe on it
raises ConnectionError (and drops it), so the first WebSocket to each Daphne got an HTTP 500. One retry on
a fresh connection succeeds; a few short ones cover Redis still starting.
"""

from __future__ import annotations

import asyncio
import logging

from channels_redis.pubsub import RedisPubSubChannelLayer, _async_proxy
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger("generation.live")

RETRY_DELAYS = (0.0, 0.2, 0.5, 1.0)
# RuntimeError too: on a connection that just broke, redis-py's "readuntil() called while another
# coroutine is already waiting" (the layer's reader task and the subscribe both on it) is the same fault.
RETRIED = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError, RuntimeError)


class RetryingPubSubChannelLayer(RedisPubSubChannelLayer):
    """Subscribing calls (a new socket's channel and its groups) retry on a dropped connection."""

    async def new_channel(self, prefix: str = "specific.") -> str:
        return await self._retrying("new_channel", prefix)

    async def group_add(self, group: str, channel: str) -> None:
        await self._retrying("group_add", group, channel)

    async def _retrying(self, name: str, *args: object):
        for delay in (*RETRY_DELAYS, None):
            try:
                return await _async_proxy(self, name, *args)
            except RETRIED:
                if delay is None:
                    raise
                logger.warning("Channel layer %s failed; retrying on a new connection", name, exc_info=True)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")
