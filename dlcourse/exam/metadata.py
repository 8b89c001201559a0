"""What the masters say about the exam: the items, open questions and single-choice questions they offer.

An answer cell's ``metadata["dlcourse"]["exam"]`` splits a coding item into lettered parts and names the
tests that grade it; a written cell with ``{"open": true}`` is an open question; A7's reading questions are
the single-choice ones (see docs/exam.md). :func:`read_course` reads all of it from ``source/`` into the
dataclasses below and checks it (every solution region in one part, the parts' points equal to the tests'),
so the other modules of the exam (the plan, the paper, the notebook) never look at a master themselves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from ..core.notebook import grade_id, nbgrader_meta

SOLUTION_BEGIN = re.compile(r"^\s*### BEGIN SOLUTION\s*$")
SOLUTION_END = re.compile(r"^\s*### END SOLUTION\s*$")
HIDDEN_BEGIN = "### BEGIN HIDDEN TESTS"
_DEF = re.compile(r"^\s*def\s+(\w+)\s*\(")
_QUESTION_LABEL = re.compile(r"^\*\*(Written|Question)[^*]*\*\*\s*")
_OPTION = re.compile(r"^- \*\*([A-D])\.\*\*\s*(.*)$")
LETTERS = "abcdefghijklmnopqrstuvwxyz"
CHOICES = "ABCD"


class ExamError(ValueError):
    """The masters' exam metadata is inconsistent, or a name asked for is not there (the message says which)."""


@dataclass
class Region:
    """One solution region of an answer cell: its lines and the method it sits in."""
    method: str
    begin: int  # index of the BEGIN line in the cell's lines
    end: int    # index of the END line
    lines: list[str]


@dataclass
class Part:
    """A lettered sub-question: one or more solution regions of one cell."""
    cell: str
    methods: list[str]
    points: float
    task: str
    partial: str
    letter: str = ""
    regions: list[Region] = field(default_factory=list)

    @property
    def lines(self) -> int:
        return sum(len(r.lines) for r in self.regions)


@dataclass
class TestRef:
    cell: str
    points: float
    parts: list[Part]
    source: str


@dataclass
class ItemCell:
    grade_id: str
    source: str
    regions: list[Region]


@dataclass
class CodingItem:
    key: str
    title: str
    master: str  # source/aN/x.ipynb, relative to the course root
    statements: list[str]
    cells: list[ItemCell]
    parts: list[Part]
    tests: list[TestRef]
    media: Media = None

    def __post_init__(self):
        self.media = self.media or Media()

    @property
    def points(self) -> float:
        return sum(p.points for p in self.parts)


@dataclass
class Media:
    """What a statement shows besides its text: cell attachments, and files it links to (figures)."""
    attachments: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)  # link as written (relative) -> the file beside the master

    def add(self, cell, folder: Path) -> None:
        self.attachments.update(cell.get("attachments", {}) or {})
        for link in _LINKS.findall(cell.source):
            link = next(part for part in link if part)
            if re.match(r"^(?:[a-z]+:|/|#)", link):  # http:, data:, attachment:, absolute, anchors
                continue
            target = (folder / link).resolve()
            if target.is_file() and target.is_relative_to(folder.resolve()):
                self.files[link] = target

    def copy_to(self, folder: Path) -> None:
        for link, target in self.files.items():
            (folder / link).parent.mkdir(parents=True, exist_ok=True)
            (folder / link).write_bytes(target.read_bytes())


_LINKS = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)>?[^)]*\)|<img[^>]*\bsrc=[\"']([^\"']+)[\"']")


@dataclass
class OpenQuestion:
    key: str  # the written cell's grade_id
    master: str
    prompt: str
    rubric: str
    points: float
    context: str = ""
    media: Media = field(default_factory=Media)


@dataclass
class ChoiceQuestion:
    key: str  # the paper (reading_<key> in A7)
    master: str
    prompt: str
    options: list[str]  # in the master's order, A..D
    answer: int  # index into options
    points: float


def regions_of(source: str) -> list[Region]:
    """The solution regions of a cell, each with the method (``def``) it is in."""
    lines = source.splitlines()
    regions, method, begin = [], "", None
    for index, line in enumerate(lines):
        match = _DEF.match(line)
        if match and begin is None:
            method = match.group(1)
        if SOLUTION_BEGIN.match(line):
            begin = index
        elif SOLUTION_END.match(line) and begin is not None:
            regions.append(Region(method, begin, index, lines[begin + 1:index]))
            begin = None
    return regions


def _exam_meta(cell) -> dict | None:
    meta = cell.metadata.get("dlcourse", {})
    return meta.get("exam") if isinstance(meta, dict) else None


def _statement_cell(cells, index: int):
    """The nearest markdown text cell above ``index`` (not a graded one)."""
    for cell in reversed(cells[:index]):
        if cell.cell_type == "markdown" and not nbgrader_meta(cell).get("grade"):
            return cell
    return None


def _statement_before(cells, index: int) -> str | None:
    cell = _statement_cell(cells, index)
    return cell.source if cell is not None else None


def _strip_region(source: str) -> tuple[str, str]:
    """A written cell's prompt and its rubric (the solution region)."""
    prompt, rubric, inside = [], [], False
    for line in source.splitlines():
        if SOLUTION_BEGIN.match(line):
            inside = True
        elif SOLUTION_END.match(line):
            inside = False
        else:
            (rubric if inside else prompt).append(line)
    return "\n".join(prompt).strip(), "\n".join(rubric).strip()


def _masters(root: Path) -> list[tuple[Path, nbformat.NotebookNode]]:
    """The course's masters (not those of exams already built: their notebook says so)."""
    found = []
    for path in sorted((root / "source").glob("*/*.ipynb")):
        notebook = nbformat.read(str(path), as_version=4)
        if "exam" not in notebook.metadata.get("dlcourse", {}):
            found.append((path, notebook))
    return found


def read_course(root: Path) -> tuple[dict[str, CodingItem], dict[str, OpenQuestion], dict[str, ChoiceQuestion]]:
    """Every coding item, open question and single-choice question the masters offer an exam."""
    root = Path(root)
    items: dict[str, CodingItem] = {}
    open_questions: dict[str, OpenQuestion] = {}
    choices: dict[str, ChoiceQuestion] = {}
    for path, notebook in _masters(root):
        where = str(path.relative_to(root))
        cells = notebook.cells
        by_id = {grade_id(c): c for c in cells if grade_id(c)}
        for index, cell in enumerate(cells):
            meta = _exam_meta(cell)
            gid = grade_id(cell) or ""
            if meta and meta.get("open"):
                open_questions[gid] = _open_question(where, cells, index, path.parent)
            elif meta and "item" in meta:
                _add_item_cell(items, where, cells, index, cell, meta, by_id, path.parent)
            elif gid.startswith("reading_") and cell.cell_type == "code":
                question = _choice(where, cells, index, cell, by_id)
                if question:
                    choices[question.key] = question
    for item in items.values():
        _check_item(item)
    return items, open_questions, choices


def _open_question(where: str, cells, index: int, folder: Path) -> OpenQuestion:
    cell = cells[index]
    prompt, rubric = _strip_region(cell.source)
    prompt = _QUESTION_LABEL.sub("", prompt, count=1)
    before = cells[index - 1] if index else None
    context = ""  # the text right above the question, which it may refer to ("this objective")
    media = Media()
    if before is not None and before.cell_type == "markdown" and not nbgrader_meta(before).get("grade"):
        context = before.source.strip()
        media.add(before, folder)
    media.add(cell, folder)
    points = float(nbgrader_meta(cell)["points"])
    return OpenQuestion(grade_id(cell) or "", where, prompt, rubric, points, context, media)


def _add_item_cell(items, where, cells, index, cell, meta, by_id, folder: Path) -> None:
    gid = grade_id(cell)
    key = meta["item"]
    item = items.get(key)
    if item is None:
        item = items[key] = CodingItem(key, meta.get("title", key), where, [], [], [], [])
    elif item.master != where:
        raise ExamError(f"exam item {key!r} spans two masters ({item.master}, {where}); keep an item in one")
    if meta.get("title"):
        item.title = meta["title"]
    statement = _statement_cell(cells, index)
    if statement is not None and statement.source not in item.statements:
        item.statements.append(statement.source)
        item.media.add(statement, folder)
    regions = regions_of(cell.source)
    item.cells.append(ItemCell(gid, cell.source, regions))
    parts = []
    for entry in meta.get("parts", []):
        chosen = [r for r in regions if r.method in entry["methods"]]
        missing = set(entry["methods"]) - {r.method for r in chosen}
        if missing:
            raise ExamError(f"{where} {gid}: exam part names {sorted(missing)}, which has no solution region")
        parts.append(Part(gid, list(entry["methods"]), float(entry["points"]), entry.get("task", ""),
                          entry.get("partial", ""), regions=chosen))
    covered = {id(r) for p in parts for r in p.regions}
    loose = [r.method for r in regions if id(r) not in covered]
    if loose:
        raise ExamError(f"{where} {gid}: the solution region(s) in {loose} belong to no exam part "
                        f"(a region left out would show its solution to the student)")
    item.parts += parts
    for entry in meta.get("tests", []):
        test_cell = by_id.get(entry["cell"])
        if test_cell is None:
            raise ExamError(f"{where} {gid}: exam test {entry['cell']!r} is not a cell of the master")
        item.tests.append(TestRef(entry["cell"], float(entry["points"]), [parts[i] for i in entry["parts"]],
                                  test_cell.source))


def _check_item(item: CodingItem) -> None:
    for letter, part in zip(LETTERS, item.parts):
        part.letter = letter
    paper, tested = item.points, sum(t.points for t in item.tests)
    if abs(paper - tested) > 1e-9:
        raise ExamError(f"exam item {item.key!r} ({item.master}): its parts give {paper:g} points, its tests "
                        f"{tested:g}; they must agree (see scripts/exam_metadata.py)")
    untested = [p.letter for p in item.parts if not any(p in t.parts for t in item.tests)]
    if untested:
        raise ExamError(f"exam item {item.key!r}: part(s) {untested} are checked by no test")


def _choice(where, cells, index, cell, by_id) -> ChoiceQuestion | None:
    regions = regions_of(cell.source)
    answer = re.search(r'=\s*"([A-D])"', "\n".join(regions[0].lines)) if regions else None
    statement = _statement_before(cells, index)
    if not answer or not statement:
        return None
    prompt, options = [], []
    for line in statement.splitlines():
        match = _OPTION.match(line)
        if match:
            options.append(match.group(2).strip())
        elif options and line.startswith("  "):
            options[-1] += " " + line.strip()
        elif not options:
            prompt.append(line)
    if len(options) != len(CHOICES):
        return None
    test = by_id.get(f"test_{grade_id(cell)}")
    points = float(nbgrader_meta(test)["points"]) if test is not None else 1.0
    return ChoiceQuestion(grade_id(cell)[len("reading_"):], where, "\n".join(prompt).strip(), options,
                          CHOICES.index(answer.group(1)), points)
