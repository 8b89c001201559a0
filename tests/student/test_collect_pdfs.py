"""A hand-in made where no PDF engine exists still arrives, and ``dlcourse collect`` adds its PDF.

The student's side runs ``dlcourse handin`` with no browser and no LaTeX (exit 3, the zip holds the
notebook only); the instructor's side collects that zip with the course's engine (this machine's Chromium)
and gets the notebook and a PDF made from it, marked "PDF made by the grader" in collect.csv.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from dlcourse import cli
from dlcourse.core.course import CourseLayout
from dlcourse.lms import pdfs
from dlcourse.student import cli as student_cli, handin, pdf
from test_handin import NAMES, make_course

ASSIGNMENT = "a0_logistic"
ROSTER = "student_id,name,email,lms_id,github\ns01,Ada Lovelace,ada@uni.example,1101,ada-l\n" \
         "s02,Alan Turing,alan@uni.example,1102,aturing\n"


def _no_engine(monkeypatch):
    monkeypatch.setattr(pdf, "find_chromium", lambda: None)
    monkeypatch.setattr(pdf, "latex_available", lambda: False)


def _course_with_a_handin_without_pdf(tmp_path, monkeypatch) -> CourseLayout:
    """A course whose student handed in on a machine with no PDF engine; its roster and master."""
    course = make_course(tmp_path, run=False)
    shutil.copytree(course / "release" / ASSIGNMENT, course / "source" / ASSIGNMENT)  # collect needs a master
    (course / "roster.csv").write_text(ROSTER)
    with monkeypatch.context() as student_machine:
        _no_engine(student_machine)
        assert student_cli.main(["handin", ASSIGNMENT, "--no-tests", "--course-root", str(course)]) \
            == handin.EXIT_NO_PDF
    return CourseLayout(course)


def _collect(layout: CourseLayout, *options: str) -> int:
    """``dlcourse collect`` of the course's hand-in zips, as the instructor runs it."""
    return cli.main(["--course", str(layout.root), "collect", ASSIGNMENT, str(layout.root / "handin"),
                     "--source", "handin", *options])


def _warnings(layout: CourseLayout) -> str:
    path = layout.reports / ASSIGNMENT / "WARNINGS.txt"
    return path.read_text() if path.exists() else ""


def _rows(layout: CourseLayout) -> list[dict]:
    with open(layout.reports / ASSIGNMENT / "collect.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_a_handin_without_any_pdf_engine_arrives_and_collect_adds_its_pdf(tmp_path, monkeypatch):
    layout = _course_with_a_handin_without_pdf(tmp_path, monkeypatch)
    (bundle,) = (layout.root / "handin").glob("*.zip")
    with zipfile.ZipFile(bundle) as handed_in:
        assert not any(name.endswith(".pdf") for name in handed_in.namelist())

    assert _collect(layout) == 0

    folder = layout.submission_dir("s01", ASSIGNMENT)
    made = folder / f"{ASSIGNMENT}.pdf"
    assert (folder / f"{ASSIGNMENT}.ipynb").is_file() and made.is_file()
    assert made.read_bytes().startswith(b"%PDF")
    text = subprocess.run(["pdftotext", "-layout", str(made), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "Ada Lovelace, Alan Turing" in text and pdfs.MADE_BY_GRADER in text
    (row,) = _rows(layout)
    assert row["action"] == "collected"
    assert f"{pdfs.MADE_BY_GRADER} ({ASSIGNMENT}.pdf)" in row["reason"]
    assert _warnings(layout) == ""


def test_collect_without_a_pdf_engine_collects_the_notebook_and_warns_what_to_install(tmp_path, monkeypatch):
    layout = _course_with_a_handin_without_pdf(tmp_path, monkeypatch)
    _no_engine(monkeypatch)
    assert _collect(layout) == 0
    folder = layout.submission_dir("s01", ASSIGNMENT)
    assert (folder / f"{ASSIGNMENT}.ipynb").is_file() and not (folder / f"{ASSIGNMENT}.pdf").exists()
    (row,) = _rows(layout)
    assert row["action"] == "collected" and pdfs.MADE_BY_GRADER not in row["reason"]
    assert "without a PDF stay without one" in _warnings(layout) and "collect again" in _warnings(layout)


def test_collect_with_no_pdfs_collects_the_notebook_and_prints_nothing(tmp_path, monkeypatch):
    layout = _course_with_a_handin_without_pdf(tmp_path, monkeypatch)
    monkeypatch.setattr(pdfs, "make_pdf", lambda *args: pytest.fail("--no-pdfs printed a PDF"))
    assert _collect(layout, "--no-pdfs") == 0
    assert (layout.submission_dir("s01", ASSIGNMENT) / f"{ASSIGNMENT}.ipynb").is_file()
    assert pdfs.MADE_BY_GRADER not in _rows(layout)[0]["reason"]


def test_add_missing_pdfs_leaves_a_handed_in_pdf_alone(tmp_path, monkeypatch):
    """Only what is missing is made: a student's own PDF is the one graded."""
    layout = CourseLayout(tmp_path)
    folder = layout.submission_dir("s01", ASSIGNMENT)
    folder.mkdir(parents=True)
    (folder / "one.ipynb").write_text("{}")
    (folder / "one.pdf").write_bytes(b"%PDF the student's")
    (folder / "two.ipynb").write_text("{}")
    printed = []
    monkeypatch.setattr(pdfs, "make_pdf", lambda notebook, assignment, names: printed.append(notebook.name)
                        or pdf.PdfResult(notebook.with_suffix(".pdf"), 0.1, "stand-in", "no math"))
    rows = [{"action": "collected", "representative": "s01", "names": NAMES, "reason": "late"},
            {"action": "superseded", "representative": "s01", "names": NAMES, "reason": ""}]
    assert pdfs.add_missing_pdfs(layout, ASSIGNMENT, rows) == []
    assert printed == ["two.ipynb"]
    assert rows[0]["reason"] == f"late; {pdfs.MADE_BY_GRADER} (two.pdf)"
    assert rows[1]["reason"] == ""
    assert (folder / "one.pdf").read_bytes() == b"%PDF the student's"


def test_a_notebook_that_cannot_be_printed_is_a_warning_not_a_lost_handin(tmp_path, monkeypatch):
    layout = CourseLayout(tmp_path)
    folder = layout.submission_dir("s01", ASSIGNMENT)
    folder.mkdir(parents=True)
    (folder / "broken.ipynb").write_text("not json")

    def fail(*args, **kwargs):
        raise ValueError("not a notebook")

    monkeypatch.setattr(pdf, "notebook_to_pdf", fail)
    rows = [{"action": "kept", "representative": "s01", "names": "", "reason": ""}]
    (warning,) = pdfs.add_missing_pdfs(layout, ASSIGNMENT, rows)
    assert "broken.ipynb: no PDF could be made (ValueError: not a notebook)" in warning
    assert (folder / "broken.ipynb").is_file() and rows[0]["reason"] == ""
