"""Who is asking: personal tokens made from ``roster.csv``, stored hashed.

A token is 32 random bytes (``secrets.token_urlsafe``); the database keeps
only its SHA-256. A slow password hash (bcrypt, scrypt) protects guessable
passwords; a 256-bit random token cannot be guessed, so one SHA-256 is as
safe and costs nothing per request. Comparing digests looked up by equality
leaks nothing useful: the digest of a guess says nothing about the token.

Sign-in is replaceable: the service asks a :class:`SignIn` for the student
of a credential; :class:`TokenSignIn` is the one there is now (LTI 1.3
sign-in from the LMS would be another).
"""

from __future__ import annotations

import csv
import hashlib
import io
import secrets
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from ..core.notebook import atomic_write
from ..lms.roster import Roster
from .store import Store

TOKEN_BYTES = 32


def token_digest(token: str) -> str:
    return hashlib.sha256(token.strip().encode("utf-8", "replace")).hexdigest()


class SignIn(Protocol):
    def student_of(self, credential: str) -> str | None:
        """The student_id the credential belongs to, or None."""


class TokenSignIn:
    """Personal tokens, checked against their stored SHA-256."""

    def __init__(self, store: Store):
        self.store = store

    def student_of(self, credential: str) -> str | None:
        if not credential or len(credential) > 200:
            return None
        return self.store.student_of(token_digest(credential))


def issue_tokens(store: Store, roster: Roster, out: Path, base_url: str = "") -> int:
    """A new token for every student on the roster (earlier ones stop working); ``out``: student_id,token,link.

    The CSV holds the only copy of the tokens: send each student their row through the LMS, then delete it.
    """
    rows = io.StringIO()
    writer = csv.writer(rows, lineterminator="\n")
    writer.writerow(["student_id", "token", "link"])
    for student in roster.students:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        while token.startswith("-"):  # `dlcourse handin --token -x...` would read it as an option
            token = secrets.token_urlsafe(TOKEN_BYTES)
        store.set_token(student.student_id, token_digest(token))
        link = f"{base_url.rstrip('/')}/#token={quote(token)}" if base_url else ""
        writer.writerow([student.student_id, token, link])
    atomic_write(Path(out), rows.getvalue())
    Path(out).chmod(0o600)
    return len(roster.students)
