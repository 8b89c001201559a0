"""The PDF of every collected hand-in: ``dlcourse collect`` makes the ones a student could not.

A student without Chrome, Chromium or Edge (or on Colab) still hands in: ``dlcourse handin`` zips the
notebooks and says the PDF is missing (exit 3). So that every hand-in the instructor grades has its
notebook *and* its PDF, collect prints each notebook that came without ``<notebook>.pdf`` with the
course's own engine (:mod:`dlcourse.student.pdf`, the same one the hand-in uses), from the notebook as the
student saved it (its outputs, never re-run), and marks the row of ``collect.csv``
"PDF made by the grader (<names>)". A PDF that cannot be made becomes a warning, never a lost hand-in.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..core.course import CourseLayout
from ..student import pdf as pdf_lib

log = logging.getLogger(__name__)

MADE_BY_GRADER = "PDF made by the grader"
#: The rows of collect.csv whose folder in submitted/ is graded (new or from an earlier collect).
GRADED_ACTIONS = ("collected", "kept")


def missing_pdfs(folder: Path) -> list[Path]:
    """The notebooks of a hand-in folder that have no PDF of the same name beside them."""
    return [notebook for notebook in sorted(Path(folder).glob("*.ipynb"))
            if not notebook.with_suffix(".pdf").is_file()]


def make_pdf(notebook: Path, assignment: str, names: str) -> pdf_lib.PdfResult:
    """``notebook``'s PDF beside it, its header saying who handed it in and that the grader printed it."""
    rows = [("Names", names or "(no names cell)"), ("Assignment", assignment),
            ("Printed", f"{MADE_BY_GRADER}, from the notebook as handed in")]
    return pdf_lib.notebook_to_pdf(notebook, notebook.with_suffix(".pdf"), title=f"{assignment}: {notebook.stem}",
                                   header_rows=rows, footer=f"{names} · {assignment}/{notebook.name}")


def add_missing_pdfs(layout: CourseLayout, assignment: str, rows: list[dict]) -> list[str]:
    """Makes the PDF of each graded hand-in's notebook that lacks one; returns the warnings.

    ``rows`` are collect.csv's (``action``, ``representative``, ``names``, ``reason``); the reason of a row
    whose PDF the grader made says so. Without any PDF engine, one warning says what to install.
    """
    warnings = []
    for row in rows:
        if row["action"] not in GRADED_ACTIONS or not row["representative"]:
            continue
        folder = layout.submission_dir(row["representative"], assignment)
        made = []
        for notebook in missing_pdfs(folder):
            try:
                result = make_pdf(notebook, assignment, row["names"])
            except pdf_lib.PdfEngineMissing as error:
                first = str(error).splitlines()[0]
                return warnings + [f"{assignment}: hand-ins without a PDF stay without one: {first} "
                                   "Install a browser (see `python -m dlcourse.student.pdf --check`) and collect "
                                   "again."]
            except Exception as error:  # a notebook the exporter cannot read: the hand-in is collected anyway
                warnings.append(f"{folder / notebook.name}: no PDF could be made ({type(error).__name__}: {error})")
                continue
            log.info("made %s (%.1f s, math %s)", result.path, result.seconds, result.math)
            made.append(result.path.name)
        if made:
            note = f"{MADE_BY_GRADER} ({', '.join(made)})"
            row["reason"] = "; ".join(part for part in (row["reason"], note) if part)
    return warnings

