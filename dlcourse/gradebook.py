"""nbgrader's side of the course: generating releases and the gradebook.

Only the main ``dlcourse`` process writes the gradebook (one SQLite writer,
so no "database is locked"); workers return their results to it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

from .grading import CourseLayout, SubmissionResult


def _put_environment_on_path() -> None:
    """nbgrader runs `alembic` and `jupyter` by name: use this environment's."""
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


_put_environment_on_path()


def assignments(layout: CourseLayout) -> list[str]:
    return sorted(d.name for d in layout.source.iterdir()
                  if d.is_dir() and not d.name.startswith(".") and any(d.glob("*.ipynb")))


def run_nbgrader(layout: CourseLayout, *args: str) -> subprocess.CompletedProcess:
    """Run an nbgrader command in the course root, with the course's config."""
    command = [sys.executable, "-m", "nbgrader", *args]
    process = subprocess.run(command, cwd=layout.root, capture_output=True, text=True)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(['nbgrader', *args])} failed:\n{process.stdout[-3000:]}{process.stderr[-3000:]}")
    return process


def generate_release(layout: CourseLayout, assignment: str, release_dir: Path | None = None,
                     db_url: str | None = None) -> Path:
    """Student notebooks of ``assignment`` from ``source/`` (nbgrader generate_assignment).

    With ``release_dir``/``db_url`` it writes elsewhere (used to check that
    the committed ``release/`` is current without touching it).
    """
    args = ["generate_assignment", assignment, "--force", "--log-level=WARN"]
    if release_dir is not None:
        args.append(f"--CourseDirectory.release_directory={release_dir}")
    if db_url is not None:
        args.append(f"--CourseDirectory.db_url={db_url}")
    run_nbgrader(layout, *args)
    return Path(release_dir or layout.root / "release") / assignment


def ensure_in_gradebook(layout: CourseLayout, assignment: str) -> None:
    """Make sure the gradebook knows the assignment's notebooks and cells.

    ``generate_assignment`` records them; it is run into a scratch release
    folder so that ``release/`` itself is left alone.
    """
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(layout.db_url) as gradebook:
        try:
            known = {nb.name for nb in gradebook.find_assignment(assignment).notebooks}
        except MissingEntry:
            known = set()
    wanted = {p.stem for p in (layout.source / assignment).glob("*.ipynb")}
    if wanted <= known:
        return
    with tempfile.TemporaryDirectory() as scratch:
        generate_release(layout, assignment, release_dir=Path(scratch))


class GradebookRecorder:
    """Writes each student's automatic scores into nbgrader's gradebook."""

    def __init__(self, layout: CourseLayout, assignment: str):
        from nbgrader.api import Gradebook

        ensure_in_gradebook(layout, assignment)
        self.assignment = assignment
        self.gradebook = Gradebook(layout.db_url)

    def __call__(self, result: SubmissionResult) -> None:
        from nbgrader.api import MissingEntry

        gradebook = self.gradebook
        gradebook.update_or_create_student(result.student_id)
        with warnings.catch_warnings():
            # nbgrader's own SQLAlchemy "not in session" notices; harmless.
            warnings.simplefilter("ignore")
            gradebook.update_or_create_submission(self.assignment, result.student_id)
        for notebook in result.notebooks:
            for cell in notebook.cells:
                try:
                    grade = gradebook.find_grade(cell.grade_id, notebook.name, self.assignment, result.student_id)
                except MissingEntry:
                    continue
                if cell.kind == "test":
                    grade.auto_score = cell.score
                    grade.needs_manual_grade = grade.manual_score is not None
                else:
                    grade.auto_score = None
                    grade.needs_manual_grade = grade.manual_score is None
        gradebook.db.commit()

    def close(self) -> None:
        self.gradebook.close()
