"""Where ``dlcourse.testing.student`` sends a test's requests.

A :class:`Backend` answers one request (a plain-data dict, see
:mod:`.wire`) with one reply, and tells the sources of the cells the
student has run. Two implementations:

* :class:`InProcessBackend` -- the student's code is in this process (their
  own kernel, or plain ``nbgrader autograde``): the default.
* :class:`KernelBackend` -- the grader's: each request is executed in the
  graded notebook's kernel, and the reply is trusted no further than
  ``torch.load(weights_only=True)``.

The grader selects one for the duration of a test cell with
``with using(backend): ...``; it is a context variable, so nothing has to
remember to reset it.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import time
from typing import Iterator, Protocol

from .errors import CellTimeout, KernelDied, no_reply, reply_too_large, unreadable_reply
from . import agent, wire


class Backend(Protocol):
    def request(self, request: dict) -> dict:
        """The reply to ``request``: ``{"ok": True, "value": ...}`` or ``{"ok": False, "error_type": ...}``."""

    def cell_sources(self) -> list[str]:
        """The sources of the cells the student's notebook has run, in order."""


class InProcessBackend:
    """The student's code is in this process (a student's own kernel)."""

    def request(self, request: dict) -> dict:
        return wire.loads(agent.serve(wire.dumps_request(request)))

    def cell_sources(self) -> list[str]:
        return [str(source) for source in agent.namespace().get("In", [])]


_current: contextvars.ContextVar[Backend] = contextvars.ContextVar("dlcourse_backend", default=InProcessBackend())


def current() -> Backend:
    """The backend of the test that is running now."""
    return _current.get()


@contextlib.contextmanager
def using(backend: Backend) -> Iterator[Backend]:
    """Send the requests of the code inside the ``with`` block to ``backend``."""
    token = _current.set(backend)
    try:
        yield backend
    finally:
        _current.reset(token)


class KernelBackend:
    """Sends each request to a graded notebook's kernel (a :class:`dlcourse.sandbox.kernel.KernelSession`).

    The reply is read with ``torch.load(weights_only=True)``: plain data or
    nothing. The kernel's answer is trusted no further than that.
    """

    def __init__(self, session, cell_sources: list[str], deadline: float):
        self.session = session
        self._cell_sources = cell_sources
        self.deadline = deadline
        self.timed_out = False  # set when the student's code ran past the deadline
        self.requests, self.request_seconds = 0, 0.0  # for the profile (bench/profile_grading.py)

    def cell_sources(self) -> list[str]:
        return list(self._cell_sources)

    def request(self, request: dict) -> dict:
        payload = base64.b64encode(wire.dumps_request(request)).decode("ascii")
        code = f"__import__('dlcourse.bridge.agent', fromlist=['serve_b64']).serve_b64('{payload}')"
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            self.timed_out = True
            raise CellTimeout("the test ran out of time")
        started = time.monotonic()
        run = self.session.execute(code, timeout=remaining, silent=True)
        self.requests += 1
        self.request_seconds += time.monotonic() - started
        if run.status == "timeout":
            self.timed_out = True
            raise CellTimeout("your code did not finish in time")
        if run.status == "died" or not self.session.alive():
            raise KernelDied("the kernel died while a test ran your code")
        for output in run.outputs:
            blob = output.get("data", {}).get(wire.REPLY_MIME_TYPE)
            if blob is None:
                continue
            try:
                reply = wire.loads(base64.b64decode(blob))
            except Exception as error:  # a forged or broken reply
                return unreadable_reply(error)
            if isinstance(reply, dict) and isinstance(reply.get("ok"), bool):
                return reply
        if run.reply_too_large:
            return reply_too_large()
        detail = f"{run.error_name}: {run.error_value}" if run.status == "error" else "no reply"
        return no_reply(f"the notebook's kernel did not answer the test ({detail})")
