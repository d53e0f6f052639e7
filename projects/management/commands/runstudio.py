"""Serve the whole studio from one process with Daphne (HTTP, WebSockets and, embedded, the worker)."""

from __future__ import annotations

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Start Daphne on the embedded defaults and print where to log in."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args, host: str, port: int, **options) -> None:
        from daphne.cli import CommandLineInterface

        from projects.management.commands.seed_demo import DEMO_PASSWORD, DEMO_USER

        self.stdout.write(self.style.SUCCESS(f"Scene Studio: http://{host}:{port}/accounts/login/"))
        self.stdout.write(f"Demo login: {DEMO_USER} / {DEMO_PASSWORD}")
        CommandLineInterface().run(["-b", host, "-p", str(port), "scenestudio.asgi:application"])
