"""The paper and its key: one version as notebook cells of HTML and markdown, printed to PDF.

:func:`paper_cells` lays a :class:`~.plan.Version` out as the cells of ``exam.pdf`` (``key=False``: a cover
with fields for the student, each coding template with its solution regions blanked, the open and the
single-choice questions, answer sheets) or of ``key.pdf`` (``key=True``: the solutions, partial credit,
the tests that check each part, the rubrics and the answers); :func:`write_pdfs` prints both with
:mod:`dlcourse.student.pdf`. What the pages say and how they look is in ``templates/*.html.j2`` (HTML is
escaped there: a title or a task cannot add markup); which rows a listing has and how tall a box is, here.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
from markupsafe import Markup, escape

from .metadata import CHOICES, CodingItem, ItemCell, Media, Part
from .notebook import choice_statement, part_label, question_text
from .plan import Version, points_text, render_text, rules


def task_html(text: str) -> Markup:
    """A task's text as HTML: escaped, `code` in a monospaced font."""
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", str(escape(text))))


def _md(source: str, media: Media | None = None):
    cell = nbformat.v4.new_markdown_cell(source)
    if media is not None and media.attachments:
        cell["attachments"] = copy.deepcopy(media.attachments)
    return cell


def _html(template: str, **context):
    """A markdown cell of the template's HTML. HTML blocks in markdown end at a blank line: none is kept."""
    source = render_text(template, **context)
    return nbformat.v4.new_markdown_cell("\n".join(line for line in source.splitlines() if line.strip()))


@dataclass
class ListingRow:
    """A row of a code listing: a line of the template (``code``), of a solution (``solution``, the key), or
    the row that stands for a solution region (``blank``: its label, and the box to write it in)."""
    kind: str
    number: int | None
    text: str
    letter: str = ""


def listing_rows(cell: ItemCell, parts: list[Part], *, key: bool) -> list[ListingRow]:
    """The rows of a listing with line numbers; each solution region either blanked and labelled (paper)
    or shown (key)."""
    owner = {id(r): p for p in parts for r in p.regions}
    lines = cell.source.splitlines()
    regions = {r.begin: r for r in cell.regions}
    rows, number, index = [], 1, 0
    while index < len(lines):
        region = regions.get(index)
        if region is None:
            rows.append(ListingRow("code", number, lines[index]))
            number, index = number + 1, index + 1
            continue
        part = owner[id(region)]
        if key:
            rows.append(ListingRow("blank", None, part_label(part, region), part.letter))
            rows += [ListingRow("solution", number + n, line) for n, line in enumerate(region.lines)]
            number += len(region.lines)
        else:
            rows.append(ListingRow("blank", number, part_label(part, region), part.letter))
            number += 1
        index = region.end + 1
    return rows


def paper_cells(version: Version, *, key: bool) -> list:
    """The cells of exam.pdf (``key=False``) or key.pdf (``key=True``)."""
    number = version.numbering()
    points = version.section_points()
    cells = [_html("cover.html.j2", version=version, key=key, sections=points, rules=rules(version),
                   points_text=points_text)]
    for index, item in enumerate(version.items):
        cells += _coding_question(item, number[item.key], part="A" if index == 0 else None,
                                  points=points["coding"], key=key)
    cells.append(_html("paper_heading.html.j2", part="B", points=points_text(points["open"]), question=None))
    for question in version.open_questions:
        q = number[question.key]
        if question.context:
            cells.append(_md(question.context, question.media))
        cells.append(_md(question_text(q, question.points, question.prompt)))
        if key:
            cells.append(_md(render_text("rubric.md.j2", points=points_text(question.points),
                                         rubric=question.rubric)))
    cells.append(_html("paper_heading.html.j2", part="C", points=points_text(points["choice"]), question=None))
    for shown in version.choices:
        cells.append(_md(question_text(number[shown.question.key], shown.question.points, choice_statement(shown))))
        if key:
            cells.append(_md(render_text("choice_key.md.j2", answer=shown.answer,
                                         points=points_text(shown.question.points))))
    cells += _answer_sheets(version) if not key else [_key_summary(version)]
    return cells


def _coding_question(item: CodingItem, q: int, *, part: str | None, points: float, key: bool) -> list:
    """A coding question: its heading, the master's statements, its listings, its parts (and, in the key,
    its tests)."""
    heading = {"number": q, "title": item.title, "points": points_text(item.points)}
    cells = [_html("paper_heading.html.j2", part=part, points=points_text(points), question=heading)]
    cells += [_md(s, item.media) for s in item.statements]
    cells += [_html("code_listing.html.j2", rows=listing_rows(cell, item.parts, key=key), key=key)
              for cell in item.cells]
    parts = [{"letter": p.letter, "points": points_text(p.points), "task": task_html(p.task), "partial": p.partial,
              "tests": ", ".join(t.cell for t in item.tests if p in t.parts)} for p in item.parts]
    cells.append(_html("part_list.html.j2", parts=parts, key=key))
    if key:
        tests = [{"cell": t.cell, "points": points_text(t.points),
                  "checks": ", ".join(f"({p.letter})" for p in t.parts)} for t in item.tests]
        cells.append(_html("item_tests.html.j2", tests=tests))
    return cells


def _answer_sheets(version: Version) -> list:
    """A sheet per coding question (a box per part, as tall as its solution), one for the open questions
    and one for the single-choice answers."""
    number = version.numbering()
    sheets = []
    for item in version.items:
        q = number[item.key]
        boxes = [{"height": f"{max(4.0, 1.7 * p.lines + 2) * 1.45:.1f}", "label": f"Question {q} ({p.letter})",
                  "points": points_text(p.points), "task": task_html(p.task)} for p in item.parts]
        sheets.append(_sheet(version, f"question {q}", boxes))
    boxes = [{"height": f"{6 + 4 * o.points:.0f}", "label": f"Question {number[o.key]}",
              "points": points_text(o.points), "task": None} for o in version.open_questions]
    sheets.append(_sheet(version, "open questions", boxes))
    sheets.append(_sheet(version, "single choice", [], grid=[number[c.question.key] for c in version.choices]))
    return sheets


def _sheet(version: Version, title: str, boxes: list[dict], grid: list[int] | None = None):
    return _html("answer_sheet.html.j2", version=version, title=title, boxes=boxes, grid=grid, letters=CHOICES)


def _key_summary(version: Version):
    number = version.numbering()
    rows = [{"number": number[c.question.key], "answer": c.answer, "paper": c.question.key} for c in version.choices]
    return _html("key_summary.html.j2", rows=rows)


def write_pdfs(version: Version, folder: Path, files_dir: Path | None = None) -> list[Path]:
    """``folder/exam.pdf`` and ``folder/key.pdf`` of one version (``files_dir``: where linked figures are)."""
    from ..student.pdf import notebook_to_pdf

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for key, filename in ((False, "exam.pdf"), (True, "key.pdf")):
        notebook = nbformat.v4.new_notebook()
        notebook.cells = paper_cells(version, key=key)
        footer = f"exam {version.name}" + (f", {version.label}" if version.label else "") + (" - KEY" if key else "")
        written.append(notebook_to_pdf(notebook, folder / filename, footer=footer, files_dir=files_dir).path)
    return written
