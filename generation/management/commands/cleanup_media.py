"""Delete generated images no row points to: a worker killed between storing an image and committing its
row leaves one behind. Workers also run this when they start."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from generation.runs.media import ORPHAN_GRACE_SECONDS, orphan_media_delete
from projects.wording import count_noun


class Command(BaseCommand):
    help = (
        "Delete images under MEDIA_ROOT/projects/*/scenes and */characters that no scene, scene version "
        "or character points to."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--grace",
            type=float,
            default=ORPHAN_GRACE_SECONDS,
            help="spare files younger than this many seconds: a live worker may be about to record them "
            f"(default {ORPHAN_GRACE_SECONDS:g})",
        )
        parser.add_argument("--dry-run", action="store_true", help="list the orphans, delete nothing")

    def handle(self, *args, grace: float, dry_run: bool, **options) -> None:
        names = orphan_media_delete(grace_seconds=grace, dry_run=dry_run)
        if options["verbosity"] > 1 or dry_run:
            for name in names:
                self.stdout.write(name)
        verb = "Would delete" if dry_run else "Deleted"
        self.stdout.write(f"{verb} {count_noun(len(names), 'orphan image')}")
