"""Uploads are typed by what Pillow reads in them, never by their name, and every image is served inert."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image, PngImagePlugin

from generation.models import SceneVersion
from projects import services
from projects.models import Character
from tests.conftest import png_bytes

SANDBOX = "default-src 'none'; sandbox"
SCRIPT = b"<html><body><script>document.title='pwned';window.pwned=1</script></body></html>"


def png_with_script(script: bytes = SCRIPT) -> bytes:
    """A valid 64×48 PNG whose tEXt chunk holds a script: a page to a browser that trusts the name."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", script.decode())
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "teal").save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


def jpeg_bytes(size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "orange").save(buffer, "JPEG")
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def huge_png(side: int = 30_000) -> bytes:
    """A real side × side 1-bit PNG of about 110 KB: its pixels would take gigabytes once decoded."""
    row = b"\x00" * (1 + (side + 7) // 8)
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def corrupt_png() -> bytes:
    """Valid chunks (verify() passes) around compressed pixel data that does not decode."""
    good = png_bytes((64, 48))
    start = good.index(b"IDAT") + 4
    length = struct.unpack(">I", good[start - 8 : start - 4])[0]
    garbage = bytes(length)  # not a zlib stream
    return good[: start - 8] + _chunk(b"IDAT", garbage) + good[start + length + 4 :]


def post_reference(client, team, name: str, payload: bytes, content_type: str = "image/png"):
    url = reverse("character_create", args=[team.project.pk])
    upload = SimpleUploadedFile(name, payload, content_type)
    return client.post(url, {"name": "Gopal", "aliases": "", "description": "", "reference": upload})


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def assert_inert(response, content_type: str) -> None:
    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == SANDBOX


@pytest.mark.parametrize("name", ["portrait.html", "portrait.svg", "portrait.pdf", "portrait", "p.PNG.exe"])
def test_a_png_under_any_name_is_stored_and_served_as_a_png(client, team, name):
    client.force_login(team.editor)
    assert post_reference(client, team, name, png_with_script(), "text/html").status_code == 302
    character = Character.objects.get()
    assert Path(character.reference.name).suffix == ".png"
    response = client.get(reverse("character_reference", args=[team.project.pk, character.pk]))
    assert_inert(response, "image/png")
    assert body(response) == png_with_script()


def test_a_jpeg_named_png_is_stored_as_jpg(client, team):
    client.force_login(team.editor)
    post_reference(client, team, "portrait.png", jpeg_bytes())
    character = Character.objects.get()
    assert Path(character.reference.name).suffix == ".jpg"
    response = client.get(reverse("character_reference", args=[team.project.pk, character.pk]))
    assert_inert(response, "image/jpeg")


def test_a_file_saved_through_the_model_field_gets_its_suffix_from_its_content(team):
    # The admin and any code that saves into the field take the same route as the studio's form.
    character = services.character_save(project=team.project, name="Gopal")
    character.reference.save("evil.html", ContentFile(png_bytes()), save=True)
    assert Path(character.reference.name).suffix == ".png"


def test_a_stored_png_with_a_wrong_suffix_is_still_served_as_a_png(client, team):
    character = services.character_save(project=team.project, name="Gopal")
    name = f"projects/{team.project.pk}/characters/x.html"
    stored = Path(character.reference.storage.path(name))
    stored.parent.mkdir(parents=True, exist_ok=True)
    stored.write_bytes(png_with_script())
    Character.objects.filter(pk=character.pk).update(reference=name)
    client.force_login(team.viewer)
    response = client.get(reverse("character_reference", args=[team.project.pk, character.pk]))
    assert_inert(response, "image/png")
    assert response["Content-Disposition"] == 'inline; filename="x.png"'


@pytest.mark.parametrize("thumb", [False, True])
def test_a_stored_file_that_is_not_an_image_is_refused_when_served(client, team, thumb):
    character = services.character_save(project=team.project, name="Gopal")
    name = f"projects/{team.project.pk}/characters/x.png"
    stored = Path(character.reference.storage.path(name))
    stored.parent.mkdir(parents=True, exist_ok=True)
    stored.write_bytes(SCRIPT)
    Character.objects.filter(pk=character.pk).update(reference=name)
    client.force_login(team.viewer)
    url = reverse("character_reference", args=[team.project.pk, character.pk]) + ("?thumb=1" if thumb else "")
    response = client.get(url)
    assert response.status_code == 415
    assert not response["Content-Type"].startswith("text/html")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == SANDBOX


@pytest.mark.parametrize("payload", [png_bytes((64, 48))[:-60], jpeg_bytes((256, 256))[:-400]])
def test_a_thumbnail_of_a_damaged_stored_image_is_refused_not_a_500(client, team, payload):
    scene = services.scene_create(project=team.project, prompt="A river")
    scene.image.save("s.png", ContentFile(png_bytes()), save=True)
    Path(scene.image.path).write_bytes(payload)
    client.force_login(team.viewer)
    response = client.get(reverse("scene_image", args=[team.project.pk, scene.pk]) + "?thumb=1")
    assert response.status_code == 415
    assert response["Content-Security-Policy"] == SANDBOX


def test_every_image_and_download_view_is_served_inert(client, team):
    project = team.project
    scene = services.scene_create(project=project, prompt="A river")
    scene.image.save("s.png", ContentFile(jpeg_bytes()), save=True)
    version = SceneVersion.objects.create(scene=scene, number=1, image=scene.image.name)
    character = services.character_save(project=project, name="Gopal")
    character.reference.save("r.png", ContentFile(png_bytes()), save=True)
    client.force_login(team.viewer)
    p, s, c = project.pk, scene.pk, character.pk
    expected = [
        (reverse("scene_image", args=[p, s]), "image/jpeg"),
        (reverse("scene_image", args=[p, s]) + "?thumb=1", "image/jpeg"),
        (reverse("character_reference", args=[p, c]), "image/png"),
        (reverse("character_reference", args=[p, c]) + "?thumb=1", "image/jpeg"),
        (reverse("version_image", args=[p, s, version.pk]), "image/jpeg"),
        (reverse("version_image", args=[p, s, version.pk]) + "?thumb=1", "image/jpeg"),
        (reverse("project_contact_sheet", args=[p]), "image/png"),
        (reverse("project_export_zip", args=[p]), "application/zip"),
    ]
    for url, content_type in expected:
        response = client.get(url)
        assert_inert(response, content_type)
        body(response)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (huge_png(), "too many pixels"),
        (corrupt_png(), "damaged"),
        (png_bytes((256, 256))[:-80], "damaged"),
        (jpeg_bytes((256, 256))[:-400], "damaged"),
        (SCRIPT, "not a valid image"),
    ],
    ids=["bomb", "corrupt-png", "truncated-png", "truncated-jpeg", "html"],
)
def test_an_upload_whose_pixels_do_not_decode_gets_a_clear_error(client, team, payload, message):
    client.force_login(team.editor)
    response = post_reference(client, team, "portrait.png", payload)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Character.objects.exists()


def test_formats_outside_the_four_are_refused_even_when_pillow_reads_them(client, team):
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "teal").save(buffer, "BMP")
    client.force_login(team.editor)
    response = post_reference(client, team, "portrait.png", buffer.getvalue())
    assert response.status_code == 200 and "PNG, JPEG, WebP or GIF" in response.content.decode()
    assert not Character.objects.exists()


@pytest.mark.parametrize(
    ("payload", "stored_suffix"), [(png_with_script(), ".png"), (corrupt_png(), None)], ids=["png", "corrupt"]
)
def test_the_admin_types_an_upload_by_content_too(admin_client, team, payload, stored_suffix):
    url = reverse("admin:projects_character_add")
    upload = SimpleUploadedFile("portrait.pdf", payload, "application/pdf")
    response = admin_client.post(url, {"project": team.project.pk, "name": "Gopal", "reference": upload})
    character = Character.objects.filter(name="Gopal").first()
    if stored_suffix is None:
        assert response.status_code == 200 and character is None
        assert "damaged" in str(response.context["adminform"].form.errors), response.context[
            "adminform"
        ].form.errors
    else:
        assert response.status_code == 302, response.content.decode()[:2000]
        assert Path(character.reference.name).suffix == stored_suffix
