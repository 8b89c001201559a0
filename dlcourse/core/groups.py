"""Who handed in together: ``reports/<assignment>/groups.csv``.

``dlcourse collect`` (:mod:`dlcourse.lms.collect`) writes it: the group's
*representative* has the folder in ``submitted/`` and is graded; ``dlcourse
grade`` (:mod:`dlcourse.grading.groups`) reads it and records the
representative's result for every member. The file's format lives here, in
``core``, because both sides use it and neither should import the other.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from .course import CourseLayout
from .notebook import atomic_write

GROUPS_NAME = "groups.csv"
#: What ``dlcourse collect`` warned about, repeated in ``WARNINGS.txt`` by ``dlcourse grade``.
COLLECT_WARNINGS_NAME = "collect-warnings.txt"


@dataclass(frozen=True)
class Group:
    name: str
    representative: str
    members: tuple[str, ...]


def groups_path(layout: CourseLayout, assignment: str) -> Path:
    return layout.reports / assignment / GROUPS_NAME


def write_groups(layout: CourseLayout, assignment: str, groups: list[Group]) -> Path:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["group", "student_id", "representative"])
    for group in groups:
        for member in group.members:
            writer.writerow([group.name, member, group.representative])
    path = groups_path(layout, assignment)
    atomic_write(path, out.getvalue())
    return path


def read_groups(layout: CourseLayout, assignment: str) -> dict[str, Group]:
    """student_id -> their group, from ``reports/<assignment>/groups.csv`` (empty when there is none)."""
    path = groups_path(layout, assignment)
    if not path.is_file():
        return {}
    rows: dict[str, list[tuple[str, str]]] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            rows.setdefault(row["group"], []).append((row["student_id"], row["representative"]))
    groups = {}
    for name, members in rows.items():
        group = Group(name, members[0][1], tuple(m for m, _ in members))
        for member in group.members:
            groups[member] = group
    return groups
