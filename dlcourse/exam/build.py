"""``dlcourse exam build``: what a build would write and remove (:func:`plan_build`), then doing it
(:func:`write_build`); :func:`build_exam` is the two in a row.

The plan checks everything that can be refused (the name, an assignment of that name that is not an exam,
the masters' metadata, a room too small for the students) before anything is written or removed.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from ..core.course import CourseLayout
from .metadata import CHOICES, ExamError
from .notebook import exam_notebook
from .paper import write_pdfs
from .plan import DEFAULT_DURATION, Version, plan_versions, points_text
from .seating import DEFAULT_ROOM, Seat, plan_seating, write_seats

log = logging.getLogger(__name__)


@dataclass
class BuiltExam:
    versions: list[Version]
    files: list[Path]

    def summary(self, root: Path) -> str:
        version = self.versions[0]
        points = version.section_points()
        lines = [f"exam {version.name}: {len(version.items)} coding questions ({points_text(points['coding'])}), "
                 f"{len(version.open_questions)} open ({points_text(points['open'])}), {len(version.choices)} "
                 f"single choice ({points_text(points['choice'])}); total {points_text(version.total)}; "
                 f"{len(self.versions)} version(s)"]
        lines += [f"wrote {p.relative_to(root) if p.is_relative_to(root) else p}" for p in self.files]
        return "\n".join(lines)


@dataclass
class ExamOptions:
    """What ``dlcourse exam build`` may be told, with its defaults (the one place they live: the CLI passes on
    only what it was given)."""
    items: list[str] | None = None  # exam items (default: DEFAULT_ITEMS that the masters have)
    open_questions: list[str] | None = None  # written cells' grade_ids (default: every open question)
    papers: list[str] | None = None  # A7's reading questions (default: all)
    seed: int = 0
    variants: int = 1
    duration: int = DEFAULT_DURATION  # minutes
    pdf: bool = True
    room: tuple[int, int] = DEFAULT_ROOM  # rows, columns (with variants > 1)
    students: list[str] | None = None  # seated in this order (with variants > 1)


@dataclass
class BuildPlan:
    """What :func:`write_build` does: the versions to write, the files of an earlier build to remove."""
    layout: CourseLayout
    versions: list[Version]
    out: Path  # exams/NAME
    stale: list[Path] = field(default_factory=list)  # an earlier build's files this one would not overwrite
    seats: list[Seat] = field(default_factory=list)  # with versions: the room, seat by seat
    pdf: bool = True


def plan_build(layout: CourseLayout, name: str, options: ExamOptions | None = None) -> BuildPlan:
    """What building exam ``name`` would write and remove; refuses (:class:`ExamError`) what it cannot build."""
    options = options or ExamOptions()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", name):
        raise ExamError(f"exam name {name!r}: use letters, digits, '_' and '-'")
    taken = [a for a in layout.assignments() if a == name or a.startswith(name + "_v")]
    ours = [a for a in taken if _is_exam(layout, a)]
    if set(taken) - set(ours):
        raise ExamError(f"source/{sorted(set(taken) - set(ours))[0]} is an assignment, not an exam; "
                        "choose another name")
    versions = plan_versions(layout.root, name, items=options.items, open_questions=options.open_questions,
                             papers=options.papers, seed=options.seed, variants=options.variants,
                             duration=options.duration)
    many = options.variants > 1
    seats = plan_seating(*options.room, versions, options.students or []) if many else []
    out = layout.root / "exams" / name
    # what an earlier build with another number of versions wrote; rebuilding with fewer versions must not
    # leave an old one gradable
    earlier = [out / "exam.pdf", out / "key.pdf"] if many else [out / "seating.csv", *out.glob("v*/*.pdf")]
    earlier += [path for assignment in ours for path in (layout.source / assignment).glob("*.ipynb")]
    return BuildPlan(layout, versions, out, [p for p in earlier if p.is_file()], seats, options.pdf)


def write_build(plan: BuildPlan) -> BuiltExam:
    """Removes the plan's stale files, then writes each version's master notebook (with the figures its
    statements link to), its PDFs, ``versions.json`` and, with versions, ``seating.csv``."""
    plan.out.mkdir(parents=True, exist_ok=True)
    for path in plan.stale:
        log.info("removing %s (an earlier build's)", path)
        path.unlink(missing_ok=True)
    files = []
    for version in plan.versions:
        folder = plan.layout.source / version.assignment
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "exam.ipynb"
        nbformat.write(exam_notebook(version), str(path))
        files.append(path)
        for media in [i.media for i in version.items] + [q.media for q in version.open_questions]:
            media.copy_to(folder)  # the figures the statements link to, for the release and the PDFs
        if plan.pdf:
            target = plan.out if version.of == 1 else plan.out / f"v{version.number}"
            files += write_pdfs(version, target, files_dir=folder)
    files.append(_write_json(plan.out / "versions.json", versions_record(plan.versions)))
    if plan.seats:
        files.append(write_seats(plan.out / "seating.csv", plan.seats))
    return BuiltExam(plan.versions, files)


def build_exam(layout: CourseLayout, name: str, **options) -> BuiltExam:
    """Writes the exam's PDFs, its master notebook(s) and, with versions, the seating list (``options``:
    the fields of :class:`ExamOptions`)."""
    return write_build(plan_build(layout, name, ExamOptions(**options)))


def _is_exam(layout: CourseLayout, assignment: str) -> bool:
    for path in layout.masters(assignment):
        if "exam" in nbformat.read(str(path), as_version=4).metadata.get("dlcourse", {}):
            return True
    return False


def exam_assignments(layout: CourseLayout) -> list[str]:
    """The assignments of ``source/`` that are exams built here (their notebook's metadata says so)."""
    return [name for name in layout.assignments() if _is_exam(layout, name)]


def versions_record(versions: list[Version]) -> dict:
    """What versions.json holds: each version's assignment, questions, option order and answers."""
    return {"name": versions[0].name, "seed": versions[0].seed, "versions": [
        {"version": v.number, "assignment": v.assignment, "total": v.total,
         "items": [i.key for i in v.items], "open": [q.key for q in v.open_questions],
         "choices": [{"paper": c.question.key, "order": [CHOICES[i] for i in c.order], "answer": c.answer}
                     for c in v.choices]} for v in versions]}


def _write_json(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path

