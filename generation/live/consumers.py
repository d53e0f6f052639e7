"""The project's live channel: members watch, editors and owners also start, stop and retry."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.core.exceptions import PermissionDenied
from django.http import Http404

from generation import selectors
from generation.live.dispatch import DirectDispatch
from generation.live.events import project_group, user_group
from generation.services import RunRefused, perform_action
from projects.access import has_role

ACTIONS = {"start", "stop", "retry", "retry_failed", "start_characters"}

# Close codes: the handshake refused (not a member), access lost while open, the session logged out.
CLOSE_NOT_MEMBER = 4404
CLOSE_ACCESS_CHANGED = 4403
CLOSE_LOGGED_OUT = 4401


class BadFrame(Exception):
    """A frame the socket cannot act on; the message says why, and the socket stays open."""


@dataclass(frozen=True)
class Command:
    action: str
    scene: int | None = None


def parse_frame(text_data: str | None, bytes_data: bytes | None) -> Command:
    """A client frame as a command, or BadFrame: anything a browser (or anyone) may send ends up here."""
    if text_data is None:
        raise BadFrame("Send text frames of JSON.")
    try:
        content = json.loads(text_data)
    except ValueError as exc:
        raise BadFrame("The frame is not valid JSON.") from exc
    if not isinstance(content, dict):
        raise BadFrame('Send a JSON object such as {"action": "snapshot"}.')
    action, scene = content.get("action"), content.get("scene")
    if not isinstance(action, str) or action not in {*ACTIONS, "snapshot"}:
        shown = action if isinstance(action, str) else type(action).__name__
        raise BadFrame(f"Unknown action {shown!r}")
    # bool is an int in Python, and `true` must not name scene 1.
    if scene is not None and (isinstance(scene, bool) or not isinstance(scene, int)):
        raise BadFrame("`scene` must be a scene id (a whole number).")
    return Command(action, scene)


class ProjectConsumer(DirectDispatch, AsyncJsonWebsocketConsumer):
    direct = frozenset({"generation.batch"})  # events, coalesced and encoded once for every watcher

    async def connect(self) -> None:
        self.project_id = int(self.scope["url_route"]["kwargs"]["project_id"])
        self.joined: list[str] = []
        if not await self.is_member():
            await self.close(code=CLOSE_NOT_MEMBER)  # before accept: the handshake is refused
            return
        session = self.scope.get("session")
        self.session_key = getattr(session, "session_key", None) if session is not None else None
        # The user's group carries the notices that end access (membership changes, logout).
        for group in (project_group(self.project_id), user_group(self.scope["user"].pk)):
            await self.channel_layer.group_add(group, self.channel_name)
            self.joined.append(group)
        await self.accept()
        await self.send_snapshot()

    async def disconnect(self, code: int) -> None:
        await self.leave()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs) -> None:
        try:
            command = parse_frame(text_data, bytes_data)
        except BadFrame as exc:
            await self.send_json({"type": "error", "message": str(exc)})
            return
        # Checked on every action: a notice that closes the socket may have been lost.
        if not await self.is_member():
            await self.end(CLOSE_ACCESS_CHANGED)
            return
        if command.action == "snapshot":
            await self.send_snapshot()
        else:
            await self.send_json(await self.act(command))

    async def generation_batch(self, message: dict) -> None:
        """Live events, coalesced and encoded once by generation.live.events for every watcher."""
        await self.send(text_data=message["text"])

    async def membership_changed(self, message: dict) -> None:
        if message.get("project") == self.project_id:
            await self.end(CLOSE_ACCESS_CHANGED)

    async def session_ended(self, message: dict) -> None:
        if self.session_key and message.get("session") == self.session_key:
            await self.end(CLOSE_LOGGED_OUT)

    async def end(self, code: int) -> None:
        # Out of the groups first: no event may reach the socket between the close and the disconnect.
        await self.leave()
        await self.close(code=code)

    async def leave(self) -> None:
        for group in self.joined:
            await self.channel_layer.group_discard(group, self.channel_name)
        self.joined = []

    async def send_snapshot(self) -> None:
        snapshot = await database_sync_to_async(selectors.project_snapshot)(project_id=self.project_id)
        await self.send_json({"type": "snapshot", **snapshot})

    @database_sync_to_async
    def is_member(self) -> bool:
        return has_role(user=self.scope.get("user"), project_id=self.project_id)

    @database_sync_to_async
    def act(self, command: Command) -> dict[str, Any]:
        """The service does the action and checks the role; this turns its outcome into a reply."""
        try:
            done = perform_action(
                project_id=self.project_id,
                user=self.scope["user"],
                action=command.action,
                scene_id=command.scene,
            )
        except PermissionDenied:
            return {"type": "error", "message": "Only editors and owners can do that."}
        except Http404 as exc:
            return {"type": "error", "message": str(exc)}
        except RunRefused as exc:
            return {"type": "refused", "message": exc.message, "missing": [c.name for c in exc.missing]}
        return {"type": "ack", "action": done.action, "run": done.run.pk, "created": done.created}
