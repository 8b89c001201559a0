"""What every grading worker imports, once, in the fork server that the workers are forked from.

``default_executor`` forks its workers from a ``multiprocessing`` fork server
that has imported this module: torch, matplotlib (Agg) and the grading code,
so a worker starts in milliseconds instead of importing torch for seconds.
The fork server is a new process (exec'd, not forked from ``dlcourse grade``),
runs no torch op, starts no thread and never reads a master, a test or a
submission, so a worker inherits nothing but these imports.
"""

import atexit
import os

# OpenBLAS (numpy's, imported by torch) starts a thread pool on import unless told one thread, and a
# process with threads must not fork. The workers' torch threads are set in each worker.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import torch  # noqa: E402,F401

from . import run, submission  # noqa: E402,F401


def _leave_at_once(server: int = os.getpid()) -> None:
    """The fork server ends when ``dlcourse grade`` does: at once, without tearing torch down (seconds,
    during which it would still hold the command's stderr open, e.g. a pipe to a log)."""
    if os.getpid() == server:  # not in a worker forked from it (those end through multiprocessing)
        os._exit(0)


atexit.register(_leave_at_once)
