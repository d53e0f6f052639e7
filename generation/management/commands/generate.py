"""Generate a project's scenes from the command line, with a progress bar and a graceful Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from channels.db import database_sync_to_async
from django.core.management.base import BaseCommand, CommandError

from generation import services
from generation.costs.estimates import run_estimate
from generation.costs.prices import money
from generation.models import BatchRun
from generation.runs.execution import RunExecution, run_execute
from projects.models import Membership, Project, Role

BAR_WIDTH = 30
FOLLOW_POLL_SECONDS = 0.2


def parse_positions(spec: str) -> set[int]:
    """ "1-5,9" -> {1, 2, 3, 4, 5, 9}."""
    positions: set[int] = set()
    for part in filter(None, (p.strip() for p in spec.split(","))):
        low, _, high = part.partition("-")
        try:
            start, end = int(low), int(high or low)
        except ValueError as exc:
            raise CommandError(f"Bad scene range {part!r}: use numbers like 1-5,9") from exc
        if start < 1 or end < start:
            raise CommandError(f"Bad scene range {part!r}")
        positions.update(range(start, end + 1))
    return positions


def find_project(ref: str) -> Project:
    query = Project.objects.filter(pk=int(ref)) if ref.isdigit() else Project.objects.filter(title=ref)
    project = query.first()
    if project is None:
        raise CommandError(f"No project {ref!r}")
    return project


class ProgressBar:
    def __init__(self, stream) -> None:
        self.stream = stream
        self.counts = {"total": 0, "succeeded": 0, "failed": 0, "skipped": 0}
        self.note = ""

    def __call__(self, event: dict) -> None:
        kind = event["type"]
        if kind in {"run.started", "run.progress", "run.finished"}:
            self.counts.update({k: event[k] for k in self.counts if k in event})
            self.note = "" if kind != "run.progress" or not event.get("in_flight") else self.note
        elif kind == "scene.skipped":
            self.counts["skipped"] += 1
        elif kind == "run.quota_wait":
            self.note = f" · Quota limit - waiting {event['seconds']:.0f}s"
        elif kind == "run.stopping":
            self.note = f" · stopping: {event['message']}"
        self.draw()

    def show(self, run: BatchRun) -> None:
        """Draw the counts the database has, for a run another worker executes."""
        self.counts.update(total=run.total, succeeded=run.succeeded, failed=run.failed, skipped=run.skipped)
        self.draw()

    def draw(self) -> None:
        c = self.counts
        done = c["succeeded"] + c["failed"] + c["skipped"]
        filled = int(BAR_WIDTH * done / c["total"]) if c["total"] else 0
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        line = (
            f"\r[{bar}] {done}/{c['total']} done · {c['failed']} failed · {c['skipped']} skipped{self.note}"
        )
        self.stream.write(line.ljust(100))
        self.stream.flush()


class Command(BaseCommand):
    help = "Generate images for a project's scenes (Ctrl-C stops gracefully and keeps finished images)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("project", help="Project id or exact title")
        parser.add_argument("--scenes", default="", help="Story positions, e.g. 1-5,9 (default: all)")
        parser.add_argument(
            "--regenerate", action="store_true", help="Also regenerate scenes that have an image"
        )
        parser.add_argument("--provider", default="", help="Image provider name (default: the project's)")
        parser.add_argument("--concurrency", type=int, default=0, help="Maximum requests in flight")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Show the estimate (scenes, requests, cost, duration) and generate nothing",
        )
        parser.add_argument(
            "--characters",
            action="store_true",
            help="Generate missing character references instead of scenes",
        )

    def handle(self, *args, **options) -> None:
        project = self._project(options["project"])
        scene_ids = None
        if options["scenes"]:
            wanted = parse_positions(options["scenes"])
            scene_ids = list(project.scenes.filter(position__in=wanted).values_list("pk", flat=True))
        overrides = {}
        if options["concurrency"]:
            n = options["concurrency"]
            overrides = {"max_concurrency": n, "start_concurrency": min(n, 5), "min_concurrency": 1}
        owner = Membership.objects.filter(project=project, role=Role.OWNER).select_related("user").first()
        user = owner.user if owner else None
        if options["dry_run"]:
            estimate = run_estimate(
                project=project,
                user=user,
                scene_ids=scene_ids,
                regenerate=options["regenerate"],
                provider=options["provider"],
                overrides=overrides,
            )
            for line in estimate.lines():
                self.stdout.write(line)
            return
        try:
            if options["characters"]:
                run, created = services.character_run_start(project=project, user=user, overrides=overrides)
            else:
                run, created = services.run_start(
                    project=project,
                    user=user,
                    scene_ids=scene_ids,
                    regenerate=options["regenerate"],
                    overrides=overrides,
                    provider=options["provider"],
                )
        except services.RunRefused as exc:
            raise CommandError(f"{exc.message} (--characters generates missing references)") from exc
        if not created:
            raise CommandError(f"Run {run.pk} is already active for this project; stop it first.")
        run = asyncio.run(self._execute(run.pk))
        self.stdout.write("")
        self.stdout.write(f"Cost: {money(run.cost, unpriced=run.unpriced)}")
        self.stdout.write(run.summary + (f" — {run.reason}" if run.reason else ""))
        attempted = run.total - run.skipped
        if attempted and run.succeeded == 0:
            sys.exit(1)

    def _project(self, ref: str) -> Project:
        return find_project(ref)

    async def _execute(self, run_id: int) -> BatchRun:
        """Execute the run here, or follow it while another worker executes it (a worker woken by the
        start may claim it first), until it ends. Ctrl-C stops it either way."""
        worker, bar = f"cli-{os.getpid()}", ProgressBar(self.stdout)
        loop = asyncio.get_running_loop()
        execution: RunExecution | None = None
        following, stop_wanted = False, asyncio.Event()

        def on_interrupt() -> None:
            self.stderr.write(
                "\nStopping: no new requests; waiting for those in flight (Ctrl-C again to quit)"
            )
            loop.remove_signal_handler(signal.SIGINT)
            stop_wanted.set()
            if execution is not None:
                execution.stop()

        def started(here: RunExecution) -> None:
            nonlocal execution
            execution = here

        loop.add_signal_handler(signal.SIGINT, on_interrupt)
        while True:
            run = await run_execute(run_id=run_id, worker=worker, listener=bar, on_start=started)
            if run is not None:
                return run
            run = await database_sync_to_async(BatchRun.objects.get)(pk=run_id)
            if not following:
                following = True
                self.stderr.write(f"Run {run_id} is being generated by worker {run.owner}; following it")
            bar.show(run)
            if not run.is_active():
                return run
            if stop_wanted.is_set() and not run.stop_requested:
                # Another worker holds the run: it sees the flag within a heartbeat.
                await database_sync_to_async(_request_stop)(run_id)
            # Claimed again each time: if the worker holding the run dies, this command takes it over.
            await asyncio.sleep(FOLLOW_POLL_SECONDS)


def _request_stop(run_id: int) -> None:
    services.run_stop(run=BatchRun.objects.get(pk=run_id))
