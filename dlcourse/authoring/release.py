"""Generating student releases from the masters, with nbgrader.

``nbgrader generate_assignment`` also records the assignment's notebooks and
cells in the gradebook (see :func:`dlcourse.grading.gradebook.ensure_in_gradebook`).
"""

from __future__ import annotations

from pathlib import Path

from ..core.course import CourseLayout
from ..core.nbgrader import generate_assignment, run_nbgrader, with_tools_on_path  # noqa: F401 (run_nbgrader, with_tools_on_path: their old home)


def generate_release(layout: CourseLayout, assignment: str, release_dir: Path | None = None,
                     db_url: str | None = None) -> Path:
    """Student notebooks of ``assignment`` from ``source/`` (nbgrader generate_assignment).

    With ``release_dir``/``db_url`` it writes elsewhere (used to check that
    the committed ``release/`` is current without touching it).
    """
    generate_assignment(layout, assignment, release_dir=release_dir, db_url=db_url)
    released = Path(release_dir or layout.release) / assignment
    strip_exam_metadata(released)
    add_colab_setup(layout, released)
    return released


def add_colab_setup(layout: CourseLayout, folder: Path, repository: str = "") -> None:
    """Every released notebook but an exam's starts with the locked Colab set-up cell (a no-op elsewhere;
    :mod:`dlcourse.student.colab`). ``dlcourse student-kit --github`` writes its repository into it."""
    from ..exam import exam_assignments
    from ..student.colab import add_setup_cell

    if folder.name not in exam_assignments(layout):  # an exam is sat in the exam lab, never on Colab
        add_setup_cell(folder, repository)


def strip_exam_metadata(folder: Path) -> None:
    """Removes the exam's split of the items (``metadata["dlcourse"]["exam"]``, see docs/exam.md) from
    released notebooks: it is the examiners' (points and partial credit), and nbgrader copies cell metadata."""
    import nbformat

    for path in sorted(Path(folder).glob("*.ipynb")):
        notebook = nbformat.read(str(path), as_version=4)
        found = False
        for cell in notebook.cells:
            ours = cell.metadata.get("dlcourse")
            if isinstance(ours, dict) and "exam" in ours:
                del ours["exam"]
                if not ours:
                    del cell.metadata["dlcourse"]
                found = True
        if found:
            nbformat.write(notebook, str(path))


class StrictTestsRefused(RuntimeError):
    """A strict assignment (``c.Dlcourse.strict_tests``) has test cells that would run in the student's kernel."""


def check_strict_tests(layout: CourseLayout, assignment: str) -> None:
    """Refuse, naming each cell and why, when a strict assignment has a test cell that needs the kernel."""
    from ..core.config import course_settings
    from ..core.testcode import kernel_cells

    if not course_settings(layout.root).strict(assignment):
        return
    cells = kernel_cells(layout.masters(assignment))
    if cells:
        lines = [f"  {notebook} {cell}: {reason}" for notebook, cell, reason in cells]
        raise StrictTestsRefused(
            f"{assignment} is strict (c.Dlcourse.strict_tests in nbgrader_config.py), but these test cells "
            f"would run in the student's kernel, where they are not tamper-proof:\n" + "\n".join(lines)
            + "\nRewrite them (see docs/authoring.md) or take the assignment out of c.Dlcourse.strict_tests.")


def release_assignments(layout: CourseLayout, assignments: list[str] | None = None) -> list[Path]:
    """Regenerate ``release/`` for ``assignments`` (default: every assignment of ``source/``)."""
    names = assignments or layout.assignments()
    for name in names:
        layout.require_assignment(name)
        check_strict_tests(layout, name)
    return [generate_release(layout, name) for name in names]
