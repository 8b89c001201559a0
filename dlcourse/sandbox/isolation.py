"""Where a student's code runs while it is graded: a bubblewrap sandbox.

The kernel of each graded notebook starts inside ``bwrap`` (Debian package
``bubblewrap``) with fresh namespaces: no network, its own process tree, and a
file system that holds only the operating system, Python and its packages,
the ``dlcourse`` package, the data sets (read-only) and a private copy of the
submission (read-write). ``source/``, the gradebook, other students'
submissions and the rest of the course are simply not there.

Limits: memory and the number of processes by a cgroup of the sandbox's own
where this machine lets us make one (v1 or v2), CPU seconds and file size by
rlimits. The kernel talks to the grader over Unix sockets (ZeroMQ IPC) in a
directory both sides see, since the sandbox has its own loopback.

``python -m dlcourse.sandbox.isolation limit ... -- CMD`` is the small launcher that
joins the cgroup, sets the rlimits and runs ``CMD`` until it ends or the
grader dies.

The sandbox, its cgroups and its launcher are one security boundary,
kept in one file (about 400 lines) so that a reviewer reads every
isolation property in one place (see ``docs/threat-model.md``).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from jupyter_client import KernelManager

from .scratch import make_dir

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # dlcourse/
#: An empty cgroup of ours older than this was left by a killed run.
STALE_GROUP_SECONDS = 3600


@dataclass
class Limits:
    memory_bytes: int = 3 * 2**30
    cpu_seconds: int = 900
    processes: int = 128
    file_bytes: int = 256 * 2**20


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def isolation_problem() -> str | None:
    """Why isolation cannot be used here, or None when it can."""
    if sys.platform != "linux":
        return "isolation needs Linux namespaces (bubblewrap); this is not Linux"
    if bwrap_path() is None:
        return "bubblewrap is not installed: install the Debian package 'bubblewrap' (apt-get install bubblewrap)"
    return None


# --------------------------------------------------------------------------
# cgroups: memory and process limits that hold for the whole sandbox.


def _cgroup_roots() -> dict[str, Path] | None:
    """Writable cgroup hierarchies for memory and pids, v1 or v2, or None."""
    base = Path("/sys/fs/cgroup")
    if (base / "cgroup.controllers").exists():  # v2: one unified hierarchy
        controllers = (base / "cgroup.controllers").read_text().split()
        if {"memory", "pids"} <= set(controllers) and os.access(base, os.W_OK):
            return {"v2": base}
        return None
    roots = {name: base / name for name in ("memory", "pids")}
    if all(root.is_dir() and os.access(root, os.W_OK) for root in roots.values()):
        return roots
    return None


class CGroup:
    """A cgroup for one sandbox; ``join`` moves the calling process into it."""

    def __init__(self, name: str, limits: Limits):
        self.name = name
        self.roots = _cgroup_roots()
        self.limits = limits

    @property
    def available(self) -> bool:
        return self.roots is not None

    def _dirs(self) -> list[Path]:
        return [root / f"dlcourse-{self.name}" for root in (self.roots or {}).values()]

    def create(self) -> None:
        if not self.roots:
            return
        self._sweep_stale()
        if "v2" in self.roots:
            group = self.roots["v2"] / f"dlcourse-{self.name}"
            group.mkdir(exist_ok=True)
            (group / "memory.max").write_text(str(self.limits.memory_bytes))
            (group / "memory.swap.max").write_text("0") if (group / "memory.swap.max").exists() else None
            (group / "pids.max").write_text(str(self.limits.processes))
            return
        memory = self.roots["memory"] / f"dlcourse-{self.name}"
        pids = self.roots["pids"] / f"dlcourse-{self.name}"
        memory.mkdir(exist_ok=True)
        pids.mkdir(exist_ok=True)
        (memory / "memory.limit_in_bytes").write_text(str(self.limits.memory_bytes))
        swap = memory / "memory.memsw.limit_in_bytes"
        if swap.exists():
            try:
                swap.write_text(str(self.limits.memory_bytes))
            except OSError:
                pass
        (pids / "pids.max").write_text(str(self.limits.processes))

    def _sweep_stale(self) -> None:
        """Remove empty groups left by a grader that was killed (SIGKILL) long ago."""
        import time

        for root in self.roots.values():
            for group in root.glob("dlcourse-*"):
                try:
                    if time.time() - group.stat().st_mtime < STALE_GROUP_SECONDS:
                        continue
                    if (group / "cgroup.procs").read_text().strip():
                        continue
                    group.rmdir()
                except OSError:
                    pass

    def join(self, pid: int) -> None:
        for group in self._dirs():
            (group / "cgroup.procs").write_text(str(pid))

    def pids(self) -> list[int]:
        found: set[int] = set()
        for group in self._dirs():
            try:
                found.update(int(p) for p in (group / "cgroup.procs").read_text().split())
            except OSError:
                pass
        return sorted(found)

    def out_of_memory(self) -> bool:
        """Whether the out-of-memory killer struck inside this group.

        ``memory.failcnt`` (v1) is a fallback for kernels that do not count OOM
        kills only: it also counts page-cache reclaim at the limit, which a
        notebook reading big files reaches without running out of memory.
        """
        counted = False
        for group in self._dirs():
            for name in ("memory.events", "memory.oom_control"):
                try:
                    text = (group / name).read_text()
                except OSError:
                    continue
                for line in text.splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill" and value.strip().isdigit():
                        counted = True
                        if int(value) > 0:
                            return True
        if counted:
            return False
        for group in self._dirs():
            try:
                if (group / "memory.failcnt").read_text().strip() not in ("", "0"):
                    return True
            except OSError:
                pass
        return False

    def kill_all(self) -> None:
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def remove(self) -> None:
        """Kill what is left and remove the group: it can go once the killed processes have exited, usually
        within a few milliseconds (polled from 1 ms up, 2.5 s at most)."""
        import time

        self.kill_all()
        for group in self._dirs():
            pause, deadline = 0.001, time.monotonic() + 2.5
            while True:
                try:
                    group.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(pause)
                    pause = min(2 * pause, 0.05)


# --------------------------------------------------------------------------
# The sandbox and its kernel manager.


class Sandbox:
    """One bubblewrap sandbox for one graded notebook's kernel."""

    def __init__(self, limits: Limits | None = None, read_only: list[Path] | None = None):
        self.limits = limits or Limits()
        self.read_only = [Path(p) for p in (read_only or []) if Path(p).exists()]
        self.name = uuid.uuid4().hex[:12]
        # Short path: Unix socket names are limited to about 100 bytes.
        self.runtime_dir = make_dir("dlk-", dir="/tmp")
        self.cgroup = CGroup(self.name, self.limits)
        self.cgroup.create()

    def command(self, kernel_cmd: list[str], workdir: Path, keep_fds: tuple[int, ...] = ()) -> list[str]:
        """Wrap ``kernel_cmd`` so that it runs inside the sandbox (with the descriptors ``keep_fds`` open)."""
        bind = ["--ro-bind-try"]
        # ipykernel exits when its parent looks gone (ppid 1), which is always
        # so in a new PID namespace: --die-with-parent does that job instead.
        args = [bwrap_path() or "bwrap", "--unshare-all", "--die-with-parent", "--new-session",
                "--unsetenv", "JPY_PARENT_PID",
                "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/run"]
        for system_dir in ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/etc"):
            args += [*bind, system_dir, system_dir]
        for python_dir in _python_dirs():
            args += ["--ro-bind", str(python_dir), str(python_dir)]
        args += ["--ro-bind", str(PACKAGE_DIR), str(PACKAGE_DIR)]
        for path in self.read_only:
            args += ["--ro-bind", str(path), str(path)]
        args += ["--bind", str(self.runtime_dir), str(self.runtime_dir)]
        args += ["--bind", str(workdir), "/home/student/work", "--chdir", "/home/student/work"]
        launcher = [sys.executable, "-m", "dlcourse.sandbox.isolation", "limit",
                    "--cpu", str(self.limits.cpu_seconds), "--fsize", str(self.limits.file_bytes),
                    "--memory", str(self.limits.memory_bytes), "--cgroup", self.name if self.cgroup.available else "",
                    "--parent", str(os.getpid())] + [f"--keep-fd={fd}" for fd in keep_fds] + ["--"]
        return launcher + args + ["--", *kernel_cmd]

    def environment(self, env: dict[str, str]) -> dict[str, str]:
        keep = {key: value for key, value in env.items()
                if key in ("LANG", "LC_ALL", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "TZ", "PATH")
                or key.startswith(("NBGRADER_", "DLCOURSE_", "OMP_", "MKL_"))}
        keep.update({"HOME": "/tmp", "MPLBACKEND": "Agg", "MPLCONFIGDIR": "/tmp/matplotlib",
                     "JUPYTER_RUNTIME_DIR": str(self.runtime_dir), "JUPYTER_DATA_DIR": "/tmp/jupyter",
                     "IPYTHONDIR": "/tmp/ipython", "PYTHONPATH": str(PACKAGE_DIR.parent),
                     "PYTHONDONTWRITEBYTECODE": "1"})
        return keep

    def kernel_manager(self, workdir: Path) -> KernelManager:
        manager = SandboxedKernelManager(kernel_name="python3", transport="ipc",
                                         ip=str(self.runtime_dir / "k"))
        manager.sandbox = self
        manager.workdir = Path(workdir)
        manager.connection_file = str(self.runtime_dir / "kernel.json")
        return manager

    def out_of_memory(self) -> bool:
        return self.cgroup.out_of_memory()

    def interrupt(self, launcher_pid: int | None) -> None:
        """SIGINT to the kernel process inside (bwrap does not forward it)."""
        pids = self.cgroup.pids() if self.cgroup.available else _descendants(launcher_pid)
        kernels = set()
        for pid in pids:
            try:
                argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(b"ipykernel" in arg for arg in argv0) and not argv0[0].endswith(b"bwrap") \
                    and b"dlcourse.sandbox.isolation" not in argv0:  # not the launcher
                kernels.add(pid)
        # Only the kernel itself: processes it forked look the same, and an
        # interrupt would wake them inside a copy of the kernel's machinery.
        for pid in kernels:
            if _parent(pid) in kernels:
                continue
            try:
                os.kill(pid, signal.SIGINT)
            except OSError:
                pass

    def cleanup(self) -> None:
        self.cgroup.remove()
        shutil.rmtree(self.runtime_dir, ignore_errors=True)


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _descendants(root: int | None) -> list[int]:
    if root is None:
        return []
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


class SandboxedKernelManager(KernelManager):
    sandbox: Sandbox
    workdir: Path

    def format_kernel_cmd(self, extra_arguments=None):
        return self.sandbox.command(super().format_kernel_cmd(extra_arguments), self.workdir)

    def interrupt_kernel(self):
        process = getattr(self.provisioner, "process", None)
        self.sandbox.interrupt(process.pid if process is not None else None)


def _python_dirs() -> list[Path]:
    """The interpreter and packages the kernel needs, and nothing else."""
    dirs = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), Path(sys.prefix)}
    for entry in sys.path:
        path = Path(entry)
        if entry and path.is_dir() and "site-packages" in path.parts:
            dirs.add(path.resolve())
    # Keep the outermost directories only.
    ordered = sorted(dirs, key=lambda p: len(p.parts))
    kept: list[Path] = []
    for path in ordered:
        if not any(path == k or k in path.parents for k in kept):
            kept.append(path)
    return kept


# --------------------------------------------------------------------------
# The launcher: join the cgroup, set rlimits, run the sandbox while the grader lives.


def _limit_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m dlcourse.sandbox.isolation limit")
    parser.add_argument("--cpu", type=int, required=True)
    parser.add_argument("--fsize", type=int, required=True)
    parser.add_argument("--memory", type=int, required=True)
    parser.add_argument("--cgroup", default="")
    parser.add_argument("--parent", type=int, default=0, help="the grader's pid: die with it")
    parser.add_argument("--keep-fd", type=int, action="append", default=[],
                        help="a descriptor the command inherits (all others above 2 are closed)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if args.cgroup:
        CGroup(args.cgroup, Limits()).join(os.getpid())
    else:
        # No cgroup here: the data limit (heap and private anonymous memory) is
        # the fallback for memory. Not RLIMIT_AS: torch and OpenBLAS reserve
        # gigabytes of address space they never use, and fail to import under it.
        resource.setrlimit(resource.RLIMIT_DATA, (args.memory, args.memory))
    resource.setrlimit(resource.RLIMIT_CPU, (args.cpu, args.cpu + 5))
    resource.setrlimit(resource.RLIMIT_FSIZE, (args.fsize, args.fsize))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    sys.exit(_run_watched(command, args.parent or os.getppid(), tuple(args.keep_fd)))


def _run_watched(command: list[str], parent: int, keep_fds: tuple[int, ...] = ()) -> int:
    """Run the sandbox as a child, and kill it as soon as the grader is gone.

    The launcher stays between the grader and bwrap instead of becoming bwrap:
    a parent-death signal does not survive bwrap dropping its privileges, and
    a grader killed with SIGKILL would leave its sandboxes running. The outer
    bwrap is the first process of the sandbox's PID namespace: when it dies,
    every process inside dies with it.
    """
    import subprocess

    if os.getppid() != parent:  # the grader is gone already
        return 1
    signal.signal(signal.SIGINT, lambda *_: None)  # interrupts are for the kernel (reset in the child at exec)
    child = subprocess.Popen(command, pass_fds=keep_fds)
    for name in ("SIGTERM", "SIGHUP"):
        signal.signal(getattr(signal, name), lambda *_: (child.kill(), os._exit(1)))
    while True:
        try:
            return child.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            pass
        if os.getppid() != parent:
            child.kill()
            child.wait()
            return 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["limit"]:
        _limit_main(sys.argv[2:])
    else:
        sys.exit("usage: python -m dlcourse.sandbox.isolation limit --cpu S --fsize B --memory B [--cgroup NAME] -- CMD")
