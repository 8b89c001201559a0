"""Feedback a student can act on (dlcourse.insight.feedback), on the tiny course.

Two students are graded once (module fixture); a grader's points and comment
are put into the gradebook as formgrader would; `dlcourse feedback tiny --pdf`
writes HTML, PDF and a zip each. The expected rows come from the stored
results, not from constants.
"""

from __future__ import annotations

import html
import random
import re
import subprocess
import zipfile
from pathlib import Path

import nbformat
import pytest

from dlcourse.insight.feedback import MATHJAX_FOLDER, kernel_cell_names, name_cells
from tiny_course import ASSIGNMENT, GOOD_CUBE, GOOD_SQUARE, HIDDEN_MARKER, WRONG_CUBE, template_course

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "test-output" / "feedback"
RAISING_SQUARE = "def helper(x):\n    y = x\n    return y.nosuch()\n\n\ndef square(x):\n    return helper(x)"
COMMENT = "Good idea; say why a square of a real number is never below zero."


def page_text(path: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text()))


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    from nbgrader.api import Gradebook

    course = template_course(tmp_path_factory).copy(tmp_path_factory.mktemp("feedback") / "course")
    course.submit("alice", {"square": RAISING_SQUARE, "cube": GOOD_CUBE})
    course.submit("bob", {"square": GOOD_SQUARE, "cube": WRONG_CUBE})
    run = course.grade("--workers", "1")
    assert run.returncode == 0, run.stderr
    with Gradebook(f"sqlite:///{course.root / 'gradebook.db'}") as gradebook:  # what formgrader does
        gradebook.find_grade("why", "tiny", ASSIGNMENT, "alice").manual_score = 0.5
        gradebook.find_comment("why", "tiny", ASSIGNMENT, "alice").manual_comment = COMMENT
        gradebook.db.commit()
    run = course.dlcourse("feedback", ASSIGNMENT, "--pdf")
    assert run.returncode == 0, run.stderr
    return course


def feedback_page(course, student: str) -> Path:
    return course.root / "feedback" / student / ASSIGNMENT / "tiny.html"


def summary_rows(page: Path) -> dict[str, list[str]]:
    """grade_id -> the cells of its row in the summary table (as text)."""
    table = re.search(r'<table class="dlcourse-feedback-summary">(.*?)</table>', page.read_text(), re.S).group(1)
    rows = {}
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)[1:]:
        cells = [html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td>(.*?)</td>", row, re.S)]
        grade_id = re.search(r"\((\w+)\)$", cells[0]) or re.search(r"^(\w+)$", cells[0])
        rows[grade_id.group(1)] = cells
    return rows


@pytest.mark.slow
@pytest.mark.parametrize("student", ("alice", "bob"))
def test_the_summary_table_has_every_item_with_its_points_and_result(course, student):
    result = course.result(student)
    rows = summary_rows(feedback_page(course, student))
    cells = result["notebooks"][0]["cells"]
    assert set(rows) == {c["grade_id"] for c in cells}
    for cell in cells:
        task, points, verdict = rows[cell["grade_id"]][:3]
        if cell["kind"] == "test":
            assert points == f"{cell['score']:g} / {cell['max_score']:g}"
            assert verdict == ("passed" if cell["score"] == cell["max_score"] else "failed")
            if cell["message"]:
                # the message as stored, but "in your cell [n]" (the kernel's In [n]) names the page's cell number
                first = re.sub(r"in your cell \[\d+\]", "in your cell @", cell["message"].splitlines()[0])
                shown = re.sub(r"in your cell \d+", "in your cell @", rows[cell["grade_id"]][3])
                assert first in shown
        else:
            assert points.endswith(f"/ {cell['max_score']:g}")
    # the task is named as the notebook states it (the markdown above the answer)
    assert rows["test_square"][0].startswith("Write $x^2$, elementwise.")


@pytest.mark.slow
def test_a_traceback_names_the_students_cell_and_line_not_a_kernel_file(course):
    graded = course.graded_notebook("alice")
    code = [c for c in graded.cells if c.cell_type == "code"]
    number = next(i for i, c in enumerate(code, 1) if c.metadata.get("nbgrader", {}).get("grade_id") == "square")
    text = page_text(feedback_page(course, "alice"))
    assert f"cell {number}, line 3, in helper\n    return y.nosuch()" in text
    assert f"cell {number}, line 7, in square\n    return helper(x)" in text
    assert "ipykernel_" not in text
    assert f"In&nbsp;[{number}]" in feedback_page(course, "alice").read_text() or f"[{number}]:" in text


@pytest.mark.slow
def test_the_graders_points_and_comment_from_formgrader_are_shown(course):
    rows = summary_rows(feedback_page(course, "alice"))
    assert rows["why"][1] == "0.5 / 1" and rows["why"][2] == "graded by hand"
    assert COMMENT in rows["why"][3]
    assert COMMENT in page_text(feedback_page(course, "alice"))
    assert summary_rows(feedback_page(course, "bob"))["why"][2] == "not graded yet"
    assert COMMENT not in feedback_page(course, "bob").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("student", ("alice", "bob"))
def test_the_pdf_has_each_item_and_its_points(course, student):
    pdf = course.root / "feedback" / student / ASSIGNMENT / "tiny.pdf"
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    flat = re.sub(r"\s+", " ", text)
    for cell in course.result(student)["notebooks"][0]["cells"]:
        assert cell["grade_id"] in flat
        if cell["kind"] == "test":
            assert f"{cell['score']:g} / {cell['max_score']:g}" in flat
    assert "$x^2$" not in flat, "the math in the PDF is raw TeX"
    assert HIDDEN_MARKER not in text


@pytest.mark.slow
@pytest.mark.parametrize("student", ("alice", "bob"))
def test_the_zip_holds_that_students_feedback_and_its_mathjax_and_no_hidden_test(course, student):
    path = course.root / "reports" / ASSIGNMENT / "feedback" / f"{student}.zip"
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assert {f"{student}/tiny.html", f"{student}/tiny.pdf", f"{student}/{MATHJAX_FOLDER}/MathJax.js"} <= set(names)
        assert all(name.startswith(f"{student}/") for name in names)
        for name in names:
            if name.endswith((".html", ".pdf")):
                assert HIDDEN_MARKER.encode() not in archive.read(name)


@pytest.mark.slow
def test_no_feedback_file_holds_a_hidden_test_or_loads_anything_from_the_internet(course):
    for page in (course.root / "feedback").rglob("*.html"):
        source = page.read_text()
        assert HIDDEN_MARKER not in source
        assert "cdn" not in " ".join(re.findall(r'<script[^>]*src="([^"]*)"', source)).lower()
        assert f'src="{MATHJAX_FOLDER}/MathJax.js' in source


@pytest.mark.slow
@pytest.mark.browser
def test_the_feedback_page_opened_offline_in_chromium_shows_typeset_math_and_the_table(course):
    from playwright.sync_api import sync_playwright

    from dlcourse.student import pdf

    chromium = pdf.find_chromium()
    assert chromium, "no local Chromium: apt-get install chromium (scripts/setup.sh does)"
    OUT.mkdir(parents=True, exist_ok=True)
    page_path = feedback_page(course, "alice")
    requested = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=list(pdf.CHROMIUM_ARGS))
        try:
            page = browser.new_page()

            def answer(route):  # offline: only files on this machine load
                requested.append(route.request.url)
                route.continue_() if route.request.url.startswith(("file://", "data:")) else route.abort()

            page.route("**/*", answer)
            page.goto(page_path.as_uri(), wait_until="load")
            page.wait_for_function("window.MathJax && MathJax.Hub && MathJax.Hub.queue.pending === 0 && "
                                   "document.querySelectorAll('.mjx-chtml').length > 0", timeout=60_000)
            typeset = page.locator("table.dlcourse-feedback-summary .mjx-chtml")
            assert typeset.count() >= 1, "the task's formula in the table is not typeset"
            assert page.locator(".MathJax_Error, .mjx-merror").count() == 0
            assert "$x^2$" not in page.locator("table.dlcourse-feedback-summary").inner_text()
            rows = page.locator("table.dlcourse-feedback-summary tbody tr")
            assert rows.count() == len(course.result("alice")["notebooks"][0]["cells"])
            assert "failed" in rows.first.inner_text()
            page.screenshot(path=str(OUT / "alice-tiny.png"), full_page=True)
        finally:
            browser.close()
    assert (OUT / "alice-tiny.png").stat().st_size > 0
    assert not [url for url in requested if url.startswith("http") and "mathjax" in url.lower()]


# --------------------------------------------------------------------------
# Naming cells in tracebacks: no kernel, random notebooks.


def random_notebook(rng: random.Random):
    cells = []
    for index in range(rng.randint(2, 8)):
        lines = [f"value_{index}_{k} = {rng.randint(0, 99)}" for k in range(rng.randint(1, 6))]
        cell = nbformat.v4.new_code_cell("\n".join(lines))
        if rng.random() < 0.4:
            cell.metadata["nbgrader"] = {"grade": True, "grade_id": f"test_{index}", "locked": True, "points": 1,
                                         "solution": False}
            cell.source += f"\n# {HIDDEN_MARKER} line"
        cells.append(cell)
    return nbformat.v4.new_notebook(cells=cells)


def kernel_frame(source: str, line: int, shown: str) -> str:
    from ipykernel.compiler import get_tmp_hash_seed, murmur2_x86

    return f'  File "/tmp/ipykernel_4242/{murmur2_x86(source, get_tmp_hash_seed())}.py", line {line}, in f\n    {shown}\n'


@pytest.mark.parametrize("seed", range(25))
def test_frames_of_student_cells_are_named_and_frames_of_test_cells_never_are(seed):
    rng = random.Random(seed)
    notebook = random_notebook(rng)
    names = kernel_cell_names(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    frames, expected, untouched = [], [], []
    for _ in range(rng.randint(1, 5)):
        number = rng.randrange(len(code)) + 1
        cell = code[number - 1]
        lines = cell.source.splitlines()
        line = rng.randint(1, len(lines))
        # what the kernel printed as the line is the kernel's word; the line shown must come from the notebook
        frame = kernel_frame(cell.source, line, "FAKE LINE FROM THE KERNEL")
        frames.append(frame)
        if "nbgrader" in cell.metadata:
            untouched.append(frame)
        else:
            expected.append(f"cell {number}, line {line}, in f\n    {lines[line - 1].strip()}\n")
    text = name_cells("Traceback:\n" + "".join(frames) + "ValueError: no", names)
    for part in expected:
        assert part in text
    for frame in untouched:
        assert frame in text  # a test cell's frame is left as the kernel wrote it
    assert text.count("FAKE LINE FROM THE KERNEL") == len(untouched)
    assert HIDDEN_MARKER not in text  # only test cells hold it, and no test cell is ever shown


def test_a_frame_of_a_file_no_cell_of_this_notebook_ran_is_left_alone():
    notebook = random_notebook(random.Random(1))
    frame = kernel_frame("some other student's code", 1, "x = 1")
    assert name_cells(frame, kernel_cell_names(notebook)) == frame
