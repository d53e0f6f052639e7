"""The project socket keeps checking access: removed, demoted and logged-out members lose the stream."""

from __future__ import annotations

import logging

import pytest
from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from generation.live.events import send_event
from generation.models import BatchRun
from projects import services as project_services
from projects.models import Membership, Role
from tests.generation.test_consumer import app, connect

pytestmark = pytest.mark.django_db(transaction=True)


async def assert_closed(communicator, within: float = 1.0) -> None:
    # receive_nothing() waits without cancelling the consumer, unlike a timed-out receive_output().
    assert not await communicator.receive_nothing(timeout=within), "the socket stayed open"
    assert (await communicator.receive_output())["type"] == "websocket.close"


async def assert_open(communicator) -> None:
    await communicator.send_json_to({"action": "snapshot"})
    assert (await communicator.receive_json_from())["type"] == "snapshot"


@database_sync_to_async
def membership_of(project, user) -> Membership:
    return Membership.objects.get(project=project, user=user)


async def test_a_removed_member_is_disconnected_and_gets_no_more_events(story, team):
    project, *_ = story
    communicator, _ = await connect(team.viewer, project.pk)
    try:
        await communicator.receive_json_from()
        membership = await membership_of(project, team.viewer)
        await database_sync_to_async(project_services.member_remove)(membership=membership)
        await assert_closed(communicator)
        await send_event(project.pk, {"type": "run.finished", "run": 1, "seq": 1})
        assert await communicator.receive_nothing(timeout=0.2)
    finally:
        await communicator.disconnect()


async def test_a_role_change_closes_the_members_socket_so_it_reconnects_with_the_new_role(story, team):
    project, *_ = story
    communicator, _ = await connect(team.editor, project.pk)
    watcher, _ = await connect(team.viewer, project.pk)
    try:
        await communicator.receive_json_from()
        await watcher.receive_json_from()
        membership = await membership_of(project, team.editor)
        await database_sync_to_async(project_services.member_set_role)(
            membership=membership, role=Role.VIEWER
        )
        await assert_closed(communicator)
        await assert_open(watcher)  # another member's socket is left alone
    finally:
        await communicator.disconnect()
        await watcher.disconnect()


async def test_a_membership_change_in_another_project_leaves_the_socket_open(story, team, make_user):
    project, *_ = story
    other = await database_sync_to_async(project_services.project_create)(title="Other", user=team.owner)
    communicator, _ = await connect(team.viewer, project.pk)
    try:
        await communicator.receive_json_from()
        await database_sync_to_async(Membership.objects.create)(project=other, user=team.viewer)
        await database_sync_to_async(Membership.objects.filter(project=other, user=team.viewer).delete)()
        assert await communicator.receive_nothing(timeout=0.3)
        await assert_open(communicator)
    finally:
        await communicator.disconnect()


async def test_every_action_rechecks_membership_even_when_the_notice_was_lost(story, team):
    project, *_ = story
    communicator, _ = await connect(team.viewer, project.pk)
    try:
        await communicator.receive_json_from()
        # A raw delete sends no signal: as if the channel layer had dropped the notice.
        rows = Membership.objects.filter(project=project, user=team.viewer)
        await database_sync_to_async(rows._raw_delete)(rows.db)
        await communicator.send_json_to({"action": "snapshot"})
        await assert_closed(communicator)
    finally:
        await communicator.disconnect()


async def test_a_demoted_editor_cannot_start_a_run_even_when_the_notice_was_lost(story, team):
    project, *_ = story
    communicator, _ = await connect(team.editor, project.pk)
    try:
        await communicator.receive_json_from()
        rows = Membership.objects.filter(project=project, user=team.editor)
        await database_sync_to_async(rows.update)(role=Role.VIEWER)  # update() sends no signal either
        await communicator.send_json_to({"action": "start"})
        assert await communicator.receive_json_from() == {
            "type": "error",
            "message": "Only editors and owners can do that.",
        }
        assert not await database_sync_to_async(BatchRun.objects.exists)()
    finally:
        await communicator.disconnect()


stack = AuthMiddlewareStack(app)


async def session_socket(user, project_id) -> tuple[Client, WebsocketCommunicator]:
    """A socket authenticated by a real session cookie, as a browser's is."""
    client = Client()
    await database_sync_to_async(client.force_login)(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    communicator = WebsocketCommunicator(stack, f"/ws/projects/{project_id}/", headers=[(b"cookie", cookie)])
    connected, _ = await communicator.connect()
    assert connected
    await communicator.receive_json_from()
    return client, communicator


async def test_logging_out_closes_that_sessions_sockets_but_not_another_sessions(story, team):
    project, *_ = story
    laptop, laptop_socket = await session_socket(team.viewer, project.pk)
    phone, phone_socket = await session_socket(team.viewer, project.pk)
    try:
        await database_sync_to_async(laptop.logout)()
        await assert_closed(laptop_socket)
        await assert_open(phone_socket)
    finally:
        await laptop_socket.disconnect()
        await phone_socket.disconnect()


MALFORMED = [
    pytest.param({"text_data": "{not json"}, id="invalid-json"),
    pytest.param({"text_data": "[]"}, id="list"),
    pytest.param({"text_data": "null"}, id="null"),
    pytest.param({"text_data": '"start"'}, id="string"),
    pytest.param({"bytes_data": b"\x00\x01binary"}, id="binary"),
    pytest.param({"text_data": '{"action": ["start"]}'}, id="list-as-action"),
    pytest.param({"text_data": '{"action": {"a": 1}}'}, id="object-as-action"),
    pytest.param({"text_data": '{"action": "retry", "scene": {}}'}, id="object-as-scene"),
    pytest.param({"text_data": '{"action": "retry", "scene": "abc"}'}, id="text-as-scene"),
    pytest.param({"text_data": '{"action": "retry", "scene": 1.5}'}, id="float-as-scene"),
    pytest.param({"text_data": '{"action": "retry", "scene": true}'}, id="bool-as-scene"),
    pytest.param({"text_data": '{"action": "retry"}'}, id="retry-without-scene"),
    pytest.param({"text_data": '{"action": "retry", "scene": 99999999}'}, id="unknown-scene"),
]


@pytest.mark.parametrize("frame", MALFORMED)
async def test_a_malformed_frame_gets_an_error_and_the_socket_stays_open(story, team, frame, caplog):
    project, *_ = story
    communicator, _ = await connect(team.editor, project.pk)
    try:
        await communicator.receive_json_from()
        with caplog.at_level(logging.WARNING):
            await communicator.send_to(**frame)
            reply = await communicator.receive_json_from()
        assert reply["type"] == "error" and reply["message"]
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        await assert_open(communicator)
        assert not await database_sync_to_async(BatchRun.objects.exists)()
    finally:
        await communicator.disconnect()
