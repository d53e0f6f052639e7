"""Scenes per second on real infrastructure, against a zero-latency fake provider over HTTP, so the studio's
own overhead (database writes, live events, pacing) is what is measured:

- sqlite_1: SQLite, one worker process (no Redis: the in-memory channel layer, as `make run`);
- postgres_1: PostgreSQL and Redis, one `studioworker`;
- postgres_2: the same with two `studioworker`s.

The workload is the same each time: RUNS projects of SCENES scenes, all started at once. One run is
executed by one worker (its lease holder), so a second worker can only help with a second run: several
runs are what a team with several projects puts on the studio. Scenes per second = scenes generated /
(last run finished - first run started), from the runs' own timestamps; the median of REPEAT rounds.

Both databases run with the studio's settings (persistent connections, DB_CONN_MAX_AGE): without them
every ORM call opens a PostgreSQL connection and a worker runs 2-3x slower. Commits wait for no disk
flush on either database (see PostgresServer).

    python -m bench scale    # writes var/bench/scale.json
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import psycopg

from bench import write_json
from tests.scale.servers import Cluster, PostgresServer, RedisServer, wait_until

RUNS = 4
SCENES = 100
REPEAT = 3
TIMEOUT_SECONDS = 300.0

# Read through Django in the cluster's environment, so SQLite and PostgreSQL are read alike.
REPORT = """
import json
from generation.models import BatchRun
runs = BatchRun.objects.order_by("pk").values("pk", "status", "owner", "succeeded", "started", "finished")
print(json.dumps([{**r, "started": r["started"] and r["started"].timestamp(),
                   "finished": r["finished"] and r["finished"].timestamp()} for r in runs]))
"""


def measure(workdir: Path, *, workers: int, database_url: str, redis_url: str | None, env: dict) -> dict:
    """One round on a freshly migrated database: start the processes, the runs, and time them."""
    cluster = Cluster(workdir, database_url=database_url, redis_url=redis_url, env=env)
    try:
        cluster.start_fake_provider("--latency", "0")
        cluster.start(workers=workers)
        seeded = _seed(cluster, "--projects", str(RUNS), "--scenes", str(SCENES))
        _seed(cluster, "--start", *map(str, seeded["projects"]))
        wait_until(lambda: _all_finished(database_url), what="every run", timeout=TIMEOUT_SECONDS)
        return _summary(json.loads(cluster.run("manage.py", "shell", "-c", REPORT).strip().splitlines()[-1]))
    except Exception:
        print(cluster.logs())
        raise
    finally:
        cluster.stop()


def _seed(cluster: Cluster, *args: str) -> dict:
    return json.loads(cluster.run("-m", "tests.scale.seed", *args).strip().splitlines()[-1])


def _all_finished(database_url: str) -> bool:
    """Plain SQL, not a Django process per poll: the machine's cores belong to the processes measured."""
    query = "SELECT count(*), count(finished) FROM generation_batchrun"
    if database_url.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=20)) as conn:
            runs, finished = conn.execute(query).fetchone()
    else:
        with psycopg.connect(database_url) as conn:
            runs, finished = conn.execute(query).fetchone()
    time.sleep(0.2)  # wait_until polls every 50 ms; a fifth of a second is plenty here
    return runs == RUNS and finished == RUNS


def _summary(runs: list[dict]) -> dict:
    scenes = sum(run["succeeded"] for run in runs)
    elapsed = max(run["finished"] for run in runs) - min(run["started"] for run in runs)
    owners: dict[str, int] = {}
    for run in runs:
        owners[run["owner"]] = owners.get(run["owner"], 0) + 1
    return {
        "scenes_per_second": round(scenes / elapsed, 1),
        "scenes": scenes,
        "seconds": round(elapsed, 2),
        "statuses": sorted({run["status"] for run in runs}),
        "runs_per_worker": sorted(owners.values(), reverse=True),
    }


def _rounds(name: str, root: Path, one_round) -> dict:
    rounds = []
    for number in range(REPEAT):
        workdir = root / f"{name}-{number}"
        workdir.mkdir()
        rounds.append(one_round(workdir, number))
    median = statistics.median(result["scenes_per_second"] for result in rounds)
    print(
        f"{name}: {median} scenes/s (rounds: {', '.join(str(r['scenes_per_second']) for r in rounds)})",
        flush=True,
    )
    return {"scenes_per_second": median, "rounds": rounds}


def _sqlite(root: Path) -> dict:
    template = root / "template.sqlite3"
    Cluster(root, database_url=f"sqlite:///{template}", redis_url=None, env={}).migrate()

    def one_round(workdir: Path, number: int) -> dict:
        shutil.copy(template, workdir / "db.sqlite3")
        url = f"sqlite:///{workdir / 'db.sqlite3'}"
        return measure(workdir, workers=1, database_url=url, redis_url=None, env={})

    return _rounds("sqlite_1", root, one_round)


def _postgres(root: Path, redis: RedisServer, postgres: PostgresServer, workers: int) -> dict:
    name = f"postgres_{workers}"

    def one_round(workdir: Path, number: int) -> dict:
        redis.flush()
        url = postgres.create_database(f"{name}_{number}", template="template")
        return measure(workdir, workers=workers, database_url=url, redis_url=redis.url, env={})

    return _rounds(name, root, one_round)


def main() -> None:
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="scenestudio-bench-") as tmp:
        root = Path(tmp)
        results["sqlite_1"] = _sqlite(root)
        redis, postgres = RedisServer.start(), PostgresServer.start(crash_safe=True)
        try:
            template = postgres.create_database("template")
            Cluster(root, database_url=template, redis_url=None, env={}).migrate()
            for workers in (1, 2):
                results[f"postgres_{workers}"] = _postgres(root, redis, postgres, workers)
        finally:
            postgres.stop()
            redis.stop()
    report: dict = {name: result["scenes_per_second"] for name, result in results.items()}
    report["details"] = {
        "workload": f"{RUNS} runs of {SCENES} scenes started at once, median of {REPEAT} rounds",
        "provider": "fake (OpenAI style) over HTTP on loopback, zero latency, no quota",
        "sqlite": "WAL, synchronous=NORMAL; in-memory channel layer",
        "postgres": "synchronous_commit=off, fsync on; Redis channel layer and limiter",
        "connections": "persistent (DB_CONN_MAX_AGE default)",
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        **results,
    }
    path = write_json("scale", report)
    print(
        f"scale: scenes/s sqlite_1 {report['sqlite_1']}, postgres_1 {report['postgres_1']}, "
        f"postgres_2 {report['postgres_2']} ({os.cpu_count()} CPUs) -> {path}"
    )


if __name__ == "__main__":
    main()
