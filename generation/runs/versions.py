"""Scene versions: every image a scene has had, numbered, and which one the scene shows now."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db.models import OuterRef, Subquery

from generation.models import SceneVersion
from projects.models import Scene


def scenes_lock_for_versions(scene_ids: Iterable[int]) -> dict[int, Scene]:
    """Lock these scenes and read each one's last version number (`last_number`): one query, whatever
    their number. A scene that is gone is missing from the result."""
    last = SceneVersion.objects.filter(scene=OuterRef("pk")).order_by("-number").values("number")[:1]
    scenes = Scene.objects.select_for_update().only("image", "prompt").annotate(last_number=Subquery(last))
    return {scene.pk: scene for scene in scenes.filter(pk__in=list(scene_ids))}


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
    locked: dict[int, Scene] | None = None,
    pending: list[SceneVersion] | None = None,
) -> SceneVersion | None:
    """Record a new image of a scene (None when the scene is gone). An image that predates versions is
    kept as a version first.

    This runs for every generated image: one query locks the scene and reads its last version number,
    unless `locked` holds it already (scenes_lock_for_versions, for a group of writes, each scene once).
    With `pending` the rows are put there for the caller to insert together, not inserted one by one."""
    scene = locked[scene_id] if locked is not None and scene_id in locked else _locked(scene_id)
    if scene is None:
        return None
    number = scene.last_number or 0
    rows = []
    if scene.image and not SceneVersion.objects.filter(scene=scene, image=scene.image.name).exists():
        number += 1
        rows.append(SceneVersion(scene=scene, number=number, image=scene.image.name, prompt=scene.prompt))
    version = SceneVersion(
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
    rows.append(version)
    if pending is not None:
        pending.extend(rows)
    else:
        for row in rows:
            row.save(force_insert=True)
    return version


def _locked(scene_id: int) -> Scene | None:
    return scenes_lock_for_versions([scene_id]).get(scene_id)


def scene_version_make_current(*, version: SceneVersion) -> Scene:
    """Show an older (or newer) image again; nothing is deleted."""
    scene = version.scene
    # The scene's claim stays: a run generating it now still holds it.
    Scene.objects.filter(pk=scene.pk).mark_ready(image=version.image.name, release=False)
    scene.refresh_from_db()
    return scene
