"""Autograding, as a short pipeline of named steps.

    merge -> isolate -> execute -> score -> record -> report

1. **merge** (:mod:`.merge`): the submission rebuilt on the master's
   skeleton: answers from the student, tests and locked cells from the master.
2. **isolate** (:mod:`dlcourse.sandbox.isolation`): a private copy of the student's
   folder and a bubblewrap sandbox for their kernel.
3. **execute** and 4. **score** (:mod:`.run`): the student's cells run in
   that kernel; the test cells run in the grader's clean process and reach
   the student's code only through :mod:`dlcourse.testing`.
5. **record** (:mod:`.reports`, :mod:`dlcourse.grading.gradebook`): each result is
   stored as it arrives, from this process only (one SQLite writer).
6. **report** (:mod:`.reports`): ``grades.csv``, ``cells.csv``,
   ``WARNINGS.txt``, written atomically at the end.

Before the students, :func:`grade_and_report` grades the master's own
solutions (:mod:`.reference`, cached): a test they fail here is the
machine's fault, so grading stops, or with ``force`` that cell is
``not graded: grader fault`` for everyone.

:func:`grade_submission` (:mod:`.submission`) grades one student;
:func:`grade_assignment` grades all of them through a replaceable executor
and resumes from stored results; :func:`grade_and_report` is the whole
``dlcourse grade`` command.
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

from ..core.course import CourseLayout, no_such
from ..sandbox.isolation import isolation_problem
from ..sandbox.scratch import sweep
from .groups import collect_warnings, share_with_group
from .merge import GradedCell, merge_with_master
from .reference import ReferenceCheck, check_reference, faults_digest, mark_grader_faults
from .reports import format_table, load_result, store_result, write_reports
from .results import CellGrade, GradingOptions, NotebookResult, Status, SubmissionResult
from .submission import GradingJob, fingerprint, grade_submission

UNISOLATED_WARNING = ("WARNING: graded WITHOUT isolation (--no-isolation): students' code ran with the grader's "
                      "rights and could read source/, the gradebook and other submissions.")


class GradingRefused(Exception):
    """Grading cannot start here; the message says why and what to do."""


class ReferenceFailed(GradingRefused):
    """The reference solutions do not get full automatic marks here; the message names each cell and why."""

    def __init__(self, check: ReferenceCheck):
        self.check = check
        super().__init__(check.refusal())


def default_executor(workers: int | None = None, environment: dict[str, str] | None = None) -> Executor:
    """Local worker processes (default: one per core); a cluster executor can replace it (same interface).

    The cores are shared out: each worker's notebooks get ``cores // workers`` torch threads (at least
    one), unless ``$OMP_NUM_THREADS`` says otherwise. Two workers each running two threads on two cores
    spin against each other: A4's VGG tests ran 2 to 4 times slower that way.

    Workers are forked from one warm fork server (:mod:`dlcourse.grading._preload`: torch imported once per
    ``dlcourse grade``, not once per worker); each takes this process's environment as it is now, as a
    spawned worker would, plus ``environment``.
    """
    workers = workers or os.cpu_count() or 1
    return ProcessPoolExecutor(max_workers=workers, mp_context=_worker_context(), initializer=_worker_init,
                               initargs=(threads_per_worker(workers), {**os.environ, **(environment or {})}))


def _shared_zygote(options: GradingOptions):
    """One zygote for all the local workers (fork engine): started now, each worker connects to it.

    None where it cannot start here; each worker then starts its own, which reports why it cannot.
    """
    if options.engine != "fork":
        return None
    from ..sandbox.fork import SharedZygoteHost

    try:
        return SharedZygoteHost(options.isolate, options.limits, [Path(p) for p in options.read_only])
    except OSError:
        return None


def _worker_context():
    from multiprocessing import forkserver

    context = get_context("forkserver")
    context.set_forkserver_preload(["dlcourse.grading._preload"])  # before the server starts; later: no effect
    forkserver.ensure_running()  # it imports now, while this process goes on; the first worker waits for it
    return context


def threads_per_worker(workers: int) -> int:
    """The torch threads of each of ``workers`` notebooks graded at once on this machine."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def _worker_init(threads: int = 1, environment: dict | None = None) -> None:
    if environment is not None:  # the fork server's environment is that of when it started
        os.environ.clear()
        os.environ.update(environment)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))  # read by the fork engine's children and by kernels
    import matplotlib

    matplotlib.use("Agg")
    import torch  # warm the worker once, not once per student (already imported by the fork server)

    from ..sandbox.fork import omp_threads

    torch.set_num_threads(omp_threads(threads))


def warm_workers(executor: Executor, workers: int | None, options: GradingOptions) -> None:
    """Start every worker and its fork engine's zygote now, while this process does its own set-up.

    One quick job per worker (a pool starts a process per job it cannot hand
    to an idle one); a zygote that fails to start here is started, and its
    failure reported, by the first notebook that needs it.
    """
    if options.engine != "fork":
        return
    for _ in range(workers or os.cpu_count() or 1):
        executor.submit(_warm, options)


def _warm(options: GradingOptions) -> None:
    from ..sandbox.fork import warm_zygote

    try:
        warm_zygote(options.isolate, options.limits, [Path(p) for p in options.read_only])
    except Exception:  # noqa: BLE001 - see warm_workers
        pass


def jobs_for(layout: CourseLayout, assignment: str, options: GradingOptions,
             reference: ReferenceCheck | None = None) -> list[GradingJob]:
    """One job per student with a folder for ``assignment``, its fingerprint computed once.

    Cells excluded by a grader fault (``reference``) are part of the fingerprint:
    once the machine is fixed, those students are graded again.
    """
    master_dir = layout.require_assignment(assignment)
    jobs = []
    for student in layout.students(assignment):
        job = GradingJob(student, assignment, str(layout.submission_dir(student, assignment)), str(master_dir),
                         options)
        job.fingerprint = fingerprint(job) + faults_digest(reference)
        jobs.append(job)
    return jobs


def grade_assignment(layout: CourseLayout, assignment: str, *, workers: int | None = None,
                     options: GradingOptions | None = None, executor: Executor | None = None,
                     progress: bool = True, record=None, reference: ReferenceCheck | None = None,
                     timings: dict | None = None) -> list[SubmissionResult]:
    """Grade every submission of ``assignment``; resumable and idempotent.

    A student whose submission, master and options are unchanged since the
    last run keeps the stored result (so a run killed midway resumes where
    it stopped). ``record(result)`` is called in this process for each
    student, in the order they finish. The cells ``reference`` found at
    fault are marked ``not graded: grader fault`` (:func:`mark_grader_faults`).
    ``timings["recording"]`` adds up the seconds spent storing and recording.
    """
    from tqdm import tqdm

    timings = timings if timings is not None else {}
    timings.setdefault("recording", 0.0)

    options = options or GradingOptions()
    if options.isolate and isolation_problem():
        raise GradingRefused(isolation_problem() + "; to grade without isolation pass --no-isolation")
    jobs = jobs_for(layout, assignment, options, reference)
    results: dict[str, SubmissionResult] = {}
    pending = []
    for job in jobs:
        cached = load_result(layout.result_path(job.student_id, assignment), job.fingerprint, with_notebooks=False)
        if cached is not None:
            results[job.student_id] = cached
        else:
            pending.append(job)
    bar = tqdm(total=len(jobs), initial=len(results), desc=f"grading {assignment}", unit="student",
               disable=None if progress else True, file=sys.stderr)
    stored = time.monotonic()
    for result in results.values():
        if record:
            record(result)
    timings["recording"] += time.monotonic() - stored
    if pending:
        own = executor is None
        executor = executor or default_executor(workers)
        try:
            futures = {executor.submit(grade_submission, job): job for job in pending}
            for future in as_completed(futures):
                job = futures.pop(future)  # held no longer than it takes to store: memory stays flat
                try:
                    result = future.result()
                except Exception as error:  # a worker died: that student only
                    result = SubmissionResult(job.student_id, assignment, Status.ERROR, [],
                                              warnings=[f"grader worker failed: {error}"])
                stored = time.monotonic()
                result = mark_grader_faults(result, reference)
                store_result(layout, result)
                results[job.student_id] = result
                if record:
                    record(result)
                for notebook in result.notebooks:
                    notebook.graded = None  # stored; as a stored result is loaded (with_notebooks=False)
                timings["recording"] += time.monotonic() - stored
                bar.update(1)
        finally:
            if own:
                executor.shutdown(cancel_futures=True)
    bar.close()
    return [results[s] for s in sorted(results)]


@dataclass
class GradingReport:
    """What ``dlcourse grade`` did: the results, the warnings, the files written."""

    results: list[SubmissionResult]
    warnings: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    reference: ReferenceCheck | None = None
    timings: dict = field(default_factory=dict)  # seconds per step; see bench/profile_grading.py

    def table(self) -> str:
        return format_table(self.results)


def grade_and_report(layout: CourseLayout, assignment: str, options: GradingOptions | None = None, *,
                     workers: int | None = None, progress: bool = True, force: bool = False,
                     executor: Executor | None = None) -> GradingReport:
    """The whole ``dlcourse grade``: check, grade the reference, grade, record in the gradebook, write the reports.

    Raises :class:`GradingRefused` (with what to do) when there is nothing to
    grade or isolation is asked for and unavailable, and :class:`ReferenceFailed`
    (a GradingRefused) when the master's own solutions do not get full marks
    here, unless ``force``: then those cells are not graded for anyone.
    ``report.timings`` says where the seconds went (see bench/profile_grading.py).
    ``executor``: where the jobs run (e.g. :class:`dlcourse.grading.cluster.ClusterExecutor`; the caller shuts it
    down), instead of local worker processes.
    """
    from .gradebook import GradebookRecorder

    timings: dict = {}
    started = time.monotonic()
    options = options or GradingOptions()
    try:
        layout.require_assignment(assignment)
    except FileNotFoundError as error:
        raise GradingRefused(str(error)) from error
    if not layout.submitted.is_dir():
        parent = layout.submitted.parent
        folders = sorted(d.name for d in parent.iterdir() if d.is_dir() and not d.name.startswith(".")) \
            if parent.is_dir() else []
        raise GradingRefused(no_such("folder", layout.submitted.name, folders, parent)
                             + " (the submissions: --submissions DIR, default submitted/)")
    if not layout.students(assignment):
        raise GradingRefused(f"no submissions of {assignment} found in {layout.submitted}/<student_id>/{assignment}/")
    if options.isolate and isolation_problem():
        raise GradingRefused(f"{isolation_problem()}.\n"
                             "Refusing to run students' code unisolated; pass --no-isolation to grade anyway.")
    from ..core.config import course_settings
    from ..core.testcode import kernel_warning
    from .autotest import kernel_cells  # AUTOTEST cells as nbgrader expands them

    if options.ignore_pattern is None:
        options.ignore_pattern = course_settings(layout.root).ignore_pattern
    warnings = ([] if options.isolate else [UNISOLATED_WARNING]) + collect_warnings(layout, assignment)
    warnings += [kernel_warning(*cell) for cell in kernel_cells(layout.masters(assignment))]
    removed = sweep()  # a killed grader's sandboxes, zygotes and copies of submissions
    if removed and progress:
        print(f"grade: removed {len(removed)} temporary folder(s) of a grader that was killed, e.g. {removed[0]}",
              file=sys.stderr, flush=True)
    timings["checks"] = time.monotonic() - started
    own = executor is None
    shared = _shared_zygote(options) if own else None  # imports torch while the fork server does
    recorder = None
    try:
        # local: its fork server starts importing now
        executor = executor or default_executor(workers, shared.environment() if shared else None)
        started = time.monotonic()
        timings["recording"] = 0.0

        def open_recorder():  # nbgrader's import, seconds: while the reference runs (a core is idle then)
            nonlocal recorder
            if recorder is None:
                opened = time.monotonic()
                recorder = GradebookRecorder(layout, assignment)
                timings["recording"] = time.monotonic() - opened

        if own:  # a cluster's workers are warmed by its own plugin (and refuse other functions)
            warm_workers(executor, workers, options)  # waits for the fork server's imports (the zygote's go on)
            timings["workers"] = time.monotonic() - started
            started = time.monotonic()
        reference = check_reference(layout, assignment, options, executor, while_waiting=open_recorder,
                                    log=(lambda line: print(line, file=sys.stderr, flush=True)) if progress else None)
        timings["reference"] = time.monotonic() - started - timings["recording"]
        if not reference.ok and not force:
            raise ReferenceFailed(reference)
        warnings = reference.warnings() + warnings
        opened = timings["recording"]
        started = time.monotonic()
        results = grade_assignment(layout, assignment, workers=workers, options=options, record=recorder,
                                   progress=progress, reference=reference, executor=executor, timings=timings)
        results, groups, shared_warnings = share_with_group(layout, assignment, results, record=recorder)
        timings["students"] = time.monotonic() - started - (timings["recording"] - opened)
    finally:
        if recorder is not None:
            recorder.close()
        if own and executor is not None:
            executor.shutdown(cancel_futures=True)
        if shared is not None:
            shared.close()
    warnings += shared_warnings
    started = time.monotonic()
    grades, cells = write_reports(layout, assignment, results, warnings, groups)
    timings["reports"] = time.monotonic() - started
    return GradingReport(results, warnings, [grades, cells], reference, timings)


def __getattr__(name: str):
    if name == "grade_notebook":  # lazily: it imports torch (see submission._grade_notebook)
        from .run import grade_notebook

        return grade_notebook
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CellGrade", "GradedCell", "GradingJob", "GradingOptions", "GradingRefused", "GradingReport", "NotebookResult",
    "ReferenceCheck", "ReferenceFailed", "check_reference", "mark_grader_faults",
    "Status", "SubmissionResult", "default_executor", "fingerprint", "grade_and_report", "grade_assignment",
    "grade_notebook", "grade_submission", "jobs_for", "load_result", "merge_with_master", "store_result",
    "warm_workers", "write_reports",
]
