"""A notebook's public tests, run the way ``nbgrader validate`` runs them, on a copy.

:func:`run_public_tests` never raises: what failed, what is unanswered and what
the student changed in a test cell come back in a :class:`TestReport`, which
the hand-in (:mod:`dlcourse.student.handin`) reports and prints on the PDF.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..core.course import CONFIG_NAME, read_config
from ..core.notebook import grade_id as cell_grade_id, is_graded_cell, is_manual_cell

@dataclass
class TestReport:
    notebook: str
    seconds: float = 0.0
    passed: int = 0
    failed: list[dict] = field(default_factory=list)  # {"grade_id", "source", "error"}
    unanswered: list[str] = field(default_factory=list)  # written answers still empty
    changed: int = 0  # test cells whose source differs from the release
    error: str = ""  # the tests could not be run at all
    executed: object = None  # the executed copy (nbformat node)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.error and not self.changed

    def summary(self) -> str:
        if self.error:
            return f"tests could not run: {self.error}"
        parts = []
        if self.failed:
            parts.append(f"{len(self.failed)} of {len(self.failed) + self.passed} test cells FAIL")
        else:
            parts.append(f"all {self.passed} test cells pass" if self.passed else "no public tests")
        if self.unanswered:
            parts.append(f"{len(self.unanswered)} written answer(s) still empty")
        if self.changed:
            parts.append(f"{self.changed} test cell(s) CHANGED by you (grading uses the originals)")
        return "; ".join(parts) + f" ({self.seconds:.1f} s)"


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _cell_error(cell) -> str:
    """The last line of the error a test cell shows (what the student needs to read)."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            lines = [_ANSI.sub("", line) for line in output.get("traceback", [])]
            text = "\n".join(lines).strip().splitlines()
            last = f"{output.get('ename', 'Error')}: {output.get('evalue', '')}".strip()
            return last if output.get("evalue") or not text else text[-1]
        if output.get("output_type") == "stream" and output.get("name") == "stderr":
            return "wrote to stderr (scored 0): " + _ANSI.sub("", output.get("text", "")).strip()[:200]
    return "partial credit: some checks failed"


def _nbgrader_config(course_root: Path):
    return read_config(course_root / CONFIG_NAME)


def run_public_tests(notebook_path: Path, course_root: Path) -> TestReport:
    """Runs the notebook like ``nbgrader validate``, on a copy; never raises."""
    from nbgrader import utils as nbg_utils
    from nbgrader.validator import Validator

    class KeepingValidator(Validator):
        executed = None

        def _preprocess(self, nb):
            nb = super()._preprocess(nb)
            self.executed = nb
            return nb

    report = TestReport(notebook_path.name)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dlcourse-handin-") as tmp:
        work = Path(tmp) / notebook_path.parent.name
        shutil.copytree(notebook_path.parent, work,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.zip", "*.pdf"))
        validator = KeepingValidator(config=_nbgrader_config(course_root))
        validator.log.setLevel(logging.WARNING)
        try:
            results = validator.validate(str(work / notebook_path.name))
        except Exception as error:  # a dead kernel, a timeout, a broken notebook
            report.error = f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
            results = {}
        executed = validator.executed
    report.seconds = time.perf_counter() - start
    report.executed = executed
    if "type_changed" in results:
        report.error = (f"{len(results['type_changed'])} cell(s) changed type (code <-> markdown); "
                        "undo that, or grading will fail")
    report.changed = len(results.get("changed", []))
    if executed is not None:
        for cell in executed.cells:
            if not is_graded_cell(cell):
                continue
            score, max_score = nbg_utils.determine_grade(cell, validator.log)
            grade_id = cell_grade_id(cell) or "?"
            if cell.cell_type != "code":
                if is_manual_cell(cell) and score is not None and score < max_score:
                    report.unanswered.append(grade_id)
                continue
            if score is not None and score < max_score:
                report.failed.append({"grade_id": grade_id, "source": cell.source,
                                      "error": _cell_error(cell)})
            else:
                report.passed += 1
    return report
