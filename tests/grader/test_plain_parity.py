"""Plain nbgrader test cells: stock ``nbgrader autograde`` and ``dlcourse grade`` on the same submissions.

One assignment written in nbgrader's documented style (``plain_course.py``): names used directly,
try/except on the student's ``ValueError``, ``del squares`` to check that ``sum_of_squares`` calls it,
a class with state, numpy checked with ``np.testing``, a printing test, a partial-credit number.
Each grader runs once for the module, on every submission (honest and hostile), about 3 minutes
each on 2 cores.

Honest submissions must get stock nbgrader's points on every cell. Hostile ones must get from
dlcourse no more than their honest counterpart (the same wrong answers without the cheat) on the
cells they cheat, while stock nbgrader gives them more (the hole, shown). The dlcourse side needs
plain test cells to reach the student's names (issue 14); a failure lists, per cell, stock
nbgrader's points, dlcourse's points and dlcourse's message.
"""

from __future__ import annotations

import pytest

from plain_course import (HIDDEN_MARKER, HONEST_NAMES, HOSTILE, MISTAKE_SETS, TEST_POINTS, PlainCourse, differences,
                          stock_cell_points)

pytestmark = pytest.mark.slow

STUDENTS = (*HONEST_NAMES, *HOSTILE)


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> PlainCourse:
    course = PlainCourse.build(tmp_path_factory.mktemp("plain") / "course")
    course.submit_all(STUDENTS)
    return course


@pytest.fixture(scope="module")
def stock(course, tmp_path_factory) -> dict[str, dict[str, float]]:
    return stock_cell_points(course, tmp_path_factory.mktemp("plain-stock") / "course", STUDENTS)


@pytest.fixture(scope="module")
def ours(course) -> dict[str, dict[str, tuple[float | None, str]]]:
    run = course.grade()
    assert run.returncode == 0, f"dlcourse grade failed:\n{run.stdout[-2000:]}{run.stderr[-2000:]}"
    return course.grade_cells()


def test_the_release_of_the_plain_assignment_holds_no_solution_and_no_hidden_test(course):
    import nbformat

    released = {line.strip() for cell in nbformat.read(str(course.release_path), as_version=4).cells
                for line in cell.source.splitlines()}
    master = nbformat.read(str(course.master_path), as_version=4)
    secret, inside = set(), False
    for cell in master.cells:
        for line in cell.source.splitlines():
            if line.strip() in ("### BEGIN SOLUTION", "### BEGIN HIDDEN TESTS"):
                inside = True
            elif line.strip() in ("### END SOLUTION", "### END HIDDEN TESTS"):
                inside = False
            elif inside and line.strip():
                secret.add(line.strip())
    assert secret and not secret & released, sorted(secret & released)


def test_stock_nbgrader_gives_the_reference_every_point_and_the_blank_release_none(stock):
    assert stock["reference"] == TEST_POINTS
    assert stock["blank"] == {cell: 0.0 for cell in TEST_POINTS}


@pytest.mark.parametrize("student", [*MISTAKE_SETS, "half", "wrong_base"])
def test_stock_nbgrader_takes_points_from_each_submission_with_mistakes(stock, student):
    lost = [cell for cell in TEST_POINTS if stock[student][cell] < stock["reference"][cell]]
    assert lost, f"{student} gets full marks from stock nbgrader: the fixture's mistakes are not caught"


@pytest.mark.parametrize("student", [name for name, hostile in HOSTILE.items() if hostile.cheats])
def test_stock_nbgrader_rewards_the_cheat_on_the_cells_it_targets(stock, student):
    hostile = HOSTILE[student]
    not_fooled = [f"{cell}: {stock[student][cell]} (honest {stock[hostile.honest][cell]})" for cell in hostile.cheats
                  if stock[student][cell] <= stock[hostile.honest][cell]]
    assert not not_fooled, f"stock nbgrader is not fooled by {student} on: {not_fooled}"


@pytest.mark.parametrize("student", HONEST_NAMES)
def test_dlcourse_gives_an_honest_submission_stock_nbgraders_points_on_every_cell(stock, ours, student):
    diffs = differences(stock[student], ours[student], TEST_POINTS)
    assert not diffs, (f"{student}: per-cell points differ (stock nbgrader's points, dlcourse's points, dlcourse's "
                       f"message):\n" + "\n".join(diffs))


@pytest.mark.parametrize("student", HOSTILE)
def test_dlcourse_gives_a_hostile_submission_no_more_than_its_honest_counterpart(stock, ours, student):
    hostile = HOSTILE[student]
    cells = hostile.cheats or tuple(TEST_POINTS)  # a submission that only breaks things: every cell
    over = [f"  {cell}: honest {stock[hostile.honest][cell]}, stock nbgrader {stock[student][cell]}, "
            f"dlcourse {ours[student][cell][0]}: {ours[student][cell][1][:300]!r}"
            for cell in cells if (ours[student][cell][0] or 0.0) > stock[hostile.honest][cell]]
    assert not over, (f"{student} cheats dlcourse (cell: honest points, stock nbgrader's, dlcourse's, dlcourse's "
                      f"message):\n" + "\n".join(over))


def test_no_cell_of_the_plain_assignment_has_to_run_in_the_students_kernel(course, ours):
    # Names, calls, attributes, try/except, del and re-assignment, numpy results: all reachable by handle.
    assert "runs in the student's kernel" not in course.warnings_text()
