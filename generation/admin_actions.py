"""The admin's "Retry selected scenes": one run per project, refused with a reason where it cannot start."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from generation.services import RunRefused, run_start
from projects.models import Membership, Role, Scene


def retry_scenes(*, user, scenes: Iterable[Scene]) -> tuple[int, list[str]]:
    """Start a run per project over the selected scenes; returns (scenes queued, reasons for refusals)."""
    by_project: dict[int, list[Scene]] = defaultdict(list)
    for scene in scenes:
        by_project[scene.project_id].append(scene)
    queued, refusals = 0, []
    for scenes_of_project in by_project.values():
        project = scenes_of_project[0].project
        if not _may_generate(user, project.pk):
            refusals.append(f"{project}: you are not an editor or owner of this project.")
            continue
        try:
            run, created = run_start(
                project=project, user=user, scene_ids=[s.pk for s in scenes_of_project], regenerate=True
            )
        except RunRefused as exc:
            refusals.append(f"{project}: {exc.message}")
            continue
        if not created:
            refusals.append(f"{project}: run {run.pk} is already active; stop it or wait for it to finish.")
            continue
        queued += run.total
    return queued, refusals


def _may_generate(user, project_id: int) -> bool:
    if user.is_superuser:
        return True
    role = Membership.objects.filter(project_id=project_id, user=user).values_list("role", flat=True).first()
    return role in (Role.EDITOR, Role.OWNER)
