"""`dlcourse lab` stops its JupyterLab server when it is told to stop (SIGTERM, SIGINT, SIGHUP)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dlcourse.student import lab

ROOT = Path(__file__).resolve().parents[2]


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads the process tree from /proc")
@pytest.mark.parametrize("stop_signal", (signal.SIGTERM, signal.SIGINT), ids=("SIGTERM", "SIGINT"))
def test_the_jupyter_server_is_gone_after_dlcourse_lab_is_signalled(tmp_path, stop_signal):
    course = tmp_path / "course"
    course.mkdir()
    (course / "nbgrader_config.py").write_text("")
    port = lab.free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    process = subprocess.Popen([sys.executable, "-m", "dlcourse", "--course", str(course), "lab", "--no-browser",
                                "--port", str(port)], cwd=course, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, start_new_session=True)
    server = None
    try:
        wait_until(lambda: process.poll() is not None or listening(port), 120, "JupyterLab to listen")
        assert process.poll() is None, process.stdout.read().decode(errors="replace")
        servers = children(process.pid)
        assert len(servers) == 1, servers
        server = servers[0]
        process.send_signal(stop_signal)
        assert process.wait(timeout=60) == 0
        assert not running(server), "dlcourse lab exited and left its JupyterLab server running"
        assert not listening(port)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if server is not None and running(server):
            os.kill(server, signal.SIGKILL)
