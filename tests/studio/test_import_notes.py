from __future__ import annotations

import json

import pytest

from projects import services
from projects.importers import StoryFormatError, parse_story


def test_csv_columns_named_like_the_notes_are_imported():
    text = "prompt,shot,camera,dialogue,duration\nA goat,close-up,dolly in,Baa!,3s\nA river,,,,\n"
    first, second = parse_story(text, fmt="csv")
    assert dict(first.notes) == {
        "shot": "close-up",
        "camera": "dolly in",
        "dialogue": "Baa!",
        "duration": "3s",
    }
    assert second.notes == ()


def test_json_notes_are_imported_and_a_numeric_duration_is_text():
    text = json.dumps([{"prompt": "A goat", "shot": "wide", "duration": 4}])
    (scene,) = parse_story(text, fmt="json")
    assert dict(scene.notes) == {"shot": "wide", "duration": "4"}


def test_a_note_that_is_not_text_names_the_item():
    with pytest.raises(StoryFormatError) as refused:
        parse_story(json.dumps([{"prompt": "A goat", "camera": ["pan"]}]), fmt="json")
    assert "Item 1" in str(refused.value) and "camera" in str(refused.value)


def test_an_overlong_note_is_refused():
    with pytest.raises(StoryFormatError):
        parse_story("prompt,duration\nA goat," + "9" * 30 + "\n", fmt="csv")


@pytest.mark.django_db
def test_imported_scenes_keep_their_notes(team):
    services.story_import(project=team.project, text="prompt,shot\nA goat,close-up\n", fmt="csv")
    scene = team.project.scenes.get()
    assert scene.shot == "close-up" and scene.note_items() == [("Shot", "close-up")]
