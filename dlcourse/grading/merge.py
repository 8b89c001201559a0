"""Step 1: rebuild a submission on the master's skeleton.

Answer cells come from the student, test and locked cells from the master,
so a student who edits, deletes, duplicates or reorders test cells changes
nothing in what is graded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..student.colab import CELL_ID as COLAB_CELL_ID, SETUP_TAG as COLAB_SETUP_TAG
from ..core.notebook import (
    cell_source,
    grade_id,
    is_manual_cell,
    is_test_cell,
    nbgrader_meta,
)


@dataclass
class GradedCell:
    """One cell of the notebook as it is graded."""

    cell_type: str  # "code", "markdown" or "raw"
    source: str
    role: str  # "answer", "manual", "test", "locked" (from the master) or "extra" (the student's own cell)
    grade_id: str | None = None
    metadata: dict = field(default_factory=dict)

    @property
    def runs_in_kernel(self) -> bool:
        """Student code and set-up run in the student's kernel; test cells never do."""
        return self.cell_type == "code" and self.role != "test"


def merge_with_master(master, student, tests: dict[str, str] | None = None) -> list[GradedCell]:
    """The cells to grade: the master's skeleton with the student's answers.

    Answer cells (``solution``) are taken from the student by ``grade_id``
    (the first one when duplicated; an empty answer when missing or retyped);
    test cells, locked cells and manual cells' prompts come from the master.
    The student's own extra code cells stay where they were, after the
    graded cell they followed. Master cells without a ``grade_id`` are not
    graded material: the student's copy of them, if any, runs as an extra.
    The release's Colab set-up cell is left out whatever the student made of
    it: no master holds it, and a locked cell must change nothing graded.
    ``tests`` (grade_id -> source) replaces the master's source of those test
    cells: its AUTOTEST cells as nbgrader expands them (:mod:`.autotest`).
    """
    tests = tests or {}
    student_cells = [c for c in student.get("cells", []) if isinstance(c, dict)]
    master_ids = {grade_id(c) for c in master.cells if grade_id(c)}
    answers: dict[str, dict] = {}
    extras_after: dict[str | None, list[dict]] = {}
    previous_id: str | None = None
    for cell in student_cells:
        cell_id = grade_id(cell)
        if cell_id in master_ids:
            if nbgrader_meta(cell).get("solution") and cell_id not in answers:
                answers[cell_id] = cell
            previous_id = cell_id
        elif _is_colab_setup(cell):
            continue  # the release's own set-up cell (no master holds it): edited or not, it is not graded material
        elif cell.get("cell_type") == "code" and not nbgrader_meta(cell).get("grade"):
            extras_after.setdefault(previous_id, []).append(cell)
    merged = _extras(extras_after.get(None, []))
    for cell in master.cells:
        cell_id = grade_id(cell)
        if not cell_id:
            continue  # unmarked master cells: the student's copy is the one that counts
        if nbgrader_meta(cell).get("solution"):
            mine = answers.get(cell_id)
            source = cell_source(mine) if mine and mine.get("cell_type") == cell.cell_type else ""
            role = "manual" if is_manual_cell(cell) else "answer"
        else:
            role = "test" if is_test_cell(cell) else "locked"
            source = tests.get(cell_id, cell.source) if role == "test" else cell.source
        merged.append(GradedCell(cell.cell_type, source, role, cell_id, dict(cell.metadata)))
        merged.extend(_extras(extras_after.get(cell_id, [])))
    return merged


def _is_colab_setup(cell: dict) -> bool:
    """The locked Colab set-up cell that ``dlcourse release`` puts first (:mod:`dlcourse.student.colab`)."""
    tags = (cell.get("metadata") or {}).get("tags") or []
    return cell.get("id") == COLAB_CELL_ID or (isinstance(tags, list) and COLAB_SETUP_TAG in tags)


def _extras(cells: list[dict]) -> list[GradedCell]:
    return [GradedCell("code", cell_source(c), "extra") for c in cells]
