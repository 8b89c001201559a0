"""One student: every notebook of the assignment, and the fingerprint that makes a rerun resume.

A hand-in with some of the assignment's notebooks is graded on those; each
notebook not handed in is ``missing`` (its tests score 0, as stock nbgrader
scores them), and the submission is ``missing`` only when none was handed in.
"""

from __future__ import annotations

import hashlib
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from .autotest import course_templates
from .results import (
    GRADER_VERSION,
    GradingOptions,
    NotebookResult,
    Status,
    SubmissionResult,
)


@dataclass
class GradingJob:
    """What a worker needs to grade one student (paths on a filesystem the worker shares)."""

    student_id: str
    assignment: str
    submission_dir: str
    master_dir: str
    options: GradingOptions
    fingerprint: str = ""  # of the inputs; computed once by whoever makes the job (see :func:`fingerprint`)


def fingerprint(job: GradingJob) -> str:
    """A digest of everything that decides the grades: grader version, options, masters, submission."""
    digest = hashlib.sha256(GRADER_VERSION.encode())
    digest.update(job.options.fingerprint().encode())
    digest.update(course_templates(Path(job.master_dir)))  # AUTOTEST's templates (see .autotest)
    for root in (Path(job.master_dir), Path(job.submission_dir)):
        for path in sorted(root.rglob("*")) if root.exists() else []:
            if path.is_file() and not path.is_symlink():
                digest.update(str(path.relative_to(root)).encode())
                digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def grade_submission(job: GradingJob) -> SubmissionResult:
    """Grade every master notebook of the assignment against the student's folder."""
    started = time.monotonic()
    masters = sorted(Path(job.master_dir).glob("*.ipynb"))
    submitted = sorted(p for p in Path(job.submission_dir).glob("*.ipynb") if p.is_file())
    unmatched = [p for p in submitted if p.stem not in {m.stem for m in masters}]
    notebooks = []
    for master in masters:
        path = Path(job.submission_dir) / master.name
        renamed = False
        if not path.exists() and len(masters) == 1 and len(unmatched) == 1:
            path, renamed = unmatched[0], True
        try:
            result = _grade_notebook()(master, path if path.exists() else None, job.options)
        except Exception as error:  # a bug of ours must not lose the other students' grades
            result = NotebookResult(name=master.stem, status=Status.ERROR, cells=[],
                                    message=f"internal grader error: {type(error).__name__}: {error}\n"
                                            f"{traceback.format_exc()[-2000:]}")
        if renamed and result.status == Status.OK:
            result.status = Status.RENAMED
            result.message = f"graded {path.name} in place of {master.name}"
        notebooks.append(result)
    return SubmissionResult(student_id=job.student_id, assignment=job.assignment,
                            status=submission_status(notebooks), notebooks=notebooks,
                            fingerprint=job.fingerprint or fingerprint(job), seconds=time.monotonic() - started)


def _grade_notebook():
    """:func:`.run.grade_notebook`, imported when a notebook is graded: it brings torch, which
    the ``dlcourse grade`` process itself never needs (its workers grade)."""
    from .run import grade_notebook

    return grade_notebook


def submission_status(notebooks: list[NotebookResult]) -> Status:
    """The worst status of the notebooks handed in; ``missing`` only when none was (per notebook, as stock)."""
    handed_in = [nb.status for nb in notebooks if nb.status != Status.MISSING]
    return Status.worst(handed_in) if handed_in else Status.worst(nb.status for nb in notebooks)

