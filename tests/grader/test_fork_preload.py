"""The fork engine's zygote preloads what the grader names, and each worker's children share the cores out."""

from __future__ import annotations

import os
import sys

from dlcourse.grading import default_executor
from dlcourse.sandbox.fork import ForkSession, close_zygote

PROBE = "import sys\nprint('zipapp' in sys.modules)"  # a standard module that nothing here imports


def _child_sees(tmp_path, preload: tuple[str, ...]) -> str:
    workdir = tmp_path / f"work{len(list(tmp_path.iterdir()))}"
    workdir.mkdir()
    session = ForkSession(workdir, {}, preload=preload)
    session.start()
    try:
        run = session.execute(PROBE, timeout=60)
    finally:
        session.shutdown()
    assert run.status == "ok", run
    return "".join(o.get("text", "") for o in run.outputs).strip()


def test_the_zygote_imports_the_named_modules_once_and_its_later_children_inherit_them(tmp_path):
    close_zygote()  # a fresh zygote: what an earlier test's child asked for is not in it
    try:
        assert _child_sees(tmp_path, ()) == "False"
        assert _child_sees(tmp_path, ("zipapp",)) == "True"
        assert _child_sees(tmp_path, ()) == "True", "the module was imported in the child, not in the zygote"
        # a name that is no module, or not a module name at all, changes nothing and breaks nothing
        assert _child_sees(tmp_path, ("no_such_module_here", "os; import zipapp", "")) == "True"
    finally:
        close_zygote()
    assert "zipapp" not in sys.modules  # the zygote is a process of its own


def _threads() -> tuple[str, int]:
    import torch

    return os.environ["OMP_NUM_THREADS"], torch.get_num_threads()


def test_each_worker_gives_its_notebooks_its_share_of_the_cores(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cores = os.cpu_count() or 1
    for workers in (1, 2):
        pool = default_executor(workers)
        try:
            share = max(1, cores // workers)
            assert pool.submit(_threads).result() == (str(share), share)
        finally:
            pool.shutdown()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what the instructor sets wins
    pool = default_executor(1)
    try:
        assert pool.submit(_threads).result() == ("1", 1)
    finally:
        pool.shutdown()


def _worker_state() -> tuple[int, str | None, bool]:
    return len(os.listdir("/proc/self/task")), os.environ.get("DLCOURSE_TEST_MARK"), "torch" in sys.modules


def test_workers_come_from_a_warm_single_threaded_server_with_the_callers_environment_of_the_moment(monkeypatch):
    """Workers are forked from a fork server that imported torch: each must start with one thread (no
    fork ever copies a running thread) and with this process's environment when its pool was made, not
    the server's (which started with the first pool)."""
    for mark in ("first", "second"):
        monkeypatch.setenv("DLCOURSE_TEST_MARK", mark)
        pool = default_executor(2)
        try:
            threads, seen, has_torch = pool.submit(_worker_state).result()
        finally:
            pool.shutdown()
        assert (threads, seen, has_torch) == (1, mark, True)
