"""Steps 2-4 for one notebook: isolate, execute, score.

:func:`grade_notebook` merges the submission onto the master
(:mod:`.merge`), then a :class:`NotebookRun` walks the merged cells: the
student's cells run in a kernel (sandboxed by default, see
:mod:`dlcourse.sandbox.isolation`), the test cells run *here*, in this clean
process, reaching the student's objects only as plain data through
:mod:`dlcourse.testing`. Nothing the student's code does to torch, builtins
or the tests can change a comparison.

The run's status starts ``ok`` and only its methods change it; a notebook's
first fault usually decides it (see :meth:`NotebookRun.fault`).
"""

from __future__ import annotations

import contextlib
import io
import shutil
import time
from pathlib import Path

import nbformat

from .. import testing
from ..bridge import backends
from ..core.testcode import is_plain, kernel_reason
from ..sandbox.isolation import Sandbox
from ..bridge.errors import CellTimeout, KernelDied
from ..sandbox.kernel import KernelSession
from ..sandbox.scratch import make_dir
from ..core.notebook import (cell_points, grade_id, is_graded_cell, is_test_cell, new_cell, new_output, read_notebook,
                        strip_magics)
from ..sandbox.fork import ForkSession, preloads
from .autotest import AutotestError, expanded_tests, folder_import_reason, lay_out_supporting_files
from .merge import GradedCell, merge_with_master
from .plain import CellFolder, PlainNamespace, run_in_kernel, run_plain_cell, score_outputs
from .results import TIMING_KEYS, CellGrade, GradingOptions, NotebookResult, Status

#: The most a submission's folder may bring into the sandbox; the rest is not copied.
SUBMISSION_COPY_LIMIT = 200 * 2**20
#: What a test cell may print into the graded notebook.
TEST_OUTPUT_LIMIT = 20_000

_MEMORY_MESSAGE = "the notebook used more memory than allowed and was stopped"
_NOT_RUN = {
    Status.MEMORY: "not run: the notebook had run out of memory before this test",
    Status.TIMEOUT: "not run: an earlier cell ran past the time limit",
}


def run_test_cell(source: str, namespace: dict, backend: backends.Backend) -> tuple[bool, str, str]:
    """Run one test cell here, against ``backend``: (passed, message, what it printed)."""
    captured = io.StringIO()
    try:
        with backends.using(backend), contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            exec(compile(strip_magics(source), "<test cell>", "exec"), namespace)
        return True, "", captured.getvalue()
    except Exception as error:
        return False, failure_message(error)[1], captured.getvalue()


def failure_message(error: BaseException) -> tuple[str, str]:
    """(name, what the student reads) for an exception that failed a test cell."""
    if isinstance(error, testing.StudentCodeError):
        detail = f"\n{error.traceback_text}" if error.traceback_text else ""
        return error.error_type, f"{error}{detail}"
    if isinstance(error, AssertionError):
        return "AssertionError", str(error) or "a check of this test failed"
    if isinstance(error, CellTimeout):
        return "TimeoutError", "your code did not finish within the time limit of the test"
    if isinstance(error, KernelDied):
        return "KernelDied", "the notebook's kernel died while the test ran your code"
    # the test itself could not run (e.g. a missing name)
    return type(error).__name__, f"the test could not run: {type(error).__name__}: {error}"[:1000]


def empty_grades(master, name: str) -> dict[str, CellGrade]:
    """Every graded cell of ``master`` at zero (tests) or ungraded (manual), by grade_id."""
    return {grade_id(c): CellGrade(notebook=name, grade_id=grade_id(c), kind="test" if is_test_cell(c) else "manual",
                                   max_score=cell_points(c), score=0.0 if is_test_cell(c) else None)
            for c in master.cells if is_graded_cell(c)}


class NotebookRun:
    """One notebook being graded: its kernel, its grades, its status and its executed cells."""

    def __init__(self, master, name: str, cells: list[GradedCell], options: GradingOptions, workdir: Path,
                 master_folder: Path | None = None):
        self.master = master
        self.master_folder = master_folder  # source/<assignment>/: its modules are imported in the kernel
        self.cells = cells
        self.options = options
        self.grades = empty_grades(master, name)
        self.status, self.message = Status.OK, ""
        if options.engine == "fork":
            self.session = ForkSession(workdir, {"NBGRADER_EXECUTION": "autograde"}, isolate=options.isolate,
                                       limits=options.limits, read_only=[Path(p) for p in options.read_only],
                                       preload=preloads(master))
            self.sandbox = self.session  # it tells out_of_memory() from the child's own cgroup
        else:
            self.sandbox = Sandbox(options.limits, read_only=[Path(p) for p in options.read_only]) \
                if options.isolate else None
            self.session = KernelSession(workdir, {"NBGRADER_EXECUTION": "autograde"}, sandbox=self.sandbox)
        self.deadline = time.monotonic() + options.notebook_timeout
        # the test cells' own names, shared between them (a plain cell also reaches the student's through it)
        # (a plain dict where no cell is plain: every global name a test reads would be a Python call)
        plain = any(c.role == "test" and is_plain(c.source) for c in cells)
        self.namespace = (PlainNamespace if plain else dict)({"__name__": "__dlcourse_tests__"})
        self.folder = CellFolder(workdir)  # the notebook's folder as a plain test cell sees it (stock's cwd)
        self.executed_sources: list[str] = []  # what the student's kernel ran, for student.source()
        self.nodes: list = []  # the graded notebook's cells, with outputs
        self.timings = dict.fromkeys(TIMING_KEYS, 0.0)  # where the seconds went (NotebookResult.timings)
        self.execution_count = 0  # the kernel's In [n] (a student's error message names "your cell [n]")

    # -- status ------------------------------------------------------------

    def fault(self, status: Status, message: str, *, unless_faulted: bool = False) -> None:
        """Record what went wrong; with ``unless_faulted`` only if nothing went wrong before."""
        if unless_faulted and self.status is not Status.OK:
            return
        self.status, self.message = status, message

    def _death(self) -> tuple[Status, str]:
        if self.sandbox is not None and self.sandbox.out_of_memory():
            return Status.MEMORY, _MEMORY_MESSAGE
        return Status.CRASHED, "the notebook's kernel died (it exited or crashed); later cells did not run"

    @property
    def kernel_down(self) -> bool:
        return not self.session.alive() or self.status in (Status.CRASHED, Status.MEMORY)

    # -- steps -------------------------------------------------------------

    def start(self) -> None:
        try:
            self.session.start()
        except Exception as error:
            self.fault(Status.CRASHED, f"the notebook's kernel could not start: {error}")

    def run_student_cell(self, cell: GradedCell, node) -> bool:
        """Run a cell in the student's kernel; False when the notebook cannot go on."""
        if self.kernel_down:
            return True  # nothing runs any more; the remaining test cells still get their "not run" message
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            self.fault(Status.TIMEOUT, "the notebook ran past its total time limit")
            return False
        started = time.monotonic()
        run = self.session.execute(cell.source, timeout=min(self.options.cell_timeout, remaining))
        self.timings["student_cells"] += time.monotonic() - started
        self.executed_sources.append(cell.source)
        self.execution_count += 1
        node.execution_count = self.execution_count
        node.outputs = run.outputs
        if run.status == "timeout":
            self.fault(Status.TIMEOUT,
                       f"a cell ran longer than the limit of {self.options.cell_timeout:.0f} s and was stopped")
        elif run.status == "died" or not self.session.alive():
            self.fault(*self._death())
        elif run.status == "error" and _is_memory_error(run):
            self.fault(Status.MEMORY, "a cell ran out of memory")
        return True

    def run_test_cell(self, cell: GradedCell, node) -> None:
        """Run a test cell here, its requests answered by the student's kernel; score it."""
        grade = self.grades[cell.grade_id]
        if self.status in (Status.CRASHED, Status.MEMORY, Status.TIMEOUT) and not self.session.alive():
            grade.score, grade.message = 0.0, _NOT_RUN.get(self.status,
                                                           "not run: the notebook's kernel had died before this test")
            node.outputs = [_error_output("KernelDied", grade.message)]
            return
        if is_plain(cell.source) and (kernel_reason(cell.source)
                                      or folder_import_reason(cell.source, self.master_folder)):
            self.run_test_cell_in_kernel(cell, node)
            return
        deadline = min(self.deadline, time.monotonic() + self.options.cell_timeout)
        backend = self.session.backend(self.executed_sources, deadline) if isinstance(self.session, ForkSession) \
            else backends.KernelBackend(self.session, self.executed_sources, deadline)
        started = time.monotonic()
        if is_plain(cell.source):
            node.outputs = [_capped(o) for o in run_plain_cell(cell.source, self.namespace, backend,
                                                                self.options.ignore_pattern or "",
                                                                describe_error=failure_message,
                                                                folder=self.folder)]
            grade.score, grade.message = score_outputs(node.outputs, grade.max_score)
        else:
            passed, text, printed = run_test_cell(cell.source, self.namespace, backend)
            grade.score = grade.max_score if passed else 0.0
            grade.message = text
            node.outputs = [new_output("stream", name="stdout", text=printed[:TEST_OUTPUT_LIMIT])] \
                if printed else []
            if not passed:
                node.outputs.append(_error_output("AssertionError", text))
        self.timings["test_cells"] += time.monotonic() - started
        self.timings["requests"] += backend.requests
        self.timings["request_seconds"] += backend.request_seconds
        if backend.timed_out:
            self.fault(Status.TIMEOUT, "a test stopped your code at the time limit of the cell", unless_faulted=True)
        if not self.session.alive():
            self.fault(*self._death(), unless_faulted=True)

    def run_test_cell_in_kernel(self, cell: GradedCell, node) -> None:
        """A plain test cell that handles cannot serve: run in the student's kernel, as stock nbgrader does.

        Not tamper-proof (the student's code shares its process); ``dlcourse grade`` warns of each such cell.
        """
        grade = self.grades[cell.grade_id]
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            grade.score, grade.message = 0.0, "not run: the notebook ran past its total time limit"
            node.outputs = [_error_output("TimeoutError", grade.message)]
            self.fault(Status.TIMEOUT, "the notebook ran past its total time limit", unless_faulted=True)
            return
        outputs, run = run_in_kernel(self.session, cell.source, min(self.options.cell_timeout, remaining),
                                     self.options.ignore_pattern or "")
        self.execution_count += 1
        node.execution_count = self.execution_count
        node.outputs = outputs
        grade.score, grade.message = score_outputs(outputs, grade.max_score)
        if run.status == "timeout":
            self.fault(Status.TIMEOUT, f"a test cell ran longer than the limit of {self.options.cell_timeout:.0f} s",
                       unless_faulted=True)
        elif run.status == "died" or not self.session.alive():
            grade.score, grade.message = 0.0, "the notebook's kernel died while this test ran"
            self.fault(*self._death(), unless_faulted=True)

    def run(self) -> None:
        """Start the kernel and run every cell in order; always stops the kernel."""
        try:
            self.start()
            for cell in self.cells:
                node = _notebook_cell(cell)
                self.nodes.append(node)
                if cell.cell_type != "code":
                    continue
                if cell.role == "test":
                    self.run_test_cell(cell, node)
                elif not self.run_student_cell(cell, node):
                    break
        finally:
            if self.sandbox is not None and self.status in (Status.CRASHED, Status.OK) \
                    and self.sandbox.out_of_memory():
                self.fault(Status.MEMORY, _MEMORY_MESSAGE)
            started = time.monotonic()
            self.session.shutdown()
            self.folder.close()
            self.timings["teardown"] = time.monotonic() - started
            self.timings.update(getattr(self.session, "timings", {}))

    def graded_notebook(self):
        return nbformat.v4.new_notebook(cells=self.nodes, metadata=self.master.metadata)


def grade_notebook(master_path: Path, submission_path: Path | None, options: GradingOptions | None = None,
                   workdir: Path | None = None) -> NotebookResult:
    """Grade one notebook: the student's cells in a kernel, the tests here."""
    options = options or GradingOptions()
    master = read_notebook(Path(master_path))
    name = Path(master_path).stem
    started = time.monotonic()
    if submission_path is None or not Path(submission_path).exists():
        return _unrunnable(master, name, Status.MISSING, f"no notebook {name}.ipynb was handed in", started)
    try:
        student = read_notebook(Path(submission_path))
    except ValueError as error:
        return _unrunnable(master, name, Status.INVALID_NOTEBOOK, str(error), started)
    try:  # AUTOTEST cells graded as stock nbgrader expands them (from the master, never the submission)
        tests = expanded_tests(Path(master_path))
    except AutotestError as error:
        return _unrunnable(master, name, Status.ERROR, str(error), started)
    own_workdir = workdir is None
    workdir = Path(workdir or make_dir("dlcourse-work-"))
    try:
        copy_submission(Path(submission_path).parent, workdir)
        lay_out_supporting_files(Path(master_path).parent, workdir)  # as stock's autograde: source/ overwrites
        run = NotebookRun(master, name, merge_with_master(master, student, tests), options, workdir,
                          master_folder=Path(master_path).parent)
        run.run()
    finally:
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    return NotebookResult(name=name, status=run.status, cells=list(run.grades.values()), message=run.message,
                          seconds=time.monotonic() - started, graded=run.graded_notebook(), timings=run.timings)


def _unrunnable(master, name: str, status: Status, message: str, started: float) -> NotebookResult:
    """A notebook that could not be run at all: every test scores 0 with ``message``."""
    cells = list(empty_grades(master, name).values())
    for grade in cells:
        if grade.kind == "test":
            grade.message = message
    return NotebookResult(name=name, status=status, cells=cells, message=message,
                          seconds=time.monotonic() - started)


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


def _notebook_cell(cell: GradedCell):
    node = new_cell(cell.cell_type, cell.source)
    node.metadata = nbformat.from_dict(cell.metadata)
    return node


def _capped(output):
    if output.get("output_type") == "stream" and len(output.get("text", "")) > TEST_OUTPUT_LIMIT:
        output["text"] = output["text"][:TEST_OUTPUT_LIMIT]
    return output


def _error_output(name: str, text: str):
    return new_output("error", ename=name, evalue=text[:2000], traceback=[f"{name}: {text[:2000]}"])


def _is_memory_error(run) -> bool:
    return run.error_name == "MemoryError" or "can't allocate memory" in run.error_value \
        or "not enough memory" in run.error_value
