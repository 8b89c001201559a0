"""Per-student HTML feedback that never shows a hidden test.

Stock ``nbgrader generate_feedback`` renders the autograded notebook, hidden
test source included. Here each test cell is replaced by a short box: its
points, and the message of the check that failed (what is wrong and where to
look), never the test's code.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import nbformat

from .course import CourseLayout
from .grading.reports import load_result
from .grading.results import Status, SubmissionResult
from .notebook import atomic_write, grade_id as cell_grade_id, is_test_cell

def feedback_notebook(result: SubmissionResult, notebook_index: int, manual_scores: dict | None = None):
    """The notebook the student sees: their cells, and test results without test code."""
    notebook = result.notebooks[notebook_index]
    grades = {c.grade_id: c for c in notebook.cells}
    header = [f"# Feedback: {result.assignment} / {notebook.name}",
              f"**Student:** {html.escape(result.student_id)}  ",
              f"**Automatic score:** {notebook.score:g} / {notebook.max_score:g}  ",
              f"**Status:** {Status(notebook.status).student_text}"]
    if notebook.message:
        header.append(f"\n> {html.escape(notebook.message)}")
    cells = [nbformat.v4.new_markdown_cell("\n".join(header))]
    graded = nbformat.from_dict(notebook.graded) if notebook.graded else None
    for cell in (graded.cells if graded else []):
        grade_id = cell_grade_id(cell)
        if is_test_cell(cell):
            grade = grades.get(grade_id)
            if grade is None:
                continue
            mark = "passed" if grade.score == grade.max_score else "failed"
            text = f"**Test `{grade_id}`: {grade.score:g} / {grade.max_score:g} points ({mark})**"
            if grade.message:
                text += "\n\n```text\n" + grade.message.replace("```", "'''") + "\n```"
            cells.append(nbformat.v4.new_markdown_cell(text))
        elif grade_id in grades and grades[grade_id].kind == "manual":
            cells.append(nbformat.v4.new_markdown_cell(cell.source))
            score = (manual_scores or {}).get((notebook.name, grade_id))
            shown = "not graded yet" if score is None else f"{score:g}"
            cells.append(nbformat.v4.new_markdown_cell(
                f"*Written answer `{grade_id}`, graded by hand: {shown} / {grades[grade_id].max_score:g} points*"))
        else:
            copy = nbformat.from_dict(json.loads(json.dumps(cell)))
            copy.metadata = {}
            cells.append(copy)
    if graded is None:
        for grade in notebook.cells:
            if grade.kind == "test":
                cells.append(nbformat.v4.new_markdown_cell(
                    f"**Test `{grade.grade_id}`: {grade.score or 0:g} / {grade.max_score:g} points**\n\n{grade.message}"))
    result_nb = nbformat.v4.new_notebook(cells=cells)
    result_nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return result_nb


def write_feedback(layout: CourseLayout, result: SubmissionResult, manual_scores: dict | None = None) -> list[Path]:
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")
    written = []
    for index, notebook in enumerate(result.notebooks):
        body, _ = exporter.from_notebook_node(feedback_notebook(result, index, manual_scores))
        path = layout.feedback / result.student_id / result.assignment / f"{notebook.name}.html"
        atomic_write(path, body)
        written.append(path)
    return written


def write_assignment_feedback(layout: CourseLayout, assignment: str) -> list[Path]:
    """Feedback for every graded student of ``assignment``, with the manual scores given so far."""
    from .gradebook import manual_scores

    written = []
    for path in layout.result_paths(assignment):
        result = load_result(path)
        if result is None:
            continue
        written += write_feedback(layout, result, manual_scores(layout, assignment, result.student_id))
    return written
