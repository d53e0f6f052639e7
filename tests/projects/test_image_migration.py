"""The data migration that renames files stored under the client's suffix before uploads were typed."""

from __future__ import annotations

import importlib
from pathlib import Path

from django.apps import apps
from django.core.files.storage import default_storage

from generation.models import SceneVersion
from projects import services
from projects.models import Character, Scene
from tests.conftest import png_bytes
from tests.projects.test_image_uploads import SCRIPT, jpeg_bytes, png_with_script

migration = importlib.import_module("projects.migrations.0003_image_suffix_from_content")


def stored(name: str, data: bytes) -> str:
    path = Path(default_storage.path(name))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return name


def run_migration(django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        migration.fix_stored_images(apps, None)


def test_it_renames_images_to_their_detected_suffix_everywhere_they_are_named(
    team, django_capture_on_commit_callbacks
):
    p = team.project.pk
    html = stored(f"projects/{p}/characters/a.html", png_with_script())
    svg = stored(f"projects/{p}/scenes/b.svg", jpeg_bytes())
    fine = stored(f"projects/{p}/scenes/c.png", png_bytes())
    gopal = services.character_save(project=team.project, name="Gopal")
    Character.objects.filter(pk=gopal.pk).update(reference=html)
    scene = services.scene_create(project=team.project, prompt="A river")
    Scene.objects.filter(pk=scene.pk).update(image=svg, status="ready")
    version = SceneVersion.objects.create(scene=scene, number=1, image=svg)
    other = services.scene_create(project=team.project, prompt="A goat")
    Scene.objects.filter(pk=other.pk).update(image=fine, status="ready")

    run_migration(django_capture_on_commit_callbacks)

    gopal.refresh_from_db()
    scene.refresh_from_db()
    version.refresh_from_db()
    assert gopal.reference.name == f"projects/{p}/characters/a.png"
    assert scene.image.name == version.image.name == f"projects/{p}/scenes/b.jpg"
    assert Path(gopal.reference.path).read_bytes() == png_with_script()
    assert not default_storage.exists(html) and not default_storage.exists(svg)
    assert Scene.objects.get(pk=other.pk).image.name == fine  # already right: untouched


def test_it_takes_away_stored_files_that_are_not_images(team, django_capture_on_commit_callbacks):
    p = team.project.pk
    bad = stored(f"projects/{p}/scenes/d.png", SCRIPT)
    bad_reference = stored(f"projects/{p}/characters/e.html", SCRIPT)
    scene = services.scene_create(project=team.project, prompt="A river")
    Scene.objects.filter(pk=scene.pk).update(image=bad, status="ready")
    gopal = services.character_save(project=team.project, name="Gopal")
    Character.objects.filter(pk=gopal.pk).update(reference=bad_reference)

    run_migration(django_capture_on_commit_callbacks)

    scene.refresh_from_db()
    gopal.refresh_from_db()
    assert (scene.image.name, scene.status) == ("", "pending")
    assert not gopal.has_reference()


def test_a_row_whose_file_is_missing_is_left_alone(team, django_capture_on_commit_callbacks):
    gopal = services.character_save(project=team.project, name="Gopal")
    Character.objects.filter(pk=gopal.pk).update(reference="projects/1/characters/gone.html")
    run_migration(django_capture_on_commit_callbacks)
    gopal.refresh_from_db()
    assert gopal.reference.name == "projects/1/characters/gone.html"
