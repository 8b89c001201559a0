"""The reference first: the master's own solutions graded before any student, on this machine.

A test the reference solution fails here is a fault of the machine (a
missing data set, a missing package, a limit too tight) or of the master,
never of a student. :func:`check_reference` grades the master notebooks as
a submission, with the students' options and through the same executor,
and returns the cells that did not get full marks, each with its reason.
``dlcourse grade`` stops on them (``ReferenceFailed``), or with
``--force`` marks them ``not graded: grader fault`` for every student
(:func:`mark_grader_faults`): no points, no maximum.

The check is cached in ``autograded/.reference/<assignment>/reference.json``
under a fingerprint of the master, the options, the grader's version, the
data sets present and the host, and in the machine's cache
(``$DLCOURSE_CACHE``, else the user cache folder that platformdirs names,
``$XDG_CACHE_HOME/dlcourse`` or ``~/.cache/dlcourse``: ``reference/<fingerprint>.json``), so it costs one
notebook run per assignment and machine, also across copies of a course.
(The file's name is not ``.dlcourse-result.json``, so nothing takes the
reference for a student.)
"""

from __future__ import annotations

import hashlib
import json
import platform
import socket
from concurrent.futures import Executor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import nbformat

from ..core.config import cache_dir
from ..core.course import CourseLayout
from ..core.notebook import atomic_write, grade_id, is_test_cell
from .autotest import course_templates
from .results import GRADER_FAULT, GRADER_VERSION, GradingOptions, Status, SubmissionResult
from .submission import GradingJob, grade_submission

REFERENCE_ID = "(reference)"
REFERENCE_FILE = "reference.json"
#: What a student reads for a cell excluded by a grader fault (no reason: it may name the grader's files).
STUDENT_MESSAGE = (f"{GRADER_FAULT}: this test could not be graded on the grading machine; it counts neither "
                   "for nor against you")
_REASON_LINES = 12


@dataclass
class ReferenceCheck:
    """The reference's grading: ``faults`` maps (notebook, grade_id) to the reason it lost points."""

    assignment: str
    faults: dict[tuple[str, str], str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # notebook-level: status not ok, errors in set-up cells
    cached: bool = False

    @property
    def ok(self) -> bool:
        return not self.faults and not self.problems

    def lines(self) -> list[str]:
        out = [f"  {problem}" for problem in self.problems]
        for (notebook, cell), reason in sorted(self.faults.items()):
            first, *rest = reason.splitlines() or [""]
            out.append(f"  {notebook} {cell}: {first}")
            out += [f"      {line}" for line in rest]
        return out

    def refusal(self) -> str:
        return "\n".join(
            [f"the reference solutions of {self.assignment} do not get full marks on this machine, so no student "
             "was graded (their points would be lost to the machine, not to their work):", *self.lines(),
             "Fix what is named above (see the reference's graded notebooks in "
             f"autograded/.reference/{self.assignment}/) and grade again, or pass --force to grade anyway with "
             f"these cells marked '{GRADER_FAULT}' for every student (no points, not in the maximum)."])

    def warnings(self) -> list[str]:
        if self.ok:
            return []
        return [f"GRADER FAULT: the reference solutions of {self.assignment} do not get full marks on this machine; "
                f"graded with --force, these cells are '{GRADER_FAULT}' for every student (not in the score, "
                "not in the maximum):", *self.lines()]

    def to_json(self) -> dict:
        return {"faults": [[nb, cell, reason] for (nb, cell), reason in sorted(self.faults.items())],
                "problems": self.problems}


def reference_fingerprint(master_dir: Path, options: GradingOptions) -> str:
    """Master files, options, grader version, the data sets present (names and sizes) and the host."""
    digest = hashlib.sha256(GRADER_VERSION.encode())
    digest.update(options.fingerprint().encode())
    digest.update(course_templates(Path(master_dir)))  # AUTOTEST's templates (see .autotest)
    for path in sorted(Path(master_dir).rglob("*")):
        if path.is_file() and not path.is_symlink():
            digest.update(str(path.relative_to(master_dir)).encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    for folder in map(Path, options.read_only):
        for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
            if path.is_file():
                digest.update(f"{path.relative_to(folder)}:{path.stat().st_size}".encode())
    digest.update(f"{socket.gethostname()}|{platform.platform()}|{platform.python_version()}".encode())
    for package in ("torch", "numpy", "ipykernel"):
        try:
            digest.update(f"{package}={metadata.version(package)}".encode())
        except metadata.PackageNotFoundError:
            pass
    return digest.hexdigest()


def machine_cache() -> Path:
    """This machine's dlcourse cache folder (it need not exist): :func:`dlcourse.core.config.cache_dir`."""
    return cache_dir()


def _read_check(path: Path, stamp: str) -> dict | None:
    """A stored check under this fingerprint, or None."""
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if isinstance(stored, dict) and stored.get("fingerprint") == stamp and isinstance(stored.get("check"), dict):
        return stored
    return None


def _reason(message: str) -> str:
    """A test's message without its traceback, a few lines at most."""
    lines = []
    for line in (message or "the test failed").splitlines():
        if line.startswith("Traceback") or len(lines) >= _REASON_LINES:
            break
        lines.append(line)
    return "\n".join(lines).strip() or "the test failed"


def _set_up_errors(graded: dict | None) -> list[str]:
    """The errors the reference's own (non-test) cells raised, e.g. a data set missing at load time."""
    errors = []
    notebook = nbformat.from_dict(graded) if graded else None
    for number, cell in enumerate(notebook.cells if notebook else [], 1):
        if cell.cell_type != "code" or is_test_cell(cell):
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                where = f"cell {number}" + (f" ({grade_id(cell)})" if grade_id(cell) else "")
                errors.append(f"{where} raised {output.get('ename')}: {_reason(output.get('evalue', ''))}")
    return errors


def judge(result: SubmissionResult) -> ReferenceCheck:
    """Which cells of the reference's result fell short of full marks, and why."""
    check = ReferenceCheck(result.assignment)
    for notebook in result.notebooks:
        for error in _set_up_errors(notebook.graded):
            check.problems.append(f"{notebook.name}: {error}")
        short = [c for c in notebook.cells if c.kind == "test" and (c.score or 0) < c.max_score]
        for cell in short:
            check.faults[(notebook.name, cell.grade_id)] = _reason(cell.message or notebook.message)
        if notebook.status not in (Status.OK, Status.RENAMED) and not short:
            check.problems.append(f"{notebook.name}: {notebook.status}: {_reason(notebook.message)}")
    for warning in result.warnings:
        check.problems.append(warning)
    return check


def check_reference(layout: CourseLayout, assignment: str, options: GradingOptions,
                    executor: Executor | None = None, log=None, while_waiting=None) -> ReferenceCheck:
    """Grade the master's solutions (or reuse the cached check); ``log(line)`` hears what happens.

    ``while_waiting()`` is called once, while a worker grades the reference
    (or at once when the check is cached): the caller's own set-up overlaps it.
    """
    while_waiting = while_waiting or (lambda: None)
    log = log or (lambda line: None)
    master_dir = layout.require_assignment(assignment)
    folder = layout.autograded / ".reference" / assignment
    stamp = reference_fingerprint(master_dir, options)
    shared = machine_cache() / "reference" / f"{stamp}.json"
    stored = _read_check(folder / REFERENCE_FILE, stamp)
    if stored is None:  # another copy of this course, or another course with this master, checked it here
        stored = _read_check(shared, stamp)
        if stored is not None:
            _write_course_copy(folder, stored)
    if stored is not None:
        check = ReferenceCheck(assignment, {(nb, cell): reason for nb, cell, reason in stored["check"]["faults"]},
                               list(stored["check"]["problems"]), cached=True)
        log(f"reference solutions of {assignment}: checked before on this machine "
            f"({'full marks' if check.ok else 'NOT full marks'}; autograded/.reference/{assignment}/)")
        while_waiting()
        return check
    log(f"checking the reference solutions of {assignment} ...")
    job = GradingJob(REFERENCE_ID, assignment, str(master_dir), str(master_dir), options, fingerprint=stamp)
    if executor is None:
        while_waiting()
        result = grade_submission(job)
    else:
        future = executor.submit(grade_submission, job)
        while_waiting()
        try:
            result = future.result()
        except Exception as error:  # the worker died: the machine's fault too
            result = SubmissionResult(REFERENCE_ID, assignment, Status.ERROR, [],
                                      warnings=[f"the grader's worker failed on the reference: {error}"])
    check = judge(result)
    stored = {"fingerprint": stamp, "check": check.to_json(), "result": result.to_json(),
              "graded": {nb.name: nb.graded for nb in result.notebooks if nb.graded is not None}}
    _write_course_copy(folder, stored)
    if check.ok:  # a failure is checked again next time, in any course: it may be the machine's passing hiccup
        try:
            shared.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(shared, json.dumps(stored))
        except OSError:  # a read-only home: the course's own copy still serves
            pass
    log(f"reference solutions of {assignment}: " + ("full marks" if check.ok else "NOT full marks"))
    return check


def _write_course_copy(folder: Path, stored: dict) -> None:
    """The check and the reference's graded notebooks in the course (``autograded/.reference/<assignment>/``)."""
    for name, graded in (stored.get("graded") or {}).items():
        atomic_write(folder / f"{Path(name).name}.ipynb", nbformat.writes(nbformat.from_dict(graded)))
    atomic_write(folder / REFERENCE_FILE, json.dumps({key: value for key, value in stored.items() if key != "graded"},
                                                     indent=1))


def faults_digest(check: ReferenceCheck | None) -> str:
    """Part of each student's fingerprint while cells are excluded (so fixing the machine regrades them)."""
    if check is None or not check.faults:
        return ""
    return hashlib.sha256(json.dumps(sorted(check.faults)).encode()).hexdigest()


def mark_grader_faults(result: SubmissionResult, check: ReferenceCheck | None) -> SubmissionResult:
    """The cells the reference failed here become ``not graded: grader fault``: no score, not in the maximum."""
    if check is None or not check.faults:
        return result
    for notebook in result.notebooks:
        for cell in notebook.cells:
            if (notebook.name, cell.grade_id) in check.faults:
                cell.state, cell.score, cell.message = GRADER_FAULT, None, STUDENT_MESSAGE
    return result
