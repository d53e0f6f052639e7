from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from projects import services
from projects.models import Character, CharacterReference, Membership, Role
from tests.conftest import png_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def mara(team):
    character = services.character_save(project=team.project, name="Mara", description="a thief")
    character.reference.save("front.png", ContentFile(png_bytes(color="red")), save=True)
    return character


def upload(color="blue", name="view.png"):
    return SimpleUploadedFile(name, png_bytes(color=color), content_type="image/png")


def test_an_editor_adds_ordered_reference_views(client, team, mara):
    client.force_login(team.editor)
    url = reverse("character_reference_add", args=[team.project.pk, mara.pk])
    client.post(url, {"image": upload("blue"), "label": "profile"})
    client.post(url, {"image": upload("green"), "label": "full body"})
    views = list(mara.extra_references.all())
    assert [(v.label, v.position) for v in views] == [("profile", 1), ("full body", 2)]
    assert [f.name for f in mara.reference_files()] == [mara.reference.name, *(v.image.name for v in views)]
    page = client.get(reverse("character_edit", args=[team.project.pk, mara.pk])).content.decode()
    assert page.count("data-extra-reference=") == 2
    image = client.get(reverse("character_extra_reference", args=[team.project.pk, mara.pk, views[0].pk]))
    assert image.status_code == 200 and image["Content-Type"] == "image/png"


def test_a_view_that_is_not_an_image_is_refused(client, team, mara):
    client.force_login(team.editor)
    url = reverse("character_reference_add", args=[team.project.pk, mara.pk])
    fake = SimpleUploadedFile("evil.png", b"<script>alert(1)</script>", content_type="image/png")
    client.post(url, {"image": fake})
    assert not CharacterReference.objects.exists()


def test_viewers_cannot_add_views_and_views_can_be_removed(client, team, mara):
    url = reverse("character_reference_add", args=[team.project.pk, mara.pk])
    client.force_login(team.viewer)
    assert client.post(url, {"image": upload()}).status_code == 403
    client.force_login(team.editor)
    client.post(url, {"image": upload()})
    extra = mara.extra_references.get()
    client.post(reverse("character_reference_delete", args=[team.project.pk, mara.pk, extra.pk]))
    assert not CharacterReference.objects.exists()


def test_characters_are_copied_with_their_references_from_another_project(client, team, mara, make_user):
    extra = CharacterReference(character=mara, label="profile", position=1)
    extra.image.save("p.png", ContentFile(png_bytes(color="blue")), save=True)
    other = services.project_create(title="Sequel", user=team.editor)
    client.force_login(team.editor)
    url = reverse("character_library", args=[other.pk])
    page = client.get(url).content.decode()
    assert "From The Tale" in page and "Mara" in page
    client.post(url, {"source": team.project.pk, "character": [mara.pk]})
    copy = Character.objects.get(project=other, name="Mara")
    assert copy.description == "a thief" and copy.reference.name != mara.reference.name
    assert copy.reference.read() == mara.reference.open("rb").read()
    assert [e.label for e in copy.extra_references.all()] == ["profile"]
    # Copying again skips the name instead of duplicating it.
    client.post(url, {"source": team.project.pk, "character": [mara.pk]})
    assert Character.objects.filter(project=other, name="Mara").count() == 1


def test_the_library_never_reads_a_project_the_user_does_not_belong_to(client, team, mara, make_user):
    stranger = make_user("sam")
    mine = services.project_create(title="Mine", user=stranger)
    client.force_login(stranger)
    url = reverse("character_library", args=[mine.pk])
    assert "Mara" not in client.get(url).content.decode()
    assert client.post(url, {"source": team.project.pk, "character": [mara.pk]}).status_code == 404
    assert not Character.objects.filter(project=mine).exists()


def test_a_viewer_of_the_target_cannot_copy_into_it(client, team, mara, make_user):
    other = services.project_create(title="Sequel", user=team.owner)
    Membership.objects.create(project=other, user=team.editor, role=Role.VIEWER)
    client.force_login(team.editor)
    assert client.get(reverse("character_library", args=[other.pk])).status_code == 403
