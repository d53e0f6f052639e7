from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from projects import services
from projects.importers import StoryFormatError
from projects.models import Scene


def positions(project) -> list[tuple[int, str]]:
    return list(project.scenes.order_by("position").values_list("position", "prompt"))


def test_new_scenes_are_appended_in_order(scenes, team):
    assert positions(team.project) == [(i, f"Scene prompt {i}") for i in range(1, 6)]


def test_deleting_a_scene_keeps_positions_contiguous(scenes, team):
    services.scene_delete(scene=scenes[1])
    assert [p for p, _ in positions(team.project)] == [1, 2, 3, 4]
    assert [t for _, t in positions(team.project)] == [
        "Scene prompt 1",
        "Scene prompt 3",
        "Scene prompt 4",
        "Scene prompt 5",
    ]


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [(5, 1, [5, 1, 2, 3, 4]), (1, 5, [2, 3, 4, 5, 1]), (2, 99, [1, 3, 4, 5, 2]), (3, -4, [3, 1, 2, 4, 5])],
)
def test_moving_a_scene_shifts_the_others(scenes, team, source, target, expected):
    services.scene_move(scene=scenes[source - 1], to_position=target)
    assert positions(team.project) == [(i, f"Scene prompt {n}") for i, n in enumerate(expected, start=1)]


def test_a_reorder_must_name_every_scene_once(scenes, team):
    with pytest.raises(Exception, match="every scene"):
        services.scenes_reorder(project=team.project, ordered_ids=[s.pk for s in scenes[:3]])
    services.scenes_reorder(project=team.project, ordered_ids=[s.pk for s in reversed(scenes)])
    assert [t for _, t in positions(team.project)] == [f"Scene prompt {i}" for i in range(5, 0, -1)]


def test_creating_a_scene_at_a_position_inserts_it(scenes, team):
    services.scene_create(project=team.project, prompt="Inserted", position=2)
    assert positions(team.project)[:3] == [(1, "Scene prompt 1"), (2, "Inserted"), (3, "Scene prompt 2")]


def test_import_appends_after_existing_scenes(scenes, team):
    services.story_import(project=team.project, text="One.\n\nTwo.", mode="append")
    assert positions(team.project)[-2:] == [(6, "One."), (7, "Two.")]


def test_import_can_replace_all_scenes(scenes, team):
    services.story_import(project=team.project, text="1. First\n2. Second", mode="replace")
    assert positions(team.project) == [(1, "First"), (2, "Second")]


def test_a_malformed_import_changes_nothing(scenes, team):
    before = positions(team.project)
    with pytest.raises(StoryFormatError):
        services.story_import(
            project=team.project, text='[{"prompt": "ok"}, {"title": "no prompt"}]', mode="replace"
        )
    assert positions(team.project) == before


def test_the_import_page_shows_the_bad_line_and_keeps_the_scenes(client, scenes, team):
    client.force_login(team.editor)
    csv_text = "title,prompt\nA,one\nB,two,extra\n"
    response = client.post(
        reverse("story_import", args=[team.project.pk]), {"text": csv_text, "fmt": "csv", "mode": "replace"}
    )
    assert response.status_code == 200
    assert "Line 3" in response.content.decode()
    assert team.project.scenes.count() == 5


def test_the_import_page_accepts_an_uploaded_csv_and_links_characters(client, team):
    from django.core.files.uploadedfile import SimpleUploadedFile

    services.character_save(project=team.project, name="Gopal Bhar", aliases="Gopal")
    upload = SimpleUploadedFile("story.csv", b"prompt,characters\nGopal laughs,\nThe king sulks,Raja\n")
    client.force_login(team.editor)
    response = client.post(
        reverse("story_import", args=[team.project.pk]), {"file": upload, "fmt": "auto", "mode": "append"}
    )
    assert response.status_code == 302
    first, second = team.project.scenes.order_by("position")
    assert [c.name for c in first.characters.all()] == ["Gopal Bhar"]
    assert [c.name for c in second.characters.all()] == ["Raja"]


def test_linking_finds_characters_by_name_and_alias_but_not_inside_words(team):
    gopal = services.character_save(project=team.project, name="Gopal Bhar", aliases="Gopal")
    ram = services.character_save(project=team.project, name="Ram")
    scene = services.scene_create(project=team.project, prompt="Gopal teaches Ramesh a program")
    assert list(scene.characters.all()) == [gopal]
    scene.prompt = "রাম and Ram talk"
    scene.save()
    assert services.project_link_characters(project=team.project) == 1
    assert set(scene.characters.all()) == {gopal, ram}


def test_editing_a_scene_saves_prompt_and_links(client, team, scenes):
    gopal = services.character_save(project=team.project, name="Gopal")
    client.force_login(team.editor)
    url = reverse("scene_edit", args=[team.project.pk, scenes[0].pk])
    response = client.post(url, {"title": "Opening", "prompt": "A new prompt", "characters": [gopal.pk]})
    assert response.status_code == 302
    scene = Scene.objects.get(pk=scenes[0].pk)
    assert (scene.title, scene.prompt, list(scene.characters.all())) == ("Opening", "A new prompt", [gopal])


def test_the_grid_shows_numbers_excerpts_characters_and_badges(client, team, scenes):
    services.character_save(project=team.project, name="Prompt")
    services.project_link_characters(project=team.project)
    client.force_login(team.viewer)
    body = client.get(reverse("project_detail", args=[team.project.pk])).content.decode()
    assert body.count('class="tile ') == 5
    assert (
        "Scene 5" in body
        and "Scene prompt 3" in body
        and 'class="chip">Prompt<' in body
        and "Pending" in body
    )
    assert "Add scene" not in body  # viewers get no edit controls


def test_skip_reason_explains_empty_prompts_and_existing_images(team):
    scene = Scene(project=team.project, position=1, prompt="   ")
    assert scene.skip_reason() == "empty prompt"
    scene.prompt, scene.image = "x", "projects/1/scenes/a.png"
    assert scene.skip_reason() == "already generated"
    assert scene.skip_reason(regenerate=True) == ""


def test_a_scene_deleted_meanwhile_is_refused_clearly_and_nothing_changes(scenes, team):
    stale = Scene.objects.get(pk=scenes[1].pk)
    services.scene_delete(scene=scenes[1])
    for change in (
        lambda: services.scene_move(scene=stale, to_position=1),
        lambda: services.scene_delete(scene=stale),
        lambda: services.scene_update(scene=stale, prompt="Back again", title=""),
    ):
        with pytest.raises(ValidationError, match="deleted meanwhile"):
            change()
    assert [p for p, _ in positions(team.project)] == [1, 2, 3, 4]
    assert not Scene.objects.filter(prompt="Back again").exists()


def test_saving_a_scene_keeps_a_position_changed_meanwhile(scenes, team):
    stale = Scene.objects.get(pk=scenes[0].pk)
    services.scene_move(scene=scenes[0], to_position=5)
    services.scene_update(scene=stale, prompt="Edited", title="")
    assert positions(team.project)[-1] == (5, "Edited")
    assert [p for p, _ in positions(team.project)] == [1, 2, 3, 4, 5]
