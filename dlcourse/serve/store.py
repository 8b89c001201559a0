"""The service's state: tokens and hand-ins, in a database named by a URL (SQLAlchemy Core).

``sqlite:///PATH`` (the default, one service process) or
``postgresql+psycopg://user@host/db`` (several service processes or machines
share it). Every write is one committed transaction before the service
answers; SQLite runs in WAL mode with ``synchronous=FULL`` so that a commit
survives a power cut, and waits up to :data:`BUSY_SECONDS` for a lock before
:class:`StoreBusy` (the service answers 503).

A hand-in's life: ``queued`` (stored, acknowledged) -> ``grading`` (claimed
by one service process, with a lease) -> ``graded`` or ``failed``. A claim
is an UPDATE that succeeds for one process only; a result is written only by
the process holding the claim, and counts once (``gradings``). A claim whose
process died (``kill -9``) goes back to ``queued`` when its lease runs out,
or at once when a single SQLite service restarts.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

BUSY_SECONDS = 10
STATES = ("queued", "grading", "graded", "failed")

metadata = sa.MetaData()
tokens = sa.Table(
    "serve_tokens", metadata,
    sa.Column("student_id", sa.String(200), primary_key=True),
    sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("created", sa.Float, nullable=False),
)
handins = sa.Table(
    "serve_handins", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("assignment", sa.String(200), nullable=False, index=True),
    sa.Column("uploader", sa.String(200), nullable=False, index=True),
    sa.Column("members", sa.Text, nullable=False),  # " a b ": the group, roster order, spaces around each id
    sa.Column("filename", sa.String(300), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("received", sa.Float, nullable=False, index=True),  # seconds since the epoch, UTC
    sa.Column("late", sa.Boolean, nullable=False, default=False),
    sa.Column("problems", sa.Text, nullable=False, default="[]"),  # JSON list: what a person should look at
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("owner", sa.String(64), nullable=True),  # the service process grading it
    sa.Column("lease_until", sa.Float, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),  # claims
    sa.Column("gradings", sa.Integer, nullable=False, default=0),  # results written: 1 once graded
    sa.Column("score", sa.Float, nullable=True),
    sa.Column("max_score", sa.Float, nullable=True),
    sa.Column("result", sa.Text, nullable=True),  # SubmissionResult.to_json(), for the feedback policy to filter
    sa.Column("graded_at", sa.Float, nullable=True),
)


class StoreBusy(Exception):
    """The database is locked or unreachable; nothing was written. The message says so."""


@dataclass
class Handin:
    id: str
    assignment: str
    uploader: str
    members: list[str]
    filename: str
    sha256: str
    received: float
    late: bool
    problems: list[str]
    state: str
    attempts: int
    gradings: int
    score: float | None
    max_score: float | None
    result: dict | None
    graded_at: float | None

    @property
    def representative(self) -> str:
        return self.members[0]

    @classmethod
    def from_row(cls, row) -> Handin:
        values = row._mapping
        return cls(values["id"], values["assignment"], values["uploader"], values["members"].split(),
                   values["filename"], values["sha256"], values["received"], bool(values["late"]),
                   json.loads(values["problems"] or "[]"), values["state"], values["attempts"], values["gradings"],
                   values["score"], values["max_score"],
                   json.loads(values["result"]) if values.get("result") else None,
                   values["graded_at"])


def _sqlite_pragmas(connection, _record) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_SECONDS * 1000}")
    cursor.close()


class Store:
    """Tokens and hand-ins in the database at ``url``."""

    def __init__(self, url: str):
        self.url = url
        self.sqlite = url.startswith("sqlite")
        self.engine = sa.create_engine(url, future=True, pool_pre_ping=not self.sqlite)
        if self.sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        with self._guard():
            metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def _guard(self):
        return _Guard()

    # -- tokens -------------------------------------------------------------

    def set_token(self, student_id: str, token_sha256: str) -> None:
        with self._guard(), self.engine.begin() as db:
            db.execute(tokens.delete().where(tokens.c.student_id == student_id))
            db.execute(tokens.insert().values(student_id=student_id, token_sha256=token_sha256, created=time.time()))

    def student_of(self, token_sha256: str) -> str | None:
        with self._guard(), self.engine.connect() as db:
            return db.execute(sa.select(tokens.c.student_id).where(tokens.c.token_sha256 == token_sha256)).scalar()

    # -- hand-ins -----------------------------------------------------------

    def add(self, *, assignment: str, uploader: str, members: list[str], filename: str, sha256: str,
            late: bool, problems: list[str], received: float | None = None) -> Handin:
        """A new hand-in, ``queued``, committed before this returns."""
        values = {"id": secrets.token_hex(12), "assignment": assignment, "uploader": uploader,
                  "members": " " + " ".join(members) + " ", "filename": filename[:300], "sha256": sha256,
                  "received": received if received is not None else time.time(), "late": late,
                  "problems": json.dumps(problems), "state": "queued", "attempts": 0, "gradings": 0}
        with self._guard(), self.engine.begin() as db:
            db.execute(handins.insert().values(**values))
        return self.get(values["id"])

    def get(self, handin_id: str) -> Handin | None:
        with self._guard(), self.engine.connect() as db:
            row = db.execute(sa.select(handins).where(handins.c.id == handin_id)).first()
        return Handin.from_row(row) if row else None

    def of_student(self, student_id: str, assignment: str | None = None) -> list[Handin]:
        """The hand-ins whose group holds ``student_id``, oldest first."""
        query = sa.select(handins).where(handins.c.members.contains(f" {student_id} ", autoescape=True))
        if assignment is not None:
            query = query.where(handins.c.assignment == assignment)
        with self._guard(), self.engine.connect() as db:
            return [Handin.from_row(r) for r in db.execute(query.order_by(handins.c.received, handins.c.id))]

    def of_assignment(self, assignment: str, *, results: bool = True) -> list[Handin]:
        """The assignment's hand-ins, oldest first; without ``results`` their ``result`` is None (not read).

        Publishing reads every hand-in of the assignment after each result; decoding every stored result each
        time grew with the square of the hand-ins.
        """
        columns = [c for c in handins.c if results or c.name != "result"]
        with self._guard(), self.engine.connect() as db:
            return [Handin.from_row(r) for r in db.execute(
                sa.select(*columns).where(handins.c.assignment == assignment).order_by(handins.c.received))]

    def all(self) -> list[Handin]:
        with self._guard(), self.engine.connect() as db:
            return [Handin.from_row(r) for r in db.execute(sa.select(handins).order_by(handins.c.received))]

    def uploads_since(self, uploader: str, since: float) -> int:
        with self._guard(), self.engine.connect() as db:
            return db.execute(sa.select(sa.func.count()).select_from(handins).where(
                handins.c.uploader == uploader, handins.c.received >= since)).scalar_one()

    # -- grading ------------------------------------------------------------

    def claim(self, owner: str, lease_seconds: float) -> Handin | None:
        """The oldest queued hand-in, now ``grading`` for ``owner`` only; None when none is queued."""
        with self._guard(), self.engine.begin() as db:
            query = sa.select(handins.c.id).where(handins.c.state == "queued").order_by(handins.c.received).limit(1)
            if not self.sqlite:
                query = query.with_for_update(skip_locked=True)
            handin_id = db.execute(query).scalar()
            if handin_id is None:
                return None
            claimed = db.execute(handins.update().where(handins.c.id == handin_id, handins.c.state == "queued").values(
                state="grading", owner=owner, lease_until=time.time() + lease_seconds,
                attempts=handins.c.attempts + 1)).rowcount
        return self.get(handin_id) if claimed == 1 else None

    def finish(self, handin_id: str, owner: str, *, state: str, score: float | None = None,
               max_score: float | None = None, result: dict | None = None) -> bool:
        """Write the result, if ``owner`` still holds the claim (else another process graded it: False)."""
        assert state in ("graded", "failed")
        with self._guard(), self.engine.begin() as db:
            return db.execute(handins.update().where(
                handins.c.id == handin_id, handins.c.owner == owner, handins.c.state == "grading").values(
                state=state, score=score, max_score=max_score, result=json.dumps(result) if result else None,
                graded_at=time.time(), gradings=handins.c.gradings + 1, owner=None, lease_until=None)).rowcount == 1

    def renew(self, owner: str, lease_seconds: float) -> int:
        """Extend ``owner``'s claims: a live process keeps them, a dead one's run out within one lease."""
        with self._guard(), self.engine.begin() as db:
            return db.execute(handins.update().where(handins.c.state == "grading", handins.c.owner == owner).values(
                lease_until=time.time() + lease_seconds)).rowcount

    def requeue(self, *, every_claim: bool = False) -> int:
        """Claims whose lease ran out (all claims, ``every_claim``: a lone SQLite service that restarted)."""
        condition = handins.c.state == "grading"
        if not every_claim:
            condition = condition & (handins.c.lease_until < time.time())
        with self._guard(), self.engine.begin() as db:
            return db.execute(handins.update().where(condition).values(state="queued", owner=None,
                                                                        lease_until=None)).rowcount


class _Guard:
    """A locked or unreachable database becomes :class:`StoreBusy` (the service answers 503)."""

    def __enter__(self):
        return self

    def __exit__(self, kind, error, _traceback):
        if isinstance(error, OperationalError):
            raise StoreBusy(f"the database is busy or unreachable ({str(error.orig).splitlines()[0]}); nothing was "
                            "stored: try again in a minute") from error
        return False
