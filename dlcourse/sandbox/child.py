"""The fork engine's student side: a warm zygote, and the child it forks per notebook.

``python -m dlcourse.sandbox.child`` runs inside a bubblewrap sandbox of its
own (see :mod:`dlcourse.sandbox.fork` for the grader's side). It imports torch,
IPython, matplotlib (Agg) and :mod:`dlcourse.bridge.agent` once, runs no torch
operation, starts no thread and never touches CUDA, then waits for commands
on its standard input (a Unix ``SOCK_SEQPACKET`` socket), and, when it is
shared by the workers of one ``dlcourse grade``, on each worker's connection
to the listening socket it was given (:data:`LISTEN_FD_ENV`): each is one JSON
object with one file descriptor attached, a socket to the grader for one
notebook. Nothing secret ever reaches it: it holds no master and no test.

Per notebook it forks a child that

1. dies with the zygote (``PR_SET_PDEATHSIG``), sets its rlimits, and (when
   isolated) unshares fresh user, mount, PID, IPC, network and UTS
   namespaces, then forks once more so that the student's process is PID 1
   of a namespace of its own: every process it starts dies with it, and it
   cannot name the zygote or any sibling;
2. mounts a private tmpfs on the work folder, ``/tmp``, ``/run`` and
   ``/dev/shm``, makes ``/dev`` read-only, and is made non-dumpable;
3. says hello on its socket (the grader reads its PID from the socket's
   credentials and moves it into a cgroup of its own), receives this
   submission's files as a tar archive, and
4. runs the student's cells in an IPython ``InteractiveShell`` and answers
   the tests' requests (``agent.serve``) until the grader closes the socket.

Frames on that socket are a kind byte and a length (:data:`HEADER`), then the
payload: ``C`` a cell (JSON) and its result (JSON), ``W`` a test's request
(``wire.dumps_request``, a pickle from the grader) and its reply (``wire.dumps``
bytes, read by the grader with ``weights_only``), ``T`` the tar archive, ``J`` a short
JSON message. Everything here runs where the student's code runs: nothing
here is trusted by the grader.

Why one module of about 500 lines: it is the whole of what runs on the
student's side of the fork engine's isolation boundary, from the zygote's
imports to the child's namespaces, mounts and frames. Kept in one file, the
code a security review must read is one file, and nothing else of dlcourse is
imported into the sandbox by accident (the bridge's agent and wire only, inside
the child).
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import struct
import sys

from ..core.config import ZYGOTE_CHILDREN, ZYGOTE_KEY, ZYGOTE_LISTEN_FD, environment

#: A frame's header: its kind (one byte) and the payload's length.
HEADER = struct.Struct("!cQ")
WORKDIR = "/home/student/work"
#: The environment of a zygote shared by the workers of one ``dlcourse grade``: the descriptor of the
#: listening socket they connect to, the options it was started for, and after how many children it retires.
LISTEN_FD_ENV, SHARED_KEY_ENV, CHILDREN_ENV = ZYGOTE_LISTEN_FD, ZYGOTE_KEY, ZYGOTE_CHILDREN

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND = 1, 2, 4, 8, 32, 4096
MS_REC, MS_PRIVATE = 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE = 1, 4


class ProtocolError(Exception):
    """The other side sent something that is not a frame of ours."""


def send_frame(sock: socket.socket, kind: bytes, payload: bytes) -> None:
    sock.sendall(HEADER.pack(kind, len(payload)) + payload)  # one write: the reader wakes once


def recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise EOFError("the other side closed the socket")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def recv_frame(sock: socket.socket) -> tuple[bytes, bytes]:
    kind, size = HEADER.unpack(recv_exact(sock, HEADER.size))
    return kind, recv_exact(sock, size)


# --------------------------------------------------------------------------
# The zygote.


def main() -> None:
    """Import everything a notebook needs, then fork a child per command."""
    import ctypes

    import IPython  # noqa: F401
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
    import torch  # noqa: F401
    from IPython.core.interactiveshell import InteractiveShell  # noqa: F401
    from ipykernel.compiler import XCachingCompiler  # noqa: F401

    # What a notebook may import besides: the kernel engine's kernel has these loaded before the first
    # cell (jsonschema, under nbformat, compiles a grammar for seconds on import).
    import jupyter_client  # noqa: F401
    import nbformat  # noqa: F401

    from .. import data, testing  # noqa: F401
    from ..bridge import agent  # noqa: F401

    libc = ctypes.CDLL(None, use_errno=True)
    control = socket.socket(fileno=0)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the children
    threads = len(os.listdir("/proc/self/task"))
    hello = {"ready": True, "threads": threads, "pid": os.getpid(), "key": environment(SHARED_KEY_ENV) or ""}
    control.send(json.dumps(hello).encode())
    listener = None
    listen_fd = environment(LISTEN_FD_ENV) or ""
    if listen_fd.isdigit():  # shared: every grading worker connects here
        listener = socket.socket(fileno=int(listen_fd))
    _serve_forks(libc, control, listener, hello, int(environment(CHILDREN_ENV) or 0))


def _serve_forks(libc, control: socket.socket, listener: socket.socket | None, hello: dict, most: int) -> None:
    """Fork a child per command from ``control`` or from a worker connected to ``listener``.

    A shared zygote (one with a listener) says hello on each new connection; it retires after ``most``
    children (0: never) or when a worker asks: it forks no more (each worker then starts its own), and
    leaves when every connection is closed, so that no child still grading dies with it. It leaves at once
    when ``control`` (its owner, ``dlcourse grade``) closes.
    """
    zygote_pid = os.getpid()
    connections: list[socket.socket] = []
    forked, retired = 0, False
    while True:
        watched = [control, *connections] + ([listener] if listener is not None else [])
        try:
            ready, _, _ = select.select(watched, [], [])
        except KeyboardInterrupt:
            return
        for sock in ready:
            if sock is listener:
                try:
                    connection, _ = listener.accept()
                    connection.send(json.dumps(hello).encode())
                except OSError:
                    continue
                connections.append(connection)
                continue
            try:
                message, fds, _, _ = socket.recv_fds(sock, 1 << 16, 1)
            except OSError:
                message, fds = b"", []
            if not message:
                if sock is control:
                    return  # the grader is gone
                connections.remove(sock)
                sock.close()
                if retired and not connections:
                    return
                continue
            command = json.loads(message)
            if command.get("retire") and not retired:
                retired, listener = True, _closed(listener)
            if retired:
                for fd in fds:
                    os.close(fd)
                answer = {"ok": True} if command.get("retire") else {"ok": False, "error": "the zygote retired"}
                sock.send(json.dumps({**answer, "retired": True}).encode())  # a retire is answered: it holds now
                continue
            _preload(command.get("preload", ()))
            threads = len(os.listdir("/proc/self/task"))
            if threads != 1 or len(fds) != 1:  # never fork with a thread running
                for fd in fds:
                    os.close(fd)
                sock.send(json.dumps({"ok": False, "error": f"{threads} threads, {len(fds)} sockets"}).encode())
                continue
            pid = os.fork()
            if pid == 0:
                try:
                    for inherited in [control, *connections] + ([listener] if listener is not None else []):
                        inherited.close()  # a child reaches no other notebook's grader, and asks for no fork
                    _child(libc, fds[0], command, zygote_pid)
                except BaseException:
                    import traceback

                    traceback.print_exc()  # to the zygote's stderr (the grader's log of it) until fd 2 is closed
                finally:
                    os._exit(70)
            os.close(fds[0])
            forked += 1
            sock.send(json.dumps({"ok": True, "pid": pid}).encode())
            if most and forked >= most:
                retired, listener = True, _closed(listener)


def _closed(listener: socket.socket | None) -> None:
    """A retired zygote accepts no new connection (workers then start their own zygote)."""
    if listener is not None:
        listener.close()


def _preload(names) -> None:
    """Import, here in the zygote, what the grader says the assignment's notebooks will import.

    The list comes from the grader (from the master, never from a student), so a child finds e.g.
    torchvision already imported instead of paying seconds for it. An import that fails is left to
    the child, which then fails as it would in a kernel; one that starts a thread makes the zygote
    refuse to fork (the caller's thread check).
    """
    import importlib

    for name in names:
        if isinstance(name, str) and name not in sys.modules and _MODULE_NAME.fullmatch(name):
            try:
                importlib.import_module(name)
            except Exception:  # noqa: S110 - the child imports it again and reports the error itself
                pass


_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


# --------------------------------------------------------------------------
# The child: isolation.


def _check(result: int, what: str, libc) -> None:
    if result != 0:
        import ctypes

        raise OSError(ctypes.get_errno(), f"{what} failed: {os.strerror(ctypes.get_errno())}")


def _mount_tmpfs(libc, target: str, size: int) -> None:
    _check(libc.mount(b"tmpfs", target.encode(), b"tmpfs", MS_NOSUID | MS_NODEV,
                      f"size={size},mode=1777".encode()), f"mount tmpfs on {target}", libc)


def _isolate(libc, command: dict) -> None:
    """Fresh namespaces for this child (it must then fork: see :func:`_child`)."""
    uid, gid = os.getuid(), os.getgid()
    _check(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWUTS),
           "unshare", libc)
    with open("/proc/self/setgroups", "w") as file:
        file.write("deny")
    with open("/proc/self/uid_map", "w") as file:
        file.write(f"{uid} {uid} 1")
    with open("/proc/self/gid_map", "w") as file:
        file.write(f"{gid} {gid} 1")


def _private_mounts(libc, command: dict) -> None:
    """What this child may write: its own empty file systems, nothing a sibling sees."""
    _check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "making mounts private", libc)
    # bubblewrap's root and /dev are tmpfs file systems the zygote's children share: read-only here.
    for shared in ("/", "/dev"):
        flags = os.statvfs(shared).f_flag & (MS_NOSUID | MS_NODEV | MS_NOEXEC)
        _check(libc.mount(None, shared.encode(), None, MS_REMOUNT | MS_BIND | MS_RDONLY | flags, None),
               f"making {shared} read-only", libc)
    size = int(command["tmpfs_bytes"])
    for target in (WORKDIR, "/tmp", "/run", "/dev/shm"):
        if os.path.isdir(target):
            kept = _keep_mounts_under(target)
            _mount_tmpfs(libc, target, size)
            _restore_mounts(libc, kept)


def _mount_points() -> list[str]:
    """This mount namespace's mount points, in the order they were mounted."""
    points = []
    with open("/proc/self/mountinfo") as file:
        for line in file:
            point = line.split()[4]
            points.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), point))
    return points


def _keep_mounts_under(target: str) -> list[tuple[str, int]]:
    """The sandbox's read-only binds below ``target`` (data sets, Python, the package when they live in
    /tmp), each held by an open descriptor so that it can be bound again above the fresh tmpfs."""
    prefix = target.rstrip("/") + "/"
    below = [p for p in _mount_points() if p.startswith(prefix)]
    tops = [p for p in below if not any(p != q and p.startswith(q.rstrip("/") + "/") for q in below)]
    return [(point, os.open(point, os.O_PATH | os.O_DIRECTORY)) for point in dict.fromkeys(tops)
            if os.path.isdir(point)]


def _restore_mounts(libc, kept: list[tuple[str, int]]) -> None:
    for point, fd in kept:
        try:
            flags = os.fstatvfs(fd).f_flag & (MS_NOSUID | MS_NODEV | MS_NOEXEC)
            os.makedirs(point, exist_ok=True)
            _check(libc.mount(f"/proc/self/fd/{fd}".encode(), point.encode(), None, MS_BIND | MS_REC, None),
                   f"binding {point} again", libc)
            _check(libc.mount(None, point.encode(), None, MS_REMOUNT | MS_BIND | MS_RDONLY | flags, None),
                   f"making {point} read-only", libc)
        finally:
            os.close(fd)


def _child(libc, fd: int, command: dict, zygote_pid: int) -> None:
    import resource

    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != zygote_pid:
        os._exit(71)
    os.setsid()
    resource.setrlimit(resource.RLIMIT_CPU, (command["cpu_seconds"], command["cpu_seconds"] + 5))
    resource.setrlimit(resource.RLIMIT_FSIZE, (command["file_bytes"], command["file_bytes"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if command.get("data_bytes"):  # no cgroup: the data limit stands in for memory
        resource.setrlimit(resource.RLIMIT_DATA, (command["data_bytes"], command["data_bytes"]))
    if command["isolate"]:
        _isolate(libc, command)
        # Not dumpable (nor its child): a process of this new user namespace cannot ptrace or read
        # /proc/PID/{mem,environ,root} of this one, which still sees the zygote's PID namespace.
        libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
        me = os.getpid()
        pid = os.fork()
        if pid:  # stays outside the new PID namespace only to wait for its first process
            os.close(fd)
            _, status = os.waitpid(pid, 0)
            os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() not in (0, me):  # 0: the parent is outside this new PID namespace
            os._exit(71)
        _private_mounts(libc, command)
        libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    sock = socket.socket(fileno=fd)
    _serve(sock, command)


# --------------------------------------------------------------------------
# The child: the student's shell.


class _Capture:
    """The outputs of one cell, cut after ``limit`` bytes as the kernel engine cuts them."""

    def __init__(self, limit: int):
        self.limit = limit
        self.outputs: list[dict] = []
        self.size = 0
        self.truncated = False
        self.error: tuple[str, str] | None = None
        self.enabled = True

    def add(self, output: dict, size: int) -> None:
        if not self.enabled:
            return
        self.size += size
        if self.size > self.limit:
            self.truncated = True
            return
        last = self.outputs[-1] if self.outputs else None
        if output["output_type"] == "stream" and last and last["output_type"] == "stream" \
                and last["name"] == output["name"]:
            last["text"] += output["text"]
        else:
            self.outputs.append(output)


def _make_shell(capture_ref: list):
    import io

    from IPython.core.displayhook import DisplayHook
    from IPython.core.displaypub import DisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell
    from ipykernel.compiler import XCachingCompiler
    from traitlets.config import Config

    class Stream(io.TextIOBase):
        def __init__(self, name):
            self.name = name

        def writable(self):
            return True

        def write(self, text):
            text = str(text)
            capture_ref[0].add({"output_type": "stream", "name": self.name, "text": text}, len(text))
            return len(text)

        def isatty(self):
            return False

    class Hook(DisplayHook):
        def write_output_prompt(self):
            pass

        def write_format_data(self, format_dict, md_dict=None):
            capture_ref[0].add({"output_type": "execute_result", "execution_count": self.prompt_count,
                                "data": format_dict, "metadata": md_dict or {}},
                               sum(len(str(v)) for v in format_dict.values()))

        def finish_displayhook(self):
            pass

    class Publisher(DisplayPublisher):
        def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs):
            capture_ref[0].add({"output_type": "display_data", "data": data, "metadata": metadata or {}},
                               sum(len(str(v)) for v in data.values()))

        def clear_output(self, wait=False):
            pass

    class Shell(InteractiveShell):
        def enable_gui(self, gui=None):  # %matplotlib inline: no event loop to start (as in ipykernel)
            pass

        def _showtraceback(self, etype, evalue, stb):
            stb = [str(line) for line in stb]
            capture_ref[0].add({"output_type": "error", "ename": str(etype.__name__), "evalue": str(evalue),
                                "traceback": stb}, sum(len(line) for line in stb))
            capture_ref[0].error = (str(etype.__name__), str(evalue))

    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    config.InteractiveShell.colors = "Linux"
    sys.stdout, sys.stderr = Stream("stdout"), Stream("stderr")
    shell = Shell.instance(config=config, displayhook_class=Hook, display_pub_class=Publisher,
                           compiler_class=XCachingCompiler)
    shell.system = shell.system_piped
    return shell


def _stale_interrupt() -> None:
    """Forget an interrupt meant for a request that had finished when it came."""
    while signal.SIGINT in signal.sigpending():
        signal.sigwait({signal.SIGINT})


def _user(call):
    """Run ``call`` with interrupts on (they are off everywhere else)."""
    _stale_interrupt()
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        try:
            return call()
        finally:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    except KeyboardInterrupt:
        return KeyboardInterrupt


def _serve(sock: socket.socket, command: dict) -> None:
    import importlib
    import io
    import tarfile

    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.default_int_handler)
    null = os.open(os.devnull, os.O_RDWR)
    for target in (0, 1, 2):
        os.dup2(null, target)
    send_frame(sock, b"J", json.dumps({"hello": True}).encode())
    kind, payload = recv_frame(sock)
    if kind == b"T":
        with tarfile.open(fileobj=io.BytesIO(payload)) as archive:
            archive.extractall(WORKDIR, filter="data")
        os.chdir(WORKDIR)
    elif kind == b"J":
        os.chdir(json.loads(payload)["workdir"])
    else:
        raise ProtocolError(kind)
    del payload
    os.environ.update(command.get("env", {}))
    importlib.invalidate_caches()
    if sys.path[:1] != [os.getcwd()]:
        sys.path.insert(0, os.getcwd())

    import torch

    torch.set_num_threads(int(command["threads"]))
    from ..bridge import agent, wire

    limit = int(command["output_limit"])
    capture_ref = [_Capture(limit)]
    shell = _make_shell(capture_ref)
    send_frame(sock, b"J", json.dumps({"ready": True}).encode())
    while True:
        try:
            kind, payload = recv_frame(sock)
        except (EOFError, OSError):
            os._exit(0)
        if kind == b"C":
            cell = json.loads(payload)
            capture = capture_ref[0] = _Capture(limit)
            silent = bool(cell.get("silent"))
            outcome = _user(lambda: shell.run_cell(cell["source"], store_history=not silent, silent=silent))
            if outcome is KeyboardInterrupt and capture.error is None:
                capture.error = ("KeyboardInterrupt", "")
            capture.enabled = False
            result = {"outputs": capture.outputs, "truncated": capture.truncated,
                      "error_name": capture.error[0] if capture.error else "",
                      "error_value": capture.error[1] if capture.error else "",
                      "status": "error" if capture.error else "ok"}
            send_frame(sock, b"C", json.dumps(result, default=str).encode())
        elif kind == b"W":
            capture_ref[0] = _Capture(0)  # what a request prints is not kept
            capture_ref[0].enabled = False
            with shell.builtin_trap:
                reply = _user(lambda: agent.serve(payload))
            if reply is KeyboardInterrupt:
                reply = wire.dumps({"ok": False, "error_type": "KeyboardInterrupt",
                                    "message": "interrupted by the grader", "traceback": ""})
            send_frame(sock, b"W", reply)
        else:
            os._exit(72)


if __name__ == "__main__":
    main()
