"""An import is linear work with bounded writes: caps on new characters and on scenes per project."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from projects import mentions, services
from projects.models import Character, Scene


def story(count: int, names: tuple[str, ...] = ("Gopal", "Raja")) -> str:
    items = [
        {"prompt": f"Scene {i}: Gopal bows to the king and Ram", "characters": list(names)}
        for i in range(count)
    ]
    return json.dumps(items)


def queries_for_import(user, count: int) -> int:
    project = services.project_create(title=f"{count} scenes", user=user)
    services.character_save(project=project, name="Ram")
    services.character_save(project=project, name="Krishnachandra", aliases="the king")
    with CaptureQueriesContext(connection) as captured:
        services.story_import(project=project, text=story(count))
    assert Scene.objects.filter(project=project, characters__name="Ram").count() == count
    return len(captured)


def test_linking_an_import_takes_the_same_number_of_queries_for_any_number_of_scenes(team):
    assert queries_for_import(team.owner, 80) == queries_for_import(team.owner, 20)


def test_an_import_compiles_one_pattern_however_many_scenes_it_has(team, monkeypatch):
    compiled: list[str] = []
    original = mentions._compile

    def counting(pattern, *args):
        compiled.append(pattern)
        return original(pattern, *args)

    monkeypatch.setattr(mentions, "_compile", counting)
    services.character_save(project=team.project, name="Ram")
    services.story_import(project=team.project, text=story(150), mode="append")
    assert len(compiled) == 1


def test_an_import_links_named_and_mentioned_characters(team):
    ram = services.character_save(project=team.project, name="Ram")
    raja = services.character_save(project=team.project, name="Krishnachandra", aliases="the king")
    scenes = services.story_import(project=team.project, text=story(3, names=("Gopal", "Ram")))
    gopal = Character.objects.get(project=team.project, name="Gopal")
    for scene in scenes:
        assert set(Scene.objects.get(pk=scene.pk).characters.all()) == {gopal, ram, raja}


def test_an_import_that_creates_too_many_characters_changes_nothing(team, scenes, settings):
    settings.IMPORT_MAX_NEW_CHARACTERS = 3
    text = story(2, names=("Ann", "Ben", "Cid", "Dee"))
    with pytest.raises(ValidationError, match=r"4 new characters.*at most 3"):
        services.story_import(project=team.project, text=text, mode="replace")
    assert Character.objects.filter(project=team.project).count() == 0
    assert [s.prompt for s in team.project.scenes.order_by("position")] == [s.prompt for s in scenes]


def test_known_characters_do_not_count_against_the_cap(team, settings):
    settings.IMPORT_MAX_NEW_CHARACTERS = 1
    services.character_save(project=team.project, name="Ann")
    services.story_import(project=team.project, text=story(2, names=("ann", "Ben")))
    assert sorted(Character.objects.filter(project=team.project).values_list("name", flat=True)) == [
        "Ann",
        "Ben",
    ]


def test_an_import_past_the_scene_cap_changes_nothing(team, scenes, settings):
    settings.PROJECT_MAX_SCENES = 6
    with pytest.raises(ValidationError, match="at most 6 scenes"):
        services.story_import(project=team.project, text="One.\n\nTwo.", mode="append")
    assert team.project.scenes.count() == 5
    services.story_import(project=team.project, text="One.\n\nTwo.", mode="replace")
    assert team.project.scenes.count() == 2


def test_adding_a_scene_past_the_cap_is_refused(team, scenes, settings):
    settings.PROJECT_MAX_SCENES = 5
    with pytest.raises(ValidationError, match="at most 5 scenes"):
        services.scene_create(project=team.project, prompt="One more")
    assert team.project.scenes.count() == 5


def test_the_pages_say_which_cap_was_hit(client, team, scenes, settings):
    settings.PROJECT_MAX_SCENES = 5
    client.force_login(team.editor)
    response = client.post(
        reverse("story_import", args=[team.project.pk]), {"text": "One.", "fmt": "auto", "mode": "append"}
    )
    assert response.status_code == 200
    assert "Nothing was imported" in response.content.decode()
    assert "at most 5 scenes" in response.content.decode()
    response = client.post(reverse("scene_create", args=[team.project.pk]), {"prompt": "Six", "title": ""})
    assert response.status_code == 200
    assert "at most 5 scenes" in response.content.decode()
    assert team.project.scenes.count() == 5


def test_a_pasted_story_over_the_size_limit_is_refused(client, team, scenes, settings):
    settings.STORY_MAX_BYTES = 40
    client.force_login(team.editor)
    url = reverse("story_import", args=[team.project.pk])
    text = "é" * 21  # 21 characters, 42 bytes: the limit is in bytes, as for files
    response = client.post(url, {"text": text, "fmt": "auto", "mode": "replace"})
    assert response.status_code == 200
    assert "too large" in response.content.decode()
    assert team.project.scenes.count() == 5
    assert client.post(url, {"text": "é" * 20, "fmt": "auto", "mode": "replace"}).status_code == 302


@pytest.mark.parametrize(
    "text",
    [
        "One.\n\nA NUL \x00 here.",
        '[{"prompt": "\\ud800"}]',
        json.dumps([{"prompt": "x", "title": "t" * 201}]),
        json.dumps([{"prompt": "x", "characters": ["n" * 101]}]),
        "[" * 100_000 + "]" * 100_000,
    ],
)
def test_the_import_page_refuses_what_a_column_cannot_hold(client, team, scenes, text):
    client.force_login(team.editor)
    url = reverse("story_import", args=[team.project.pk])
    response = client.post(
        url, {"text": text, "fmt": "json" if text[0] == "[" else "auto", "mode": "replace"}
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "Nothing was imported" in body or "Null characters are not allowed" in body  # the form's own
    assert team.project.scenes.count() == 5
    assert Character.objects.filter(project=team.project).count() == 0


def test_the_forms_refuse_nul_characters_and_overlong_values(team):
    from projects.forms import CharacterForm, ProjectForm, SceneForm

    project = team.project
    assert not SceneForm({"prompt": "a\x00b", "title": ""}, project=project).is_valid()
    assert not SceneForm({"prompt": "ok", "title": "t" * 201}, project=project).is_valid()
    assert not CharacterForm({"name": "n" * 101}, project=project).is_valid()
    assert not CharacterForm({"name": "Ann", "aliases": "A\x00"}, project=project).is_valid()
    assert not ProjectForm({"title": "T\x00"}).is_valid()
    assert SceneForm({"prompt": "ok", "title": "t" * 200}, project=project).is_valid()
