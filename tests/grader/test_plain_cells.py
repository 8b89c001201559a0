"""Plain nbgrader test cells under `dlcourse grade`: stock nbgrader's grades for honest work, nothing for cheats.

One small course, released once: ``ps1`` has ``problem1`` (our own version of nbgrader's user-guide
example: ``squares``, ``sum_of_squares``, a test that deletes ``squares``) and ``problem2`` (NumPy with
``np.testing``, a class with state, ``math.isclose``, printing, partial credit, a test that writes to stderr
and one that reads ``globals()``, which must run in the student's kernel). Three submissions are graded in
one run: the reference, a cheater (always-equal results, monkeypatched NumPy, math and builtins), and one
whose function calls ``sys.exit``.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

from dlcourse import authoring
from tiny_course import GRADE_OPTIONS, REPOSITORY, dlcourse_env, python

pytestmark = pytest.mark.slow

SQUARES = '''def squares(n):
    """The squares of 1, ..., n."""
    ### BEGIN SOLUTION
    if n < 1:
        raise ValueError("n must be at least 1")
    return [k * k for k in range(1, n + 1)]
    ### END SOLUTION'''
SUM_OF_SQUARES = '''def sum_of_squares(n):
    ### BEGIN SOLUTION
    return sum(squares(n))
    ### END SOLUTION'''
TEST_SQUARES = '''"""squares gives the right list"""
assert squares(1) == [1]
assert squares(3) == [1, 4, 9]
assert squares(10) == [1, 4, 9, 16, 25, 36, 49, 64, 81, 100]'''
TEST_INVALID = '''"""squares refuses n < 1 with a ValueError"""
for bad in (0, -3):
    try:
        squares(bad)
    except ValueError:
        pass
    else:
        raise AssertionError(f"squares({bad}) did not raise ValueError")'''
TEST_SUM = '''assert sum_of_squares(1) == 1
assert sum_of_squares(4) == 30'''
TEST_USES_SQUARES = '''"""sum_of_squares calls squares"""
saved = squares
del squares
try:
    sum_of_squares(2)
except NameError:
    pass
else:
    raise AssertionError("sum_of_squares does not call squares")
finally:
    squares = saved'''

RAMP = '''import numpy as np

def ramp(n):
    ### BEGIN SOLUTION
    return np.linspace(0.0, 1.0, n, dtype=np.float32)
    ### END SOLUTION'''
COUNTER = '''class Counter:
    def __init__(self):
        self.count = 0

    def add(self, k):
        ### BEGIN SOLUTION
        self.count += k
        return self.count
        ### END SOLUTION'''
TEST_RAMP = '''import numpy as np
r = ramp(5)
assert isinstance(r, np.ndarray) and r.dtype == np.float32 and r.shape == (5,)
np.testing.assert_allclose(r, [0.0, 0.25, 0.5, 0.75, 1.0])
print("ramp(5) =", r)'''
TEST_COUNTER = '''import math
c = Counter()
c.add(2)
c.add(3)
assert math.isclose(c.count, 5.0)
assert abs(c.count - 5) < 1e-9
assert isinstance(c, Counter) and not isinstance(5, Counter)'''
TEST_PARTIAL = '''score = 0.0
if ramp(3)[1] == 0.5:
    score += 1.0
c = Counter()
c.add(4)
if c.count == 4:
    score += 1.0
score'''
TEST_STDERR = '''import sys
c = Counter()
c.add(1)
if c.count != 1:
    print("Counter().add(1) does not count 1", file=sys.stderr)'''
TEST_GLOBALS = '''assert callable(globals()["ramp"])'''

CHEAT_SQUARES = '''class Yes(list):
    def __eq__(self, other):
        return True
    __hash__ = None

def squares(n):
    if n < 1:
        raise ValueError("n must be at least 1")
    return Yes()'''
CHEAT_SUM = '''def sum_of_squares(n):
    return Yes()'''
CHEAT_RAMP = '''import numpy as np, math, builtins
np.testing.assert_allclose = lambda *args, **kwargs: None
math.isclose = lambda *args, **kwargs: True
builtins.abs = lambda x: 0

def ramp(n):
    return np.zeros(n, dtype=np.float32)'''
CHEAT_COUNTER = '''class Counter:
    def __init__(self):
        self.count = 0

    def add(self, k):
        return 0  # never counts: only the monkeypatched math.isclose and abs would pass it'''
OFF_BY_ONE_SQUARES = '''def squares(n):
    if n < 1:
        raise ValueError("n must be at least 1")
    return [i * i for i in range(n)]'''
EXIT_SQUARES = '''import sys

def squares(n):
    sys.exit(0)'''


def _solution(source: str) -> str:
    return "\n".join(line for line in source.splitlines() if "### BEGIN SOLUTION" not in line
                     and "### END SOLUTION" not in line)


def _master_cells():
    problem1 = [
        authoring.md("# Squares"),
        authoring.answer("squares", SQUARES),
        authoring.tests("correct_squares", 1, TEST_SQUARES),
        authoring.tests("squares_invalid_input", 1, TEST_INVALID),
        authoring.answer("sum_of_squares", SUM_OF_SQUARES),
        authoring.tests("correct_sum_of_squares", 0.5, TEST_SUM),
        authoring.tests("sum_of_squares_uses_squares", 0.5, TEST_USES_SQUARES),
    ]
    problem2 = [
        authoring.answer("ramp", RAMP),
        authoring.answer("counter", COUNTER),
        authoring.code(_solution(SQUARES)),
        authoring.tests("test_ramp", 1, TEST_RAMP),
        authoring.tests("test_counter", 1, TEST_COUNTER),
        authoring.tests("test_partial", 2, TEST_PARTIAL),
        authoring.tests("test_stderr", 1, TEST_STDERR),
        authoring.tests("test_globals", 1, TEST_GLOBALS),
    ]
    return {"problem1": problem1, "problem2": problem2}


def _dlcourse(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([python(), "-m", "dlcourse", "--course", str(root), *args], cwd=root, env=dlcourse_env(),
                          capture_output=True, text=True, timeout=900)


def _submit(root: Path, student: str, answers: dict[str, str]) -> None:
    for name in ("problem1", "problem2"):
        notebook = nbformat.read(str(root / "release" / "ps1" / f"{name}.ipynb"), as_version=4)
        for cell in notebook.cells:
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if grade_id in answers:
                cell.source = answers[grade_id]
        folder = root / "submitted" / student / "ps1"
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, str(folder / f"{name}.ipynb"))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("plain") / "course"
    root.mkdir()
    shutil.copyfile(REPOSITORY / "nbgrader_config.py", root / "nbgrader_config.py")
    for name, cells in _master_cells().items():
        authoring.write_notebook(root / "source" / "ps1" / f"{name}.ipynb", cells)
    released = _dlcourse(root, "release", "ps1")
    assert released.returncode == 0, released.stdout + released.stderr
    reference = {"squares": _solution(SQUARES), "sum_of_squares": _solution(SUM_OF_SQUARES),
                 "ramp": _solution(RAMP), "counter": _solution(COUNTER)}
    _submit(root, "honest", reference)
    _submit(root, "cheater", {"squares": CHEAT_SQUARES, "sum_of_squares": CHEAT_SUM, "ramp": CHEAT_RAMP,
                              "counter": CHEAT_COUNTER})
    _submit(root, "exiter", {**reference, "squares": EXIT_SQUARES})
    # the reference gets full marks (so the reference check passes); this one earns partial credit and stderr
    _submit(root, "partial", {**reference, "squares": OFF_BY_ONE_SQUARES, "counter": CHEAT_COUNTER})
    run = _dlcourse(root, "grade", "ps1", *GRADE_OPTIONS, "--workers", "1")
    assert run.returncode == 0, run.stdout + run.stderr
    scores: dict[str, dict[str, float]] = {}
    with open(root / "reports" / "ps1" / "cells.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            scores.setdefault(row["student_id"], {})[row["grade_id"]] = float(row["score"] or 0)
    return root, run, scores


def test_the_nbgrader_user_guide_style_problem_gets_stock_nbgraders_three_of_three(graded):
    _, _, scores = graded
    assert {k: scores["honest"][k] for k in ("correct_squares", "squares_invalid_input", "correct_sum_of_squares",
                                             "sum_of_squares_uses_squares")} == {
        "correct_squares": 1.0, "squares_invalid_input": 1.0, "correct_sum_of_squares": 0.5,
        "sum_of_squares_uses_squares": 0.5}


def test_numpy_a_class_with_state_and_math_work_on_the_reference_as_in_the_kernel(graded):
    _, _, scores = graded
    assert scores["honest"]["test_ramp"] == 1.0 and scores["honest"]["test_counter"] == 1.0


def test_a_final_number_is_partial_credit_and_stderr_scores_zero_as_in_stock_nbgrader(graded):
    _, _, scores = graded
    assert scores["honest"]["test_partial"] == 2.0 and scores["honest"]["test_stderr"] == 1.0
    assert scores["partial"]["test_partial"] == 1.0  # ramp right, Counter wrong: 1 of 2, the cell's final number
    assert scores["partial"]["test_stderr"] == 0.0  # no error, but a message on stderr (matching no ignore pattern)
    assert scores["partial"]["test_ramp"] == 1.0 and scores["partial"]["correct_squares"] == 0.0  # problem1


def test_a_cell_reading_globals_runs_in_the_kernel_and_is_listed_as_not_tamper_proof(graded):
    root, run, scores = graded
    assert scores["honest"]["test_globals"] == 1.0
    line = "problem2 test_globals: runs in the student's kernel: not tamper-proof (reads the namespace (globals()))"
    assert line in (root / "reports" / "ps1" / "WARNINGS.txt").read_text().splitlines()
    assert line in run.stderr
    assert "correct_squares: runs in the student's kernel" not in run.stderr


def test_always_equal_results_and_monkeypatched_numpy_math_and_builtins_score_nothing(graded):
    _, _, scores = graded
    cheats = {k: scores["cheater"][k] for k in ("correct_squares", "correct_sum_of_squares", "test_ramp",
                                                "test_counter")}
    assert cheats == dict.fromkeys(cheats, 0.0)
    assert scores["cheater"]["test_partial"] == 0.0  # zeros from ramp, a count that stays 0: no partial credit
    assert scores["cheater"]["squares_invalid_input"] == 1.0  # the one thing it does right


def test_a_function_that_calls_sys_exit_scores_nothing_for_the_tests_that_call_it(graded):
    root, _, scores = graded
    exiter = scores["exiter"]
    assert exiter["correct_squares"] == 0.0 and exiter["squares_invalid_input"] == 0.0
    assert exiter["correct_sum_of_squares"] == 0.0
    assert exiter["test_ramp"] == 1.0  # later notebooks and cells are graded as usual
    graded_nb = nbformat.read(str(root / "autograded" / "exiter" / "ps1" / "problem1.ipynb"), as_version=4)
    texts = [o.get("evalue", "") for c in graded_nb.cells for o in c.get("outputs", [])]
    assert any("your code raised SystemExit" in t for t in texts)
    # the message names the student's own cell (the kernel's In [n], shown on the graded cell) and line
    where = [t for t in texts if "your code raised SystemExit" in t][0]
    count = int(where.split("(in your cell [")[1].split("]")[0])
    cell = [c for c in graded_nb.cells if c.get("execution_count") == count][0]
    assert "sys.exit(0)" in cell.source and "line 4: `sys.exit(0)`)" in where


def test_printed_output_of_a_plain_test_is_kept_in_the_graded_notebook(graded):
    root, _, _ = graded
    graded_nb = nbformat.read(str(root / "autograded" / "honest" / "ps1" / "problem2.ipynb"), as_version=4)
    printed = [o.get("text", "") for c in graded_nb.cells for o in c.get("outputs", []) if o.get("name") == "stdout"]
    assert any(t.startswith("ramp(5) = [0.   0.25 0.5  0.75 1.  ]") for t in printed)


def test_a_strict_assignment_is_refused_at_release_naming_the_cell_and_the_reason(graded, tmp_path):
    root, _, _ = graded
    strict = tmp_path / "strict"
    strict.mkdir()
    shutil.copytree(root / "source", strict / "source")
    config = (root / "nbgrader_config.py").read_text() + '\nc.Dlcourse.strict_tests = ["ps1"]\n'
    (strict / "nbgrader_config.py").write_text(config)
    refused = _dlcourse(strict, "release", "ps1")
    assert refused.returncode == 1
    assert "problem2 test_globals: reads the namespace (globals())" in refused.stderr
    assert not (strict / "release" / "ps1").exists()
