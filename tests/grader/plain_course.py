"""A course written in nbgrader's plain style, its submissions, and both graders run on them.

nbgrader's documentation teaches test cells that use the student's names directly
(``assert squares(3) == [1, 4, 9]``), catch the student's exceptions with try/except, ``del`` a
function to check that another one calls it, and end with a number for partial credit. This module
builds such an assignment (our own text and code), the submissions an instructor meets (the
reference, the untouched release, half-done, one per plausible mistake) and hostile ones that fool
stock nbgrader, then grades the same files with stock ``nbgrader autograde`` (in a course of its own,
own gradebook) and with ``dlcourse grade`` (the command line, as a user runs it):

    course = PlainCourse.build(tmp_path / "course")          # source/, release/ (dlcourse release)
    course.submit_all(HONEST)                                # submitted/<name>/plain/plain.ipynb
    stock = stock_cell_points(course, tmp_path / "stock")    # {student: {grade_id: points}}
    ours = course.grade_cells()                              # {student: {grade_id: (points, message)}}

The master holds no secret beyond its hidden tests (marked :data:`HIDDEN_MARKER`); solutions are read
back from it (:func:`dlcourse.core.notebook.solution_source`), never repeated here.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from tiny_course import GRADE_OPTIONS, REPOSITORY, dlcourse_env, python

ASSIGNMENT = "plain"
NOTEBOOK = "plain.ipynb"
HIDDEN_MARKER = "HIDDEN-PLAIN-MARKER-91c4"

# -- the master, as nbgrader's documentation would have it written ----------------------------------

_SQUARES = '''
def squares(n):
    """The squares of 1, 2, ..., n, as a list; ValueError when n < 1."""
    ### BEGIN SOLUTION
    if n < 1:
        raise ValueError("n must be at least 1")
    return [i ** 2 for i in range(1, n + 1)]
    ### END SOLUTION
'''

_TEST_SQUARES = f'''
"""squares returns the right list"""
assert squares(1) == [1]
assert squares(2) == [1, 4]
assert squares(10) == [1, 4, 9, 16, 25, 36, 49, 64, 81, 100]
### BEGIN HIDDEN TESTS
# {HIDDEN_MARKER}
for n in range(1, 25):
    assert squares(n) == [k * k for k in range(1, n + 1)], f"squares({{n}}) is wrong"
### END HIDDEN TESTS
'''

_TEST_SQUARES_TYPE = '''
"""squares returns a list (not a generator or a map) of the right length"""
result = squares(4)
assert isinstance(result, list), "squares must return a list"
assert len(result) == 4
'''

_TEST_SQUARES_INVALID = '''
"""squares raises ValueError for n < 1"""
for bad in (0, -1, -7):
    try:
        squares(bad)
    except ValueError:
        pass
    else:
        raise AssertionError(f"squares({bad}) did not raise a ValueError")
'''

_TEST_SQUARES_PRINTED = '''
"""a test that prints: a small table of squares"""
print("n  squares(n)")
for n in range(1, 4):
    print(n, squares(n))
assert squares(3)[-1] == 9
'''

_TEST_SQUARES_PARTIAL = '''
"""partial credit: the right length is worth 1 point, the right values 1 more"""
points = 0.0
result = squares(5)
if len(result) == 5:
    points += 1.0
if result == [1, 4, 9, 16, 25]:
    points += 1.0
points
'''

_SUM_OF_SQUARES = '''
def sum_of_squares(n):
    """1**2 + 2**2 + ... + n**2, computed with squares."""
    ### BEGIN SOLUTION
    return sum(squares(n))
    ### END SOLUTION
'''

_TEST_SUM = '''
"""sum_of_squares returns the right sums"""
assert sum_of_squares(1) == 1
assert sum_of_squares(2) == 5
assert sum_of_squares(10) == 385
'''

_TEST_SUM_USES_SQUARES = '''
"""sum_of_squares calls squares"""
orig_squares = squares
del squares
try:
    sum_of_squares(3)
except NameError:
    pass
else:
    raise AssertionError("sum_of_squares does not use squares")
finally:
    squares = orig_squares
'''

_ACCUMULATOR = '''
class Accumulator:
    """Collects numbers: add(x) returns the accumulator, total(), mean() (ValueError when empty)."""
    ### BEGIN SOLUTION
    def __init__(self):
        self.values = []

    def add(self, x):
        self.values.append(x)
        return self

    def total(self):
        return sum(self.values)

    def mean(self):
        if not self.values:
            raise ValueError("mean of an empty Accumulator")
        return self.total() / len(self.values)
    ### END SOLUTION
'''

_TEST_ACCUMULATOR = f'''
"""Accumulator keeps its own numbers"""
a = Accumulator()
a.add(2).add(4)
assert a.total() == 6
assert a.mean() == 3.0
b = Accumulator()
assert b.total() == 0, "a new Accumulator must start empty"
try:
    b.mean()
except ValueError:
    pass
else:
    raise AssertionError("the mean of an empty Accumulator must raise ValueError")
### BEGIN HIDDEN TESTS
# {HIDDEN_MARKER}
c = Accumulator()
for x in range(10):
    c.add(x)
assert c.total() == 45 and c.mean() == 4.5
assert a.total() == 6, "adding to one Accumulator changed another"
### END HIDDEN TESTS
'''

_NORMALIZE = '''
def normalize(x):
    """x (a float numpy array) divided by its Euclidean norm along the last axis, as a float64 array."""
    ### BEGIN SOLUTION
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)
    ### END SOLUTION
'''

_TEST_NORMALIZE = f'''
"""normalize returns a float64 array with the right values"""
y = normalize(np.array([[3.0, 4.0], [1.0, 0.0]]))
assert isinstance(y, np.ndarray), "normalize must return a numpy array"
assert y.dtype == np.float64, f"normalize returned {{y.dtype}}, not float64"
np.testing.assert_allclose(y, [[0.6, 0.8], [1.0, 0.0]])
### BEGIN HIDDEN TESTS
# {HIDDEN_MARKER}
rng = np.random.default_rng(0)
for shape in [(5,), (3, 4), (2, 3, 4)]:
    x = rng.normal(size=shape)
    np.testing.assert_allclose(normalize(x), x / np.linalg.norm(x, axis=-1, keepdims=True), rtol=1e-10)
### END HIDDEN TESTS
'''

_TEST_NORMALIZE_NORMS = '''
"""every row of normalize(x) has norm 1"""
rng = np.random.default_rng(1)
x = rng.normal(size=(6, 3)) * 10
assert np.allclose(np.linalg.norm(normalize(x), axis=-1), 1.0)
'''

#: grade_id -> points of every test cell, in notebook order.
TEST_POINTS = {
    "test_squares": 1.0, "test_squares_type": 1.0, "test_squares_invalid": 1.0, "test_squares_printed": 1.0,
    "test_squares_partial": 2.0, "test_sum_of_squares": 1.0, "test_sum_of_squares_uses_squares": 1.0,
    "test_accumulator": 2.0, "test_normalize": 2.0, "test_normalize_norms": 1.0,
}


def master_cells():
    from dlcourse.authoring import answer, code, md, tests

    return [
        md("# Plain\n\nA few small functions, checked the way nbgrader's documentation writes tests."),
        code("import numpy as np", grade_id="setup"),
        md("Write `squares(n)`: the list `[1, 4, ..., n**2]`; raise a `ValueError` when `n < 1`."),
        answer("squares", _SQUARES),
        tests("test_squares", TEST_POINTS["test_squares"], _TEST_SQUARES),
        tests("test_squares_type", TEST_POINTS["test_squares_type"], _TEST_SQUARES_TYPE),
        tests("test_squares_invalid", TEST_POINTS["test_squares_invalid"], _TEST_SQUARES_INVALID),
        tests("test_squares_printed", TEST_POINTS["test_squares_printed"], _TEST_SQUARES_PRINTED),
        tests("test_squares_partial", TEST_POINTS["test_squares_partial"], _TEST_SQUARES_PARTIAL),
        md("Write `sum_of_squares(n)` **using** `squares`."),
        answer("sum_of_squares", _SUM_OF_SQUARES),
        tests("test_sum_of_squares", TEST_POINTS["test_sum_of_squares"], _TEST_SUM),
        tests("test_sum_of_squares_uses_squares", TEST_POINTS["test_sum_of_squares_uses_squares"],
              _TEST_SUM_USES_SQUARES),
        md("Write a class `Accumulator` whose instances each keep their own numbers."),
        answer("accumulator", _ACCUMULATOR),
        tests("test_accumulator", TEST_POINTS["test_accumulator"], _TEST_ACCUMULATOR),
        md("Write `normalize(x)`: each row of `x` scaled to Euclidean norm 1, as a `float64` array."),
        answer("normalize", _NORMALIZE),
        tests("test_normalize", TEST_POINTS["test_normalize"], _TEST_NORMALIZE),
        tests("test_normalize_norms", TEST_POINTS["test_normalize_norms"], _TEST_NORMALIZE_NORMS),
    ]


# -- submissions --------------------------------------------------------------------------------------

#: Answers that are wrong in a way students get them wrong (grade_id -> the answer cell's source).
MISTAKES: dict[str, dict[str, str]] = {
    "off_by_one": {"squares": "def squares(n):\n    if n < 1:\n        raise ValueError('n < 1')\n"
                              "    return [i ** 2 for i in range(n)]"},
    "wrong_exception": {"squares": "def squares(n):\n    if n < 1:\n        raise TypeError('n < 1')\n"
                                   "    return [i ** 2 for i in range(1, n + 1)]"},
    "no_helper": {"sum_of_squares": "def sum_of_squares(n):\n    return n * (n + 1) * (2 * n + 1) // 6"},
    "shared_state": {"accumulator": "class Accumulator:\n    values = []\n\n    def add(self, x):\n"
                                    "        self.values.append(x)\n        return self\n\n    def total(self):\n"
                                    "        return sum(self.values)\n\n    def mean(self):\n"
                                    "        if not self.values:\n            raise ValueError('empty')\n"
                                    "        return self.total() / len(self.values)"},
    "wrong_dtype": {"normalize": "def normalize(x):\n    x = np.asarray(x, dtype=np.float32)\n"
                                 "    return x / np.linalg.norm(x, axis=-1, keepdims=True)"},
    "returns_list": {"normalize": "def normalize(x):\n    x = np.asarray(x, dtype=np.float64)\n"
                                  "    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).tolist()"},
}

#: What every hostile submission builds on: wrong answers, none of them a cheat. Its honest points
#: are what the cheats below must not raise.
WRONG_BASE: dict[str, str] = {
    "squares": "def squares(n):\n    return (i for i in range(1, n + 1))",
    "sum_of_squares": "def sum_of_squares(n):\n    return n * (n + 1) // 2",
    "accumulator": MISTAKES["shared_state"]["accumulator"],
    "normalize": "def normalize(x):\n    return np.asarray(x, dtype=np.float64)",
}


@dataclass
class Hostile:
    """A submission that cheats: the wrong answers of the honest submission ``honest``, plus a cheat.

    ``answers`` replace answer cells (a cheat inside an answer), ``after`` adds code cells after a cell;
    ``cheats`` are the test cells on which stock nbgrader gives it more than ``honest`` gets (empty: a
    submission that tries to break the grader rather than to fool it).
    """

    honest: str
    answers: dict[str, str] = field(default_factory=dict)
    after: dict[str, list[str]] = field(default_factory=dict)
    cheats: tuple[str, ...] = ()


_ALWAYS_EQUAL = '''
class _Squares(list):
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    __hash__ = list.__hash__

def squares(n):
    return _Squares()   # empty, yet equal to every list
'''

_PATCH_BUILTINS = """import builtins
_isinstance, _len = builtins.isinstance, builtins.len
builtins.isinstance = lambda obj, kind: (kind is list and type(obj).__name__ == 'generator') or _isinstance(obj, kind)
builtins.len = lambda obj: 4 if type(obj).__name__ == 'generator' else _len(obj)"""

HOSTILE: dict[str, Hostile] = {
    "always_equal": Hostile("wrong_base", answers={"squares": _ALWAYS_EQUAL.strip()},
                            cheats=("test_squares", "test_squares_partial")),
    "patched": Hostile("wrong_base", after={"squares": [_PATCH_BUILTINS],
                                            "normalize": ["np.testing.assert_allclose = lambda *a, **k: None\n"
                                                          "np.allclose = lambda *a, **k: True"]},
                       cheats=("test_squares_type", "test_normalize", "test_normalize_norms")),
    "sys_exit_midway": Hostile("wrong_base", after={"sum_of_squares": ["import sys\nsys.exit()"]}),
    "os_exit_midway": Hostile("wrong_base", after={"sum_of_squares": ["import os\nos._exit(0)"]}),
}

#: Honest submissions with mistakes, a few per notebook (each in another function, so that every
#: mistake shows on its own test cells): name -> the MISTAKES it makes.
MISTAKE_SETS: dict[str, tuple[str, ...]] = {
    "mistakes_a": ("off_by_one", "no_helper", "shared_state", "returns_list"),
    "mistakes_b": ("wrong_exception", "wrong_dtype"),
}

#: Honest submissions (see :meth:`PlainCourse.answers_of`): the reference, the untouched release, half
#: done, the mistakes, and the wrong answers the hostile submissions build on.
HONEST_NAMES = ("reference", "blank", "half", *MISTAKE_SETS, "wrong_base")


class PlainCourse:
    def __init__(self, root: Path):
        self.root = Path(root)

    @classmethod
    def build(cls, root: Path) -> "PlainCourse":
        from dlcourse.authoring import write_notebook

        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPOSITORY / "nbgrader_config.py", root / "nbgrader_config.py")
        write_notebook(root / "source" / ASSIGNMENT / NOTEBOOK, master_cells())
        course = cls(root)
        run = course.dlcourse("release", ASSIGNMENT, timeout=300)
        assert run.returncode == 0, run.stdout + run.stderr
        assert course.release_path.exists(), "dlcourse release wrote no student notebook"
        return course

    @property
    def master_path(self) -> Path:
        return self.root / "source" / ASSIGNMENT / NOTEBOOK

    @property
    def release_path(self) -> Path:
        return self.root / "release" / ASSIGNMENT / NOTEBOOK

    @property
    def submitted(self) -> Path:
        return self.root / "submitted"

    def solutions(self) -> dict[str, str]:
        """grade_id -> the master's solution of every answer cell (its BEGIN/END SOLUTION lines removed)."""
        from dlcourse.core.notebook import grade_id, nbgrader_meta, solution_source

        master = nbformat.read(str(self.master_path), as_version=4)
        return {grade_id(c): solution_source(c) for c in master.cells if nbgrader_meta(c).get("solution")}

    def answers_of(self, name: str) -> tuple[dict[str, str], dict[str, list[str]]]:
        """The answers and added cells of the submission called ``name`` (honest or hostile)."""
        solutions = self.solutions()
        if name == "reference":
            return solutions, {}
        if name == "blank":
            return {}, {}
        if name == "half":
            return {k: v for k, v in solutions.items() if k in ("squares", "sum_of_squares")}, {}
        if name == "wrong_base":
            return dict(WRONG_BASE), {}
        if name in MISTAKE_SETS:
            answers = dict(solutions)
            for mistake in MISTAKE_SETS[name]:
                answers.update(MISTAKES[mistake])
            return answers, {}
        if name in HOSTILE:
            answers, _ = self.answers_of(HOSTILE[name].honest)
            return {**answers, **HOSTILE[name].answers}, HOSTILE[name].after
        raise KeyError(name)

    def submit(self, student: str, answers: dict[str, str], after: dict[str, list[str]] | None = None) -> Path:
        """``submitted/<student>/plain/plain.ipynb``: the release with ``answers`` and ``after``'s cells."""
        from dlcourse.core.notebook import grade_id

        notebook = nbformat.read(str(self.release_path), as_version=4)
        cells = []
        for cell in notebook.cells:
            gid = grade_id(cell)
            if gid in answers:
                cell.source = answers[gid]
            cells.append(cell)
            cells.extend(nbformat.v4.new_code_cell(source) for source in (after or {}).get(gid, []))
        notebook.cells = cells
        folder = self.submitted / student / ASSIGNMENT
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, str(folder / NOTEBOOK))
        return folder / NOTEBOOK

    def submit_all(self, names) -> None:
        for name in names:
            self.submit(name, *self.answers_of(name))

    # -- dlcourse grade, as a user runs it ------------------------------------------------------------

    def dlcourse(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        return subprocess.run([python(), "-m", "dlcourse", "--course", str(self.root), *args], cwd=self.root,
                              env=dlcourse_env(), capture_output=True, text=True, timeout=timeout)

    def grade(self, *args: str) -> subprocess.CompletedProcess:
        return self.dlcourse("grade", ASSIGNMENT, *GRADE_OPTIONS, "--workers", "2", *args)

    def grade_cells(self) -> dict[str, dict[str, tuple[float | None, str]]]:
        """After :meth:`grade`: student -> grade_id -> (points, dlcourse's message), from cells.csv and the results."""
        cells: dict[str, dict[str, tuple[float | None, str]]] = {}
        with open(self.root / "reports" / ASSIGNMENT / "cells.csv", newline="") as handle:
            for row in csv.DictReader(handle):
                cells.setdefault(row["student_id"], {})[row["grade_id"]] = (
                    float(row["score"]) if row["score"] else None, "")
        for student, by_cell in cells.items():
            path = self.root / "autograded" / student / ASSIGNMENT / ".dlcourse-result.json"
            if path.exists():
                for notebook in json.loads(path.read_text())["notebooks"]:
                    for cell in notebook["cells"]:
                        if cell["grade_id"] in by_cell:
                            by_cell[cell["grade_id"]] = (by_cell[cell["grade_id"]][0], cell.get("message", ""))
        return cells

    def warnings_text(self) -> str:
        path = self.root / "reports" / ASSIGNMENT / "WARNINGS.txt"
        return path.read_text() if path.exists() else ""


# -- stock nbgrader, in a course of its own ------------------------------------------------------------

def nbgrader(course: Path, *args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.pop("PYTHONPATH", None)  # stock nbgrader's kernels see only what a plain install sees
    process = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env,
                             capture_output=True, text=True, timeout=timeout)
    assert process.returncode == 0 or not check, \
        f"nbgrader {' '.join(args)} failed:\n{process.stdout[-3000:]}{process.stderr[-3000:]}"
    return process


def stock_cell_points(course: PlainCourse, scratch: Path, students) -> dict[str, dict[str, float]]:
    """Stock ``nbgrader generate_assignment`` + ``autograde`` of the same submissions in a copy of the course.

    The copy has the course's nbgrader_config.py, source/ and the students' folders, and its own
    gradebook; returns student -> grade_id -> points as nbgrader's gradebook records them. A student
    whose notebook nbgrader could not process (its kernel died: "There was an error processing
    assignment") has the zeros nbgrader records; ``autograde`` then exits 1, which is not a failure here.
    """
    from nbgrader.api import Gradebook

    scratch = Path(scratch)
    scratch.mkdir(parents=True)
    shutil.copyfile(course.root / "nbgrader_config.py", scratch / "nbgrader_config.py")
    shutil.copytree(course.root / "source", scratch / "source")
    for student in students:
        shutil.copytree(course.submitted / student, scratch / "submitted" / student)
    nbgrader(scratch, "generate_assignment", ASSIGNMENT, "--force")
    nbgrader(scratch, "autograde", ASSIGNMENT, "--force", check=False)
    points: dict[str, dict[str, float]] = {}
    with Gradebook(f"sqlite:///{scratch / 'gradebook.db'}") as gradebook:
        for student in students:
            submission = gradebook.find_submission(ASSIGNMENT, student)
            points[student] = {grade.name: float(grade.score) for notebook in submission.notebooks
                               for grade in notebook.grades}
    return points


def differences(stock: dict[str, float], ours: dict[str, tuple[float | None, str]], cells) -> list[str]:
    """One line per cell of ``cells`` whose points differ: stock points, dlcourse points, dlcourse's message."""
    lines = []
    for cell in cells:
        mine, message = ours.get(cell, (None, "(no such cell in cells.csv)"))
        if mine != stock.get(cell):
            lines.append(f"  {cell}: stock nbgrader {stock.get(cell)}, dlcourse {mine}: {message[:300]!r}")
    return lines
