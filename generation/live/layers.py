"""The Redis channel layer the studio configures (settings.CHANNEL_LAYERS): channels_redis's pub/sub layer,
with every call that touches Redis bounded in time and retried on a connection of its own.

After a Redis restart each process still holds its old pub/sub connection. The layer's reader task and
the next subscribe then reconnect that one connection at once, each reading the other's handshake
replies ("unknown subcommand 'SETINFO'"), and redis-py retries a read that gets no answer, five seconds
each, up to ten times: a WebSocket connect waited minutes (and a CI run timed out). So a call gets
ATTEMPT_SECONDS; when it fails the shard's client, reader and pub/sub are dropped whole, and the next
attempt subscribes a new one, which no reader shares yet, to every channel and group this process holds.

This reaches into channels_redis 4.x's shard (pyproject pins <5): its connection has no reset of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from channels_redis.pubsub import RedisPubSubChannelLayer, _async_proxy
from channels_redis.utils import _close_redis
from redis.exceptions import RedisError

logger = logging.getLogger("generation.live")

RETRY_DELAYS = (0.0, 0.2, 0.5, 1.0)
ATTEMPT_SECONDS = 3.0  # a subscribe answers in milliseconds; Redis still starting gets the retries
CLOSE_SECONDS = 1.0
RESTORE_SECONDS = 1.0
# RuntimeError too: on a connection that just broke, redis-py's "readuntil() called while another
# coroutine is already waiting" (the reader task and a subscribe both on it) is the same fault.
# TimeoutError (an OSError) is an attempt out of time; ConnectionError is an OSError too.
RETRIED = (RedisError, OSError, RuntimeError)


class RetryingPubSubChannelLayer(RedisPubSubChannelLayer):
    """Subscribing calls (a socket's channel and its groups) retry; a publish gets one bounded attempt,
    as a lost event is resynced by its pages and a doubled one is not undone."""

    async def new_channel(self, prefix: str = "specific.") -> str:
        return await self._retrying("new_channel", prefix)

    async def group_add(self, group: str, channel: str) -> None:
        await self._retrying("group_add", group, channel)

    async def group_discard(self, group: str, channel: str) -> None:
        await self._retrying("group_discard", group, channel)

    async def group_send(self, group: str, message: dict) -> None:
        # A publish is on a pooled connection, which redis-py discards when cancelled: the pub/sub one
        # and its subscriptions are left alone.
        async with asyncio.timeout(ATTEMPT_SECONDS):
            await _async_proxy(self, "group_send", group, message)

    async def _retrying(self, name: str, *args: object):
        for delay in (*RETRY_DELAYS, None):
            try:
                async with asyncio.timeout(ATTEMPT_SECONDS):
                    await self._resubscribe()
                    return await _async_proxy(self, name, *args)
            except RETRIED:
                await self._drop_connections()
                if delay is None:
                    self._restore_later()
                    raise
                logger.warning("Channel layer %s failed; retrying on a new connection", name, exc_info=True)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def flush(self) -> None:
        restoring = getattr(self._get_layer(), "restoring", None)
        if restoring is not None:
            restoring.cancel()
        await _async_proxy(self, "flush")

    def _restore_later(self) -> None:
        """The sockets already open make no call of their own that would resubscribe them."""
        layer = self._get_layer()
        restoring = getattr(layer, "restoring", None)
        if restoring is None or restoring.done():
            layer.restoring = asyncio.ensure_future(self._restore())

    async def _restore(self) -> None:
        while True:
            await asyncio.sleep(RESTORE_SECONDS)
            try:
                async with asyncio.timeout(ATTEMPT_SECONDS):
                    return await self._resubscribe()
            except RETRIED:
                await self._drop_connections()

    async def _resubscribe(self) -> None:
        """Subscribe each shard to the channels and groups of this process it is not subscribed to."""
        layer = self._get_layer()
        wanted = set(layer.channels) | set(layer.groups)
        for shard in layer._shards:
            async with shard._lock:
                missing = {name for name in wanted if layer._get_shard(name) is shard} - shard._subscribed_to
                if missing:
                    shard._ensure_redis()
                    shard._ensure_receiver()
                    await shard._pubsub.subscribe(*missing)
                    shard._subscribed_to |= missing

    async def _drop_connections(self) -> None:
        for shard in self._get_layer()._shards:
            try:
                async with asyncio.timeout(ATTEMPT_SECONDS):
                    async with shard._lock:  # a call still on the old connection finishes first
                        await _drop(shard)
            except TimeoutError:
                logger.warning("Channel layer shard %s is busy; its connection is kept", shard.host)


async def _drop(shard) -> None:
    reader, shard._receive_task = shard._receive_task, None
    client, pubsub = shard._redis, shard._pubsub
    shard._redis, shard._pubsub, shard._subscribed_to = None, None, set()
    if reader is not None:
        reader.cancel()
    with contextlib.suppress(Exception):  # the old connection is broken; closing it is best effort
        async with asyncio.timeout(CLOSE_SECONDS):
            if reader is not None:
                await asyncio.wait({reader})
            if pubsub is not None:
                await pubsub.aclose()
            if client is not None:
                await _close_redis(client)
