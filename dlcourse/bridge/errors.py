"""The failed replies and the errors that both sides of a test's request share.

A test's request can fail without the student's code raising anything: the
reply is too large, unreadable (forged or broken), or never comes; the kernel
dies or a cell runs past its time. The grader's side makes these replies
itself (:data:`GRADER_REPLIES`), and :mod:`dlcourse.testing` tells them apart
from a student's own exception. Both engines (:mod:`dlcourse.sandbox.kernel`,
:mod:`dlcourse.sandbox.fork`) and :mod:`dlcourse.bridge.backends` use them;
a student kit ships this module, not the engines.
"""

from __future__ import annotations

#: The largest reply to a test's request (base64); a test's tensors are far smaller.
REPLY_LIMIT_BYTES = 64 * 2**20


#: The failed replies that the grader's side makes itself, not the student's code (see :func:`reply_too_large`,
#: :func:`unreadable_reply`, :func:`no_reply`).
GRADER_REPLIES = ("InvalidReply", "NoReply", "ReplyTooLarge")


def reply_too_large() -> dict:
    """The failed reply a test gets for a value over :data:`REPLY_LIMIT_BYTES` (either engine)."""
    return {"ok": False, "error_type": "ReplyTooLarge",
            "message": f"the value your code returned is larger than {REPLY_LIMIT_BYTES // 2**20} MiB; "
                       "check its shape and dtype against the exercise's"}


def unreadable_reply(error: Exception) -> dict:
    """The failed reply a test gets for a reply that ``wire.loads`` refused (forged or broken)."""
    return {"ok": False, "error_type": "InvalidReply",
            "message": f"the test could not read what your code returned ({error}); return tensors, numbers, "
                       "strings, bytes, or lists, tuples and dicts of them"}


def no_reply(message: str) -> dict:
    """The failed reply a test gets when the student's process answered nothing readable."""
    return {"ok": False, "error_type": "NoReply", "message": message}


class KernelDied(Exception):
    """The kernel stopped answering: it exited, crashed or was killed."""


class CellTimeout(Exception):
    """A cell, or a test's request, ran past its time limit."""
