"""Message handlers that skip channels' database clean-up, for messages that touch no database."""

from __future__ import annotations

from typing import Any

from channels.consumer import get_handler_name


class DirectDispatch:
    """A consumer mixin: the message types in `direct` go straight to their handlers.

    channels' `AsyncConsumer.dispatch` awaits `aclose_old_connections()` before every handler, a hop to
    the one thread-sensitive thread where a worker's ORM writes queue. Behind every run's writes, that
    hop delayed each batch of events to a page by seconds, and each wake-up of a worker. A handler that
    touches no database needs no clean-up; what it starts through database_sync_to_async closes stale
    connections around every call itself."""

    direct: frozenset[str] = frozenset()

    async def dispatch(self, message: dict[str, Any]) -> None:
        if message["type"] not in self.direct:
            await super().dispatch(message)  # type: ignore[misc]
            return
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)
