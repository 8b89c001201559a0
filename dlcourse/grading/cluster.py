"""Grading on a Dask cluster: ``dlcourse grade A --cluster ADDRESS`` and ``dlcourse worker SCHEDULER``.

:class:`ClusterExecutor` is a :class:`concurrent.futures.Executor` that
:func:`dlcourse.grading.grade_and_report` uses in place of its local worker
processes. Nothing assumes a shared filesystem:

- a job travels as data (:class:`JobData`): the student's files (within
  ``grading.run.SUBMISSION_COPY_LIMIT``, the same rule as the
  local copy into the sandbox), the options and the fingerprint; the masters
  travel once per worker, in the :class:`GraderPlugin`;
- a result comes back as data (a :class:`SubmissionResult` with its executed
  notebooks); the client alone stores it, records it in the gradebook and
  writes the reports, exactly as in local grading (``grade_assignment``).

Each worker, when the plugin reaches it (at registration, or when it joins
later, e.g. restarted after a crash), checks its isolation, warms the fork
engine once (torch imported, the zygote started) and grades the reference
solutions (the masters, :func:`~dlcourse.grading.reference.judge`). Only a
worker that passes gets the Dask *resource* that this run's jobs ask for,
so a worker that lacks a data set, a package or bubblewrap never grades a
student; the client prints which worker is broken and why. A worker gives
unisolated grading only where it was told to (``$DLCOURSE_WORKER_UNISOLATED``:
``dlcourse worker --no-isolation``, or ``--cluster local:N`` with the
client's own ``--no-isolation``).

Faults: a worker that dies mid-job has its job rescheduled by Dask; a job
that kills :data:`ALLOWED_FAILURES` + 1 workers is ``crashed`` for that
student (every test 0, not stored under the fingerprint, so a later run tries
again) and the others go on. A scheduler that cannot be reached is a
:class:`~dlcourse.grading.GradingRefused` within :data:`CONNECT_TIMEOUT`
seconds. TLS: :func:`make_certificates` (``dlcourse cluster-certs``) and
:func:`security` (``--tls DIR``). See ``docs/cluster.md``.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

from . import GradingRefused
from .reference import REFERENCE_ID, judge
from .results import CellGrade, GradingOptions, NotebookResult, Status, SubmissionResult
from .submission import GradingJob, grade_submission
from ..sandbox.isolation import isolation_problem
from ..core.notebook import read_notebook
from ..sandbox.scratch import make_dir, sweep

#: ``$DLCOURSE_CLUSTER``: the default of ``dlcourse grade --cluster`` (read by ``cli``).
CLUSTER_ENV = "DLCOURSE_CLUSTER"
#: ``$DLCOURSE_CLUSTER_TLS``: the default of ``--tls DIR`` (the folder ``dlcourse cluster-certs`` wrote).
TLS_ENV = "DLCOURSE_CLUSTER_TLS"
#: Set (to 1) on a worker that may grade without isolation.
UNISOLATED_ENV = "DLCOURSE_WORKER_UNISOLATED"
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
#: The scheduler's event topic where each job says it started (to tell a job that kills workers from one
#: that was only queued on them).
STARTED_TOPIC = "dlcourse-started"
#: The files ``dlcourse cluster-certs`` writes, which ``--tls DIR`` reads.
CA_FILE, CERT_FILE, KEY_FILE = "ca.pem", "node.pem", "node-key.pem"
CERT_DAYS = 365


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
    if os.environ.get(UNISOLATED_ENV) != "1":
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


def security(folder: str | Path | None):
    """Dask's TLS settings from a folder that :func:`make_certificates` wrote (None: no TLS)."""
    if not folder:
        return None
    from distributed.security import Security

    folder = Path(folder)
    missing = [name for name in (CA_FILE, CERT_FILE, KEY_FILE) if not (folder / name).is_file()]
    if missing:
        raise GradingRefused(f"no TLS certificates in {folder} (missing {', '.join(missing)}); "
                             "make them with `dlcourse cluster-certs DIR`")
    ca, cert, key = (str(folder / name) for name in (CA_FILE, CERT_FILE, KEY_FILE))
    return Security(tls_ca_file=ca, tls_client_cert=cert, tls_client_key=key, tls_scheduler_cert=cert,
                    tls_scheduler_key=key, tls_worker_cert=cert, tls_worker_key=key, require_encryption=True)


def make_certificates(folder: Path, days: int = CERT_DAYS, name: str = "dlcourse") -> list[Path]:
    """A private CA and one certificate it signs, for the scheduler, the workers and the client (openssl)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if shutil.which("openssl") is None:
        raise GradingRefused("openssl is not installed (Debian: apt-get install openssl)")
    paths = {n: folder / n for n in (CA_FILE, "ca-key.pem", CERT_FILE, KEY_FILE, "node.csr")}
    old = os.umask(0o077)
    try:
        commands = [
            ["openssl", "req", "-x509", "-newkey", "rsa:3072", "-nodes", "-days", str(days), "-subj",
             f"/CN={name} course CA", "-keyout", paths["ca-key.pem"], "-out", paths[CA_FILE]],
            ["openssl", "req", "-newkey", "rsa:3072", "-nodes", "-subj", f"/CN={name}", "-keyout",
             paths[KEY_FILE], "-out", paths["node.csr"]],
            ["openssl", "x509", "-req", "-in", paths["node.csr"], "-CA", paths[CA_FILE], "-CAkey",
             paths["ca-key.pem"], "-CAcreateserial", "-days", str(days), "-out", paths[CERT_FILE]],
        ]
        for command in commands:
            process = subprocess.run([str(c) for c in command], capture_output=True, text=True)
            if process.returncode != 0:
                raise GradingRefused(f"openssl failed: {process.stderr.strip()[-500:]}")
    finally:
        os.umask(old)
    paths["node.csr"].unlink(missing_ok=True)
    (folder / "ca.srl").unlink(missing_ok=True)
    return [paths[n] for n in (CA_FILE, "ca-key.pem", CERT_FILE, KEY_FILE)]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class ClusterExecutor(concurrent.futures.Executor):
    """``submit(grade_submission, job)`` on a Dask cluster, as data; a ``concurrent.futures.Future`` back.

    ``address``: a scheduler (``tcp://host:8786``, ``tls://...``) or ``local:N`` (a LocalCluster of N
    worker processes on this machine, loopback only; ``unisolated``: they may grade without isolation, as the
    client's ``--no-isolation`` asks). ``remote``: what runs on the worker (default
    :func:`grade_on_worker`; the benchmark passes a stand-in, then ``prepare=False`` skips the plugin).
    """

    def __init__(self, address: str, *, tls: str | Path | None = None, force: bool = False, log=_stderr,
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
            env[UNISOLATED_ENV] = "1"  # this machine, and the instructor said so (--no-isolation)
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


def run_worker(scheduler: str, *, tls: str | Path | None = None, unisolated: bool = False,
               resources: dict[str, float] | None = None, name: str | None = None, log=_stderr) -> int:
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
        env[UNISOLATED_ENV] = "1"
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
