"""The master notebook of a computer-based sitting: one version as an nbgrader master.

:func:`exam_notebook` lays a :class:`~.plan.Version` out as cells (a names cell, the rules, a set-up cell,
then per coding question its text, its answer cells labelled with their parts and the item's own tests;
per open question a manually graded written cell holding the rubric; per single-choice question an answer
cell and a test whose hidden part checks the letter), so ``dlcourse release`` and ``dlcourse grade`` take it
like any assignment. The cells' texts are the templates in ``templates/`` (``*.md.j2``, ``*.py.j2``); the
nbgrader metadata and the order of the cells are here.
"""

from __future__ import annotations

import copy
import re

import nbformat

from .metadata import CHOICES, HIDDEN_BEGIN, CodingItem, ItemCell, OpenQuestion, Part, Region
from .plan import ChoiceShown, Version, points_text, render_text, rules

EXAM_SETUP = "import math\n\nimport torch\nfrom torch import nn\n\ntorch.manual_seed(0)\ntorch.set_num_threads(1)"
NAMES_CELL = '# Your name, e.g.\n# NAMES = "Ada Lovelace"\nNAMES = ""'
SEED_CALL = re.compile(r"(manual_seed\(|seed=)(\d+)")


def _meta(gid: str, *, grade: bool, solution: bool, locked: bool, points: float | None = None) -> dict:
    meta = {"grade": grade, "grade_id": gid, "locked": locked, "schema_version": 3, "solution": solution,
            "task": False}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def _cell(kind: str, source: str, gid: str, **meta):
    cell = nbformat.v4.new_markdown_cell(source) if kind == "markdown" else nbformat.v4.new_code_cell(source)
    cell.metadata.update(_meta(gid, **meta))
    return cell


def _text_cell(source: str, gid: str, attachments: dict | None = None):
    """A locked markdown cell (with a copy of the statement's attachments, if any)."""
    cell = _cell("markdown", source, gid, grade=False, solution=False, locked=True)
    if attachments:
        cell["attachments"] = copy.deepcopy(attachments)
    return cell


def part_label(part: Part, region: Region) -> str:
    """``(b) 2 points`` above a part's first region, ``(b) continued`` above the others."""
    return f"({part.letter}) {points_text(part.points)}" if region is part.regions[0] else f"({part.letter}) continued"


def labelled_source(cell: ItemCell, parts: list[Part]) -> str:
    """The answer cell's source with ``# (b) 2 points`` above each solution region."""
    label = {id(r): p for p in parts if p.cell == cell.grade_id for r in p.regions}
    out = []
    for index, line in enumerate(cell.source.splitlines()):
        for region in cell.regions:
            if region.begin == index and id(region) in label:
                indent = line[:len(line) - len(line.lstrip())]
                out.append(f"{indent}# {part_label(label[id(region)], region)}")
        out.append(line)
    return "\n".join(out)


def vary_public_inputs(source: str, number: int) -> str:
    """A test cell with other seeds in its public part (version ``number``; 1 keeps the master's)."""
    if number <= 1 or HIDDEN_BEGIN not in source:
        return source
    public, hidden = source.split(HIDDEN_BEGIN, 1)
    public = SEED_CALL.sub(lambda m: f"{m.group(1)}{int(m.group(2)) + 1000 * (number - 1)}", public)
    return public + HIDDEN_BEGIN + hidden


def choice_statement(shown: ChoiceShown) -> str:
    """A single-choice question's prompt and its options, lettered in this version's order (markdown)."""
    options = [(CHOICES[k], shown.question.options[i]) for k, i in enumerate(shown.order)]
    return render_text("choice.md.j2", prompt=shown.question.prompt, options=options)


def question_text(number: int, points: float, text: str) -> str:
    """``**Question 12** (2 points). text`` (markdown): an open or a single-choice question."""
    return render_text("question.md.j2", number=number, points=points_text(points), text=text)


def exam_notebook(version: Version):
    """The master notebook of one version (solutions, hidden tests and rubrics in it, as in any master)."""
    number = version.numbering()
    points = version.section_points()
    cells = [
        _cell("code", NAMES_CELL, "names", grade=False, solution=False, locked=False),
        _text_cell(render_text("rules.md.j2", version=version, rules=rules(version)), "exam_rules"),
        _cell("code", EXAM_SETUP, "exam_setup", grade=False, solution=False, locked=True),
        _text_cell(_part_heading("A", points["coding"]), "part_a"),
    ]
    for item in version.items:
        cells += _coding_cells(version, item, number[item.key])
    cells.append(_text_cell(_part_heading("B", points["open"]), "part_b"))
    for question in version.open_questions:
        cells += _open_cells(question, number[question.key])
    cells.append(_text_cell(_part_heading("C", points["choice"]), "part_c"))
    for shown in version.choices:
        cells += _choice_cells(shown, number[shown.question.key])
    notebook = nbformat.v4.new_notebook()
    notebook.cells = cells
    notebook.metadata.update(_notebook_metadata(version))
    return notebook


def _part_heading(part: str, points: float) -> str:
    return render_text("notebook_part.md.j2", part=part, points=points_text(points))


def _coding_cells(version: Version, item: CodingItem, q: int) -> list:
    """The question's text, then each answer cell followed by the tests that end with it."""
    parts = [(p.letter, points_text(p.points), p.task) for p in item.parts]
    text = render_text("coding_question.md.j2", number=q, title=item.title, points=points_text(item.points),
                       statements=item.statements, parts=parts)
    cells = [_text_cell(text, f"q{q}_text", item.media.attachments)]
    for cell in item.cells:
        cells.append(_cell("code", labelled_source(cell, item.parts), f"q{q}_{cell.grade_id}", grade=False,
                           solution=True, locked=False))
        for test in item.tests:
            if test.parts[-1].cell != cell.grade_id:  # a test follows the last cell it checks
                continue
            letters = ", ".join(f"({p.letter})" for p in test.parts)
            source = f"# checks {letters}\n" + vary_public_inputs(test.source, version.number)
            cells.append(_cell("code", source, f"q{q}_{test.cell}", grade=True, solution=False, locked=True,
                               points=test.points))
    return cells


def _open_cells(question: OpenQuestion, q: int) -> list:
    """The text above the question (if any), then the written cell, graded by hand, holding the rubric."""
    cells = []
    if question.context:
        cells.append(_text_cell(question.context, f"q{q}_context", question.media.attachments))
    body = render_text("open_question.md.j2", question=question_text(q, question.points, question.prompt),
                       rubric=question.rubric)
    cells.append(_cell("markdown", body, f"q{q}_{question.key}", grade=True, solution=True, locked=False,
                       points=question.points))
    return cells


def _choice_cells(shown: ChoiceShown, q: int) -> list:
    """The question, the answer cell (the letter is its solution) and the test that checks it."""
    variable = f"answer_q{q}"
    text = question_text(q, shown.question.points, choice_statement(shown))
    answer = render_text("choice_answer.py.j2", variable=variable, answer=shown.answer)
    check = render_text("choice_check.py.j2", variable=variable, answer=shown.answer)
    return [_text_cell(text, f"q{q}_question"),
            _cell("code", answer, f"q{q}_answer", grade=False, solution=True, locked=False),
            _cell("code", check, f"q{q}_test", grade=True, solution=False, locked=True,
                  points=shown.question.points)]


def _notebook_metadata(version: Version) -> dict:
    return {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
            "dlcourse": {"exam": {"name": version.name, "version": version.number, "versions": version.of,
                                  "seed": version.seed, "duration_minutes": version.duration,
                                  "total": version.total}}}
