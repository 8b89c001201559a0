"""``dlcourse collect ASSIGNMENT FROM``: an LMS download into nbgrader's ``submitted/``.

``FROM`` is one of (found out from what it holds, or ``--source``):

* **moodle**: the zip of Moodle's "Download all submissions": a folder (or a
  file-name prefix) per participant, ``Full Name_<participant id>_assignsubmission_file_``;
* **canvas**: the zip of Canvas's "Download Submissions": files named
  ``lastnamefirstname[_LATE]_<user id>_<submission id>_<file name>``;
* **github**: a folder of GitHub Classroom repositories as ``gh classroom
  clone student-repos`` writes them: ``<assignment>-<user or team>/``;
* **handin**: a folder of ``dlcourse handin`` zips (``<assignment>_<names>.zip``).

A hand-in may hold the notebooks and PDFs themselves or a ``dlcourse handin``
zip. Its group is the names cell of its notebook (:func:`dlcourse.student.names.read_names`),
matched to ``roster.csv``; without a names cell, the LMS's own account (the
participant, the Canvas user, the GitHub user) is the student. The group's
hand-in goes to ``submitted/<representative>/<assignment>/`` (the member
first on the roster), with ``.dlcourse-collected.json`` (when, from where,
who); ``reports/<assignment>/groups.csv`` lists the members.

For each student the newest hand-in wins, also against what an earlier
collect put in ``submitted/``; an older one is reported, never copied over
a newer one. Everything is written to ``reports/<assignment>/collect.csv``;
what needs a person (a name not on the roster or ambiguous, a student in two
groups, two hand-ins for one student, a group smaller than the course
requires, a hand-in without a notebook) also to ``WARNINGS.txt``.

The readers of the four layouts are in :mod:`dlcourse.lms.sources`. Here:
:func:`plan_collect` matches what they read to the roster and decides, writing
nothing (a :class:`CollectPlan`: the rows of collect.csv, the warnings, the
groups and which hand-in each gets); :func:`write_collect` carries a plan out.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from ..core.course import CourseLayout
from ..core.notebook import atomic_write
from ..student.names import HandinError, parse_names, read_names
from .pdfs import add_missing_pdfs
from .roster import COLLECT_WARNINGS_NAME, Group, Roster, required_group_size, write_groups
# the readers and what they return; importable from here as before
from .sources import (KEPT_SUFFIXES, SOURCES, CollectError, Handin, as_aware,  # noqa: F401
                      detect_source, read_canvas, read_download, read_github, read_handin_zips, read_moodle)

COLLECTED_NAME = ".dlcourse-collected.json"
REPORT_COLUMNS = ["source", "origin", "handed_in", "late", "names", "student_ids", "group", "representative",
                  "action", "reason"]


@dataclass
class CollectReport:
    rows: list[dict]
    warnings: list[str]
    groups: list[Group]
    files: list[Path]


@dataclass
class CollectPlan:
    """What a collect would do; :func:`write_collect` does it."""

    layout: CourseLayout
    assignment: str
    earlier: list[Handin]  # what earlier collects put in submitted/ (moved aside, then kept or removed)
    rows: list[dict] = field(default_factory=list)  # collect.csv
    warnings: list[str] = field(default_factory=list)  # WARNINGS.txt (in order, without repeats)
    groups: list[Group] = field(default_factory=list)
    placements: list[tuple[Handin, Group]] = field(default_factory=list)  # each group's hand-in


def previous_handins(layout: CourseLayout, assignment: str) -> tuple[list[Handin], set[str]]:
    """What earlier collects put in ``submitted/``, and the students whose folders were put there by hand."""
    earlier, by_hand = [], set()
    if not layout.submitted.is_dir():
        return earlier, by_hand
    for student in layout.students(assignment):
        folder = layout.submission_dir(student, assignment)
        stamp_file = folder / COLLECTED_NAME
        if not stamp_file.is_file():
            by_hand.add(student)
            continue
        data = json.loads(stamp_file.read_text())
        handin = Handin("previous", data.get("origin", ""), {}, dt.datetime.fromisoformat(data["handed_in"]),
                        folder=folder)
        handin.members = list(data.get("claimed", data.get("members", [student])))  # all it named, not what it won
        handin.names = list(data.get("names", []))
        handin.problems = list(data.get("problems", []))
        handin.marked_late = bool(data.get("marked_late", False))
        handin.source = data.get("source", "previous")
        earlier.append(handin)
    return earlier, by_hand


# --------------------------------------------------------------------------
# Matching to the roster and choosing, per student, the newest hand-in.


def _notebooks(handin: Handin) -> dict[str, bytes]:
    return {n: d for n, d in handin.files.items() if n.lower().endswith(".ipynb")}


def match_members(handin: Handin, roster: Roster) -> None:
    """Fill ``names``, ``members`` and ``problems`` from the names cell (else the LMS's account)."""
    text = None
    for name, data in sorted(_notebooks(handin).items()):
        try:
            text = read_names(nbformat.reads(data.decode("utf-8"), as_version=4))
        except HandinError as error:
            handin.problems.append(f"{name}: {error}")
        except Exception as error:  # not a notebook: grading reports it; the names come from the LMS
            handin.problems.append(f"{name} cannot be read as a notebook ({type(error).__name__})")
        if text is not None and text.strip():
            break
    names: list[str] = []
    if text is not None and text.strip():
        try:
            names = parse_names(text)
        except HandinError:  # e.g. three names: list them all, the group-size check reports it
            names = [" ".join(p.split()) for p in re.split(r"[,;\n&]|\s+and\s+", text) if p.strip()]
    handin.names = names
    members = []
    for name in names:
        match = roster.match_name(name)
        if match.student is None:
            handin.problems.append(match.problem)
        elif match.student.student_id not in members:
            members.append(match.student.student_id)
    if not names:
        if handin.account is not None:
            members = [handin.account.student_id]
            handin.problems.append("no names in the names cell; taken as the hand-in of "
                                   f"{handin.account.name} ({handin.account.student_id}), who uploaded it")
        else:
            handin.problems.append("no names in the names cell, and the uploader "
                                   f"{handin.account_text or '(unknown)'} is not on the roster")
    elif not members and handin.account is not None:
        members = [handin.account.student_id]
        handin.problems.append(f"none of the names is on the roster; taken as the hand-in of "
                               f"{handin.account.name} ({handin.account.student_id}), who uploaded it")
    handin.members = roster.sort_ids(members)


def collect(layout: CourseLayout, assignment: str, download: Path, *, source: str | None = None,
            deadline: dt.datetime | None = None, group_size: int | None = None,
            make_pdfs: bool = False) -> CollectReport:
    """The whole ``dlcourse collect``: :func:`plan_collect`, then :func:`write_collect` (the command makes
    the missing PDFs unless ``--no-pdfs``)."""
    return write_collect(plan_collect(layout, assignment, download, source=source, deadline=deadline,
                                      group_size=group_size), make_pdfs=make_pdfs)


def plan_collect(layout: CourseLayout, assignment: str, download: Path, *, source: str | None = None,
                 deadline: dt.datetime | None = None, group_size: int | None = None) -> CollectPlan:
    """Reads the download and ``submitted/``, matches, chooses the newest per student; writes nothing."""
    layout.require_assignment(assignment)
    roster = Roster.of_course(layout)
    source = _checked_source(Path(download), source)
    size = group_size if group_size is not None else required_group_size(layout)
    deadline = as_aware(deadline) if deadline is not None else None
    new = read_download(Path(download), source, roster, assignment)
    for handin in new:
        match_members(handin, roster)
    earlier, by_hand = previous_handins(layout, assignment)
    plan = CollectPlan(layout, assignment, earlier)
    # newest first: a student's first claim is their hand-in
    candidates = sorted(earlier + new, key=lambda h: (h.handed_in, h.folder is not None), reverse=True)
    owner, claims = _claims(candidates)
    plan.warnings += _double_claim_warnings(claims)
    winners = _pick_winners(plan, candidates, owner, by_hand, deadline)
    _size_groups(plan, winners, owner, roster, size, deadline)
    plan.warnings = list(dict.fromkeys(plan.warnings))
    return plan


def _checked_source(download: Path, source: str | None) -> str:
    if not download.exists():
        raise CollectError(f"{download} does not exist")
    source = source or detect_source(download)
    if source not in SOURCES:
        raise CollectError(f"unknown source {source!r} (one of {', '.join(SOURCES)})")
    return source


def _is_late(handin: Handin, deadline: dt.datetime | None) -> bool:
    return deadline is not None and handin.handed_in > deadline or handin.marked_late


def _row(handin: Handin, deadline: dt.datetime | None, action: str, reason: str, members=None,
         group: Group | None = None) -> dict:
    """One line of collect.csv."""
    return {"source": handin.source, "origin": handin.origin,
            "handed_in": handin.handed_in.isoformat(timespec="seconds"),
            "late": "yes" if _is_late(handin, deadline) else "no",
            "names": "; ".join(handin.names),
            "student_ids": " ".join(members if members is not None else handin.members),
            "group": group.name if group else "", "representative": group.representative if group else "",
            "action": action, "reason": reason}


def _claims(candidates: list[Handin]) -> tuple[dict[str, Handin], dict[str, list[Handin]]]:
    """Per student: the newest hand-in that names them (the owner), and every one that does (newest first)."""
    owner: dict[str, Handin] = {}
    claims: dict[str, list[Handin]] = {}
    for handin in candidates:
        for member in handin.members:
            claims.setdefault(member, []).append(handin)
            owner.setdefault(member, handin)
    return owner, claims


def _double_claim_warnings(claims: dict[str, list[Handin]]) -> list[str]:
    """A student named by hand-ins of different groups: which one is taken."""
    warnings = []
    for student, handins in sorted(claims.items()):
        groups_seen = {tuple(h.members) for h in handins}
        if len(groups_seen) < 2:
            continue  # the same group uploaded again (or by each member): the newest counts, collect.csv says so
        winner = handins[0]
        for older in handins[1:]:
            if tuple(older.members) != tuple(winner.members):
                warnings.append(f"two hand-ins claim {student}: {winner.source} {winner.origin} "
                                f"({winner.handed_in:%Y-%m-%d %H:%M}) is taken, {older.source} {older.origin} "
                                f"({older.handed_in:%Y-%m-%d %H:%M}) is older and not graded for {student}")
        listed = "; ".join(" + ".join(g) for g in sorted(groups_seen))
        warnings.append(f"{student} is in two groups ({listed}); graded with the newest hand-in "
                        f"({winner.source} {winner.origin})")
    return warnings


def _pick_winners(plan: CollectPlan, candidates: list[Handin], owner: dict[str, Handin], by_hand: set[str],
                  deadline: dt.datetime | None) -> list[tuple[Handin, list[str]]]:
    """The hand-ins that are graded, each with the students it is graded for; the others' rows."""
    winners = []
    for handin in candidates:
        mine = [m for m in handin.members if owner.get(m) is handin and m not in by_hand]
        taken = [m for m in handin.members if m not in mine]
        for m in handin.members:
            if m in by_hand:
                plan.warnings.append(f"{plan.layout.submission_dir(m, plan.assignment)} was not written by "
                                     f"dlcourse collect; left alone, so {handin.source} {handin.origin} is not "
                                     f"collected for {m}")
        for problem in handin.problems:  # an earlier collect's too: WARNINGS.txt lists all that is graded
            plan.warnings.append(f"{handin.source} {handin.origin}: {problem}")
        if handin.folder is None and not _notebooks(handin):
            plan.warnings.append(f"{handin.source} {handin.origin}: no notebook in the hand-in; nothing collected")
            plan.rows.append(_row(handin, deadline, "no-notebook", "no .ipynb file"))
        elif not handin.members:
            plan.rows.append(_row(handin, deadline, "unmatched", "; ".join(handin.problems) or "no student"))
        elif mine:
            winners.append((handin, mine))
        elif handin.folder is None:
            plan.rows.append(_row(handin, deadline, "superseded", _newer(handin, taken, owner)))
    return winners


def _size_groups(plan: CollectPlan, winners: list[tuple[Handin, list[str]]], owner: dict[str, Handin],
                 roster: Roster, size: int, deadline: dt.datetime | None) -> None:
    """Each winner's group (its representative first on the roster), checked against the course's group size."""
    for handin, mine in winners:
        members = roster.sort_ids(mine)
        group = Group("+".join(members), members[0], tuple(members))
        plan.groups.append(group)
        reasons = list(handin.problems)
        dropped = [m for m in handin.members if m not in mine and m in owner and owner[m] is not handin]
        if dropped:
            reasons.append(_newer(handin, dropped, owner))
        size_problem = _group_size_problem(group, len(handin.names) or len(members), size)
        if size_problem:
            plan.warnings.append(f"{handin.source} {handin.origin}: {size_problem}")
            reasons.append(size_problem)
        if _is_late(handin, deadline):
            reasons.append("late" + (f" (deadline {deadline:%Y-%m-%d %H:%M})" if deadline else " (marked by the LMS)"))
        plan.placements.append((handin, group))
        action = "kept" if handin.folder is not None else "collected"
        plan.rows.append(_row(handin, deadline, action, "; ".join(reasons), members, group))


def _group_size_problem(group: Group, named: int, size: int) -> str:
    if named < size:
        return (f"group {group.name} has {named} member{'s' if named != 1 else ''}; the course requires "
                f"{size} (c.Dlcourse.group_size)")
    if named > size:
        return f"group {group.name} names {named} students; the course allows {size}"
    return ""


def write_collect(plan: CollectPlan, *, make_pdfs: bool = False) -> CollectReport:
    """Carries ``plan`` out: ``submitted/`` (with ``make_pdfs``, the PDFs of hand-ins that lack one), then
    collect.csv, the warnings and groups.csv in ``reports/``."""
    _write_submitted(plan.layout, plan.assignment, plan.placements, plan.earlier)
    if make_pdfs:  # every hand-in graded has its PDF (lms/pdfs.py); seconds per notebook, so the command asks
        plan.warnings.extend(add_missing_pdfs(plan.layout, plan.assignment, plan.rows))
    folder = plan.layout.reports / plan.assignment
    out = io.StringIO()
    writer = csv.DictWriter(out, REPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(plan.rows)
    atomic_write(folder / "collect.csv", out.getvalue())
    atomic_write(folder / COLLECT_WARNINGS_NAME, "".join(w + "\n" for w in plan.warnings))
    files = [folder / "collect.csv", write_groups(plan.layout, plan.assignment, plan.groups)]
    if plan.warnings:
        atomic_write(folder / "WARNINGS.txt", "\n".join(plan.warnings) + "\n")
        files.append(folder / "WARNINGS.txt")
    return CollectReport(plan.rows, plan.warnings, plan.groups, files)


def _newer(handin: Handin, students: list[str], owner: dict[str, Handin]) -> str:
    """Why ``handin`` is not graded for ``students``: which newer hand-in each has."""
    parts = []
    for student in students:
        newer = owner.get(student)
        if newer is None or newer is handin:
            continue
        same = " of the same group" if tuple(newer.members) == tuple(handin.members) else ""
        if newer.handed_in == handin.handed_in and same:
            parts.append(f"{student}: already collected from {newer.source} {newer.origin}")
            continue
        parts.append(f"{student}: older than {newer.source} {newer.origin}{same} "
                     f"({newer.handed_in:%Y-%m-%d %H:%M})")
    return "; ".join(parts) or "left alone (see WARNINGS.txt)"


def _write_submitted(layout: CourseLayout, assignment: str, plans: list[tuple[Handin, Group]],
                     earlier: list[Handin]) -> None:
    """Earlier collects' folders out of the way, then each group's hand-in under its representative."""
    parked = {}
    for index, handin in enumerate(earlier):
        spot = layout.submitted / f".collect-parked-{index}"
        if spot.exists():
            shutil.rmtree(spot)
        handin.folder.rename(spot)
        parked[id(handin)] = spot
        try:
            handin.folder.parent.rmdir()  # the student's folder, now empty
        except OSError:
            pass
    for handin, group in plans:
        target = layout.submission_dir(group.representative, assignment)
        if id(handin) in parked:
            target.parent.mkdir(parents=True, exist_ok=True)
            parked.pop(id(handin)).rename(target)
            data = json.loads((target / COLLECTED_NAME).read_text())
        else:
            target.mkdir(parents=True, exist_ok=True)
            for name, content in sorted(handin.files.items()):
                (target / name).write_bytes(content)
            data = {"source": handin.source, "origin": handin.origin,
                    "handed_in": handin.handed_in.isoformat(timespec="seconds"), "names": handin.names,
                    "claimed": handin.members, "problems": handin.problems, "marked_late": handin.marked_late}
        data["members"] = list(group.members)
        atomic_write(target / COLLECTED_NAME, json.dumps(data, indent=1))
    for spot in parked.values():  # superseded: every member has a newer hand-in
        shutil.rmtree(spot)


def parse_deadline(text: str) -> dt.datetime:
    """``2026-12-01 12:00`` or ISO 8601 (local time unless it says otherwise)."""
    try:
        return as_aware(dt.datetime.fromisoformat(text.strip().replace(" ", "T", 1)))
    except ValueError:
        raise CollectError(f"--deadline {text!r}: write it as 2026-12-01T12:00 (ISO 8601)") from None


def format_summary(report: CollectReport) -> str:
    counts: dict[str, int] = {}
    for r in report.rows:
        counts[r["action"]] = counts.get(r["action"], 0) + 1
    late = sum(1 for r in report.rows if r["late"] == "yes" and r["action"] in ("collected", "kept"))
    students = sum(len(g.members) for g in report.groups)
    parts = ", ".join(f"{n} {a}" for a, n in sorted(counts.items()))
    return f"{len(report.groups)} group(s), {students} student(s): {parts}; {late} late"
