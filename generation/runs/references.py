"""The reference images a scene request carries: every view of every character of the scene, in a stable
order, cut to what the provider takes, and never a silent substitute for one that cannot be read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from generation.providers.base import Reference
from projects.images import NotAnImage, inspect_image
from projects.models import Character

MIMES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp", ".gif": "image/gif"}


class ReferenceUnreadable(Exception):
    """A reference image is missing or damaged: the scene must not be generated without it."""


@dataclass(frozen=True)
class Slot:
    """One reference image of one character, named for requests and warnings."""

    character: Character
    name: str  # the character's file name in storage
    label: str  # "Mara" or "Mara (profile)"


@dataclass
class SceneReferences:
    sent: list[Reference] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # labels past the provider's limit

    @property
    def hashes(self) -> list[str]:
        return [sha256(reference.image) for reference in self.sent]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def slots_for(characters: Iterable[Character]) -> list[Slot]:
    """Every reference of these characters: by character name (then pk), each main reference first."""
    slots = []
    for character in sorted(characters, key=lambda c: (c.name, c.pk)):
        extras = {extra.image.name: extra.label for extra in character.extra_references.all()}
        for file in character.reference_files():
            label = extras.get(file.name, "")
            slots.append(
                Slot(character, file.name, f"{character.name} ({label})" if label else character.name)
            )
    return slots


def cut(slots: list[Slot], limit: int) -> tuple[list[Slot], list[Slot]]:
    """(sent, dropped): each character's main reference comes before anyone's extra views, so a tight
    limit keeps one image of as many characters as it can."""
    mains = {id(slot) for slot in slots if slot.name == slot.character.reference.name}
    ordered = [s for s in slots if id(s) in mains] + [s for s in slots if id(s) not in mains]
    keep = {id(s) for s in ordered[: max(0, limit)]}
    return [s for s in slots if id(s) in keep], [s for s in slots if id(s) not in keep]


class ReferenceReader:
    """Reads each file once per run; a file that is missing or does not decode raises ReferenceUnreadable."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cache: dict[str, Reference] = {}

    def read(self, slot: Slot) -> Reference:
        if slot.name not in self.cache:
            try:
                data = (self.root / slot.name).read_bytes()
                inspect_image(data)
            except FileNotFoundError as exc:
                raise ReferenceUnreadable(f"The reference image of {slot.label} is missing.") from exc
            except (OSError, NotAnImage) as exc:
                raise ReferenceUnreadable(
                    f"The reference image of {slot.label} cannot be read (damaged file)."
                ) from exc
            mime = MIMES.get(Path(slot.name).suffix.lower(), "image/png")
            self.cache[slot.name] = Reference(name=slot.label, image=data, mime=mime)
        return self.cache[slot.name]

    def for_scene(self, characters: Iterable[Character], limit: int) -> SceneReferences:
        sent, dropped = cut(slots_for(characters), limit)
        return SceneReferences(sent=[self.read(s) for s in sent], dropped=[s.label for s in dropped])
