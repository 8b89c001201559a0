"""A Dask worker that grades: ``dlcourse worker SCHEDULER`` (:func:`run_worker`), and what runs on it.

The client (:class:`dlcourse.grading.cluster.ClusterExecutor`) sends each worker a :class:`GraderPlugin`
(the masters, once) and each student's job as data (:class:`JobData`, :func:`pack_folder`); the worker grades
it with :func:`grade_on_worker` and sends the result back as data. When the plugin reaches a worker (at
registration, or when it joins later, e.g. restarted after a crash) it checks the worker's isolation, warms the
fork engine once and grades the reference solutions; only a worker that passes gets the Dask *resource* this
run's jobs ask for. A worker grades unisolated only where it was told to (``$DLCOURSE_WORKER_UNISOLATED``, set
by ``dlcourse worker --no-isolation`` and by ``--cluster local:N`` with the client's own ``--no-isolation``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import socket
import time
from dataclasses import dataclass, replace
from pathlib import Path

from .certificates import security
from .reference import REFERENCE_ID, judge
from .results import GradingOptions, SubmissionResult
from .submission import GradingJob, grade_submission
from ..core.config import WORKER_UNISOLATED, worker_unisolated
from ..sandbox.isolation import isolation_problem
from ..sandbox.scratch import make_dir, sweep

logger = logging.getLogger(__name__)

#: The scheduler's event topic where each job says it started (to tell a job that kills workers from one
#: that was only queued on them).
STARTED_TOPIC = "dlcourse-started"


@dataclass
class JobData:
    """One student's job as data: no path of the client's is needed on the worker."""

    student_id: str
    assignment: str
    files: dict[str, bytes]  # the submission folder's files, relative path -> bytes
    options: GradingOptions
    fingerprint: str
    plugin: str  # the name of the GraderPlugin that holds the masters on the worker


def pack_folder(folder: Path, limit: int | None = None) -> dict[str, bytes]:
    """The folder's files as data, in the order and up to the size that the local copy into the sandbox takes.

    ``limit``: default :data:`dlcourse.grading.run.SUBMISSION_COPY_LIMIT`.
    """
    if limit is None:
        from . import run  # imported here: it brings torch, which the client does not need

        limit = run.SUBMISSION_COPY_LIMIT
    files, total = {}, 0
    folder = Path(folder)
    for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
        if path.is_symlink() or not path.is_file():
            continue
        total += path.stat().st_size
        if total > limit:
            break
        files[str(path.relative_to(folder))] = path.read_bytes()
    return files


def unpack_folder(files: dict[str, bytes], folder: Path) -> Path:
    """Write ``files`` under ``folder``; a name that would leave it is refused."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    root = folder.resolve()
    for relative, data in files.items():
        target = (folder / relative).resolve()
        if root not in target.parents:
            raise ValueError(f"a job's file name leaves its folder: {relative!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return folder


def plugin_name(masters: dict[str, bytes], options: GradingOptions) -> str:
    digest = hashlib.sha256(options.fingerprint().encode() + options.engine.encode())
    for name, data in sorted(masters.items()):
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return f"dlcourse-grader-{digest.hexdigest()[:16]}"


def worker_refusal(options: GradingOptions) -> str | None:
    """Why this machine may not grade with ``options`` (isolation), or None."""
    if options.isolate:
        problem = isolation_problem()
        return f"cannot isolate students' code here: {problem}" if problem else None
    if not worker_unisolated():
        return ("the client asked to grade without isolation, and this worker was not started with "
                "`dlcourse worker --no-isolation`")
    return None


def _local_options(options: GradingOptions) -> GradingOptions:
    """The client's options with this machine's data sets (the sandbox mounts them read-only)."""
    from ..data import data_root

    return replace(options, read_only=[str(data_root())])


def _warm(options: GradingOptions) -> None:
    """Once per worker: matplotlib's backend, torch imported, the fork engine's zygote started."""
    import matplotlib

    matplotlib.use("Agg")
    import torch  # noqa: F401

    if options.engine == "fork":
        from ..sandbox.fork import zygote_for

        zygote_for(options.isolate, options.limits, [Path(p) for p in options.read_only])


try:
    from distributed.diagnostics.plugin import WorkerPlugin as _WorkerPlugin
except ImportError:  # distributed missing: the executor says so when used
    _WorkerPlugin = object


class GraderPlugin(_WorkerPlugin):
    """Makes a Dask worker a grader of one assignment: masters, warm engine, reference first.

    ``accept``: with ``--force``, the reference's failing cells (notebook, grade_id) that the client
    accepted; a worker whose reference fails exactly those (and has no other problem) grades too.
    """

    def __init__(self, name: str, assignment: str, masters: dict[str, bytes], options: GradingOptions,
                 accept: list[tuple[str, str]] | None = None):
        self.name = name
        self.assignment = assignment
        self.masters = masters
        self.options = options
        self.accept = sorted(tuple(f) for f in accept) if accept is not None else None
        self.state: dict = {"ready": False, "reasons": ["not set up yet"]}
        self.folder: Path | None = None
        self._task = None

    async def setup(self, worker):
        # In the background: a worker that joins (or is restarted) must finish starting long before a
        # reference check ends, or its nanny takes it for hung.
        self.state = {"ready": False, "preparing": True, "reasons": ["still checking"]}
        self._task = asyncio.ensure_future(self._check_in_background(worker))

    async def _check_in_background(self, worker):
        try:
            state = await asyncio.get_running_loop().run_in_executor(None, self._prepare)
        except Exception as error:  # a bug of ours: this worker grades nobody, and says why
            state = {"ready": False, "reasons": [f"the check failed: {type(error).__name__}: {error}"],
                     "faults": None}
        state["host"] = socket.gethostname()
        if state["ready"]:
            await worker.set_resources(**{self.name: 1})
        self.state = state  # ready only once the scheduler knows the resource

    def teardown(self, worker):
        if self.folder is not None:
            shutil.rmtree(self.folder.parent, ignore_errors=True)

    def _prepare(self) -> dict:
        refusal = worker_refusal(self.options)
        if refusal:
            return {"ready": False, "reasons": [refusal], "faults": None}
        options = _local_options(self.options)
        sweep()  # the folders of a worker process before this one that was killed (the nanny restarts it)
        self.folder = unpack_folder(self.masters, make_dir("dlcourse-masters-") / "source")
        started = time.monotonic()
        try:
            _warm(options)
        except Exception as error:
            return {"ready": False, "reasons": [f"the fork engine does not start here: {error}"], "faults": None}
        job = GradingJob(REFERENCE_ID, self.assignment, str(self.folder), str(self.folder), options)
        check = judge(grade_submission(job))
        faults = sorted(check.faults)
        ready = check.ok or (self.accept is not None and faults == self.accept and not check.problems)
        return {"ready": ready, "reasons": [] if check.ok else check.lines(), "faults": faults,
                "seconds": time.monotonic() - started}


def _plugin_on_this_worker(name: str) -> GraderPlugin:
    from distributed import get_worker

    plugin = get_worker().plugins.get(name)
    if plugin is None or not plugin.state.get("ready"):
        raise RuntimeError(f"this worker is not ready to grade ({name})")
    return plugin


def _worker_state(name: str, dask_worker=None) -> dict:
    plugin = dask_worker.plugins.get(name)
    return dict(plugin.state) if plugin is not None else {"ready": False, "reasons": ["the plugin never reached it"]}


def _wake_waiting_jobs(dask_scheduler=None) -> int:
    """On the scheduler: send jobs that found no worker to the workers that have their resource now.

    Dask looks again at such (``no-worker``) jobs when a worker joins, not when a worker's resources
    change, which is how a worker becomes ready here (after its reference check, also when it was
    restarted after a crash); the client calls this every :data:`WAKE_INTERVAL` seconds.
    """
    schedule = getattr(dask_scheduler, "bulk_schedule_unrunnable_after_adding_worker", None)
    woken = 0
    for state in list(dask_scheduler.workers.values()) if schedule else []:
        recommendations = schedule(state)
        if recommendations:
            dask_scheduler.transitions(recommendations, stimulus_id=f"dlcourse-ready-{time.time()}")
            woken += len(recommendations)
    return woken


def grade_on_worker(job: JobData) -> SubmissionResult:
    """Runs on a worker: the job's files into a private folder, graded against the plugin's masters."""
    from distributed import get_worker

    worker = get_worker()
    worker.log_event(STARTED_TOPIC, {"key": worker.get_current_task(), "worker": worker.address})
    plugin = _plugin_on_this_worker(job.plugin)
    scratch = make_dir("dlcourse-job-")  # named after this process: swept if a student's code kills it
    try:
        folder = unpack_folder(job.files, scratch / "submitted" / job.student_id / job.assignment)
        grading = GradingJob(job.student_id, job.assignment, str(folder), str(plugin.folder),
                             _local_options(job.options), fingerprint=job.fingerprint)
        return grade_submission(grading)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)




def run_worker(scheduler: str, *, tls: str | Path | None = None, unisolated: bool = False,
               resources: dict[str, float] | None = None, name: str | None = None, log=logger.info) -> int:
    """``dlcourse worker SCHEDULER``: one Dask worker (one job at a time, under a nanny that restarts it)."""
    from distributed import Nanny

    problem = isolation_problem()
    if problem and not unisolated:
        log(f"dlcourse worker: cannot isolate students' code on this machine: {problem}.\n"
            "Install bubblewrap (see docs/cluster.md), or pass --no-isolation to grade only clients that "
            "asked for --no-isolation.")
        return 1
    env = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    if unisolated:
        env[WORKER_UNISOLATED] = "1"
    sec = security(tls)
    address = scheduler if "://" in scheduler else f"{'tls' if sec else 'tcp'}://{scheduler}"

    async def serve() -> None:
        async with Nanny(address, nthreads=1, security=sec, resources=resources or None, name=name, env=env) as nanny:
            log(f"dlcourse worker: joined {address} as {nanny.worker_address}; isolation: "
                f"{'off (--no-isolation)' if problem or unisolated else 'bubblewrap'}")
            await nanny.finished()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        return 0
    except (OSError, TimeoutError) as error:
        log(f"dlcourse worker: cannot reach the scheduler at {address}: {error}")
        return 1
    return 0
