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

import logging
import os
import sys
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
from .timing import timed

#: The lines that say what ``dlcourse grade`` is doing (the reference check, a killed grader's leftovers swept);
#: the command line shows them on stderr.
progress_log = logging.getLogger(f"{__name__}.progress")

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
    from ..sandbox.zygotes import SharedZygoteHost

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
    from ..sandbox.zygotes import warm_zygote

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
    options = options or GradingOptions()
    problem = isolation_problem() if options.isolate else None
    if problem:
        raise GradingRefused(problem + "; to grade without isolation pass --no-isolation")
    return _grade_students(layout, assignment, options, workers=workers, executor=executor, progress=progress,
                           record=record, reference=reference, timings=timings if timings is not None else {})


def _grade_students(layout: CourseLayout, assignment: str, options: GradingOptions, *, workers: int | None,
                    executor: Executor | None, progress: bool, record, reference: ReferenceCheck | None,
                    timings: dict) -> list[SubmissionResult]:
    """:func:`grade_assignment` once isolation is checked: the stored results, then the pending students."""
    from tqdm import tqdm

    timings.setdefault("recording", 0.0)
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
    with timed(timings, "recording"):
        for result in results.values():
            if record:
                record(result)
    if pending:
        own = executor is None
        executor = executor or default_executor(workers)
        try:
            for job, result in _as_graded(executor, pending, assignment):
                with timed(timings, "recording"):
                    results[job.student_id] = _store(layout, result, reference, record)
                bar.update(1)
        finally:
            if own:
                executor.shutdown(cancel_futures=True)
    bar.close()
    return [results[s] for s in sorted(results)]


def _as_graded(executor: Executor, jobs: list[GradingJob], assignment: str):
    """(job, result) for each job, in the order they finish; a worker that died fails that student only."""
    futures = {executor.submit(grade_submission, job): job for job in jobs}
    for future in as_completed(futures):
        job = futures.pop(future)  # held no longer than it takes to store: memory stays flat
        try:
            result = future.result()
        except Exception as error:  # a worker died: that student only
            result = SubmissionResult(job.student_id, assignment, Status.ERROR, [],
                                      warnings=[f"grader worker failed: {error}"])
        yield job, result


def _store(layout: CourseLayout, result: SubmissionResult, reference: ReferenceCheck | None,
           record) -> SubmissionResult:
    """One student's result, grader faults marked, stored and recorded; its graded notebooks let go."""
    result = mark_grader_faults(result, reference)
    store_result(layout, result)
    if record:
        record(result)
    for notebook in result.notebooks:
        notebook.graded = None  # stored; as a stored result is loaded (with_notebooks=False)
    return result


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
    ``report.timings`` says where the seconds went (see bench/profile_grading.py):
    ``checks``, ``workers`` (local workers only), ``reference``, ``students``,
    ``recording`` and ``reports``, each in seconds.
    ``executor``: where the jobs run (e.g. :class:`dlcourse.grading.cluster.ClusterExecutor`; the caller shuts it
    down), instead of local worker processes. Progress lines go to the ``dlcourse.grading.progress`` logger
    (when ``progress``), which the command line shows.
    """
    timings: dict = {}
    options = options or GradingOptions()
    with timed(timings, "checks"):
        _refuse_what_cannot_be_graded(layout, assignment, options)
        warnings = _prepare(layout, assignment, options, progress)
    graded = _grade_with_reference(layout, assignment, options, timings, workers=workers, progress=progress,
                                   force=force, executor=executor)
    warnings = graded.reference.warnings() + warnings + graded.warnings
    with timed(timings, "reports"):
        grades, cells = write_reports(layout, assignment, graded.results, warnings, graded.groups)
    return GradingReport(graded.results, warnings, [grades, cells], graded.reference, timings)


def _refuse_what_cannot_be_graded(layout: CourseLayout, assignment: str, options: GradingOptions) -> None:
    """No such assignment, no submissions folder or none in it, isolation asked for and unavailable."""
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
    problem = isolation_problem() if options.isolate else None
    if problem:
        raise GradingRefused(f"{problem}.\n"
                             "Refusing to run students' code unisolated; pass --no-isolation to grade anyway.")


def _prepare(layout: CourseLayout, assignment: str, options: GradingOptions, progress: bool) -> list[str]:
    """The course's ignore pattern, the warnings known before grading, a killed grader's leftovers swept."""
    from ..core.config import course_settings
    from ..core.testcode import kernel_warning
    from .autotest import kernel_cells  # AUTOTEST cells as nbgrader expands them

    if options.ignore_pattern is None:
        options.ignore_pattern = course_settings(layout.root).ignore_pattern
    warnings = ([] if options.isolate else [UNISOLATED_WARNING]) + collect_warnings(layout, assignment)
    warnings += [kernel_warning(*cell) for cell in kernel_cells(layout.masters(assignment))]
    removed = sweep()  # a killed grader's sandboxes, zygotes and copies of submissions
    if removed and progress:
        progress_log.info("grade: removed %d temporary folder(s) of a grader that was killed, e.g. %s",
                          len(removed), removed[0])
    return warnings


@dataclass
class _Graded:
    results: list[SubmissionResult]
    groups: dict
    warnings: list[str]  # the groups' (shared results)
    reference: ReferenceCheck


class _LazyGradebook:
    """The gradebook's recorder, opened while the reference is graded (nbgrader's import takes seconds)."""

    def __init__(self, layout: CourseLayout, assignment: str, timings: dict):
        self.layout, self.assignment, self.timings = layout, assignment, timings
        self.recorder = None

    def open(self) -> None:
        if self.recorder is None:
            from .gradebook import GradebookRecorder

            with timed(self.timings, "recording"):
                self.recorder = GradebookRecorder(self.layout, self.assignment)

    def close(self) -> None:
        if self.recorder is not None:
            self.recorder.close()


def _grade_with_reference(layout: CourseLayout, assignment: str, options: GradingOptions, timings: dict, *,
                          workers: int | None, progress: bool, force: bool, executor: Executor | None) -> _Graded:
    """Workers started, the reference checked (refused unless ``force``), every student graded and recorded."""
    own = executor is None
    shared = _shared_zygote(options) if own else None  # imports torch while the fork server does
    gradebook = _LazyGradebook(layout, assignment, timings)
    timings["recording"] = 0.0
    try:
        # local: its fork server starts importing now
        executor = executor or default_executor(workers, shared.environment() if shared else None)
        if own:  # a cluster's workers are warmed by its own plugin (and refuse other functions)
            with timed(timings, "workers"):
                warm_workers(executor, workers, options)  # waits for the fork server's imports (the zygote's go on)
        with timed(timings, "reference", excluding="recording"):  # the gradebook opens meanwhile (a core is idle)
            reference = check_reference(layout, assignment, options, executor, while_waiting=gradebook.open,
                                        log=progress_log.info if progress else None)
        if not reference.ok and not force:
            raise ReferenceFailed(reference)
        with timed(timings, "students", excluding="recording"):
            results = _grade_students(layout, assignment, options, workers=workers, executor=executor,
                                      progress=progress, record=gradebook.recorder, reference=reference,
                                      timings=timings)
            results, groups, shared_warnings = share_with_group(layout, assignment, results,
                                                                record=gradebook.recorder)
    finally:
        gradebook.close()
        if own and executor is not None:
            executor.shutdown(cancel_futures=True)
        if shared is not None:
            shared.close()
    return _Graded(results, groups, shared_warnings, reference)


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
