"""Grading on a Dask cluster, the client's side: ``dlcourse grade A --cluster ADDRESS``.

:class:`ClusterExecutor` is a :class:`concurrent.futures.Executor` that
:func:`dlcourse.grading.grade_and_report` uses in place of its local worker
processes. Nothing assumes a shared filesystem:

- a job travels as data (:class:`~dlcourse.grading.cluster_worker.JobData`): the student's files (within
  ``grading.run.SUBMISSION_COPY_LIMIT``, the same rule as the local copy into the sandbox), the options
  and the fingerprint; the masters travel once per worker, in the
  :class:`~dlcourse.grading.cluster_worker.GraderPlugin`;
- a result comes back as data (a :class:`SubmissionResult` with its executed
  notebooks); the client alone stores it, records it in the gradebook and
  writes the reports, exactly as in local grading (``grade_assignment``).

What runs on a worker (the plugin's checks: isolation, a warm fork engine, the reference solutions; the
job itself; ``dlcourse worker``) is :mod:`dlcourse.grading.cluster_worker`; TLS
(``dlcourse cluster-certs``, ``--tls DIR``) is :mod:`dlcourse.grading.certificates`. Only a worker that
passes its checks gets jobs; the client logs which worker is broken and why.

Faults: a worker that dies mid-job has its job rescheduled by Dask; a job
that kills :data:`ALLOWED_FAILURES` + 1 workers is ``crashed`` for that
student (every test 0, not stored under the fingerprint, so a later run tries
again) and the others go on. A scheduler that cannot be reached is a
:class:`~dlcourse.grading.GradingRefused` within :data:`CONNECT_TIMEOUT`
seconds. See ``docs/cluster.md``.
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import os
import threading
import time
import uuid
from pathlib import Path

from . import GradingRefused
from .certificates import CA_FILE, CERT_DAYS, CERT_FILE, KEY_FILE, make_certificates, security  # noqa: F401
from .cluster_worker import (STARTED_TOPIC, GraderPlugin, JobData, _wake_waiting_jobs,  # noqa: F401
                             _worker_state, grade_on_worker, pack_folder, plugin_name, run_worker, unpack_folder,
                             worker_refusal)
from .results import CellGrade, NotebookResult, Status, SubmissionResult
from .submission import GradingJob, grade_submission
from ..core.config import WORKER_UNISOLATED
from ..core.notebook import read_notebook

logger = logging.getLogger(__name__)

# (Above, with noqa: the names that ``dlcourse.grading.cluster`` has always offered, now made in the worker's
# and the certificates' modules: tests, the benchmark and instructors' scripts import them from here.)

#: Seconds to reach the scheduler before giving up with a clear message.
CONNECT_TIMEOUT = 5.0
#: Seconds to wait for a first worker at a scheduler that has none yet (a batch queue may be slow).
WORKER_WAIT = 600.0
#: Seconds between the client's nudges of jobs waiting for a ready worker (:func:`_wake_waiting_jobs`).
WAKE_INTERVAL = 2.0
#: Seconds to wait for a local cluster's workers to stop.
CLOSE_TIMEOUT = 20
#: How many workers a job may kill and be retried (Dask's ``distributed.scheduler.allowed-failures``; the
#: scheduler's own setting where it is not started by ``--cluster local:N``).
ALLOWED_FAILURES = 2
#: A job that Dask gave up on (its workers died) but that never started that often was only queued on
#: workers another job killed: it is submitted again, at most this many times.
RESUBMITS = 5


def crashed_result(job: GradingJob, message: str) -> SubmissionResult:
    """Every notebook ``crashed`` with every test at 0; no fingerprint, so a later run grades it again."""
    from .run import empty_grades

    notebooks = []
    for master in sorted(Path(job.master_dir).glob("*.ipynb")):
        cells: list[CellGrade] = list(empty_grades(read_notebook(master), master.stem).values())
        for cell in cells:
            if cell.kind == "test":
                cell.message = message
        notebooks.append(NotebookResult(master.stem, Status.CRASHED, cells, message=message))
    return SubmissionResult(job.student_id, job.assignment, Status.CRASHED, notebooks, warnings=[message])



class ClusterExecutor(concurrent.futures.Executor):
    """``submit(grade_submission, job)`` on a Dask cluster, as data; a ``concurrent.futures.Future`` back.

    ``address``: a scheduler (``tcp://host:8786``, ``tls://...``) or ``local:N`` (a LocalCluster of N
    worker processes on this machine, loopback only; ``unisolated``: they may grade without isolation, as the
    client's ``--no-isolation`` asks). ``remote``: what runs on the worker (default
    :func:`grade_on_worker`; the benchmark passes a stand-in, then ``prepare=False`` skips the plugin).
    """

    def __init__(self, address: str, *, tls: str | Path | None = None, force: bool = False, log=logger.info,
                 allowed_failures: int = ALLOWED_FAILURES, remote=None, prepare: bool = True,
                 worker_wait: float = WORKER_WAIT, unisolated: bool = False):
        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError as error:
            raise GradingRefused(f"--cluster needs Dask distributed: pip install distributed ({error})") from error
        self.log = log
        self.force = force
        self.unisolated = unisolated
        self.remote = remote or grade_on_worker
        self.prepare = prepare
        self.cluster = None
        self._security = security(tls)
        self._plugins: dict[tuple, str] = {}
        self._pending: dict[str, object] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._waker: threading.Thread | None = None
        address = str(address).strip()
        if address.startswith("local:"):
            try:
                count = int(address.split(":", 1)[1])
            except ValueError:
                raise GradingRefused(f"--cluster {address}: local:N needs a number of workers") from None
            with dask.config.set({"distributed.scheduler.allowed-failures": allowed_failures}):
                self.cluster = LocalCluster(n_workers=count, threads_per_worker=1, processes=True,
                                            host="127.0.0.1", dashboard_address="127.0.0.1:0",
                                            protocol="tls" if self._security else "tcp",
                                            security=self._security, silence_logs=40,
                                            env=self._local_env())
            target = self.cluster
        else:
            target = address if "://" in address else f"tcp://{address}"
        try:
            self.client = Client(target, timeout=CONNECT_TIMEOUT, security=self._security, set_as_default=False)
        except Exception as error:  # OSError, TimeoutError; TLS settings that do not fit the address
            self._close_cluster()
            raise GradingRefused(f"cannot reach the Dask scheduler at {address} within {CONNECT_TIMEOUT:g} s "
                                 f"({type(error).__name__}: {error}); is `dask scheduler` running there, is the "
                                 "address right, and does it need --tls?") from error
        self.address = self.client.scheduler.address
        link = self._dashboard()
        log(f"cluster: scheduler {self.address}; dashboard: {link}")
        if not self.client.scheduler_info()["workers"]:
            log(f"cluster: no worker yet; waiting up to {worker_wait:g} s for one (`dlcourse worker {self.address}`)")
            try:
                self.client.wait_for_workers(1, timeout=worker_wait)
            except (TimeoutError, OSError) as error:
                self.shutdown()
                raise GradingRefused(f"no worker joined the scheduler at {self.address} within {worker_wait:g} s"
                                     ) from error

    def _local_env(self) -> dict[str, str]:
        env = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        if self.unisolated:
            env[WORKER_UNISOLATED] = "1"  # this machine, and the instructor said so (--no-isolation)
        return env

    def _dashboard(self) -> str:
        services = self.client.scheduler_info().get("services", {})
        if "dashboard" not in services:
            return "not running (the dashboard needs bokeh: pip install bokeh)"
        return self.client.dashboard_link

    # -- the plugin: masters, warm engine, reference first, per worker ----

    def _plugin_for(self, job: GradingJob) -> str:
        key = (job.master_dir, job.options.fingerprint(), job.options.engine)
        with self._lock:
            if key in self._plugins:
                return self._plugins[key]
            masters = {name: data for name, data in pack_folder(Path(job.master_dir), limit=2**62).items()}
            name = plugin_name(masters, job.options)
            plugin = GraderPlugin(name, job.assignment, masters, job.options)
            self.log(f"cluster: {len(self.client.scheduler_info()['workers'])} worker(s) check isolation, warm up "
                     f"and grade the reference solutions of {job.assignment} first ...")
            self.client.register_plugin(plugin, name=name)
            states = self.states(name)
            ready = [w for w, s in states.items() if s.get("ready")]
            if not ready and self.force:
                graded = [tuple(map(tuple, s["faults"])) for s in states.values() if s.get("faults") is not None]
                if graded:
                    accept = collections.Counter(graded).most_common(1)[0][0]
                    self.log(f"cluster: --force: the reference fails {len(accept)} cell(s) on most workers; "
                             "those workers grade, with these cells marked as grader faults")
                    plugin = GraderPlugin(name, job.assignment, masters, job.options, accept=list(accept))
                    self.client.register_plugin(plugin, name=name)
                    states = self.states(name)
                    ready = [w for w, s in states.items() if s.get("ready")]
            for worker, state in sorted(states.items()):
                if not state.get("ready"):
                    self.log(f"cluster: worker {worker} ({state.get('host', '?')}) is broken and gets no job:")
                    for line in state.get("reasons", []):
                        self.log(f"    {line}")
            if not ready:
                raise GradingRefused(
                    f"no worker of the cluster at {self.address} can grade {job.assignment}: each is named above "
                    "with its reason (isolation, or the reference solutions do not get full marks there)")
            self.log(f"cluster: {len(ready)} of {len(states)} worker(s) ready to grade")
            self._plugins[key] = name
            return name

    def states(self, name: str, poll: float = 0.5) -> dict[str, dict]:
        """Each worker's plugin state once its check ended: ready, or why not (isolation, the reference)."""
        while True:
            states = self.client.run(_worker_state, name)
            if states and not any(state.get("preparing") for state in states.values()):
                return states
            time.sleep(poll)

    # -- the Executor interface ------------------------------------------

    def submit(self, fn, /, *args, **kwargs):
        if fn is not grade_submission or len(args) != 1 or kwargs:
            raise TypeError("ClusterExecutor runs grade_submission(job) only")
        job: GradingJob = args[0]
        name = self._plugin_for(job) if self.prepare else ""
        if name and self._waker is None:
            self._waker = threading.Thread(target=self._wake, name="dlcourse-cluster-wake", daemon=True)
            self._waker.start()
        data = JobData(job.student_id, job.assignment, pack_folder(Path(job.submission_dir)), job.options,
                       job.fingerprint, name)
        future = concurrent.futures.Future()
        self._send(job, data, future, 0)
        return future

    def _send(self, job: GradingJob, data: JobData, future: concurrent.futures.Future, resubmits: int) -> None:
        key = f"grade-{job.student_id}-{uuid.uuid4().hex[:12]}"
        remote = self.client.submit(self.remote, data, key=key, pure=False,
                                    resources={data.plugin: 1} if data.plugin else None)
        with self._lock:
            self._pending[key] = remote
        remote.add_done_callback(lambda done: self._arrived(done, future, job, data, key, resubmits))

    def _wake(self) -> None:
        while not self._stopped.wait(WAKE_INTERVAL):
            client = self.client
            if client is None:
                return
            with self._lock:
                waiting = bool(self._pending)
            if waiting:
                try:
                    client.run_on_scheduler(_wake_waiting_jobs)
                except Exception:  # the scheduler is going away; the jobs' own futures say so
                    pass

    def starts(self, key: str) -> int:
        """How often the job ``key`` started on a worker (Dask retries it under the same key)."""
        return sum(1 for _, msg in self.client.get_events(STARTED_TOPIC) if msg.get("key") == key)

    def _arrived(self, remote, future: concurrent.futures.Future, job: GradingJob, data: JobData, key: str,
                 resubmits: int) -> None:
        from distributed.scheduler import KilledWorker

        try:
            if remote.status == "finished":
                future.set_result(remote.result())
            elif remote.status == "cancelled":
                future.cancel() or future.set_exception(concurrent.futures.CancelledError())
            else:
                error = remote.exception()
                if isinstance(error, KilledWorker):
                    started = self.starts(key)
                    if started <= 1 and resubmits < RESUBMITS and self.client is not None:
                        # it waited on workers that another job killed: not its fault
                        self.log(f"cluster: {job.student_id}: workers died under it, but it started only "
                                 f"{started} time(s); submitted again")
                        self._send(job, data, future, resubmits + 1)
                        return
                    self.log(f"cluster: {job.student_id}: a worker died each time it was graded ({started} "
                             "times); recorded as crashed")
                    future.set_result(crashed_result(
                        job, f"grading this submission ended the grading machine's worker process {started} times; "
                             "it was not graded (ask your instructor)"))
                else:
                    future.set_exception(error)
        except BaseException as error:  # the result could not be fetched
            if not future.done():
                future.set_exception(error)
        finally:
            with self._lock:
                self._pending.pop(key, None)  # the result now lives in the client's future only

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._stopped.set()
        with self._lock:
            pending = list(self._pending.values())
            self._pending.clear()
        if cancel_futures and pending and getattr(self, "client", None) is not None:
            try:
                self.client.cancel(pending)
            except Exception:
                pass
        if getattr(self, "client", None) is not None:
            self.client.close()
            self.client = None
        self._close_cluster()

    def _close_cluster(self) -> None:
        if self.cluster is not None:
            cluster, self.cluster = self.cluster, None
            try:
                cluster.close(timeout=CLOSE_TIMEOUT)  # a worker restarting mid-check is not waited for long
            except Exception as error:  # its processes end with this one (daemonic); the grades are stored
                self.log(f"cluster: the local cluster did not close within {CLOSE_TIMEOUT} s ({error})")
