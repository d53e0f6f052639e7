"""The project's live channel: members watch, editors and owners also start, stop and retry."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from generation import selectors
from generation.realtime import project_group
from generation.services import RunRefused, perform_action
from projects.models import ROLE_RANK, Membership, Role

ACTIONS = {"start", "stop", "retry", "retry_failed", "start_characters"}


class ProjectConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        self.project_id = int(self.scope["url_route"]["kwargs"]["project_id"])
        self.group = project_group(self.project_id)
        if await self.role() is None:
            await self.close(code=4404)  # before accept: the handshake is refused
            return
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_snapshot()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: dict, **kwargs) -> None:
        action = content.get("action")
        if action == "snapshot":
            await self.send_snapshot()
            return
        if action not in ACTIONS:
            await self.send_json({"type": "error", "message": f"Unknown action {action!r}"})
            return
        role = await self.role()  # checked again: membership may have changed since connect
        if role is None or ROLE_RANK[role] < ROLE_RANK[Role.EDITOR]:
            await self.send_json({"type": "error", "message": "Only editors and owners can do that."})
            return
        try:
            reply = await database_sync_to_async(perform_action)(
                project_id=self.project_id,
                user=self.scope["user"],
                action=action,
                scene_id=content.get("scene"),
            )
        except RunRefused as exc:
            reply = {"type": "refused", "message": exc.message, "missing": [c.name for c in exc.missing]}
        await self.send_json(reply)

    async def dispatch(self, message: dict) -> None:
        if message["type"] == "generation.batch":
            # The hot path touches no database, so it skips channels' per-message connection clean-up,
            # which runs on the one sync thread the worker's writes queue on and delayed events by seconds.
            await self.send(text_data=message["text"])
            return
        await super().dispatch(message)

    async def send_snapshot(self) -> None:
        snapshot = await database_sync_to_async(selectors.project_snapshot)(project_id=self.project_id)
        await self.send_json({"type": "snapshot", **snapshot})

    @database_sync_to_async
    def role(self) -> str | None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return None
        return (
            Membership.objects.filter(project_id=self.project_id, user=user)
            .values_list("role", flat=True)
            .first()
        )
