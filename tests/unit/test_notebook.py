"""Cell predicates, magics, notebook reading and atomic writes (dlcourse.core.notebook)."""

from __future__ import annotations

import ast

import nbformat
import pytest

from dlcourse.authoring import answer, code, md, written
from dlcourse.authoring import tests as make_test_cell
from dlcourse.core.notebook import (atomic_write, cell_points, cell_source, is_answer_cell, is_graded_cell, is_locked_cell,
                               is_manual_cell, is_test_cell, read_notebook, solution_source, strip_magics)


def test_each_nbgrader_cell_kind_is_recognised_by_exactly_one_predicate():
    kinds = {
        "answer": answer("f", "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION"),
        "test": make_test_cell("test_f", 2, "assert True"),
        "manual": written("why", 1, "Because."),
        "locked": code("import torch", grade_id="setup"),
        "locked text": md("Read this.", grade_id="intro"),
        "plain": code("x = 1"),
    }
    predicates = {"answer": is_answer_cell, "test": is_test_cell, "manual": is_manual_cell, "locked": is_locked_cell}
    for name, cell in kinds.items():
        hits = [p for p, predicate in predicates.items() if predicate(cell)]
        assert hits == ([] if name == "plain" else [name.split()[0]]), name
    assert is_graded_cell(kinds["test"]) and is_graded_cell(kinds["manual"]) and not is_graded_cell(kinds["answer"])
    assert cell_points(kinds["test"]) == 2.0 and cell_points(kinds["answer"]) == 0.0


def test_a_markdown_cell_marked_as_a_test_is_not_a_test_cell():
    cell = make_test_cell("test_f", 1, "assert True")
    cell.cell_type = "markdown"
    assert not is_test_cell(cell)


def test_solution_source_drops_the_markers_only():
    cell = answer("f", "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n# after")
    assert solution_source(cell) == "def f():\n    return 1\n# after"
    assert cell_source({"source": ["a\n", "b"]}) == "a\nb"


@pytest.mark.parametrize("source, expected", [
    ("%matplotlib inline\nx = 1", "pass\nx = 1"),
    ("!pip install torch", "pass"),
    ("if True:\n    %time f()\n", "if True:\n    pass"),
    ("%%time\nx = 1", "pass\nx = 1"),
    ("y = (a\n     % b)", "y = (a\n     % b)"),  # the modulo operator of a continued expression stays
    ('s = """\n%not a magic\n"""', 's = """\n%not a magic\n"""'),
    ("x = 7 \\\n  % 2", "x = 7 \\\n  % 2"),
    ("files = !ls\nn = %who_ls", "files = None\nn = None"),
    ("x = 7 % 2", "x = 7 % 2"),
])
def test_strip_magics_makes_magics_inert_and_keeps_everything_else(source, expected):
    stripped = strip_magics(source)
    assert stripped == expected
    ast.parse(stripped.replace("a\n", "1\n").replace("% b", "% 2"))  # still Python
    assert len(stripped.splitlines()) == len(source.splitlines())  # line numbers kept


def test_read_notebook_says_why_a_file_is_unreadable(tmp_path):
    broken = tmp_path / "broken.ipynb"
    broken.write_bytes(b"\x00\x01 not json")
    with pytest.raises(ValueError, match="cannot be read"):
        read_notebook(broken)
    no_cells = tmp_path / "no_cells.ipynb"
    no_cells.write_text('{"cells": "none", "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    with pytest.raises(ValueError):
        read_notebook(no_cells)
    good = tmp_path / "good.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[code("x = 1")]), str(good))
    assert read_notebook(good).cells[0].source == "x = 1"


def test_atomic_write_replaces_the_file_whole_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "deep" / "file.txt"
    atomic_write(target, "old")
    atomic_write(target, b"new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.txt"]
