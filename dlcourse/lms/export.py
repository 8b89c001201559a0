"""``dlcourse export ASSIGNMENT --to moodle|canvas|csv``: grades and feedback in the LMS's import format.

Each student's grade is their automatic points plus the points given by hand
in formgrader; a group member gets their group's (the representative's,
see :mod:`dlcourse.grading.groups`), and the manual points are copied to
every member's gradebook entry. Export refuses while written answers wait
for manual grading, unless ``partial=True`` (``--partial``).

What it writes, under ``reports/<assignment>/export/``:

* ``moodle/grading_worksheet.csv``: Moodle's offline grading worksheet
  (Identifier ``Participant <lms_id>``, Full name, Email address, Status,
  Grade, Maximum Grade, Grade can be changed, Last modified (submission),
  Last modified (grade), Feedback comments), and ``moodle/feedback_files.zip``:
  each student's feedback named ``<Full name>_<lms_id>_assignfeedback_file_<notebook>.html``,
  as Moodle's "Upload multiple feedback files in a zip" expects. With a
  ``template`` (the worksheet downloaded from Moodle), its rows and columns
  are kept and only Grade (scaled to its Maximum Grade) and Feedback comments
  are filled in.
* ``canvas/gradebook_import.csv``: Canvas's gradebook import (Student, ID,
  SIS User ID, SIS Login ID, Section, ``<assignment> (<Canvas assignment id>)``),
  or the gradebook exported from Canvas (``template``) with the assignment's
  column filled in; ``canvas/feedback/<lastnamefirstname>_<user id>/`` the
  feedback files (Canvas has no bulk feedback-file import: attach them in
  SpeedGrader, or with the API).
* ``csv/grades.csv``: one row per roster student with every number.

See ``docs/lms.md`` for where these formats come from.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ..core.course import CourseLayout
from ..grading.reports import load_result
from ..core.notebook import atomic_write
from .roster import Roster, Student, read_groups

TARGETS = ("moodle", "canvas", "csv")
MOODLE_COLUMNS = ["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade",
                  "Grade can be changed", "Last modified (submission)", "Last modified (grade)", "Feedback comments"]
CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
CSV_COLUMNS = ["student_id", "name", "email", "lms_id", "group", "score", "max_score", "auto_score", "auto_max",
               "manual_score", "manual_max", "status", "late", "feedback_files"]


class ExportRefused(Exception):
    """The export cannot be written (yet); the message says why and what to do."""


@dataclass
class GradeRow:
    """One roster student's grade, as every export format needs it."""

    student: Student
    group: str = ""
    handed_in: bool = False
    auto_score: float = 0.0
    auto_max: float = 0.0
    manual_score: float = 0.0
    manual_max: float = 0.0
    manual_missing: int = 0  # written answers not graded yet
    status: str = "no hand-in"
    late: bool = False
    submitted_at: str = ""
    feedback: list[Path] = field(default_factory=list)

    @property
    def score(self) -> float:
        return self.auto_score + self.manual_score

    @property
    def max_score(self) -> float:
        return self.auto_max + self.manual_max

    def comment(self) -> str:
        if not self.handed_in:
            return ""
        text = f"Automatic tests {self.auto_score:g}/{self.auto_max:g}"
        if self.manual_max:
            text += f", written answers {self.manual_score:g}/{self.manual_max:g}"
            if self.manual_missing:
                text += f" ({self.manual_missing} not graded yet)"
        if self.group and "+" in self.group:
            text += f"; group {self.group}"
        if self.status != "ok":
            text += f"; grading status: {self.status}"
        return text + "." + (" Details in the feedback file." if self.feedback else "")


@dataclass
class ExportReport:
    rows: list[GradeRow]
    files: list[Path]
    warnings: list[str]


def _collect_times(layout: CourseLayout, assignment: str) -> dict[str, tuple[str, bool]]:
    """student -> (handed in, late) from ``reports/<assignment>/collect.csv``."""
    path = layout.reports / assignment / "collect.csv"
    times = {}
    if path.is_file():
        with open(path, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if row["action"] in ("collected", "kept"):
                    for student in row["student_ids"].split():
                        times[student] = (row["handed_in"], row["late"] == "yes")
    return times


def share_manual_scores(layout: CourseLayout, assignment: str, groups) -> dict[str, dict]:
    """Each group's manual points (given on the representative) copied to its members in the gradebook.

    Returns student -> {(notebook, grade_id): points} for everyone graded, and whether each still
    needs manual grading.
    """
    from nbgrader.api import MissingEntry

    from ..grading.gradebook import open_gradebook

    scores: dict[str, dict] = {}
    waiting: dict[str, int] = {}
    with open_gradebook(layout) as gradebook:
        for submission in gradebook.assignment_submissions(assignment):
            student = submission.student.id
            group = groups.get(student)
            if group is not None and group.representative != student:
                continue
            scores[student] = {(nb.name, g.name): g.manual_score for nb in submission.notebooks for g in nb.grades
                               if g.manual_score is not None}
            waiting[student] = sum(1 for nb in submission.notebooks for g in nb.grades if g.needs_manual_grade)
        for student, group in groups.items():
            if group.representative == student or group.representative not in scores:
                continue
            for (notebook, grade_id), value in scores[group.representative].items():
                try:
                    grade = gradebook.find_grade(grade_id, notebook, assignment, student)
                except MissingEntry:
                    continue
                grade.manual_score = value
                grade.needs_manual_grade = False
            scores[student] = scores[group.representative]
            waiting[student] = waiting[group.representative]
        gradebook.db.commit()
    return {s: {"scores": scores[s], "waiting": waiting.get(s, 0)} for s in scores}


def grade_rows(layout: CourseLayout, assignment: str, roster: Roster, manual: dict[str, dict]) -> list[GradeRow]:
    groups = read_groups(layout, assignment)
    times = _collect_times(layout, assignment)
    rows = []
    for student in roster.students:
        row = GradeRow(student, groups[student.student_id].name if student.student_id in groups else "")
        result = load_result(layout.result_path(student.student_id, assignment), with_notebooks=False)
        if result is not None:
            given = manual.get(student.student_id, {"scores": {}, "waiting": 0})
            row.handed_in = True
            row.status = str(result.status)
            row.auto_score, row.auto_max = result.score, result.max_score
            for notebook in result.notebooks:
                for cell in notebook.cells:
                    if cell.kind == "manual":
                        row.manual_max += cell.max_score
                        row.manual_score += given["scores"].get((notebook.name, cell.grade_id)) or 0.0
            row.manual_missing = given["waiting"]
            row.feedback = sorted((layout.feedback / student.student_id / assignment).glob("*.html"))
        row.submitted_at, row.late = times.get(student.student_id, ("", False))
        rows.append(row)
    return rows


# --------------------------------------------------------------------------
# The formats. Pure functions of the rows, so the tests read them back.


def _moodle_time(text: str) -> str:
    """Moodle's worksheet dates: ``Tuesday, 1 December 2026, 12:00 PM``."""
    if not text:
        return "-"
    moment = dt.datetime.fromisoformat(text)
    return f"{moment:%A}, {moment.day} {moment:%B %Y}, {moment:%I:%M %p}"


def _fraction(value: float, of: float, scale: float) -> str:
    return f"{(value / of * scale) if of else 0.0:.2f}"


def moodle_worksheet(rows: list[GradeRow], template: str | None = None, now: dt.datetime | None = None) -> str:
    """Moodle's offline grading worksheet; with ``template`` (Moodle's own download) only Grade and comments change."""
    now = now or dt.datetime.now().astimezone()
    by_lms = {r.student.lms_id: r for r in rows if r.student.lms_id}
    by_email = {r.student.email.casefold(): r for r in rows if r.student.email}
    out = io.StringIO()
    if template is not None:
        reader = csv.DictReader(io.StringIO(template.lstrip("\ufeff")))
        columns = list(reader.fieldnames or [])
        missing = [c for c in ("Identifier", "Grade") if c not in columns]
        if missing:
            raise ExportRefused(f"the template is not a Moodle grading worksheet: no column {', '.join(missing)}")
        writer = csv.DictWriter(out, columns, lineterminator="\n")
        writer.writeheader()
        for line in reader:
            pid = re.sub(r"\D", "", line.get("Identifier", ""))
            row = by_lms.get(pid) or by_email.get((line.get("Email address") or "").casefold())
            if row is not None and row.handed_in:
                try:
                    scale = float(line.get("Maximum Grade") or row.max_score)
                except ValueError:
                    scale = row.max_score
                line["Grade"] = _fraction(row.score, row.max_score, scale)
                if "Feedback comments" in line:
                    line["Feedback comments"] = row.comment()
                if "Last modified (grade)" in line:
                    line["Last modified (grade)"] = _moodle_time(now.isoformat())
            writer.writerow(line)
        return out.getvalue()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(MOODLE_COLUMNS)
    for row in rows:
        writer.writerow([f"Participant {row.student.lms_id}", row.student.name, row.student.email,
                         "Submitted for grading" if row.handed_in else "No submission",
                         f"{row.score:.2f}" if row.handed_in else "", f"{row.max_score:.2f}", "Yes",
                         _moodle_time(row.submitted_at), _moodle_time(now.isoformat()) if row.handed_in else "-",
                         row.comment()])
    return out.getvalue()


def moodle_feedback_name(student: Student, file_name: str) -> str:
    """``Ada Lovelace_1201_assignfeedback_file_a1.html``: Moodle reads the participant id after the first ``_``."""
    name = " ".join(student.name.replace("_", " ").split()) or student.student_id
    return f"{name}_{student.lms_id}_assignfeedback_file_{file_name}"


def canvas_column(assignment: str, canvas_id: str | None) -> str:
    return f"{assignment} ({canvas_id})" if canvas_id else assignment


def canvas_csv(rows: list[GradeRow], assignment: str, canvas_id: str | None = None,
               template: str | None = None) -> str:
    """Canvas's gradebook import CSV; with ``template`` (Canvas's export) the assignment's column is filled."""
    by_id = {r.student.lms_id: r for r in rows if r.student.lms_id}
    out = io.StringIO()
    if template is not None:
        reader = csv.DictReader(io.StringIO(template.lstrip("\ufeff")))
        columns = list(reader.fieldnames or [])
        wanted = [c for c in columns if canvas_id and c.endswith(f"({canvas_id})")] or \
                 [c for c in columns if c == assignment or c.startswith(f"{assignment} (")]
        if "ID" not in columns or len(wanted) != 1:
            raise ExportRefused(f"cannot find the column of {assignment!r} in the Canvas gradebook "
                                f"(columns: {', '.join(columns)}); give --lms-assignment-id")
        writer = csv.DictWriter(out, columns, lineterminator="\n")
        writer.writeheader()
        for line in reader:
            row = by_id.get((line.get("ID") or "").strip())
            if row is not None and row.handed_in:
                line[wanted[0]] = f"{row.score:g}"
            writer.writerow(line)
        return out.getvalue()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CANVAS_COLUMNS + [canvas_column(assignment, canvas_id)])
    writer.writerow(["    Points Possible", "", "", "", "", f"{rows[0].max_score:g}" if rows else ""])
    for row in rows:
        given, family = row.student.given_and_family
        writer.writerow([f"{family}, {given}" if given else family, row.student.lms_id, row.student.student_id,
                         row.student.email, "", f"{row.score:g}" if row.handed_in else ""])
    return out.getvalue()


def plain_csv(rows: list[GradeRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow([r.student.student_id, r.student.name, r.student.email, r.student.lms_id, r.group,
                         f"{r.score:g}" if r.handed_in else "", f"{r.max_score:g}", f"{r.auto_score:g}",
                         f"{r.auto_max:g}", f"{r.manual_score:g}", f"{r.manual_max:g}", r.status,
                         "yes" if r.late else "no", " ".join(p.name for p in r.feedback)])
    return out.getvalue()


def _canvas_folder(student: Student) -> str:
    given, family = student.given_and_family
    return re.sub(r"[^a-z0-9]", "", (family + given).casefold()) + f"_{student.lms_id or student.student_id}"


# --------------------------------------------------------------------------
# The command.


def export(layout: CourseLayout, assignment: str, target: str, *, partial: bool = False,
           template: Path | None = None, canvas_id: str | None = None, feedback: bool = True) -> ExportReport:
    """The whole ``dlcourse export``: gradebook, feedback, and the files for ``target``."""
    if target not in TARGETS:
        raise ExportRefused(f"unknown target {target!r} (one of {', '.join(TARGETS)})")
    roster = Roster.of_course(layout)
    if not layout.result_paths(assignment):
        raise ExportRefused(f"nothing graded for {assignment} yet; run `dlcourse grade {assignment}` first")
    groups = read_groups(layout, assignment)
    manual = share_manual_scores(layout, assignment, groups)
    waiting = sorted(s for s, m in manual.items() if m["waiting"] and (s not in groups or groups[s].representative == s))
    if waiting and not partial:
        raise ExportRefused(f"manual grading of {assignment} is not finished: {len(waiting)} submission(s) still "
                            f"have written answers without points ({', '.join(waiting[:10])}"
                            f"{', ...' if len(waiting) > 10 else ''}); grade them in formgrader, or pass "
                            "--partial to export the points given so far")
    if feedback:
        from ..insight.feedback import write_assignment_feedback

        write_assignment_feedback(layout, assignment)
    rows = grade_rows(layout, assignment, roster, manual)
    warnings = []
    graded_ids = {p.parent.parent.name for p in layout.result_paths(assignment)}
    strangers = sorted(graded_ids - set(roster.by_id))
    if strangers:
        warnings.append(f"graded but not on the roster, so not exported: {', '.join(strangers)}")
    folder = layout.reports / assignment / "export" / target
    template_text = Path(template).read_text(encoding="utf-8-sig") if template else None
    files = []
    if target == "moodle":
        no_id = [r.student.student_id for r in rows if r.handed_in and not r.student.lms_id]
        if no_id and template_text is None:
            warnings.append(f"no lms_id (Moodle participant id) in roster.csv for {', '.join(no_id)}: Moodle "
                            "cannot match their rows; fill the column or pass --template")
        atomic_write(folder / "grading_worksheet.csv", moodle_worksheet(rows, template_text))
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
            for row in rows:
                for path in row.feedback if row.student.lms_id else []:
                    bundle.write(path, moodle_feedback_name(row.student, path.name))
        atomic_write(folder / "feedback_files.zip", buffer.getvalue())
        files += [folder / "grading_worksheet.csv", folder / "feedback_files.zip"]
    elif target == "canvas":
        atomic_write(folder / "gradebook_import.csv", canvas_csv(rows, assignment, canvas_id, template_text))
        files.append(folder / "gradebook_import.csv")
        for row in rows:
            for path in row.feedback:
                atomic_write(folder / "feedback" / _canvas_folder(row.student) / path.name, path.read_bytes())
        files.append(folder / "feedback")
    else:
        atomic_write(folder / "grades.csv", plain_csv(rows))
        files.append(folder / "grades.csv")
    if waiting:
        warnings.append(f"PARTIAL: {len(waiting)} submission(s) exported with written answers not graded yet")
    no_feedback = [r.student.student_id for r in rows if r.handed_in and not r.feedback]
    if no_feedback:
        warnings.append(f"no feedback file for {', '.join(no_feedback)}")
    return ExportReport(rows, files, warnings)
