"""Teammates' edits reach every open page of the project: one scenes.changed event per committed edit."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.core.files.uploadedfile import SimpleUploadedFile

from generation.live.routing import websocket_urlpatterns
from projects import services
from projects.models import Scene
from tests.conftest import png_bytes

pytestmark = pytest.mark.django_db(transaction=True)

app = URLRouter(websocket_urlpatterns)


async def watch(user, project_id):
    communicator = WebsocketCommunicator(app, f"/ws/projects/{project_id}/")
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected
    assert (await communicator.receive_json_from())["type"] == "snapshot"
    return communicator


def edits(project):
    """Every kind of edit a teammate makes on the project's scenes, one callable each."""
    first = lambda: Scene.objects.filter(project=project).order_by("position").first()  # noqa: E731
    character = {}

    def add_character():
        character["c"] = services.character_save(project=project, name="Gopal")

    def new_reference():
        upload = SimpleUploadedFile("g.png", png_bytes(), content_type="image/png")
        services.character_save(project=project, name="Gopal", character=character["c"], reference=upload)

    return {
        "create": lambda: services.scene_create(project=project, prompt="Gopal at dawn"),
        "edit": lambda: services.scene_update(scene=first(), prompt="Gopal at dusk", title="Dusk"),
        "import": lambda: services.story_import(project=project, text="A river.\n\nA goat."),
        "move": lambda: services.scene_move(scene=first(), to_position=3),
        "character": add_character,
        "link": lambda: services.project_link_characters(project=project),
        "reference": new_reference,
        "delete": lambda: services.scene_delete(scene=first()),
        "delete character": lambda: services.character_delete(character=character["c"]),
    }


async def test_every_kind_of_scene_edit_reaches_a_teammates_open_page(team):
    communicator = await watch(team.viewer, team.project.pk)
    try:
        for name, edit in edits(team.project).items():
            await database_sync_to_async(edit)()
            message = await communicator.receive_json_from(timeout=2)
            assert message["type"] == "batch", name
            assert {"type": "scenes.changed", "project": team.project.pk} in message["events"], name
    finally:
        await communicator.disconnect()


async def test_an_edit_that_rolls_back_tells_nobody(team):
    communicator = await watch(team.viewer, team.project.pk)
    try:
        with pytest.raises(Exception, match="at most"):
            too_many = "\n\n".join(f"Scene {i}" for i in range(5))
            await database_sync_to_async(_import_past_the_cap)(team.project, too_many)
        assert await communicator.receive_nothing(timeout=0.3)
    finally:
        await communicator.disconnect()


def _import_past_the_cap(project, text):
    from django.test import override_settings

    with override_settings(PROJECT_MAX_SCENES=2):
        services.story_import(project=project, text=text)
