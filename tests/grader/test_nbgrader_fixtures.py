"""nbgrader's own fixture notebooks, graded by ``dlcourse grade``: the scores stock ``nbgrader autograde`` gives.

The notebooks in ``nbgrader_fixtures/notebooks/`` are copied unchanged from nbgrader 0.9.6
(``nbgrader/tests/apps/files/``, BSD-3-Clause; see ``nbgrader_fixtures/SOURCE.md`` and ``LICENSE``), and
paired as nbgrader's own tests pair them (``test_nbgrader_autograde.py``: ``test_grade_autotest``,
``test_grade_hashed_autotest``, ``test_grade_complex_autotest``, ``test_hidden_tests_autotest``,
``test_grade_with_validating_envvar``, ``test_grade_missing_notebook``, ``test_grade``,
``test_showtraceback_exploit``, ``test_force``; ``test_nbgrader_validate.py``: ``test_grade_cell_changed``,
``test_locked_cell_changed``,
``test_validate_open_relative_file``), several masters in one assignment (:data:`ASSIGNMENTS`).

Stock's points are recorded in ``nbgrader_fixtures/stock_scores.json`` by this module run as a script,
``python tests/grader/test_nbgrader_fixtures.py --record-stock`` (stock ``nbgrader generate_assignment``
and ``autograde --force`` in a course of their own; about 60 s on 2 cores, which is why the suite reads
the record instead of running stock each time). :data:`DIFFERENCES` lists every pair where dlcourse
deliberately grades otherwise, and why; none is in the student's favour.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import sys
from pathlib import Path

import nbformat
import pytest

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "nbgrader_fixtures"
NOTEBOOKS = FIXTURES / "notebooks"
STOCK_SCORES = FIXTURES / "stock_scores.json"

#: assignment -> masters (notebook name -> fixture), students (student -> notebook -> fixture, or a dict with
#: the fixture and extra files handed in beside it), files of source/<assignment>/, and whether grading needs
#: --force (a master whose own answers do not get full marks: nbgrader's deliberately unanswered one).
ASSIGNMENTS = {
    "ps1": {
        "masters": {"simple": "autotest-simple", "hashed": "autotest-hashed", "multi": "autotest-multi",
                    "hidden": "autotest-hidden", "relative": "open_relative_file",
                    "full": "test"},  # test_force: a master with its solutions, handed in as it is
        "source_files": {"data.txt": "data.txt"},
        "students": {
            "foo": {"simple": "autotest-simple-unchanged", "hashed": "autotest-hashed-unchanged",
                    "multi": "autotest-multi-unchanged", "hidden": "autotest-hidden-unchanged",
                    "relative": "open_relative_file", "full": "test"},
            "bar": {"simple": "autotest-simple-changed", "hashed": "autotest-hashed-changed",
                    "multi": "autotest-multi-changed", "hidden": "autotest-hidden-changed-wrong",
                    # a data.txt of the student's own: source/'s copy overwrites it, as in stock
                    "relative": {"fixture": "open_relative_file", "files": {"data.txt": "only one line\n"}}},
            "baz": {"hidden": "autotest-hidden-changed-right"},  # the other notebooks are missing
        },
        "force": False,
    },
    # masters whose own answers do not get full marks, so dlcourse grades them only with --force
    "ps_forced": {
        # test_grade_missing_notebook: nbgrader's deliberately unanswered master, twice; p1 handed in
        "masters": {"p1": "submitted-unchanged", "p2": "submitted-unchanged",
                    # test_grade_with_validating_envvar: its test fails whenever NBGRADER_EXECUTION is set
                    "environment": "validating-environment-variable"},
        "source_files": {},
        "students": {"foo": {"p1": "submitted-changed", "environment": "validating-environment-variable"},
                     # test_grade and test_showtraceback_exploit: the unanswered copy, two cheats
                     "bar": {"p1": "submitted-unchanged"}, "spam": {"p1": "submitted-cheat-attempt"},
                     "eggs": {"p1": "submitted-cheat-attempt-alternative"},
                     # test_nbgrader_validate's changed test and locked cells
                     "gcc": {"p1": "submitted-grade-cell-changed"}, "lcc": {"p1": "submitted-locked-cell-changed"}},
        "force": True,
    },
}

#: (assignment, student, notebook) -> why dlcourse's points differ from stock's (never more than stock's; every
#: cell the reference check does not exclude gets stock's points).
_UNANSWERED_MASTER = ("the master (nbgrader's unanswered submitted-unchanged) does not get full marks from its own "
                      "tests, so dlcourse refuses it; with --force those cells are 'not graded: grader fault' (no "
                      "points, not in the maximum) where stock counts them")
DIFFERENCES = {
    **{("ps_forced", student, "p1"): _UNANSWERED_MASTER for student in ("bar", "spam", "eggs", "gcc", "lcc")},
    ("ps_forced", "foo", "environment"): "the master's own test fails under autograde (it asserts that "
                                     "NBGRADER_EXECUTION is unset, and stock sets it, as dlcourse now does), so "
                                     "dlcourse refuses the master; with --force the cell is 'not graded: grader "
                                     "fault' (0 of 0) where stock gives 0 of 1",
    ("ps_forced", "foo", "p1"): "the master (nbgrader's unanswered submitted-unchanged) does not get full marks "
                                 "from its own tests, so dlcourse refuses it; with --force those cells are 'not "
                                 "graded: grader fault' (no points, not in the maximum) where stock counts them",
    ("ps_forced", "foo", "p2"): "as p1: its cells are not graded (stock: 0 points, the notebook missing)",
}


def _fixture(entry) -> tuple[str, dict[str, str]]:
    return (entry, {}) if isinstance(entry, str) else (entry["fixture"], entry.get("files", {}))


def build_course(root: Path) -> Path:
    """A course holding :data:`ASSIGNMENTS`: source/, submitted/, autotests.yml at its root (as nbgrader's tests)."""
    from tiny_course import REPOSITORY

    root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPOSITORY / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copyfile(NOTEBOOKS / "autotests.yml", root / "autotests.yml")
    for assignment, plan in ASSIGNMENTS.items():
        source = root / "source" / assignment
        source.mkdir(parents=True)
        for name, fixture in plan["masters"].items():
            shutil.copyfile(NOTEBOOKS / f"{fixture}.ipynb", source / f"{name}.ipynb")
        for name, fixture in plan["source_files"].items():
            shutil.copyfile(NOTEBOOKS / fixture, source / name)
        for student, notebooks in plan["students"].items():
            folder = root / "submitted" / student / assignment
            folder.mkdir(parents=True)
            for name, entry in notebooks.items():
                fixture, files = _fixture(entry)
                shutil.copyfile(NOTEBOOKS / f"{fixture}.ipynb", folder / f"{name}.ipynb")
                for file_name, text in files.items():
                    (folder / file_name).write_text(text)
    return root


def record_stock_scores(scratch: Path) -> dict:
    """Stock ``nbgrader generate_assignment`` + ``autograde --force`` of every assignment: points per notebook."""
    from nbgrader.api import Gradebook
    from plain_course import nbgrader

    course = build_course(scratch)
    scores: dict = {}
    cells: dict = {}
    for assignment, plan in ASSIGNMENTS.items():
        nbgrader(course, "generate_assignment", assignment, "--force")
        nbgrader(course, "autograde", assignment, "--force", check=False)
        with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
            for student in plan["students"]:
                submission = gradebook.find_submission(assignment, student)
                scores.setdefault(assignment, {})[student] = {
                    notebook.name: [float(notebook.score), float(notebook.max_score)]
                    for notebook in submission.notebooks}
                cells.setdefault(assignment, {})[student] = {
                    notebook.name: {grade.name: float(grade.auto_score) for grade in notebook.grades
                                    if grade.auto_score is not None}
                    for notebook in submission.notebooks}
    return {"scores": scores, "cells": cells}


def stock_scores() -> dict:
    return json.loads(STOCK_SCORES.read_text())["scores"]


def stock_cells() -> dict:
    return json.loads(STOCK_SCORES.read_text())["cells"]


# -- dlcourse grade on the same course ------------------------------------------------------------------------

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> Path:
    """The course graded by ``dlcourse grade`` once per session (xdist's workers share it)."""
    from helpers import shared_folder
    from plain_course import PlainCourse
    from tiny_course import GRADE_OPTIONS

    folder, lock = shared_folder(tmp_path_factory, "nbgrader-fixtures")
    try:
        course = PlainCourse(folder / "course")
        if not (folder / "graded.ok").is_file():
            shutil.rmtree(course.root, ignore_errors=True)
            build_course(course.root)
            for assignment, plan in ASSIGNMENTS.items():
                run = course.dlcourse("grade", assignment, *GRADE_OPTIONS, "--workers", "2",
                                      *(["--force"] if plan["force"] else []))
                assert run.returncode == 0, \
                    f"dlcourse grade {assignment} failed:\n{run.stdout[-3000:]}{run.stderr[-3000:]}"
            (folder / "graded.ok").write_text("graded\n")
    finally:
        if lock is not None:
            lock.close()
    return course.root


def our_results(root: Path, assignment: str, student: str) -> dict:
    return json.loads((root / "autograded" / student / assignment / ".dlcourse-result.json").read_text())


def our_notebook_scores(root: Path, assignment: str, student: str) -> dict[str, float]:
    """notebook -> dlcourse's points (the counted cells' scores), from the stored result."""
    return {nb["name"]: sum(c["score"] or 0.0 for c in nb["cells"] if c["kind"] == "test" and not c["state"])
            for nb in our_results(root, assignment, student)["notebooks"]}


PAIRS = [(a, s, nb) for a, plan in ASSIGNMENTS.items() for s in plan["students"] for nb in plan["masters"]]


def test_the_recorded_stock_scores_cover_every_pair():
    recorded = stock_scores()
    missing = [pair for pair in PAIRS if pair[2] not in recorded.get(pair[0], {}).get(pair[1], {})]
    assert not missing, f"rerun `python tests/grader/test_nbgrader_fixtures.py --record-stock`: {missing}"


@pytest.mark.parametrize("assignment,student,notebook", [p for p in PAIRS if p not in DIFFERENCES])
def test_dlcourse_gives_stock_nbgraders_points(graded, assignment, student, notebook):
    stock_points = stock_scores()[assignment][student][notebook][0]
    ours = our_notebook_scores(graded, assignment, student)[notebook]
    cells = [(c["grade_id"], c["score"], c["message"][:200]) for nb in our_results(graded, assignment, student)
             ["notebooks"] if nb["name"] == notebook for c in nb["cells"]]
    assert ours == stock_points, f"stock nbgrader {stock_points}, dlcourse {ours}: {cells}"


@pytest.mark.parametrize("assignment,student,notebook", sorted(DIFFERENCES))
def test_each_deliberate_difference_gives_no_more_than_stock(graded, assignment, student, notebook):
    stock_points = stock_scores()[assignment][student][notebook][0]
    assert our_notebook_scores(graded, assignment, student)[notebook] <= stock_points, DIFFERENCES[
        (assignment, student, notebook)]
    stock_by_cell = stock_cells()[assignment][student][notebook]
    ours = [c for nb in our_results(graded, assignment, student)["notebooks"] if nb["name"] == notebook
            for c in nb["cells"] if c["kind"] == "test"]
    differ = [(c["grade_id"], stock_by_cell.get(c["grade_id"]), c["score"], c["message"][:200]) for c in ours
              if not c["state"] and c["score"] != stock_by_cell.get(c["grade_id"])]
    assert not differ, f"cells graded otherwise than stock (cell, stock, dlcourse, message): {differ}"


def test_a_partial_hand_in_is_graded_on_its_notebooks_and_the_others_are_missing(graded):
    result = our_results(graded, "ps1", "baz")
    statuses = {nb["name"]: nb["status"] for nb in result["notebooks"]}
    assert statuses == {"hidden": "ok", **{nb: "missing" for nb in ASSIGNMENTS["ps1"]["masters"] if nb != "hidden"}}
    assert result["status"] == "ok"
    with open(graded / "reports" / "ps1" / "grades.csv", newline="") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    assert rows["baz"]["status"] == "ok" and float(rows["baz"]["score"]) == 1.0


def test_missing_notebooks_with_force_keep_the_handed_in_one_graded(graded):
    result = our_results(graded, "ps_forced", "foo")
    assert {nb["name"]: nb["status"] for nb in result["notebooks"]} == {"p1": "ok", "p2": "missing",
                                                                        "environment": "ok"}
    assert result["status"] == "ok"


def test_the_masters_that_fail_their_own_tests_are_refused_without_force(graded):
    from plain_course import PlainCourse
    from tiny_course import GRADE_OPTIONS

    run = PlainCourse(graded).dlcourse("grade", "ps_forced", *GRADE_OPTIONS, "--workers", "1")
    refusal = run.stdout + run.stderr
    assert run.returncode != 0 and "do not get full marks" in refusal
    # the environment's test fails because the reference sees NBGRADER_EXECUTION as stock sets it
    assert "environment cell-bfbdf1784663b6b6" in refusal and "p1 " in refusal


def test_the_autotest_cell_that_hands_a_lambda_to_its_own_function_is_listed_as_running_in_the_kernel(graded):
    warnings = (graded / "reports" / "ps1" / "WARNINGS.txt").read_text()
    assert "multi cell-13479eb0e5fff152: runs in the student's kernel" in warnings


def _release_form(source: str) -> str:
    """A test cell as the release shows it: the hidden block removed (nbgrader's ClearHiddenTests), salts and
    digests of hashed tests as placeholders (nbgrader 0.9.6 derives the salt from the cell; the fixtures were
    made by an earlier nbgrader, whose salt was random)."""
    source = re.sub(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", "", source, flags=re.DOTALL)
    source = re.sub(r'b"[0-9a-f]+"\)\.hexdigest\(\) == "[0-9a-f]{40}"', 'b"SALT").hexdigest() == "DIGEST"', source)
    return source.strip()


@pytest.mark.parametrize("name", ["simple", "hashed", "multi", "hidden"])
def test_our_autotest_expansion_is_the_one_nbgrader_wrote_into_its_own_fixtures(graded, name):
    from dlcourse.core.notebook import grade_id
    from dlcourse.grading.autotest import expanded_tests

    ours = expanded_tests(graded / "source" / "ps1" / f"{name}.ipynb")
    theirs = {grade_id(c): c.source for c in nbformat.read(str(NOTEBOOKS / f"autotest-{name}-unchanged.ipynb"), 4).cells
              if grade_id(c) in ours}
    assert ours and set(theirs) == set(ours)
    for cell, source in ours.items():
        assert _release_form(source) == _release_form(theirs[cell]), cell
    if name == "hidden":  # the hidden block is graded: it asserts the values themselves
        assert 'assert str(a) == "5"' in ours["test_hidden"].split("### END HIDDEN TESTS")[0]


if __name__ == "__main__":
    if sys.argv[1:] != ["--record-stock"]:
        sys.exit("usage: python tests/grader/test_nbgrader_fixtures.py --record-stock")
    import tempfile
    import time
    from importlib import metadata

    sys.path.insert(0, str(HERE))
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch:
        recorded = record_stock_scores(Path(scratch) / "course")
    seconds = time.monotonic() - started
    STOCK_SCORES.write_text(json.dumps({
        "command": "python tests/grader/test_nbgrader_fixtures.py --record-stock",
        "nbgrader": metadata.version("nbgrader"), "seconds": round(seconds, 1), **recorded},
        indent=1, sort_keys=True) + "\n")
    print(f"stock scores recorded in {STOCK_SCORES} ({seconds:.0f} s)")
