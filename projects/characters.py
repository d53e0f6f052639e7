"""Workflows of characters beyond the basic form: extra reference views, and the character library
(copying characters, with their references, from another project the user belongs to)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import models, transaction

from projects.models import Character, CharacterReference, Project


def character_reference_add(
    *, character: Character, image: UploadedFile, label: str = ""
) -> CharacterReference:
    """Add a further view after the existing ones; `image` has passed validate_reference_image."""
    last = character.extra_references.aggregate(m=models.Max("position"))["m"] or 0
    extra = CharacterReference(character=character, label=label.strip()[:40], position=last + 1)
    extra.image.save(image.name or "reference", image, save=True)
    return extra


def character_reference_delete(*, reference: CharacterReference) -> None:
    name = reference.image.name
    storage = reference.image.storage
    reference.delete()
    transaction.on_commit(lambda: storage.delete(name))


@dataclass
class Copied:
    created: list[Character] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # names the target project already has


def characters_copy(*, characters: Iterable[Character], project: Project) -> Copied:
    """Copy characters into `project` with their references (new files: the projects stay independent).
    A name the project already has is skipped, never merged. The caller checked access to both projects."""
    outcome = Copied()
    taken = {name.casefold() for name in project.characters.values_list("name", flat=True)}
    for source in characters:
        if source.name.casefold() in taken:
            outcome.skipped.append(source.name)
            continue
        with transaction.atomic():
            outcome.created.append(_copy_one(source, project))
        taken.add(source.name.casefold())
    return outcome


def _copy_one(source: Character, project: Project) -> Character:
    copy = Character.objects.create(
        project=project, name=source.name, aliases=source.aliases, description=source.description
    )
    if source.reference:
        copy.reference.save("reference", _content(source.reference), save=True)
    for extra in source.extra_references.all():
        duplicate = CharacterReference(character=copy, label=extra.label, position=extra.position)
        duplicate.image.save("reference", _content(extra.image), save=True)
    return copy


def _content(file) -> ContentFile:
    with file.open("rb") as handle:
        return ContentFile(handle.read())
