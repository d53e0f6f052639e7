"""Project export: the streamed ZIP (names, contents, gaps, gate, permissions) and the contact sheet."""

from __future__ import annotations

import asyncio
import io
import json
import unicodedata
import warnings
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import unquote

import pytest
from django.contrib.messages import get_messages
from django.core.files.base import ContentFile
from django.test import AsyncRequestFactory
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from generation.models import SceneVersion
from projects import contact_sheet, export, export_views, services
from projects.models import Scene
from tests.conftest import png_bytes

pytestmark = pytest.mark.django_db

BENGALI = "গোপাল ভাঁড়ের গল্প"
TEAL = (0, 128, 128)


def _give_image(scene: Scene, data: bytes | None = None, name: str = "x.png") -> Scene:
    scene.image.save(name, ContentFile(data or png_bytes()), save=True)
    return scene


def _version(scene: Scene, number: int = 1, **fields) -> SceneVersion:
    return SceneVersion.objects.create(scene=scene, number=number, image=scene.image.name, **fields)


@pytest.fixture
def storyboard(team, scenes) -> list[Scene]:
    """Five scenes: 1, 2 and 4 have images; 3 failed; 5 was never generated."""
    for index in (0, 1, 3):
        _give_image(scenes[index])
    Scene.objects.filter(pk=scenes[2].pk).update(status=Scene.Status.FAILED, last_error="Blocked by safety")
    return scenes


def _download(client, project) -> tuple[object, zipfile.ZipFile]:
    response = client.get(reverse("project_export_zip", args=[project.pk]))
    assert response.status_code == 200, response
    body = b"".join(response.streaming_content)
    return response, zipfile.ZipFile(io.BytesIO(body))


def _read(archive: zipfile.ZipFile, name: str) -> str:
    return archive.read(name).decode("utf-8")


# --- Naming ---------------------------------------------------------------------------------------


def test_an_ascii_title_names_the_zip_by_slug_image_count_and_date():
    name = export.zip_filename("The Tale of Gopal!", images=12, day=date(2025, 3, 9))
    assert name == "the-tale-of-gopal_12_scenes_2025-03-09.zip"


def test_a_bengali_title_keeps_its_letters_and_marks():
    expected = unicodedata.normalize("NFKC", "গোপাল-ভাঁড়ের-গল্প")
    assert export.title_slug(BENGALI) == expected
    # The ASCII fallback cannot spell it, so it says "storyboard".
    assert export.ascii_slug(BENGALI) == "storyboard"


def test_a_bengali_download_has_an_ascii_filename_and_a_utf8_filename_star(client, team, storyboard):
    team.project.title = BENGALI
    team.project.save()
    client.force_login(team.viewer)
    response, _ = _download(client, team.project)
    day = timezone.localdate().isoformat()
    header = response["Content-Disposition"]
    assert header.startswith(f'attachment; filename="storyboard_3_scenes_{day}.zip"; ')
    encoded = header.split("filename*=UTF-8''", 1)[1]
    assert encoded.isascii() and " " not in encoded
    assert unquote(encoded) == f"{export.title_slug(BENGALI)}_3_scenes_{day}.zip"


@pytest.mark.parametrize("title", ["a/b\\c", "../../etc/passwd", "..\\..\\boot.ini"])
def test_slashes_in_a_title_never_reach_the_file_name(title):
    for ascii_only in (False, True):
        name = export.zip_filename(title, images=1, day=date(2025, 1, 2), ascii_only=ascii_only)
        assert "/" not in name and "\\" not in name and not name.startswith(".")
    assert export.title_slug("a/b\\c") == "a-b-c"


def test_a_very_long_title_is_capped_without_splitting_a_letter_from_its_marks():
    assert len(export.title_slug("word " * 100)) <= export.SLUG_MAX
    assert len(export.ascii_slug("word " * 100)) <= export.SLUG_MAX
    slug = export.title_slug(BENGALI * 20)
    assert 0 < len(slug) <= export.SLUG_MAX
    assert unicodedata.category(slug[0])[0] == "L"
    name = export.zip_filename("x" * 500, images=3, day=date(2025, 1, 2))
    assert name == "x" * export.SLUG_MAX + "_3_scenes_2025-01-02.zip"


@pytest.mark.parametrize("title", ["", "!!!", "///"])
def test_a_title_with_nothing_sluggable_falls_back_to_storyboard(title):
    assert export.zip_filename(title, images=2, day=date(2025, 1, 2)) == "storyboard_2_scenes_2025-01-02.zip"


# --- Contents -------------------------------------------------------------------------------------


def test_the_zip_holds_current_images_by_story_position_with_gaps(client, team, storyboard):
    client.force_login(team.viewer)
    response, archive = _download(client, team.project)
    assert archive.namelist() == [
        "scene_001.png",
        "scene_001_info.txt",
        "scene_002.png",
        "scene_002_info.txt",
        "scene_004.png",
        "scene_004_info.txt",
        "failed_scenes.txt",
        "manifest.json",
    ]
    assert archive.read("scene_004.png") == Path(storyboard[3].image.path).read_bytes()
    assert archive.testzip() is None
    assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_STORED}
    assert "_3_scenes_" in response["Content-Disposition"]


def test_the_download_streams_with_an_exact_content_length(client, team, storyboard):
    client.force_login(team.viewer)
    response = client.get(reverse("project_export_zip", args=[team.project.pk]))
    assert response.streaming and response["Content-Type"] == "application/zip"
    assert int(response["Content-Length"]) == len(b"".join(response.streaming_content))


def test_a_jpeg_image_keeps_its_extension(client, team, scenes):
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), "red").save(buffer, "JPEG")
    _give_image(scenes[1], buffer.getvalue(), name="photo.jpg")
    client.force_login(team.owner)
    _, archive = _download(client, team.project)
    assert "scene_002.jpg" in archive.namelist() and "scene_002.png" not in archive.namelist()


def test_info_txt_describes_the_current_version(client, team, storyboard):
    scene = storyboard[0]
    gopal = services.character_save(project=team.project, name="Gopal")
    scene.characters.add(gopal, services.character_save(project=team.project, name="Abu"))
    SceneVersion.objects.create(scene=scene, number=1, image="projects/old.png", provider="old")
    _version(scene, 2, provider="openai", model="gpt-image-1", seed=42, prompt="Gopal at dawn", attempts=3)
    client.force_login(team.viewer)
    _, archive = _download(client, team.project)
    info = _read(archive, "scene_001_info.txt")
    for line in [
        "Scene: 1",
        "Prompt: Scene prompt 1",
        "Prompt sent: Gopal at dawn",
        "Characters: Abu, Gopal",
        "Provider: openai",
        "Model: gpt-image-1",
        "Seed: 42",
        "Attempts: 3",
        "Version: 2",
        "Image file: scene_001.png",
    ]:
        assert line in info.splitlines(), line
    generated = next(line for line in info.splitlines() if line.startswith("Generated at: "))
    assert datetime.fromisoformat(generated.removeprefix("Generated at: ")).year >= 2025


def test_info_txt_says_unknown_for_an_image_without_a_version(client, team, storyboard):
    client.force_login(team.viewer)
    _, archive = _download(client, team.project)
    info = _read(archive, "scene_002_info.txt").splitlines()
    for field in ("Provider", "Model", "Seed", "Attempts", "Generated at", "Version"):
        assert f"{field}: unknown" in info
    assert "Characters: none" in info


def test_failed_scenes_lists_every_scene_without_an_image_and_why(client, team, storyboard):
    empty = services.scene_create(project=team.project, prompt="   ")
    client.force_login(team.viewer)
    _, archive = _download(client, team.project)
    text = _read(archive, "failed_scenes.txt")
    assert "3 of 6 scenes" in text
    assert "Scene 3: Blocked by safety\n  Prompt: Scene prompt 3" in text
    assert "Scene 5: not generated yet\n  Prompt: Scene prompt 5" in text
    assert f"Scene {empty.position}: empty prompt\n  Prompt: (empty)" in text
    assert "Scene 1:" not in text and "Scene 4:" not in text


def test_the_manifest_carries_the_same_data_in_machine_form(client, team, storyboard):
    _version(storyboard[3], 1, provider="gemini", model="imagen", seed=7, prompt="Scene prompt 4", attempts=1)
    client.force_login(team.viewer)
    _, archive = _download(client, team.project)
    manifest = json.loads(_read(archive, "manifest.json"))
    assert manifest["project"] == {"id": team.project.pk, "title": "The Tale"}
    assert datetime.fromisoformat(manifest["exported_at"]).tzinfo is not None
    assert manifest["images"] == 3
    assert [s["number"] for s in manifest["scenes"]] == [1, 2, 4]
    fourth = manifest["scenes"][2]
    assert fourth["image_file"] == "scene_004.png" and fourth["info_file"] == "scene_004_info.txt"
    assert (fourth["provider"], fourth["model"], fourth["seed"], fourth["attempts"]) == (
        "gemini",
        "imagen",
        7,
        1,
    )
    assert fourth["version"] == 1 and fourth["generated_at"] and fourth["prompt"] == "Scene prompt 4"
    assert fourth["characters"] == []
    assert manifest["scenes"][0]["provider"] is None and manifest["scenes"][0]["version"] is None
    assert [(m["number"], m["reason"]) for m in manifest["missing"]] == [
        (3, "Blocked by safety"),
        (5, "not generated yet"),
    ]


def test_an_image_file_missing_on_disk_is_listed_instead_of_breaking_the_export(client, team, storyboard):
    Path(storyboard[1].image.path).unlink()
    client.force_login(team.viewer)
    response, archive = _download(client, team.project)
    assert "scene_002.png" not in archive.namelist() and "scene_002_info.txt" not in archive.namelist()
    assert "Scene 2: image file missing" in _read(archive, "failed_scenes.txt")
    missing = json.loads(_read(archive, "manifest.json"))["missing"]
    assert {"number": 2, "reason": "image file missing"}.items() <= missing[0].items()
    assert "_2_scenes_" in response["Content-Disposition"]


def test_the_download_is_refused_with_a_message_when_no_scene_has_an_image(client, team, scenes):
    client.force_login(team.viewer)
    response = client.get(reverse("project_export_zip", args=[team.project.pk]))
    assert response.status_code == 302 and response["Location"] == team.project.get_absolute_url()
    assert any("has an image yet" in str(m) for m in get_messages(response.wsgi_request))


def test_under_asgi_the_download_is_an_async_stream_and_never_buffered(team, storyboard):
    request = AsyncRequestFactory().get(reverse("project_export_zip", args=[team.project.pk]))
    request.user = team.viewer
    response = export_views.project_export_zip(request, team.project.pk)
    assert response.is_async

    async def collect() -> bytes:
        return b"".join([chunk async for chunk in response])

    with warnings.catch_warnings():
        # Django warns when it has to buffer an iterator of the wrong kind: that must not happen.
        warnings.simplefilter("error")
        body = asyncio.run(collect())
    assert zipfile.ZipFile(io.BytesIO(body)).namelist()[0] == "scene_001.png"


# --- The project page and permissions -------------------------------------------------------------


def test_the_project_page_offers_the_downloads_to_viewers(client, team, storyboard):
    client.force_login(team.viewer)
    page = client.get(team.project.get_absolute_url()).content.decode()
    assert f'href="{reverse("project_export_zip", args=[team.project.pk])}"' in page
    # Issue 14 (12): the studio links the contact sheet page, which offers the PNG as a download.
    assert f'href="{reverse("project_contact_sheet_page", args=[team.project.pk])}"' in page
    sheet = client.get(reverse("project_contact_sheet_page", args=[team.project.pk])).content.decode()
    assert f'href="{reverse("project_contact_sheet", args=[team.project.pk])}"' in sheet


def test_the_download_button_is_disabled_and_explained_without_images(client, team, scenes):
    client.force_login(team.owner)
    page = client.get(team.project.get_absolute_url()).content.decode()
    # No link yet: the URL only waits in data-zip for the page script to offer once an image arrives.
    assert f'href="{reverse("project_export_zip", args=[team.project.pk])}"' not in page
    assert "disabled" in page and "Available once a scene has an image." in page


@pytest.mark.parametrize(
    ("who", "status"),
    [("anonymous", "login"), ("outsider", 404), ("viewer", 200), ("editor", 200), ("owner", 200)],
)
@pytest.mark.parametrize("name", ["project_export_zip", "project_contact_sheet"])
def test_every_export_checks_membership(client, team, storyboard, name, who, status):
    if who != "anonymous":
        client.force_login(team.user(who))
    response = client.get(reverse(name, args=[team.project.pk]))
    if status == "login":
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    else:
        assert response.status_code == status
        if status == 200:
            assert response["Content-Disposition"].startswith("attachment; ")


def test_an_outsider_gets_404_even_for_a_project_without_images(client, team, scenes):
    client.force_login(team.outsider)
    for name in ("project_export_zip", "project_contact_sheet"):
        assert client.get(reverse(name, args=[team.project.pk])).status_code == 404


# --- The contact sheet ----------------------------------------------------------------------------


def test_the_contact_sheet_is_a_png_grid_with_empty_frames_for_missing_scenes(client, team, storyboard):
    client.force_login(team.viewer)
    response = client.get(reverse("project_contact_sheet", args=[team.project.pk]))
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"].startswith('attachment; filename="the-tale_contact_sheet_')
    body = b"".join(response.streaming_content)
    with Image.open(io.BytesIO(body)) as image:
        image.verify()
    sheet = Image.open(io.BytesIO(body))
    # Four columns of 320 px with 16 px gutters; five scenes make two rows of 200 px image + 44 px caption.
    assert sheet.format == "PNG" and sheet.mode == "RGB"
    assert sheet.size == (16 + 4 * (320 + 16), 16 + 2 * (244 + 16)) == contact_sheet.sheet_size(5)

    def centre(index: int) -> tuple[int, int, int]:
        row, column = divmod(index, 4)
        return sheet.getpixel((16 + column * 336 + 160, 16 + row * 260 + 60))

    assert all(abs(a - b) < 12 for a, b in zip(centre(0), TEAL, strict=True))  # scene 1: its image
    assert centre(2) == contact_sheet.MAT  # scene 3: an empty frame
    assert centre(4) == contact_sheet.MAT  # scene 5 on the second row
    assert sheet.getpixel((sheet.width - 5, 16 + 60)) == (255, 255, 255)  # no fifth column


def test_the_contact_sheet_draws_an_unreadable_image_as_an_empty_frame(client, team, scenes):
    # Uploads are typed by content now, so only a file stored before that can be unreadable.
    Path(_give_image(scenes[0]).image.path).write_bytes(b"not an image at all")
    client.force_login(team.viewer)
    response = client.get(reverse("project_contact_sheet", args=[team.project.pk]))
    sheet = Image.open(io.BytesIO(b"".join(response.streaming_content)))
    assert sheet.getpixel((16 + 160, 16 + 60)) == contact_sheet.MAT


def test_a_project_without_scenes_gets_a_message_instead_of_a_sheet(client, team):
    client.force_login(team.viewer)
    response = client.get(reverse("project_contact_sheet", args=[team.project.pk]))
    assert response.status_code == 302 and response["Location"] == team.project.get_absolute_url()


def test_the_png_stream_refuses_strips_that_do_not_add_up():
    strips = [Image.new("RGB", (10, 3), "white")]
    with pytest.raises(ValueError, match="3 rows, not 4"):
        b"".join(contact_sheet.png_stream(10, 4, strips))


def test_the_export_date_is_the_local_day(team, storyboard, settings):
    settings.TIME_ZONE = "Asia/Dhaka"
    late = datetime(2025, 5, 31, 20, 30, tzinfo=UTC)  # already 1 June in Dhaka
    assert export.project_zip(project=team.project, now=late).filename == "the-tale_3_scenes_2025-06-01.zip"
