"""The grader's temporary folders, named after the process that made them.

A grader that is killed (SIGKILL, the machine's out-of-memory killer) cannot
remove its folders: sandboxes' runtime folders, zygotes' work folders and the
copies of the submissions it was grading (on a cluster's worker also the
masters and a job's files). Each folder's name carries its maker's PID
namespace, PID and start time (``dlz-4026531836.5120.98765-x1y2``), so the
next ``dlcourse grade`` on the machine, and a cluster's worker as it
prepares, remove the folders of makers that are gone (:func:`sweep`). A
folder whose maker still runs is kept, as is one made in another PID
namespace (its maker cannot be looked up from here) and any folder whose
name does not have this form.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

#: The prefixes of the grader's folders: sandbox runtime, zygote work folder, shared zygote's socket,
#: the copy of one submission; on a cluster's worker, a job's files and the masters.
PREFIXES = ("dlk-", "dlz-", "dlzs-", "dlcourse-work-", "dlcourse-job-", "dlcourse-masters-")
_NAME = re.compile(rf"^(?:{'|'.join(map(re.escape, PREFIXES))})(\d+)\.(\d+)\.(\d+)-[^/]+$")


def _pid_namespace() -> int:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), or None when it is
    gone or a zombie: with the PID, it names one process, whose PID may be reused after it."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else int(fields[19])


def owner_tag(pid: int | None = None) -> str:
    """``namespace.pid.start`` of this process (or ``pid``), as the folders' names carry it."""
    pid = os.getpid() if pid is None else pid
    return f"{_pid_namespace()}.{pid}.{start_time(pid) or 0}"


def make_dir(prefix: str, dir: str | Path | None = None) -> Path:
    """A new private folder (mode 0700) ``<dir>/<prefix><owner tag>-<random>``; ``prefix`` is one of PREFIXES."""
    if prefix not in PREFIXES:
        raise ValueError(f"{prefix!r} is not one of {PREFIXES}")
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{owner_tag()}-", dir=dir))


def maker(path: Path) -> tuple[int, int, int] | None:
    """(PID namespace, PID, start time) of the process that made the folder ``path``; None for another name."""
    match = _NAME.match(Path(path).name)
    return tuple(int(group) for group in match.groups()) if match else None


def stale(path: Path) -> bool:
    """Whether ``path`` is a folder of a grader process that has ended (in this PID namespace)."""
    made_by = maker(path)
    if made_by is None:
        return False
    namespace, pid, start = made_by
    if namespace != _pid_namespace() or not start:
        return False
    return start_time(pid) != start  # gone, or its PID now names another process


def sweep(folders: list[Path] | None = None) -> list[Path]:
    """Remove the stale folders (of this user) in ``folders`` (default: /tmp and the temporary folder).

    Returns the folders removed.
    """
    folders = folders or sorted({Path("/tmp"), Path(tempfile.gettempdir())})
    removed = []
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if not entry.name.startswith(PREFIXES):
                continue
            try:
                if not entry.is_dir(follow_symlinks=False) or entry.stat(follow_symlinks=False).st_uid != os.getuid():
                    continue
            except OSError:
                continue
            path = Path(entry.path)
            if stale(path):
                shutil.rmtree(path, ignore_errors=True)
                if not path.exists():
                    removed.append(path)
    return removed
