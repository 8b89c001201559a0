"""The service's hand-ins as the instructor's commands see them: ``submitted/``, ``autograded/``, ``groups.csv``.

After each hand-in is graded, :func:`publish_assignment` makes the course
folder agree with the database: for every student, the hand-in that counts
(:func:`dlcourse.serve.policy.counting_handin`) is copied to
``submitted/<representative>/<assignment>/`` (as ``dlcourse collect`` writes
it, stamp included) and its result to ``autograded/`` (as ``dlcourse grade``
stores it, same fingerprint); ``reports/<assignment>/groups.csv`` lists the
groups. So ``dlcourse grade`` reuses the results, and ``feedback``, ``report``
and ``export`` read them as they read ``collect``'s hand-ins.

Folders written by hand or by ``collect`` are left alone (a stamp whose
source is not ``serve``); one assignment is best handed in one way.
A file lock serialises service processes that share the course folder.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from ..core.course import CourseLayout
from ..core.groups import Group, write_groups
from ..grading.reports import load_result, store_result
from ..lms.collect import COLLECTED_NAME
from ..lms.roster import Roster
from .policy import ServePolicy, counting_handin
from .store import Handin, Store
from .worker import graded_folder, submission_folder

log = logging.getLogger(__name__)
SOURCE = "serve"


@contextmanager
def course_lock(layout: CourseLayout):
    path = layout.root / ".dlcourse-serve.lock"
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _stamp_of(folder: Path) -> dict:
    try:
        return json.loads((folder / COLLECTED_NAME).read_text())
    except (OSError, ValueError):
        return {}


def counting_groups(handins: list[Handin], rule: str, roster: Roster | None) -> dict[str, tuple[Handin, list[str]]]:
    """representative -> (the hand-in that counts, the members it counts for)."""
    students = sorted({m for h in handins for m in h.members})
    won: dict[str, list[str]] = {}
    by_id = {}
    for student in students:
        handin = counting_handin(handins, student, rule)
        if handin is not None:
            won.setdefault(handin.id, []).append(student)
            by_id[handin.id] = handin
    groups = {}
    for handin_id, members in won.items():
        members = roster.sort_ids(members) if roster else sorted(members)
        groups[members[0]] = (by_id[handin_id], members)
    return groups


def publish_assignment(layout: CourseLayout, store: Store, work: Path, policy: ServePolicy, assignment: str,
                       roster: Roster | None, *, verify: bool = False) -> None:
    """Make ``submitted/``, ``autograded/`` and ``groups.csv`` of ``assignment`` agree with the database.

    A folder whose stamp names the hand-in that counts, with a stored result, is taken as up to date (both are
    written under the lock, the folder first); ``verify`` (at start, after a possible kill) also compares each
    stored result's fingerprint. Without that shortcut each hand-in re-read every group's graded notebooks, and
    a burst of 150 hand-ins ran at a quarter of ``dlcourse grade``'s throughput.
    """
    with course_lock(layout):
        handins = store.of_assignment(assignment, results=False)
        groups = counting_groups(handins, policy.counts_of(assignment), roster)
        for representative, (handin, members) in groups.items():
            _publish_one(layout, work, handin, representative, verify)
        for student in layout.students(assignment):
            folder = layout.submission_dir(student, assignment)
            if student not in groups and _stamp_of(folder).get("source") == SOURCE:
                shutil.rmtree(folder)  # this student's hand-in now counts in another group's folder
                shutil.rmtree(layout.autograded_dir(student, assignment), ignore_errors=True)
        write_groups(layout, assignment, [Group("+".join(members), representative, tuple(members))
                                          for representative, (_handin, members) in sorted(groups.items())])


def _publish_one(layout: CourseLayout, work: Path, handin: Handin, representative: str, verify: bool) -> None:
    target = layout.submission_dir(representative, handin.assignment)
    stamp = _stamp_of(target)
    result_path = layout.result_path(representative, handin.assignment)
    if not verify and stamp.get("origin") == handin.id and (result_path.is_file() or handin.state != "graded"):
        return
    if target.exists() and stamp.get("source") != SOURCE:
        log.warning("%s was not written by dlcourse serve: left alone, so hand-in %s is not published there",
                    target, handin.id)
        return
    if stamp.get("origin") != handin.id:
        incoming = target.with_name(f".{target.name}.serve-incoming")
        shutil.rmtree(incoming, ignore_errors=True)
        shutil.copytree(submission_folder(work, handin.id), incoming)
        if target.exists():
            old = target.with_name(f".{target.name}.serve-old")
            shutil.rmtree(old, ignore_errors=True)
            os.rename(target, old)
            os.rename(incoming, target)
            shutil.rmtree(old)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(incoming, target)
    graded = graded_folder(work, handin.id) / "result.json"
    result = load_result(graded, with_notebooks=False)
    if result is None:  # failed to grade here: `dlcourse grade` grades it
        return
    if load_result(result_path, result.fingerprint, with_notebooks=False) is None:
        result = load_result(graded)  # with the graded notebooks, for formgrader and feedback
        result.student_id = representative
        store_result(layout, result)
