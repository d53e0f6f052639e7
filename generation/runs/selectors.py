"""Reads about runs: the preflight, what a worker looks for, and the snapshot a (re)connecting browser
starts from."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import F, Q, Sum
from django.urls import reverse
from django.utils import timezone

from generation.costs.prices import money, usd
from generation.engine.config import EngineConfig
from generation.models import BatchRun, SceneVersion
from projects.models import Character, Project, Scene, SkipReason


def missing_references(*, scenes: Sequence[Scene], regenerate: bool = False) -> list[Character]:
    """Characters in the scenes this run would generate that have no reference image yet."""
    to_generate = [s.pk for s in scenes if not s.skip_code(regenerate=regenerate)]
    return list(Character.objects.filter(scenes__in=to_generate, reference="").distinct().order_by("name"))


def active_run(project: Project) -> BatchRun | None:
    return project.runs.filter(status__in=BatchRun.ACTIVE).first()


def runs_needing_a_worker(*, lease_seconds: float = BatchRun.LEASE_SECONDS) -> list[int]:
    """Active runs nobody holds: never picked up, or held by a worker that stopped beating."""
    now = timezone.now()
    stale = now - timedelta(seconds=lease_seconds)
    unowned = Q(owner="") | Q(heartbeat__lt=stale) | Q(heartbeat__isnull=True)
    # A run parked on a daily quota needs a worker once its reset time has passed, not before.
    parked = Q(status=BatchRun.Status.WAITING_DAILY_QUOTA) & (
        Q(quota_resume_at__gt=now) | Q(quota_resume_at__isnull=True)
    )
    return list(
        BatchRun.objects.filter(unowned, status__in=BatchRun.ACTIVE)
        .exclude(parked)
        .order_by("created")
        .values_list("pk", flat=True)
    )


def scenes_claimed(*, run: BatchRun, scene_ids: Sequence[int]) -> set[int]:
    """Which of these scenes `run` holds (after scenes_claim)."""
    return set(Scene.objects.filter(pk__in=scene_ids, claimed_by=run.pk).values_list("pk", flat=True))


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
        "removed": run.removed,
        "requests": run.requests,
        "retries": run.retries,
        "quota_errors": run.quota_errors,
        "quota_wait_seconds": round(run.quota_wait_seconds, 1),
        "quota_waits": run.quota_waits,
        "pacing_seconds": round(run.pacing_seconds, 1),
        "counts_at": _iso(run.counts_at),
        "eta_at": _iso(run.eta_at) if run.is_active() else None,
        "wait": run_wait(run),
        "reason": run.reason,
        "summary": run.summary,
        "requested_by": run.requested_by.username if run.requested_by_id else "",
        "created": run.created.isoformat(),
        "started": run.started.isoformat() if run.started else None,
        "finished": run.finished.isoformat() if run.finished else None,
        "quota_resume_at": run.quota_resume_at.isoformat()
        if run.quota_resume_at
        and run.status in (BatchRun.Status.WAITING_QUOTA, BatchRun.Status.WAITING_DAILY_QUOTA)
        else None,
        "cost": usd(run.cost),
        "cost_text": money(run.cost, unpriced=run.unpriced),
        "unpriced": run.unpriced,
    }


def project_cost(*, project_id: int) -> dict[str, Any]:
    """What the project's runs spent, for the ZIP's manifest and pages ("unpriced" counted apart)."""
    totals = BatchRun.objects.filter(project_id=project_id).aggregate(
        cost=Sum("cost"), unpriced=Sum("unpriced")
    )
    cost, unpriced = totals["cost"] or Decimal(0), totals["unpriced"] or 0
    return {"usd": usd(cost), "unpriced_images": unpriced, "text": money(cost, unpriced=unpriced)}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def run_wait(run: BatchRun, *, now: datetime | None = None) -> dict[str, Any] | None:
    """The wait a run is in, with the fields of its run.quota_wait or run.pacing event, so a page loaded
    during it shows the same banner; None when it is not waiting."""
    now = now or timezone.now()
    if run.status == BatchRun.Status.WAITING_QUOTA and run.quota_resume_at and run.quota_resume_at > now:
        budget = EngineConfig.from_mapping(run.config).quota_wait_max_total
        return {
            "kind": "quota",
            "until": run.quota_resume_at.isoformat(),
            "quota_waits": run.quota_waits,
            "budget_seconds": budget,
        }
    if run.is_active() and run.pacing_until and run.pacing_until > now:
        rate = round(run.requests_per_minute) if run.requests_per_minute else None
        return {"kind": "pacing", "until": run.pacing_until.isoformat(), "requests_per_minute": rate}
    return None


def project_totals(*, project_id: int, scenes: Sequence[Scene] | None = None) -> dict[str, int]:
    """The project's own state, whatever the last run did: scenes, images, failed, pending, empty."""
    if scenes is None:
        scenes = Scene.objects.filter(project_id=project_id).only("status", "image", "prompt")
    totals = {"scenes": 0, "images": 0, "failed": 0, "pending": 0, "empty": 0}
    for scene in scenes:
        totals["scenes"] += 1
        totals["images"] += scene.has_image()
        if not scene.has_prompt():
            totals["empty"] += 1
        elif scene.status == Scene.Status.FAILED:
            totals["failed"] += 1
        elif not scene.has_image():
            totals["pending"] += 1
    return totals


def current_versions(*, project_id: int) -> dict[int, dict[str, Any]]:
    """Scene id -> the metadata of its current version: the one whose image is the scene's image (scenes
    may have none at all)."""
    current = SceneVersion.objects.filter(scene__project_id=project_id, image=F("scene__image")).exclude(
        image=""
    )
    fields = ("scene_id", "number", "provider", "model", "seed", "prompt", "attempts", "created")
    # Ascending numbers, so should two rows ever share a file the newest one wins.
    return {v["scene_id"]: v for v in current.order_by("scene_id", "number").values(*fields)}


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
        # The tile's data-version: a page whose tile differs fetches it again.
        "version": f"{int(scene.updated.timestamp())}.{scene.updated.microsecond:06d}",
        "status": scene.status,
        "thumbnail": thumbnail,
        "reason": reason,
        "reason_code": code,
    }


def latest_run(project_id: int) -> BatchRun | None:
    runs = BatchRun.objects.filter(project_id=project_id).select_related("requested_by")
    return runs.filter(status__in=BatchRun.ACTIVE).first() or runs.order_by("-created").first()


def project_snapshot(*, project_id: int) -> dict[str, Any]:
    scenes = list(Scene.objects.filter(project_id=project_id).order_by("position"))
    run = latest_run(project_id)
    return {
        "project": project_id,
        "scenes": [scene_state(s) for s in scenes],
        "totals": project_totals(project_id=project_id, scenes=scenes),
        "run": run and run_payload(run),
    }
