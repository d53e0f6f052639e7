from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from projects.models import Character
from tests.conftest import png_bytes


def post_character(client, team, **files):
    url = reverse("character_create", args=[team.project.pk])
    return client.post(url, {"name": "Gopal", "aliases": "Gopu", "description": "jester", **files})


def test_an_editor_uploads_a_reference_image(client, team):
    client.force_login(team.editor)
    response = post_character(client, team, reference=SimpleUploadedFile("g.png", png_bytes(), "image/png"))
    assert response.status_code == 302
    character = Character.objects.get(project=team.project)
    assert character.has_reference() and character.alias_list() == ["Gopu"]
    image = client.get(reverse("character_reference", args=[team.project.pk, character.pk]))
    assert image.status_code == 200 and b"".join(image.streaming_content) == png_bytes()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"not an image at all", "not a valid image"),
        (png_bytes((5000, 20)), "each side must be at most"),
        (png_bytes((8, 8)), "too small"),
        (png_bytes()[:40], "not a valid image"),
    ],
)
def test_a_bad_upload_gets_a_clear_error_and_saves_nothing(client, team, payload, message):
    client.force_login(team.editor)
    response = post_character(client, team, reference=SimpleUploadedFile("g.png", payload, "image/png"))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Character.objects.exists()


def test_an_oversized_upload_is_refused(client, team, settings):
    settings.REFERENCE_MAX_BYTES = 100
    client.force_login(team.editor)
    response = post_character(client, team, reference=SimpleUploadedFile("g.png", png_bytes(), "image/png"))
    assert "the limit is" in response.content.decode()


def test_replacing_a_reference_removes_the_old_file(client, team, settings):
    client.force_login(team.editor)
    post_character(client, team, reference=SimpleUploadedFile("g.png", png_bytes(), "image/png"))
    character = Character.objects.get()
    old = character.reference.path
    url = reverse("character_edit", args=[team.project.pk, character.pk])
    client.post(
        url, {"name": "Gopal", "reference": SimpleUploadedFile("h.png", png_bytes(color="red"), "image/png")}
    )
    character.refresh_from_db()
    assert character.reference.path != old
    assert not __import__("os").path.exists(old)


def test_character_names_are_unique_in_a_project_ignoring_case(client, team):
    client.force_login(team.editor)
    post_character(client, team)
    response = client.post(reverse("character_create", args=[team.project.pk]), {"name": "GOPAL"})
    assert "already has a character with that name" in response.content.decode()
