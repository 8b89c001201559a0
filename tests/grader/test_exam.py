"""`dlcourse exam build` end to end: the paper and the key (their text, via pdftotext), the exam's release
(the project's leak checks), and one `slow` graded run: the reference gets every automatic point, a blank
notebook none.

The exam is built once for the module (about 35 s: two PDFs printed by Chromium) in a scratch copy of the
course; the graded run costs the reference check and two notebooks (about a minute).
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

from dlcourse import exam
from dlcourse.authoring.demo import filled_notebook
from dlcourse.authoring.kit import find_secrets, secret_lines
from dlcourse.core.notebook import grade_id

from helpers import ROOT, shared_folder
from tiny_course import GRADE_OPTIONS, dlcourse_env, python

NAME = "final"
pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils (pdftotext)")


def _dlcourse(course: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    process = subprocess.run([python(), "-m", "dlcourse", "--course", str(course), *args], cwd=course,
                             env=dlcourse_env(), capture_output=True, text=True, timeout=timeout)
    assert process.returncode == 0, f"dlcourse {' '.join(args)}:\n{process.stdout}\n{process.stderr}"
    return process


def _text(pdf: Path, *, layout: bool = True) -> str:
    args = ["pdftotext", "-layout", str(pdf), "-"] if layout else ["pdftotext", str(pdf), "-"]
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder, lock = shared_folder(tmp_path_factory, "exam-build")
    try:
        course = folder / "course"
        if not (course / "release" / NAME / "exam.ipynb").is_file():
            shutil.rmtree(course, ignore_errors=True)
            course.mkdir(parents=True)
            shutil.copy(ROOT / "nbgrader_config.py", course)
            shutil.copytree(ROOT / "source", course / "source")
            (folder / "build.txt").write_text(_dlcourse(course, "exam", "build", NAME, "--seed", "5").stdout)
            _dlcourse(course, "release", NAME)
        output = (folder / "build.txt").read_text()
    finally:
        if lock is not None:
            lock.close()
    version = exam.plan_versions(ROOT, NAME, seed=5)[0]
    folder = course / "exams" / NAME
    return {"course": course, "output": output, "version": version,
            "paper": _text(folder / "exam.pdf"), "key": _text(folder / "key.pdf")}


def test_build_writes_the_paper_the_key_and_a_master_notebook(built):
    course = built["course"]
    for path in (f"exams/{NAME}/exam.pdf", f"exams/{NAME}/key.pdf", f"source/{NAME}/exam.ipynb",
                 f"release/{NAME}/exam.ipynb"):
        assert (course / path).is_file(), path
        assert path in built["output"] or path.startswith("release/")


def test_the_paper_has_every_template_and_its_points_sum_to_the_covers_total(built):
    version, paper = built["version"], _flat(built["paper"])
    total = re.search(r"Total: (\d+(?:\.\d+)?) points", paper)
    assert total, "no total on the cover"
    assert float(total.group(1)) == version.total
    for item in version.items:
        for cell in item.cells:
            assert _flat(cell.source.splitlines()[0]) in paper, f"the template of {cell.grade_id} is not in the paper"
    # the points of every question, as printed, add up to the cover's total; a coding question's to its parts'
    questions = {int(n): float(p) for n, p in re.findall(
        r"Question (\d+)\.? (?:(?!Question \d).)*?\((\d+(?:\.\d+)?) points?\)", paper)}
    parts = re.findall(r"Question (\d+) \(([a-z])\) \[(\d+(?:\.\d+)?) points?\]", paper)  # the answer sheets
    assert sorted(questions) == list(range(1, len(version.numbering()) + 1))
    assert sum(questions.values()) == float(total.group(1))
    for n in {int(q) for q, _, _ in parts}:
        assert sum(float(p) for q, _, p in parts if int(q) == n) == questions[n], f"question {n}"
    assert len(parts) == sum(len(item.parts) for item in version.items)


def test_the_paper_holds_no_solution_or_hidden_test_line(built, tmp_path):
    (tmp_path / "exam.txt").write_text(built["paper"] + "\n" + _text(built["course"] / "exams" / NAME / "exam.pdf",
                                                                      layout=False))
    assert find_secrets(tmp_path, secret_lines(ROOT)) == []


def test_the_key_holds_every_solution_rubric_and_answer(built):
    version, key = built["version"], _flat(built["key"])
    packed = re.sub(r"\s", "", key)  # a long line wraps where the browser chooses
    for item in version.items:
        for part in item.parts:
            for region in part.regions:
                for line in region.lines:
                    if line.strip():
                        assert re.sub(r"\s", "", line) in packed, \
                            f"{item.key} ({part.letter}): {line.strip()!r} not in the key"
            assert _flat(part.partial)[:60] in key
    words = " ".join(re.findall(r"[A-Za-z]{3,}", built["key"]))  # the words, whatever markdown made of the rest
    for question in version.open_questions:
        plain = re.split(r"\$[^$]*\$", question.rubric)  # MathJax typesets formulas into glyphs of its own
        longest = max((re.findall(r"[A-Za-z]{3,}", piece) for piece in plain), key=len)
        assert " ".join(longest) in words, question.key
    numbering = version.numbering()
    for shown in version.choices:
        assert re.search(rf"Question {numbering[shown.question.key]} {shown.answer} {shown.question.key}", key)


def _course_secrets(course: Path, tmp_path: Path) -> dict[str, str]:
    """The course's secret lines, from its masters without the exam (whose own lines would count as shown)."""
    plain = tmp_path / "plain"
    shutil.copytree(course / "source", plain / "source", ignore=shutil.ignore_patterns(NAME))
    return secret_lines(plain)


def _release_leaks():
    spec = importlib.util.spec_from_file_location("masters_checks", ROOT / "tests" / "content" / "test_masters.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._leaks, module.RELEASE_MARKERS


def test_the_exams_release_passes_the_leak_checks(built, tmp_path):
    course = built["course"]
    master = nbformat.read(str(course / "source" / NAME / "exam.ipynb"), as_version=4)
    release = nbformat.read(str(course / "release" / NAME / "exam.ipynb"), as_version=4)
    assert [grade_id(c) for c in release.cells] == [grade_id(c) for c in master.cells]
    leaks, markers = _release_leaks()
    text = "\n".join(c.source for c in release.cells)
    assert not [m for m in markers if m in text]
    assert leaks(master, release) == []
    assert find_secrets(course / "release" / NAME, _course_secrets(course, tmp_path)) == []
    assert find_secrets(course / "release" / NAME, secret_lines(course)) == []
    assert "exam" not in "".join(str(c.metadata) for c in release.cells if "dlcourse" in c.metadata)


@pytest.mark.slow
def test_the_reference_gets_every_automatic_point_and_a_blank_notebook_none(built):
    course = built["course"]
    version = built["version"]
    master, release = course / "source" / NAME / "exam.ipynb", course / "release" / NAME / "exam.ipynb"
    for student, notebook in (("reference", filled_notebook(master, release)),
                              ("blank", nbformat.read(str(release), as_version=4))):
        folder = course / "submitted" / student / NAME
        folder.mkdir(parents=True)
        nbformat.write(notebook, str(folder / "exam.ipynb"))
    _dlcourse(course, "grade", NAME, "--workers", "2", *GRADE_OPTIONS)
    rows = (course / "reports" / NAME / "grades.csv").read_text().splitlines()[1:]
    grades = {row.split(",")[0]: row.split(",")[1:] for row in rows}
    automatic = version.section_points()["coding"] + version.section_points()["choice"]
    assert float(grades["reference"][0]) == float(grades["reference"][1]) == automatic
    assert float(grades["blank"][0]) == 0 and float(grades["blank"][1]) == automatic
    assert grades["reference"][2] == grades["blank"][2] == "ok"
