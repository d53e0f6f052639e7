"""Serve the whole studio from one process: Daphne for HTTP and WebSockets, plus the generation worker.

With the in-memory channel layer the worker must share Daphne's process (and event loop) to receive its
wake-ups; with Redis it normally runs in separate `manage.py runworker scene-generation` processes.
"""

from __future__ import annotations

from channels.layers import get_channel_layer
from channels.routing import get_default_application
from django.conf import settings
from django.core.management.base import BaseCommand

from generation.live.events import WORKER_CHANNEL
from generation.runs.worker import StudioWorker, supervisor
from projects.management.commands.seed_demo import DEMO_PASSWORD, DEMO_USER
from scenestudio.heap import settle_heap


class Command(BaseCommand):
    help = "Start Daphne (and, without Redis, the generation worker in the same process)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--worker", choices=["auto", "yes", "no"], default="auto")

    def handle(self, *args, host: str, port: int, worker: str, **options) -> None:
        # Daphne's modules install the asyncio reactor when imported: only when the studio is served.
        from daphne.cli import CommandLineInterface

        if worker == "yes" or (worker == "auto" and not settings.REDIS_URL):
            self._embed_worker()
        self.stdout.write(self.style.SUCCESS(f"Scene Studio: http://{host}:{port}/accounts/login/"))
        if settings.DEBUG:
            self.stdout.write(f"Demo login: {DEMO_USER} / {DEMO_PASSWORD}")
        self.stdout.flush()
        settle_heap()
        CommandLineInterface().run(["-b", host, "-p", str(port), "scenestudio.asgi:application"])

    def _embed_worker(self) -> None:
        from daphne.server import twisted_loop  # importing it installs the asyncio reactor Daphne runs on
        from twisted.internet import defer, reactor

        worker = StudioWorker(
            application=get_default_application(),
            channels=[WORKER_CHANNEL],
            channel_layer=get_channel_layer(),
            handle_sigterm=False,
        )
        twisted_loop.create_task(worker.arun())

        def shut_down() -> defer.Deferred:
            # Twisted handles SIGTERM and SIGINT: it waits for this before stopping the loop, so the
            # runs' requests in flight finish and their runs go back to the queue (Supervisor.shut_down).
            return defer.Deferred.fromFuture(twisted_loop.create_task(supervisor.shut_down()))

        reactor.addSystemEventTrigger("before", "shutdown", shut_down)
        self.stdout.write("Generation worker: running inside this process")
