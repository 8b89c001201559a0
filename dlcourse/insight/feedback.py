"""Per-student feedback that never shows a hidden test: HTML (and PDF, and a zip per student).

Stock ``nbgrader generate_feedback`` renders the autograded notebook, hidden
test source included, and loads MathJax from a CDN. Here:

- the page opens with a table of every graded item: the task as the
  notebook states it, points, passed/failed, the failure message and a link
  to the item further down;
- each test cell is replaced by a short box (points and the message of the
  check that failed), never the test's code;
- tracebacks name the student's cell ("cell 3, line 2") instead of
  ipykernel's temporary file, and show that line of the student's own cell
  (only the student's cells are ever mapped: a hidden test's line cannot be
  shown);
- the graders' points and comments from formgrader are shown when given;
- math is typeset offline: a trimmed copy of the local MathJax (the same one
  the hand-in PDF uses, :func:`dlcourse.student.pdf.find_mathjax`) is written beside
  the page; ``--pdf`` prints the same notebook with the hand-in's PDF engine.
"""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from ..core.course import CourseLayout
from ..grading.reports import load_result
from ..grading.results import Status, SubmissionResult
from ..core.notebook import atomic_write, grade_id as cell_grade_id, is_test_cell
from ..core.templates import render

#: The folder, beside each feedback page, with the parts of MathJax 2 the page needs.
MATHJAX_FOLDER = ".mathjax"
MATHJAX_CONFIG = "TeX-AMS_CHTML-full,Safe"
_MATHJAX_PARTS = ("MathJax.js", "config/TeX-AMS_CHTML-full.js", "extensions", "jax/input/TeX",
                  "jax/output/CommonHTML", "jax/element", "fonts/HTML-CSS/TeX/woff", "localization/en")

# A frame of a cell run by ipykernel: File "/tmp/ipykernel_123/2878962655.py", line 6, in square
_FRAME = re.compile(r'File "(?:[^"\n]*[/\\])?ipykernel_\d+[/\\](\d+)\.py", line (\d+)(, in [^\n]*)?\n(    [^\n]*\n)?')
# IPython's own traceback form (a student cell's error output): File /tmp/ipykernel_123/2878962655.py:6
_YOUR_CELL = re.compile(r"in your cell \[(\d+)\]")  # dlcourse.testing's "where" (the kernel's In [n])
_IPYTHON_FRAME = re.compile(r'File (?:\x1b\[[0-9;]*m)*(?:[^\s:]*[/\\])?ipykernel_\d+[/\\](\d+)\.py:(\d+)')


# --------------------------------------------------------------------------
# Tracebacks: ipykernel's file names -> the student's cells.


def kernel_cell_names(graded) -> dict[str, tuple[int, str]]:
    """ipykernel's file stem of each cell the student's kernel ran -> (cell number, source).

    ipykernel names a cell's code ``<tmp>/ipykernel_<pid>/<murmur2 of the source>.py``;
    the hash is recomputed here, in the grader, from the graded notebook. Test
    cells run in the grader (never in the kernel) and are left out, so no
    frame can ever be shown as a line of a test.
    """
    from ipykernel.compiler import get_tmp_hash_seed, murmur2_x86

    names = {}
    for number, cell in code_cells(graded):
        if not is_test_cell(cell):
            names[str(murmur2_x86(cell.source, get_tmp_hash_seed()))] = (number, cell.source)
        if isinstance(cell.get("execution_count"), int):  # the kernel's In [n], as "your cell [n]" names it
            names[f"[{cell.execution_count}]"] = (number, cell.source)
    return names


def code_cells(graded) -> list[tuple[int, object]]:
    """(cell number, cell) of the code cells, numbered from 1 as the feedback's prompts show them."""
    return [(number, cell) for number, cell in enumerate((c for c in graded.cells if c.cell_type == "code"), 1)]


def name_cells(text: str, names: dict[str, tuple[int, str]]) -> str:
    """``text`` with each frame of a known cell as "cell N, line M" and that line of the cell.

    The line shown is taken from the graded notebook, not from the kernel's
    message; frames of unknown files are left as they are.
    """
    def frame(match: re.Match) -> str:
        known = names.get(match.group(1))
        if known is None:
            return match.group(0)
        number, source = known
        line = int(match.group(2))
        lines = source.splitlines()
        shown = f"    {lines[line - 1].strip()}\n" if 0 < line <= len(lines) else ""
        return f"cell {number}, line {line}{match.group(3) or ''}\n{shown}"

    def ipython_frame(match: re.Match) -> str:
        known = names.get(match.group(1))
        return match.group(0) if known is None else f"cell {known[0]}, line {match.group(2)}"

    def your_cell(match: re.Match) -> str:
        known = names.get(f"[{match.group(1)}]")
        return match.group(0) if known is None else f"in your cell {known[0]}"

    return _YOUR_CELL.sub(your_cell, _IPYTHON_FRAME.sub(ipython_frame, _FRAME.sub(frame, text)))


# --------------------------------------------------------------------------
# The feedback notebook.


def task_names(release_notebook) -> dict[str, str]:
    """grade_id -> the task as the notebook states it: the text above the item's answer cell."""
    names, last_text, answer_text = {}, "", ""
    for cell in (release_notebook.cells if release_notebook is not None else []):
        grade_id = cell_grade_id(cell)
        if cell.cell_type == "markdown" and not grade_id:
            last_text = _first_line(cell.source)
        elif is_test_cell(cell):
            names[grade_id] = answer_text or last_text
        elif grade_id:
            answer_text = last_text
            if cell.cell_type == "markdown":  # a written answer: its own question
                names[grade_id] = _first_line(cell.source) or last_text
    return {k: v for k, v in names.items() if v}


def _first_line(source: str) -> str:
    for line in source.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line if len(line) <= 120 else line[:117] + "..."
    return ""


def _item_anchor(grade_id: str) -> str:
    return "item-" + re.sub(r"[^A-Za-z0-9_-]", "-", grade_id)


def summary_html(notebook, names: dict[str, str], manual_scores: dict, comments: dict,
                 cell_numbers: dict[str, int], kernel_names: dict) -> str:
    """The table of every graded item, at the top of the feedback (``templates/feedback_summary.html.j2``)."""
    rows = []
    for grade in notebook.cells:
        score, mark, message = _item_outcome(notebook.name, grade, manual_scores, comments, kernel_names)
        rows.append({"task": names.get(grade.grade_id, ""), "grade_id": grade.grade_id,
                     "points": f"{'–' if score is None else f'{score:g}'} / {grade.max_score:g}",
                     "mark": mark, "mark_class": re.sub(r"[^a-z]+", "-", mark),
                     "message": _short(message) if message else "", "anchor": _item_anchor(grade.grade_id),
                     "where": cell_numbers.get(grade.grade_id)})
    return render("dlcourse.insight", "feedback_summary.html.j2", rows=rows).rstrip("\n")


def _item_outcome(notebook_name: str, grade, manual_scores: dict, comments: dict,
                  kernel_names: dict) -> tuple[float | None, str, str]:
    """(points, result, what went wrong) of one graded item."""
    if grade.kind == "test" and grade.state:  # not graded (a grader fault): no points either way
        return None, grade.state, grade.message
    if grade.kind == "test":
        score = grade.score or 0.0
        return (score, "passed" if score >= grade.max_score else "failed",
                name_cells(grade.message, kernel_names) if grade.message else "")
    given = manual_scores.get((notebook_name, grade.grade_id))
    return (given, "not graded yet" if given is None else "graded by hand",
            comments.get((notebook_name, grade.grade_id), ""))


def _short(message: str, limit: int = 1500) -> str:
    return message if len(message) <= limit else message[:limit] + "\n... (the whole message is below)"


@dataclass
class _Context:
    """What every step of :func:`feedback_notebook` reads: one notebook's grades and the graded notebook."""

    result: SubmissionResult
    notebook: object  # NotebookResult
    grades: dict  # grade_id -> CellGrade
    graded: object  # the graded notebook (nbformat), or None
    manual_scores: dict
    comments: dict
    names: dict[str, str]  # grade_id -> the task as the notebook states it
    numbers: dict[int, int]  # id(code cell) -> its number as the feedback shows it
    kernel_names: dict


def feedback_notebook(result: SubmissionResult, notebook_index: int, manual_scores: dict | None = None,
                      comments: dict | None = None, release_notebook=None):
    """The notebook the student sees: a summary table, their cells, and test results without test code."""
    notebook = result.notebooks[notebook_index]
    graded = nbformat.from_dict(notebook.graded) if notebook.graded else None
    context = _Context(result, notebook, {c.grade_id: c for c in notebook.cells}, graded, manual_scores or {},
                       comments or {}, task_names(release_notebook),
                       {id(c): n for n, c in code_cells(graded)} if graded else {},
                       kernel_cell_names(graded) if graded else {})
    cells = [nbformat.v4.new_markdown_cell(_header(context))]
    for cell in (graded.cells if graded else []):
        cells += _feedback_cells(context, cell)
    if graded is None:
        cells += _tests_without_notebook(context)
    node = nbformat.v4.new_notebook(cells=cells)
    node.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return node


def _markdown(template: str, **values) -> str:
    return render("dlcourse.insight", template, **values).rstrip("\n")


def _header(context: _Context) -> str:
    """The first cell: who, the scores, the status, and the table of every item."""
    notebook, manual_scores = context.notebook, context.manual_scores
    manual_max = sum(g.max_score for g in notebook.cells if g.kind == "manual")
    manual = None
    if manual_max:
        manual = {"max": manual_max,
                  "total": sum(manual_scores.get((notebook.name, g.grade_id)) or 0.0 for g in notebook.cells
                               if g.kind == "manual"),
                  "graded": any((notebook.name, g.grade_id) in manual_scores for g in notebook.cells)}
    cell_numbers = {cell_grade_id(cell): number for number, cell in code_cells(context.graded)} \
        if context.graded else {}
    summary = summary_html(notebook, context.names, manual_scores, context.comments, cell_numbers,
                           context.kernel_names)
    return _markdown("feedback_header.md.j2", assignment=context.result.assignment, notebook=notebook.name,
                     student=context.result.student_id, score=notebook.score, max_score=notebook.max_score,
                     manual=manual, status=Status(notebook.status).student_text, message=notebook.message,
                     summary=summary)


def _feedback_cells(context: _Context, cell) -> list:
    """What the feedback shows for one cell of the graded notebook (a test cell: its result, never its code)."""
    grade_id = cell_grade_id(cell)
    anchor = f'<a id="{_item_anchor(grade_id)}"></a>' if grade_id in context.grades else ""
    if is_test_cell(cell):
        return _test_result(context, cell, grade_id, anchor)
    if grade_id in context.grades and context.grades[grade_id].kind == "manual":
        return _written_answer(context, cell, grade_id, anchor)
    return _student_cell(context, cell, grade_id, anchor)


def _test_result(context: _Context, cell, grade_id: str, anchor: str) -> list:
    grade = context.grades.get(grade_id)
    if grade is None:
        return []
    mark = "passed" if (grade.score or 0) >= grade.max_score else "failed"
    points = (f"{grade.state} (not counted, out of {grade.max_score:g})" if grade.state else
              f"{grade.score or 0:g} / {grade.max_score:g} points ({mark})")
    message = name_cells(grade.message, context.kernel_names).replace("```", "'''") if grade.message else ""
    return [nbformat.v4.new_markdown_cell(_markdown(
        "feedback_cells.md.j2", kind="test", anchor=anchor, number=context.numbers.get(id(cell)), grade_id=grade_id,
        task=context.names.get(grade_id), points=points, message=message))]


def _written_answer(context: _Context, cell, grade_id: str, anchor: str) -> list:
    """The student's written answer, then the points and comment formgrader gave it."""
    score = context.manual_scores.get((context.notebook.name, grade_id))
    text = _markdown("feedback_cells.md.j2", kind="answer", grade_id=grade_id,
                     shown="not graded yet" if score is None else f"{score:g}",
                     max_score=context.grades[grade_id].max_score,
                     comment=context.comments.get((context.notebook.name, grade_id)))
    return [nbformat.v4.new_markdown_cell(anchor + "\n\n" + cell.source), nbformat.v4.new_markdown_cell(text)]


def _student_cell(context: _Context, cell, grade_id: str, anchor: str) -> list:
    """A cell as the student ran it (numbered as the summary says; tracebacks name their cells)."""
    copy = nbformat.from_dict(json.loads(json.dumps(cell)))
    copy.metadata = {}
    if copy.cell_type == "code":
        copy.execution_count = context.numbers.get(id(cell))
        for output in copy.get("outputs", []):
            if output.get("output_type") == "error":
                output["traceback"] = [name_cells(line, context.kernel_names) for line in output.get("traceback", [])]
    cells = [nbformat.v4.new_markdown_cell(anchor)] if anchor else []
    cells.append(copy)
    comment = context.comments.get((context.notebook.name, grade_id))
    if comment:
        cells.append(nbformat.v4.new_markdown_cell(_markdown("feedback_cells.md.j2", kind="comment", comment=comment)))
    return cells


def _tests_without_notebook(context: _Context) -> list:
    """No graded notebook (it could not run): each test's points and message."""
    return [nbformat.v4.new_markdown_cell(_markdown(
        "feedback_cells.md.j2", kind="test_only", grade_id=grade.grade_id,
        points=f"{grade.score or 0:g} / {grade.max_score:g} points", message=grade.message))
        for grade in context.notebook.cells if grade.kind == "test"]


# --------------------------------------------------------------------------
# Writing it.

def _summary_css() -> str:
    """The summary table's ``<style>`` (``templates/feedback_style.html.j2``)."""
    return render("dlcourse.insight", "feedback_style.html.j2").rstrip("\n")


def copy_mathjax(folder: Path) -> bool:
    """The parts of the local MathJax the page needs, into ``folder/.mathjax`` (False: no local MathJax)."""
    from ..student.pdf import find_mathjax

    source = find_mathjax()
    if source is None:
        return False
    target = folder / MATHJAX_FOLDER
    if (target / "MathJax.js").is_file():
        return True
    for part in _MATHJAX_PARTS:
        src, dst = source / part, target / part
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        elif src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
    return True


def render_html(node, folder: Path, files_dir: Path | None = None) -> str:
    """The feedback page; math typeset by the MathJax copied beside it (the CDN only without one).

    Images that markdown links relative to ``files_dir`` (the release's reference figures) are embedded,
    so that the page shows them wherever it is opened; a missing one stays a link."""
    from nbconvert import HTMLExporter

    from ..student.pdf import MATHJAX_CDN

    local = copy_mathjax(folder)
    url = f"{MATHJAX_FOLDER}/MathJax.js?config={MATHJAX_CONFIG}" if local else f"{MATHJAX_CDN}?config={MATHJAX_CONFIG}"
    exporter = HTMLExporter(template_name="lab", mathjax_url=url, embed_images=files_dir is not None)
    body, _ = exporter.from_notebook_node(node, resources={"metadata": {"path": str(files_dir)}} if files_dir else None)
    # require.js (from a CDN) only serves widgets, which feedback has none of: offline it would only fail
    body = body.replace(f'<script src="{exporter.require_js_url}"></script>', "", 1)
    return body.replace("</head>", _summary_css() + "</head>", 1)


def write_feedback(layout: CourseLayout, result: SubmissionResult, manual_scores: dict | None = None,
                   comments: dict | None = None, *, pdf: bool = False) -> list[Path]:
    written = []
    folder = layout.feedback / result.student_id / result.assignment
    for index, notebook in enumerate(result.notebooks):
        release = layout.release / result.assignment / f"{notebook.name}.ipynb"
        release_nb = nbformat.read(str(release), as_version=4) if release.is_file() else None
        node = feedback_notebook(result, index, manual_scores, comments, release_nb)
        path = folder / f"{notebook.name}.html"
        atomic_write(path, render_html(node, folder, release.parent))
        written.append(path)
        if pdf:
            from ..student.pdf import notebook_to_pdf

            pdf_node = nbformat.from_dict(json.loads(json.dumps(node)))
            pdf_node.cells[0].source = _summary_css() + "\n\n" + pdf_node.cells[0].source
            written.append(notebook_to_pdf(pdf_node, folder / f"{notebook.name}.pdf", files_dir=release.parent,
                                           footer=f"{result.student_id} / {result.assignment}").path)
    return written


def zip_feedback(layout: CourseLayout, assignment: str, student_id: str) -> Path:
    """``reports/<assignment>/feedback/<student>.zip``: the student's feedback folder, for the LMS's upload."""
    folder = layout.feedback / student_id / assignment
    path = layout.reports / assignment / "feedback" / f"{student_id}.zip"
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".zip.partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, Path(student_id) / file.relative_to(folder))
    partial.replace(path)
    return path


def write_assignment_feedback(layout: CourseLayout, assignment: str, *, students: list[str] | None = None,
                              pdf: bool = False, zips: bool = True) -> list[Path]:
    """Feedback for every graded student of ``assignment`` (or ``students``), with formgrader's scores so far."""
    from ..grading.gradebook import manual_grading

    written = []
    for path in layout.result_paths(assignment):
        result = load_result(path)
        if result is None or (students is not None and result.student_id not in students):
            continue
        written += write_feedback(layout, result, *manual_grading(layout, assignment, result.student_id), pdf=pdf)
        if zips:
            written.append(zip_feedback(layout, assignment, result.student_id))
    return written
