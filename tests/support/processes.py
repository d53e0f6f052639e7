"""Starting and stopping the studio's own processes on loopback, for the browser and scale tests and the
benchmarks: a free port, waiting until a process is ready, terminate-then-kill, and the set-up script run
through `manage.py shell`.

Nothing here imports Django: the processes get everything from their environment, as in production.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
POLL_SECONDS = 0.05  # polling a process that is starting; no correctness rides on the interval


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(log: Path | None, chars: int = 6000) -> str:
    return log.read_text(errors="replace")[-chars:] if log is not None and log.exists() else ""


def wait_until(
    check: Callable[[], bool],
    *,
    what: str,
    timeout: float,
    process: subprocess.Popen | None = None,
    log: Path | None = None,
) -> None:
    """Poll `check` (its exceptions count as "not yet") until it holds. RuntimeError when `process` exits
    first, TimeoutError after `timeout`; both carry the end of `log`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{_tail(log)}")
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(POLL_SECONDS)
    raise TimeoutError(f"{what} not ready within {timeout:g}s:\n{_tail(log)}")


def port_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True


def wait_for_port(port: int, *, what: str, timeout: float, process: subprocess.Popen, log: Path) -> None:
    wait_until(
        lambda: port_open(port), what=f"{what} on port {port}", timeout=timeout, process=process, log=log
    )


def spawn(args: list[str], *, env: Mapping[str, str], log: Path) -> subprocess.Popen:
    """`python ARGS` from the project root, its output in `log`."""
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env=dict(env), stdout=out, stderr=subprocess.STDOUT
        )


def end(popen: subprocess.Popen, *, timeout: float = 10) -> None:
    """Terminate, and kill what has not exited within `timeout`."""
    if popen.poll() is None:
        popen.terminate()
        try:
            popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()


@contextlib.contextmanager
def running(args: list[str], *, env: Mapping[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """A spawned process, ended on the way out whatever happens."""
    popen = spawn(args, env=env, log=log)
    try:
        yield popen
    finally:
        end(popen)


def run_python(args: list[str], *, env: Mapping[str, str], timeout: float = 180, what: str = "") -> str:
    """`python ARGS` from the project root: its stdout, or a RuntimeError carrying all its output."""
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=dict(env), capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        name = what or " ".join(args)
        raise RuntimeError(f"{name} exited with {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def setup_script(script: str, *, env: Mapping[str, str], timeout: float = 120, what: str = "") -> str:
    """Run a set-up script in `manage.py shell -c`; returns the last line it printed (its result)."""
    out = run_python(["manage.py", "shell", "-c", script], env=env, timeout=timeout, what=what)
    return out.strip().splitlines()[-1]
