"""The invariants every fault test asserts once the dust settles: nothing lost silently."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from generation.models import BatchRun, GenerationAttempt, SceneVersion
from projects.models import Scene


def image_files(media: Path) -> list[Path]:
    return [p for p in media.glob("projects/*/scenes/*") if p.is_file() and ".thumb" not in p.name]


def assert_nothing_lost(project, media: Path, *, resumable: bool) -> None:
    """Every scene is ready or failed with a reason (pending only when the run may be resumed), the
    ready scenes are exactly the image files, none is empty or orphaned, none was generated twice, and
    no run stays active without a holder."""
    scenes = list(Scene.objects.filter(project=project))
    for scene in scenes:
        assert scene.status != Scene.Status.GENERATING, f"{scene} left generating"
        if scene.status == Scene.Status.FAILED:
            assert scene.last_error, f"{scene} failed without a reason"
        if scene.status == Scene.Status.PENDING:
            assert resumable, f"{scene} left pending by a run that claims to be over"
        assert scene.claimed_by is None or BatchRun.objects.get(pk=scene.claimed_by).is_active()
    files = image_files(media)
    assert [f for f in files if f.stat().st_size == 0] == [], "zero-byte images left"
    ready = {s.image.name for s in scenes if s.status == Scene.Status.READY}
    on_disk = {f.relative_to(media).as_posix() for f in files}
    assert on_disk == ready, f"files {sorted(on_disk - ready)} orphaned, {sorted(ready - on_disk)} missing"
    versions = Counter(SceneVersion.objects.filter(scene__project=project).values_list("scene_id", flat=True))
    assert [s for s, n in versions.items() if n > 1] == [], "a scene was generated twice"
    for run in BatchRun.objects.filter(project=project):
        assert not run.is_active() or not run.owner or resumable, f"run {run.pk} active with {run.owner}"
        if not run.is_active():
            assert not GenerationAttempt.objects.filter(run=run, status="running").exists()
            assert run.summary == run.summary_message()


def assert_counts_match_rows(run: BatchRun) -> None:
    rows = GenerationAttempt.objects.filter(run=run).exclude(error_kind="not_sent")
    assert run.requests == rows.count()
    assert run.quota_errors == rows.filter(error_kind="quota").count()
