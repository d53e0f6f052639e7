# Uploads used to keep the client's suffix (a PNG named portrait.html was stored as <uuid>.html). Images
# are now stored under the suffix of the format Pillow detects; this renames the files stored before, and
# takes away from scenes and characters a stored file that is not a PNG, JPEG, WebP or GIF at all (the
# studio then asks for a new one; scene versions keep theirs, which the serving view refuses with a 415).

import os
import shutil
import uuid
from pathlib import Path, PurePosixPath

from django.core.files.storage import default_storage
from django.db import migrations, transaction
from PIL import Image

import projects.models

SUFFIXES = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "GIF": ".gif"}


def detected_suffix(path: Path) -> str | None:
    """The suffix of the format in the file's header, or None when it is not one of the four."""
    try:
        with Image.open(path, formats=list(SUFFIXES)) as image:
            return SUFFIXES[image.format]
    except Exception:  # any failure to read the header means: not an image we serve
        return None


def renamed(name: str, suffix: str) -> str:
    new = str(PurePosixPath(name).with_suffix(suffix))
    if default_storage.exists(new):
        new = str(PurePosixPath(name).with_name(f"{uuid.uuid4().hex}{suffix}"))
    return new


def link(source: Path, target: Path) -> None:
    # A second name first, the old one removed only once the rows point at the new one (after commit).
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def image_fields(apps):
    return [
        (apps.get_model("projects", "Scene"), "image"),
        (apps.get_model("projects", "Character"), "reference"),
        (apps.get_model("generation", "SceneVersion"), "image"),
    ]


def stored_names(apps) -> set[str]:
    names: set[str] = set()
    for model, field in image_fields(apps):
        names.update(model.objects.exclude(**{field: ""}).values_list(field, flat=True).distinct())
    return names


def fix_stored_images(apps, schema_editor) -> None:
    for name in sorted(stored_names(apps)):
        path = Path(default_storage.path(name))
        if not path.is_file():
            continue  # already served as missing (404)
        suffix = detected_suffix(path)
        if suffix is None:
            refuse(apps, name)
        elif PurePosixPath(name).suffix != suffix:
            rename(apps, name, suffix)


def rename(apps, name: str, suffix: str) -> None:
    new = renamed(name, suffix)
    old_path = Path(default_storage.path(name))
    link(old_path, Path(default_storage.path(new)))
    for model, field in image_fields(apps):
        model.objects.filter(**{field: name}).update(**{field: new})
    transaction.on_commit(lambda: old_path.unlink(missing_ok=True))


def refuse(apps, name: str) -> None:
    Scene = apps.get_model("projects", "Scene")
    Character = apps.get_model("projects", "Character")
    Scene.objects.filter(image=name, status="ready").update(status="pending")
    Scene.objects.filter(image=name).update(image="")
    Character.objects.filter(reference=name).update(reference="")


class Migration(migrations.Migration):
    dependencies = [
        ("projects", "0002_character_claimed_by_scene_claimed_by"),
        ("generation", "0003_batchrun_quota_resume_at"),
    ]

    operations = [
        migrations.AlterField(
            model_name="character",
            name="reference",
            field=projects.models.PrivateImageField(
                blank=True, upload_to=projects.models.character_reference_path
            ),
        ),
        migrations.AlterField(
            model_name="scene",
            name="image",
            field=projects.models.PrivateImageField(blank=True, upload_to=projects.models.scene_image_path),
        ),
        migrations.RunPython(fix_stored_images, migrations.RunPython.noop, elidable=True),
    ]
