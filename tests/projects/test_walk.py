"""Issue 14's walk, the pages: what a newcomer saw go wrong, one test per defect (numbers as in the issue)."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.contrib.messages import get_messages
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.urls import reverse

from generation.models import SceneVersion
from projects import services
from projects.models import Character, Scene
from projects.wording import all_of, count_noun, listing
from tests.conftest import png_bytes

pytestmark = pytest.mark.django_db


def _image(scene: Scene, *, prompt: str | None = None) -> Scene:
    """Give the scene an image whose version records `prompt` (default: the scene's own)."""
    scene.image.save("x.png", ContentFile(png_bytes()), save=True)
    made_from = scene.prompt if prompt is None else prompt
    SceneVersion.objects.create(scene=scene, number=1, image=scene.image.name, prompt=made_from)
    return scene


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _page(client, user, url) -> str:
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


# --- 2. A failed scene with an older image is named in the ZIP and on the sheet -------------------


def test_a_failed_scene_with_an_older_image_is_named_in_failed_scenes_and_the_manifest(client, team, scenes):
    for scene in scenes:
        _image(scene)
    Scene.objects.filter(pk=scenes[2].pk).mark_failed(reason="The provider timed out")
    client.force_login(team.viewer)
    body = b"".join(client.get(reverse("project_export_zip", args=[team.project.pk])).streaming_content)
    archive = zipfile.ZipFile(io.BytesIO(body))
    failed = archive.read("failed_scenes.txt").decode()
    assert "Scene 3: last attempt failed: The provider timed out" in failed
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["last_attempt_failed"] == [3]
    by_number = {s["number"]: s for s in manifest["scenes"]}
    assert by_number[3]["last_attempt_failed"] == "The provider timed out"
    assert by_number[1]["last_attempt_failed"] is None


def test_the_contact_sheet_page_marks_failed_and_stale_scenes(client, team, scenes):
    _image(scenes[0])
    _image(scenes[1], prompt="An earlier prompt")
    _image(scenes[2])
    Scene.objects.filter(pk=scenes[2].pk).mark_failed(reason="Timed out")
    page = _page(client, team.viewer, reverse("project_contact_sheet_page", args=[team.project.pk]))
    cells = page.split('<li class="sheet-cell')[1:]
    assert "Prompt changed" in cells[1] and "Last attempt failed" not in cells[1]
    assert "Last attempt failed" in cells[2] and "Timed out" in cells[2]
    assert "Prompt changed" not in cells[0] and "Last attempt failed" not in cells[0]


# --- 4. Deleting asks first ------------------------------------------------------------------------


def test_delete_scene_asks_first_and_deletes_only_on_confirmation(client, team, scenes):
    url = reverse("scene_delete", args=[team.project.pk, scenes[1].pk])
    edit = _page(client, team.editor, reverse("scene_edit", args=[team.project.pk, scenes[1].pk]))
    assert f'action="{url}"' not in edit, "the edit page must not delete in one click"
    assert f'href="{url}"' in edit
    confirm = _page(client, team.editor, url)
    assert "Delete “scene 2”?" in confirm and Scene.objects.filter(pk=scenes[1].pk).exists()
    client.post(url)
    assert not Scene.objects.filter(pk=scenes[1].pk).exists()


def test_delete_character_asks_first_and_deletes_only_on_confirmation(client, team):
    ram = services.character_save(project=team.project, name="Ram")
    url = reverse("character_delete", args=[team.project.pk, ram.pk])
    edit = _page(client, team.editor, reverse("character_edit", args=[team.project.pk, ram.pk]))
    assert f'action="{url}"' not in edit and f'href="{url}"' in edit
    assert "Delete “Ram”?" in _page(client, team.editor, url)
    assert Character.objects.filter(pk=ram.pk).exists()
    client.post(url)
    assert not Character.objects.filter(pk=ram.pk).exists()


def test_a_viewer_gets_no_delete_confirmation(client, team, scenes):
    client.force_login(team.viewer)
    url = reverse("scene_delete", args=[team.project.pk, scenes[0].pk])
    assert client.get(url).status_code == 403


# --- 5. Each form error once ------------------------------------------------------------------------


def test_an_import_error_is_shown_once(client, team):
    client.force_login(team.editor)
    url = reverse("story_import", args=[team.project.pk])
    upload = SimpleUploadedFile("story.txt", b"\xff\xfe\x00bad", content_type="text/plain")
    page = client.post(url, {"fmt": "auto", "mode": "append", "file": upload}).content.decode()
    assert page.count("The file is not UTF-8 text.") == 1
    page = client.post(url, {"fmt": "json", "mode": "append", "text": "[1, 2"}).content.decode()
    assert page.count("Nothing was imported.") == 1


def test_the_login_error_is_shown_once(client, team):
    page = client.post(reverse("login"), {"username": "olivia", "password": "wrong"}).content.decode()
    # One failed login, one message: not the form's error and a second one of the template's.
    assert page.count("Please enter a correct username and password") == 1
    assert page.count('role="alert"') == 1 and "didn't match" not in page


# --- 6. Words for counts ----------------------------------------------------------------------------


def test_counts_are_pluralised_by_one_helper():
    assert count_noun(1, "scene") == "1 scene" and count_noun(0, "scene") == "0 scenes"
    assert count_noun(2, "character appearance") == "2 character appearances"
    assert all_of(1, "scene") == "the one scene" and all_of(20, "scene") == "all 20 scenes"
    assert (
        listing([3]) == "3"
        and listing([3, 5]) == "3 and 5"
        and listing(range(1, 8)) == "1, 2, 3, 4, 5 and 2 more"
    )


def test_importing_one_scene_says_one_scene(client, team):
    client.force_login(team.editor)
    response = client.post(
        reverse("story_import", args=[team.project.pk]), {"fmt": "text", "mode": "append", "text": "A hill."}
    )
    assert _messages(response) == ["Imported 1 scene."]


# --- 7. Import says what it created and linked; linking proposes first ------------------------------


def test_a_csv_import_says_which_characters_it_created_and_how_many_links_it_made(client, team):
    client.force_login(team.editor)
    story = "prompt,characters\nGopal at the gate,Gopal\nRam and Gopal argue,Gopal;Ram\n"
    response = client.post(
        reverse("story_import", args=[team.project.pk]), {"fmt": "csv", "mode": "append", "text": story}
    )
    (message,) = _messages(response)
    assert message.startswith("Imported 2 scenes; created 2 characters (")
    assert "Gopal" in message and "Ram" in message
    assert "linked 3 character appearances" in message


def test_a_plain_text_import_says_how_many_links_it_made(client, team):
    services.character_save(project=team.project, name="Gopal")
    client.force_login(team.editor)
    response = client.post(
        reverse("story_import", args=[team.project.pk]),
        {"fmt": "text", "mode": "append", "text": "Gopal wakes.\n\nA quiet road."},
    )
    assert _messages(response) == ["Imported 2 scenes; linked 1 character appearance found in the story."]


def test_link_characters_proposes_first_and_applies_what_was_confirmed(client, team, scenes):
    gopal = services.character_save(project=team.project, name="Gopal")
    ram = services.character_save(project=team.project, name="Ram")
    Scene.objects.filter(pk=scenes[0].pk).update(prompt="Gopal meets Ram")
    Scene.objects.filter(pk=scenes[1].pk).update(prompt="Ram alone")
    url = reverse("characters_link", args=[team.project.pk])
    page = _page(client, team.editor, url)
    assert f'value="{scenes[0].pk}:{gopal.pk}"' in page and f'value="{scenes[1].pk}:{ram.pk}"' in page
    assert not Scene.characters.through.objects.exists(), "showing the proposals links nothing"
    response = client.post(url, {"link": [f"{scenes[0].pk}:{gopal.pk}", f"{scenes[1].pk}:{ram.pk}"]})
    assert _messages(response) == ["Linked 2 character appearances."]
    assert set(Scene.characters.through.objects.values_list("scene_id", "character_id")) == {
        (scenes[0].pk, gopal.pk),
        (scenes[1].pk, ram.pk),
    }


def test_link_characters_says_so_when_nothing_matched(client, team, scenes):
    page = _page(client, team.editor, reverse("characters_link", args=[team.project.pk]))
    assert "there is nothing to link" in page and "Linked 0" not in page


# --- 8. A tile whose image or failure predates a prompt edit says so ------------------------------


def test_an_image_of_an_older_prompt_is_stale(team, scenes):
    scene = _image(scenes[0])
    assert not scene.image_is_stale()
    services.scene_update(scene=scene, prompt="A new prompt", title="")
    assert Scene.objects.get(pk=scene.pk).image_is_stale()
    annotated = Scene.objects.with_image_prompt().get(pk=scene.pk)
    assert annotated.image_is_stale()


def test_a_failure_for_an_older_prompt_is_stale(team, scenes):
    Scene.objects.filter(pk=scenes[0].pk).mark_failed(reason="Refused")
    scene = Scene.objects.get(pk=scenes[0].pk)
    assert not scene.failure_is_stale()
    services.scene_update(scene=scene, prompt="A reworded prompt", title="")
    assert Scene.objects.get(pk=scene.pk).failure_is_stale()


def test_the_grid_marks_tiles_whose_prompt_changed(client, team, scenes):
    _image(scenes[0], prompt="Before the edit")
    Scene.objects.filter(pk=scenes[1].pk).mark_failed(reason="Refused")
    Scene.objects.filter(pk=scenes[1].pk).update(prompt="Reworded")
    page = _page(client, team.viewer, team.project.get_absolute_url())
    tiles = page.split('<li class="tile')[1:]
    assert "Prompt changed since this image." in tiles[0]
    assert "The prompt changed since this failure." in tiles[1]
    assert "changed since" not in tiles[2]


# --- 9. Sub-nav: Settings everywhere for owners, the current tab marked; providers explained --------


@pytest.mark.parametrize("name", ["project_detail", "character_list", "member_list", "project_edit"])
def test_every_project_page_has_the_settings_tab_and_marks_the_current_one(client, team, name):
    url = reverse(name, args=[team.project.pk])
    page = _page(client, team.owner, url)
    nav = page[page.index('<nav class="subnav"') : page.index("</nav>", page.index('<nav class="subnav"'))]
    assert f'href="{reverse("project_edit", args=[team.project.pk])}"' in nav
    assert nav.count('aria-current="page"') == 1
    assert f'href="{url}" aria-current="page"' in nav


@override_settings(
    GENERATION_PROVIDERS={
        "openai": {"api_key": "", "base_url": "https://api.openai.com"},
        "gemini": {"api_key": "k", "base_url": "https://example.test"},
        "comfyui": {"base_url": "http://127.0.0.1:8188", "workflow_path": ""},
    }
)
def test_the_settings_page_says_which_providers_are_ready_and_what_is_missing(client, team):
    page = _page(client, team.owner, reverse("project_edit", args=[team.project.pk]))
    items = {
        chunk.split("<code>")[1].split("</code>")[0]: chunk for chunk in page.split('<li class="provider')[1:]
    }
    assert "OpenAI Images" in items["openai"] and "Not configured: set OPENAI_API_KEY." in items["openai"]
    assert "Ready" in items["gemini"] and "GEMINI_API_KEY set" in items["gemini"]
    assert "set COMFYUI_WORKFLOW" in items["comfyui"]
    assert "needs no configuration" in items["sketch"]
    assert ">OpenAI Images (not configured)</option>" in page


# --- 10. Error pages and the icon -------------------------------------------------------------------


@override_settings(DEBUG=False)
def test_the_403_and_404_pages_explain_and_lead_back(client, team, scenes):
    client.force_login(team.viewer)
    forbidden = client.get(reverse("scene_edit", args=[team.project.pk, scenes[0].pk]))
    assert forbidden.status_code == 403
    body = forbidden.content.decode()
    assert "You can’t do that here" in body and f'href="{reverse("project_list")}"' in body
    assert "Your role (viewer) cannot do this." in body
    missing = client.get("/projects/999999/")
    assert missing.status_code == 404 and "Page not found" in missing.content.decode()


def test_the_500_page_renders_without_a_request():
    from django.template.loader import get_template

    html = get_template("500.html").render({})
    assert "Something went wrong" in html and "<script" not in html


def test_the_favicon_is_served(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response["Content-Type"] == "image/x-icon"
    assert b"".join(response.streaming_content)[:4] == b"\x00\x00\x01\x00"


# --- 11. Moving says where the scene went; the grid's reorder -------------------------------------


def test_moving_past_the_end_says_it_went_last(client, team, scenes):
    client.force_login(team.editor)
    response = client.post(reverse("scene_move", args=[team.project.pk, scenes[2].pk]), {"to": "99"})
    assert _messages(response) == ["Moved scene 3 to position 5 (the last). There are only 5 scenes."]
    response = client.post(reverse("scene_move", args=[team.project.pk, scenes[0].pk]), {"to": "1"})
    assert _messages(response)[-1] == "Scene 1 is already at position 1 (the first); nothing moved."


def test_the_grid_reorders_through_the_reorder_service(client, team, scenes):
    client.force_login(team.editor)
    order = [scenes[i].pk for i in (1, 2, 0, 3, 4)]
    response = client.post(
        reverse("scenes_reorder", args=[team.project.pk]),
        {"order": ",".join(map(str, order)), "moved": scenes[0].pk},
    )
    assert response.json() == {"ok": True, "message": "Moved scene 1 to position 3."}
    assert list(team.project.scenes.order_by("position").values_list("pk", flat=True)) == order
    page = client.get(team.project.get_absolute_url()).content.decode()
    tiles = [
        int(chunk.split('"')[0]) for chunk in page.split('<li class="tile status-pending" id="scene-')[1:]
    ]
    assert tiles == order, "the grid shows the new order"


def test_a_reorder_that_misses_a_scene_changes_nothing(client, team, scenes):
    client.force_login(team.editor)
    response = client.post(reverse("scenes_reorder", args=[team.project.pk]), {"order": str(scenes[0].pk)})
    assert response.status_code == 409
    assert list(team.project.scenes.order_by("position")) == scenes


def test_a_viewer_cannot_reorder(client, team, scenes):
    client.force_login(team.viewer)
    response = client.post(reverse("scenes_reorder", args=[team.project.pk]), {"order": ""})
    assert response.status_code == 403


def test_tiles_have_keyboard_move_buttons_named_for_their_scene(client, team, scenes):
    page = _page(client, team.editor, team.project.get_absolute_url())
    assert 'aria-label="Move scene 2 earlier"' in page and 'aria-label="Move scene 2 later"' in page


# --- 12. The contact sheet is a page with a title and a date ---------------------------------------


def test_the_contact_sheet_page_has_title_date_numbers_and_the_png_download(client, team, scenes):
    page = _page(client, team.viewer, reverse("project_contact_sheet_page", args=[team.project.pk]))
    assert f"<h1>{team.project.title} " in page and "<time datetime=" in page
    assert all(f"<strong>Scene {n}</strong>" in page for n in range(1, 6))
    assert f'href="{reverse("project_contact_sheet", args=[team.project.pk])}" download' in page


def test_a_non_member_gets_404_for_the_contact_sheet_page(client, team, scenes):
    client.force_login(team.outsider)
    assert client.get(reverse("project_contact_sheet_page", args=[team.project.pk])).status_code == 404


# --- 13. Names, excerpts ----------------------------------------------------------------------------


def test_edit_and_retry_controls_name_their_scene(client, team, scenes):
    page = _page(client, team.editor, team.project.get_absolute_url())
    assert 'aria-label="Edit scene 3"' in page
    pk = scenes[2].pk
    assert f'aria-labelledby="scene-{pk}-retry scene-{pk}-name"' in page
    assert f'id="scene-{pk}-name">Scene 3<' in page


def test_excerpts_are_cut_at_a_word_boundary():
    scene = Scene(prompt="The jester walks " + "slowly " * 30)
    excerpt = scene.excerpt(40)
    assert len(excerpt) <= 40 and excerpt.endswith("slowly…")
    assert Scene(prompt="x" * 200).excerpt(40) == "x" * 39 + "…"  # one long word: cut anyway
    assert Scene(prompt="short one").excerpt(40) == "short one"


# --- 14. The viewer's data: a scene's versions ------------------------------------------------------


def test_a_scenes_versions_are_listed_newest_first_for_the_viewer(client, team, scenes):
    scene = _image(scenes[0], prompt="First try")
    newer = SceneVersion.objects.create(
        scene=scene, number=2, image="projects/x/new.png", prompt=scene.prompt
    )
    Scene.objects.filter(pk=scene.pk).update(image=newer.image.name)
    client.force_login(team.viewer)
    data = client.get(reverse("scene_versions", args=[team.project.pk, scene.pk])).json()
    assert data["title"] == "Scene 1"
    assert [(v["number"], v["current"], v["stale"]) for v in data["versions"]] == [
        (2, True, False),
        (1, False, True),
    ]
    assert data["versions"][0]["image"] == reverse(
        "version_image", args=[team.project.pk, scene.pk, newer.pk]
    )


def test_a_non_member_gets_404_for_a_scenes_versions(client, team, scenes):
    client.force_login(team.outsider)
    assert client.get(reverse("scene_versions", args=[team.project.pk, scenes[0].pk])).status_code == 404


def test_the_png_contact_sheet_marks_failed_and_stale_cells(team, scenes):
    from projects import contact_sheet, export

    _image(scenes[0])
    _image(scenes[1], prompt="An earlier prompt")
    _image(scenes[2])
    Scene.objects.filter(pk=scenes[2].pk).mark_failed(reason="Timed out")
    markers = [contact_sheet.sheet_marker(row) for row in export.scene_rows(team.project)]
    assert markers == ["", "PROMPT CHANGED", "LAST ATTEMPT FAILED", "", ""]
    png = b"".join(contact_sheet.project_contact_sheet(project=team.project).chunks)
    assert png.startswith(b"\x89PNG")
