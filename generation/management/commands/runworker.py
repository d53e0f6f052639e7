"""The old name of `studioworker`, kept for existing deploys. It overrides channels' own `runworker` only
because INSTALLED_APPS lists generation before channels: prefer `manage.py studioworker`."""

from __future__ import annotations

from generation.management.commands.studioworker import Command as StudioWorkerCommand


class Command(StudioWorkerCommand):
    pass
