"""Live events at scale: 50 WebSocket watchers on one 200-scene run, against a real `runstudio`.

Measures two things on this machine, with the server as a subprocess and the watchers in this process:
- latency: for each scene.succeeded event, the time from the server publishing it (the event's `ts`) until
  every watcher has received it; p95 over the run's scenes (target: under 100 ms);
- slowdown: the same 200-scene run on a fresh project with no watchers; the run's own duration (its
  started/finished in the database) with watchers over without, minus 1 (target: under 5 %).
Runs alternate (without, with, with, without, ...) so drift in the machine's load hits both alike, and
each side reports its median. Writes var/bench/live.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from bench import write_json
from tests.support import processes

WATCHERS = 50
SCENES = 200
ROUNDS = 3  # runs with watchers, and as many without
LATENCY = 0.5  # seconds per simulated image: about 7 s a run at 16 in flight
CONCURRENCY = 16
TARGET_P95_MS = 100.0
TARGET_SLOWDOWN = 0.05
RUN_TIMEOUT = 180.0
WATCHER_GRACE = 30.0  # after the run ends, for events still on their way
USER, PASSWORD = "bench", "bench-live-password"

SERVER_ENV = {
    "PROVIDER": "simulated",
    "SIMULATED_LATENCY": str(LATENCY),
    "GEN_START_CONCURRENCY": str(CONCURRENCY),
    "GEN_MAX_CONCURRENCY": str(CONCURRENCY),
    # Production-like: no DEBUG query log, no per-scene INFO lines written to the log.
    "DEBUG": "0",
    "SECRET_KEY": "bench-only-not-secret",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "SECURE_SSL_REDIRECT": "0",
    "SECURE_HSTS_SECONDS": "0",
    "GENERATION_LOG_LEVEL": "WARNING",
    "PYTHONUNBUFFERED": "1",
}

# Runs inside `manage.py shell -c`: a user and fresh 200-scene projects, one per run; prints their ids.
SETUP_SCRIPT = """
import json, os
from django.contrib.auth import get_user_model
from django.core.management import call_command
from projects import services
from projects.models import Scene

spec = json.loads(os.environ["BENCH_SETUP"])
call_command("migrate", verbosity=0)
user = get_user_model().objects.create_user(spec["user"], password=spec["password"])
ids = []
for n in range(spec["projects"]):
    project = services.project_create(title=f"Live bench {n + 1}", user=user)
    Scene.objects.bulk_create(
        Scene(project=project, position=i + 1, prompt=f"Panel {i + 1}: a lantern-lit street at dusk")
        for i in range(spec["scenes"])
    )
    ids.append(project.pk)
print(json.dumps(ids))
"""


@dataclass
class Server:
    url: str
    projects: list[int]
    cookie: str = ""

    @property
    def origin_headers(self) -> dict[str, str]:
        # The socket route checks Origin against the server's own origin, as for a browser.
        return {"Origin": self.url, "Cookie": self.cookie}

    def ws_url(self, project: int) -> str:
        return self.url.replace("http", "ws", 1) + f"/ws/projects/{project}/"


@dataclass
class Watched:
    """What the watchers saw of one run: (scene, sent at, received at) per watcher."""

    receipts: list[list[tuple[int, float | None, float]]] = field(default_factory=list)


# ---- server -------------------------------------------------------------------------------------


def _env(workdir: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL", "MEDIA_ROOT"}}
    env.update(SERVER_ENV, DATABASE_URL=f"sqlite:///{workdir / 'db.sqlite3'}")
    env["MEDIA_ROOT"] = str(workdir / "media")
    env.update(extra)
    return env


def _seed(workdir: Path, projects: int) -> list[int]:
    spec = {"user": USER, "password": PASSWORD, "projects": projects, "scenes": SCENES}
    env = _env(workdir, {"BENCH_SETUP": json.dumps(spec)})
    return json.loads(processes.setup_script(SETUP_SCRIPT, env=env, what="Seeding the benchmark database"))


@contextmanager
def live_server(workdir: Path, projects: list[int]):
    port, log = processes.free_port(), workdir / "server.log"
    args = ["manage.py", "runstudio", "--port", str(port)]
    with processes.running(args, env=_env(workdir, {}), log=log) as process:
        processes.wait_for_port(port, what="runstudio", timeout=30.0, process=process, log=log)
        yield Server(url=f"http://127.0.0.1:{port}", projects=projects)


def log_in(server: Server) -> str:
    """The session cookie, through the real login form. Cookies are Secure with DEBUG off, so they are
    carried by hand over this plain-HTTP loopback connection."""
    page = httpx.get(f"{server.url}/accounts/login/")
    csrf = page.cookies["csrftoken"]
    response = httpx.post(
        f"{server.url}/accounts/login/",
        data={"username": USER, "password": PASSWORD, "csrfmiddlewaretoken": csrf},
        headers={"Cookie": f"csrftoken={csrf}"},
    )
    if response.status_code != 302 or "sessionid" not in response.cookies:
        raise RuntimeError(f"Login failed: HTTP {response.status_code}")
    return f"sessionid={response.cookies['sessionid']}"


# ---- clients ------------------------------------------------------------------------------------


async def start_run(session: aiohttp.ClientSession, server: Server, project: int) -> int:
    """Start a run over a short-lived control socket, so a run without watchers has none left open."""
    async with session.ws_connect(server.ws_url(project), headers=server.origin_headers) as ws:
        await ws.receive_json()  # the snapshot
        await ws.send_json({"action": "start"})
        async for message in ws:
            reply = json.loads(message.data)
            if reply["type"] == "ack":
                return reply["run"]
            if reply["type"] in {"error", "refused"}:
                raise RuntimeError(f"The run did not start: {reply}")
    raise RuntimeError("The control socket closed before the run started")


async def wait_finished(session: aiohttp.ClientSession, server: Server, project: int) -> dict[str, Any]:
    """Polls status.json (twice a second, with and without watchers alike) until the run is over."""
    url, deadline = f"{server.url}/projects/{project}/status.json", time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        async with session.get(url, headers=server.origin_headers) as response:
            run = (await response.json())["run"]
        if run and not run["active"]:
            return run
        await asyncio.sleep(0.5)
    raise RuntimeError(f"Run on project {project} did not finish within {RUN_TIMEOUT:g}s")


async def watch(
    session: aiohttp.ClientSession,
    server: Server,
    project: int,
    connected: asyncio.Future,
    receipts: list[tuple[int, float | None, float]],
) -> None:
    async with session.ws_connect(server.ws_url(project), headers=server.origin_headers) as ws:
        await ws.receive_json()  # the snapshot: this watcher is in the group from here on
        connected.set_result(True)
        async for message in ws:
            received = time.time()  # first thing: parsing below is the client's cost, not delivery
            for event in unpack(json.loads(message.data)):
                if event["type"] == "scene.succeeded":
                    receipts.append((event["item"]["id"], event.get("ts"), received))
                elif event["type"] == "run.finished":
                    return


def unpack(message: dict | list) -> list[dict]:
    """One event per message today; a server that coalesces may send a list, or {"type": "batch"}."""
    if isinstance(message, list):
        return message
    if message.get("type") == "batch":
        return message["events"]
    return [message]


async def run_once(server: Server, project: int, watchers: int) -> tuple[dict[str, Any], Watched]:
    watched = Watched(receipts=[[] for _ in range(watchers)])
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        loop = asyncio.get_running_loop()
        connected = [loop.create_future() for _ in range(watchers)]
        tasks = [
            asyncio.create_task(watch(session, server, project, connected[i], watched.receipts[i]))
            for i in range(watchers)
        ]
        if connected:
            await asyncio.wait_for(asyncio.gather(*connected), timeout=60)
        await start_run(session, server, project)
        run = await wait_finished(session, server, project)
        if tasks:
            # A watcher whose run.finished was dropped would wait forever; what it missed is counted.
            _, late = await asyncio.wait(tasks, timeout=WATCHER_GRACE)
            for task in late:
                task.cancel()
    return run, watched


# ---- figures ------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile: the smallest value with at least q % of the values at or below it."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def run_seconds(run: dict[str, Any]) -> float:
    started, finished = datetime.fromisoformat(run["started"]), datetime.fromisoformat(run["finished"])
    return (finished - started).total_seconds()


def latency_figures(watched: Watched) -> dict[str, Any]:
    """Latency of each scene.succeeded event to every watcher. Events are droppable (a page resyncs from
    a snapshot), so a delivery that never came is counted apart, and p95 is over the events delivered."""
    by_scene: dict[int, list[float]] = {}
    sent: dict[int, float] = {}
    for receipts in watched.receipts:
        for scene, ts, received in receipts:
            by_scene.setdefault(scene, []).append(received)
            # Without a server timestamp, the earliest watcher stands in for the send time.
            sent[scene] = ts if ts is not None else min(sent.get(scene, received), received)
    to_all = [(max(times) - sent[scene]) * 1000 for scene, times in by_scene.items()]
    each = [(t - sent[scene]) * 1000 for scene, times in by_scene.items() for t in times]
    if not to_all:
        raise RuntimeError("No watcher received a single scene.succeeded event")
    return {
        "p50_ms": round(percentile(to_all, 50), 1),
        "p95_ms": round(percentile(to_all, 95), 1),
        "p99_ms": round(percentile(to_all, 99), 1),
        "max_ms": round(max(to_all), 1),
        "p95_each_watcher_ms": round(percentile(each, 95), 1),
        "missed_deliveries": len(watched.receipts) * SCENES - len(each),
        "server_timestamps": all(ts is not None for r in watched.receipts for _, ts, _ in r),
    }


async def measure(server: Server) -> dict[str, Any]:
    without: list[float] = []
    with_watchers: list[float] = []
    latencies: list[dict[str, Any]] = []
    projects = iter(server.projects)
    for round_no in range(ROUNDS):
        # Alternate which side goes first, so a trend in the machine's load does not favour either.
        order = [0, WATCHERS] if round_no % 2 == 0 else [WATCHERS, 0]
        for watchers in order:
            run, watched = await run_once(server, next(projects), watchers)
            if run["succeeded"] != SCENES:
                raise RuntimeError(f"A benchmark run did not finish every scene: {run['summary']}")
            (with_watchers if watchers else without).append(run_seconds(run))
            if watchers:
                latencies.append(latency_figures(watched))
    median_with, median_without = statistics.median(with_watchers), statistics.median(without)
    return {
        "watchers": WATCHERS,
        "scenes": SCENES,
        "topology": "runstudio: Daphne with the embedded worker, in-memory channel layer",
        "p95_ms": statistics.median(f["p95_ms"] for f in latencies),
        "missed_deliveries": sum(f["missed_deliveries"] for f in latencies),
        "slowdown": round(median_with / median_without - 1, 4),
        "duration_with_watchers_s": round(median_with, 3),
        "duration_without_watchers_s": round(median_without, 3),
        "durations_with_watchers_s": [round(s, 3) for s in with_watchers],
        "durations_without_watchers_s": [round(s, 3) for s in without],
        "latency_runs": latencies,
        "provider_latency_s": LATENCY,
        "concurrency": CONCURRENCY,
        "targets": {"p95_ms": TARGET_P95_MS, "slowdown": TARGET_SLOWDOWN},
    }


def main() -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-live-"))
    try:
        projects = _seed(workdir, projects=2 * ROUNDS)
        with live_server(workdir, projects) as server:
            server.cookie = log_in(server)
            result = asyncio.run(measure(server))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result["met"] = (
        result["p95_ms"] < TARGET_P95_MS
        and result["slowdown"] < TARGET_SLOWDOWN
        and result["missed_deliveries"] == 0
    )
    write_json("live", result)
    print(
        f"Live events: {WATCHERS} watchers x {SCENES} scenes: p95 {result['p95_ms']:.0f} ms to every watcher "
        f"(target < {TARGET_P95_MS:.0f}); run {result['duration_with_watchers_s']:.2f} s vs "
        f"{result['duration_without_watchers_s']:.2f} s alone = {result['slowdown']:+.1%} "
        f"(target < {TARGET_SLOWDOWN:.0%}); {result['missed_deliveries']} deliveries dropped"
    )
    return result


if __name__ == "__main__":
    main()
