"""Grading on arrival: the engine ``dlcourse grade`` uses, fed from the database's queue.

One dispatcher thread claims queued hand-ins (:meth:`Store.claim`), up to
two per worker, and hands each to the same warm worker pool as ``dlcourse
grade`` (fork engine, one shared zygote; or a :class:`ClusterExecutor`). The
reference solutions of each assignment are checked once, at start.

Each hand-in is unpacked into ``work/<id>/submission/`` exactly as ``dlcourse
collect`` would write it (its notebooks and PDFs and ``.dlcourse-collected.json``),
so that the result's fingerprint is the one ``dlcourse grade`` computes once the
folder is published to ``submitted/<representative>/<assignment>/``: a later
``dlcourse grade`` reuses the result instead of grading again
(:mod:`dlcourse.serve.publish`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import threading
import time
import uuid
from concurrent.futures import Executor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import nbformat

from ..core.course import CourseLayout
from ..core.notebook import atomic_write
from ..grading import (
    GradingJob,
    GradingOptions,
    GradingRefused,
    check_reference,
    default_executor,
    fingerprint,
    grade_submission,
    mark_grader_faults,
    warm_workers,
)
from ..grading.reference import ReferenceCheck, faults_digest
from ..grading.results import SubmissionResult
from ..lms.collect import COLLECTED_NAME
from ..sandbox.isolation import isolation_problem
from .files import FileStore, handin_files
from .store import Handin, Store

log = logging.getLogger(__name__)
#: A claim's lease: renewed every :data:`RENEW_SECONDS` while its process lives; a killed process's claims are
#: graded again by another process (or this one restarted) at most this long after it died.
LEASE_SECONDS = 60.0
RENEW_SECONDS = 10.0


def submission_folder(work: Path, handin_id: str) -> Path:
    return Path(work) / handin_id / "submission"


def graded_folder(work: Path, handin_id: str) -> Path:
    return Path(work) / handin_id / "graded"


def unpack(handin: Handin, files: FileStore, work: Path) -> Path:
    """``work/<id>/submission/``: the hand-in's notebooks and PDFs and its collect stamp (idempotent)."""
    folder = submission_folder(work, handin.id)
    if folder.is_dir():
        return folder
    partial = folder.with_name("submission.part")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for name, content in sorted(handin_files(handin.filename, files.get(handin.sha256)).items()):
        (partial / name).write_bytes(content)
    stamp = {"source": "serve", "origin": handin.id,
             "handed_in": dt.datetime.fromtimestamp(handin.received).astimezone().isoformat(timespec="seconds"),
             "names": [], "claimed": handin.members, "problems": handin.problems, "marked_late": handin.late,
             "members": handin.members}
    (partial / COLLECTED_NAME).write_text(json.dumps(stamp, indent=1))
    partial.rename(folder)
    return folder


class Grader:
    """Grades each queued hand-in as soon as a worker is free; ``on_finished(handin_id)`` after each."""

    def __init__(self, layout: CourseLayout, store: Store, files: FileStore, work: Path, options: GradingOptions,
                 *, workers: int, assignments: list[str], executor: Executor | None = None,
                 on_finished=None, lease_seconds: float | None = None):
        self.layout, self.store, self.files, self.work = layout, store, files, Path(work)
        self.options, self.workers, self.assignments = options, workers, assignments
        self.on_finished = on_finished or (lambda handin_id: None)
        self.owner = uuid.uuid4().hex
        self.lease_seconds = lease_seconds or LEASE_SECONDS
        self.references: dict[str, ReferenceCheck] = {}
        self._executor, self._own_executor = executor, executor is None
        self._shared = None
        # one job waiting in the pool per worker: a worker that finishes starts the next at once, while this
        # process records the result and claims another (with one job per worker they sat idle meanwhile)
        self._slots = threading.Semaphore(2 * workers)
        # results are recorded here, not in the future's done callback: that runs on the process pool's own
        # management thread, which then neither collects the other worker's result nor hands out queued jobs
        # until the writes, the commit and the publishing are over (measured: a 60 hand-in burst ran at a
        # quarter of `dlcourse grade`'s throughput, one result recorded at a time)
        self._recorders = ThreadPoolExecutor(max(1, workers), thread_name_prefix="dlcourse-serve-record")
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- start and stop -----------------------------------------------------

    def start(self) -> None:
        """Warm the workers, check each assignment's reference, then grade what is queued and what comes."""
        if self.options.isolate and isolation_problem():
            raise GradingRefused(f"{isolation_problem()}; to grade without isolation pass --no-isolation")
        if self._own_executor:
            self._start_pool()
        for assignment in self.assignments:
            check = check_reference(self.layout, assignment, self.options, self._executor, log=log.info)
            if not check.ok:
                log.warning("the reference solutions of %s lose points here; those cells are 'not graded: grader "
                            "fault' for every hand-in:\n%s", assignment, check.refusal())
            self.references[assignment] = check
        self._thread = threading.Thread(target=self._dispatch, name="dlcourse-serve-grader", daemon=True)
        self._thread.start()

    def _start_pool(self) -> None:
        from ..grading import _shared_zygote

        self._shared = _shared_zygote(self.options)
        self._executor = default_executor(self.workers, self._shared.environment() if self._shared else None)
        warm_workers(self._executor, self.workers, self.options)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._own_executor and self._executor is not None:
            self._executor.shutdown(cancel_futures=True)
        self._recorders.shutdown(wait=True)
        if self._shared is not None:
            self._shared.close()

    def notify(self) -> None:
        """A hand-in was queued: look now rather than at the next poll."""
        self._wake.set()

    # -- the queue ----------------------------------------------------------

    def _dispatch(self) -> None:
        renewed = time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() - renewed > RENEW_SECONDS:
                self._keep_claims()
                renewed = time.monotonic()
            if not self._slots.acquire(timeout=0.5):
                continue
            try:
                handin = self.store.claim(self.owner, self.lease_seconds)
            except Exception as error:  # noqa: BLE001 - a busy or unreachable database: try again shortly
                log.warning("claiming a hand-in failed: %s", error)
                handin = None
            if handin is None:
                self._slots.release()
                self._wake.wait(timeout=0.5)
                self._wake.clear()
                continue
            self._submit(handin)

    def _keep_claims(self) -> None:
        """Renew this process's leases, and queue again the claims of a process that died."""
        try:
            self.store.renew(self.owner, self.lease_seconds)
            if self.store.requeue():
                self._wake.set()
        except Exception as error:  # noqa: BLE001 - retried at the next renewal
            log.warning("renewing the claims failed: %s", error)

    def _submit(self, handin: Handin) -> None:
        try:
            folder = unpack(handin, self.files, self.work)
            job = GradingJob(handin.representative, handin.assignment, str(folder),
                             str(self.layout.require_assignment(handin.assignment)), self.options)
            job.fingerprint = fingerprint(job) + faults_digest(self.references.get(handin.assignment))
            future = self._executor.submit(grade_submission, job)
        except Exception as error:  # unreadable stored file, a broken pool: this hand-in fails, with why
            log.exception("could not start grading hand-in %s", handin.id)
            self._record(handin, None, f"grading could not start: {type(error).__name__}: {error}")
            return
        future.add_done_callback(lambda done: self._hand_over(handin, done))

    def _hand_over(self, handin: Handin, future) -> None:
        try:
            self._recorders.submit(self._collect, handin, future)
        except RuntimeError:  # stopping: the claim stays, and is graded again at the next start
            self._slots.release()

    def _collect(self, handin: Handin, future) -> None:
        try:
            result = future.result()
        except BrokenProcessPool as error:
            log.error("the worker pool broke while grading %s; starting a new one", handin.id)
            if self._own_executor:
                self._start_pool()
            self._record(handin, None, f"the grader's worker died ({error}); ask your instructor")
            return
        except Exception as error:  # noqa: BLE001 - that hand-in only
            self._record(handin, None, f"grader worker failed: {type(error).__name__}: {error}")
            return
        self._record(handin, mark_grader_faults(result, self.references.get(handin.assignment)), "")

    def _record(self, handin: Handin, result: SubmissionResult | None, problem: str) -> None:
        try:
            if result is None:
                data = {"notebooks": [], "status": "error", "warnings": [problem]}
                stored = self.store.finish(handin.id, self.owner, state="failed", result=data)
            else:
                folder = graded_folder(self.work, handin.id)
                for notebook in result.notebooks:
                    if notebook.graded is not None:
                        atomic_write(folder / f"{notebook.name}.ipynb",
                                     nbformat.writes(nbformat.from_dict(notebook.graded)))
                atomic_write(folder / "result.json", json.dumps(result.to_json()))
                stored = self.store.finish(handin.id, self.owner, state="graded", score=result.score,
                                           max_score=result.max_score, result=result.to_json())
            if not stored:
                log.warning("hand-in %s was graded here, but its claim had passed to another process", handin.id)
            else:
                self.on_finished(handin.id)
        except Exception:
            log.exception("could not record the result of hand-in %s", handin.id)
        finally:
            self._slots.release()
            self._wake.set()
