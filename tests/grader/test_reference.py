"""The reference first: `dlcourse grade` grades the master's solutions before any student.

A tiny course whose master has one more test (``test_data``, 1 point) that
needs a file of a data set under ``$DLCOURSE_DATA``. Without the file the
reference cannot pass: grading stops with a message naming the cell, the
data set and where it belongs, and grades nobody; with ``--force`` that
cell is ``not graded: grader fault`` for every student (no score, not in
the maximum), in cells.csv, WARNINGS.txt and the feedback; once the file is
there the reference is checked again and every student regraded with it.
On the plain tiny course the check is cached (the second run says so and
grades nobody's reference again), a change of the master checks it again,
and the grades are those the tiny course is built to give.
"""

from __future__ import annotations

import csv

import nbformat
import pytest

from dlcourse import authoring
from dlcourse.grading.results import GRADER_FAULT
from tiny_course import (ASSIGNMENT, GOOD_CUBE, GOOD_SQUARE, HIDDEN_MARKER, MAX_SCORE, WRONG_CUBE, WRONG_SQUARE,
                         dlcourse_env, template_course)

pytestmark = pytest.mark.slow

CHECKING = "checking the reference solutions of tiny"
CACHED = "reference solutions of tiny: checked before on this machine"
DATA_TEST = f"""
from dlcourse.data import data_root
from dlcourse.testing import student, assert_close
numbers = data_root() / "tiny-set" / "numbers.txt"
assert numbers.is_file(), f"the tiny data set is not in {{numbers.parent}}: put numbers.txt there"
### BEGIN HIDDEN TESTS
# {HIDDEN_MARKER}
value = float(numbers.read_text())
assert_close(student.square(value), value * value, name="square of the data")
### END HIDDEN TESTS
"""
STUDENTS = {"ann": {"square": GOOD_SQUARE, "cube": GOOD_CUBE}, "ben": {"square": WRONG_SQUARE, "cube": GOOD_CUBE},
            "cat": {"square": WRONG_SQUARE, "cube": WRONG_CUBE}}


@pytest.fixture(autouse=True)
def _own_machine_cache(tmp_path, monkeypatch):
    """Each test sees a machine that has checked no reference yet (these tests count the checks)."""
    monkeypatch.setenv("DLCOURSE_CACHE", str(tmp_path / "machine-cache"))


def _course(tmp_path, tmp_path_factory, with_data_test: bool):
    course = template_course(tmp_path_factory).copy(tmp_path / "course")
    if with_data_test:
        master = nbformat.read(str(course.master_path), as_version=4)
        master.cells.append(authoring.tests("test_data", 1, DATA_TEST))
        nbformat.write(master, str(course.master_path))
        released = course.dlcourse("release", ASSIGNMENT)
        assert released.returncode == 0, released.stderr
    for student, answers in STUDENTS.items():
        course.submit(student, answers)
    return course


def _cells(course) -> list[dict]:
    with open(course.reports / "cells.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_missing_data_stops_grading_names_the_cell_and_the_folder_and_grades_nobody(tmp_path, tmp_path_factory):
    course = _course(tmp_path, tmp_path_factory, with_data_test=True)
    data = tmp_path / "data"
    data.mkdir()
    run = course.grade("--workers", "2", env=dlcourse_env(DLCOURSE_DATA=str(data)))
    assert run.returncode == 1, run.stdout + run.stderr
    assert CHECKING in run.stderr
    assert f"tiny test_data: the tiny data set is not in {data / 'tiny-set'}" in run.stderr, run.stderr
    assert "--force" in run.stderr
    assert not (course.reports / "grades.csv").exists()
    assert not list(course.root.glob(f"autograded/*/{ASSIGNMENT}/.dlcourse-result.json")), "a student was graded"


def test_forced_grader_fault_is_excluded_for_every_student_until_the_data_is_there(tmp_path, tmp_path_factory):
    course = _course(tmp_path, tmp_path_factory, with_data_test=True)
    data = tmp_path / "data"
    data.mkdir()
    env = dlcourse_env(DLCOURSE_DATA=str(data))
    run = course.grade("--workers", "2", "--force", env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    # The data test counts for no one: the scores and maxima are those of the course without it.
    expected = {"ann": MAX_SCORE, "ben": 1.0, "cat": 0.0}
    assert course.grades() == {s: (score, MAX_SCORE, "ok") for s, score in expected.items()}
    rows = [r for r in _cells(course) if r["grade_id"] == "test_data"]
    assert sorted(r["student_id"] for r in rows) == sorted(STUDENTS)
    assert all(r["state"] == GRADER_FAULT and r["score"] == "" and r["max_score"] == "0" for r in rows), rows
    assert all(r["state"] == "" for r in _cells(course) if r["grade_id"] != "test_data")
    warning = (course.reports / "WARNINGS.txt").read_text()
    assert "GRADER FAULT" in warning and "tiny test_data: the tiny data set is not in" in warning, warning
    assert course.dlcourse("feedback", ASSIGNMENT).returncode == 0
    for student in STUDENTS:
        page = course.feedback_html(student)
        assert GRADER_FAULT in page and HIDDEN_MARKER not in page and str(data) not in page
    # The data set arrives: the reference is checked again and every student regraded with the test.
    (data / "tiny-set").mkdir()
    (data / "tiny-set" / "numbers.txt").write_text("3.5")
    run = course.grade("--workers", "2", env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert CHECKING in run.stderr
    expected = {"ann": MAX_SCORE + 1, "ben": 1.0, "cat": 0.0}
    assert course.grades() == {s: (score, MAX_SCORE + 1, "ok") for s, score in expected.items()}
    assert not (course.reports / "WARNINGS.txt").exists()


def test_reference_check_is_cached_and_redone_when_the_master_changes(tmp_path, tmp_path_factory):
    course = _course(tmp_path, tmp_path_factory, with_data_test=False)
    first = course.grade("--workers", "2")
    assert first.returncode == 0 and CHECKING in first.stderr, first.stderr
    expected = {"ann": MAX_SCORE, "ben": 1.0, "cat": 0.0}  # what the tiny course gives these answers
    assert course.grades() == {s: (score, MAX_SCORE, "ok") for s, score in expected.items()}
    course.submit("dan", {"square": GOOD_SQUARE, "cube": WRONG_CUBE})
    second = course.grade("--workers", "2")
    assert second.returncode == 0 and CACHED in second.stderr and CHECKING not in second.stderr, second.stderr
    assert course.grades()["dan"] == (2.0, MAX_SCORE, "ok")
    master = nbformat.read(str(course.master_path), as_version=4)
    master.cells[0].source += "\n\nA change of the text."
    nbformat.write(master, str(course.master_path))
    third = course.grade("--workers", "2")
    assert third.returncode == 0 and CHECKING in third.stderr, third.stderr
    assert course.grades() == {**{s: (score, MAX_SCORE, "ok") for s, score in expected.items()},
                               "dan": (2.0, MAX_SCORE, "ok")}
