from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from generation.models import SceneVersion
from projects import services
from projects.models import Scene
from tests.conftest import png_bytes
from tests.studio.test_export_studio import generated  # noqa: F401  (the fixture)

pytestmark = pytest.mark.django_db


def export(client, team) -> bytes:
    client.force_login(team.owner)
    response = client.get(reverse("project_export_zip", args=[team.project.pk]))
    return b"".join(response.streaming_content)


def import_zip(client, project, data: bytes, name="export.zip"):
    upload = SimpleUploadedFile(name, data, content_type="application/zip")
    url = reverse("studio_zip_import", args=[project.pk])
    return client.post(url, {"file": upload, "mode": "append"})


def test_an_export_comes_back_as_scenes_with_notes_images_and_versions(client, team, generated):  # noqa: F811
    data = export(client, team)
    target = services.project_create(title="Copy", user=team.owner)
    assert import_zip(client, target, data).status_code == 302
    scenes = list(target.scenes.order_by("position"))
    assert [s.prompt for s in scenes] == [f"Scene prompt {n}" for n in range(1, 6)]
    first = scenes[0]
    assert first.notes == {"shot": "close-up", "dialogue": "Who goes there?"}
    assert first.status == Scene.Status.READY and all(not s.image for s in scenes[1:])
    with Image.open(first.image.path) as image:
        assert image.convert("RGB").getpixel((0, 0)) == (0, 0, 255)  # the current (blue) version
    version = SceneVersion.objects.get(scene=first)
    assert (version.seed, version.provider, version.prompt) == (42, "sketch", "Ink: Scene prompt 1 (take 2)")
    assert version.reference_hashes == ["ab" * 32]


def _zip(files: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not a zip at all", "not a ZIP"),
        (_zip({"a.txt": b"hello"}), "no manifest.json"),
        (_zip({"manifest.json": b"{nope"}), "could not be read"),
        (
            _zip(
                {
                    "manifest.json": json.dumps(
                        {"scenes": [{"number": 1, "prompt": "x", "image_file": "scene_001.png"}]}
                    ).encode(),
                    "scene_001.png": b"<html>not an image</html>",
                }
            ),
            "scene_001.png",
        ),
    ],
)
def test_a_bad_archive_is_refused_and_changes_nothing(client, team, data, message):
    client.force_login(team.editor)
    response = import_zip(client, team.project, data)
    assert response.status_code == 200 and message in response.content.decode()
    assert not team.project.scenes.exists()


def test_a_zip_that_unpacks_too_large_is_refused(client, team, settings):
    settings.STUDIO_ZIP_MAX_BYTES = 2000
    data = _zip({"manifest.json": b"{}", "big.bin": b"\0" * 50_000}, zipfile.ZIP_DEFLATED)
    assert len(data) < 2000  # small to upload, large once inflated
    client.force_login(team.editor)
    response = import_zip(client, team.project, data)
    assert "unpacks to more than the studio accepts" in response.content.decode()


def test_viewers_cannot_import(client, team):
    client.force_login(team.viewer)
    data = _zip({"manifest.json": json.dumps({"scenes": [], "missing": []}).encode(), "x.png": png_bytes()})
    assert import_zip(client, team.project, data).status_code == 403
