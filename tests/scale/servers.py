"""Real servers on loopback for the scale tests and `bench/scale.py`: Debian's redis-server and PostgreSQL
in temp dirs on free ports, and a cluster of studio processes (the fake provider, `studioworker`s and
`runstudio --worker no` Daphnes) sharing one database, one Redis and one MEDIA_ROOT.

Nothing here imports Django: the processes get everything from their environment, as in production.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import redis

from tests.support import processes
from tests.support.processes import free_port

START_SECONDS = 60.0
WORKER_CHANNEL = "scene-generation"


class Unavailable(RuntimeError):
    """A server binary is not installed."""


def wait_until(
    check: Callable[[], bool], *, what: str, timeout: float = START_SECONDS, log: Path | None = None
) -> None:
    processes.wait_until(check, what=what, timeout=timeout, log=log)


# -- Redis ------------------------------------------------------------------------------------------


@dataclass
class RedisServer:
    port: int
    directory: Path
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @classmethod
    def start(cls) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise Unavailable("redis-server is not installed (apt-get install redis-server)")
        directory, port = Path(tempfile.mkdtemp(prefix="scenestudio-redis-")), free_port()
        server = cls(port=port, directory=directory, process=_redis_process(binary, port, directory))
        try:
            wait_until(lambda: server.client().ping(), what="redis-server", log=directory / "redis.log")
        except BaseException:
            server.stop()
            raise
        return server

    def restart(self, *, down_seconds: float = 0.0) -> None:
        """Stop and start again on the same port, without persistence: every key is gone (the fault
        tests' Redis restart)."""
        processes.end(self.process)
        time.sleep(down_seconds)
        binary = shutil.which("redis-server") or "redis-server"
        self.process = _redis_process(binary, self.port, self.directory)
        wait_until(lambda: self.client().ping(), what="redis-server", log=self.directory / "redis.log")

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def flush(self) -> None:
        with self.client() as client:
            client.flushall()

    def stop(self) -> None:
        processes.end(self.process)
        shutil.rmtree(self.directory, ignore_errors=True)


def _redis_process(binary: str, port: int, directory: Path) -> subprocess.Popen:
    args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    args += ["--dir", str(directory), "--logfile", str(directory / "redis.log")]
    return subprocess.Popen([binary, *args], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


# -- PostgreSQL -------------------------------------------------------------------------------------


def postgres_bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise Unavailable("PostgreSQL is not installed (apt-get install postgresql)")
    return Path(initdb).parent


@dataclass
class PostgresServer:
    """A throwaway cluster with trust auth for user `studio`.

    `crash_safe=False` (tests) also turns fsync off: the data dies with the test anyway. Either way a
    commit does not wait for its WAL flush (synchronous_commit=off), as SQLite in WAL mode with
    synchronous=NORMAL (the studio's SQLite settings) does not: a crash may lose the last commits, never
    corrupt the database. That keeps the benchmark's comparison about the databases, not this disk.
    """

    port: int
    directory: Path
    bindir: Path
    run_as: list[str] = field(default_factory=list)
    user: str = "studio"

    @classmethod
    def start(cls, *, crash_safe: bool = False) -> PostgresServer:
        bindir = postgres_bindir()
        # PostgreSQL refuses to run as root: then it runs as the `postgres` user, in a dir it owns.
        run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        directory = Path(tempfile.mkdtemp(prefix="scenestudio-pg-", dir="/tmp" if run_as else None))
        if run_as:
            entry = pwd.getpwnam("postgres")
            os.chown(directory, entry.pw_uid, entry.pw_gid)
        server = cls(port=free_port(), directory=directory, bindir=bindir, run_as=run_as)
        try:
            server._initdb()
            server._pg_ctl_start(crash_safe=crash_safe)
        except BaseException:
            server.stop()
            raise
        return server

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self.run_as, *args], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")

    def _initdb(self) -> None:
        data = str(self.directory / "data")
        self._run(str(self.bindir / "initdb"), "-D", data, "-U", self.user, "-A", "trust", "-E", "UTF8")

    def _pg_ctl_start(self, *, crash_safe: bool) -> None:
        options = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-k {self.directory}",
            "-c max_connections=200",
            "-c synchronous_commit=off",
        ]
        if not crash_safe:
            options += ["-c fsync=off", "-c full_page_writes=off"]
        self._run(
            str(self.bindir / "pg_ctl"),
            *("-D", str(self.directory / "data"), "-l", str(self.directory / "postgres.log")),
            *("-o", " ".join(options), "-w", "-t", "60", "start"),
        )

    def url(self, database: str) -> str:
        return f"postgres://{self.user}@127.0.0.1:{self.port}/{database}"

    def restart(self, *, down_seconds: float) -> None:
        """Go away for `down_seconds` (every connection dropped, none accepted), then come back. A fast
        shutdown, as a restart or failover does: what was committed stays (an immediate one would lose
        the last commits here, with synchronous_commit off)."""
        data = str(self.directory / "data")
        self._run(str(self.bindir / "pg_ctl"), "-D", data, "-m", "fast", "-w", "stop")
        time.sleep(down_seconds)
        self._pg_ctl_start(crash_safe=False)

    def connect(self, database: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(self.url(database), autocommit=True)

    def create_database(self, name: str, *, template: str | None = None) -> str:
        with self.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return self.url(name)

    def stop(self) -> None:
        if (self.directory / "data" / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                self._run(
                    str(self.bindir / "pg_ctl"), "-D", str(self.directory / "data"), "-m", "immediate", "stop"
                )
        shutil.rmtree(self.directory, ignore_errors=True)


# -- Studio processes -------------------------------------------------------------------------------


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log: Path
    port: int | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, chars: int = 6000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


class Cluster:
    """Studio processes sharing one database, Redis and MEDIA_ROOT, configured only by environment."""

    def __init__(
        self,
        workdir: Path,
        *,
        database_url: str,
        redis_url: str | None,
        env: dict[str, str],
        media: Path | None = None,
    ) -> None:
        self.workdir = workdir
        self.media = media or workdir / "media"
        self.redis_url = redis_url
        self.processes: list[Process] = []
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"REDIS_URL", "DATABASE_URL", "MEDIA_ROOT", "FAKE_PROVIDER_URL"}
            and not k.startswith("GEN_")
        }
        self.env.update(
            DATABASE_URL=database_url,
            MEDIA_ROOT=str(self.media),
            PROVIDER="fake",
            DJANGO_SETTINGS_MODULE="scenestudio.settings",
            DEBUG="1",
            PYTHONUNBUFFERED="1",
            GENERATION_LOG_LEVEL="INFO",
        )
        if redis_url:
            self.env["REDIS_URL"] = redis_url
        self.env.update(env)

    # -- starting ----------------------------------------------------------------------------------

    def _spawn(self, name: str, args: list[str], port: int | None = None) -> Process:
        log = self.workdir / f"{name}.log"
        process = Process(name, processes.spawn(args, env=self.env, log=log), log, port)
        self.processes.append(process)
        return process

    def _ready(self, process: Process, check: Callable[[], bool]) -> None:
        processes.wait_until(
            check, what=process.name, timeout=START_SECONDS, process=process.popen, log=process.log
        )

    def start_fake_provider(self, *args: str) -> str:
        port = free_port()
        process = self._spawn(
            "fakeprovider", ["-m", "generation.fakeprovider", "--port", str(port), *args], port
        )
        url = f"http://127.0.0.1:{port}"
        self._ready(process, lambda: httpx.get(f"{url}/_fake/health").status_code == 200)
        self.env["FAKE_PROVIDER_URL"] = url
        return url

    def start(self, *, workers: int = 0, daphnes: int = 0) -> tuple[list[Process], list[Process]]:
        """Start `studioworker`s and `runstudio --worker no`s (all at once), and wait until each listens."""
        started = [p for p in self.processes if p.name.startswith("worker")]
        new_workers = [
            self._spawn(f"worker{len(started) + i + 1}", ["manage.py", "studioworker", WORKER_CHANNEL])
            for i in range(workers)
        ]
        new_daphnes = []
        for _ in range(daphnes):
            port = free_port()
            args = ["manage.py", "runstudio", "--worker", "no", "--port", str(port)]
            new_daphnes.append(self._spawn(f"daphne{port}", args, port))
        for daphne in new_daphnes:
            url = f"http://127.0.0.1:{daphne.port}/accounts/login/"
            self._ready(daphne, lambda url=url: httpx.get(url).status_code == 200)
        if self.redis_url and new_workers:
            # A worker listens once subscribed to its channel: a wake-up sent earlier would only be found
            # by its next scan, seconds later.
            listening = len(started) + len(new_workers)
            with redis.Redis.from_url(self.redis_url) as client:
                for worker in new_workers:
                    self._ready(worker, lambda: _subscribers(client, WORKER_CHANNEL) >= listening)
        return new_workers, new_daphnes

    # -- one-off commands --------------------------------------------------------------------------

    def run(self, *args: str, timeout: float = 180) -> str:
        """`python ARGS` with the cluster's environment: its stdout, or an error carrying its output."""
        return processes.run_python(list(args), env=self.env, timeout=timeout)

    def migrate(self) -> None:
        self.run("manage.py", "migrate", "--noinput", "-v", "0")

    # -- stopping ----------------------------------------------------------------------------------

    def kill(self, process: Process) -> None:
        """kill -9: no cleanup, no last words, as when a machine dies."""
        process.popen.send_signal(signal.SIGKILL)
        process.popen.wait(timeout=10)

    def stop(self) -> None:
        for process in reversed(self.processes):
            processes.end(process.popen)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} (pid {p.pid})\n{p.tail()}" for p in self.processes)


def _subscribers(client: redis.Redis, channel: str) -> int:
    return dict(client.pubsub_numsub(channel)).get(channel.encode(), 0)
