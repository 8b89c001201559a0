"""merge_with_master: whatever a student does to the notebook's cells, the master decides what is graded."""

from __future__ import annotations

import copy

import nbformat
from hypothesis import given, settings
from hypothesis import strategies as st

from dlcourse.authoring import answer, code, md, written
from dlcourse.authoring import tests as make_test_cell
from dlcourse.grading.merge import GradedCell, merge_with_master
from dlcourse.core.notebook import grade_id

SETUP = "import torch"


def master_notebook():
    return nbformat.v4.new_notebook(cells=[
        md("# A tiny assignment", grade_id="intro"),
        code(SETUP, grade_id="setup"),
        answer("square", "def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION"),
        make_test_cell("test_square", 2, "from dlcourse.testing import student\nassert student.square(3) == 9"),
        md("Some words between the items."),
        code("print('an unmarked cell of the master')"),
        answer("cube", "def cube(x):\n    ### BEGIN SOLUTION\n    return x ** 3\n    ### END SOLUTION"),
        make_test_cell("test_cube", 1, "from dlcourse.testing import student\nassert student.cube(2) == 8"),
        written("why", 1, "Because.", prompt="Why?"),
    ])


def student_from(master, answers: dict[str, str]):
    """The student's copy: the master with the given answers and hacked test cells."""
    student = copy.deepcopy(master)
    for cell in student.cells:
        if grade_id(cell) in answers:
            cell.source = answers[grade_id(cell)]
        elif grade_id(cell) and grade_id(cell).startswith("test_"):
            cell.source = "pass  # the student emptied the test"
    return student


def roles(merged: list[GradedCell]) -> list[tuple[str, str | None]]:
    return [(c.role, c.grade_id) for c in merged]


MASTER_ORDER = [("locked", "intro"), ("locked", "setup"), ("answer", "square"), ("test", "test_square"),
                ("answer", "cube"), ("test", "test_cube"), ("manual", "why")]


def test_merged_cells_follow_the_master_and_take_tests_and_locked_cells_from_it():
    master = master_notebook()
    student = student_from(master, {"square": "def square(x):\n    return x ** 2", "setup": "import os",
                                    "why": "Because I say so."})
    merged = merge_with_master(master, student)
    assert roles([c for c in merged if c.role != "extra"]) == MASTER_ORDER
    by_id = {c.grade_id: c for c in merged if c.grade_id}
    assert by_id["square"].source == "def square(x):\n    return x ** 2"
    assert by_id["test_square"].source == master.cells[3].source
    assert by_id["setup"].source == SETUP  # a locked set-up cell comes from the master, edits or not
    assert by_id["why"].source == "Because I say so." and by_id["why"].cell_type == "markdown"  # written answer


def test_unmarked_master_cells_are_replaced_by_the_students_own_code_cells_in_place():
    master = master_notebook()
    student = student_from(master, {})
    merged = merge_with_master(master, student)
    extras = [(i, c.source) for i, c in enumerate(merged) if c.role == "extra"]
    # The student's copy of the unmarked code cell runs, right after the graded cell it followed.
    assert [source for _, source in extras] == ["print('an unmarked cell of the master')"]
    index = extras[0][0]
    assert merged[index - 1].grade_id == "test_square"


def test_missing_and_retyped_answers_become_empty_answers():
    master = master_notebook()
    student = copy.deepcopy(master)
    student.cells = [c for c in student.cells if grade_id(c) != "square"]
    for cell in student.cells:
        if grade_id(cell) == "cube":
            cell.cell_type = "markdown"
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
    merged = {c.grade_id: c for c in merge_with_master(master, student) if c.grade_id}
    assert merged["square"].source == "" and merged["square"].role == "answer"
    assert merged["cube"].source == "" and merged["cube"].cell_type == "code"


def test_a_duplicated_answer_cell_counts_once_the_first_copy():
    master = master_notebook()
    student = student_from(master, {"square": "def square(x):\n    return x * x  # first"})
    duplicate = copy.deepcopy(next(c for c in student.cells if grade_id(c) == "square"))
    duplicate.source = "def square(x):\n    return 0  # second"
    student.cells.append(duplicate)
    merged = [c for c in merge_with_master(master, student) if c.grade_id == "square"]
    assert len(merged) == 1 and merged[0].source.endswith("# first")


def test_a_student_cell_posing_as_a_test_cell_is_dropped():
    master = master_notebook()
    student = student_from(master, {})
    fake = nbformat.v4.new_code_cell("import builtins; builtins.print = None")
    fake.metadata["nbgrader"] = {"grade": True, "grade_id": "test_fake", "points": 100, "solution": False}
    student.cells.insert(0, fake)
    merged = merge_with_master(master, student)
    assert all("builtins.print" not in c.source for c in merged)
    assert [c.grade_id for c in merged if c.role == "test"] == ["test_square", "test_cube"]


def test_cells_that_are_not_dicts_are_ignored():
    master = master_notebook()
    student = {"cells": ["junk", 3, None, *student_from(master, {}).cells]}
    assert roles([c for c in merge_with_master(master, student) if c.role != "extra"]) == MASTER_ORDER


def test_only_student_code_runs_in_the_kernel():
    merged = merge_with_master(master_notebook(), student_from(master_notebook(), {}))
    assert {c.role for c in merged if c.runs_in_kernel} <= {"locked", "answer", "extra"}
    assert not any(c.runs_in_kernel for c in merged if c.role == "test")


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_any_reordering_deletion_or_duplication_keeps_the_masters_tests_in_the_masters_order(data):
    master = master_notebook()
    student = student_from(master, {"square": "def square(x):\n    return x * x", "cube": "def cube(x):\n    return 8"})
    cells = list(student.cells)
    order = data.draw(st.lists(st.integers(0, len(cells) - 1), max_size=2 * len(cells)), label="student cells")
    student.cells = [copy.deepcopy(cells[i]) for i in order]
    merged = merge_with_master(master, student)
    assert [(c.role, c.grade_id) for c in merged if c.role in ("test", "locked", "manual")] == \
        [r for r in MASTER_ORDER if r[0] in ("test", "locked", "manual")]
    by_id = {c.grade_id: c for c in merged if c.grade_id}
    for test_id in ("test_square", "test_cube"):
        assert by_id[test_id].source == next(c.source for c in master.cells if grade_id(c) == test_id)
    for answer_id, source in (("square", "def square(x):\n    return x * x"), ("cube", "def cube(x):\n    return 8")):
        kept = any(grade_id(cells[i]) == answer_id for i in order)
        assert by_id[answer_id].source == (source if kept else "")
