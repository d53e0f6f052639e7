"""Workflows over projects, members, scenes and characters: views and commands call these to write."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from generation.services import project_changed_notify
from projects.importers import ParsedScene, parse_story
from projects.mentions import MentionFinder, find_mentions
from projects.models import Character, Membership, Project, Role, Scene
from projects.wording import count_noun, listing

SCENE_GONE = "That scene was deleted meanwhile (by someone else, or by an import); nothing was changed."
# Positions are parked above this offset mid-reorder so the (project, position) unique constraint never trips.
_PARK_OFFSET = 1_000_000


def project_create(*, title: str, description: str = "", user) -> Project:
    with transaction.atomic():
        project = Project.objects.create(title=title, description=description, created_by=user)
        Membership.objects.create(project=project, user=user, role=Role.OWNER)
    return project


def member_add(*, project: Project, username: str, role: str) -> Membership:
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise ValidationError(f"There is no user called {username!r}.")
    membership, created = Membership.objects.get_or_create(
        project=project, user=user, defaults={"role": role}
    )
    if not created:
        raise ValidationError(f"{username} is already a member ({membership.role}).")
    return membership


def member_set_role(*, membership: Membership, role: str) -> Membership:
    if membership.role == Role.OWNER and role != Role.OWNER:
        _ensure_another_owner(membership)
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


def member_remove(*, membership: Membership) -> None:
    if membership.role == Role.OWNER:
        _ensure_another_owner(membership)
    membership.delete()


def _ensure_another_owner(membership: Membership) -> None:
    others = Membership.objects.filter(project=membership.project, role=Role.OWNER).exclude(pk=membership.pk)
    if not others.exists():
        raise ValidationError("A project needs at least one owner.")


def _renumber(project: Project) -> None:
    """Make positions 1..N again, in current order, without tripping the unique constraint."""
    scenes = list(Scene.objects.filter(project=project).order_by("position", "pk").only("pk", "position"))
    changed = [scene for index, scene in enumerate(scenes, start=1) if scene.position != index]
    if not changed:
        return
    Scene.objects.filter(pk__in=[s.pk for s in changed]).update(position=F("position") + _PARK_OFFSET)
    for index, scene in enumerate(scenes, start=1):
        if scene in changed:
            Scene.objects.filter(pk=scene.pk).update(position=index)


def scene_create(*, project: Project, prompt: str, title: str = "", position: int | None = None) -> Scene:
    with transaction.atomic():
        _lock(project)
        _ensure_room_for_scenes(project.scenes.count() + 1)
        scene = Scene.objects.create(
            project=project, prompt=prompt, title=title, position=project.next_position()
        )
        scene_link_characters(scene=scene)
        if position is not None and position != scene.position:
            scene_move(scene=scene, to_position=position)
        project_changed_notify(project_id=project.pk)
    return scene


def scene_update(
    *, scene: Scene, prompt: str, title: str, characters: Iterable[Character] | None = None
) -> Scene:
    prompt_changed = prompt != scene.prompt
    scene.prompt = prompt
    scene.title = title
    # Only these fields: a full save would write back a position read before a concurrent move, or a
    # status read before a run changed it; an update that finds no row (deleted meanwhile) must not
    # insert the scene again.
    with transaction.atomic():  # the update locks the row: the scene cannot vanish before its links go in
        one = Scene.objects.filter(pk=scene.pk)
        if not one.update(prompt=scene.prompt, title=scene.title, updated=timezone.now()):
            raise ValidationError(SCENE_GONE)
        if prompt_changed:
            one.mark_unskipped()
        scene.refresh_from_db(fields=["status"])
        if characters is not None:
            scene.characters.set(characters)
        project_changed_notify(project_id=scene.project_id)
    return scene


def scene_delete(*, scene: Scene) -> None:
    with transaction.atomic():
        _lock(scene.project)
        if not Scene.objects.filter(pk=scene.pk, project_id=scene.project_id).exists():
            raise ValidationError(SCENE_GONE)
        scene.delete()
        _renumber(scene.project)
        project_changed_notify(project_id=scene.project_id)


def scene_move(*, scene: Scene, to_position: int) -> Scene:
    """Move a scene to a story position (clamped to 1..N); the others shift to stay contiguous."""
    with transaction.atomic():
        _lock(scene.project)
        ids = list(
            Scene.objects.filter(project_id=scene.project_id)
            .order_by("position")
            .values_list("pk", flat=True)
        )
        if scene.pk not in ids:
            raise ValidationError(SCENE_GONE)
        ids.remove(scene.pk)
        index = max(0, min(to_position - 1, len(ids)))
        ids.insert(index, scene.pk)
        _reorder(project=scene.project, ordered_ids=ids)
    scene.refresh_from_db(fields=["position"])
    return scene


def scenes_reorder(*, project: Project, ordered_ids: Sequence[int]) -> None:
    """Apply a full new order. The list must name every scene of the project exactly once."""
    with transaction.atomic():
        _lock(project)
        current = set(Scene.objects.filter(project=project).values_list("pk", flat=True))
        if len(ordered_ids) != len(current) or set(ordered_ids) != current:
            raise ValidationError("The new order must list every scene of the project exactly once.")
        _reorder(project=project, ordered_ids=ordered_ids)


def _reorder(*, project: Project, ordered_ids: Sequence[int]) -> None:
    # Callers hold the project lock and have checked that `ordered_ids` names every scene once.
    Scene.objects.filter(project=project).update(position=F("position") + _PARK_OFFSET)
    for index, pk in enumerate(ordered_ids, start=1):
        Scene.objects.filter(pk=pk).update(position=index)
    project_changed_notify(project_id=project.pk)


@dataclass
class StoryImported:
    """What an import did besides adding scenes: the characters it created and the links it made."""

    scenes: list[Scene]
    created: list[Character] = field(default_factory=list)
    links: int = 0

    def message(self) -> str:
        text = f"Imported {count_noun(len(self.scenes), 'scene')}"
        if self.created:
            names = listing([c.name for c in self.created], limit=8)
            text += f"; created {count_noun(len(self.created), 'character')} ({names})"
        if self.links:
            text += f"; linked {count_noun(self.links, 'character appearance')} found in the story"
        return text + "."


def story_import(
    *, project: Project, text: str, fmt: str = "auto", filename: str = "", mode: str = "append"
) -> list[Scene]:
    """Parse first, write after: a malformed story or a cap raises (StoryFormatError, ValidationError)
    and changes nothing."""
    return story_import_outcome(project=project, text=text, fmt=fmt, filename=filename, mode=mode).scenes


def story_import_outcome(
    *, project: Project, text: str, fmt: str = "auto", filename: str = "", mode: str = "append"
) -> StoryImported:
    """story_import, telling also which characters it created and how many links it made."""
    parsed = parse_story(text, fmt=fmt, filename=filename)
    with transaction.atomic():
        _lock(project)
        existing = 0 if mode == "replace" else project.scenes.count()
        _ensure_room_for_scenes(existing + len(parsed))
        known = {c.name.casefold(): c for c in project.characters.all()}
        new_names = _new_character_names(parsed, known)
        if mode == "replace":
            project.scenes.all().delete()
        start = project.next_position()
        scenes = Scene.objects.bulk_create(
            Scene(project=project, position=start + i, prompt=item.prompt, title=item.title)
            for i, item in enumerate(parsed)
        )
        created = Character.objects.bulk_create(Character(project=project, name=name) for name in new_names)
        known.update((c.name.casefold(), c) for c in created)
        links = _link_imported(scenes=scenes, parsed=parsed, by_name=known)
        project_changed_notify(project_id=project.pk)
    return StoryImported(scenes=scenes, created=created, links=links)


def _lock(project: Project) -> None:
    """Every write that appends or renumbers scenes takes this one lock first, so they run one at a time."""
    Project.objects.select_for_update().filter(pk=project.pk).first()


def _ensure_room_for_scenes(total: int) -> None:
    cap = settings.PROJECT_MAX_SCENES
    if total > cap:
        raise ValidationError(
            f"A project can have at most {cap} scenes; this would make {total}. Nothing was changed."
        )


def _new_character_names(parsed: list[ParsedScene], known: dict[str, Character]) -> list[str]:
    """Names the story gives that the project has no character for, first spelling kept, capped."""
    new: dict[str, str] = {}
    for item in parsed:
        for name in item.characters:
            if name.casefold() not in known:
                new.setdefault(name.casefold(), name)
    cap = settings.IMPORT_MAX_NEW_CHARACTERS
    if len(new) > cap:
        raise ValidationError(
            f"The story names {len(new)} new characters; an import may create at most {cap}. "
            "Create the characters first or split the story."
        )
    return list(new.values())


def _link_imported(*, scenes: list[Scene], parsed: list[ParsedScene], by_name: dict[str, Character]) -> int:
    finder = _finder(by_name.values())
    links = set()
    for scene, item in zip(scenes, parsed, strict=True):
        named = [by_name[name.casefold()] for name in item.characters]
        links.update((scene.pk, c.pk) for c in (*named, *finder.find(scene.prompt)))
    return _add_links(links)


def _finder(characters: Iterable[Character]) -> MentionFinder[Character]:
    return MentionFinder([(c, c.name, c.alias_list()) for c in characters])


def _add_links(links: Iterable[tuple[int, int]]) -> int:
    """Insert scene-character links in bulk; a link that already exists is kept as it is."""
    through = Scene.characters.through
    rows = [through(scene_id=scene_id, character_id=character_id) for scene_id, character_id in links]
    through.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def scene_links_propose(*, scene: Scene, characters: Sequence[Character] | None = None) -> list[Character]:
    """Characters whose name or alias appears in the scene's prompt as a whole word."""
    if characters is None:
        characters = list(scene.project.characters.all())
    entries = [(c, c.name, c.alias_list()) for c in characters]
    return find_mentions(scene.prompt, entries)


def scene_link_characters(*, scene: Scene) -> list[Character]:
    """Add the proposed links to a scene; links a user made by hand are never removed."""
    proposed = scene_links_propose(scene=scene)
    if proposed:
        scene.characters.add(*proposed)
    return proposed


def project_links_propose(*, project: Project) -> list[tuple[Scene, list[Character]]]:
    """Per scene (in story order), the characters named in its prompt that it is not linked to yet."""
    finder = _finder(project.characters.all())
    existing = set(
        Scene.characters.through.objects.filter(scene__project=project).values_list(
            "scene_id", "character_id"
        )
    )
    proposals = []
    for scene in project.scenes.order_by("position").only("pk", "position", "title", "prompt"):
        found = [c for c in finder.find(scene.prompt) if (scene.pk, c.pk) not in existing]
        if found:
            proposals.append((scene, sorted(found, key=lambda c: c.name)))
    return proposals


def project_links_apply(*, project: Project, pairs: Iterable[tuple[int, int]]) -> int:
    """Add the proposed links among `pairs` (scene id, character id): a pair no longer proposed (the
    prompt changed, or a teammate linked it meanwhile) is left out. Returns how many were added."""
    proposed = {(s.pk, c.pk) for s, found in project_links_propose(project=project) for c in found}
    added = _add_links(set(pairs) & proposed)
    if added:
        project_changed_notify(project_id=project.pk)
    return added


def project_link_characters(*, project: Project) -> int:
    """Link every proposed appearance at once (the admin and scripts; the page asks first)."""
    proposals = project_links_propose(project=project)
    added = _add_links({(scene.pk, c.pk) for scene, found in proposals for c in found})
    if added:
        project_changed_notify(project_id=project.pk)
    return added


def character_save(
    *,
    project: Project,
    name: str,
    aliases: str = "",
    description: str = "",
    reference: UploadedFile | None = None,
    character: Character | None = None,
) -> Character:
    character = character or Character(project=project)
    character.name, character.aliases, character.description = name, aliases, description
    # Read the old file name from the database: a ModelForm has already put the new upload on the instance.
    old_reference = (
        Character.objects.filter(pk=character.pk).values_list("reference", flat=True).first()
        if character.pk
        else ""
    )
    if reference is not None:
        character.reference.save(reference.name, reference, save=False)
    character.save()
    if reference is not None and old_reference:
        character.reference.storage.delete(old_reference)
    # Tiles show the characters' names; a new reference changes what the next run sends.
    project_changed_notify(project_id=project.pk)
    return character


def character_delete(*, character: Character) -> None:
    character.delete()
    project_changed_notify(project_id=character.project_id)
