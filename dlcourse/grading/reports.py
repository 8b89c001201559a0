"""Steps 5-6: record each result as it arrives, and write the reports at the end.

Per student: the graded notebooks in ``autograded/<student>/<assignment>/``
(for formgrader and feedback), then ``.dlcourse-result.json`` (the scores,
statuses and fingerprint; written last, so it marks completion). Per
assignment: ``reports/<assignment>/grades.csv`` and ``cells.csv``, and
``WARNINGS.txt`` when there is something to warn about. Every file is
replaced atomically.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import nbformat

from ..core.course import CourseLayout
from ..core.notebook import atomic_write
from .results import SubmissionResult


def store_result(layout: CourseLayout, result: SubmissionResult) -> None:
    """The graded notebooks for formgrader, then the result (last: it marks completion)."""
    folder = layout.autograded_dir(result.student_id, result.assignment)
    for notebook in result.notebooks:
        if notebook.graded is not None:
            atomic_write(folder / f"{notebook.name}.ipynb", nbformat.writes(nbformat.from_dict(notebook.graded)))
    atomic_write(layout.result_path(result.student_id, result.assignment), json.dumps(result.to_json()))


def load_result(path: Path, expected_fingerprint: str | None = None, *,
                with_notebooks: bool = True) -> SubmissionResult | None:
    """A stored result (with its graded notebooks), or None if it is missing, unreadable or outdated."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if expected_fingerprint is not None and data.get("fingerprint") != expected_fingerprint:
        return None
    try:
        result = SubmissionResult.from_json(data)
    except (TypeError, KeyError, ValueError):
        return None
    for notebook in result.notebooks if with_notebooks else []:
        graded = Path(path).parent / f"{notebook.name}.ipynb"
        if notebook.graded is None and graded.is_file():
            try:
                notebook.graded = nbformat.read(str(graded), as_version=4)
            except Exception:  # a damaged copy: the scores still stand; feedback shows them without cells
                notebook.graded = None
    return result


def write_reports(layout: CourseLayout, assignment: str, results: list[SubmissionResult],
                  warnings: list[str] = (), groups: dict[str, str] | None = None) -> tuple[Path, Path]:
    """``grades.csv`` (with each student's ``group``, empty for one without) and ``cells.csv``."""
    folder = layout.reports / assignment
    groups = groups or {}
    grades = io.StringIO()
    writer = csv.writer(grades, lineterminator="\n")
    writer.writerow(["student_id", "score", "max_score", "status", "group"])
    for r in results:
        writer.writerow([r.student_id, _number(r.score), _number(r.max_score), r.status, groups.get(r.student_id, "")])
    cells = io.StringIO()
    writer = csv.writer(cells, lineterminator="\n")
    writer.writerow(["student_id", "notebook", "grade_id", "score", "max_score", "state"])
    for r in results:
        for nb in r.notebooks:
            for c in nb.cells:  # a cell not graded (state): no score, 0 in the maximum, as in grades.csv
                writer.writerow([r.student_id, nb.name, c.grade_id, "" if c.score is None else _number(c.score),
                                 _number(0 if c.state else c.max_score), c.state])
    atomic_write(folder / "grades.csv", grades.getvalue())
    atomic_write(folder / "cells.csv", cells.getvalue())
    if warnings:
        atomic_write(folder / "WARNINGS.txt", "\n".join(warnings) + "\n")
    elif (folder / "WARNINGS.txt").exists():
        (folder / "WARNINGS.txt").unlink()
    return folder / "grades.csv", folder / "cells.csv"


def format_table(results: list[SubmissionResult]) -> str:
    """The grade table ``dlcourse grade`` prints."""
    width = max([len(r.student_id) for r in results] + [10])
    lines = [f"{'student_id':<{width}}  {'score':>7}  {'max':>5}  status"]
    lines += [f"{r.student_id:<{width}}  {r.score:>7g}  {r.max_score:>5g}  {r.status}" for r in results]
    return "\n".join(lines)


def _number(value: float) -> str:
    return f"{value:g}"
