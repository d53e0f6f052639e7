from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from generation.models import BatchRun, GenerationAttempt, SceneVersion
from projects import services as project_services
from projects.models import CharacterReference, Scene
from tests.conftest import png_bytes

pytestmark = pytest.mark.django_db


def settings_post(project, **style):
    return {"title": project.title, "description": "", "provider": "", "provider_model": "", **style}


def test_the_owner_saves_a_project_style(client, team):
    client.force_login(team.owner)
    url = reverse("project_edit", args=[team.project.pk])
    style = {"style_prefix": "Ink, {shot}:", "negative_prompt": "text", "aspect_ratio": "1:1", "size": ""}
    response = client.post(url, settings_post(team.project, **style))
    assert response.status_code == 302
    team.project.refresh_from_db()
    assert (team.project.style_prefix, team.project.aspect_ratio) == ("Ink, {shot}:", "1:1")


def test_a_style_with_an_unknown_placeholder_is_refused_on_the_page(client, team):
    client.force_login(team.owner)
    url = reverse("project_edit", args=[team.project.pk])
    response = client.post(url, settings_post(team.project, style_suffix="mood: {mood}"))
    assert response.status_code == 200
    assert "Unknown placeholder {mood}" in response.content.decode()
    team.project.refresh_from_db()
    assert team.project.style_suffix == ""


def test_notes_are_saved_inline_from_the_grid_and_shown_on_the_tile(client, team, scenes):
    client.force_login(team.editor)
    url = reverse("scene_notes", args=[team.project.pk, scenes[0].pk])
    notes = {"shot": "close-up", "camera": "dolly in", "dialogue": "Run!", "duration": "3s"}
    assert client.post(url, notes).status_code == 302
    scene = Scene.objects.get(pk=scenes[0].pk)
    assert (scene.shot, scene.camera, scene.dialogue, scene.duration) == (
        "close-up",
        "dolly in",
        "Run!",
        "3s",
    )
    page = client.get(reverse("project_detail", args=[team.project.pk])).content.decode()
    assert "close-up" in page and "Run!" in page


def test_viewers_cannot_edit_notes_and_outsiders_get_404(client, team, scenes):
    url = reverse("scene_notes", args=[team.project.pk, scenes[0].pk])
    client.force_login(team.viewer)
    assert client.post(url, {"shot": "x"}).status_code == 403
    client.force_login(team.outsider)
    assert client.post(url, {"shot": "x"}).status_code == 404


def test_the_scene_page_edits_notes_with_the_prompt(client, team, scenes):
    client.force_login(team.editor)
    url = reverse("scene_edit", args=[team.project.pk, scenes[1].pk])
    data = {"title": "", "prompt": "A boat", "shot": "wide", "camera": "", "dialogue": "", "duration": "2s"}
    assert client.post(url, data).status_code == 302
    scene = Scene.objects.get(pk=scenes[1].pk)
    assert (scene.prompt, scene.shot, scene.duration) == ("A boat", "wide", "2s")


def _versions_of_a_run(team, scene, count):
    run = BatchRun.objects.create(
        project=team.project, provider="sketch", candidates=count, status="completed"
    )
    versions = []
    for index in range(1, count + 1):
        attempt = GenerationAttempt.objects.create(
            run=run, scene=scene, number=1, provider="sketch", started=run.created, seed=100 + index
        )
        image = ContentFile(png_bytes(color=["red", "blue", "green", "gold"][index - 1]))
        version = SceneVersion(scene=scene, number=index, attempt=attempt, seed=100 + index, candidate=index)
        version.image.save(f"v{index}.png", image, save=True)
        versions.append(version)
    Scene.objects.filter(pk=scene.pk).mark_ready(image=versions[-1].image.name)
    return versions


def test_the_tile_shows_a_runs_variations_and_one_click_picks_one(client, team, scenes):
    versions = _versions_of_a_run(team, scenes[0], 2)
    client.force_login(team.editor)
    page = client.get(reverse("project_detail", args=[team.project.pk])).content.decode()
    assert page.count('data-candidate="') == 2
    pick = reverse("version_make_current", args=[team.project.pk, scenes[0].pk, versions[0].pk])
    response = client.post(pick, {"next": "grid"})
    assert response.status_code == 302 and response.url.startswith(team.project.get_absolute_url())
    assert Scene.objects.get(pk=scenes[0].pk).image.name == versions[0].image.name


def test_locking_the_seed_keeps_the_current_images_seed(client, team, scenes):
    versions = _versions_of_a_run(team, scenes[0], 2)
    client.force_login(team.editor)
    url = reverse("scene_seed", args=[team.project.pk, scenes[0].pk])
    client.post(url, {"lock": "1"})
    assert Scene.objects.get(pk=scenes[0].pk).locked_seed == versions[-1].seed
    client.post(url, {"lock": "0"})
    assert Scene.objects.get(pk=scenes[0].pk).locked_seed is None


def test_a_scene_without_a_seeded_image_cannot_lock_it(client, team, scenes):
    client.force_login(team.editor)
    response = client.post(
        reverse("scene_seed", args=[team.project.pk, scenes[0].pk]), {"lock": "1"}, follow=True
    )
    assert "no recorded seed" in response.content.decode()
    assert Scene.objects.get(pk=scenes[0].pk).locked_seed is None


def test_the_grid_warns_before_a_run_when_references_would_be_cut(client, team, scenes, settings):
    settings.GENERATION_PROVIDER = "gemini"  # takes three references
    settings.GENERATION_PROVIDERS = {**settings.GENERATION_PROVIDERS, "gemini": {"api_key": "k"}}
    from generation.runs.providers import provider_cache_clear

    provider_cache_clear()
    mara = project_services.character_save(project=team.project, name="Mara")
    mara.reference.save("m.png", ContentFile(png_bytes()), save=True)
    for position, label in enumerate(["profile", "full body", "back"], start=1):
        extra = CharacterReference(character=mara, label=label, position=position)
        extra.image.save("x.png", ContentFile(png_bytes(color="red")), save=True)
    scenes[0].characters.add(mara)
    client.force_login(team.editor)
    page = client.get(reverse("project_detail", args=[team.project.pk])).content.decode()
    provider_cache_clear()
    assert "data-references-cut" in page and "Mara (back) will not be sent" in page


def test_the_scene_page_marks_an_image_whose_reference_changed(client, team, scenes):
    mara = project_services.character_save(project=team.project, name="Mara")
    mara.reference.save("m.png", ContentFile(png_bytes()), save=True)
    scenes[0].characters.add(mara)
    (version,) = _versions_of_a_run(team, scenes[0], 1)
    from generation.runs.references import sha256

    version.reference_hashes = [sha256(mara.reference.open("rb").read())]
    version.save()
    client.force_login(team.editor)
    url = reverse("scene_edit", args=[team.project.pk, scenes[0].pk])
    assert "data-reference-changed" not in client.get(url).content.decode()
    mara.reference.save("m2.png", ContentFile(png_bytes(color="black")), save=True)
    assert "data-reference-changed" in client.get(url).content.decode()


def test_a_run_over_all_scenes_can_ask_variations(client, team, scenes):
    client.force_login(team.editor)
    client.post(reverse("run_action", args=[team.project.pk, "start"]), {"candidates": "3"})
    assert BatchRun.objects.get().candidates == 3
