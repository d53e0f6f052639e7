"""Reads that build what clients see: the snapshot a (re)connecting browser starts from."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from generation.models import BatchRun
from projects.models import Scene, SkipReason


def run_payload(run: BatchRun) -> dict[str, Any]:
    return {
        "id": run.pk,
        "status": run.status,
        "active": run.is_active(),
        "kind": run.kind,
        "total": run.total,
        "succeeded": run.succeeded,
        "failed": run.failed,
        "skipped": run.skipped,
        "requests": run.requests,
        "retries": run.retries,
        "quota_errors": run.quota_errors,
        "quota_wait_seconds": round(run.quota_wait_seconds, 1),
        "reason": run.reason,
        "summary": run.summary,
        "requested_by": run.requested_by.username if run.requested_by_id else "",
        "created": run.created.isoformat(),
        "started": run.started.isoformat() if run.started else None,
        "finished": run.finished.isoformat() if run.finished else None,
        "quota_resume_at": run.quota_resume_at.isoformat()
        if run.quota_resume_at and run.status == BatchRun.Status.WAITING_QUOTA
        else None,
    }


def scene_state(scene: Scene) -> dict[str, Any]:
    thumbnail = None
    if scene.image:
        url = reverse("scene_image", args=[scene.project_id, scene.pk])
        thumbnail = f"{url}?thumb=1&v={int(scene.updated.timestamp())}"
    reason = scene.last_error if scene.status == Scene.Status.FAILED else ""
    code = ""
    if scene.status == Scene.Status.SKIPPED:  # only an empty prompt leaves a scene skipped
        code, reason = SkipReason.EMPTY_PROMPT.value, SkipReason.EMPTY_PROMPT.label
    return {
        "id": scene.pk,
        "position": scene.position,
        "status": scene.status,
        "thumbnail": thumbnail,
        "reason": reason,
        "reason_code": code,
    }


def latest_run(project_id: int) -> BatchRun | None:
    runs = BatchRun.objects.filter(project_id=project_id).select_related("requested_by")
    return runs.filter(status__in=BatchRun.ACTIVE).first() or runs.order_by("-created").first()


def project_snapshot(*, project_id: int) -> dict[str, Any]:
    scenes = Scene.objects.filter(project_id=project_id).order_by("position")
    run = latest_run(project_id)
    return {
        "project": project_id,
        "scenes": [scene_state(s) for s in scenes],
        "run": run and run_payload(run),
    }
