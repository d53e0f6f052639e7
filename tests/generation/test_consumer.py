"""The project socket: who may connect, what they see first, what they may do, and the event stream."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from generation.engine.clock import LoopClock
from generation.engine.config import EngineConfig
from generation.live.events import send_event
from generation.live.routing import websocket_urlpatterns
from generation.models import BatchRun
from generation.runs.execution import run_execute
from generation.runs.recorder import RunRecorder
from projects import services as project_services
from tests.generation.conftest import simulated

pytestmark = pytest.mark.django_db(transaction=True)

app = URLRouter(websocket_urlpatterns)


async def connect(user, project_id):
    communicator = WebsocketCommunicator(app, f"/ws/projects/{project_id}/")
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    return communicator, connected


async def test_members_get_a_snapshot_of_scene_states_first(story, team):
    project, scenes, _ = story
    communicator, connected = await connect(team.viewer, project.pk)
    try:
        assert connected
        snapshot = await communicator.receive_json_from()
        assert snapshot["type"] == "snapshot" and snapshot["run"] is None
        assert [s["status"] for s in snapshot["scenes"]] == ["pending"] * 4 + ["ready", "pending"]
        assert snapshot["scenes"][4]["thumbnail"].startswith(f"/projects/{project.pk}/scenes/")
    finally:
        await communicator.disconnect()


@pytest.mark.parametrize("who", ["outsider", "anonymous"])
async def test_non_members_are_refused(story, team, who):
    project, *_ = story
    user = AnonymousUser() if who == "anonymous" else team.outsider
    communicator, connected = await connect(user, project.pk)
    assert not connected
    await communicator.disconnect()


async def test_a_viewer_cannot_start_a_run_over_the_socket(story, team):
    project, *_ = story
    communicator, _ = await connect(team.viewer, project.pk)
    try:
        await communicator.receive_json_from()
        await communicator.send_json_to({"action": "start"})
        reply = await communicator.receive_json_from()
        assert reply == {"type": "error", "message": "Only editors and owners can do that."}
        assert not await database_sync_to_async(BatchRun.objects.exists)()
    finally:
        await communicator.disconnect()


async def test_an_editor_starts_and_stops_a_run_over_the_socket(story, team):
    project, *_ = story
    communicator, _ = await connect(team.editor, project.pk)
    try:
        await communicator.receive_json_from()
        await communicator.send_json_to({"action": "start"})
        reply = await communicator.receive_json_from()
        assert reply["type"] == "ack" and reply["created"] is True
        await communicator.send_json_to({"action": "stop"})
        assert (await communicator.receive_json_from())["action"] == "stop"
        run = await database_sync_to_async(BatchRun.objects.get)()
        assert run.status == "stopped" and run.requested_by_id == team.editor.pk
    finally:
        await communicator.disconnect()


async def test_a_refused_start_names_the_missing_references(story, team):
    project, scenes, _ = story
    ram = await database_sync_to_async(project_services.character_save)(project=project, name="Ram")
    await database_sync_to_async(scenes[0].characters.add)(ram)
    communicator, _ = await connect(team.owner, project.pk)
    try:
        await communicator.receive_json_from()
        await communicator.send_json_to({"action": "start"})
        reply = await communicator.receive_json_from()
        assert reply["type"] == "refused" and reply["missing"] == ["Ram"]
    finally:
        await communicator.disconnect()


async def test_watchers_see_every_scene_event_in_order_with_sequence_numbers(story, team, start):
    project, *_ = story
    watchers = [await connect(user, project.pk) for user in (team.viewer, team.owner)]
    try:
        for communicator, _ in watchers:
            await communicator.receive_json_from()
        run = await database_sync_to_async(start)(overrides={"start_concurrency": 2})
        await run_execute(run_id=run.pk, worker="w", provider=simulated())
        for communicator, _ in watchers:
            events = await drain(communicator)
            assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
            assert events[0]["type"] == "run.started" and events[-1]["type"] == "run.finished"
            assert events[-1]["summary"] == "Generated 4 of 6 scenes (2 skipped)"
            per_scene = {}
            for event in events:
                if event["type"].startswith("scene."):
                    per_scene.setdefault(event["item"]["id"], []).append(event["type"])
            generated = [v for v in per_scene.values() if v != ["scene.skipped"]]
            assert generated and all(v == ["scene.started", "scene.succeeded"] for v in generated)
            assert sum(v == ["scene.skipped"] for v in per_scene.values()) == 2
    finally:
        for communicator, _ in watchers:
            await communicator.disconnect()


async def test_a_client_can_ask_for_a_fresh_snapshot_after_a_gap(story, team):
    project, *_ = story
    communicator, _ = await connect(team.viewer, project.pk)
    try:
        await communicator.receive_json_from()
        await send_event(project.pk, {"type": "run.progress", "run": 1, "seq": 7})
        assert (await communicator.receive_json_from())["events"] == [
            {"type": "run.progress", "run": 1, "seq": 7}
        ]
        await communicator.send_json_to({"action": "snapshot"})
        assert (await communicator.receive_json_from())["type"] == "snapshot"
    finally:
        await communicator.disconnect()


async def drain(communicator, timeout: float = 0.3) -> list[dict]:
    """Every event received until the stream goes quiet, unpacked from their batches."""
    # receive_nothing() waits without cancelling the consumer (a timed-out receive would cancel it).
    events = []
    while not await communicator.receive_nothing(timeout=timeout):
        message = await communicator.receive_json_from()
        events.extend(message["events"] if message["type"] == "batch" else [message])
    return events


async def test_events_are_coalesced_into_batches_in_order_and_the_end_of_a_run_is_sent_at_once(story, team):
    project, *_ = story
    communicator, _ = await connect(team.viewer, project.pk)
    try:
        await communicator.receive_json_from()
        for seq in (1, 2, 3):
            await send_event(project.pk, {"type": "run.progress", "run": 9, "seq": seq})
        await send_event(project.pk, {"type": "run.finished", "run": 9, "seq": 4})
        batch = await communicator.receive_json_from()
        assert batch["type"] == "batch" and [e["seq"] for e in batch["events"]] == [1, 2, 3, 4]
        assert await communicator.receive_nothing(timeout=0.2)
    finally:
        await communicator.disconnect()


async def test_events_reach_the_socket_while_the_orm_thread_is_busy(story, team):
    """channels' consumers hop to the ORM's thread before every handler (to close stale connections): a
    batch of events then waited behind every run's writes, by seconds. A batch touches no database."""
    project, *_ = story
    communicator, _ = await connect(team.viewer, project.pk)
    release = threading.Event()
    busy = None
    try:
        await communicator.receive_json_from()
        busy = asyncio.create_task(database_sync_to_async(release.wait)(10))
        await send_event(project.pk, {"type": "run.finished", "run": 9, "seq": 1})
        batch = await communicator.receive_json_from(timeout=2)
        assert [e["seq"] for e in batch["events"]] == [1] and not busy.done()
    finally:
        release.set()
        if busy is not None:
            await busy
        await communicator.disconnect()


async def test_a_run_pacing_itself_to_its_quota_tells_the_watchers_when_the_next_request_goes(story, team):
    project, *_ = story
    run = await database_sync_to_async(BatchRun.objects.create)(project=project, provider="sketch")
    recorder = RunRecorder(run, worker="w", config=EngineConfig(), clock=LoopClock())
    communicator, _ = await connect(team.viewer, project.pk)
    try:
        await communicator.receive_json_from()
        await recorder.pacing(42.0, 20.0)
        await recorder.publish("run.finished")  # flushes the batch at once
        (pacing, _finished) = (await communicator.receive_json_from())["events"]
        assert (
            pacing["type"] == "run.pacing"
            and pacing["seconds"] == 42.0
            and pacing["requests_per_minute"] == 20
        )
        until = datetime.fromisoformat(pacing["until"]).timestamp()
        assert until == pytest.approx(pacing["ts"] + 42.0, abs=1.0)  # an ISO time the page counts down to
    finally:
        await communicator.disconnect()
