"""Scene versions: every image a scene has had, numbered, and which one the scene shows now."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import models

from generation.models import SceneVersion
from projects.models import Scene


def scene_version_add(
    *,
    scene_id: int,
    image: str,
    attempt_id: int | None,
    provider: str,
    model: str,
    seed: int | None,
    prompt: str,
    attempts: int,
    scene_prompt: str = "",
    style: dict | None = None,
    negative_prompt: str = "",
    reference_hashes: Sequence[str] = (),
    candidate: int = 1,
) -> SceneVersion:
    """Record a new image of a scene. An image that predates versions is kept as a version first."""
    scene = Scene.objects.select_for_update().get(pk=scene_id)
    versions = SceneVersion.objects.filter(scene=scene)
    if scene.image and not versions.filter(image=scene.image.name).exists():
        SceneVersion.objects.create(
            scene=scene, number=_next_version(scene), image=scene.image.name, prompt=scene.prompt
        )
    return SceneVersion.objects.create(
        scene=scene,
        number=_next_version(scene),
        image=image,
        attempt_id=attempt_id,
        provider=provider,
        model=model,
        seed=seed,
        prompt=prompt,
        attempts=attempts,
        scene_prompt=scene_prompt,
        style=style or {},
        negative_prompt=negative_prompt,
        reference_hashes=list(reference_hashes),
        candidate=candidate,
    )


def _next_version(scene: Scene) -> int:
    last = SceneVersion.objects.filter(scene=scene).aggregate(m=models.Max("number"))["m"]
    return (last or 0) + 1


def scene_version_make_current(*, version: SceneVersion) -> Scene:
    """Show an older (or newer) image again; nothing is deleted."""
    scene = version.scene
    # The scene's claim stays: a run generating it now still holds it.
    Scene.objects.filter(pk=scene.pk).mark_ready(image=version.image.name, release=False)
    scene.refresh_from_db()
    return scene
