"""The fork engine's zygotes: warm, sandboxed Python processes that fork a child per notebook.

A :class:`Zygote` is a Python process in a bubblewrap sandbox of its own (the
:class:`dlcourse.sandbox.isolation.Sandbox` bind list, with an empty scratch
folder as its work folder) that has imported torch, IPython, matplotlib and
the agent (:mod:`dlcourse.sandbox.child`, the zygote's own side). One
``dlcourse grade`` shares one among its workers (:class:`SharedZygoteHost`,
which each worker reaches with a :class:`SharedZygote`); a worker without one
starts its own. :func:`zygote_for` gives this process's zygote for a set of
options, replacing one left in doubt or after :data:`CHILDREN_PER_ZYGOTE`
children. The sessions that ask a zygote for children are
:mod:`dlcourse.sandbox.fork`.
"""

from __future__ import annotations

import atexit
import json
import multiprocessing.util
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from .child import CHILDREN_ENV, LISTEN_FD_ENV, SHARED_KEY_ENV
from .isolation import Limits, Sandbox
from .kernel import WARM_UP_TIMEOUT
from .scratch import make_dir
from ..bridge.errors import KernelDied
from ..core.config import ZYGOTE_SOCKET, environment

#: A zygote is replaced after this many children, doubt or not.
CHILDREN_PER_ZYGOTE = 50
#: Seconds a child may take from the fork to being ready for its first cell.
CHILD_START_TIMEOUT = 60
#: Seconds a worker waits for the shared zygote to confirm that it retired.
RETIRE_TIMEOUT = 10
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
        read_only = mounted(read_only)
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
    zygote_for(isolate, limits, mounted(read_only))


def mounted(read_only) -> list[Path]:
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


def leave_if_shared(zygote: Zygote) -> None:
    """A child of ``zygote`` left it in doubt: if it is this worker's shared one, no worker forks from it again."""
    if zygote.shared and zygote is _zygote:
        _leave_shared()
