"""Autograding, as a short pipeline of named steps.

    copy -> isolate -> execute -> score -> record -> report

* :func:`merge_with_master` rebuilds a submission on the master's skeleton:
  answer cells come from the student, test and locked cells from the master
  (so edited, deleted or reordered test cells change nothing).
* :func:`grade_notebook` runs the student's cells in a kernel (sandboxed by
  default, see :mod:`dlcourse.isolation`) and the test cells *here*, in this
  clean process, reaching the student's objects only as plain data through
  :mod:`dlcourse.testing`. Nothing the student's code does to torch, builtins
  or the tests can change a comparison.
* :func:`grade_submission` grades every notebook of one student;
  :func:`grade_assignment` grades all students in parallel through a
  replaceable executor, records the gradebook from this process only (no
  concurrent SQLite writers) and writes the reports atomically.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import nbformat

from . import testing
from .execution import CellTimeout, KernelBackend, KernelDied, KernelSession
from .isolation import Limits, Sandbox, isolation_problem

GRADER_VERSION = "1"
#: Worst first: a student's status is the worst status of their notebooks.
STATUS_ORDER = ("invalid-notebook", "missing", "memory", "timeout", "crashed", "error", "renamed", "ok")
SUBMISSION_COPY_LIMIT = 200 * 2**20


@dataclass
class GradingOptions:
    isolate: bool = True
    cell_timeout: float = 120.0
    notebook_timeout: float = 600.0
    limits: Limits = field(default_factory=Limits)
    read_only: list[str] = field(default_factory=list)  # e.g. the data sets

    def fingerprint(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, default=str)


@dataclass
class CellGrade:
    notebook: str
    grade_id: str
    kind: str  # "test" (autograded) or "manual"
    max_score: float
    score: float | None = None
    message: str = ""


@dataclass
class NotebookResult:
    name: str
    status: str
    cells: list[CellGrade]
    message: str = ""
    seconds: float = 0.0
    graded: dict | None = None  # the executed notebook, as JSON

    @property
    def score(self) -> float:
        return sum(c.score or 0.0 for c in self.cells if c.kind == "test")

    @property
    def max_score(self) -> float:
        return sum(c.max_score for c in self.cells if c.kind == "test")


@dataclass
class SubmissionResult:
    student_id: str
    assignment: str
    status: str
    notebooks: list[NotebookResult]
    fingerprint: str = ""
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def score(self) -> float:
        return sum(nb.score for nb in self.notebooks)

    @property
    def max_score(self) -> float:
        return sum(nb.max_score for nb in self.notebooks)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "SubmissionResult":
        notebooks = [NotebookResult(**{**nb, "cells": [CellGrade(**c) for c in nb["cells"]]})
                     for nb in data["notebooks"]]
        return cls(**{**data, "notebooks": notebooks})


def worst_status(statuses) -> str:
    statuses = list(statuses) or ["ok"]
    return min(statuses, key=lambda s: STATUS_ORDER.index(s) if s in STATUS_ORDER else 0)


# --------------------------------------------------------------------------
# Step 1: read the master and the submission, merge them.


def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def is_test_cell(cell) -> bool:
    meta = nbgrader_meta(cell)
    return bool(meta.get("grade")) and not meta.get("solution") and cell.get("cell_type") == "code"


def is_manual_cell(cell) -> bool:
    meta = nbgrader_meta(cell)
    return bool(meta.get("grade")) and bool(meta.get("solution"))


def read_notebook(path: Path):
    """The notebook at ``path``, or raise ValueError saying why it is unreadable."""
    try:
        notebook = nbformat.read(str(path), as_version=4)
    except Exception as error:  # JSON errors, wrong types, binary junk
        raise ValueError(f"the notebook file cannot be read: {type(error).__name__}: {error}"[:500]) from error
    if not isinstance(notebook.get("cells"), list):
        raise ValueError("the notebook file has no list of cells")
    return notebook


def merge_with_master(master, student) -> list[dict]:
    """The cells to grade: the master's skeleton with the student's answers.

    Answer cells (``solution``) are taken from the student by ``grade_id``
    (the first one when duplicated; an empty answer when missing or retyped);
    test cells, locked cells and manual cells' prompts come from the master.
    The student's own extra cells stay where they were, after the graded
    cell they followed.
    """
    student_cells = [c for c in student.get("cells", []) if isinstance(c, dict)]
    answers: dict[str, dict] = {}
    extras_after: dict[str | None, list[dict]] = {}
    previous_id: str | None = None
    master_ids = {nbgrader_meta(c).get("grade_id") for c in master.cells if nbgrader_meta(c).get("grade_id")}
    for cell in student_cells:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if grade_id in master_ids:
            if nbgrader_meta(cell).get("solution") and grade_id not in answers:
                answers[grade_id] = cell
            previous_id = grade_id
        elif cell.get("cell_type") == "code" and not nbgrader_meta(cell).get("grade"):
            extras_after.setdefault(previous_id, []).append(cell)
    merged: list[dict] = []
    merged.extend(_code_only(extras_after.get(None, [])))
    for cell in master.cells:
        meta = nbgrader_meta(cell)
        grade_id = meta.get("grade_id")
        if not grade_id:
            continue  # unmarked master cells: the student's copy is the one that counts
        if meta.get("solution"):
            mine = answers.get(grade_id)
            source = _source(mine) if mine and mine.get("cell_type") == cell.cell_type else ""
            merged.append({"cell_type": cell.cell_type, "source": source, "metadata": dict(cell.metadata),
                           "role": "manual" if is_manual_cell(cell) else "answer", "grade_id": grade_id})
        else:
            role = "test" if is_test_cell(cell) else "locked"
            merged.append({"cell_type": cell.cell_type, "source": cell.source, "metadata": dict(cell.metadata),
                           "role": role, "grade_id": grade_id})
        merged.extend(_code_only(extras_after.get(grade_id, [])))
    return merged


def _source(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _code_only(cells: list[dict]) -> list[dict]:
    return [{"cell_type": "code", "source": _source(c), "metadata": {}, "role": "extra", "grade_id": None}
            for c in cells]


# --------------------------------------------------------------------------
# Steps 2-4: copy, isolate, execute and score one notebook.


def _strip_magics(source: str) -> str:
    return "\n".join("pass" if line.lstrip().startswith(("%", "!")) and not line.startswith(" ") else line
                     for line in source.splitlines())


def run_test_cell(source: str, namespace: dict, backend) -> tuple[bool, str, str]:
    """Run one test cell here, against the student's kernel: (passed, message, stdout)."""
    testing.set_backend(backend)
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            exec(compile(_strip_magics(source), "<test cell>", "exec"), namespace)
        return True, "", captured.getvalue()
    except AssertionError as error:
        return False, str(error) or "a check of this test failed", captured.getvalue()
    except testing.StudentCodeError as error:
        detail = f"\n{error.traceback_text}" if error.traceback_text else ""
        return False, f"{error}{detail}", captured.getvalue()
    except CellTimeout:
        return False, "your code did not finish within the time limit of the test", captured.getvalue()
    except KernelDied:
        return False, "the notebook's kernel died while the test ran your code", captured.getvalue()
    except Exception as error:  # the test itself could not run (e.g. a missing name)
        return False, f"the test could not run: {type(error).__name__}: {error}"[:1000], captured.getvalue()
    finally:
        testing.set_backend(testing.InProcessBackend())


def grade_notebook(master_path: Path, submission_path: Path | None, options: GradingOptions | None = None,
                   workdir: Path | None = None) -> NotebookResult:
    """Grade one notebook: the student's cells in a kernel, the tests here."""
    options = options or GradingOptions()
    master = read_notebook(Path(master_path))
    name = Path(master_path).stem
    started = time.monotonic()
    grades = {c.metadata.nbgrader["grade_id"]: CellGrade(
        notebook=name, grade_id=c.metadata.nbgrader["grade_id"], kind="test" if is_test_cell(c) else "manual",
        max_score=float(c.metadata.nbgrader.get("points", 0)), score=0.0 if is_test_cell(c) else None)
        for c in master.cells if nbgrader_meta(c).get("grade")}

    def finish(status: str, message: str, graded=None) -> NotebookResult:
        for grade in grades.values():
            if grade.kind == "test" and status in ("missing", "invalid-notebook") and not grade.message:
                grade.message = message
        return NotebookResult(name=name, status=status, cells=list(grades.values()), message=message,
                              seconds=time.monotonic() - started, graded=graded)

    if submission_path is None or not Path(submission_path).exists():
        return finish("missing", f"no notebook {name}.ipynb was handed in")
    try:
        student = read_notebook(Path(submission_path))
    except ValueError as error:
        return finish("invalid-notebook", str(error))
    cells = merge_with_master(master, student)

    own_workdir = workdir is None
    workdir = Path(workdir or tempfile.mkdtemp(prefix="dlcourse-work-"))
    try:
        copy_submission(Path(submission_path).parent, workdir)
        return _execute_and_score(cells, grades, master, options, workdir, finish)
    finally:
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)


def copy_submission(source_dir: Path, workdir: Path) -> None:
    """Copy the student's folder (never touching the original), up to a size limit."""
    total = 0
    for path in sorted(source_dir.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        total += path.stat().st_size
        if total > SUBMISSION_COPY_LIMIT:
            break
        target = workdir / path.relative_to(source_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def _execute_and_score(cells, grades, master, options: GradingOptions, workdir: Path, finish) -> NotebookResult:
    env = {"NBGRADER_EXECUTION": "autograde"}
    sandbox = None
    if options.isolate:
        sandbox = Sandbox(options.limits, read_only=[Path(p) for p in options.read_only])
    session = KernelSession(workdir, env, sandbox=sandbox)
    status, message = "ok", ""
    deadline = time.monotonic() + options.notebook_timeout
    graded_cells = []
    namespace: dict = {"__name__": "__dlcourse_tests__"}
    executed_sources: list[str] = []
    try:
        try:
            session.start()
        except Exception as error:
            status, message = "crashed", f"the notebook's kernel could not start: {error}"
        for cell in cells:
            node = _notebook_cell(cell)
            graded_cells.append(node)
            if cell["cell_type"] != "code":
                continue
            if cell["role"] == "test":
                grade = grades[cell["grade_id"]]
                if status in ("crashed", "memory", "timeout") and not session.alive():
                    grade.score, grade.message = 0.0, _dead_kernel_message(status)
                    node.outputs = [_error_output("KernelDied", grade.message)]
                    continue
                backend = KernelBackend(session, executed_sources, min(deadline, time.monotonic()
                                                                       + options.cell_timeout))
                passed, text, printed = run_test_cell(cell["source"], namespace, backend)
                grade.score = grade.max_score if passed else 0.0
                grade.message = text
                node.outputs = ([nbformat.v4.new_output("stream", name="stdout", text=printed[:20000])]
                                if printed else [])
                if not passed:
                    node.outputs.append(_error_output("AssertionError", text))
                if backend.timed_out and status == "ok":
                    status, message = "timeout", "a test stopped your code at the time limit of the cell"
                if not session.alive() and status == "ok":
                    status, message = _death_status(sandbox)
                continue
            if not session.alive() or status in ("crashed", "memory"):
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                status, message = "timeout", "the notebook ran past its total time limit"
                break
            run = session.execute(cell["source"], timeout=min(options.cell_timeout, remaining))
            executed_sources.append(cell["source"])
            node.outputs = run.outputs
            if run.status == "timeout":
                status = "timeout"
                message = f"a cell ran longer than the limit of {options.cell_timeout:.0f} s and was stopped"
            elif run.status == "died" or not session.alive():
                status, message = _death_status(sandbox)
            elif run.status == "error" and _is_memory_error(run):
                status, message = "memory", "a cell ran out of memory"
    finally:
        if sandbox is not None and status in ("crashed", "ok") and sandbox.out_of_memory():
            status, message = "memory", "the notebook used more memory than allowed and was stopped"
        session.shutdown()
    graded = nbformat.v4.new_notebook(cells=graded_cells, metadata=master.metadata)
    return finish(status, message, graded=graded)


def _notebook_cell(cell: dict):
    if cell["cell_type"] == "code":
        node = nbformat.v4.new_code_cell(cell["source"])
    elif cell["cell_type"] == "markdown":
        node = nbformat.v4.new_markdown_cell(cell["source"])
    else:
        node = nbformat.v4.new_raw_cell(cell["source"])
    node.metadata = nbformat.from_dict(cell["metadata"])
    return node


def _error_output(name: str, text: str):
    return nbformat.v4.new_output("error", ename=name, evalue=text[:2000], traceback=[f"{name}: {text[:2000]}"])


def _is_memory_error(run) -> bool:
    return run.error_name == "MemoryError" or "can't allocate memory" in run.error_value \
        or "not enough memory" in run.error_value


def _death_status(sandbox) -> tuple[str, str]:
    if sandbox is not None and sandbox.out_of_memory():
        return "memory", "the notebook used more memory than allowed and was stopped"
    return "crashed", "the notebook's kernel died (it exited or crashed); later cells did not run"


def _dead_kernel_message(status: str) -> str:
    return {
        "memory": "not run: the notebook had run out of memory before this test",
        "timeout": "not run: an earlier cell ran past the time limit",
    }.get(status, "not run: the notebook's kernel had died before this test")


# --------------------------------------------------------------------------
# One student: every notebook of the assignment.


@dataclass
class GradingJob:
    student_id: str
    assignment: str
    submission_dir: str
    master_dir: str
    options: GradingOptions


def fingerprint(job: GradingJob) -> str:
    digest = hashlib.sha256(GRADER_VERSION.encode())
    digest.update(job.options.fingerprint().encode())
    for root in (Path(job.master_dir), Path(job.submission_dir)):
        for path in sorted(root.rglob("*")) if root.exists() else []:
            if path.is_file() and not path.is_symlink():
                digest.update(str(path.relative_to(root)).encode())
                digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def grade_submission(job: GradingJob) -> SubmissionResult:
    started = time.monotonic()
    masters = sorted(Path(job.master_dir).glob("*.ipynb"))
    submitted = sorted(p for p in Path(job.submission_dir).glob("*.ipynb") if p.is_file())
    notebooks = []
    unmatched = [p for p in submitted if p.stem not in {m.stem for m in masters}]
    for master in masters:
        path = Path(job.submission_dir) / master.name
        renamed = False
        if not path.exists() and len(masters) == 1 and len(unmatched) == 1:
            path, renamed = unmatched[0], True
        try:
            result = grade_notebook(master, path if path.exists() else None, job.options)
        except Exception as error:  # a bug of ours must not lose the other students' grades
            result = NotebookResult(name=master.stem, status="error", cells=[],
                                    message=f"internal grader error: {type(error).__name__}: {error}\n"
                                            f"{traceback.format_exc()[-2000:]}")
        if renamed and result.status == "ok":
            result.status = "renamed"
            result.message = f"graded {path.name} in place of {master.name}"
        notebooks.append(result)
    return SubmissionResult(student_id=job.student_id, assignment=job.assignment,
                            status=worst_status(nb.status for nb in notebooks), notebooks=notebooks,
                            fingerprint=fingerprint(job), seconds=time.monotonic() - started)


# --------------------------------------------------------------------------
# All students: discover, grade in parallel, record, report.


class CourseLayout:
    """nbgrader's folders, relative to the course root."""

    def __init__(self, root: Path, submissions: Path | None = None):
        self.root = Path(root).resolve()
        self.source = self.root / "source"
        self.submitted = Path(submissions).resolve() if submissions else self.root / "submitted"
        self.autograded = self.root / "autograded"
        self.reports = self.root / "reports"
        self.feedback = self.root / "feedback"
        self.db_url = f"sqlite:///{self.root / 'gradebook.db'}"

    def students(self, assignment: str) -> list[str]:
        if not self.submitted.is_dir():
            return []
        return sorted(d.name for d in self.submitted.iterdir()
                      if d.is_dir() and (d / assignment).is_dir() and not d.name.startswith("."))

    def result_path(self, student_id: str, assignment: str) -> Path:
        return self.autograded / student_id / assignment / ".dlcourse-result.json"


def default_executor(workers: int) -> Executor:
    """Local worker processes; a cluster executor can replace it (same interface)."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                               initializer=_worker_init)


def _worker_init() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import torch  # noqa: F401 - warm the worker once, not once per student


def grade_assignment(layout: CourseLayout, assignment: str, *, workers: int | None = None,
                     options: GradingOptions | None = None, executor: Executor | None = None,
                     progress: bool = True, record=None) -> list[SubmissionResult]:
    """Grade every submission of ``assignment``; resumable and idempotent.

    A student whose submission, master and options are unchanged since the
    last run keeps the stored result (so a run killed midway resumes where
    it stopped). ``record(result)`` is called in this process for each
    student, in the order they finish.
    """
    from tqdm import tqdm

    options = options or GradingOptions()
    master_dir = layout.source / assignment
    if not master_dir.is_dir():
        raise FileNotFoundError(f"no master notebooks for {assignment!r} in {layout.source}")
    if options.isolate and isolation_problem():
        raise RuntimeError(isolation_problem() + "; to grade without isolation pass --no-isolation")
    jobs = [GradingJob(s, assignment, str(layout.submitted / s / assignment), str(master_dir), options)
            for s in layout.students(assignment)]
    results: dict[str, SubmissionResult] = {}
    pending = []
    for job in jobs:
        cached = _load_cached(layout.result_path(job.student_id, assignment), fingerprint(job))
        if cached is not None:
            results[job.student_id] = cached
        else:
            pending.append(job)
    bar = tqdm(total=len(jobs), initial=len(results), desc=f"grading {assignment}", unit="student",
               disable=None if progress else True, file=sys.stderr)
    for result in results.values():
        if record:
            record(result)
    if pending:
        own = executor is None
        executor = executor or default_executor(workers or os.cpu_count() or 1)
        try:
            futures = {executor.submit(grade_submission, job): job for job in pending}
            for future in as_completed(futures):
                job = futures[future]
                try:
                    result = future.result()
                except Exception as error:  # a worker died: that student only
                    result = SubmissionResult(job.student_id, assignment, "error", [],
                                              warnings=[f"grader worker failed: {error}"])
                store_result(layout, result)
                results[job.student_id] = result
                if record:
                    record(result)
                bar.update(1)
        finally:
            if own:
                executor.shutdown(cancel_futures=True)
    bar.close()
    return [results[s] for s in sorted(results)]


def _load_cached(path: Path, expected: str) -> SubmissionResult | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if data.get("fingerprint") != expected:
        return None
    try:
        return SubmissionResult.from_json(data)
    except (TypeError, KeyError):
        return None


def atomic_write(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data.encode() if isinstance(data, str) else data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def store_result(layout: CourseLayout, result: SubmissionResult) -> None:
    """The graded notebooks for formgrader, then the result (last: it marks completion)."""
    folder = layout.autograded / result.student_id / result.assignment
    for notebook in result.notebooks:
        if notebook.graded is not None:
            atomic_write(folder / f"{notebook.name}.ipynb", nbformat.writes(nbformat.from_dict(notebook.graded)))
    atomic_write(layout.result_path(result.student_id, result.assignment), json.dumps(result.to_json()))


def write_reports(layout: CourseLayout, assignment: str, results: list[SubmissionResult],
                  warnings: list[str] = ()) -> tuple[Path, Path]:
    folder = layout.reports / assignment
    grades = io.StringIO()
    writer = csv.writer(grades, lineterminator="\n")
    writer.writerow(["student_id", "score", "max_score", "status"])
    for r in results:
        writer.writerow([r.student_id, _number(r.score), _number(r.max_score), r.status])
    cells = io.StringIO()
    writer = csv.writer(cells, lineterminator="\n")
    writer.writerow(["student_id", "notebook", "grade_id", "score", "max_score"])
    for r in results:
        for nb in r.notebooks:
            for c in nb.cells:
                writer.writerow([r.student_id, nb.name, c.grade_id, "" if c.score is None else _number(c.score),
                                 _number(c.max_score)])
    atomic_write(folder / "grades.csv", grades.getvalue())
    atomic_write(folder / "cells.csv", cells.getvalue())
    if warnings:
        atomic_write(folder / "WARNINGS.txt", "\n".join(warnings) + "\n")
    elif (folder / "WARNINGS.txt").exists():
        (folder / "WARNINGS.txt").unlink()
    return folder / "grades.csv", folder / "cells.csv"


def _number(value: float) -> str:
    return f"{value:g}"
