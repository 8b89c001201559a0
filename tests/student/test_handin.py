"""``dlcourse handin``: names check, public tests, PDF, one zip; the notebook stays as it was."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from dlcourse import authoring
from dlcourse.student import cli as student_cli, handin, pdf
from dlcourse.authoring import answer, code, md

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "test-output" / "handin"
NAMES = "Ada Lovelace, Alan Turing"


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


@pytest.fixture(autouse=True)
def _kernel_env(monkeypatch):
    """Kernels started by the hand-in (validation) find dlcourse and the venv's tools."""
    for key, value in _env().items():
        monkeypatch.setenv(key, value)


def _master_cells(sigmoid_body: str = "return 1 / (1 + math.exp(-z))"):
    return [
        handin.names_cell(),
        md(r"""
            # A0: the logistic function

            $\sigma(z) = \frac{1}{1 + e^{-z}}$ squashes any number into $(0, 1)$.
            """, grade_id="intro"),
        code("import math\nimport matplotlib.pyplot as plt", grade_id="setup"),
        answer("sigmoid", f"""
            def sigmoid(z):
                ### BEGIN SOLUTION
                {sigmoid_body}
                ### END SOLUTION"""),
        authoring.tests("test_sigmoid", 1, """
            assert abs(sigmoid(0) - 0.5) < 1e-12, "sigmoid(0) should be 0.5"
            assert abs(sigmoid(1) - 0.7310585786300049) < 1e-9, "sigmoid(1) should be 0.7311"
            """),
        code("""
            xs = [i / 10 for i in range(-60, 61)]
            plt.plot(xs, [sigmoid(x) for x in xs])
            plt.show()"""),
    ]


def make_course(tmp_path: Path, names: str | None = NAMES, solution: str | None = None,
                run: bool = True) -> Path:
    """A course with release/a0_logistic/a0_logistic.ipynb as a student saved it."""
    course = tmp_path / "course"
    folder = course / "release" / "a0_logistic"
    folder.mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    cells = _master_cells()
    # what the student wrote in the answer cell
    cells[3].source = solution or "def sigmoid(z):\n    return 1 / (1 + math.exp(-z))"
    if names is not None:
        cells[0].source = cells[0].source.replace('NAMES = ""', f"NAMES = {names!r}")
    path = authoring.write_notebook(folder / "a0_logistic.ipynb", cells)
    if run:
        notebook = nbformat.read(str(path), as_version=4)
        NotebookClient(notebook, timeout=120, allow_errors=True,
                       resources={"metadata": {"path": str(folder)}}).execute()
        nbformat.write(notebook, str(path))
    return course


def _fingerprint(path: Path) -> tuple[str, float]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime


# --------------------------------------------------------------------------
# The names cell.


def test_names_cell_is_an_unlocked_code_cell_authors_put_first():
    cell = handin.names_cell()
    assert cell.cell_type == "code"
    assert cell.metadata["nbgrader"]["locked"] is False
    assert cell.metadata["nbgrader"]["solution"] is False and cell.metadata["nbgrader"]["grade"] is False
    notebook = nbformat.v4.new_notebook(cells=[cell])
    assert handin.read_names(notebook) == ""
    nbformat.validate(notebook)


@pytest.mark.parametrize("text, names", [
    ("Ada Lovelace", ["Ada Lovelace"]),
    ("Ada Lovelace, Alan Turing", ["Ada Lovelace", "Alan Turing"]),
    ("  Ada   Lovelace ;Alan Turing ", ["Ada Lovelace", "Alan Turing"]),
    ("Ada Lovelace and Alan Turing", ["Ada Lovelace", "Alan Turing"]),
    ("Zoë Ørsted & Łukasz Żak", ["Zoë Ørsted", "Łukasz Żak"]),
])
def test_parse_names(text, names):
    assert handin.parse_names(text) == names


@pytest.mark.parametrize("text, message", [
    ("", "No names"),
    ("A B, C D, E F", "at most 2"),
    ("YOUR NAME", "not a name"),
    ("Ada Lovelace, ada lovelace", "twice"),
])
def test_bad_names_are_refused(text, message):
    with pytest.raises(handin.HandinError, match=message):
        handin.parse_names(text)


def test_read_names_accepts_a_list_and_ignores_the_example_comment():
    cell = handin.names_cell()
    cell.source = cell.source.replace('NAMES = ""', 'NAMES = ["Ada Lovelace", "Alan Turing"]')
    assert handin.read_names(nbformat.v4.new_notebook(cells=[cell])) == NAMES
    assert handin.read_names(nbformat.v4.new_notebook(cells=[md("# no names cell")])) is None


def test_group_slug_is_file_name_safe():
    assert handin.group_slug(["Zoë Ørsted", "Jean-Luc O'Neil"]) == "Zoe-rsted_Jean-Luc-O-Neil"


def test_names_cell_survives_generate_assignment(tmp_path):
    course = tmp_path / "course"
    authoring.write_notebook(course / "source" / "a0_logistic" / "a0_logistic.ipynb", _master_cells())
    shutil.copy(ROOT / "nbgrader_config.py", course)
    subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", "a0_logistic", "--force"],
                   cwd=course, env=_env(), capture_output=True, check=True, timeout=300)
    release = nbformat.read(str(course / "release" / "a0_logistic" / "a0_logistic.ipynb"), as_version=4)
    assert release.cells[0].source == handin.NAMES_SOURCE
    assert handin.read_names(release) == ""


# --------------------------------------------------------------------------
# Refusals.


def test_empty_names_cell_is_refused_with_a_clear_message(tmp_path, capsys):
    course = make_course(tmp_path, names=None, run=False)
    notebook = course / "release" / "a0_logistic" / "a0_logistic.ipynb"
    before = _fingerprint(notebook)
    with pytest.raises(handin.HandinError) as error:
        handin.handin("a0_logistic", None, course_root=course)
    message = str(error.value)
    assert "names cell of a0_logistic.ipynb is empty" in message
    assert 'NAMES = "Ada Lovelace, Alan Turing"' in message and "save" in message

    # the same from the command line: exit code 1, message on stderr, no zip
    code_ = student_cli.main(["handin", "a0_logistic", "--names", NAMES, "--course-root", str(course)])
    assert code_ == handin.EXIT_REFUSED
    assert "Hand-in refused: The names cell of a0_logistic.ipynb is empty" in capsys.readouterr().err
    assert not (course / "handin").exists() or not any((course / "handin").iterdir())
    assert _fingerprint(notebook) == before


def test_names_that_differ_from_the_cell_are_refused(tmp_path):
    course = make_course(tmp_path, run=False)
    with pytest.raises(handin.HandinError, match="differ"):
        handin.handin("a0_logistic", "Grace Hopper", course_root=course, run_tests=False, make_pdf=False)


def test_group_of_three_is_refused(tmp_path):
    course = make_course(tmp_path, names="A B, C D, E F", run=False)
    with pytest.raises(handin.HandinError, match="at most 2"):
        handin.handin("a0_logistic", None, course_root=course, run_tests=False, make_pdf=False)


def test_unknown_assignment_lists_the_known_ones(tmp_path):
    course = make_course(tmp_path, run=False)
    with pytest.raises(handin.HandinError, match="a0_logistic"):
        handin.handin("a9_nothing", NAMES, course_root=course)


# --------------------------------------------------------------------------
# A hand-in.


def test_handin_writes_one_zip_with_notebook_and_pdf(tmp_path):
    course = make_course(tmp_path)
    notebook = course / "release" / "a0_logistic" / "a0_logistic.ipynb"
    before = _fingerprint(notebook)
    original = notebook.read_bytes()

    result = handin.handin_report("a0_logistic", "alan turing, ada lovelace", course_root=course)
    out = handin.format_report(result)

    assert _fingerprint(notebook) == before, "the student's notebook was changed"
    assert result.zip_path == course / "handin" / "a0_logistic_Ada-Lovelace_Alan-Turing.zip"
    with zipfile.ZipFile(result.zip_path) as bundle:
        names = sorted(bundle.namelist())
        assert names == ["a0_logistic_Ada-Lovelace_Alan-Turing/HANDIN.txt",
                         "a0_logistic_Ada-Lovelace_Alan-Turing/a0_logistic.ipynb",
                         "a0_logistic_Ada-Lovelace_Alan-Turing/a0_logistic.pdf"]
        assert bundle.read("a0_logistic_Ada-Lovelace_Alan-Turing/a0_logistic.ipynb") == original
        pdf_bytes = bundle.read("a0_logistic_Ada-Lovelace_Alan-Turing/a0_logistic.pdf")
    assert result.complete and [t.ok for t in result.tests] == [True]
    assert "all 1 test cells pass" in out
    # the export time of each notebook is reported
    assert re.search(r"a0_logistic\.pdf: \d+\.\d s", out), out
    assert result.pdfs[0].seconds > 0
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "a0_logistic.pdf").write_bytes(pdf_bytes)
    page1 = subprocess.run(["pdftotext", "-f", "1", "-l", "1", str(OUT / "a0_logistic.pdf"), "-"],
                           capture_output=True, text=True, check=True).stdout
    assert "Ada Lovelace, Alan Turing" in page1 and "a0_logistic" in page1
    assert "all 1 test cells pass" in page1
    with open(OUT / "export-times.txt", "a") as f:
        f.write(f"a0_logistic.ipynb: tests {result.tests[0].seconds:.1f} s, pdf {result.pdfs[0].seconds:.1f} s\n")


def test_failing_public_test_warns_but_does_not_block(tmp_path):
    course = make_course(tmp_path, solution="def sigmoid(z):\n    return 1 / (1 + math.exp(-2 * z))")
    result = handin.handin_report("a0_logistic", None, course_root=course, make_pdf=False)
    out = handin.format_report(result)
    assert result.zip_path.exists()
    assert not result.tests[0].ok and result.tests[0].failed[0]["grade_id"] == "test_sigmoid"
    assert "FAILED test_sigmoid: AssertionError: sigmoid(1) should be 0.7311" in out
    assert "you can still hand in" in out


def test_without_a_pdf_engine_the_notebooks_are_still_bundled(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(pdf, "find_chromium", lambda: None)
    monkeypatch.setattr(pdf, "latex_available", lambda: False)
    course = make_course(tmp_path, run=False)
    code_ = student_cli.main(["handin", "a0_logistic", "--no-tests", "--course-root", str(course)])
    out = capsys.readouterr().out
    assert code_ == handin.EXIT_NO_PDF
    assert "sudo apt-get install chromium libjs-mathjax" in out
    zip_path = course / "handin" / "a0_logistic_Ada-Lovelace_Alan-Turing.zip"
    with zipfile.ZipFile(zip_path) as bundle:
        assert any(n.endswith("a0_logistic.ipynb") for n in bundle.namelist())
        assert not any(n.endswith(".pdf") for n in bundle.namelist())
        assert "NOT MADE" in bundle.read("a0_logistic_Ada-Lovelace_Alan-Turing/HANDIN.txt").decode()


def test_never_run_cells_are_pointed_out(tmp_path, capsys):
    course = make_course(tmp_path, run=False)
    result = handin.handin_report("a0_logistic", None, course_root=course, run_tests=False)
    assert any("saved without being run" in w for w in result.warnings)
    assert result.complete


def test_handin_from_inside_a_notebook(tmp_path):
    """A student calls handin() in a cell: a running event loop and kernel around it."""
    course = make_course(tmp_path, run=False)
    caller = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from dlcourse.student.handin import handin\n"
        f"path = handin('a0_logistic', course_root={str(course)!r})\n"
        "print('ZIP', path)")])
    NotebookClient(caller, timeout=300, resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = "".join(o.get("text", "") for o in caller.cells[0].outputs if o.output_type == "stream")
    assert "ZIP " + str(course / "handin" / "a0_logistic_Ada-Lovelace_Alan-Turing.zip") in printed
    assert "save with Ctrl+S" in printed
    with zipfile.ZipFile(course / "handin" / "a0_logistic_Ada-Lovelace_Alan-Turing.zip") as bundle:
        assert any(n.endswith(".pdf") for n in bundle.namelist())


@pytest.mark.slow
def test_real_release_notebook_handin(tmp_path):
    from test_pdf import fill_with_solution, real_release

    master, release = real_release(tmp_path)
    fill_with_solution(master, release, NAMES)
    before = _fingerprint(release)
    result = handin.handin_report(str(release.parent), NAMES, course_root=release.parents[2])
    assert _fingerprint(release) == before
    assert result.complete and result.pdfs[0].math == "typeset"
    failed = [f["grade_id"] for t in result.tests for f in t.failed]
    assert not failed, f"the master's solution fails public tests: {failed}"
    with open(OUT / "export-times.txt", "a") as f:
        f.write(f"{release.name}: tests {result.tests[0].seconds:.1f} s, pdf {result.pdfs[0].seconds:.1f} s\n")


def test_handin_in_the_assignment_folder_needs_no_arguments(tmp_path, monkeypatch):
    course = make_course(tmp_path, run=False)
    monkeypatch.chdir(course / "release" / "a0_logistic")
    path = handin.handin(run_tests=False, make_pdf=False)
    assert path == course / "handin" / "a0_logistic_Ada-Lovelace_Alan-Turing.zip" and path.exists()
    monkeypatch.chdir(course)
    with pytest.raises(handin.HandinError, match="Name the assignment.*a0_logistic"):
        handin.handin(run_tests=False, make_pdf=False)


def test_a_broken_notebook_file_is_refused_clearly(tmp_path):
    course = make_course(tmp_path, run=False)
    (course / "release" / "a0_logistic" / "a0_logistic.ipynb").write_text('{"cells": [')
    with pytest.raises(handin.HandinError, match="cannot be read as a notebook.*Revert"):
        handin.handin("a0_logistic", NAMES, course_root=course)


def test_pdf_can_show_the_outputs_of_the_test_run(tmp_path):
    """--pdf-outputs executed: a notebook saved without outputs still gets its figure in the PDF."""
    course = make_course(tmp_path, run=False)
    result = handin.handin_report("a0_logistic", None, course_root=course, pdf_outputs="executed")
    assert not any("saved without being run" in w for w in result.warnings)
    with zipfile.ZipFile(result.zip_path) as bundle:
        data = bundle.read("a0_logistic_Ada-Lovelace_Alan-Turing/a0_logistic.pdf")
    (tmp_path / "x.pdf").write_bytes(data)
    listing = subprocess.run(["pdfimages", "-list", str(tmp_path / "x.pdf")], capture_output=True,
                             text=True, check=True).stdout
    assert len(listing.strip().splitlines()) >= 3, "no figure in the PDF made from the test run"


def test_the_library_prints_nothing_and_the_cli_prints_the_report(tmp_path, capsys):
    """One output channel: handin_report returns a report; the command prints format_report of it."""
    course = make_course(tmp_path, run=False)
    result = handin.handin_report("a0_logistic", None, course_root=course, run_tests=False, make_pdf=False)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    report = handin.format_report(result)
    assert report.startswith("Hand-in of a0_logistic by Ada Lovelace and Alan Turing\n")
    assert f"Wrote {result.zip_path}\n  1 notebook(s), 0 PDF(s). Upload this one file." in report
    code_ = student_cli.main(["handin", "a0_logistic", "--no-tests", "--no-pdf", "--course-root", str(course)])
    out = capsys.readouterr().out
    assert code_ == handin.EXIT_OK
    assert "(replacing the earlier one)" in out and out.startswith("Hand-in of a0_logistic by ")
