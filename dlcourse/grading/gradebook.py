"""nbgrader's gradebook: automatic scores in, manual scores out.

Only the main ``dlcourse`` process writes the gradebook (one SQLite writer,
so no "database is locked"); grading workers return their results to it.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.course import CourseLayout
from ..core.nbgrader import generate_assignment, with_tools_on_path

if TYPE_CHECKING:  # grading records through this module; it must not import grading back
    from .results import SubmissionResult


def open_gradebook(layout: CourseLayout):
    """nbgrader's ``Gradebook`` of the course (it runs ``alembic`` by name when it creates one)."""
    from nbgrader.api import Gradebook

    os.environ["PATH"] = with_tools_on_path(os.environ)["PATH"]
    return Gradebook(layout.db_url)


def ensure_in_gradebook(layout: CourseLayout, assignment: str) -> None:
    """Make sure the gradebook knows the assignment's notebooks and cells.

    ``generate_assignment`` records them; it is run into a scratch release
    folder so that ``release/`` itself is left alone.
    """
    from nbgrader.api import MissingEntry

    with open_gradebook(layout) as gradebook:
        try:
            known = {nb.name for nb in gradebook.find_assignment(assignment).notebooks}
        except MissingEntry:
            known = set()
    wanted = {p.stem for p in layout.masters(assignment)}
    if wanted <= known:
        return
    with tempfile.TemporaryDirectory() as scratch:
        generate_assignment(layout, assignment, release_dir=Path(scratch))


class GradebookRecorder:
    """Writes each student's automatic scores into nbgrader's gradebook."""

    def __init__(self, layout: CourseLayout, assignment: str):
        ensure_in_gradebook(layout, assignment)
        self.assignment = assignment
        self.gradebook = open_gradebook(layout)
        self._names: dict[str, dict[str, str]] = {}

    def __call__(self, result: SubmissionResult) -> None:
        from nbgrader.api import MissingEntry

        gradebook = self.gradebook
        gradebook.update_or_create_student(result.student_id)
        with warnings.catch_warnings():
            # nbgrader's own SQLAlchemy "not in session" notices; harmless.
            warnings.simplefilter("ignore")
            gradebook.update_or_create_submission(self.assignment, result.student_id)
        for notebook in result.notebooks:
            try:  # one query per notebook, not one per cell (recording is the main process's serial part)
                submitted = gradebook.find_submission_notebook(notebook.name, self.assignment, result.student_id)
            except MissingEntry:
                continue
            names = self._cell_names(notebook.name)
            grades = {names.get(grade.cell_id): grade for grade in submitted.grades}
            for cell in notebook.cells:
                grade = grades.get(cell.grade_id)
                if grade is None:
                    continue
                if cell.kind == "test" and cell.state:  # not graded (a grader fault): left to a human
                    grade.auto_score = None
                    grade.needs_manual_grade = grade.manual_score is None
                elif cell.kind == "test":
                    grade.auto_score = cell.score
                    grade.needs_manual_grade = grade.manual_score is not None
                else:
                    grade.auto_score = None
                    grade.needs_manual_grade = grade.manual_score is None
        gradebook.db.commit()

    def _cell_names(self, notebook: str) -> dict[str, str]:
        """The master's cell ids to grade ids (asking each grade for its name costs a query per cell)."""
        if notebook not in self._names:
            master = self.gradebook.find_notebook(notebook, self.assignment)
            self._names[notebook] = {cell.id: cell.name for cell in [*master.grade_cells, *master.task_cells]}
        return self._names[notebook]

    def close(self) -> None:
        self.gradebook.close()


def manual_grading(layout: CourseLayout, assignment: str, student_id: str) -> tuple[dict, dict]:
    """What graders gave by hand in formgrader, keyed by (notebook, grade_id): (points, comments)."""
    from nbgrader.api import MissingEntry

    scores: dict[tuple[str, str], float] = {}
    comments: dict[tuple[str, str], str] = {}
    with open_gradebook(layout) as gradebook:
        try:
            submission = gradebook.find_submission(assignment, student_id)
        except MissingEntry:
            return scores, comments
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                if grade.manual_score is not None:
                    scores[(notebook.name, grade.name)] = grade.manual_score
            for comment in notebook.comments:
                text = (comment.manual_comment or "").strip()
                if text:
                    comments[(notebook.name, comment.name)] = text
    return scores, comments


def manual_scores(layout: CourseLayout, assignment: str, student_id: str) -> dict[tuple[str, str], float]:
    """(notebook, grade_id) -> the points a grader gave by hand in formgrader."""
    return manual_grading(layout, assignment, student_id)[0]
