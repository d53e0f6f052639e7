"""Benchmarks: `python -m bench [module ...]` runs them (all by default) and writes JSON to var/bench/."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

OUTPUT_DIR = Path(__file__).resolve().parent.parent / "var" / "bench"


def write_json(name: str, data: Any) -> Path:
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUTPUT_DIR / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def setup_django(workdir: Path) -> None:
    """Configure Django on a fresh SQLite database and media folder in `workdir`, migrated."""
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'bench.sqlite3'}"
    os.environ["MEDIA_ROOT"] = str(workdir / "media")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scenestudio.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
