"""The course's roster (``roster.csv``) and the groups a hand-in names.

``roster.csv`` in the course root, one row per student::

    student_id,name,email,lms_id,github
    alovelace,Ada Lovelace,ada@example.org,1201,ada-l

``student_id`` is nbgrader's id (the folder name under ``submitted/``);
``lms_id`` (Moodle's participant id or Canvas's user id) and ``github`` are
optional. Names are matched tolerantly: case, accents, punctuation and the
order of given and family names do not matter ("lovelace ada" is "Ada
Lovelace"), and a name that is part of one roster name ("Ada Lovelace" for
"Ada Augusta Lovelace") is that student; a name that fits two students is
*ambiguous* and matches nobody (it is reported, never guessed).

``reports/<assignment>/groups.csv`` (written by ``dlcourse collect``) says
which students share a hand-in: the group's *representative* has the
folder in ``submitted/`` and is graded; ``dlcourse grade`` records the
representative's result for every member.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from ..core.config import Dlcourse, dlcourse_settings
from ..core.course import CourseLayout
from ..core.groups import (COLLECT_WARNINGS_NAME, GROUPS_NAME, Group, groups_path, read_groups,  # noqa: F401
                           write_groups)  # (the groups' file is core's: grading reads it, collect writes it)

ROSTER_NAME = "roster.csv"
ROSTER_COLUMNS = ("student_id", "name", "email", "lms_id", "github")
#: The group size a course requires unless ``nbgrader_config.py`` sets ``c.Dlcourse.group_size``.
DEFAULT_GROUP_SIZE = Dlcourse.group_size.default_value


class RosterError(Exception):
    """The roster is missing or malformed; the message says what to fix."""


def name_tokens(text: str) -> tuple[str, ...]:
    """``"Lovelace, Ádá"`` -> ``("ada", "lovelace")``: accents, case, punctuation and order dropped."""
    ascii_text = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode()
    return tuple(sorted(t for t in re.split(r"[^a-z0-9]+", ascii_text.casefold()) if t))


def squashed(text: str) -> str:
    """``"Lovelace Ada"`` -> ``"lovelaceada"`` (Canvas writes names this way in its file names)."""
    ascii_text = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "", ascii_text.casefold())


@dataclass(frozen=True)
class Student:
    student_id: str
    name: str
    email: str = ""
    lms_id: str = ""
    github: str = ""

    @property
    def given_and_family(self) -> tuple[str, str]:
        """("Ada", "Lovelace"): the last word is taken as the family name."""
        words = self.name.split()
        return (" ".join(words[:-1]), words[-1]) if len(words) > 1 else ("", self.name)


@dataclass
class Match:
    """What a name (or id) given in a hand-in matched on the roster."""

    text: str
    student: Student | None = None
    candidates: list[Student] = field(default_factory=list)  # more than one: ambiguous

    @property
    def problem(self) -> str:
        if self.student is not None:
            return ""
        if len(self.candidates) == 1:
            only = self.candidates[0]
            return f"name {self.text!r} is incomplete: it could be {only.name} ({only.student_id}); write the full name"
        if self.candidates:
            return (f"name {self.text!r} is ambiguous: it fits "
                    + " and ".join(f"{s.name} ({s.student_id})" for s in self.candidates))
        return f"name {self.text!r} is not on the roster"


class Roster:
    def __init__(self, students: list[Student]):
        self.students = list(students)
        self.by_id = {s.student_id: s for s in self.students}
        if len(self.by_id) != len(self.students):
            seen, twice = set(), set()
            for s in self.students:
                (twice if s.student_id in seen else seen).add(s.student_id)
            raise RosterError(f"{ROSTER_NAME}: student_id given twice: {', '.join(sorted(twice))}")
        self.order = {s.student_id: i for i, s in enumerate(self.students)}

    @classmethod
    def read(cls, path: Path) -> "Roster":
        path = Path(path)
        if not path.is_file():
            raise RosterError(f"no roster: write {path} with the columns {','.join(ROSTER_COLUMNS)} "
                              "(lms_id and github may be empty)")
        text = path.read_text(encoding="utf-8-sig")
        rows = list(csv.DictReader(io.StringIO(text)))
        header = next(csv.reader(io.StringIO(text)), [])
        missing = [c for c in ("student_id", "name") if c not in header]
        if missing:
            raise RosterError(f"{path}: the columns {', '.join(missing)} are missing (header: {', '.join(header)})")
        students = []
        for number, row in enumerate(rows, start=2):
            student_id = (row.get("student_id") or "").strip()
            if not student_id:
                raise RosterError(f"{path}, line {number}: empty student_id")
            students.append(Student(student_id, " ".join((row.get("name") or "").split()),
                                    (row.get("email") or "").strip(), (row.get("lms_id") or "").strip(),
                                    (row.get("github") or "").strip()))
        return cls(students)

    @classmethod
    def of_course(cls, layout: CourseLayout) -> "Roster":
        return cls.read(layout.root / ROSTER_NAME)

    def sort_ids(self, ids) -> list[str]:
        return sorted(ids, key=lambda s: (self.order.get(s, len(self.order)), s))

    # -- matching ---------------------------------------------------------

    def by_lms_id(self, lms_id: str) -> Student | None:
        return next((s for s in self.students if s.lms_id and s.lms_id == str(lms_id).strip()), None)

    def by_github(self, user: str) -> Student | None:
        return next((s for s in self.students if s.github and s.github.casefold() == user.strip().casefold()), None)

    def match_name(self, text: str) -> Match:
        """The one student ``text`` names (a name, a student_id, an e-mail address or a GitHub user)."""
        text = " ".join((text or "").split())
        for student in self.students:  # ids and addresses are exact
            if text and text.casefold() in {student.student_id.casefold(), student.email.casefold()}:
                return Match(text, student)
        tokens = name_tokens(text)
        if not tokens:
            return Match(text)
        exact = [s for s in self.students if name_tokens(s.name) == tokens]
        if len(exact) == 1:
            return Match(text, exact[0])
        if len(exact) > 1:
            return Match(text, None, exact)
        wanted = set(tokens)
        partial = [s for s in self.students if wanted <= set(name_tokens(s.name))]
        if len(partial) == 1 and len(wanted) >= 2:  # "Ada Lovelace" for "Ada Augusta Lovelace"; "Ada" alone is not
            return Match(text, partial[0])
        if partial:
            return Match(text, None, partial)
        squash = squashed(text)  # "lovelaceada" (Canvas) or "adalovelace"
        glued = [s for s in self.students
                 if squash and squash in {squashed(s.given_and_family[1] + s.given_and_family[0]), squashed(s.name)}]
        if len(glued) == 1:
            return Match(text, glued[0])
        return Match(text, None, glued if len(glued) > 1 else [])


# --------------------------------------------------------------------------
# The course's group policy and the groups of one assignment.


def required_group_size(layout: CourseLayout) -> int:
    """``c.Dlcourse.group_size`` of ``nbgrader_config.py`` (:class:`dlcourse.core.config.Dlcourse`; its default is
    :data:`DEFAULT_GROUP_SIZE`). A value that is not a whole number from 1 up raises ``SettingError``."""
    return dlcourse_settings(layout.root).group_size
