"""What the grades say: ``dlcourse report`` for the instructor (grader side only).

``report ASSIGNMENT`` reads the stored results (``autograded/<student>/<A>/``),
the release and the masters, and writes ``reports/<A>/report.html``: one
self-contained page (figures embedded as base64 PNG, no external resource)
with the score distribution and statuses, an item analysis (mean, share at
full marks, discrimination, flags), the commonest failure messages per
item, grading time, manual grading progress from formgrader and similar
pairs of submissions (:mod:`dlcourse.insight.similarity`). ``report --course`` writes
``reports/course/scores.csv`` (one row per student, one column per
assignment, ready for an LMS import) and ``reports/course/report.html``.

The page's markup is in ``templates/report.html.j2`` and
``templates/course_report.html.j2``; here, each section's numbers and words
(one small function per section), below the statistics they show. The
figures are :mod:`dlcourse.insight.figures`; the similarity measure is
:mod:`dlcourse.insight.similarity`.
"""

from __future__ import annotations

import csv
import io
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import figures, similarity
from ..core.course import CourseLayout
from ..core.templates import render
from ..grading.reports import load_result
from ..grading.results import Status, SubmissionResult
from ..core.notebook import atomic_write, cell_source, grade_id as cell_grade_id, is_answer_cell, solution_source

#: A failure message that only says the answer was not written; not a sign of a broken test.
_NOT_ATTEMPTED = re.compile("|".join(["NotImplementedError", *(re.escape(s.student_text) for s in Status)]), re.I)
_DIGITS = re.compile(r"\d+(\.\d+)?(e[-+]?\d+)?")
_PATHS = re.compile(r"(/[\w.\-]+)+")

#: How grading words a test cell that raised something other than a failed check (the test itself broke).
TEST_ERROR = "the test could not run"
_NOT_GRADED = (Status.MISSING, Status.INVALID_NOTEBOOK)

SIMILARITY_NOTE = ("Similarity is evidence for a person to judge, never a penalty by itself: short tasks have few "
                   "ways to be written, students may have worked from the same lecture example, and a high score "
                   "only says where to look. Talk with the students before drawing any conclusion.")


# -- item analysis -----------------------------------------------------------------------------------------------

@dataclass
class Item:
    notebook: str
    grade_id: str
    kind: str
    max_score: float
    scores: dict[str, float | None] = field(default_factory=dict)  # student -> score (None: not graded yet)
    messages: dict[str, str] = field(default_factory=dict)  # student -> failure message
    discrimination: float | None = None
    flags: list[str] = field(default_factory=list)
    common_failures: list[tuple[str, int, str]] = field(default_factory=list)  # (key, count, one example)

    @property
    def graded(self) -> list[float]:
        return [s for s in self.scores.values() if s is not None]

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.graded) if self.graded else None

    @property
    def full_share(self) -> float | None:
        graded = self.graded
        return sum(s >= self.max_score for s in graded) / len(graded) if graded else None

    @property
    def zero_share(self) -> float | None:
        graded = self.graded
        return sum(s <= 0 for s in graded) / len(graded) if graded else None


def message_key(message: str) -> str:
    """The first line of a failure message, numbers and paths replaced, so that alike failures group."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    first = lines[0] if lines else ""
    return _DIGITS.sub("#", _PATHS.sub("<path>", first))[:200]


def _pearson(xs: list[float], ys: list[float]) -> float | None:
    if len(xs) < 3:
        return None
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    return sxy / (sxx * syy) ** 0.5 if sxx > 0 and syy > 0 else None


def item_analysis(results: list[SubmissionResult], manual: dict[str, dict] | None = None,
                  shared_share: float = 0.8, shared_min: int = 3) -> list[Item]:
    """Per graded item: scores, discrimination (item vs the rest of the score) and flags.

    Flags: ``nobody scores`` (every graded student got 0), ``everybody full`` (every one full marks),
    ``shared failure`` (at least ``shared_min`` failures that are not blanks, and ``shared_share`` of them
    with one message: the text or the test may be wrong), ``test error (n)`` (the test cell itself raised for n
    students, e.g. a name another test cell defines), ``low discrimination`` (< 0 with 5+ students).
    """
    items: dict[tuple[str, str], Item] = {}
    for result in results:
        for notebook in result.notebooks:
            if notebook.status in _NOT_GRADED:  # no notebook to grade: counted in the statuses, not the items
                continue
            for cell in notebook.cells:
                if cell.state:  # not graded (a grader fault): not an item's score
                    continue
                item = items.setdefault((cell.notebook or notebook.name, cell.grade_id),
                                        Item(notebook.name, cell.grade_id, cell.kind, cell.max_score))
                score = cell.score
                if cell.kind == "manual":
                    score = (manual or {}).get(result.student_id, {}).get((notebook.name, cell.grade_id))
                elif score is None:
                    score = 0.0
                item.scores[result.student_id] = score
                if cell.kind == "test" and (score or 0) < cell.max_score:
                    item.messages[result.student_id] = cell.message or Status(notebook.status).student_text
    totals = {r.student_id: sum(s for it in items.values() for st, s in it.scores.items()
                                if st == r.student_id and s is not None) for r in results}
    for item in items.values():
        students = [s for s, v in item.scores.items() if v is not None]
        item.discrimination = _pearson([item.scores[s] for s in students],
                                       [totals[s] - item.scores[s] for s in students])
        graded = item.graded
        if len(graded) >= 2:
            if all(s <= 0 for s in graded):
                item.flags.append("nobody scores")
            elif all(s >= item.max_score for s in graded):
                item.flags.append("everybody full")
        groups: dict[str, list[str]] = {}
        for message in item.messages.values():
            groups.setdefault(message_key(message), []).append(message)
        item.common_failures = sorted(((k, len(v), v[0]) for k, v in groups.items()), key=lambda g: (-g[1], g[0]))
        attempted = [(k, n) for k, n, _ in item.common_failures if not _NOT_ATTEMPTED.search(k)]
        failures = sum(n for _, n in attempted)
        if attempted and failures >= shared_min and attempted[0][1] >= max(shared_min, shared_share * failures):
            item.flags.append("shared failure")
        broken = sum(m.startswith(TEST_ERROR) for m in item.messages.values())
        if broken:
            item.flags.append(f"test error ({broken})")
        if item.discrimination is not None and item.discrimination < 0 and len(graded) >= 5:
            item.flags.append("low discrimination")
    return list(items.values())


# -- manual grading --------------------------------------------------------------------------------------------

def manual_progress(layout: CourseLayout, assignment: str,
                    results: list[SubmissionResult]) -> tuple[dict[str, dict], int, int] | None:
    """Manual scores per student from formgrader, and (graded, to grade) written answers; None without gradebook."""
    wanted = [(r.student_id, nb.name, c.grade_id) for r in results for nb in r.notebooks for c in nb.cells
              if c.kind == "manual" and nb.status != Status.MISSING]
    if not (layout.root / "gradebook.db").is_file():
        return None
    from ..grading.gradebook import manual_scores

    scores = {}
    try:
        for student in sorted({w[0] for w in wanted}):
            scores[student] = manual_scores(layout, assignment, student)
    except Exception:  # an unreadable gradebook: the rest of the report still stands
        return None
    done = sum((nb, g) in scores.get(s, {}) for s, nb, g in wanted)
    return scores, done, len(wanted)


# -- similarity ------------------------------------------------------------------------------------------------

def _notebook_cells(path: Path) -> list:
    try:
        return nbformat.read(str(path), as_version=4).cells
    except Exception:
        return []


def student_codes(layout: CourseLayout, assignment: str, results: list[SubmissionResult]):
    """Each student's answer cells (from the graded notebooks), the release's lines, and the reference."""
    release_sources = [cell_source(c) for p in sorted((layout.release / assignment).glob("*.ipynb"))
                       for c in _notebook_cells(p)]
    release_lines = similarity.release_line_set(release_sources)
    codes = []
    for result in results:
        cells = {}
        folder = layout.autograded_dir(result.student_id, assignment)
        for notebook in result.notebooks:
            for cell in _notebook_cells(folder / f"{notebook.name}.ipynb"):
                if cell.get("cell_type") == "code" and is_answer_cell(cell):
                    cells[f"{notebook.name}/{cell_grade_id(cell)}"] = cell_source(cell)
        codes.append(similarity.Code(result.student_id, cells))
    reference_cells = {f"{p.stem}/{cell_grade_id(c)}": solution_source(c) for p in layout.masters(assignment)
                       for c in _notebook_cells(p) if c.get("cell_type") == "code" and is_answer_cell(c)}
    reference = similarity.Code(similarity.REFERENCE, reference_cells) if reference_cells else None
    similarity.prepare(codes + ([reference] if reference else []), release_lines)
    return codes, reference, release_lines


# -- the report --------------------------------------------------------------------------------------------------

@dataclass
class AssignmentReport:
    assignment: str
    results: list[SubmissionResult]
    items: list[Item]
    manual: tuple[dict, int, int] | None
    pairs: list[similarity.Pair]
    reference_pairs: list[similarity.Pair]
    cut: float
    codes: dict[str, similarity.Code]
    release_lines: set[str]

    @property
    def flagged_pairs(self) -> list[similarity.Pair]:
        return [p for p in self.pairs if p.flagged]

    def summary(self) -> str:
        scores = [r.score for r in self.results]
        maximum = max((r.max_score for r in self.results), default=0)
        statuses = Counter(str(r.status) for r in self.results)
        lines = [f"{self.assignment}: {len(self.results)} submissions, automatic score median "
                 f"{statistics.median(scores) if scores else 0:g} / {maximum:g}; "
                 + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))]
        for item in self.items:
            if item.flags:
                lines.append(f"  item {item.grade_id}: {', '.join(item.flags)}"
                             + (f" ({item.common_failures[0][2].splitlines()[0][:80]!r})"
                                if "shared failure" in item.flags else ""))
        if self.manual is not None:
            lines.append(f"  manual grading: {self.manual[1]} of {self.manual[2]} written answers graded")
        for pair in self.flagged_pairs:
            lines.append(f"  similar: {pair.a} ~ {pair.b} ({pair.score:.2f}; cut-off {self.cut:.2f})")
        for pair in self.reference_pairs:
            if pair.flagged:
                lines.append(f"  close to the reference solution: {pair.a} ({pair.score:.2f})")
        return "\n".join(lines)


def load_results(layout: CourseLayout, assignment: str) -> list[SubmissionResult]:
    results = [load_result(path, with_notebooks=False) for path in layout.result_paths(assignment)]
    return sorted((r for r in results if r is not None), key=lambda r: r.student_id)


def build_report(layout: CourseLayout, assignment: str) -> AssignmentReport:
    results = load_results(layout, assignment)
    if not results:
        raise FileNotFoundError(f"nothing graded for {assignment} yet; run `dlcourse grade {assignment}`")
    manual = manual_progress(layout, assignment, results)
    items = item_analysis(results, manual[0] if manual else None)
    codes, reference, release_lines = student_codes(layout, assignment, results)
    pairs, reference_pairs, cut = similarity.similar_pairs(codes, reference)
    everyone = {c.student_id: c for c in codes + ([reference] if reference else [])}
    return AssignmentReport(assignment, results, items, manual, pairs, reference_pairs, cut, everyone, release_lines)


def write_report(layout: CourseLayout, assignment: str) -> tuple[Path, AssignmentReport]:
    report = build_report(layout, assignment)
    path = layout.reports / assignment / "report.html"
    atomic_write(path, render_html(report))
    return path, report


# -- the page: numbers and words here, markup in templates/report.html.j2 ------------------------------------------

def render_html(report: AssignmentReport) -> str:
    """``reports/<assignment>/report.html``: one self-contained page (figures embedded)."""
    return render("dlcourse.insight", "report.html.j2", assignment=report.assignment, summary=report.summary(),
                  scores=_scores_section(report.results), broken=_broken_rows(report.results),
                  items_figure=figures.item_figure(report.items), items=[_item_row(i) for i in report.items],
                  failures=_failure_rows(report.items), times=_times_section(report.results),
                  manual=_manual_section(report.manual), similarity_note=SIMILARITY_NOTE,
                  pairs=_pairs_section(report), flagged=[_pair_view(report, p) for p in report.flagged_pairs],
                  close=[_pair_view(report, p) for p in report.reference_pairs if p.flagged])


def _num(value, fmt="{:.2f}") -> str:
    return "–" if value is None else fmt.format(value)


def _scores_section(results: list[SubmissionResult]) -> dict:
    scores = [r.score for r in results]
    maximum = max((r.max_score for r in results), default=0)
    statuses = Counter(str(r.status) for r in results)
    return {"count": len(results), "median": f"{statistics.median(scores):g}", "mean": f"{statistics.fmean(scores):.2f}",
            "maximum": f"{maximum:g}", "statuses": [(s, statuses[s]) for s in sorted(statuses)],
            "figure": figures.histogram(scores, maximum, "automatic score", "points")}


def _broken_rows(results: list[SubmissionResult]) -> list[dict]:
    """The notebooks that did not grade normally."""
    return [{"student": r.student_id, "notebook": nb.name, "status": nb.status, "message": nb.message[:300]}
            for r in results if r.status not in (Status.OK, Status.RENAMED)
            for nb in r.notebooks if nb.status not in (Status.OK, Status.RENAMED)]


def _item_row(item: Item) -> dict:
    return {"grade_id": item.grade_id, "kind": item.kind, "points": f"{item.max_score:g}",
            "graded": len(item.graded), "mean": _num(item.mean), "full_share": _num(item.full_share, "{:.0%}"),
            "discrimination": _num(item.discrimination), "flags": item.flags}


def _failure_rows(items: list[Item]) -> list[dict]:
    """Per item with failures: how many, how many blank, the three commonest other messages."""
    rows = []
    for item in items:
        if not item.common_failures:
            continue
        blank = sum(n for k, n, _ in item.common_failures if _NOT_ATTEMPTED.search(k))
        shown = [{"count": n, "first_line": example.strip().splitlines()[0][:160], "example": example[:1500]}
                 for k, n, example in item.common_failures if not _NOT_ATTEMPTED.search(k)][:3]
        rows.append({"grade_id": item.grade_id, "failed": len(item.messages), "blank": blank, "shown": shown})
    return rows


def _times_section(results: list[SubmissionResult]) -> dict | None:
    times = [(r.student_id, nb.name, nb.seconds) for r in results for nb in r.notebooks]
    if not times:
        return None
    seconds = [t for *_, t in times]
    return {"figure": figures.histogram(seconds, None, "seconds per notebook", "seconds"),
            "total": f"{sum(seconds):.0f}", "count": len(times), "median": f"{statistics.median(seconds):.1f}",
            "slowest": [{"student": s, "notebook": n, "seconds": f"{t:.1f}"}
                        for s, n, t in sorted(times, key=lambda t: -t[2])[:5]]}


def _manual_section(manual: tuple[dict, int, int] | None) -> dict | None:
    if manual is None:
        return None
    _, done, wanted = manual
    return {"done": done, "wanted": wanted, "share": f"{done / wanted:.0%}" if wanted else ""}


def _pairs_section(report: AssignmentReport) -> dict:
    pair_scores = [p.score for p in report.pairs]
    return {"count": len(pair_scores), "cut": f"{report.cut:.2f}",
            "figure": figures.histogram(pair_scores, 1.0, "similarity of every pair", "similarity", mark=report.cut)
            if pair_scores else None}


def _pair_view(report: AssignmentReport, pair: similarity.Pair) -> dict:
    """A pair side by side: per cell both have, each line and whether it is one of the lines alike."""
    a, b = report.codes[pair.a], report.codes[pair.b]

    def keys(code, cell):
        return {similarity.line_key(line) for line in similarity.own_lines(code.cells[cell],
                                                                          report.release_lines).splitlines()
                if line.strip()} - {""}

    cells = []
    for cell in sorted(set(a.cells) & set(b.cells)):
        shared = keys(a, cell) & keys(b, cell)
        if shared:
            cells.append({"name": cell, "shared": len(shared), "a": _marked_lines(a.cells[cell], shared, report),
                          "b": _marked_lines(b.cells[cell], shared, report)})
    return {"a": pair.a, "b": pair.b, "score": f"{pair.score:.2f}", "robust_z": f"{pair.robust_z:.1f}",
            "cells": cells}


def _marked_lines(source: str, shared: set[str], report: AssignmentReport) -> list[dict]:
    """Each line of ``source``; marked when it is the student's own and one of the lines alike."""
    lines = []
    for line in source.splitlines():
        key = similarity.line_key(line)
        own = line.strip() and line.strip() not in report.release_lines and not line.strip().startswith("#")
        lines.append({"text": line, "marked": bool(own and key and key in shared)})
    return lines


# -- across assignments ------------------------------------------------------------------------------------------

def course_scores(layout: CourseLayout) -> tuple[list[str], dict[str, dict[str, tuple[float, float]]]]:
    """Assignments with results, and student -> assignment -> (score, max)."""
    table: dict[str, dict[str, tuple[float, float]]] = {}
    graded = []
    for assignment in layout.assignments():
        results = load_results(layout, assignment)
        if results:
            graded.append(assignment)
        for r in results:
            table.setdefault(r.student_id, {})[assignment] = (r.score, r.max_score)
    return graded, table


def write_course_report(layout: CourseLayout) -> tuple[Path, Path, str]:
    assignments, table = course_scores(layout)
    if not assignments:
        raise FileNotFoundError("nothing graded yet; run `dlcourse grade ASSIGNMENT` first")
    maxima = {a: max((table[s][a][1] for s in table if a in table[s]), default=0) for a in assignments}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student_id", *assignments, "total", "max_total", "percent"])
    total_max = sum(maxima.values())
    rows = []
    for student in sorted(table):
        got = [table[student].get(a, (0.0, maxima[a]))[0] for a in assignments]
        rows.append([student, *[f"{g:g}" for g in got], f"{sum(got):g}", f"{total_max:g}",
                     f"{100 * sum(got) / total_max:.1f}" if total_max else ""])
        writer.writerow(rows[-1])
    folder = layout.reports / "course"
    atomic_write(folder / "scores.csv", buffer.getvalue())

    shares = {a: [table[s][a][0] / maxima[a] for s in table if a in table[s] and maxima[a]] for a in assignments}

    page = render("dlcourse.insight", "course_report.html.j2", figure=figures.course_figure(assignments, shares),
                  assignments=assignments, rows=rows)
    atomic_write(folder / "report.html", page)
    summary = "\n".join(f"{a}: median {statistics.median(shares[a]):.0%} of {maxima[a]:g} points over "
                        f"{len(shares[a])} students" for a in assignments if shares[a])
    return folder / "scores.csv", folder / "report.html", summary
