"""A tiny course for the grader's own tests: one small master, its release, submissions.

    course = TinyCourse.build(tmp_path / "course")      # source/, release/ (via `dlcourse release`)
    course.submit("alice", answers={"square": GOOD_SQUARE})
    course.submit("bob", raw=b"not json")
    result = course.grade("--workers", "2")             # `dlcourse grade tiny` in a subprocess

The master has two autograded items (``square``: 2 points, ``cube``: 1 point)
and a written answer. The hidden tests compare with a reference on seeded
random inputs and carry :data:`HIDDEN_MARKER`, a string that must never reach
a student (release, feedback, their kernel).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

REPOSITORY = Path(__file__).resolve().parents[2]
if str(REPOSITORY) not in sys.path:
    sys.path.insert(0, str(REPOSITORY))
ASSIGNMENT = "tiny"
NOTEBOOK = "tiny.ipynb"
HIDDEN_MARKER = "HIDDEN-TEST-MARKER-5e1d0c"
MAX_SCORE = 3.0

GOOD_SQUARE = "def square(x):\n    return x * x"
GOOD_CUBE = "def cube(x):\n    return x * x * x"
WRONG_SQUARE = "def square(x):\n    return x + x"
WRONG_CUBE = "def cube(x):\n    return x * x"

#: Options of every `dlcourse grade` run of the tests: small limits (a cell 15 s, a notebook 90 s, 1 GiB).
GRADE_OPTIONS = ("--cell-timeout", "15", "--notebook-timeout", "90", "--memory-gb", "1")

_SQUARE_TESTS = f"""
import torch
from dlcourse.testing import student, assert_close
assert_close(student.square(3.0), 9.0, name="square(3.0)")
### BEGIN HIDDEN TESTS
# {HIDDEN_MARKER}
for seed in range(4):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(seed + 2, 3, generator=g, dtype=torch.float64)
    assert_close(student.square(x), x * x, name="square(x)")
big = torch.randn(300, 300, generator=torch.Generator().manual_seed(7), dtype=torch.float64)  # a 720 kB reply
assert_close(student.square(big), big * big, name="square(x) of a 300 x 300 x")
### END HIDDEN TESTS
"""

_CUBE_TESTS = f"""
import torch
from dlcourse.testing import student, assert_close
assert_close(student.cube(2.0), 8.0, name="cube(2.0)")
### BEGIN HIDDEN TESTS
# {HIDDEN_MARKER}
for seed in range(3):
    x = torch.randn(5, generator=torch.Generator().manual_seed(10 + seed), dtype=torch.float64)
    assert_close(student.cube(x), x ** 3, name="cube(x)")
### END HIDDEN TESTS
"""


def master_cells():
    from dlcourse.authoring import answer, code, md, tests, written

    return [
        md("# Tiny\n\nTwo small functions."),
        code("import torch"),
        md("Write $x^2$, elementwise."),
        answer("square", "def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION"),
        tests("test_square", 2, _SQUARE_TESTS),
        md("Write $x^3$, elementwise."),
        answer("cube", "def cube(x):\n    ### BEGIN SOLUTION\n    return x * x * x\n    ### END SOLUTION"),
        tests("test_cube", 1, _CUBE_TESTS),
        written("why", 1, "Any sensible answer.", "Why is $x^2$ never negative for real $x$?"),
    ]


def python() -> str:
    return sys.executable


def dlcourse_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPOSITORY) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra)
    return env


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (relative path -> digest)."""
    root = Path(root)
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


@dataclass
class GradeRun:
    returncode: int
    stdout: str
    stderr: str
    seconds: float


class TinyCourse:
    def __init__(self, root: Path):
        self.root = Path(root)

    # -- building ---------------------------------------------------------

    @classmethod
    def build(cls, root: Path) -> "TinyCourse":
        from dlcourse.authoring import write_notebook

        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPOSITORY / "nbgrader_config.py", root / "nbgrader_config.py")
        write_notebook(root / "source" / ASSIGNMENT / NOTEBOOK, master_cells())
        process = subprocess.run([python(), "-m", "dlcourse", "--course", str(root), "release", ASSIGNMENT],
                                 cwd=root, env=dlcourse_env(), capture_output=True, text=True, timeout=300)
        assert process.returncode == 0, process.stdout + process.stderr
        course = cls(root)
        assert course.release_path.exists(), "dlcourse release wrote no student notebook"
        return course

    def copy(self, root: Path, students: list[str] | None = None) -> "TinyCourse":
        """A copy of the course (source, release, gradebook) with some submissions."""
        root = Path(root)
        root.mkdir(parents=True)
        for name in ("nbgrader_config.py", "gradebook.db"):
            if (self.root / name).exists():
                shutil.copyfile(self.root / name, root / name)
        for name in ("source", "release"):
            shutil.copytree(self.root / name, root / name)
        for student in students or []:
            shutil.copytree(self.submitted / student, root / "submitted" / student)
        return TinyCourse(root)

    @property
    def master_path(self) -> Path:
        return self.root / "source" / ASSIGNMENT / NOTEBOOK

    @property
    def release_path(self) -> Path:
        return self.root / "release" / ASSIGNMENT / NOTEBOOK

    @property
    def submitted(self) -> Path:
        return self.root / "submitted"

    @property
    def reports(self) -> Path:
        return self.root / "reports" / ASSIGNMENT

    def folder(self, student: str) -> Path:
        return self.submitted / student / ASSIGNMENT

    # -- submissions ------------------------------------------------------

    def released_notebook(self):
        return nbformat.read(str(self.release_path), as_version=4)

    def submit(self, student: str, answers: dict[str, str] | None = None, *, extra_before: dict[str, list[str]] | None = None,
               extra_after: dict[str, list[str]] | None = None, edit=None, name: str = NOTEBOOK,
               raw: bytes | None = None, files: dict[str, bytes] | None = None) -> Path:
        """Write ``submitted/<student>/tiny/<name>``.

        ``answers``: grade_id -> source of the answer cell (the others keep the
        release's stub). ``extra_before``/``extra_after``: grade_id -> code cells
        the student added before/after that cell. ``edit(notebook)`` may change
        the notebook freely before it is written; ``raw`` replaces the file's
        bytes; ``files`` adds other files to the folder.
        """
        folder = self.folder(student)
        folder.mkdir(parents=True, exist_ok=True)
        for relative, data in (files or {}).items():
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
            (folder / relative).write_bytes(data)
        if name is None:
            return folder
        path = folder / name
        if raw is not None:
            path.write_bytes(raw)
            return path
        notebook = self.released_notebook()
        cells = []
        for cell in notebook.cells:
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            for source in (extra_before or {}).get(grade_id, []):
                cells.append(nbformat.v4.new_code_cell(source))
            if grade_id in (answers or {}):
                cell.source = answers[grade_id]
            cells.append(cell)
            for source in (extra_after or {}).get(grade_id, []):
                cells.append(nbformat.v4.new_code_cell(source))
        notebook.cells = cells
        if edit is not None:
            edit(notebook)
        nbformat.write(notebook, str(path))
        return path

    def submit_good(self, student: str, **kwargs) -> Path:
        return self.submit(student, {"square": GOOD_SQUARE, "cube": GOOD_CUBE}, **kwargs)

    # -- grading ----------------------------------------------------------

    def dlcourse(self, *args: str, timeout: float = 900, env: dict | None = None, **popen) -> GradeRun:
        started = time.monotonic()
        process = subprocess.run([python(), "-m", "dlcourse", "--course", str(self.root), *args], cwd=self.root,
                                 env=env or dlcourse_env(), capture_output=True, text=True, timeout=timeout, **popen)
        return GradeRun(process.returncode, process.stdout, process.stderr, time.monotonic() - started)

    def grade(self, *args: str, timeout: float = 900, env: dict | None = None) -> GradeRun:
        return self.dlcourse("grade", ASSIGNMENT, *GRADE_OPTIONS, *args, timeout=timeout, env=env)

    def grades(self) -> dict[str, tuple[float, float, str]]:
        """reports/tiny/grades.csv as student -> (score, max_score, status)."""
        import csv

        with open(self.reports / "grades.csv", newline="") as handle:
            return {row["student_id"]: (float(row["score"]), float(row["max_score"]), row["status"])
                    for row in csv.DictReader(handle)}

    def cell_scores(self) -> dict[str, dict[str, float | None]]:
        import csv

        scores: dict[str, dict[str, float | None]] = {}
        with open(self.reports / "cells.csv", newline="") as handle:
            for row in csv.DictReader(handle):
                scores.setdefault(row["student_id"], {})[row["grade_id"]] = (
                    float(row["score"]) if row["score"] else None)
        return scores

    def result(self, student: str) -> dict:
        path = self.root / "autograded" / student / ASSIGNMENT / ".dlcourse-result.json"
        return json.loads(path.read_text())

    def graded_notebook(self, student: str):
        return nbformat.read(str(self.root / "autograded" / student / ASSIGNMENT / NOTEBOOK), as_version=4)

    def graded_text(self, student: str) -> str:
        """Everything the student's cells printed (and their errors), as one string."""
        parts = []
        folder = self.root / "autograded" / student / ASSIGNMENT
        for notebook in self.result(student)["notebooks"]:
            graded = folder / f"{notebook['name']}.ipynb"  # the executed notebook, stored once beside the result
            for cell in nbformat.read(str(graded), as_version=4).cells if graded.exists() else []:
                for output in cell.get("outputs", []):
                    parts.append(output.get("text", "") if isinstance(output.get("text"), str)
                                 else "".join(output.get("text", [])))
                    parts.append(output.get("evalue", ""))
                    parts.extend(str(v) for v in output.get("data", {}).values())
        return "\n".join(parts)

    def feedback_html(self, student: str) -> str:
        return "\n".join(p.read_text() for p in sorted((self.root / "feedback" / student / ASSIGNMENT).glob("*.html")))

    def missing_texts(self, expected: dict[str, list[tuple[str, str]]]) -> list[str]:
        """What of ``expected`` is not there: ``{"printed" | "feedback": [(student, text), ...]}``.

        "printed" looks in what the student's cells printed (:meth:`graded_text`), "feedback" in their
        feedback pages (:meth:`feedback_html`). Returns one line per text not found; empty when all are.
        """
        sources = {"printed": self.graded_text, "feedback": self.feedback_html}
        return [f"{where} of {student} lacks {text!r}" for where, pairs in expected.items()
                for student, text in pairs if text not in sources[where](student)]

    def gradebook_scores(self) -> dict[str, float]:
        """Automatic score per student as nbgrader's gradebook holds it."""
        from nbgrader.api import Gradebook

        with Gradebook(f"sqlite:///{self.root / 'gradebook.db'}") as gradebook:
            return {s.student.id: float(sum(g.auto_score or 0 for nb in s.notebooks for g in nb.grades))
                    for s in gradebook.assignment_submissions(ASSIGNMENT)}


_TEMPLATE: dict[str, TinyCourse] = {}


def template_course(tmp_path_factory) -> TinyCourse:
    """The course built and released once per test session; copy it with :meth:`TinyCourse.copy`."""
    if "course" not in _TEMPLATE:
        _TEMPLATE["course"] = TinyCourse.build(tmp_path_factory.mktemp("template") / "course")
    return _TEMPLATE["course"]
