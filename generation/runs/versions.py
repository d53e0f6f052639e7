"""Scene versions: every image a scene has had, numbered, and which one the scene shows now."""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import OuterRef, Subquery

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
) -> SceneVersion | None:
    """Record a new image of a scene (None when the scene is gone). An image that predates versions is
    kept as a version first.

    One query locks the scene and reads its last version's number: this runs for every generated image."""
    last = SceneVersion.objects.filter(scene=OuterRef("pk")).order_by("-number").values("number")[:1]
    scenes = Scene.objects.select_for_update().only("image", "prompt").annotate(last_number=Subquery(last))
    scene = scenes.filter(pk=scene_id).first()
    if scene is None:
        return None
    number = scene.last_number or 0
    if scene.image and not SceneVersion.objects.filter(scene=scene, image=scene.image.name).exists():
        number += 1
        SceneVersion.objects.create(scene=scene, number=number, image=scene.image.name, prompt=scene.prompt)
    return SceneVersion.objects.create(
        scene=scene,
        number=number + 1,
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


def scene_version_make_current(*, version: SceneVersion) -> Scene:
    """Show an older (or newer) image again; nothing is deleted."""
    scene = version.scene
    # The scene's claim stays: a run generating it now still holds it.
    Scene.objects.filter(pk=scene.pk).mark_ready(image=version.image.name, release=False)
    scene.refresh_from_db()
    return scene
