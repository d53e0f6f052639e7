"""The process helper the browser and scale tests and the benchmarks share."""

from __future__ import annotations

import os
import socket
import time

import pytest

from tests.support import processes

IGNORES_TERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); "
    "time.sleep(60)"
)


def test_a_free_port_can_be_bound_on_loopback():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", processes.free_port()))


def test_end_kills_a_process_that_ignores_terminate(tmp_path):
    log = tmp_path / "p.log"
    popen = processes.spawn(["-c", IGNORES_TERM], env=os.environ, log=log)
    processes.wait_until(lambda: "up" in log.read_text(), what="sleeper", timeout=10, process=popen, log=log)
    started = time.monotonic()
    processes.end(popen, timeout=0.5)
    assert popen.returncode == -9 and time.monotonic() - started < 5


def test_waiting_for_a_process_that_exits_says_so_with_its_output(tmp_path):
    log = tmp_path / "p.log"
    with processes.running(["-c", "print('boom'); raise SystemExit(3)"], env=os.environ, log=log) as popen:
        with pytest.raises(RuntimeError, match=r"(?s)server on port \d+ exited with 3.*boom"):
            processes.wait_for_port(processes.free_port(), what="server", timeout=10, process=popen, log=log)


def test_waiting_gives_up_after_the_timeout(tmp_path):
    with pytest.raises(TimeoutError, match=r"never not ready within 0\.2s"):
        processes.wait_until(lambda: False, what="never", timeout=0.2)


def test_a_failing_script_raises_with_its_output():
    with pytest.raises(RuntimeError, match="nope"):
        processes.run_python(["-c", "import sys; sys.exit('nope')"], env=os.environ)
    assert processes.run_python(["-c", "print('a'); print('b')"], env=os.environ) == "a\nb\n"
