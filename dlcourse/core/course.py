"""A course on disk: nbgrader's folders, its assignments and students.

One rule finds the course a command works on (:func:`course_root`): the
folder given (``--course``), else ``$DLCOURSE_ROOT``, else the nearest folder
at or above the working directory that holds ``nbgrader_config.py``, else
the working directory itself (a student's folder of notebooks needs no
config). Commands that need masters say so when ``source/`` is missing.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from .config import CONFIG_NAME, data_override, read_config, root_override  # noqa: F401 (read_config: re-exported)

RESULT_NAME = ".dlcourse-result.json"
#: The file ``dlcourse student-kit`` writes into its copy of the package: this copy is a student's.
STUDENT_KIT_MARKER = "STUDENT_KIT"


def student_kit() -> bool:
    """Whether this copy of ``dlcourse`` is a student kit's (no masters, no grader, no formgrader)."""
    return (Path(__file__).resolve().parents[1] / STUDENT_KIT_MARKER).is_file()  # dlcourse/STUDENT_KIT


def find_course_root(start: Path | None = None) -> Path:
    """The folder with ``nbgrader_config.py`` at or above ``start`` (default: cwd), else ``start``."""
    start = Path(start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / CONFIG_NAME).is_file():
            return folder
    return start


def course_root(explicit: str | Path | None = None) -> Path:
    """The course a command works on: ``explicit``, ``$DLCOURSE_ROOT`` or :func:`find_course_root`."""
    given = explicit or root_override()
    return Path(given).resolve() if given else find_course_root()


class CourseLayout:
    """nbgrader's folders, relative to the course root."""

    def __init__(self, root: Path, submissions: Path | None = None):
        self.root = Path(root).resolve()
        self.source = self.root / "source"
        self.release = self.root / "release"
        self.submitted = Path(submissions).resolve() if submissions else self.root / "submitted"
        self.autograded = self.root / "autograded"
        self.reports = self.root / "reports"
        self.feedback = self.root / "feedback"
        self.db_url = f"sqlite:///{self.root / 'gradebook.db'}"

    def assignments(self) -> list[str]:
        """Assignments with master notebooks in ``source/``."""
        if not self.source.is_dir():
            return []
        return sorted(d.name for d in self.source.iterdir()
                      if d.is_dir() and not d.name.startswith(".") and any(d.glob("*.ipynb")))

    def masters(self, assignment: str) -> list[Path]:
        return sorted((self.source / assignment).glob("*.ipynb"))

    def students(self, assignment: str) -> list[str]:
        """Students with a folder for ``assignment`` in the submissions folder."""
        if not self.submitted.is_dir():
            return []
        return sorted(d.name for d in self.submitted.iterdir()
                      if d.is_dir() and (d / assignment).is_dir() and not d.name.startswith("."))

    def submission_dir(self, student_id: str, assignment: str) -> Path:
        return self.submitted / student_id / assignment

    def autograded_dir(self, student_id: str, assignment: str) -> Path:
        return self.autograded / student_id / assignment

    def result_path(self, student_id: str, assignment: str) -> Path:
        return self.autograded_dir(student_id, assignment) / RESULT_NAME

    def result_paths(self, assignment: str) -> list[Path]:
        return sorted(self.autograded.glob(f"*/{assignment}/{RESULT_NAME}"))

    def require_assignment(self, assignment: str) -> Path:
        """The master folder of ``assignment``, or a FileNotFoundError that lists the ones there are."""
        folder = self.source / assignment
        if folder.is_dir() and any(folder.glob("*.ipynb")):
            return folder
        known = self.assignments()
        if not self.source.is_dir():
            raise FileNotFoundError(f"{self.root} is not a course: it has no source/ folder of master notebooks "
                                    f"(run inside the course, or pass --course)")
        raise FileNotFoundError(no_such("assignment", assignment, known, self.source))

    def require_students(self, assignment: str, students: list[str]) -> list[str]:
        """``students`` if each has a submission of ``assignment``, else a FileNotFoundError naming the ones there are."""
        known = self.students(assignment)
        for student in students:
            if student not in known:
                raise FileNotFoundError(no_such("student", student, known, self.submitted / "<student>" / assignment))
        return students


def no_such(kind: str, name: str, known: list[str], where) -> str:
    """The one wording of a wrong name: there is no <kind> 'name' in <where> (<kind>s: ...); did you mean ...?"""
    listed = ", ".join(known) if known else "none"
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"there is no {kind} {name!r} in {where} ({kind}s: {listed}){hint}"


def data_root() -> Path:
    """Where the data sets live: ``$DLCOURSE_DATA`` if set, else ``data/`` beside the package.

    Beside the package is the course repository's ``data/`` for the instructor (the grader's sandbox
    mounts it read-only), and the kit's ``data/`` for a student who installed the kit as its README
    says (``pip install -e .``). A kit installed into site-packages uses ``~/dlcourse-data`` instead.
    """
    configured = data_override()
    if configured:
        return configured
    beside = Path(__file__).resolve().parents[2]  # the folder that holds dlcourse/
    if student_kit() and beside.name in ("site-packages", "dist-packages"):
        return Path.home() / "dlcourse-data"
    return beside / "data"
