"""``dlcourse handin``: check, test, print to PDF and zip an assignment.

    dlcourse handin a1_autodiff --names "Ada Lovelace, Alan Turing"

or, from a cell of the notebook itself (save it first: the notebooks are read
as they are on disk)::

    from dlcourse.student.handin import handin
    handin("a1_autodiff")

What it does, in order:

1. finds the assignment's notebooks (``release/<assignment>/*.ipynb``, or a
   folder you name) and reads the names cell of each (the first cell,
   ``NAMES = "..."``; see :mod:`dlcourse.student.names`). An empty or missing names
   cell, a group of more than two, or names that differ from ``--names``
   stop the hand-in with a message saying what to fix;
2. runs each notebook's public tests the way ``nbgrader validate`` does, on a
   copy in a temporary folder (:mod:`dlcourse.student.public_tests`), and
   reports the failures: they warn, they do not stop the hand-in;
3. prints every notebook to PDF (names and assignment on page 1, formulas
   typeset, works offline; see :mod:`dlcourse.student.pdf`);
4. writes ``handin/<assignment>_<names>.zip`` with the notebooks exactly as
   saved and their PDFs.

The student's notebooks are only read, never written. :func:`handin_report`
is these steps, each filling the report (:class:`HandinResult`: what was
checked, what was written, the warnings); :func:`format_report` writes it as
text, and only the command (:mod:`dlcourse.student.cli`, or :func:`handin`
in a notebook cell) prints it.
"""

from __future__ import annotations

import datetime as dt
import difflib
import logging
import os
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import colab, pdf as pdf_lib
from ..core.course import find_course_root
# the names cell and the public tests live in their own modules; their names stay importable from here
from .names import (MAX_GROUP_SIZE, NAMES_EXAMPLE, NAMES_GRADE_ID, NAMES_SOURCE, NAMES_VARIABLE,  # noqa: F401
                    HandinError, check_names, group_slug, names_cell, parse_names, read_names)
from .public_tests import TestReport, run_public_tests  # noqa: F401

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_NO_PDF = 3


# --------------------------------------------------------------------------
# Finding things.


def assignment_dir(assignment: str, course_root: Path) -> Path:
    """Where the student's notebooks of ``assignment`` are."""
    given = Path(assignment).expanduser()
    candidates = [given, Path.cwd() / assignment, course_root / assignment,
                  course_root / "release" / assignment]
    for folder in candidates:
        if folder.is_dir() and any(folder.glob("*.ipynb")):
            return folder.resolve()
    if given.is_file() and given.suffix == ".ipynb":
        return given.parent.resolve()
    known = sorted(p.name for p in (course_root / "release").glob("*") if p.is_dir())
    hint = f" Assignments: {', '.join(known)}." if known else ""
    if assignment == ".":
        raise HandinError(f"No notebooks in {Path.cwd()}. Name the assignment, e.g. "
                          f"`dlcourse handin a1_autodiff`, or run it in the assignment's folder.{hint}")
    close = difflib.get_close_matches(given.name, known, n=1, cutoff=0.5)
    hint += f" Did you mean {close[0]!r}?" if close else ""
    looked = dict.fromkeys(str(c.resolve()) for c in candidates)  # one folder may be named twice
    raise HandinError(f"No notebooks found for assignment {assignment!r} "
                      f"(looked in {', '.join(looked)}).{hint}")


def assignment_notebooks(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))


# --------------------------------------------------------------------------
# The hand-in: named steps that fill a report, and a function that formats it.


@dataclass
class NotebookPdf:
    """What printing one notebook to PDF gave: a PDF, or the reason there is none."""

    notebook: str
    pdf: pdf_lib.PdfResult | None = None
    error: str = ""
    engine_missing: bool = False  # no PDF engine at all: the other notebooks were not tried
    never_run: int = 0  # code cells saved without being run (the PDF shows no output for them)


@dataclass
class HandinResult:
    """The hand-in's report: what was checked, what was written, the warnings."""

    zip_path: Path
    names: list[str]
    assignment: str
    notebooks: list[Path]
    tests: list[TestReport] = field(default_factory=list)
    pdfs: list[pdf_lib.PdfResult] = field(default_factory=list)
    pdf_error: str = ""
    warnings: list[str] = field(default_factory=list)
    names_warnings: list[str] = field(default_factory=list)  # also in ``warnings``
    saved_at: dict[str, dt.datetime] = field(default_factory=dict)  # notebook -> last saved
    handed_in: dt.datetime | None = None
    in_kernel: bool = False  # called from a notebook cell
    tests_run: bool = False
    pdfs_tried: list[NotebookPdf] = field(default_factory=list)
    replaced: bool = False  # an earlier zip of the same name was overwritten
    notebooks_zipped: int = 0

    @property
    def complete(self) -> bool:
        """True when every notebook has its PDF in the bundle."""
        return not self.pdf_error and len(self.pdfs) == len(self.notebooks)


def _in_kernel() -> bool:
    """Whether this runs inside a Jupyter kernel (a notebook cell)."""
    if "ipykernel" not in sys.modules:
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def _start_report(assignment: str, names: str | None, course_root: Path, out_dir) -> HandinResult:
    """Finds the notebooks and checks the names: the report with nothing run yet."""
    folder = assignment_dir(assignment, course_root)
    notebooks = assignment_notebooks(folder)
    if not notebooks:
        raise HandinError(f"No notebooks in {folder}.")
    group, warnings = check_names(notebooks, names)
    out_dir = Path(out_dir) if out_dir else course_root / "handin"
    zip_path = out_dir / f"{folder.name}_{group_slug(group)}.zip"
    return HandinResult(zip_path, group, folder.name, notebooks, warnings=list(warnings),
                        names_warnings=list(warnings), handed_in=dt.datetime.now().astimezone(),
                        in_kernel=_in_kernel())


def _read_originals(result: HandinResult) -> dict[str, bytes]:
    """Every notebook exactly as saved (what goes in the zip), and when it was saved."""
    originals = {}
    for path in result.notebooks:
        originals[path.name] = path.read_bytes()
        result.saved_at[path.name] = dt.datetime.fromtimestamp(path.stat().st_mtime).astimezone()
    return originals


def _run_all_public_tests(result: HandinResult, course_root: Path) -> None:
    log.info("Running the public tests of %s (this can take a minute)", result.assignment)
    result.tests_run = True
    for path in result.notebooks:
        result.tests.append(run_public_tests(path, course_root))


def _never_run_cells(node) -> int:
    return sum(1 for c in node.cells if c.cell_type == "code" and c.source.strip()
               and c.get("execution_count") is None and not c.get("outputs"))


def _print_pdfs(result: HandinResult, originals: dict[str, bytes], pdf_dir: Path, *,
                pdf_outputs: str, allow_browser_download: bool) -> dict[str, Path]:
    """Prints each notebook to PDF in ``pdf_dir``; returns notebook name -> PDF file."""
    tests_by_name = {report.notebook: report for report in result.tests}
    pdf_files = {}
    for path in result.notebooks:
        report = tests_by_name.get(path.name)
        node = nbformat.reads(originals[path.name].decode("utf-8"), as_version=4)
        if pdf_outputs == "executed" and report is not None and report.executed is not None:
            node = report.executed
        attempt = NotebookPdf(path.name, never_run=_never_run_cells(node) if pdf_outputs == "saved" else 0)
        result.pdfs_tried.append(attempt)
        if attempt.never_run:
            result.warnings.append(_never_run_warning(attempt))
        try:
            attempt.pdf = pdf_lib.notebook_to_pdf(
                node, pdf_dir / f"{path.stem}.pdf", title=_pdf_title(result.assignment, path),
                header_rows=_pdf_header_rows(result, path, report),
                footer=f"{', '.join(result.names)} · {result.assignment}/{path.name}",
                files_dir=path.parent, allow_network=allow_browser_download,
                allow_browser_download=allow_browser_download)
        except pdf_lib.PdfEngineMissing as error:
            attempt.error, attempt.engine_missing = str(error), True
            result.pdf_error = attempt.error
            break
        except Exception as error:  # the bundle must still be written
            attempt.error = result.pdf_error = f"{type(error).__name__}: {error}"
            continue
        result.pdfs.append(attempt.pdf)
        pdf_files[path.name] = attempt.pdf.path
        log.debug("PDF export of %s took %.1f s", path.name, attempt.pdf.seconds)
        if not attempt.pdf.math_ok:
            result.warnings.append(f"{attempt.pdf.path.name}: formulas are {attempt.pdf.math}")
    return pdf_files


def _never_run_warning(attempt: NotebookPdf) -> str:
    return (f"{attempt.notebook}: {attempt.never_run} code cell(s) were saved without being run, "
            "so the PDF shows no output for them. Run all cells, save, and hand in again.")


def _pdf_title(assignment: str, path: Path) -> str:
    return assignment if path.stem == assignment else f"{assignment} — {path.stem}"


def _pdf_header_rows(result: HandinResult, path: Path, report: TestReport | None) -> list[tuple[str, str]]:
    """The table on page 1: names, assignment, notebook, time, and the public tests' summary."""
    rows = [("Names", ", ".join(result.names)), ("Assignment", result.assignment),
            ("Notebook", path.name), ("Handed in", f"{result.handed_in:%Y-%m-%d %H:%M %Z}")]
    if report is not None:
        rows.append(("Public tests", report.summary()))
    return rows


def handin_report(
    assignment: str = ".",
    names: str | None = None,
    *,
    course_root: Path | str | None = None,
    out_dir: Path | str | None = None,
    run_tests: bool = True,
    make_pdf: bool = True,
    pdf_outputs: str = "saved",
    allow_browser_download: bool = False,
) -> HandinResult:
    """Like :func:`handin`, returning the report (:func:`format_report` writes it as text)."""
    course_root = Path(course_root).resolve() if course_root else find_course_root()
    result = _start_report(assignment, names, course_root, out_dir)
    originals = _read_originals(result)
    if run_tests:
        _run_all_public_tests(result, course_root)
    result.replaced = result.zip_path.exists()
    pdf_dir = Path(tempfile.mkdtemp(prefix="dlcourse-handin-pdf-"))
    try:
        pdf_files = {}
        if make_pdf:
            pdf_files = _print_pdfs(result, originals, pdf_dir, pdf_outputs=pdf_outputs,
                                    allow_browser_download=allow_browser_download)
        _write_zip(result.zip_path, result.zip_path.stem, originals, pdf_files, result, result.handed_in)
        result.notebooks_zipped = len(originals)
    finally:
        shutil.rmtree(pdf_dir, ignore_errors=True)
    return result


def format_report(result: HandinResult) -> str:
    """The report as the student reads it: what was checked, the tests, the PDFs, the zip written."""
    lines = _format_checked(result) + _format_tests(result) + _format_pdfs(result) + _format_written(result)
    return "\n".join(lines)


def _format_checked(result: HandinResult) -> list[str]:
    lines = [f"Hand-in of {result.assignment} by {' and '.join(result.names)}"]
    for name, saved in result.saved_at.items():
        age = result.handed_in - saved
        ago = (f"{int(age.total_seconds() // 60)} min ago" if age.total_seconds() < 86400
               else f"{age.days} days ago")
        lines.append(f"  {name}: last saved {saved:%Y-%m-%d %H:%M:%S} ({ago})")
    if result.in_kernel:
        lines.append("  (the notebooks are read as saved on disk: save with Ctrl+S before handing in)")
    lines += [f"  warning: {warning}" for warning in result.names_warnings]
    return lines


def _format_tests(result: HandinResult) -> list[str]:
    if not result.tests_run:
        return []
    lines = ["Running the public tests (as nbgrader validate does; this can take a minute)..."]
    for report in result.tests:
        lines.append(f"  {report.notebook}: {report.summary()}")
        lines += [f"    FAILED {failure['grade_id']}: {failure['error'][:300]}" for failure in report.failed]
        if report.unanswered:
            lines.append(f"    written answers still empty: {', '.join(report.unanswered)}")
    if any(not report.ok for report in result.tests):
        lines.append("  Some public tests fail: you can still hand in (this bundle is written), "
                     "but those items will likely lose points.")
    return lines


def _format_pdfs(result: HandinResult) -> list[str]:
    if not result.pdfs_tried:
        return []
    lines = ["Printing the notebooks to PDF..."]
    for attempt in result.pdfs_tried:
        if attempt.never_run:
            lines.append(f"  warning: {_never_run_warning(attempt)}")
        if attempt.engine_missing:
            lines.append(f"  No PDF: {attempt.error}")
        elif attempt.error:
            lines.append(f"  PDF of {attempt.notebook} failed: {attempt.error}")
        else:
            pdf = attempt.pdf
            math = "" if pdf.math in ("typeset", "no math") else f", math {pdf.math}"
            lines.append(f"  {pdf.path.name}: {pdf.seconds:.1f} s{math}")
    return lines


def _format_written(result: HandinResult) -> list[str]:
    lines = [f"Wrote {result.zip_path}" + (" (replacing the earlier one)" if result.replaced else ""),
             f"  {result.notebooks_zipped} notebook(s), {len(result.pdfs)} PDF(s). Upload this one file."]
    if not result.complete:
        lines.append("  The bundle has NO PDF for some notebooks (see above); graders read the PDF.")
    return lines


def _write_zip(zip_path: Path, stem: str, originals: dict[str, bytes], pdfs: dict[str, Path],
               result: HandinResult, handed_in: dt.datetime) -> None:
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"assignment: {result.assignment}", f"names: {', '.join(result.names)}",
             f"handed in: {handed_in.isoformat(timespec='seconds')}"]
    for report in result.tests:
        lines.append(f"public tests, {report.notebook}: {report.summary()}")
    for pdf in result.pdfs:
        lines.append(f"pdf, {pdf.path.name}: {pdf.engine}, math {pdf.math}, {pdf.seconds:.1f} s")
    if result.pdf_error:
        lines.append(f"pdf: NOT MADE: {result.pdf_error.splitlines()[0]}")
    tmp = zip_path.with_name(zip_path.name + ".part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for name, data in originals.items():
            bundle.writestr(f"{stem}/{name}", data)
            if name in pdfs:
                bundle.write(pdfs[name], f"{stem}/{Path(name).stem}.pdf")
        bundle.writestr(f"{stem}/HANDIN.txt", "\n".join(lines) + "\n")
    os.replace(tmp, zip_path)


def handin(assignment: str = ".", names: str | None = None, **options) -> Path:
    """Checks, tests, prints to PDF and zips ``assignment``; returns the zip's path.

    ``names`` ("Ada Lovelace, Alan Turing") must agree with the notebooks'
    names cells; it may be left out when they are filled. ``options`` are
    :func:`handin_report`'s: ``course_root`` defaults to the folder with
    ``nbgrader_config.py`` above the current one, ``out_dir`` to
    ``<course_root>/handin``. Raises :class:`HandinError` when the hand-in is
    refused (e.g. an empty names cell). Failing public tests only warn.
    Without a PDF engine the zip holds the notebooks only and the message
    says what to install. In Google Colab it first saves the notebook as Colab
    holds it, may fetch Playwright's Chromium for the PDF, and offers the zip
    for download (:mod:`dlcourse.student.colab`).
    """
    in_colab = colab.in_colab()
    if in_colab:  # Colab keeps the notebook in the browser: write it where the hand-in reads notebooks
        colab.save_notebook(Path(options.get("course_root") or find_course_root()))
        options.setdefault("allow_browser_download", True)  # Colab is online and has no browser of its own
    result = handin_report(assignment, names, **options)
    # handin() is the command's form for a notebook cell: like the CLI, it shows the report.
    print(format_report(result), flush=True)
    if in_colab:
        colab.offer_download(result.zip_path)
    return result.zip_path
