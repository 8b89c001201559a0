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

About 500 lines: the statistics and the page that shows them are kept
together (each section of the page is one function below its numbers); the
similarity measure is its own module, :mod:`dlcourse.insight.similarity`.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import similarity
from ..core.course import CourseLayout
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


# -- figures -----------------------------------------------------------------------------------------------------

def _figure(draw, width: float = 6.4, height: float = 3.2) -> str:
    """An <img> with the figure ``draw(axes)`` makes, as an embedded PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    axes = figure.add_subplot()
    title = draw(axes)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<img class="figure" alt="{html.escape(title or "figure")}" src="data:image/png;base64,{data}">'


def _histogram(values, maximum, title, xlabel, mark=None):
    def draw(axes):
        bins = max(5, min(20, len(set(values)) + 1))
        axes.hist(values, bins=bins, range=(0, maximum) if maximum else None, color="#4878a8", edgecolor="white")
        if mark is not None:
            axes.axvline(mark, color="#c0392b", linestyle="--", label=f"cut-off {mark:.2f}")
            axes.legend()
        axes.set_xlabel(xlabel)
        axes.set_ylabel("count")
        axes.set_title(title)
        return title
    return _figure(draw)


def _item_figure(items: list[Item]):
    def draw(axes):
        names = [i.grade_id for i in items]
        ys = range(len(items))
        axes.barh([y + 0.2 for y in ys], [(i.mean or 0) / i.max_score if i.max_score else 0 for i in items],
                  height=0.4, color="#4878a8", label="mean score / max")
        axes.barh([y - 0.2 for y in ys], [i.full_share or 0 for i in items], height=0.4, color="#8fbf6f",
                  label="share at full marks")
        axes.scatter([i.discrimination if i.discrimination is not None else 0 for i in items], list(ys),
                     color="#c0392b", marker="D", zorder=3, label="discrimination (r with rest)")
        axes.set_yticks(list(ys), names)
        axes.invert_yaxis()
        axes.set_xlim(-1, 1.05)
        axes.axvline(0, color="grey", linewidth=0.5)
        axes.legend(loc="lower left", fontsize="small")
        axes.set_title("graded items")
        return "graded items"
    return _figure(draw, height=max(2.5, 0.45 * len(items) + 1.2))


# -- HTML --------------------------------------------------------------------------------------------------------

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:70em;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;
vertical-align:top}th{background:#f2f2f2}.flag{background:#fde2e1;color:#8b1a10;padding:0 .3em;border-radius:3px;
margin-right:.3em;white-space:nowrap}.note{background:#fff6d5;border-left:4px solid #e0b400;padding:.5em 1em}
pre{margin:0;font-size:12px;white-space:pre-wrap}mark{background:#ffe08a}.side{display:grid;
grid-template-columns:1fr 1fr;gap:1em}.side>div{border:1px solid #ddd;padding:.4em;overflow:auto}
img.figure{max-width:100%;display:block;margin:.5em 0}code{background:#f4f4f4}
"""


def _e(text) -> str:
    return html.escape(str(text))


def _table(header, rows) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _num(value, fmt="{:.2f}") -> str:
    return "–" if value is None else fmt.format(value)


def _marked(source: str, shared: set[str], release_lines: set[str]) -> str:
    out = []
    for line in source.splitlines():
        key = similarity.line_key(line)
        own = line.strip() and line.strip() not in release_lines and not line.strip().startswith("#")
        out.append(f"<mark>{_e(line)}</mark>" if own and key and key in shared else _e(line))
    return "<pre>" + "\n".join(out) + "</pre>"


def _side_by_side(report: AssignmentReport, pair: similarity.Pair) -> str:
    a, b = report.codes[pair.a], report.codes[pair.b]
    parts = [f"<h3>{_e(pair.a)} and {_e(pair.b)}: similarity {pair.score:.2f} "
             f"(robust z {pair.robust_z:.1f})</h3>"]
    for cell in sorted(set(a.cells) & set(b.cells)):
        def keys(code):
            return {similarity.line_key(line) for line in similarity.own_lines(code.cells[cell],
                                                                              report.release_lines).splitlines()
                    if line.strip()} - {""}
        shared = keys(a) & keys(b)
        if not shared:
            continue
        parts.append(f"<p><code>{_e(cell)}</code>: {len(shared)} lines alike (marked)</p><div class=side>"
                     f"<div><b>{_e(pair.a)}</b>{_marked(a.cells[cell], shared, report.release_lines)}</div>"
                     f"<div><b>{_e(pair.b)}</b>{_marked(b.cells[cell], shared, report.release_lines)}</div></div>")
    return "\n".join(parts)


def render_html(report: AssignmentReport) -> str:
    results = report.results
    maximum = max((r.max_score for r in results), default=0)
    scores = [r.score for r in results]
    statuses = Counter(str(r.status) for r in results)
    parts = [f"<!DOCTYPE html><html><head><meta charset=utf-8><title>Report: {_e(report.assignment)}</title>"
             f"<style>{_STYLE}</style></head><body><h1>What the grades say: {_e(report.assignment)}</h1>",
             f"<pre>{_e(report.summary())}</pre>"]

    parts.append("<h2>Scores and statuses</h2>")
    parts.append(_table(["submissions", "median", "mean", "max possible", *sorted(statuses)],
                        [[len(results), f"{statistics.median(scores):g}", f"{statistics.fmean(scores):.2f}",
                          f"{maximum:g}", *[statuses[s] for s in sorted(statuses)]]]))
    parts.append(_histogram(scores, maximum, "automatic score", "points"))
    broken = [r for r in results if r.status not in (Status.OK, Status.RENAMED)]
    if broken:
        parts.append("<p>Notebooks that did not grade normally:</p>" + _table(
            ["student", "notebook", "status", "message"],
            [[_e(r.student_id), _e(nb.name), _e(nb.status), f"<pre>{_e(nb.message[:300])}</pre>"]
             for r in broken for nb in r.notebooks if nb.status not in (Status.OK, Status.RENAMED)]))

    parts.append("<h2>Items</h2><p>Discrimination is the correlation of the item's score with the rest of the "
                 "score: near 0 or below, the item does not tell strong from weak students.</p>")
    parts.append(_item_figure(report.items))
    parts.append(_table(["item", "kind", "points", "graded", "mean", "at full marks", "discrimination", "flags"],
                        [[f"<code>{_e(i.grade_id)}</code>", i.kind, f"{i.max_score:g}", len(i.graded),
                          _num(i.mean), _num(i.full_share, "{:.0%}"), _num(i.discrimination),
                          "".join(f"<span class=flag>{_e(f)}</span>" for f in i.flags)] for i in report.items]))

    parts.append("<h2>Commonest failure messages</h2><p>One forum post per line answers that many students. "
                 "Blank answers (<code>NotImplementedError</code>) and notebooks that did not run are counted "
                 "apart; click a message for a full example.</p>")
    rows = []
    for item in report.items:
        if not item.common_failures:
            continue
        blank = sum(n for k, n, _ in item.common_failures if _NOT_ATTEMPTED.search(k))
        shown = [(n, example) for k, n, example in item.common_failures if not _NOT_ATTEMPTED.search(k)][:3]
        cells = "".join(f"<details><summary>{n} &times; {_e(example.strip().splitlines()[0][:160])}</summary>"
                        f"<pre>{_e(example[:1500])}</pre></details>" for n, example in shown)
        rows.append([f"<code>{_e(item.grade_id)}</code>", len(item.messages), blank, cells or "–"])
    parts.append(_table(["item", "failed", "blank or did not run", "commonest other messages"], rows)
                 if rows else "<p>No failures.</p>")

    parts.append("<h2>Grading time</h2>")
    times = [(r.student_id, nb.name, nb.seconds) for r in results for nb in r.notebooks]
    if times:
        parts.append(_histogram([t for _, _, t in times], None, "seconds per notebook", "seconds"))
        parts.append(f"<p>Total {sum(t for *_, t in times):.0f} s over {len(times)} notebooks; "
                     f"median {statistics.median(t for *_, t in times):.1f} s. Slowest:</p>")
        parts.append(_table(["student", "notebook", "seconds"],
                            [[_e(s), _e(n), f"{t:.1f}"] for s, n, t in sorted(times, key=lambda t: -t[2])[:5]]))

    parts.append("<h2>Manual grading (formgrader)</h2>")
    if report.manual is None:
        parts.append("<p>No gradebook found: nothing to say about manual grading.</p>")
    else:
        _, done, wanted = report.manual
        parts.append(f"<p>{done} of {wanted} written answers graded"
                     + (f" ({done / wanted:.0%})" if wanted else "") + ".</p>")

    parts.append("<h2>Similar submissions</h2>")
    parts.append(f'<p class=note>{_e(SIMILARITY_NOTE)}</p>')
    pair_scores = [p.score for p in report.pairs]
    if pair_scores:
        parts.append(f"<p>{len(pair_scores)} pair{'s' if len(pair_scores) != 1 else ''} compared on the students' own code (the release's lines "
                     f"removed; names, comments and the order of statements do not count). Cut-off from this "
                     f"class: {report.cut:.2f}.</p>")
        parts.append(_histogram(pair_scores, 1.0, "similarity of every pair", "similarity", mark=report.cut))
        if len(pair_scores) < 10:
            parts.append(f"<p>Only {len(pair_scores)} pair{'s' if len(pair_scores) != 1 else ''}: too few for the class's spread to mean much; "
                         f"read the cut-off as a floor.</p>")
    flagged = report.flagged_pairs
    parts.append(f"<p>{len(flagged)} pairs above the cut-off.</p>" if flagged else "<p>No pair above the cut-off.</p>")
    for pair in flagged:
        parts.append(_side_by_side(report, pair))
    close = [p for p in report.reference_pairs if p.flagged]
    if close:
        parts.append("<h3>Close to the reference solution</h3><p>Perhaps a leaked solution, perhaps the natural way "
                     "to write it.</p>" + _table(["student", "similarity"], [[_e(p.a), f"{p.score:.2f}"] for p in close]))
        for pair in close:
            parts.append(_side_by_side(report, pair))
    parts.append("</body></html>")
    return "\n".join(parts)


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

    def draw(axes):
        xs = range(len(assignments))
        for a_index, a in enumerate(assignments):
            axes.scatter([a_index] * len(shares[a]), shares[a], color="#4878a8", alpha=0.4, s=12)
        axes.plot(list(xs), [statistics.median(shares[a]) if shares[a] else 0 for a in assignments],
                  color="#c0392b", marker="o", label="median")
        axes.plot(list(xs), [statistics.fmean(shares[a]) if shares[a] else 0 for a in assignments],
                  color="#e69f00", marker="s", linestyle="--", label="mean")
        axes.set_xticks(list(xs), assignments, rotation=30, ha="right")
        axes.set_ylim(-0.05, 1.05)
        axes.set_ylabel("share of points")
        axes.legend()
        axes.set_title("the class over the assignments")
        return "the class over the assignments"

    page = (f"<!DOCTYPE html><html><head><meta charset=utf-8><title>Course report</title><style>{_STYLE}</style>"
            f"</head><body><h1>The course so far</h1>{_figure(draw, height=3.6)}"
            f"<p>Scores per student (automatic points; also in <code>scores.csv</code> for the LMS).</p>"
            + _table(["student", *assignments, "total", "max", "%"], [[_e(c) for c in row] for row in rows])
            + "</body></html>")
    atomic_write(folder / "report.html", page)
    summary = "\n".join(f"{a}: median {statistics.median(shares[a]):.0%} of {maxima[a]:g} points over "
                        f"{len(shares[a])} students" for a in assignments if shares[a])
    return folder / "scores.csv", folder / "report.html", summary
