"""Small helpers to write master notebooks from Python (for course authors).

The master notebooks in ``source/`` are the source of truth; these helpers
only save typing the nbgrader metadata when a notebook is first written:

    cells = [
        md("# A1: ..."),
        code("import torch"),
        answer("forward_trace", "def forward_trace(x, c):\\n    ### BEGIN SOLUTION\\n ..."),
        tests("test_forward_trace", 2, "from dlcourse.testing import student\\n..."),
        written("chain_rule_written", 1, "Write the chain rule ...", rubric="..."),
    ]
    write_notebook("source/a1_autodiff/a1_autodiff.ipynb", cells)
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import nbformat

SCHEMA_VERSION = 3


def _meta(grade_id: str, *, grade: bool, solution: bool, locked: bool, points: float | None = None) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": SCHEMA_VERSION,
            "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def _clean(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


def md(text: str, grade_id: str | None = None):
    """A markdown cell; with ``grade_id`` it is locked (students cannot edit it)."""
    cell = nbformat.v4.new_markdown_cell(_clean(text))
    if grade_id:
        cell.metadata.update(_meta(grade_id, grade=False, solution=False, locked=True))
    return cell


def code(source: str, grade_id: str | None = None):
    """A code cell; with ``grade_id`` it is locked (e.g. set-up students must not change)."""
    cell = nbformat.v4.new_code_cell(_clean(source))
    if grade_id:
        cell.metadata.update(_meta(grade_id, grade=False, solution=False, locked=True))
    return cell


def answer(grade_id: str, source: str):
    """An autograded answer cell: the solution goes between BEGIN/END SOLUTION."""
    cell = nbformat.v4.new_code_cell(_clean(source))
    cell.metadata.update(_meta(grade_id, grade=False, solution=True, locked=False))
    return cell


def tests(grade_id: str, points: float, source: str):
    """A test cell worth ``points``; hidden parts go between BEGIN/END HIDDEN TESTS."""
    cell = nbformat.v4.new_code_cell(_clean(source))
    cell.metadata.update(_meta(grade_id, grade=True, solution=False, locked=True, points=points))
    return cell


def written(grade_id: str, points: float, rubric: str, prompt: str = ""):
    """A manually graded markdown answer; ``rubric`` stays in the master only."""
    body = f"### BEGIN SOLUTION\n{_clean(rubric)}\n### END SOLUTION"
    if prompt:
        body = _clean(prompt) + "\n\n" + body
    cell = nbformat.v4.new_markdown_cell(body)
    cell.metadata.update(_meta(grade_id, grade=True, solution=True, locked=False, points=points))
    return cell


def write_notebook(path: str | Path, cells: list) -> Path:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = cells
    notebook.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python",
                                       "name": "python3"}
    notebook.metadata["language_info"] = {"name": "python"}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path
