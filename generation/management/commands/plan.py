"""How long would generating a project take, and how many requests would it send?

Runs the engine's real scheduler on a simulated clock (generation.engine.planner, the benchmark's
code) with the project's scene count and its credential's learned profile:

    python manage.py plan 3 --rpm 50 --latency 45
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from generation.costs.estimates import run_estimate
from generation.management.commands.generate import find_project


class Command(BaseCommand):
    help = "Estimate a project's run: duration and requests (simulated), cost (the price table)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("project", help="Project id or exact title")
        parser.add_argument("--rpm", type=float, default=None, help="Requests a minute the quota allows")
        parser.add_argument("--latency", type=float, default=None, help="Seconds one image takes")
        parser.add_argument("--provider", default="", help="Image provider name (default: the project's)")
        parser.add_argument("--regenerate", action="store_true", help="Count scenes that have an image too")

    def handle(self, *args, **options) -> None:
        for name in ("rpm", "latency"):
            if options[name] is not None and options[name] <= 0:
                raise CommandError(f"--{name} must be positive")
        project = find_project(options["project"])
        result = run_estimate(
            project=project,
            provider=options["provider"],
            regenerate=options["regenerate"],
            rpm=options["rpm"],
            latency=options["latency"],
        )
        for line in result.lines():
            self.stdout.write(line)
