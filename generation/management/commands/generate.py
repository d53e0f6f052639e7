"""Generate a project's scenes from the command line, with a progress bar and a graceful Ctrl-C."""

from __future__ import annotations

import asyncio
import getpass
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from generation import services
from generation.costs.estimates import run_estimate
from generation.costs.prices import money
from generation.models import BatchRun
from generation.runs.execution import RunExecution, run_execute
from projects.access import has_role
from projects.models import Project, Role
from projects.wording import count_noun, listing, plural

BAR_WIDTH = 30
FOLLOW_POLL_SECONDS = 0.2
EXIT_TERMINATED = 128 + signal.SIGTERM  # the shell's convention for "ended by SIGTERM"


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


class ProgressBar:
    def __init__(self, stream) -> None:
        self.stream = stream
        self.counts = {"total": 0, "succeeded": 0, "failed": 0, "skipped": 0}
        self.note = ""
        self.drawn = False

    def __call__(self, event: dict) -> None:
        kind = event["type"]
        # The run's events carry its counts (skips included, from run.started on): count nothing twice.
        if kind in {"run.started", "run.progress", "run.finished"}:
            self.counts.update({k: event[k] for k in self.counts if k in event})
            self.note = "" if kind != "run.progress" or not event.get("in_flight") else self.note
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
        done = min(c["succeeded"] + c["failed"] + c["skipped"], c["total"])
        filled = min(BAR_WIDTH, int(BAR_WIDTH * done / c["total"])) if c["total"] else 0
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        line = (
            f"\r[{bar}] {done}/{c['total']} done · {c['failed']} failed · {c['skipped']} skipped{self.note}"
        )
        self.stream.write(line.ljust(100))
        self.stream.flush()
        self.drawn = True

    def write_above(self, text: str) -> None:
        """A whole line above the bar: wipe the bar's line, write the text, draw the bar again below it."""
        if self.drawn:
            self.stream.write("\r" + " " * 100 + "\r")
        self.stream.write(text + "\n")
        if self.drawn:
            self.draw()
        else:
            self.stream.flush()


class BarLogHandler(logging.Handler):
    """Log records as lines above the progress bar instead of through the middle of it."""

    def __init__(self, bar: ProgressBar) -> None:
        super().__init__()
        self.bar = bar
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.bar.write_above(self.format(record))
        except Exception:  # a logging handler must never raise into the code that logged
            self.handleError(record)


@contextmanager
def logs_above(bar: ProgressBar) -> Iterator[None]:
    """While the bar is shown, generation's log lines go above it (and nowhere else, so never twice)."""
    logger = logging.getLogger("generation")
    handler, saved = BarLogHandler(bar), (logger.handlers[:], logger.propagate)
    logger.handlers, logger.propagate = [handler], False
    try:
        yield
    finally:
        logger.handlers, logger.propagate = saved


def scene_ids_at(project: Project, positions: set[int]) -> list[int]:
    """The scenes at these story positions; refuses positions the project does not have."""
    found = dict(project.scenes.filter(position__in=positions).values_list("position", "pk"))
    absent = sorted(positions - set(found))
    if absent:
        total = project.scenes.count()
        raise CommandError(
            f"no {plural(len(absent), 'scene')} {listing(absent)} "
            f"(the project has {count_noun(total, 'scene')})"
        )
    return [found[p] for p in sorted(found)]


def find_project(ref: str) -> Project:
    """A project by id, or by title, case-insensitively; an ambiguous title lists its candidates."""
    if ref.isdigit():
        project = Project.objects.filter(pk=int(ref)).first()
        if project is not None:
            return project
    matches = list(Project.objects.filter(title__iexact=ref.strip()).order_by("pk"))
    if not matches:
        matches = list(Project.objects.filter(title__icontains=ref.strip()).order_by("pk"))
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise CommandError(f"No project {ref!r} (give its id or its title)")
    names = "; ".join(f"{p.pk}: {p.title}" for p in matches[:20])
    raise CommandError(f"{len(matches)} projects match {ref!r}, give the id of one: {names}")


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
            "--as",
            dest="as_user",
            default="",
            metavar="USER",
            help="The studio user the run is recorded for (default: the operating system user, if the "
            "studio has an editor or owner of that name)",
        )
        parser.add_argument(
            "--characters",
            action="store_true",
            help="Generate missing character references instead of scenes",
        )
        parser.add_argument(
            "--take-over",
            action="store_true",
            help="If the project's run is held by a live worker, follow it and take it over if that "
            "worker dies (a run nobody holds any more is resumed without it)",
        )

    def handle(self, *args, **options) -> None:
        project = find_project(options["project"])
        scene_ids = None
        if options["scenes"]:
            scene_ids = scene_ids_at(project, parse_positions(options["scenes"]))
        overrides = {}
        if options["concurrency"]:
            n = options["concurrency"]
            overrides = {"max_concurrency": n, "start_concurrency": min(n, 5), "min_concurrency": 1}
        user = self._requester(project, options["as_user"])
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
            self._adopt(run, take_over=options["take_over"])
        run = asyncio.run(self._execute(run.pk))
        self.stdout.write("")
        self.stdout.write(f"Cost: {money(run.cost, unpriced=run.unpriced)}")
        if run.is_active():  # terminated: handed back, or still held by the worker it followed
            self.stdout.write(f"Run {run.pk} goes on without this command ({run.succeeded} generated so far)")
            sys.exit(EXIT_TERMINATED)
        self.stdout.write(run.summary + (f" — {run.reason}" if run.reason else ""))
        attempted = run.total - run.skipped
        # Non-zero also when the run could not finish (disk full, refused key): not a success.
        if (attempted and run.succeeded == 0) or run.status == BatchRun.Status.FAILED:
            sys.exit(1)

    def _adopt(self, run: BatchRun, *, take_over: bool) -> None:
        """The project already has an active run. One nobody holds (its worker or an earlier `generate`
        died, or handed it back) is resumed here; one a live worker holds only with --take-over."""
        if services.run_lease_lapsed(run=run):
            self.stderr.write(f"Resuming run {run.pk}: nobody holds it any more")
            return
        if not take_over:
            raise CommandError(
                f"Run {run.pk} is already active for this project (held by {run.owner}). Use --take-over "
                f"to follow it and take it over if that worker dies, or `manage.py stoprun {run.pk}`."
            )

    def _requester(self, project: Project, name: str):
        """Who started the run, as pages and the admin show it: `--as USER`, else the operating system
        user when the studio has an editor or owner of that name, else nobody (never a stand-in)."""
        if not name:
            user = get_user_model().objects.filter(username=getpass.getuser()).first()
            return user if has_role(user=user, project_id=project.pk, needs=Role.EDITOR) else None
        user = get_user_model().objects.filter(username=name).first()
        if user is None:
            raise CommandError(f"{name} cannot start runs: the studio has no user of that name")
        if not has_role(user=user, project_id=project.pk, needs=Role.EDITOR):
            raise CommandError(f"{name} cannot start runs in {project}: not an editor or owner of it")
        return user

    async def _execute(self, run_id: int) -> BatchRun:
        """Execute the run here, or follow it while another worker executes it (a worker woken by the
        start may claim it first), until it ends. Ctrl-C stops it either way."""
        worker, bar = f"cli-{os.getpid()}", ProgressBar(self.stdout)
        loop = asyncio.get_running_loop()
        execution: RunExecution | None = None
        stop_wanted, terminated = asyncio.Event(), asyncio.Event()

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

        def on_terminate() -> None:
            # A deploy or a supervisor: finish the requests in flight, store their images and put the
            # run back in the queue for a worker (or the next `generate`) to resume at once.
            self.stderr.write("\nTerminated: finishing the requests in flight, then handing the run back")
            terminated.set()
            if execution is not None:
                execution.hand_back()

        loop.add_signal_handler(signal.SIGINT, on_interrupt)
        loop.add_signal_handler(signal.SIGTERM, on_terminate)
        with logs_above(bar):
            return await self._until_done(run_id, worker, bar, started, stop_wanted, terminated)

    async def _until_done(
        self,
        run_id: int,
        worker: str,
        bar: ProgressBar,
        started: Callable[[RunExecution], None],
        stop_wanted: asyncio.Event,
        terminated: asyncio.Event,
    ) -> BatchRun:
        following = False
        while True:
            run = await run_execute(run_id=run_id, worker=worker, listener=bar, on_start=started)
            if run is not None:
                return run
            run = await database_sync_to_async(BatchRun.objects.get)(pk=run_id)
            if not following:
                following = True
                self.stderr.write(f"Run {run_id} is being generated by worker {run.owner}; following it")
            bar.show(run)
            if not run.is_active() or terminated.is_set():  # terminated: the other worker goes on
                return run
            if stop_wanted.is_set() and not run.stop_requested:
                # Another worker holds the run: it sees the flag within a heartbeat.
                await database_sync_to_async(_request_stop)(run_id)
            # Claimed again each time: if the worker holding the run dies, this command takes it over.
            await asyncio.sleep(FOLLOW_POLL_SECONDS)


def _request_stop(run_id: int) -> None:
    services.run_stop(run=BatchRun.objects.get(pk=run_id))
