"""The service's work, without HTTP: receive a hand-in, show it to its group, publish results.

:class:`HandinService` is what the web handlers (:mod:`.app`) call; each
refusal is a :class:`Refused` carrying the HTTP status and a message that
says what to do next.
"""

from __future__ import annotations

import datetime as dt
import errno
import logging
import time
from pathlib import Path

from ..core.course import CourseLayout, no_such
from ..lms.collect import Handin as CollectHandin
from ..lms.collect import match_members
from ..lms.roster import Roster
from .files import BadHandin, FileStore, handin_files
from .policy import ServePolicy, counting_handin, student_view
from .settings import ServeSettings
from .store import Store, StoreBusy

log = logging.getLogger(__name__)


class Refused(Exception):
    """A request the service refuses: ``status`` (HTTP) and a message saying what to do."""

    def __init__(self, status: int, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after


class HandinService:
    def __init__(self, layout: CourseLayout, store: Store, files: FileStore, work: Path, policy: ServePolicy,
                 roster: Roster, settings: ServeSettings, notify=lambda: None):
        self.layout, self.store, self.files, self.work = layout, store, files, Path(work)
        self.policy, self.roster, self.settings, self.notify = policy, roster, settings, notify

    # -- receiving ----------------------------------------------------------

    def assignments(self) -> list[str]:
        return self.layout.assignments()

    def require_assignment(self, assignment: str) -> None:
        known = self.assignments()
        if assignment not in known:
            raise Refused(404, no_such("assignment", assignment, known, "this course"))

    def receive(self, student_id: str, assignment: str, filename: str, data: bytes):
        """Check, store durably (file fsync-ed, row committed) and queue a hand-in; returns its view."""
        self.require_assignment(assignment)
        self._limit_rate(student_id)
        try:
            files = handin_files(filename, data)
        except BadHandin as error:
            raise Refused(400, str(error)) from None
        members, problems = self._members(student_id, files)
        received = time.time()
        try:
            stored = self.files.put(data)
            handin = self.store.add(assignment=assignment, uploader=student_id, members=members,
                                    filename=Path(filename or "handin.ipynb").name, sha256=stored.sha256,
                                    late=self.policy.is_late(assignment, received), problems=problems,
                                    received=received)
        except OSError as error:
            full = error.errno in (errno.ENOSPC, errno.EDQUOT)
            log.error("could not store a hand-in of %s: %s", student_id, error)
            raise Refused(503, ("the server's disk is full" if full else f"the server could not store the file "
                                f"({error.strerror})") + "; nothing was stored: hand in again in a few minutes, "
                          "and tell your instructor if it persists") from None
        except StoreBusy as error:
            raise Refused(503, str(error)) from None
        log.info("hand-in %s of %s by %s (group %s) queued", handin.id, assignment, student_id, " ".join(members))
        self.notify()
        return self.view(student_id, handin.id)

    def _limit_rate(self, student_id: str) -> None:
        limit = self.settings.uploads_per_minute
        try:
            recent = self.store.uploads_since(student_id, time.time() - 60)
        except StoreBusy as error:
            raise Refused(503, str(error)) from None
        if limit and recent >= limit:
            raise Refused(429, f"you handed in {recent} times in the last minute (at most {limit}): wait a minute "
                               "and hand in again; only your latest hand-in before the deadline counts",
                          retry_after=60)

    def _members(self, student_id: str, files: dict[str, bytes]) -> tuple[list[str], list[str]]:
        """The group, from the names cell as ``dlcourse collect`` reads it; the uploader must be in it."""
        account = self.roster.by_id.get(student_id)
        handin = CollectHandin("serve", "upload", files, dt.datetime.now().astimezone(), account, student_id)
        match_members(handin, self.roster)
        if student_id not in handin.members:
            named = ", ".join(handin.names) or "nobody"
            raise Refused(400, f"the names cell names {named}, but you are {account.name if account else student_id}"
                               f" ({student_id}): write your own name in the names cell (and your partner's), save"
                               " and hand in again")
        return handin.members, handin.problems

    # -- reading ------------------------------------------------------------

    def view(self, student_id: str, handin_id: str) -> dict:
        """A hand-in of the student's group; 404 for any other (whether it exists is not said)."""
        try:  # one query: this is what every poll of a waiting client runs, on the event loop
            groups = self.store.of_student(student_id)
        except StoreBusy as error:
            raise Refused(503, str(error)) from None
        handin = next((h for h in groups if h.id == handin_id), None)
        if handin is None:
            raise Refused(404, f"you have no hand-in {handin_id!r}: list yours with GET /api/v1/submissions")
        mine = [h for h in groups if h.assignment == handin.assignment]
        rule = self.policy.counts_of(handin.assignment)
        return student_view(handin, self.policy, counting_handin(mine, student_id, rule))

    def views(self, student_id: str, assignment: str | None = None) -> list[dict]:
        """Every hand-in of the student's groups, newest first."""
        try:
            mine = self.store.of_student(student_id, assignment)
        except StoreBusy as error:
            raise Refused(503, str(error)) from None
        views = []
        for handin in mine:
            rule = self.policy.counts_of(handin.assignment)
            same = [h for h in mine if h.assignment == handin.assignment]
            views.append(student_view(handin, self.policy, counting_handin(same, student_id, rule)))
        return views[::-1]

    def student_name(self, student_id: str) -> str:
        student = self.roster.by_id.get(student_id)
        return student.name if student else student_id

