"""dlcourse.exam without a kernel or a browser: the masters' exam metadata, versions, seating, the notebook."""

from __future__ import annotations

import copy
import csv
import importlib.util
import random
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from dlcourse import exam
from dlcourse.core.course import CourseLayout
from dlcourse.core.notebook import grade_id, is_manual_cell, is_test_cell, nbgrader_meta

from helpers import ROOT


def _script():
    spec = importlib.util.spec_from_file_location("exam_metadata", ROOT / "scripts" / "exam_metadata.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def course():
    return exam.read_course(ROOT)


def test_the_masters_hold_the_exam_metadata_the_script_writes():
    assert _script().apply(ROOT, check=True) == [], "run scripts/exam_metadata.py (a master's exam metadata differs)"


def test_the_default_exam_has_the_eight_items_and_38_points_whose_tests_give_the_same_points(course):
    items, _, _ = course
    assert set(exam.DEFAULT_ITEMS) <= set(items)
    assert sum(items[key].points for key in exam.DEFAULT_ITEMS) == 38
    for item in items.values():
        assert [p.letter for p in item.parts] == list(exam.LETTERS[:len(item.parts)])
        assert sum(t.points for t in item.tests) == item.points, item.key
        assert all(any(p in t.parts for t in item.tests) for p in item.parts), item.key


def test_every_solution_region_of_an_item_cell_is_in_exactly_one_part(course):
    items, _, _ = course
    for item in items.values():
        for cell in item.cells:
            owners = [sum(r in p.regions for p in item.parts) for r in cell.regions]
            assert owners and all(n == 1 for n in owners), (item.key, cell.grade_id)


@pytest.mark.parametrize("seed", range(4))
def test_a_master_whose_part_drops_a_region_is_refused(tmp_path, seed):
    """A region left out of every part would show its solution in the exam: the build must refuse."""
    rng = random.Random(seed)
    course = tmp_path / "course"
    shutil.copytree(ROOT / "source", course / "source")
    masters = sorted(p for p in (course / "source").glob("*/*.ipynb")
                     if any("item" in c.metadata.get("dlcourse", {}).get("exam", {})
                            for c in nbformat.read(str(p), as_version=4).cells))
    path = rng.choice(masters)
    notebook = nbformat.read(str(path), as_version=4)
    cell = rng.choice([c for c in notebook.cells if "item" in c.metadata.get("dlcourse", {}).get("exam", {})])
    parts = cell.metadata["dlcourse"]["exam"]["parts"]
    dropped = parts.pop(rng.randrange(len(parts)))
    cell.metadata["dlcourse"]["exam"]["tests"] = []
    nbformat.write(notebook, str(path))
    with pytest.raises(exam.ExamError, match="belong to no exam part") as error:
        exam.read_course(course)
    assert dropped["methods"][0] in str(error.value)


@pytest.mark.parametrize("seed", range(5))
def test_versions_differ_in_option_order_and_agree_in_content(seed):
    rng = random.Random(seed)
    k = rng.randint(2, 4)
    versions = exam.plan_versions(ROOT, "final", seed=rng.randint(0, 10**6), variants=k)
    first = versions[0]
    assert [v.number for v in versions] == list(range(1, k + 1))
    for other in versions[1:]:
        assert sorted(i.key for i in other.items) == sorted(i.key for i in first.items)
        assert sorted(q.key for q in other.open_questions) == sorted(q.key for q in first.open_questions)
        assert sorted(c.question.key for c in other.choices) == sorted(c.question.key for c in first.choices)
        assert other.total == first.total and other.section_points() == first.section_points()
    orders = [{c.question.key: tuple(c.order) for c in v.choices} for v in versions]
    for a in range(k):
        for b in range(a + 1, k):
            assert orders[a] != orders[b], f"versions {a + 1} and {b + 1} show every option in the same order"
    for version in versions:  # the answer letter names the same option text in every version
        for shown in version.choices:
            option = shown.question.options[shown.order[exam.CHOICES.index(shown.answer)]]
            assert option == shown.question.options[shown.question.answer]
            assert sorted(shown.order) == list(range(len(exam.CHOICES)))


def test_the_same_seed_gives_the_same_exam_and_another_seed_another_option_order():
    one, again = (exam.plan_versions(ROOT, "final", seed=11, variants=2) for _ in range(2))
    other = exam.plan_versions(ROOT, "final", seed=12, variants=2)
    assert [[c.order for c in v.choices] for v in one] == [[c.order for c in v.choices] for v in again]
    assert [[c.order for c in v.choices] for v in one] != [[c.order for c in v.choices] for v in other]


@pytest.mark.parametrize("seed", range(12))
def test_no_two_neighbours_sit_the_same_version(seed):
    rng = random.Random(seed)
    rows, columns, k = rng.randint(1, 12), rng.randint(1, 15), rng.randint(2, 7)
    plan = exam.seat_versions(rows, columns, k)
    neighbours = [(0, 1), (1, 0)] + ([(1, 1), (1, -1)] if k >= 4 else [])
    for r in range(rows):
        for c in range(columns):
            assert 1 <= plan[r][c] <= k
            for dr, dc in neighbours:
                if 0 <= r + dr < rows and 0 <= c + dc < columns:
                    assert plan[r][c] != plan[r + dr][c + dc], ((r, c), (dr, dc), k)
    if rows * columns >= k * k:
        assert {v for row in plan for v in row} == set(range(1, k + 1))


def test_seating_csv_names_each_students_version_and_assignment(tmp_path):
    versions = exam.plan_versions(ROOT, "final", variants=3)
    students = [f"s{n:03d}" for n in range(20)]
    path = exam.write_seating(tmp_path / "seating.csv", 4, 6, versions, students)
    sat = exam.read_seating(path)
    assert sorted(sat) == students
    assert set(sat.values()) == {"final_v1", "final_v2", "final_v3"}
    with pytest.raises(exam.ExamError, match="seats"):
        exam.write_seating(tmp_path / "small.csv", 2, 2, versions, students)


@pytest.mark.parametrize("number", [1, 2, 3])
def test_the_exam_notebook_gives_every_point_once_and_copies_the_items_own_tests(course, number):
    items, _, _ = course
    version = exam.plan_versions(ROOT, "final", seed=3, variants=3)[number - 1]
    notebook = exam.exam_notebook(version)
    graded = [c for c in notebook.cells if nbgrader_meta(c).get("grade")]
    assert sum(nbgrader_meta(c)["points"] for c in graded) == version.total
    points = version.section_points()
    assert sum(nbgrader_meta(c)["points"] for c in graded if is_manual_cell(c)) == points["open"]
    assert sum(nbgrader_meta(c)["points"] for c in graded if is_test_cell(c)) == points["coding"] + points["choice"]
    ids = [grade_id(c) for c in notebook.cells]
    assert len(ids) == len(set(ids)), "grade_ids must be unique"
    tests = {grade_id(c): c.source for c in notebook.cells if is_test_cell(c)}
    numbering = version.numbering()
    for item in version.items:
        for test in item.tests:
            source = tests[f"q{numbering[item.key]}_{test.cell}"]
            hidden = test.source.split(exam.HIDDEN_BEGIN, 1)[1]
            assert source.endswith(hidden), "the hidden tests are the master's own"
            if number == 1:
                assert source.split("\n", 1)[1] == test.source
    assert notebook.metadata["dlcourse"]["exam"]["version"] == number


@pytest.mark.parametrize("seed", range(6))
def test_other_versions_draw_other_public_inputs_and_keep_the_hidden_tests(course, seed):
    items, _, _ = course
    rng = random.Random(seed)
    tests = [t for item in items.values() for t in item.tests if exam.HIDDEN_BEGIN in t.source]
    test = rng.choice(tests)
    number = rng.randint(2, 9)
    varied = exam.vary_public_inputs(test.source, number)
    assert exam.vary_public_inputs(test.source, 1) == test.source
    assert varied.split(exam.HIDDEN_BEGIN, 1)[1] == test.source.split(exam.HIDDEN_BEGIN, 1)[1]
    public = test.source.split(exam.HIDDEN_BEGIN, 1)[0]
    assert (varied != test.source) == bool(exam.notebook.SEED_CALL.search(public))


def test_unknown_names_and_an_assignments_name_are_refused_with_the_names_there_are(tmp_path):
    with pytest.raises(exam.ExamError, match=r"there is no exam item 'linaer'.*did you mean 'linear'"):
        exam.plan_versions(ROOT, "final", items=["linaer"])
    with pytest.raises(exam.ExamError, match=r"there is no paper 'rechtt'.*did you mean 'recht'"):
        exam.plan_versions(ROOT, "final", papers=["rechtt"])
    course = tmp_path / "course"
    shutil.copytree(ROOT / "source", course / "source")
    with pytest.raises(exam.ExamError, match="is an assignment, not an exam"):
        exam.build_exam(CourseLayout(course), "a3_layers", pdf=False)


def test_building_again_with_fewer_versions_leaves_no_old_version_to_grade(tmp_path):
    course = tmp_path / "course"
    shutil.copytree(ROOT / "source", course / "source")
    layout = CourseLayout(course)
    exam.build_exam(layout, "mid", variants=3, pdf=False, items=["linear"], papers=["recht"])
    assert {"mid_v1", "mid_v2", "mid_v3"} <= set(layout.assignments())
    built = exam.build_exam(layout, "mid", variants=2, pdf=False, items=["linear"], papers=["recht"])
    assert "mid_v3" not in layout.assignments()
    assert [v.assignment for v in built.versions] == ["mid_v1", "mid_v2"]
    assert (course / "exams" / "mid" / "seating.csv").is_file()
    # an exam's own masters are not offered as items of the next exam
    assert exam.read_course(course)[0].keys() == exam.read_course(ROOT)[0].keys()


def test_a_build_that_is_refused_writes_and_removes_nothing(tmp_path):
    """plan_build checks everything (here: a room too small for the students) before write_build touches a file."""
    course = tmp_path / "course"
    shutil.copytree(ROOT / "source", course / "source")
    layout = CourseLayout(course)
    exam.build_exam(layout, "mid", variants=3, pdf=False, items=["linear"], papers=["recht"])
    before = {p: p.read_bytes() for p in course.rglob("*") if p.is_file()}
    plan = exam.plan_build(layout, "mid", exam.ExamOptions(variants=2, pdf=False, items=["linear"]))
    assert {p.relative_to(course).as_posix() for p in plan.stale} == {"source/mid_v1/exam.ipynb",
                                                                      "source/mid_v2/exam.ipynb",
                                                                      "source/mid_v3/exam.ipynb"}
    with pytest.raises(exam.ExamError, match="seats"):
        exam.build_exam(layout, "mid", variants=2, pdf=False, items=["linear"], papers=["recht"], room=(2, 2),
                        students=[f"s{n}" for n in range(5)])
    assert {p: p.read_bytes() for p in course.rglob("*") if p.is_file()} == before


def test_the_student_kit_leaves_an_exam_out(tmp_path):
    from dlcourse.authoring.kit import _write_release

    course = tmp_path / "course"
    shutil.copytree(ROOT / "source", course / "source")
    shutil.copytree(ROOT / "release", course / "release")
    layout = CourseLayout(course)
    exam.build_exam(layout, "final", pdf=False, items=["linear"], papers=["recht"])
    (course / "release" / "final").mkdir()  # as if released for the sitting
    shutil.copy(course / "source" / "final" / "exam.ipynb", course / "release" / "final")
    assert exam.exam_assignments(layout) == ["final"]
    kit = tmp_path / "kit"
    kit.mkdir()
    written = _write_release(layout, kit, regenerate=False)
    assert "final" not in written and not (kit / "final").exists()
    assert sorted(written) == sorted(a for a in layout.assignments() if a != "final")


def test_the_exam_command_builds_refuses_a_wrong_name_with_exit_1_and_has_an_example(tmp_path, capsys):
    from dlcourse import cli

    course = tmp_path / "course"
    shutil.copytree(ROOT / "source", course / "source")
    shutil.copy(ROOT / "nbgrader_config.py", course)
    assert cli.main(["--course", str(course), "exam", "build", "quiz", "--items", "linear,rnn", "--papers",
                     "recht", "--no-pdf"]) == 0
    total = exam.plan_versions(ROOT, "quiz", items=["linear", "rnn"], papers=["recht"])[0].total
    assert f"total {total:g} points" in capsys.readouterr().out
    assert (course / "source" / "quiz" / "exam.ipynb").is_file()
    assert cli.main(["--course", str(course), "exam", "build", "quiz", "--items", "convd2"]) == 1
    assert "there is no exam item 'convd2'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        cli.main(["exam", "build", "quiz", "--help"])
    assert usage.value.code == 0
    assert re.search(r"^example:\n  dlcourse exam build ", capsys.readouterr().out, re.M)


@pytest.mark.parametrize("seed", range(3))
def test_exam_results_give_every_students_version_and_flag_one_graded_in_another_than_the_seat(tmp_path, seed):
    rng = random.Random(seed)
    course = tmp_path / "course"
    shutil.copytree(ROOT / "source", course / "source")
    layout = CourseLayout(course)
    students = [f"s{n:02d}" for n in range(rng.randint(4, 12))]
    built = exam.build_exam(layout, "mid", variants=rng.randint(2, 3), pdf=False, items=["linear"],
                            papers=["recht"], room=(3, 5), students=students)
    seated = exam.read_seating(course / "exams" / "mid" / "seating.csv")
    wrong, absent = rng.sample(students, 2)
    other = next(v.assignment for v in built.versions if v.assignment != seated[wrong])
    scores = {}
    for version in built.versions:
        folder = course / "reports" / version.assignment
        folder.mkdir(parents=True)
        lines = ["student_id,score,max_score,status"]
        for student in students:
            if student != absent and (seated[student] == version.assignment) != (student == wrong) \
                    and (student != wrong or version.assignment == other):
                scores[student] = rng.randint(0, 6)
                lines.append(f"{student},{scores[student]},6,ok")
        (folder / "grades.csv").write_text("\n".join(lines) + "\n")
    path = exam.exam_results(layout, "mid")
    rows = {r["student_id"]: r for r in csv.DictReader(path.open())}
    assert sorted(rows) == sorted(students)
    for student in students:
        if student == absent:
            assert rows[student]["check"] == "no graded submission"
        elif student == wrong:
            assert rows[student]["assignment"] == other and rows[student]["check"] == f"seated for {seated[wrong]}"
        else:
            assert rows[student]["assignment"] == seated[student] and rows[student]["check"] == "ok"
            assert float(rows[student]["score"]) == scores[student]


def test_a_statements_figures_and_attachments_come_with_the_exam(tmp_path):
    course = tmp_path / "course"
    shutil.copytree(ROOT / "source", course / "source")
    master = course / "source" / "a3_layers" / "a3_layers.ipynb"
    notebook = nbformat.read(str(master), as_version=4)
    text = next(c for c in notebook.cells if grade_id(c) == "a3_layers_text_2")
    png = bytes(range(256)) * 3
    (master.parent / "figures").mkdir(exist_ok=True)
    (master.parent / "figures" / "exam-test-linear.png").write_bytes(png)
    text.source += '\n\n![the layer](figures/exam-test-linear.png)\n\n![inline](attachment:dot.png)'
    text["attachments"] = {"dot.png": {"image/png": "iVBORw0KGgo="}}
    nbformat.write(notebook, str(master))
    built = exam.build_exam(CourseLayout(course), "quiz", pdf=False, items=["linear"], papers=["recht"])
    folder = course / "source" / "quiz"
    assert (folder / "figures" / "exam-test-linear.png").read_bytes() == png
    cells = nbformat.read(str(folder / "exam.ipynb"), as_version=4).cells
    question = next(c for c in cells if grade_id(c) == "q1_text")
    assert "figures/exam-test-linear.png" in question.source and question["attachments"] == text["attachments"]
    paper = exam.paper_cells(built.versions[0], key=False)
    assert any(c.get("attachments") == text["attachments"] for c in paper)


# --------------------------------------------------------------------------
# The texts: Jinja2 templates in dlcourse/exam/templates/.

_HOSTILE = ['<script>alert("x")</script>', "</td></tr></table><img src=x onerror=alert(1)>", "a & b < c > d",
            "'quoted' \"twice\"", "<!-- open comment", "&amp; already &lt;escaped&gt;"]
#: Every tag the paper's and the key's HTML may hold: a user's string that added one would be markup.
_PAPER_TAGS = {"style", "div", "h1", "h2", "p", "b", "br", "table", "tr", "td", "th", "ul", "li", "span", "code"}


class _Page(HTMLParser):
    """The tags of an HTML text and its text as a browser shows it (entities decoded)."""

    def __init__(self, source: str):
        super().__init__(convert_charrefs=True)
        self.tags, self.texts = set(), []
        self.feed(source)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)

    def handle_data(self, data):
        self.texts.append(data)

    def handle_comment(self, data):
        self.tags.add("<!--")


def _html_cells(cells) -> list[str]:
    return [c.source for c in cells if c.cell_type == "markdown" and c.source.startswith("<")]


@pytest.mark.parametrize("seed", range(4))
def test_the_paper_and_the_key_escape_html_in_every_name_title_task_test_and_code_line(seed):
    """Strings from the masters and the command line reach the HTML only as text: no tag, no comment."""
    rng = random.Random(seed)
    version = copy.deepcopy(rng.choice(exam.plan_versions(ROOT, "final", seed=seed, variants=2)))
    counter = iter(range(10**6))
    both, key_only = [], []

    def hostile(where: list) -> str:
        text = f"{rng.choice(_HOSTILE)} {next(counter)}"
        where.append(text)
        return text

    version.name = hostile(both)
    for item in version.items:
        item.title = hostile(both)
        for part in item.parts:
            part.task, part.partial = hostile(both), hostile(key_only)
        for test in item.tests:
            test.cell = hostile(key_only)
        cell = rng.choice(item.cells)
        cell.source += "\n" + hostile(both)  # a line of the template, outside every solution region
    for shown in version.choices:
        shown.question.key = hostile(key_only)
    for key, expected in ((False, both), (True, both + key_only)):
        pages = [_Page(source) for source in _html_cells(exam.paper_cells(version, key=key))]
        tags = set().union(*(page.tags for page in pages))
        assert tags <= _PAPER_TAGS, f"markup from a user's string in the {'key' if key else 'paper'}: " \
                                    f"{sorted(tags - _PAPER_TAGS)}"
        text = "\n".join(t for page in pages for t in page.texts)
        missing = [s for s in expected if s not in text]
        assert not missing, f"not shown as text in the {'key' if key else 'paper'}: {missing}"


_JINJA_SYNTAX = re.compile(r"\{\{-? *[\w.|() ]+-?\}\}|\{%-? *(if|elif|else|endif|for|endfor|include|set)\b|\{#")


def test_every_exam_template_is_rendered_and_no_template_syntax_is_left_in_the_texts(monkeypatch):
    from dlcourse.core import templates
    from dlcourse.exam import plan

    folder = Path(exam.__file__).parent / "templates"
    rendered = []
    monkeypatch.setattr(plan, "render", lambda package, name, **context: (
        rendered.append(name), templates.render(package, name, **context))[1])
    version = exam.plan_versions(ROOT, "final", seed=1, variants=2)[1]
    texts = [c.source for key in (False, True) for c in exam.paper_cells(version, key=key)]
    texts += [c.source for c in exam.exam_notebook(version).cells]
    included = {name for path in folder.iterdir() for name in re.findall(r'\{% include "([^"]+)" %\}',
                                                                           path.read_text())}
    assert set(rendered) | included == {path.name for path in folder.iterdir()}
    masters = "\n".join(path.read_text() for path in (ROOT / "source").glob("*/*.ipynb"))
    left = [m.group(0) for text in texts for m in _JINJA_SYNTAX.finditer(text) if m.group(0) not in masters]
    assert not left, f"template syntax left in the exam's texts: {left[:5]}"
