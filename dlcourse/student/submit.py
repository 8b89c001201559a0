"""``dlcourse handin A --submit URL --token T``: hand the zip in to the course's ``dlcourse serve``.

Standard library only (it ships in the student kit). The zip that ``dlcourse
handin`` wrote is uploaded to ``URL/api/v1/assignments/A/submissions``; then
the result is awaited (``--wait`` seconds) and printed as the service's
feedback policy allows: the score and each item's pass/fail, or less.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import quote

TOKEN_ENV = "DLCOURSE_TOKEN"
FINISHED = ("graded", "failed")


class SubmitError(Exception):
    """The hand-in did not reach the service, or the service refused it; the message says what to do."""


def _request(request: urllib.request.Request, timeout: float) -> dict:
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return json.loads(reply.read().decode("utf-8"))
    except urllib.error.HTTPError as error:
        try:
            message = json.loads(error.read().decode("utf-8")).get("error", "")
        except ValueError:
            message = ""
        raise SubmitError(f"the service answered {error.code}: {message or error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise SubmitError(f"could not reach {request.full_url} ({reason}): check the address your instructor gave, "
                          "or upload the zip on the hand-in page") from None


def upload(url: str, token: str, assignment: str, path: Path, *, timeout: float = 120) -> dict:
    """Upload ``path`` (a hand-in zip or a notebook); returns the service's view of the new hand-in."""
    if not token:
        raise SubmitError(f"no token: give --token (or set ${TOKEN_ENV}) with the token your instructor sent you")
    boundary = uuid.uuid4().hex
    body = b"".join([
        f"--{boundary}\r\n".encode(),
        f'Content-Disposition: form-data; name="file"; filename="{Path(path).name}"\r\n'.encode(),
        b"Content-Type: application/octet-stream\r\n\r\n", Path(path).read_bytes(), f"\r\n--{boundary}--\r\n".encode(),
    ])
    request = urllib.request.Request(
        f"{url.rstrip('/')}/api/v1/assignments/{quote(assignment)}/submissions", data=body, method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": f"multipart/form-data; boundary={boundary}"})
    return _request(request, timeout)


def wait_for_result(url: str, token: str, handin_id: str, *, wait: float = 120, poll: float = 1.0) -> dict:
    """The hand-in's view once graded, or as it is after ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        request = urllib.request.Request(f"{url.rstrip('/')}/api/v1/submissions/{quote(handin_id)}",
                                         headers={"Authorization": f"Bearer {token}"})
        view = _request(request, 60)
        if view.get("state") in FINISHED or time.monotonic() >= deadline:
            return view
        time.sleep(poll)


def format_view(view: dict) -> str:
    """What a student reads: the state, the score and the items (as far as the service shows them)."""
    lines = [f"Hand-in {view['id']} of {view['assignment']} ({', '.join(view.get('members', []))}): {view['state']}"
             + (" (late)" if view.get("late") else "")]
    if view.get("score") is not None:
        lines.append(f"  score: {view['score']:g} / {view['max_score']:g}"
                     + ("  (this hand-in counts)" if view.get("counts") else ""))
    for item in view.get("items", []):
        lines.append(f"  {item['notebook']} / {item['grade_id']}: {item['result']}")
        if item.get("message"):
            lines.extend("      " + line for line in item["message"].splitlines()[:6])
    if view.get("message"):
        lines.append(f"  {view['message']}")
    for problem in view.get("problems", []):
        lines.append(f"  note: {problem}")
    if view["state"] not in FINISHED:
        lines.append("  still being graded: see the result on the hand-in page")
    return "\n".join(lines)


def submit_and_report(url: str, token: str, assignment: str, path: Path, *, wait: float = 120) -> str:
    """Upload, wait for the result, and return the text to print; raises :class:`SubmitError`."""
    view = upload(url, token, assignment, path)
    return format_view(wait_for_result(url, token, view["id"], wait=wait) if wait > 0 else view)
