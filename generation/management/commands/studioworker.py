"""`manage.py studioworker`: channels' runworker with the studio's worker, on the generation channel.

Its own name, so it does not depend on INSTALLED_APPS order to win over channels' `runworker`.
"""

from __future__ import annotations

from channels import DEFAULT_CHANNEL_LAYER
from channels.management.commands.runworker import Command as ChannelsRunworker
from django.db.backends.signals import connection_created

from generation.live.events import WORKER_CHANNEL
from generation.runs.storage import skip_health_checks
from generation.runs.worker import StudioWorker
from scenestudio.heap import settle_heap


class Command(ChannelsRunworker):
    help = "Run the generation worker (it also scans the database for runs nobody holds)."
    worker_class = StudioWorker

    def add_arguments(self, parser) -> None:
        # channels' own arguments, with the generation channel as the default rather than required.
        parser.add_argument("--layer", default=DEFAULT_CHANNEL_LAYER, help="Channel layer alias to use.")
        parser.add_argument("channels", nargs="*", default=[WORKER_CHANNEL], help="Channels to listen on.")

    def handle(self, *args, **options) -> None:
        # A process that only generates: its writes retry a dropped connection themselves.
        connection_created.connect(skip_health_checks, dispatch_uid="studioworker-health-checks")
        settle_heap()
        super().handle(*args, **options)
