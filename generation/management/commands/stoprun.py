"""`manage.py stoprun <run id> | --project <id or title>`: stop a run, whoever holds it, or nobody.

A run a live worker holds is asked to stop (as the Stop button does) and followed until it ends; one
nobody holds any more (its worker or `generate` was killed) is stopped here at once, its scenes released.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from generation import services
from generation.models import BatchRun

POLL_SECONDS = 0.2


class Command(BaseCommand):
    help = "Stop a run: queued, running, or orphaned by a worker that died."

    def add_arguments(self, parser) -> None:
        parser.add_argument("run", nargs="?", type=int, help="Run id")
        parser.add_argument("--project", default="", help="Stop the active run of this project (id or title)")
        parser.add_argument(
            "--wait",
            type=float,
            default=BatchRun.LEASE_SECONDS + 60,
            help="seconds to wait for the worker holding the run to end it",
        )

    def handle(self, *args, run: int | None, project: str, wait: float, **options) -> None:
        found = self._run(run, project)
        reason = "Stopped with manage.py stoprun"
        services.run_stop(run=found)
        deadline = time.monotonic() + wait
        while True:
            found.refresh_from_db()
            if not found.is_active():
                break
            # Its worker died (or it was never claimed): nobody else will end it.
            if services.run_force_stop(run_id=found.pk, reason=reason) is not None:
                found.refresh_from_db()
                break
            if time.monotonic() > deadline:
                raise CommandError(f"Run {found.pk} is still {found.status} (held by {found.owner})")
            time.sleep(POLL_SECONDS)
        self.stdout.write(f"Run {found.pk} {found.status}: {found.summary_message()}")

    def _run(self, run_id: int | None, project: str) -> BatchRun:
        if run_id is not None:
            found = BatchRun.objects.filter(pk=run_id).first()
            if found is None:
                raise CommandError(f"No run {run_id}")
            if not found.is_active():
                raise CommandError(f"Run {run_id} already ended ({found.status})")
            return found
        if not project:
            raise CommandError("Name a run id or --project")
        runs = BatchRun.objects.filter(status__in=BatchRun.ACTIVE)
        by = {"project_id": int(project)} if project.isdigit() else {"project__title": project}
        runs = runs.filter(**by)
        found = runs.order_by("-created").first()
        if found is None:
            raise CommandError(f"No active run for project {project!r}")
        return found
