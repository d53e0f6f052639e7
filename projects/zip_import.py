"""Import a Scene Studio ZIP (as "Download ZIP" makes it) into a project: scenes in story order with
their titles, prompts, characters and notes, and each exported image as the scene's current image and a
version carrying its recorded provider, model, seed and prompt.

Validated like any upload before anything is written: typed by content (a ZIP with a manifest.json; every
image a real PNG, JPEG, WebP or GIF, fully decoded), within size limits, and the story through the same
parser and caps as a JSON story import. A bad archive changes nothing.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction

from generation.services import scene_version_import
from projects import services
from projects.images import NotAnImage, inspect_image
from projects.models import Project, Scene
from projects.notes import NOTE_FIELDS

MANIFEST = "manifest.json"
MAX_MEMBERS = 4 * 1000 + 10  # two files a scene, the manifest and failed_scenes.txt, with room to spare


@dataclass(frozen=True)
class Entry:
    story: dict[str, Any]  # one item of a JSON story
    image_file: str | None
    facts: dict[str, Any]


def studio_zip_import(*, project: Project, upload: IO[bytes], mode: str = "append") -> list[Scene]:
    archive = _open(upload)
    entries = _entries(archive)
    for entry in entries:
        if entry.image_file:
            _image(archive, entry.image_file)  # every image checked before the first write
    story = json.dumps([entry.story for entry in entries])
    with transaction.atomic():
        scenes = services.story_import(project=project, text=story, fmt="json", mode=mode)
        for scene, entry in zip(scenes, entries, strict=True):
            if entry.image_file:
                _attach(scene, _image(archive, entry.image_file), entry)
    return scenes


def _open(upload: IO[bytes]) -> zipfile.ZipFile:
    size = getattr(upload, "size", None)
    if size is not None and size > settings.STUDIO_ZIP_MAX_BYTES:
        raise ValidationError(f"The ZIP is too large: at most {settings.STUDIO_ZIP_MAX_BYTES} bytes.")
    try:
        archive = zipfile.ZipFile(upload)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValidationError("The file is not a ZIP archive.") from exc
    members = archive.infolist()
    if len(members) > MAX_MEMBERS:
        raise ValidationError("The ZIP has too many files to be a Scene Studio export.")
    # Declared sizes, checked before anything is inflated: a small archive may unpack to gigabytes.
    if sum(m.file_size for m in members) > settings.STUDIO_ZIP_MAX_BYTES:
        raise ValidationError("The ZIP unpacks to more than the studio accepts.")
    if MANIFEST not in archive.namelist():
        raise ValidationError("The ZIP has no manifest.json: it is not a Scene Studio export.")
    return archive


def _entries(archive: zipfile.ZipFile) -> list[Entry]:
    try:
        manifest = json.loads(archive.read(MANIFEST).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationError("manifest.json could not be read.") from exc
    if not isinstance(manifest, dict):
        raise ValidationError("manifest.json is not a Scene Studio manifest.")
    items = [(item, True) for item in manifest.get("scenes") or []]
    items += [(item, False) for item in manifest.get("missing") or []]
    if not all(isinstance(item, dict) and isinstance(item.get("number"), int) for item, _ in items):
        raise ValidationError("manifest.json lists a scene without a number.")
    entries = []
    for item, has_image in sorted(items, key=lambda pair: pair[0]["number"]):
        story = {"prompt": item.get("prompt") or "", "title": item.get("title") or ""}
        story["characters"] = item.get("characters") or []
        notes = item.get("notes") if isinstance(item.get("notes"), dict) else {}
        story.update({name: notes[name] for name in NOTE_FIELDS if name in notes})
        image_file = item.get("image_file") if has_image else None
        if image_file is not None and image_file not in archive.namelist():
            raise ValidationError(f"Scene {item['number']}: {image_file} is not in the ZIP.")
        entries.append(Entry(story=story, image_file=image_file, facts=item))
    return entries


def _image(archive: zipfile.ZipFile, name: str) -> bytes:
    data = archive.read(name)
    try:
        inspect_image(data, max_side=settings.STUDIO_ZIP_MAX_PIXELS)
    except NotAnImage as exc:
        raise ValidationError(f"{name}: {exc.message}") from exc
    return data


def _attach(scene: Scene, data: bytes, entry: Entry) -> None:
    scene.image.save(f"imported-{scene.position}", ContentFile(data), save=False)
    facts = entry.facts
    scene_version_import(
        scene_id=scene.pk,
        image=scene.image.name,
        provider=str(facts.get("provider") or ""),
        model=str(facts.get("model") or ""),
        seed=facts.get("seed") if isinstance(facts.get("seed"), int) else None,
        prompt=str(facts.get("prompt_sent") or facts.get("prompt") or ""),
        reference_hashes=[h for h in facts.get("reference_hashes") or [] if isinstance(h, str)],
    )
    # After the version: a scene image without one would be kept as an extra, "imported" version.
    Scene.objects.filter(pk=scene.pk).mark_ready(image=scene.image.name)
