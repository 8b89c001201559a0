"""The fork engine, the grader's side: a forked child per notebook, run cell by cell.

Starting a Jupyter kernel in a fresh sandbox and importing torch costs about
two seconds per notebook before any student code runs. The fork engine pays
that once per ``dlcourse grade`` (or once per grading worker where there is
no shared zygote): the warm, sandboxed processes that fork the children are
:mod:`dlcourse.sandbox.zygotes`. A :class:`ForkSession` (the same methods as
:class:`dlcourse.sandbox.kernel.KernelSession`) asks this process's zygote for
a child per notebook, moves the child into a cgroup of its own, sends it the
submission's files as a tar archive, runs cells in it and closes it.
:class:`ForkBackend` carries a test's requests as length-prefixed
``wire.dumps`` frames.

A zygote is replaced after a child that left it in doubt (it crashed, timed
out, ran out of memory or broke the protocol) and after
:data:`dlcourse.sandbox.zygotes.CHILDREN_PER_ZYGOTE` children. See
``docs/threat-model.md`` for what holds each isolation property. The
zygotes' names stay importable from here.
"""

from __future__ import annotations

import ast
import functools
import io
import json
import os
import select
import signal
import socket
import struct
import tarfile
import time
import uuid
from pathlib import Path

from . import zygotes
from .isolation import CGroup, Limits
from .kernel import OUTPUT_LIMIT_BYTES, CellRun
from ..bridge.errors import REPLY_LIMIT_BYTES, CellTimeout, KernelDied, no_reply, reply_too_large, unreadable_reply
from ..core.notebook import is_test_cell, new_output, strip_magics
from .scratch import start_time
from .child import HEADER, ProtocolError
# the zygotes' names, as they were imported from here before they had a module of their own
from .zygotes import (SHARED_SOCKET_ENV, SharedZygote, SharedZygoteHost, Zygote, ZygoteRetired,  # noqa: F401
                      close_zygote, warm_zygote, zygote_for)

#: Seconds an interrupted child has to answer before it is killed (as the kernel engine).
INTERRUPT_GRACE = 10
#: The largest cell result a child may send (JSON of outputs already cut at OUTPUT_LIMIT_BYTES).
RESULT_LIMIT_BYTES = 8 * OUTPUT_LIMIT_BYTES + 2**20
#: The size of each child's private tmpfs file systems (the memory cgroup counts what is in them).
TMPFS_BYTES = 2 * 2**30

_OUTPUT_KEYS = {"stream": ("name", "text"), "display_data": ("data", "metadata"),
                "execute_result": ("data", "metadata", "execution_count"),
                "error": ("ename", "evalue", "traceback")}


#: Modules that a dlcourse module imports only when one of its functions is called (torchvision takes
#: seconds): a master that imports the first makes the zygote import these too.
LAZY_IMPORTS = {"dlcourse.data": ("torchvision", "torchvision.datasets", "torchvision.transforms")}


def preloads(master) -> tuple[str, ...]:
    """The modules the master's own cells (not its tests, which run here) import, for the zygote to preload."""
    return _preloads("\n\0".join(c.source for c in master.cells if c.cell_type == "code" and not is_test_cell(c)))


@functools.lru_cache(maxsize=32)
def _preloads(sources: str) -> tuple[str, ...]:
    names: list[str] = []
    for source in sources.split("\n\0"):
        try:
            tree = ast.parse(strip_magics(source))
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.append(node.module)
    for name in list(names):
        names += LAZY_IMPORTS.get(name, ())
    return tuple(dict.fromkeys(names))


def omp_threads(default: int | None = None) -> int:
    """``$OMP_NUM_THREADS`` when it is a positive number, else ``default`` (else the number of cores)."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else (default or os.cpu_count() or 1)


class ForkSession:
    """One forked child for one notebook of one submission (the methods of ``KernelSession``)."""

    def __init__(self, workdir: Path, env: dict[str, str], *, isolate: bool = True, limits: Limits | None = None,
                 read_only: list[Path] | None = None, preload: tuple[str, ...] = ()):
        self.workdir = Path(workdir)
        self.preload = tuple(preload)
        self.env = dict(env)
        self.isolate = isolate
        self.limits = limits or Limits()
        self.read_only = zygotes.mounted(read_only or [])
        self.cgroup = CGroup(uuid.uuid4().hex[:12], self.limits)
        self.sock: socket.socket | None = None
        self.pid: int | None = None
        self._started_at: str | None = None
        self.dead = True
        self.in_doubt = False
        self.zygote: Zygote | None = None

    # -- life --------------------------------------------------------------

    def start(self) -> None:
        self.zygote = zygotes.zygote_for(self.isolate, self.limits, self.read_only)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock = ours
        self.cgroup.create()
        command = {"isolate": self.isolate, "threads": omp_threads(), "env": self.env,
                   "cpu_seconds": self.limits.cpu_seconds, "file_bytes": self.limits.file_bytes,
                   "data_bytes": 0 if self.cgroup.available else self.limits.memory_bytes,
                   "output_limit": OUTPUT_LIMIT_BYTES, "tmpfs_bytes": TMPFS_BYTES, "preload": self.preload}
        try:
            try:
                self.zygote.fork(theirs, command)
            except zygotes.ZygoteRetired:  # between two notebooks: this worker's own zygote from now on
                self.zygote = zygotes.zygote_for(self.isolate, self.limits, self.read_only)
                self.zygote.fork(theirs, command)
        finally:
            theirs.close()
        deadline = time.monotonic() + zygotes.CHILD_START_TIMEOUT
        self.dead = False
        try:
            self.pid = self._hello(deadline)
            self._started_at = start_time(self.pid)
            if self.cgroup.available:
                self.cgroup.join(self.pid)
            if self.isolate:
                self._send(b"T", _tar(self.workdir))
            else:
                self._send(b"J", json.dumps({"workdir": str(self.workdir)}).encode())
            kind, payload = self._receive(deadline, 4096)
            if kind != b"J" or not json.loads(payload).get("ready"):
                raise ProtocolError(kind)
        except (CellTimeout, ProtocolError, OSError, ValueError) as error:
            self.in_doubt = True
            self.kill()
            raise KernelDied(f"the notebook's process did not start: {error}") from error

    def _hello(self, deadline: float) -> int:
        """The child's first frame; its PID (in this process's namespace) comes with the socket's credentials."""
        ready, _, _ = select.select([self.sock], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise CellTimeout("no hello")
        size = struct.calcsize("iII")
        data, ancillary, _, _ = self.sock.recvmsg(HEADER.size, socket.CMSG_SPACE(size))
        pid = None
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", payload[:size])[0]
        if len(data) < HEADER.size:
            data += _recv_exact(self.sock, HEADER.size - len(data), deadline)
        kind, length = HEADER.unpack(data)
        if kind != b"J" or length > 4096 or not pid:
            raise ProtocolError("no hello from the notebook's process")
        _recv_exact(self.sock, length, deadline)
        return pid

    def alive(self) -> bool:
        if self.dead or self.pid is None:
            return False
        if start_time(self.pid) != self._started_at:  # gone, a zombie, or its PID reused
            self.dead = True
        return not self.dead

    def out_of_memory(self) -> bool:
        return self.cgroup.out_of_memory()

    def interrupt(self) -> None:
        if self.pid is not None and self.alive():
            try:
                os.kill(self.pid, signal.SIGINT)
            except OSError:
                pass

    def kill(self) -> None:
        """The child and everything it started."""
        self.dead = True
        if self.pid is not None and start_time(self.pid) == self._started_at:
            try:
                os.kill(self.pid, signal.SIGKILL)  # PID 1 of its namespace: the rest die with it
            except OSError:
                pass
        self.cgroup.kill_all()

    def shutdown(self) -> None:
        if self.sock is not None:
            self.sock.close()
        doubt = self.in_doubt or self.dead or self.out_of_memory()
        self.kill()
        self.cgroup.remove()
        if self.zygote is not None and doubt:
            self.zygote.in_doubt = True
            zygotes.leave_if_shared(self.zygote)  # at once: no worker forks from the shared one after this

    # -- frames ------------------------------------------------------------

    def _send(self, kind: bytes, payload: bytes) -> None:
        try:
            self.sock.sendall(HEADER.pack(kind, len(payload)) + payload)  # one write: the child wakes once
        except OSError as error:
            self.dead = True
            raise KernelDied("the notebook's process is gone") from error

    def _receive(self, deadline: float, limit: int) -> tuple[bytes, bytes | None]:
        """One frame before ``deadline``; a payload over ``limit`` is read and dropped (None)."""
        try:
            kind, size = HEADER.unpack(_recv_exact(self.sock, HEADER.size, deadline))
            if size > limit:
                left = size
                while left:
                    left -= len(_recv_exact(self.sock, min(left, 1 << 20), deadline))
                return kind, None
            return kind, _recv_exact(self.sock, size, deadline)
        except EOFError as error:
            self.dead = True
            raise KernelDied("the notebook's process is gone") from error

    def _recover(self) -> None:
        """After a timeout: interrupt, wait for the interrupted frame, else kill."""
        self.in_doubt = True
        self.interrupt()
        try:
            self._receive(time.monotonic() + INTERRUPT_GRACE, RESULT_LIMIT_BYTES)
        except (CellTimeout, KernelDied):
            self.kill()

    # -- cells -------------------------------------------------------------

    def execute(self, source: str, timeout: float, *, silent: bool = False) -> CellRun:
        run = CellRun()
        started = time.monotonic()
        if not self.alive():
            run.status = "died"
            return run
        try:
            self._send(b"C", json.dumps({"source": source, "silent": silent}).encode())
            kind, payload = self._receive(started + timeout, RESULT_LIMIT_BYTES)
            if kind != b"C":
                raise ProtocolError(kind)
            if payload is None:
                run.truncated = True
            else:
                _read_result(json.loads(payload), run)
        except CellTimeout:
            run.status = "timeout"
            if not silent:
                run.outputs.append(new_output(
                    "error", ename="TimeoutError", evalue=f"stopped by the grader after {timeout:.0f} s",
                    traceback=[f"TimeoutError: this cell ran longer than {timeout:.0f} s and was stopped"]))
            self._recover()
        except KernelDied:
            run.status = "died"
        except (ProtocolError, ValueError, TypeError, KeyError, AttributeError):
            run.status = "died"
            self.in_doubt = True
            self.kill()
        if run.truncated:
            run.outputs.append(new_output(
                "stream", name="stdout", text=f"\n[output cut by the grader after {OUTPUT_LIMIT_BYTES:,} bytes]\n"))
        run.seconds = time.monotonic() - started
        return run

    def backend(self, cell_sources: list[str], deadline: float) -> "ForkBackend":
        return ForkBackend(self, cell_sources, deadline)


def _read_result(result: dict, run: CellRun) -> None:
    """A child's cell result, rebuilt as nbformat outputs and cut again here (the child is not trusted)."""
    size = 0
    for item in result["outputs"]:
        kind = item["output_type"]
        fields = {key: item[key] for key in _OUTPUT_KEYS[kind] if key in item}
        _check_output(kind, fields)
        output = new_output(kind, **fields)
        size += _output_size(output)
        if size > OUTPUT_LIMIT_BYTES:
            run.truncated = True
            continue
        run.outputs.append(output)
    run.truncated = run.truncated or result.get("truncated") is True
    if result.get("status") == "error":
        run.status = "error"
        run.error_name = str(result.get("error_name", ""))[:200]
        run.error_value = str(result.get("error_value", ""))[:4000]


def _check_output(kind: str, fields: dict) -> None:
    """What nbformat's schema asks of an output, checked here (the child is not trusted; ValueError if not)."""
    text_like = (str, list)
    if kind == "stream" and (fields.get("name") not in ("stdout", "stderr")
                             or not isinstance(fields.get("text", ""), text_like)):
        raise ValueError("bad stream output")
    if kind in ("display_data", "execute_result"):
        data, metadata = fields.get("data", {}), fields.get("metadata", {})
        if type(data) is not dict or type(metadata) is not dict or not all(type(k) is str for k in data):
            raise ValueError("bad display output")
        count = fields.get("execution_count")
        if kind == "execute_result" and not (count is None or type(count) is int):
            raise ValueError("bad execution count")
    if kind == "error" and not (type(fields.get("ename", "")) is str and type(fields.get("evalue", "")) is str
                                and type(fields.get("traceback", [])) is list
                                and all(type(line) is str for line in fields.get("traceback", []))):
        raise ValueError("bad error output")


def _output_size(output) -> int:
    if output.get("output_type") == "stream":
        return len(output.get("text", ""))
    if output.get("output_type") == "error":
        return sum(len(str(line)) for line in output.get("traceback", []))
    return sum(len(str(value)) for value in output.get("data", {}).values())


class ForkBackend:
    """A test's requests to a forked child: ``wire.dumps`` frames, replies read with ``weights_only``.

    The same contract as :class:`dlcourse.bridge.backends.KernelBackend`:
    ``CellTimeout`` past the deadline (``timed_out`` set), ``KernelDied``
    when the child is gone, an error reply when the reply is too large or
    unreadable.
    """

    def __init__(self, session: ForkSession, cell_sources: list[str], deadline: float):
        from ..bridge import wire  # here, not at the top: ``dlcourse grade`` itself imports this module, not torch

        self.wire = wire
        self.session = session
        self._cell_sources = cell_sources
        self.deadline = deadline
        self.timed_out = False
        self.requests, self.request_seconds = 0, 0.0  # for the profile (bench/profile_grading.py)

    def cell_sources(self) -> list[str]:
        return list(self._cell_sources)

    def request(self, request: dict) -> dict:
        started = time.monotonic()
        try:
            return self._request(request)
        finally:
            self.requests += 1
            self.request_seconds += time.monotonic() - started

    def _request(self, request: dict) -> dict:
        if self.deadline - time.monotonic() <= 0:
            self.timed_out = True
            raise CellTimeout("the test ran out of time")
        if self.session.dead:  # a child that died since shows as the socket's end (no /proc read per request)
            raise KernelDied("the kernel died while a test ran your code")
        self.session._send(b"W", self.wire.dumps_request(request))
        try:
            kind, payload = self.session._receive(self.deadline, REPLY_LIMIT_BYTES)
        except CellTimeout:
            self.timed_out = True
            self.session._recover()
            raise CellTimeout("your code did not finish in time") from None
        except KernelDied:
            raise KernelDied("the kernel died while a test ran your code") from None
        if kind != b"W":
            self.session.in_doubt = True
            self.session.kill()
            raise KernelDied("the notebook's process broke the protocol")
        if payload is None:
            return reply_too_large()
        try:
            reply = self.wire.loads(payload)
        except Exception as error:  # a forged or broken reply
            return unreadable_reply(error)
        if isinstance(reply, dict) and isinstance(reply.get("ok"), bool):
            return reply
        return no_reply("the notebook's process did not answer the test")


def _recv_exact(sock: socket.socket, size: int, deadline: float) -> bytes:
    chunks, left = [], size
    while left:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise CellTimeout("no answer in time")
        ready, _, _ = select.select([sock], [], [], remaining)
        if not ready:
            continue
        try:
            chunk = sock.recv(min(left, 1 << 20))
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise EOFError("closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _tar(workdir: Path) -> bytes:
    """The submission's copy as a tar archive (regular files and folders only)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path in sorted(workdir.rglob("*")):
            if path.is_symlink() or not (path.is_file() or path.is_dir()):
                continue
            archive.add(path, arcname=str(path.relative_to(workdir)), recursive=False)
    return buffer.getvalue()
