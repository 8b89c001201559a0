"""What a student sees of a hand-in, and which hand-in counts: the course's settings for the service.

In ``nbgrader_config.py`` (all optional)::

    c.DlcourseServe.feedback = {"a3_cnn": "score"}        # per assignment: "items" (default), "score", "none"
    c.DlcourseServe.deadlines = {"a1_autodiff": "2026-12-01T12:00"}   # ISO 8601, local time unless it says
    c.DlcourseServe.counts = "latest"                      # or "best"; or {"a1_autodiff": "best"}

``items``: the score and each item's pass/fail with its public message, at
once; ``score``: the score only; ``none``: nothing but the state until the
deadline (then ``items``). A test's code is never shown: an item's message is
the failing check's own message, as in ``dlcourse feedback``.

The hand-in that counts for a student is the latest graded one handed in
before the deadline (``best``: the highest score, the latest among equals);
later ones are kept and marked late, and count only for a student who has no
hand-in before the deadline.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..core.course import CONFIG_NAME, read_config
from .store import Handin

FEEDBACK_LEVELS = ("items", "score", "none")
COUNTS = ("latest", "best")
FINISHED = ("graded", "failed")


class PolicyError(ValueError):
    """A setting of c.DlcourseServe is wrong; the message names it."""


@dataclass
class ServePolicy:
    feedback: dict[str, str] = field(default_factory=dict)
    deadlines: dict[str, float] = field(default_factory=dict)  # epoch seconds
    counts: dict[str, str] | str = "latest"

    def feedback_of(self, assignment: str, now: float | None = None) -> str:
        level = self.feedback.get(assignment, "items")
        deadline = self.deadlines.get(assignment)
        if level == "none" and deadline is not None and (now or time.time()) > deadline:
            return "items"
        return level

    def counts_of(self, assignment: str) -> str:
        return self.counts if isinstance(self.counts, str) else self.counts.get(assignment, "latest")

    def is_late(self, assignment: str, received: float) -> bool:
        deadline = self.deadlines.get(assignment)
        return deadline is not None and received > deadline


def course_policy(root: Path) -> ServePolicy:
    """The ``c.DlcourseServe`` settings of the course's ``nbgrader_config.py``."""
    section = read_config(Path(root) / CONFIG_NAME).get("DlcourseServe", {})
    feedback = {str(k): str(v) for k, v in dict(section.get("feedback", {})).items()}
    for assignment, level in feedback.items():
        if level not in FEEDBACK_LEVELS:
            raise PolicyError(f"c.DlcourseServe.feedback[{assignment!r}] = {level!r}: write one of "
                              f"{', '.join(FEEDBACK_LEVELS)}")
    deadlines = {}
    for assignment, text in dict(section.get("deadlines", {})).items():
        try:
            moment = dt.datetime.fromisoformat(str(text).strip().replace(" ", "T", 1))
        except ValueError:
            raise PolicyError(f"c.DlcourseServe.deadlines[{assignment!r}] = {text!r}: write it as "
                              "2026-12-01T12:00 (ISO 8601)") from None
        deadlines[str(assignment)] = (moment if moment.tzinfo else moment.astimezone()).timestamp()
    counts = section.get("counts", "latest")
    counts = {str(k): str(v) for k, v in counts.items()} if isinstance(counts, dict) else str(counts)
    for value in counts.values() if isinstance(counts, dict) else [counts]:
        if value not in COUNTS:
            raise PolicyError(f"c.DlcourseServe.counts: {value!r} is not one of {', '.join(COUNTS)}")
    return ServePolicy(feedback, deadlines, counts)


def counting_handin(handins: list[Handin], student_id: str, rule: str) -> Handin | None:
    """The finished hand-in that counts for ``student_id`` among ``handins`` (see the module's text)."""
    mine = [h for h in handins if student_id in h.members and h.state in FINISHED]
    on_time = [h for h in mine if not h.late] or mine
    if not on_time:
        return None
    if rule == "best":
        return max(on_time, key=lambda h: (h.score or 0.0, h.received, h.id))
    return max(on_time, key=lambda h: (h.received, h.id))


def student_view(handin: Handin, policy: ServePolicy, counting: Handin | None = None,
                 now: float | None = None) -> dict:
    """The hand-in as its group may see it: the state always; score and items as the policy allows."""
    level = policy.feedback_of(handin.assignment, now)
    view = {"id": handin.id, "assignment": handin.assignment, "state": handin.state,
            "received": dt.datetime.fromtimestamp(handin.received, dt.timezone.utc).isoformat(timespec="seconds"),
            "filename": handin.filename, "members": handin.members, "late": handin.late,
            "counts": counting is not None and counting.id == handin.id, "problems": handin.problems,
            "feedback": level, "score": None, "max_score": None, "items": [], "message": ""}
    if handin.state not in FINISHED or level == "none":
        if level == "none" and handin.state in FINISHED:
            view["message"] = "graded; the result is shown after the deadline"
        return view
    view["score"], view["max_score"] = handin.score, handin.max_score
    result = handin.result or {}
    messages = [nb.get("message", "") for nb in result.get("notebooks", []) if nb.get("status") != "ok"]
    view["message"] = "; ".join(m for m in messages if m)[:1500]
    if level == "items":
        view["items"] = [_item(notebook["name"], cell) for notebook in result.get("notebooks", [])
                         for cell in notebook.get("cells", []) if cell.get("kind") == "test"]
    return view


def _item(notebook: str, cell: dict) -> dict:
    score = cell.get("score")
    graded = not cell.get("state")
    passed = graded and score is not None and score >= cell["max_score"]
    message = cell.get("message", "") if not passed else ""
    return {"notebook": notebook, "grade_id": cell["grade_id"], "score": score, "max_score": cell["max_score"],
            "result": cell.get("state") or ("passed" if passed else "failed"),
            "message": message if len(message) <= 1500 else message[:1500] + " ..."}
