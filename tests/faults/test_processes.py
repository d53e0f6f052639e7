"""Real processes under infrastructure faults: studioworkers on PostgreSQL and Redis with the fake
provider over HTTP, told to go (SIGTERM) or killed (SIGKILL), the database restarted under them, and
`manage.py generate` terminated or killed. After each, nothing is lost and nothing is done twice."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from tests.scale.servers import Cluster, PostgresServer, Process
from tests.support import processes

pytestmark = pytest.mark.faults

RUN_SECONDS = 90.0


def seed(cluster: Cluster, *args: str) -> dict:
    return json.loads(cluster.run("-m", "tests.scale.seed", *args).strip().splitlines()[-1])


def wait_for(check, *, what: str, timeout: float = RUN_SECONDS, cluster: Cluster | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except psycopg.OperationalError:  # the test restarted the database itself
            value = None
        if value:
            return value
        time.sleep(0.1)  # polling other processes; the condition decides
    raise AssertionError(f"timed out waiting for {what}\n{cluster.logs() if cluster else ''}")


def run_row(sql: psycopg.Connection, run_id: int) -> dict:
    cursor = sql.execute(
        "SELECT status, owner, total, succeeded, failed, requests, quota_errors, summary, reason "
        "FROM generation_batchrun WHERE id = %s",
        [run_id],
    )
    names = [column.name for column in cursor.description]
    return dict(zip(names, cursor.fetchone(), strict=True))


def ended(sql: psycopg.Connection, run_id: int) -> dict | None:
    row = run_row(sql, run_id)
    return row if row["status"] not in ("queued", "running", "waiting_quota", "stopping") else None


def generated(sql: psycopg.Connection, run_id: int) -> int:
    query = (
        "SELECT count(*) FROM generation_sceneversion v "
        "JOIN generation_generationattempt a ON a.id = v.attempt_id WHERE a.run_id = %s"
    )
    return sql.execute(query, [run_id]).fetchone()[0]


def in_flight(sql: psycopg.Connection, run_id: int) -> int:
    query = "SELECT count(*) FROM generation_generationattempt WHERE run_id = %s AND status = 'running'"
    return sql.execute(query, [run_id]).fetchone()[0]


def worker_of(owner: str, workers: list[Process]) -> Process:
    pid = int(owner.rsplit("-", 2)[1])  # host-pid-random (generation.runs.worker.Supervisor)
    return next(worker for worker in workers if worker.pid == pid)


def assert_nothing_lost(sql: psycopg.Connection, media: Path, project: int, run_id: int) -> None:
    """Every scene ready or failed with a reason, ready == files on disk, none empty or orphaned, none
    generated twice, the counters equal the attempt rows, and no attempt left running."""
    scenes = sql.execute(
        "SELECT id, status, last_error, image FROM projects_scene WHERE project_id = %s", [project]
    ).fetchall()
    for scene_id, status, reason, _ in scenes:
        assert status in ("ready", "failed"), (scene_id, status)
        assert status == "ready" or reason, f"scene {scene_id} failed without a reason"
    files = [p for p in (media / "projects" / str(project) / "scenes").glob("*") if p.is_file()]
    assert [f for f in files if f.stat().st_size == 0] == []
    ready = {image for _, status, _, image in scenes if status == "ready"}
    assert {f"projects/{project}/scenes/{f.name}" for f in files} == ready
    versions = sql.execute(
        "SELECT v.scene_id, count(*) FROM generation_sceneversion v JOIN projects_scene s "
        "ON s.id = v.scene_id WHERE s.project_id = %s GROUP BY v.scene_id HAVING count(*) > 1",
        [project],
    ).fetchall()
    assert versions == [], "scenes generated twice"
    attempts = Counter(
        kind
        for (kind,) in sql.execute(
            "SELECT error_kind FROM generation_generationattempt WHERE run_id = %s AND status <> 'running'",
            [run_id],
        ).fetchall()
    )
    assert in_flight(sql, run_id) == 0
    row = run_row(sql, run_id)
    assert row["requests"] == sum(attempts.values()) - attempts["not_sent"]
    assert row["quota_errors"] == attempts["quota"]
    assert "Successfully" not in row["summary"] or row["succeeded"] == row["total"]


def test_sigterm_hands_a_workers_run_to_another_at_once_and_loses_nothing(make_cluster, sql):
    cluster: Cluster = make_cluster(GEN_START_CONCURRENCY="4", GEN_MAX_CONCURRENCY="4")
    cluster.start_fake_provider("--latency", "0.3")
    workers, _ = cluster.start(workers=2)
    project = seed(cluster, "--projects", "1", "--scenes", "40")["projects"][0]
    run_id = seed(cluster, "--start", str(project))["runs"][0]
    wait_for(
        lambda: generated(sql, run_id) >= 8 and in_flight(sql, run_id) > 0, what="8 done", cluster=cluster
    )
    victim = worker_of(run_row(sql, run_id)["owner"], workers)
    survivor = next(w for w in workers if w is not victim)
    told = time.monotonic()
    victim.popen.send_signal(signal.SIGTERM)
    assert victim.popen.wait(timeout=20) == 0  # in-flight requests finished, then it exited
    # Handed back, not left to a lease that lapses 15 s later.
    wait_for(
        lambda: run_row(sql, run_id)["owner"].split("-")[1:2] == [str(survivor.pid)],
        what="the other worker to take the run",
        timeout=8,
        cluster=cluster,
    )
    assert time.monotonic() - told < 8
    row = wait_for(lambda: ended(sql, run_id), what="the run to finish", cluster=cluster)
    assert (row["status"], row["succeeded"], row["failed"]) == ("completed", 40, 0)
    interrupted = sql.execute(
        "SELECT count(*) FROM generation_generationattempt WHERE run_id = %s AND status = 'interrupted'",
        [run_id],
    ).fetchone()[0]
    assert interrupted == 0  # nothing was cut off: every request the victim sent was answered and kept
    assert_nothing_lost(sql, cluster.media, project, run_id)


def test_sigkill_of_a_worker_loses_nothing_and_the_counters_stay_exact(make_cluster, sql):
    cluster: Cluster = make_cluster(GEN_START_CONCURRENCY="4", GEN_MAX_CONCURRENCY="4")
    cluster.start_fake_provider("--latency", "0.3")
    workers, _ = cluster.start(workers=2)
    project = seed(cluster, "--projects", "1", "--scenes", "20")["projects"][0]
    run_id = seed(cluster, "--start", str(project))["runs"][0]
    wait_for(
        lambda: generated(sql, run_id) >= 6 and in_flight(sql, run_id) > 0, what="6 done", cluster=cluster
    )
    cluster.kill(worker_of(run_row(sql, run_id)["owner"], workers))
    row = wait_for(lambda: ended(sql, run_id), what="the run to finish", cluster=cluster)
    assert (row["status"], row["succeeded"]) == ("completed", 20)
    assert_nothing_lost(sql, cluster.media, project, run_id)


def test_the_database_going_away_mid_run_loses_nothing(make_cluster, sql, postgres_server: PostgresServer):
    cluster: Cluster = make_cluster(GEN_START_CONCURRENCY="3", GEN_MAX_CONCURRENCY="3")
    cluster.start_fake_provider("--latency", "0.3")
    cluster.start(workers=1)
    project = seed(cluster, "--projects", "1", "--scenes", "30")["projects"][0]
    run_id = seed(cluster, "--start", str(project))["runs"][0]
    wait_for(lambda: generated(sql, run_id) >= 6, what="6 done", cluster=cluster)
    postgres_server.restart(down_seconds=3)
    with psycopg.connect(sql.info.dsn, autocommit=True) as fresh:
        row = wait_for(lambda: ended(fresh, run_id), what="the run to end", cluster=cluster)
        # A blip: every write was retried, so the run completed, or every scene tells why it did not.
        assert row["status"] in ("completed", "failed"), row
        if row["status"] == "completed":
            assert row["succeeded"] + row["failed"] == 30
        assert_nothing_lost(fresh, cluster.media, project, run_id)


def start_cli(cluster: Cluster, project: int, *args: str) -> subprocess.Popen:
    log = cluster.workdir / f"generate-{time.monotonic_ns()}.log"
    return processes.spawn(["manage.py", "generate", str(project), *args], env=cluster.env, log=log)


def test_a_cli_terminated_or_killed_is_resumed_by_the_next_generate(make_cluster, sql):
    cluster: Cluster = make_cluster(GEN_START_CONCURRENCY="3", GEN_MAX_CONCURRENCY="3")
    cluster.start_fake_provider("--latency", "0.3")
    project = seed(cluster, "--projects", "1", "--scenes", "30")["projects"][0]

    def the_run() -> int | None:
        found = sql.execute("SELECT id FROM generation_batchrun WHERE project_id = %s", [project]).fetchone()
        return found and found[0]

    cli = start_cli(cluster, project)
    run_id = wait_for(the_run, what="the run", cluster=cluster)
    wait_for(lambda: generated(sql, run_id) >= 4, what="4 done", cluster=cluster)
    cli.send_signal(signal.SIGTERM)
    assert cli.wait(timeout=20) == 128 + signal.SIGTERM
    row = run_row(sql, run_id)
    assert (row["status"], row["owner"]) == ("queued", "")  # handed back: resumable at once
    assert in_flight(sql, run_id) == 0

    cli = start_cli(cluster, project)
    wait_for(lambda: generated(sql, run_id) >= 12, what="12 done", cluster=cluster)
    cli.send_signal(signal.SIGKILL)
    cli.wait(timeout=10)
    assert run_row(sql, run_id)["status"] == "running"  # orphaned: its holder is dead

    # Its lease has not lapsed yet: --take-over follows the run and takes it over once it does.
    out = cluster.run("manage.py", "generate", str(project), "--take-over", timeout=RUN_SECONDS)
    assert "Successfully generated all 30 scenes!" in out
    row = run_row(sql, run_id)
    assert (row["status"], row["succeeded"]) == ("completed", 30)
    assert_nothing_lost(sql, cluster.media, project, run_id)


def test_sigterm_to_runstudio_hands_its_embedded_workers_run_back(tmp_path: Path):
    """One process, SQLite, the in-memory layer (`make run`): Twisted owns SIGTERM there."""
    cluster = Cluster(
        tmp_path, database_url=f"sqlite:///{tmp_path / 'studio.sqlite3'}", redis_url=None, env={}
    )
    try:
        cluster.migrate()
        cluster.start_fake_provider("--latency", "0.5")  # 60 scenes 3 at a time: about 10 s of work
        port = processes.free_port()
        studio = cluster._spawn("runstudio", ["manage.py", "runstudio", "--port", str(port)], port)
        processes.wait_for_port(port, what="runstudio", timeout=60, process=studio.popen, log=studio.log)
        project = seed(cluster, "--projects", "1", "--scenes", "60")["projects"][0]
        seed(
            cluster, "--start", str(project), "--overrides", '{"max_concurrency": 3, "start_concurrency": 3}'
        )
        script = (
            "from generation.models import BatchRun, SceneVersion as V; r = BatchRun.objects.get(); "
            "print(r.status, r.owner or '-', V.objects.count(), "
            "r.attempts.filter(status='running').count())"
        )

        def state() -> list[str]:
            return processes.setup_script(script, env=cluster.env).split()

        wait_for(lambda: int(state()[2]) >= 3, what="3 done", cluster=cluster)
        studio.popen.send_signal(signal.SIGTERM)
        studio.popen.wait(timeout=30)
        status, owner, _, running = state()
        assert (status, owner, running) == ("queued", "-", "0"), studio.tail()
    finally:
        cluster.stop()
