from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from PIL import Image

from generation.models import SceneVersion
from projects.models import Scene
from projects.pngmeta import read_text
from tests.conftest import png_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def generated(team, scenes):
    """Scene 1 has two versions (the second current), made with a style; scene 1 has notes."""
    scene = scenes[0]
    for number, color in ((1, "red"), (2, "blue")):
        scene.image.save(f"v{number}.png", ContentFile(png_bytes(color=color)), save=True)
        SceneVersion.objects.create(
            scene=scene,
            number=number,
            image=scene.image.name,
            provider="sketch",
            model="sketch-1",
            seed=40 + number,
            prompt=f"Ink: Scene prompt 1 (take {number})",
            scene_prompt="Scene prompt 1",
            style={"prefix": "Ink:"},
            negative_prompt="text",
            reference_hashes=["ab" * 32],
        )
    Scene.objects.filter(pk=scene.pk).update(notes={"shot": "close-up", "dialogue": "Who goes there?"})
    return scene


def _archive(client, team) -> zipfile.ZipFile:
    client.force_login(team.viewer)
    response = client.get(reverse("project_export_zip", args=[team.project.pk]))
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def test_an_exported_png_carries_its_versions_metadata_in_text_chunks(client, team, generated):
    archive = _archive(client, team)
    data = archive.read("scene_001.png")
    meta = read_text(data)
    assert meta["scenestudio:prompt_sent"] == "Ink: Scene prompt 1 (take 2)"
    assert (meta["scenestudio:seed"], meta["scenestudio:provider"], meta["scenestudio:version"]) == (
        "42",
        "sketch",
        "2",
    )
    assert meta["scenestudio:model"] == "sketch-1"
    with Image.open(io.BytesIO(data)) as image:
        image.load()  # still a valid PNG
        assert image.text["scenestudio:prompt"] == "Scene prompt 1"


def test_info_and_manifest_show_style_notes_references_and_lineage(client, team, generated):
    archive = _archive(client, team)
    info = archive.read("scene_001_info.txt").decode()
    assert "Prompt sent: Ink: Scene prompt 1 (take 2)" in info
    assert "Style: Ink:" in info and "Negative prompt: text" in info
    assert "Shot: close-up" in info and "Dialogue: Who goes there?" in info
    assert "ab" * 32 in info
    manifest = json.loads(archive.read("manifest.json"))
    (scene,) = manifest["scenes"]
    assert scene["notes"] == {"shot": "close-up", "dialogue": "Who goes there?"}
    assert [v["number"] for v in scene["versions"]] == [1, 2]
    assert scene["versions"][0]["prompt_sent"] == "Ink: Scene prompt 1 (take 1)"
    assert scene["reference_hashes"] == ["ab" * 32]
