"""The exam, built from the masters: a paper with its key, and a master notebook for a computer-based sitting.

``dlcourse exam build NAME`` reads what the masters say about the exam (``metadata["dlcourse"]["exam"]`` of
their answer and written cells, written by ``scripts/exam_metadata.py``; see docs/exam.md) and writes

- ``exams/NAME/exam.pdf``: the paper: a cover (rules, duration, points per section, total), the coding
  questions (the course's templates in a monospaced font with line numbers, each solution region blanked
  and labelled with its sub-question and points), the open questions, the single-choice questions, and
  answer sheets with a box per sub-question;
- ``exams/NAME/key.pdf``: every solution, the points per sub-question and what earns partial credit, the
  open questions' rubrics, the single-choice answers of this version;
- ``source/NAME/exam.ipynb``: the same exam as a master notebook (answer cells with the items' own
  tests, the written cells graded by hand, single-choice answers autograded), so ``dlcourse release NAME``
  and ``dlcourse grade NAME`` work on it as on any assignment.

With ``variants=K`` (K > 1) there are K versions: options shuffled, questions in another order within
each section, other random inputs in the public checks. Version k is ``exams/NAME/vk/{exam,key}.pdf`` and
the assignment ``NAME_vk`` (``source/NAME_vk/exam.ipynb``); ``exams/NAME/seating.csv`` seats the room
so that no two neighbours (side, front, back, and diagonal where K allows) sit the same version, and
``exams/NAME/versions.json`` says which assignment and which answers belong to which version.
Everything is drawn from ``seed``: the same command gives the same exam.
"""

from __future__ import annotations

import copy
import csv
import html
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from ..core.course import CourseLayout, no_such
from ..core.notebook import grade_id, nbgrader_meta

SOLUTION_BEGIN = re.compile(r"^\s*### BEGIN SOLUTION\s*$")
SOLUTION_END = re.compile(r"^\s*### END SOLUTION\s*$")
HIDDEN_BEGIN = "### BEGIN HIDDEN TESTS"
_DEF = re.compile(r"^\s*def\s+(\w+)\s*\(")
_QUESTION_LABEL = re.compile(r"^\*\*(Written|Question)[^*]*\*\*\s*")
_OPTION = re.compile(r"^- \*\*([A-D])\.\*\*\s*(.*)$")

#: The coding items of the default exam, in the order of the course.
DEFAULT_ITEMS = ("linear", "activations", "conv2d", "sgd_momentum", "fcnet_do", "rnn", "self_attention",
                 "autoencoder")
DEFAULT_DURATION = 120  # minutes
DEFAULT_ROOM = (10, 12)  # rows, columns of seats
LETTERS = "abcdefghijklmnopqrstuvwxyz"
CHOICES = "ABCD"
EXAM_SETUP = "import math\n\nimport torch\nfrom torch import nn\n\ntorch.manual_seed(0)\ntorch.set_num_threads(1)"


class ExamError(ValueError):
    """The masters' exam metadata is inconsistent, or a name asked for is not there (the message says which)."""


# --------------------------------------------------------------------------
# What the masters hold.


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
    media: "Media" = None

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


def _masters(root: Path) -> list[Path]:
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
                prompt, rubric = _strip_region(cell.source)
                prompt = _QUESTION_LABEL.sub("", prompt, count=1)
                before = cells[index - 1] if index else None
                context = ""  # the text right above the question, which it may refer to ("this objective")
                media = Media()
                if before is not None and before.cell_type == "markdown" and not nbgrader_meta(before).get("grade"):
                    context = before.source.strip()
                    media.add(before, path.parent)
                media.add(cell, path.parent)
                open_questions[gid] = OpenQuestion(gid, where, prompt, rubric, float(nbgrader_meta(cell)["points"]),
                                                   context, media)
            elif meta and "item" in meta:
                _add_item_cell(items, where, cells, index, cell, meta, by_id, path.parent)
            elif gid.startswith("reading_") and cell.cell_type == "code":
                question = _choice(where, cells, index, cell, by_id)
                if question:
                    choices[question.key] = question
    for item in items.values():
        _check_item(item)
    return items, open_questions, choices


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


# --------------------------------------------------------------------------
# One exam, one version.


@dataclass
class ChoiceShown:
    question: ChoiceQuestion
    order: list[int]  # order[k] = index into question.options shown as letter k

    @property
    def answer(self) -> str:
        return CHOICES[self.order.index(self.question.answer)]


@dataclass
class Version:
    name: str          # the exam's name
    number: int        # 1..K
    of: int            # K
    seed: int
    duration: int
    items: list[CodingItem]
    open_questions: list[OpenQuestion]
    choices: list[ChoiceShown]

    @property
    def assignment(self) -> str:
        return self.name if self.of == 1 else f"{self.name}_v{self.number}"

    @property
    def label(self) -> str:
        return "" if self.of == 1 else f"version {self.number} of {self.of}"

    def section_points(self) -> dict[str, float]:
        return {"coding": sum(i.points for i in self.items),
                "open": sum(q.points for q in self.open_questions),
                "choice": sum(c.question.points for c in self.choices)}

    @property
    def total(self) -> float:
        return sum(self.section_points().values())

    def numbering(self) -> dict[str, int]:
        """Question numbers through the whole paper: coding items, then open, then single-choice."""
        keys = [i.key for i in self.items] + [q.key for q in self.open_questions] + \
               [c.question.key for c in self.choices]
        return {key: n for n, key in enumerate(keys, start=1)}


def _pick(kind: str, wanted: list[str] | None, available: dict, default: list[str], where: str) -> list:
    names = list(wanted) if wanted else list(default)
    for name in names:
        if name not in available:
            raise ExamError(no_such(kind, name, sorted(available), where))
    return [available[n] for n in names]


def plan_versions(root: Path, name: str, *, items: list[str] | None = None, open_questions: list[str] | None = None,
                  papers: list[str] | None = None, seed: int = 0, variants: int = 1,
                  duration: int = DEFAULT_DURATION) -> list[Version]:
    """The K versions of an exam: the same questions; option order (every version), question order within
    each section (versions 2..K) drawn from ``seed``. No two versions show every question's options alike."""
    if variants < 1:
        raise ExamError("--variants must be at least 1")
    all_items, all_open, all_choices = read_course(root)
    chosen_items = _pick("exam item", items, all_items, [k for k in DEFAULT_ITEMS if k in all_items],
                         "the masters' exam metadata")
    chosen_open = _pick("open question", open_questions, all_open, list(all_open), "the masters' written cells")
    chosen_choices = _pick("paper", papers, all_choices, list(all_choices), "A7's reading questions")
    versions, seen = [], set()
    for number in range(1, variants + 1):
        rng = random.Random(f"dlcourse-exam:{name}:{seed}:{number}")
        for _ in range(1000):
            orders = [tuple(rng.sample(range(len(CHOICES)), len(CHOICES))) for _ in chosen_choices]
            if tuple(orders) not in seen or not chosen_choices:
                break
        seen.add(tuple(orders))
        shuffle = (lambda xs: rng.sample(xs, len(xs))) if number > 1 else list
        versions.append(Version(
            name, number, variants, seed, duration, shuffle(chosen_items), shuffle(chosen_open),
            [ChoiceShown(q, list(o)) for q, o in zip(shuffle(list(chosen_choices)) if number > 1 else chosen_choices,
                                                     orders)]))
    return versions


# --------------------------------------------------------------------------
# The master notebook of a computer-based sitting.


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


def _points(value: float) -> str:
    text = f"{value:g}"
    return f"{text} point" if value == 1 else f"{text} points"


def labelled_source(cell: ItemCell, parts: list[Part]) -> str:
    """The answer cell's source with ``# (b) 2 points: task`` above each solution region."""
    label = {id(r): p for p in parts if p.cell == cell.grade_id for r in p.regions}
    out = []
    for index, line in enumerate(cell.source.splitlines()):
        for region in cell.regions:
            if region.begin == index and id(region) in label:
                part = label[id(region)]
                indent = line[:len(line) - len(line.lstrip())]
                first = region is part.regions[0]
                text = f"({part.letter}) {_points(part.points)}" if first else f"({part.letter}) continued"
                out.append(f"{indent}# {text}")
        out.append(line)
    return "\n".join(out)


_SEED_CALL = re.compile(r"(manual_seed\(|seed=)(\d+)")


def vary_public_inputs(source: str, number: int) -> str:
    """A test cell with other seeds in its public part (version ``number``; 1 keeps the master's)."""
    if number <= 1 or HIDDEN_BEGIN not in source:
        return source
    public, hidden = source.split(HIDDEN_BEGIN, 1)
    public = _SEED_CALL.sub(lambda m: f"{m.group(1)}{int(m.group(2)) + 1000 * (number - 1)}", public)
    return public + HIDDEN_BEGIN + hidden


def choice_statement(shown: ChoiceShown) -> str:
    options = "\n".join(f"- **{CHOICES[k]}.** {shown.question.options[i]}" for k, i in enumerate(shown.order))
    return f"{shown.question.prompt}\n\n{options}"


def exam_notebook(version: Version):
    """The master notebook of one version (solutions, hidden tests and rubrics in it, as in any master)."""
    number = version.numbering()
    points = version.section_points()
    cells = [
        _cell("code", '# Your name, e.g.\n# NAMES = "Ada Lovelace"\nNAMES = ""',
              "names", grade=False, solution=False, locked=False),
        _cell("markdown", _rules_markdown(version), "exam_rules", grade=False, solution=False, locked=True),
        _cell("code", EXAM_SETUP, "exam_setup", grade=False, solution=False, locked=True),
        _cell("markdown", f"## Part A: coding ({_points(points['coding'])})", "part_a", grade=False,
              solution=False, locked=True),
    ]
    for item in version.items:
        q = number[item.key]
        parts = "\n".join(f"- **({p.letter})** [{_points(p.points)}] {p.task}" for p in item.parts)
        text = f"### Question {q}. {item.title} ({_points(item.points)})\n\n" + "\n\n".join(item.statements) \
            + f"\n\n{parts}"
        cells.append(_cell("markdown", text, f"q{q}_text", grade=False, solution=False, locked=True))
        if item.media.attachments:
            cells[-1]["attachments"] = copy.deepcopy(item.media.attachments)
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
    cells.append(_cell("markdown", f"## Part B: open questions ({_points(points['open'])})\n\nAnswer in the "
                                   "markdown cell below each question.", "part_b",
                       grade=False, solution=False, locked=True))
    for question in version.open_questions:
        q = number[question.key]
        if question.context:
            cells.append(_cell("markdown", question.context, f"q{q}_context", grade=False, solution=False,
                               locked=True))
            if question.media.attachments:
                cells[-1]["attachments"] = copy.deepcopy(question.media.attachments)
        body = (f"**Question {q}** ({_points(question.points)}). {question.prompt}\n\n"
                f"### BEGIN SOLUTION\n{question.rubric}\n### END SOLUTION")
        cells.append(_cell("markdown", body, f"q{q}_{question.key}", grade=True, solution=True, locked=False,
                           points=question.points))
    cells.append(_cell("markdown", f"## Part C: single choice ({_points(points['choice'])})\n\nSet each answer "
                                   'variable to `"A"`, `"B"`, `"C"` or `"D"` (with the quotes). The check below '
                                   "it tells you only whether the format is right.", "part_c",
                       grade=False, solution=False, locked=True))
    for shown in version.choices:
        q = number[shown.question.key]
        var = f"answer_q{q}"
        cells.append(_cell("markdown", f"**Question {q}** ({_points(shown.question.points)}). "
                           + choice_statement(shown), f"q{q}_question", grade=False, solution=False, locked=True))
        cells.append(_cell("code", f'# Set {var} to "A", "B", "C" or "D".\n### BEGIN SOLUTION\n'
                                   f'{var} = "{shown.answer}"\n### END SOLUTION', f"q{q}_answer",
                           grade=False, solution=True, locked=False))
        cells.append(_cell("code", (
            "from dlcourse.testing import student\n\n"
            f"given = student.{var}\n"
            f'assert isinstance(given, str) and given.strip().upper() in ("A", "B", "C", "D"), (\n'
            f"    '{var} should be one of the strings \"A\", \"B\", \"C\" or \"D\" (with quotes)')\n"
            f'print("{var} has the right format.")\n'
            f"### BEGIN HIDDEN TESTS\n"
            f'assert given.strip().upper() == "{shown.answer}", "{var} is not the best answer"\n'
            f"### END HIDDEN TESTS"), f"q{q}_test", grade=True, solution=False, locked=True,
            points=shown.question.points))
    notebook = nbformat.v4.new_notebook()
    notebook.cells = cells
    notebook.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python",
                                       "name": "python3"}
    notebook.metadata["language_info"] = {"name": "python"}
    notebook.metadata["dlcourse"] = {"exam": {
        "name": version.name, "version": version.number, "versions": version.of, "seed": version.seed,
        "duration_minutes": version.duration, "total": version.total}}
    return notebook


def _rules(version: Version) -> list[str]:
    return [
        f"Duration: {version.duration} minutes. Total: {_points(version.total)}.",
        "Closed book: no notes, no devices other than the exam computer, no communication.",
        "Part A: complete each template where it is marked (a), (b), ...; the points are beside each "
        "sub-question. Code that is not valid Python may still earn partial credit on paper.",
        "Part B: answer in a few sentences; the points say how much is expected.",
        "Part C: exactly one answer per question; a question with no or several answers scores 0.",
        "Write your name and student number on the cover and on every answer sheet.",
    ]


def _rules_markdown(version: Version) -> str:
    rules = "\n".join(f"- {r}" for r in _rules(version))
    label = f" ({version.label})" if version.label else ""
    return f"# Exam {version.name}{label}\n\n{rules}"


# --------------------------------------------------------------------------
# The paper and the key (HTML in markdown cells, printed by dlcourse.student.pdf).


PAPER_CSS = """<style>
.exam { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 11pt; }
.exam h1 { font-size: 20pt; margin: 0 0 8px 0; }
.exam h2 { font-size: 15pt; margin: 14px 0 6px 0; }
.cover-fields td { padding: 6px 10px 6px 0; font-size: 12pt; }
.cover-fields td.line { border-bottom: 1px solid #000; width: 110mm; }
.sections { border-collapse: collapse; margin: 10px 0; }
.sections td, .sections th { border: 1px solid #555; padding: 4px 12px; text-align: left; }
table.code { border-collapse: collapse; font-family: "DejaVu Sans Mono", monospace; font-size: 9.5pt;
             line-height: 1.45; width: 100%; break-inside: auto; }
table.code td { padding: 0 6px; vertical-align: top; border: none; }
table.code td.n { color: #777; text-align: right; width: 2.6em; user-select: none; border-right: 1px solid #bbb; }
table.code td.c { white-space: pre-wrap; }
table.code code { background: none !important; padding: 0; font-size: 9pt; }
table.code tr.blank td.c { border: 1.5px dashed #333; background: #f4f4f4; font-family: "DejaVu Sans", Arial,
             sans-serif; font-style: italic; }
table.code tr.solution td.c { background: #eaf4ea; }
.box { border: 1.5px solid #000; margin: 6px 0 12px 0; padding: 4px 8px; break-inside: avoid; }
.box .label { font-weight: bold; }
.partlist li { margin: 3px 0; }
.choice-grid { border-collapse: collapse; }
.choice-grid td, .choice-grid th { border: 1px solid #333; padding: 4px 14px; text-align: center; }
.sheet-head { border-bottom: 1px solid #000; margin-bottom: 8px; padding-bottom: 4px; }
.page-break { break-after: page; page-break-after: always; height: 0; }
.new-page { break-before: page; page-break-before: always; }
.key-note { color: #333; font-size: 10pt; }
</style>"""


def _e(text: str) -> str:
    return html.escape(text, quote=False)


def _task(text: str) -> str:
    """A task's text as HTML: escaped, `code` in a monospaced font."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", _e(text))


def _md(source: str, media: Media | None = None):
    cell = nbformat.v4.new_markdown_cell(source)
    if media is not None and media.attachments:
        cell["attachments"] = copy.deepcopy(media.attachments)
    return cell


def _html(source: str):
    # HTML blocks in markdown end at a blank line: keep the block in one piece.
    return nbformat.v4.new_markdown_cell("\n".join(line for line in source.splitlines() if line.strip()))


def code_table(cell: ItemCell, parts: list[Part], *, key: bool) -> str:
    """A listing with line numbers; each solution region either blanked and labelled (paper) or shown (key)."""
    owner = {id(r): p for p in parts for r in p.regions}
    lines = cell.source.splitlines()
    rows, number, index = [], 1, 0
    regions = {r.begin: r for r in cell.regions}
    while index < len(lines):
        region = regions.get(index)
        if region is None:
            rows.append(f'<tr><td class="n">{number}</td><td class="c"><code>{_e(lines[index]) or " "}'
                        f"</code></td></tr>")
            number += 1
            index += 1
            continue
        part = owner[id(region)]
        first = region is part.regions[0]
        title = f"({part.letter}) {_points(part.points)}" if first else f"({part.letter}) continued"
        if key:
            rows.append(f'<tr class="blank"><td class="n"></td><td class="c">{_e(title)}: solution</td></tr>')
            for line in region.lines:
                rows.append(f'<tr class="solution"><td class="n">{number}</td><td class="c"><code>{_e(line)}'
                            f"</code></td></tr>")
                number += 1
        else:
            rows.append(f'<tr class="blank"><td class="n">{number}</td><td class="c">{_e(title)}: write this part '
                        f"in box {_e(part.letter)} of this question's answer sheet</td></tr>")
            number += 1
        index = region.end + 1
    return '<table class="code">' + "".join(rows) + "</table>"


def _cover(version: Version, *, key: bool) -> str:
    points = version.section_points()
    label = f" &mdash; {_e(version.label)}" if version.label else ""
    title = f"Exam {_e(version.name)}{label}" + (" &mdash; KEY (for examiners only)" if key else "")
    rows = "".join(f"<tr><td>{_e(name)}</td><td>{_e(_points(value))}</td></tr>" for name, value in
                   [("Part A: coding", points["coding"]), ("Part B: open questions", points["open"]),
                    ("Part C: single choice", points["choice"])])
    fields = "" if key else (
        '<table class="cover-fields"><tr><td>Name</td><td class="line">&nbsp;</td></tr>'
        '<tr><td>Student number</td><td class="line">&nbsp;</td></tr>'
        '<tr><td>Seat</td><td class="line">&nbsp;</td></tr></table>')
    rules = "".join(f"<li>{_e(r)}</li>" for r in _rules(version))
    return (f'<div class="exam"><h1>{title}</h1>{fields}<p><b>Duration: {version.duration} minutes.</b> '
            f'<b>Total: {_e(_points(version.total))}.</b></p>'
            f'<table class="sections"><tr><th>section</th><th>points</th></tr>{rows}'
            f'<tr><th>Total</th><th>{_e(_points(version.total))}</th></tr></table>'
            f"<h2>Rules</h2><ul>{rules}</ul></div>")


def paper_cells(version: Version, *, key: bool) -> list:
    """The cells of exam.pdf (``key=False``) or key.pdf (``key=True``)."""
    number = version.numbering()
    cells = [_html(PAPER_CSS + _cover(version, key=key))]
    points = version.section_points()
    part_a = f'<h2>Part A: coding ({_e(_points(points["coding"]))})</h2>'
    for index, item in enumerate(version.items):
        q = number[item.key]
        cells.append(_html(f'<div class="exam new-page">{part_a if index == 0 else ""}<h2>Question {q}. '
                           f'{_e(item.title)} ({_e(_points(item.points))})</h2></div>'))
        cells += [_md(s, item.media) for s in item.statements]
        for cell in item.cells:
            cells.append(_html(code_table(cell, item.parts, key=key)))
        entries = []
        for part in item.parts:
            entry = f"<li><b>({part.letter})</b> [{_e(_points(part.points))}] {_task(part.task)}"
            if key:
                tests = ", ".join(t.cell for t in item.tests if part in t.parts)
                entry += (f'<br><span class="key-note">Partial credit: {_e(part.partial)} '
                          f"Checked on the computer by: {_e(tests)}.</span>")
            entries.append(entry + "</li>")
        cells.append(_html(f'<div class="exam"><ul class="partlist">{"".join(entries)}</ul></div>'))
        if key:
            tests = "".join(f"<tr><td>{_e(t.cell)}</td><td>{_e(_points(t.points))}</td>"
                            f"<td>{', '.join('(' + p.letter + ')' for p in t.parts)}</td></tr>" for t in item.tests)
            cells.append(_html('<div class="exam"><table class="sections"><tr><th>autograded test</th>'
                               f"<th>points</th><th>checks</th></tr>{tests}</table></div>"))
    cells.append(_html(f'<div class="exam new-page"><h2>Part B: open questions ({_e(_points(points["open"]))})</h2></div>'))
    for question in version.open_questions:
        q = number[question.key]
        if question.context:
            cells.append(_md(question.context, question.media))
        cells.append(_md(f"**Question {q}** ({_points(question.points)}). {question.prompt}"))
        if key:
            cells.append(_md(f"**Rubric ({_points(question.points)}):**\n\n{question.rubric}"))
    cells.append(_html(f'<div class="exam new-page"><h2>Part C: single choice ({_e(_points(points["choice"]))})</h2>'
                       "<p>Exactly one answer per question; mark it on the answer sheet.</p></div>"))
    for shown in version.choices:
        q = number[shown.question.key]
        cells.append(_md(f"**Question {q}** ({_points(shown.question.points)}). " + choice_statement(shown)))
        if key:
            cells.append(_md(f"**Answer: {shown.answer}** ({_points(shown.question.points)})"))
    cells += _answer_sheets(version) if not key else [_html(_key_summary(version))]
    return cells


def _sheet_head(version: Version, title: str) -> str:
    label = f" ({_e(version.label)})" if version.label else ""
    return (f'<div class="exam sheet-head new-page"><b>Answer sheet: {_e(title)}</b> &mdash; exam {_e(version.name)}{label}'
            "<br>Name: ______________________ Student number: ____________ Seat: ______</div>")


def _answer_sheets(version: Version) -> list:
    number = version.numbering()
    cells = []
    for item in version.items:
        q = number[item.key]
        boxes = []
        for part in item.parts:
            height = max(4.0, 1.7 * part.lines + 2) * 1.45
            boxes.append(f'<div class="box" style="min-height:{height:.1f}em"><span class="label">Question {q} '
                         f"({part.letter})</span> [{_e(_points(part.points))}] {_task(part.task)}</div>")
        cells.append(_html(_sheet_head(version, f"question {q}") + "".join(boxes)))
    boxes = [f'<div class="box" style="min-height:{6 + 4 * q_.points:.0f}em"><span class="label">Question '
             f"{number[q_.key]}</span> [{_e(_points(q_.points))}]</div>" for q_ in version.open_questions]
    cells.append(_html(_sheet_head(version, "open questions") + "".join(boxes)))
    rows = "".join(f"<tr><td>Question {number[c.question.key]}</td>" + "<td>&#9633;</td>" * len(CHOICES) + "</tr>"
                   for c in version.choices)
    header = "".join(f"<th>{c}</th>" for c in CHOICES)
    cells.append(_html(_sheet_head(version, "single choice")
                       + f'<table class="choice-grid"><tr><th></th>{header}</tr>{rows}</table>'))
    return cells


def _key_summary(version: Version) -> str:
    number = version.numbering()
    rows = "".join(f"<tr><td>Question {number[c.question.key]}</td><td>{c.answer}</td>"
                   f"<td>{_e(c.question.key)}</td></tr>" for c in version.choices)
    return (f'<div class="exam new-page"><h2>Single-choice answers at a glance</h2><table class="sections">'
            f"<tr><th>question</th><th>answer</th><th>paper</th></tr>{rows}</table></div>")


# --------------------------------------------------------------------------
# Seating.


def seat_versions(rows: int, columns: int, versions: int) -> list[list[int]]:
    """The version (1..K) of each seat of a rows x columns room: neighbours to the side, in front and behind
    always differ (K >= 2), and diagonal ones too where K allows it (K = 2 and K = 3 cannot)."""
    if versions == 1:
        return [[1] * columns for _ in range(rows)]
    offsets = [(0, 1), (1, 0), (1, 1), (1, -1)]
    step = next((m for m in range(1, versions) if all((dr + dc * m) % versions for dr, dc in offsets)), 1)
    return [[(r + c * step) % versions + 1 for c in range(columns)] for r in range(rows)]


def write_seating(path: Path, rows: int, columns: int, versions: list[Version], students: list[str]) -> Path:
    plan = seat_versions(rows, columns, len(versions))
    seats = [(r, c) for r in range(rows) for c in range(columns)]
    if students and len(students) > len(seats):
        raise ExamError(f"{len(students)} students but only {len(seats)} seats ({rows} x {columns}); "
                        "give a larger --room")
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["seat", "row", "column", "version", "assignment", "student_id"])
        for n, (r, c) in enumerate(seats):
            version = versions[plan[r][c] - 1]
            writer.writerow([f"{chr(ord('A') + r) if r < 26 else r + 1}{c + 1}", r + 1, c + 1, version.number,
                             version.assignment, students[n] if n < len(students) else ""])
    return path


def read_seating(path: Path) -> dict[str, str]:
    """student_id -> the assignment (version) they sat, from a seating.csv."""
    with Path(path).open(newline="") as handle:
        return {row["student_id"]: row["assignment"] for row in csv.DictReader(handle) if row["student_id"]}


def exam_results(layout: CourseLayout, name: str) -> Path:
    """``exams/NAME/grades.csv``: every graded student of every version, with the version the seating gave.

    Reads each version's ``reports/<assignment>/grades.csv`` (``dlcourse grade``) and ``seating.csv``; a
    student graded in a version other than the seat's, or seated and graded in none, is flagged in the
    ``check`` column, for the examiner to look at before the grades go out.
    """
    out = layout.root / "exams" / name
    versions_file = out / "versions.json"
    if not versions_file.is_file():
        raise ExamError(f"there is no exam {name!r} built here ({versions_file} is missing): "
                        f"run `dlcourse exam build {name}` first")
    versions = json.loads(versions_file.read_text())["versions"]
    seating = read_seating(out / "seating.csv") if (out / "seating.csv").is_file() else {}
    rows, graded = [], set()
    for version in versions:
        report = layout.reports / version["assignment"] / "grades.csv"
        if not report.is_file():
            continue
        with report.open(newline="") as handle:
            for row in csv.DictReader(handle):
                student = row["student_id"]
                graded.add(student)
                seated = seating.get(student, "")
                check = "ok" if not seating or seated == version["assignment"] else (
                    f"seated for {seated}" if seated else "not in the seating list")
                rows.append([student, version["version"], version["assignment"], row["score"], row["max_score"],
                             row["status"], check])
    for student, assignment in sorted(seating.items()):
        if student not in graded:
            rows.append([student, "", assignment, "", "", "not graded", "no graded submission"])
    path = out / "grades.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student_id", "version", "assignment", "score", "max_score", "status", "check"])
        writer.writerows(sorted(rows, key=lambda r: r[0]))
    return path


# --------------------------------------------------------------------------
# Building it all.


@dataclass
class BuiltExam:
    versions: list[Version]
    files: list[Path]

    def summary(self, root: Path) -> str:
        version = self.versions[0]
        points = version.section_points()
        lines = [f"exam {version.name}: {len(version.items)} coding questions ({_points(points['coding'])}), "
                 f"{len(version.open_questions)} open ({_points(points['open'])}), {len(version.choices)} single "
                 f"choice ({_points(points['choice'])}); total {_points(version.total)}; {len(self.versions)} "
                 f"version(s)"]
        lines += [f"wrote {p.relative_to(root) if p.is_relative_to(root) else p}" for p in self.files]
        return "\n".join(lines)


def build_exam(layout: CourseLayout, name: str, *, items: list[str] | None = None,
               open_questions: list[str] | None = None, papers: list[str] | None = None, seed: int = 0,
               variants: int = 1, duration: int = DEFAULT_DURATION, pdf: bool = True,
               room: tuple[int, int] = DEFAULT_ROOM, students: list[str] | None = None) -> BuiltExam:
    """Writes the exam's PDFs, its master notebook(s) and, with versions, the seating list."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", name):
        raise ExamError(f"exam name {name!r}: use letters, digits, '_' and '-'")
    taken = [a for a in layout.assignments() if a == name or a.startswith(name + "_v")]
    ours = [a for a in taken if _is_exam(layout, a)]
    if set(taken) - set(ours):
        raise ExamError(f"source/{sorted(set(taken) - set(ours))[0]} is an assignment, not an exam; "
                        "choose another name")
    versions = plan_versions(layout.root, name, items=items, open_questions=open_questions, papers=papers,
                             seed=seed, variants=variants, duration=duration)
    out = layout.root / "exams" / name
    out.mkdir(parents=True, exist_ok=True)
    stale = [out / "exam.pdf", out / "key.pdf"] if variants > 1 else [out / "seating.csv", *out.glob("v*/*.pdf")]
    for path in stale:  # what an earlier build with another number of versions wrote
        path.unlink(missing_ok=True)
    for stale in ours:  # rebuilding with fewer versions must not leave an old one gradable
        for path in (layout.source / stale).glob("*.ipynb"):
            path.unlink()
    files = []
    for version in versions:
        folder = layout.source / version.assignment
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "exam.ipynb"
        nbformat.write(exam_notebook(version), str(path))
        files.append(path)
        for media in [i.media for i in version.items] + [q.media for q in version.open_questions]:
            media.copy_to(folder)  # the figures the statements link to, for the release and the PDFs
        if pdf:
            target = out if version.of == 1 else out / f"v{version.number}"
            files += write_pdfs(version, target, files_dir=folder)
    files.append(_write_versions(out / "versions.json", versions))
    if variants > 1:
        files.append(write_seating(out / "seating.csv", *room, versions, students or []))
    return BuiltExam(versions, files)


def _is_exam(layout: CourseLayout, assignment: str) -> bool:
    for path in layout.masters(assignment):
        if "exam" in nbformat.read(str(path), as_version=4).metadata.get("dlcourse", {}):
            return True
    return False


def exam_assignments(layout: CourseLayout) -> list[str]:
    """The assignments of ``source/`` that are exams built here (their notebook's metadata says so)."""
    return [name for name in layout.assignments() if _is_exam(layout, name)]


def _write_versions(path: Path, versions: list[Version]) -> Path:
    data = {"name": versions[0].name, "seed": versions[0].seed, "versions": [
        {"version": v.number, "assignment": v.assignment, "total": v.total,
         "items": [i.key for i in v.items], "open": [q.key for q in v.open_questions],
         "choices": [{"paper": c.question.key, "order": [CHOICES[i] for i in c.order], "answer": c.answer}
                     for c in v.choices]} for v in versions]}
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path


def write_pdfs(version: Version, folder: Path, files_dir: Path | None = None) -> list[Path]:
    from ..student.pdf import notebook_to_pdf

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for key, filename in ((False, "exam.pdf"), (True, "key.pdf")):
        notebook = nbformat.v4.new_notebook()
        notebook.cells = paper_cells(version, key=key)
        footer = f"exam {version.name}" + (f", {version.label}" if version.label else "") + (" - KEY" if key else "")
        written.append(notebook_to_pdf(notebook, folder / filename, footer=footer, files_dir=files_dir).path)
    return written

