"""Choosing among images: the variations a run made of a scene, the seed a scene keeps, and whether the
references behind an image have changed since it was made."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from generation.models import SceneVersion
from generation.providers.base import Capabilities
from generation.runs.providers import provider_for
from generation.runs.references import cut, sha256, slots_for
from generation.runs.versions import scene_version_add
from projects.models import Character, Project, Scene, SceneSeedLock

NO_SEED = "This image has no recorded seed to keep; generate it again first."


def scene_candidates(*, project_id: int) -> dict[int, list[SceneVersion]]:
    """For each scene whose newest image came from a run that asked several variations: that run's
    versions of the scene, in candidate order (the tile shows them side by side)."""
    versions = (
        SceneVersion.objects.filter(scene__project_id=project_id)
        .select_related("attempt__run", "scene")
        .order_by("scene_id", "-number")
    )
    newest_run: dict[int, int | None] = {}
    found: dict[int, list[SceneVersion]] = defaultdict(list)
    for version in versions:
        run = version.attempt.run if version.attempt else None
        if version.scene_id not in newest_run:
            newest_run[version.scene_id] = run.pk if run and run.candidates > 1 else None
        if run is not None and newest_run[version.scene_id] == run.pk:
            found[version.scene_id].append(version)
    return {scene: sorted(items, key=lambda v: v.candidate) for scene, items in found.items()}


def scene_seed_lock(*, scene: Scene, lock: bool) -> Scene:
    """Pin the seed of the scene's current image (or let go of it): regenerating keeps the composition
    where the provider honours seeds."""
    seed = None
    if lock:
        current = SceneVersion.objects.filter(scene=scene, image=scene.image.name).order_by("-number").first()
        if current is None or current.seed is None:
            raise ValidationError(NO_SEED)
        seed = current.seed
    with transaction.atomic():
        if seed is None:
            SceneSeedLock.objects.filter(scene=scene).delete()
        else:
            SceneSeedLock.objects.update_or_create(scene=scene, defaults={"seed": seed})
    return Scene.objects.select_related("seed_lock").get(pk=scene.pk)


def current_reference_hashes(characters: Iterable[Character]) -> set[str]:
    """sha256 of every reference image these characters have now (unreadable files have none)."""
    hashes = set()
    for character in characters:
        for file in character.reference_files():
            try:
                with file.open("rb") as handle:
                    hashes.add(sha256(handle.read()))
            except OSError:
                continue
    return hashes


def references_changed(*, version: SceneVersion, current: set[str]) -> bool:
    """Whether a reference sent for this image is no longer among the characters' references."""
    return bool(set(version.reference_hashes) - current)


def project_capabilities(project: Project) -> Capabilities | None:
    """What the project's provider honours, or None when it cannot be built here (no credential)."""
    name = project.provider or settings.GENERATION_PROVIDER
    try:
        return provider_for(name, project.provider_model).capabilities
    except Exception:  # a missing key or an unreachable workflow file: the page still renders
        return None


def references_cut(*, scenes: Iterable[Scene], capabilities: Capabilities | None) -> dict[int, list[str]]:
    """Scene pk -> the reference images a request would leave out past the provider's limit."""
    if capabilities is None:
        return {}
    cuts = {}
    for scene in scenes:
        _sent, dropped = cut(slots_for(scene.characters.all()), capabilities.max_references)
        if dropped:
            cuts[scene.pk] = [slot.label for slot in dropped]
    return cuts


def version_lineage(*, project_id: int) -> dict[int, list[dict[str, Any]]]:
    """Scene id -> every version of the scene, oldest first, with what made it (for the manifest)."""
    fields = (
        "scene_id",
        "number",
        "candidate",
        "provider",
        "model",
        "seed",
        "prompt",
        "scene_prompt",
        "negative_prompt",
        "style",
        "reference_hashes",
        "attempt__run_id",
        "created",
    )
    lineage: dict[int, list[dict[str, Any]]] = defaultdict(list)
    versions = SceneVersion.objects.filter(scene__project_id=project_id).order_by("scene_id", "number")
    for version in versions.values(*fields):
        version["run"] = version.pop("attempt__run_id")
        version["created"] = version["created"].isoformat()
        lineage[version.pop("scene_id")].append(version)
    return dict(lineage)


def scene_version_import(
    *,
    scene_id: int,
    image: str,
    provider: str,
    model: str,
    seed: int | None,
    prompt: str,
    reference_hashes: list[str],
) -> SceneVersion | None:
    """A version for an image brought in from an export: what made it, as the export recorded it."""
    return scene_version_add(
        scene_id=scene_id,
        image=image,
        attempt_id=None,
        provider=provider,
        model=model,
        seed=seed,
        prompt=prompt,
        attempts=1,
        reference_hashes=reference_hashes,
    )
