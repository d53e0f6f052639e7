"""channels' runworker, with a worker that also scans the database for runs nobody holds."""

from __future__ import annotations

from channels.management.commands.runworker import Command as ChannelsRunworker

from generation.runs.worker import StudioWorker


class Command(ChannelsRunworker):
    worker_class = StudioWorker
