"""One zygote for all the workers of a `dlcourse grade`: shared while it is fit, left as soon as it is not.

The workers connect to the zygote that the command started (``SharedZygoteHost``). A child left in
doubt, or the zygote's children limit, retires it: no worker forks from it again, each starts its own,
and a child that another worker is still grading is not killed by the retirement.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from pathlib import Path

import pytest

from dlcourse.sandbox import zygotes as zygote_module
from dlcourse.grading import default_executor
from dlcourse.sandbox.isolation import Limits, isolation_problem
from dlcourse.sandbox.fork import (SHARED_SOCKET_ENV, ForkSession, SharedZygote, SharedZygoteHost, ZygoteRetired,
                             close_zygote)

pytestmark = pytest.mark.skipif(bool(isolation_problem()), reason="needs the sandbox (bubblewrap)")

#: The sockets a child holds: its own to the grader, nothing of the zygote's or of another notebook's.
COUNT_SOCKETS = """
import os
links = []
for fd in os.listdir("/proc/self/fd"):
    try:
        links.append(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:  # the listing's own descriptor, closed since
        pass
print(sum(link.startswith("socket:") for link in links))
"""


@pytest.fixture
def host(monkeypatch, request):
    """A shared zygote for this process, as a worker of ``dlcourse grade`` finds it (``most``: its children)."""
    most = getattr(request, "param", zygote_module.CHILDREN_PER_ZYGOTE)
    monkeypatch.setattr(zygote_module, "CHILDREN_PER_ZYGOTE", most)
    close_zygote()
    monkeypatch.setattr(zygote_module, "_shared_refused", False)
    shared = SharedZygoteHost(True, Limits(), [])
    monkeypatch.setenv(SHARED_SOCKET_ENV, shared.path)
    yield shared
    close_zygote()
    shared.close()


def _session(tmp_path) -> ForkSession:
    workdir = tmp_path / f"work{len(list(tmp_path.iterdir()))}"
    workdir.mkdir()
    session = ForkSession(workdir, {})
    session.start()
    return session


def _output(run) -> str:
    assert run.status == "ok", run
    return "".join(o.get("text", "") for o in run.outputs).strip()


def _run_once(tmp_path, source: str) -> tuple[bool, str]:
    session = _session(tmp_path)
    try:
        return session.zygote.shared, _output(session.execute(source, timeout=60))
    finally:
        session.shutdown()


def _fork_command() -> dict:
    return {"isolate": True, "threads": 1, "env": {}, "cpu_seconds": 60, "file_bytes": 2**20, "data_bytes": 0,
            "output_limit": 2**20, "tmpfs_bytes": 2**26, "preload": ()}


def test_a_worker_forks_from_the_shared_zygote_and_its_child_holds_no_socket_but_its_own(host, tmp_path):
    other = SharedZygote(host.path, zygote_module._key(True, Limits(), []))  # another worker, connected
    try:
        shared, sockets = _run_once(tmp_path, COUNT_SOCKETS)
        assert shared
        assert sockets == "1"
        assert _run_once(tmp_path, f"import os\nprint(os.path.exists({host.path!r}))") == (True, "False")
    finally:
        other.close()


def _both_workers(_):
    workdir = Path(tempfile.mkdtemp())
    session = ForkSession(workdir, {})
    session.start()
    try:
        run = session.execute("print(6 * 7)", timeout=60)
        time.sleep(0.5)  # both workers busy at once: each takes one job
        return os.getpid(), session.zygote.shared, run.status, "".join(o.get("text", "") for o in run.outputs)
    finally:
        session.shutdown()


def test_every_worker_of_a_pool_forks_from_the_one_shared_zygote(host):
    pool = default_executor(2, host.environment())
    try:
        answers = list(pool.map(_both_workers, range(4)))
    finally:
        pool.shutdown()
    assert len({pid for pid, *_ in answers}) == 2
    assert all(shared and status == "ok" and text.strip() == "42" for _, shared, status, text in answers), answers


def test_a_child_left_in_doubt_retires_the_shared_zygote_without_killing_another_workers_child(
        host, tmp_path, monkeypatch):
    other = SharedZygote(host.path, zygote_module._key(True, Limits(), []))  # another worker's connection
    with monkeypatch.context() as patch:
        patch.setattr(zygote_module, "zygote_for", lambda *args: other)
        running = _session(tmp_path)  # that worker's notebook, still being graded
    try:
        assert _output(running.execute("x = 1\nprint(x)", timeout=60)) == "1"
        crashing = _session(tmp_path)
        assert crashing.zygote.shared
        assert crashing.execute("import os\nos._exit(3)", timeout=60).status == "died"
        crashing.shutdown()  # in doubt: this worker leaves the shared zygote and retires it

        assert _output(running.execute("print(x + 1)", timeout=60)) == "2", "the retirement killed a child"
        theirs = socket.socketpair()
        try:
            with pytest.raises(ZygoteRetired):
                other.fork(theirs[1], _fork_command())
        finally:
            for end in theirs:
                end.close()
        assert _run_once(tmp_path, "print('own')") == (False, "own")  # this worker's own zygote now
    finally:
        running.shutdown()
        other.close()


@pytest.mark.parametrize("host", [2], indirect=True)
def test_the_shared_zygote_retires_after_its_children_and_the_worker_goes_on_with_its_own(host, tmp_path):
    assert _run_once(tmp_path, "print(1)") == (True, "1")
    assert _run_once(tmp_path, "print(2)") == (True, "2")
    assert _run_once(tmp_path, "print(3)") == (False, "3")  # the third notebook: retired, forked elsewhere
    assert _run_once(tmp_path, "print(4)") == (False, "4")


def test_a_shared_zygote_for_other_options_is_not_used(host, tmp_path):
    session = ForkSession(tmp_path, {}, limits=Limits(cpu_seconds=77))
    session.start()
    try:
        assert not session.zygote.shared
        assert _output(session.execute("print('mine')", timeout=60)) == "mine"
    finally:
        session.shutdown()
