"""The fork engine, the grader's side: a warm zygote per worker, a forked child per notebook.

Starting a Jupyter kernel in a fresh sandbox and importing torch costs about
two seconds per notebook before any student code runs. The fork engine pays
that once per ``dlcourse grade`` (:class:`SharedZygoteHost`, whose workers
connect with a :class:`SharedZygote`), or once per grading worker where
there is no shared zygote: a :class:`Zygote` is a Python process in a
bubblewrap sandbox of its own (the :class:`dlcourse.sandbox.isolation.Sandbox` bind
list, with an empty scratch folder as its work folder) that has imported
torch, IPython, matplotlib and the agent (:mod:`dlcourse.sandbox.child`).
A :class:`ForkSession` (the same methods as
:class:`dlcourse.sandbox.kernel.KernelSession`) asks it for a child per notebook,
moves the child into a cgroup of its own, sends it the submission's files
as a tar archive, runs cells in it and closes it. :class:`ForkBackend`
carries a test's requests as length-prefixed ``wire.dumps`` frames.

A zygote is replaced after a child that left it in doubt (it crashed, timed
out, ran out of memory or broke the protocol) and after
:data:`CHILDREN_PER_ZYGOTE` children. See ``docs/threat-model.md`` for what
holds each isolation property.
"""

from __future__ import annotations

import ast
import atexit
import functools
import io
import json
import multiprocessing.util
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

from .isolation import CGroup, Limits, Sandbox
from .kernel import OUTPUT_LIMIT_BYTES, WARM_UP_TIMEOUT, CellRun
from ..bridge.errors import REPLY_LIMIT_BYTES, CellTimeout, KernelDied, no_reply, reply_too_large, unreadable_reply
from ..core.config import ZYGOTE_SOCKET, environment
from ..core.notebook import is_test_cell, new_output, strip_magics
from .scratch import make_dir, start_time
from .child import CHILDREN_ENV, HEADER, LISTEN_FD_ENV, SHARED_KEY_ENV, ProtocolError

#: A zygote is replaced after this many children, doubt or not.
CHILDREN_PER_ZYGOTE = 50
#: Seconds a child may take from the fork to being ready for its first cell.
CHILD_START_TIMEOUT = 60
#: Seconds a worker waits for the shared zygote to confirm that it retired.
RETIRE_TIMEOUT = 10
#: Seconds an interrupted child has to answer before it is killed (as the kernel engine).
INTERRUPT_GRACE = 10
#: The largest cell result a child may send (JSON of outputs already cut at OUTPUT_LIMIT_BYTES).
RESULT_LIMIT_BYTES = 8 * OUTPUT_LIMIT_BYTES + 2**20
#: The size of each child's private tmpfs file systems (the memory cgroup counts what is in them).
TMPFS_BYTES = 2 * 2**30

_OUTPUT_KEYS = {"stream": ("name", "text"), "display_data": ("data", "metadata"),
                "execute_result": ("data", "metadata", "execution_count"),
                "error": ("ename", "evalue", "traceback")}


class Zygote:
    """One warm, sandboxed Python process that forks a child per notebook."""

    shared = False

    def __init__(self, isolate: bool, limits: Limits, read_only: list[Path], *,
                 listener: socket.socket | None = None):
        self.key = _key(isolate, limits, read_only)
        self.isolate = isolate
        self.limits = limits
        self.children = 0
        self.in_doubt = False
        self.scratch = make_dir("dlz-")  # the zygote's work folder: empty, and stays so
        self.sandbox = Sandbox(limits, read_only=read_only) if isolate else None
        self.control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        command = [sys.executable, "-m", "dlcourse.sandbox.child"]
        env = {k: v for k, v in os.environ.items()
               if k not in (SHARED_SOCKET_ENV, LISTEN_FD_ENV, SHARED_KEY_ENV, CHILDREN_ENV)}
        env.update({"MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1"})
        if listener is not None:  # shared by the workers (SharedZygoteHost), counting all their children
            env.update({LISTEN_FD_ENV: str(listener.fileno()), SHARED_KEY_ENV: repr(self.key),
                        CHILDREN_ENV: str(CHILDREN_PER_ZYGOTE)})
        if self.sandbox is not None:
            env = self.sandbox.environment(env)
            command = self.sandbox.command(command, self.scratch,
                                           () if listener is None else (listener.fileno(),))
        else:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]),
                                                              env.get("PYTHONPATH", "")]))
        # OpenBLAS (numpy's) starts its thread pool on import unless told one thread: the zygote must
        # have none when it forks. Torch's own pool is started lazily and sized in each child.
        env["OPENBLAS_NUM_THREADS"] = "1"
        cwd = str(self.scratch)
        self._log = tempfile.TemporaryFile()
        try:
            self.process = subprocess.Popen(command, stdin=theirs, stdout=subprocess.DEVNULL, stderr=self._log,
                                            env=env, cwd=cwd, start_new_session=True,
                                            pass_fds=() if listener is None else (listener.fileno(),))
        finally:
            theirs.close()
        if listener is not None:
            return  # the owner does not wait: each worker reads the zygote's hello on its own connection
        try:
            hello = self._receive(WARM_UP_TIMEOUT)
        except KernelDied:
            self.close()
            raise
        if not hello.get("ready") or hello.get("threads") != 1:
            self.close()
            raise KernelDied(f"the zygote is not fit to fork: {hello}")

    def _receive(self, timeout: float) -> dict:
        ready, _, _ = select.select([self.control], [], [], timeout)
        message = self.control.recv(1 << 16) if ready else b""
        if not message:
            self._log.seek(0)
            detail = self._log.read()[-1500:].decode(errors="replace")
            raise KernelDied(f"the zygote did not answer\n{detail}")
        return json.loads(message)

    def alive(self) -> bool:
        return self.process.poll() is None

    def fork(self, child_socket: socket.socket, command: dict) -> None:
        self.children += 1
        socket.send_fds(self.control, [json.dumps(command).encode()], [child_socket.fileno()])
        answer = self._receive(CHILD_START_TIMEOUT)
        if not answer.get("ok"):
            self.in_doubt = True
            raise KernelDied(f"the zygote could not fork: {answer.get('error')}")

    def close(self) -> None:
        try:
            self.control.close()
        finally:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait()
            self._log.close()
            if self.sandbox is not None:
                self.sandbox.cleanup()
            try:
                self.scratch.rmdir()
            except OSError:
                pass


class ZygoteRetired(KernelDied):
    """The shared zygote forks no more (it retired, or is gone): this worker starts its own."""


#: Where a worker finds the zygote that ``dlcourse grade`` shares among its workers (:class:`SharedZygoteHost`).
SHARED_SOCKET_ENV = ZYGOTE_SOCKET


class SharedZygote(Zygote):
    """A worker's connection to the zygote its ``dlcourse grade`` shares: the methods of :class:`Zygote`.

    One zygote for all the workers of a command imports torch once instead of once per worker. It counts
    the children of all of them and retires after :data:`CHILDREN_PER_ZYGOTE`, or when a worker's child
    left it in doubt (that worker tells it so); a worker then starts its own :class:`Zygote`, as without one.
    """

    shared = True

    def __init__(self, path: str, key: tuple):
        self.key = key
        self.children = 0
        self.in_doubt = False
        self.retired = False
        self.control = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.control.connect(path)
            hello = self._receive(WARM_UP_TIMEOUT)
        except (OSError, KernelDied) as error:
            self.control.close()
            raise ZygoteRetired(f"no shared zygote at {path}: {error}") from error
        if not hello.get("ready") or hello.get("threads") != 1 or hello.get("key") != repr(key):
            self.control.close()
            raise ZygoteRetired(f"the shared zygote is not for these options or not fit to fork: {hello}")

    def _receive(self, timeout: float) -> dict:
        ready, _, _ = select.select([self.control], [], [], timeout)
        try:
            message = self.control.recv(1 << 16) if ready else b""
        except OSError:
            message = b""
        if not message:
            self.retired = True
            raise ZygoteRetired("the shared zygote did not answer")
        return json.loads(message)

    def alive(self) -> bool:
        return not self.retired and self.control.fileno() >= 0

    def fork(self, child_socket: socket.socket, command: dict) -> None:
        try:
            socket.send_fds(self.control, [json.dumps(command).encode()], [child_socket.fileno()])
        except OSError as error:
            self.retired = True
            raise ZygoteRetired(f"the shared zygote is gone: {error}") from error
        answer = self._receive(CHILD_START_TIMEOUT)
        if answer.get("retired"):
            self.retired = True
            raise ZygoteRetired("the shared zygote retired")
        if not answer.get("ok"):
            self.in_doubt = True
            raise KernelDied(f"the zygote could not fork: {answer.get('error')}")
        self.children += 1

    def close(self) -> None:
        try:
            if self.in_doubt and not self.retired:  # no more children from it, for any worker, once answered
                self.control.send(json.dumps({"retire": True}).encode())
                self._receive(RETIRE_TIMEOUT)
        except (OSError, KernelDied):
            pass
        finally:
            self.control.close()


class SharedZygoteHost:
    """The zygote one ``dlcourse grade`` shares among its local workers, started before them.

    It listens on a socket in a private folder (mode 0700) that its workers connect to
    (:data:`SHARED_SOCKET_ENV` in their environment); no notebook's process can reach it (it is in no
    sandbox's file system, and each child closes the zygote's sockets). It ends with :meth:`close` or
    with this process.
    """

    def __init__(self, isolate: bool, limits: Limits, read_only: list[Path]):
        read_only = _mounted(read_only)
        self.folder = make_dir("dlzs-")
        self.path = str(self.folder / "zygote")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            listener.bind(self.path)
            listener.listen(64)
            self.zygote = Zygote(isolate, limits, read_only, listener=listener)
        except BaseException:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise
        finally:
            listener.close()  # the zygote's copy only: connections are refused once it is gone

    def environment(self) -> dict[str, str]:
        return {SHARED_SOCKET_ENV: self.path}

    def close(self) -> None:
        try:
            self.zygote.close()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


_zygote: Zygote | None = None
_finalizer = None
_shared_refused = False  # this worker met the shared zygote retired, gone or unfit: its own from now on


def _key(isolate: bool, limits: Limits, read_only: list[Path]) -> tuple:
    return (isolate, limits, tuple(str(p) for p in read_only))


def zygote_for(isolate: bool, limits: Limits, read_only: list[Path]) -> Zygote:
    """This process's zygote for these options: the shared one if its command started one (and it still forks),
    else its own, started lazily; replaced when in doubt or old."""
    global _zygote, _shared_refused
    key = _key(isolate, limits, read_only)
    if _zygote is not None and (_zygote.key != key or _zygote.in_doubt or not _zygote.alive()
                                or (not _zygote.shared and _zygote.children >= CHILDREN_PER_ZYGOTE)):
        if _zygote.shared:
            _leave_shared()
        else:
            close_zygote()
    if _zygote is None and not _shared_refused and environment(SHARED_SOCKET_ENV):
        try:
            _zygote = SharedZygote(environment(SHARED_SOCKET_ENV), key)
        except ZygoteRetired:
            _shared_refused = True
    if _zygote is None:
        _zygote = Zygote(isolate, limits, read_only)
        global _finalizer
        if _finalizer is None:  # a pool's worker ends with os._exit, past atexit; these finalizers still run
            _finalizer = multiprocessing.util.Finalize(None, close_zygote, exitpriority=10)
    return _zygote


def warm_zygote(isolate: bool, limits: Limits, read_only: list[Path]) -> None:
    """Start this process's zygote ahead of its first notebook (the key a :class:`ForkSession` will use)."""
    zygote_for(isolate, limits, _mounted(read_only))


def _mounted(read_only) -> list[Path]:
    """The read-only folders a zygote binds: those that exist (part of its key, so warm and real agree)."""
    return [Path(p) for p in read_only if Path(p).exists()]


def _leave_shared() -> None:
    """This worker's zygote from now on is its own; the shared one, in doubt or retired, is told so and left."""
    global _shared_refused
    _shared_refused = True
    close_zygote()


def close_zygote() -> None:
    global _zygote
    if _zygote is not None:
        zygote, _zygote = _zygote, None
        zygote.close()


atexit.register(close_zygote)


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
        self.read_only = _mounted(read_only or [])
        self.cgroup = CGroup(uuid.uuid4().hex[:12], self.limits)
        self.sock: socket.socket | None = None
        self.pid: int | None = None
        self._started_at: str | None = None
        self.dead = True
        self.in_doubt = False
        self.zygote: Zygote | None = None

    # -- life --------------------------------------------------------------

    def start(self) -> None:
        self.zygote = zygote_for(self.isolate, self.limits, self.read_only)
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
            except ZygoteRetired:  # between two notebooks: this worker's own zygote from now on
                self.zygote = zygote_for(self.isolate, self.limits, self.read_only)
                self.zygote.fork(theirs, command)
        finally:
            theirs.close()
        deadline = time.monotonic() + CHILD_START_TIMEOUT
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
            if self.zygote.shared and self.zygote is _zygote:  # at once: no worker forks from it after this
                _leave_shared()

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
