"""Real engine overhead: 1,000 scenes through a zero-latency provider with every database write.

Measures scenes per second on the wall clock with SQLite (the embedded default), so what it reports is
what the Django adapter costs: attempt rows, image files, scene updates and progress writes.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from bench import setup_django

SCENES = 1000
OUT = Path("var/bench/engine_db.json")


def make_project(scenes: int):
    from django.contrib.auth import get_user_model

    from projects import services
    from projects.models import Scene

    user = get_user_model().objects.create_user("bench")
    project = services.project_create(title="Bench", user=user)
    Scene.objects.bulk_create(
        Scene(project=project, position=i + 1, prompt=f"Scene {i + 1}") for i in range(scenes)
    )
    return project, user


async def run_once(project, user) -> tuple[float, object]:
    from channels.db import database_sync_to_async

    from generation.providers.simulated import SimulatedProvider
    from generation.runs import services
    from generation.runs.execution import run_execute

    overrides = {"start_concurrency": 16, "max_concurrency": 16}
    run, _ = await database_sync_to_async(services.run_start)(project=project, user=user, overrides=overrides)
    provider = SimulatedProvider(latency=0.0)
    started = time.perf_counter()
    run = await run_execute(run_id=run.pk, worker="bench", provider=provider)
    return time.perf_counter() - started, run


def main() -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        setup_django(Path(tmp))
        project, user = make_project(SCENES)
        seconds, run = asyncio.run(run_once(project, user))
    assert run.succeeded == SCENES, run.summary
    result = {
        "scenario": "engine_db_sqlite",
        "scenes": SCENES,
        "seconds": round(seconds, 3),
        "scenes_per_second": round(SCENES / seconds, 1),
        "requests": run.requests,
    }
    print(
        f"Engine with database writes (SQLite, zero-latency provider): {SCENES} scenes in {seconds:.2f} s "
        f"= {SCENES / seconds:.0f} scenes/s"
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps([result], indent=2))
    return [result]


if __name__ == "__main__":
    main()
    sys.exit(0)
