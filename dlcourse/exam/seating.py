"""Who sits which version, and the grades of every version in one table.

:func:`seat_versions` gives each seat of a room its version so that neighbours differ;
:func:`plan_seating` seats the students (pure), :func:`write_seating` writes ``seating.csv``.
After grading, :func:`results_rows` checks each graded student against the seat (pure) and
:func:`exam_results` reads the versions' ``grades.csv`` and writes ``exams/NAME/grades.csv``.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from ..core.course import CourseLayout
from .metadata import ExamError
from .plan import Version

DEFAULT_ROOM = (10, 12)  # rows, columns of seats
SEATING_COLUMNS = ["seat", "row", "column", "version", "assignment", "student_id"]
RESULTS_COLUMNS = ["student_id", "version", "assignment", "score", "max_score", "status", "check"]


def seat_versions(rows: int, columns: int, versions: int) -> list[list[int]]:
    """The version (1..K) of each seat of a rows x columns room: neighbours to the side, in front and behind
    always differ (K >= 2), and diagonal ones too where K allows it (K = 2 and K = 3 cannot)."""
    if versions == 1:
        return [[1] * columns for _ in range(rows)]
    offsets = [(0, 1), (1, 0), (1, 1), (1, -1)]
    step = next((m for m in range(1, versions) if all((dr + dc * m) % versions for dr, dc in offsets)), 1)
    return [[(r + c * step) % versions + 1 for c in range(columns)] for r in range(rows)]


@dataclass
class Seat:
    name: str  # A1, B3, ...
    row: int  # from 1
    column: int  # from 1
    version: Version
    student: str  # "" for an empty seat

    def record(self) -> list:
        """The seat's row of seating.csv (:data:`SEATING_COLUMNS`)."""
        return [self.name, self.row, self.column, self.version.number, self.version.assignment, self.student]


def plan_seating(rows: int, columns: int, versions: list[Version], students: list[str]) -> list[Seat]:
    """Every seat of the room, row by row, with its version and the next student (in the order given)."""
    plan = seat_versions(rows, columns, len(versions))
    places = [(r, c) for r in range(rows) for c in range(columns)]
    if students and len(students) > len(places):
        raise ExamError(f"{len(students)} students but only {len(places)} seats ({rows} x {columns}); "
                        "give a larger --room")
    return [Seat(f"{chr(ord('A') + r) if r < 26 else r + 1}{c + 1}", r + 1, c + 1, versions[plan[r][c] - 1],
                 students[n] if n < len(students) else "") for n, (r, c) in enumerate(places)]


def write_seating(path: Path, rows: int, columns: int, versions: list[Version], students: list[str]) -> Path:
    """``seating.csv`` of :func:`plan_seating` (refused, and nothing written, if the room is too small)."""
    return write_seats(path, plan_seating(rows, columns, versions, students))


def write_seats(path: Path, seats: list[Seat]) -> Path:
    _write_csv(path, SEATING_COLUMNS, [seat.record() for seat in seats])
    return path


def read_seating(path: Path) -> dict[str, str]:
    """student_id -> the assignment (version) they sat, from a seating.csv."""
    with Path(path).open(newline="") as handle:
        return {row["student_id"]: row["assignment"] for row in csv.DictReader(handle) if row["student_id"]}


def results_rows(versions: list[dict], seating: dict[str, str], grades: dict[str, list[dict]]) -> list[list]:
    """The rows of the exam's grades.csv (:data:`RESULTS_COLUMNS`), sorted by student.

    ``versions`` as in versions.json, ``seating`` as :func:`read_seating` gives it (empty: no seating),
    ``grades`` the rows of each graded version's grades.csv by assignment. ``check`` says ``ok``, or flags
    a student graded in a version other than the seat's, one not in the seating list, and one seated but
    graded in no version.
    """
    rows, graded = [], set()
    for version in versions:
        for row in grades.get(version["assignment"], []):
            student = row["student_id"]
            graded.add(student)
            seated = seating.get(student, "")
            check = "ok" if not seating or seated == version["assignment"] else (
                f"seated for {seated}" if seated else "not in the seating list")
            rows.append([student, version["version"], version["assignment"], row["score"], row["max_score"],
                         row["status"], check])
    for student, assignment in sorted(seating.items()):
        if student not in graded:
            rows.append([student, "", assignment, "", "", "not graded", "no graded submission"])
    return sorted(rows, key=lambda r: r[0])


def exam_results(layout: CourseLayout, name: str) -> Path:
    """``exams/NAME/grades.csv``: every graded student of every version, with the version the seating gave.

    Reads each version's ``reports/<assignment>/grades.csv`` (``dlcourse grade``) and ``seating.csv``; a
    student graded in a version other than the seat's, or seated and graded in none, is flagged in the
    ``check`` column (:func:`results_rows`), for the examiner to look at before the grades go out.
    """
    out = layout.root / "exams" / name
    versions_file = out / "versions.json"
    if not versions_file.is_file():
        raise ExamError(f"there is no exam {name!r} built here ({versions_file} is missing): "
                        f"run `dlcourse exam build {name}` first")
    versions = json.loads(versions_file.read_text())["versions"]
    seating = read_seating(out / "seating.csv") if (out / "seating.csv").is_file() else {}
    grades = {}
    for version in versions:
        report = layout.reports / version["assignment"] / "grades.csv"
        if report.is_file():
            with report.open(newline="") as handle:
                grades[version["assignment"]] = list(csv.DictReader(handle))
    path = out / "grades.csv"
    _write_csv(path, RESULTS_COLUMNS, results_rows(versions, seating, grades))
    return path


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
