"""What the service's tests share: the roster, a scratch database, a service process and its API.

Not in conftest.py: test modules import these by name, and every test folder has a ``conftest``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "grader"))
from tiny_course import ASSIGNMENT, GRADE_OPTIONS, TinyCourse, dlcourse_env, python

ROSTER = ("student_id,name,email,lms_id,github\nalice,Alice Adams,,,\nbob,Bob Brown,,,\ncarol,Carol Clark,,,\n"
          "dave,Dave Dunn,,,\nerin,Erin Evans,,,\n")
STARTUP_SECONDS = 240


def new_database(kind: str, request, where: Path) -> str:
    """The URL of an empty database of ``kind``."""
    if kind == "sqlite":
        return f"sqlite:///{where / f'serve-{uuid.uuid4().hex[:8]}.db'}"
    import sqlalchemy as sa

    server = request.getfixturevalue("postgres_server")
    name = f"serve_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as db:
        db.execute(sa.text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return f"{server}/{name}"


def fresh_course(template: TinyCourse, where: Path) -> TinyCourse:
    course = template.copy(where)
    shutil.copyfile(template.root / "roster.csv", course.root / "roster.csv")
    return course


def issue_tokens(course: TinyCourse, database: str, state_dir: Path) -> dict[str, str]:
    out = state_dir / "tokens.csv"
    run = course.dlcourse("serve", "tokens", "--out", str(out), "--database", database, "--state-dir",
                          str(state_dir), timeout=120)
    assert run.returncode == 0, run.stderr
    rows = [line.split(",") for line in out.read_text().splitlines()[1:]]
    return {row[0]: row[1] for row in rows}


class Service:
    """``dlcourse serve`` in a process of its own (a new session, so that its workers can be cleaned up)."""

    def __init__(self, course: TinyCourse, database: str, state_dir: Path, *extra: str):
        self.course, self.database, self.state_dir, self.extra = course, database, state_dir, extra
        self.process: subprocess.Popen | None = None
        self.url = ""
        self.log: list[str] = []

    def start(self) -> Service:
        command = [python(), "-m", "dlcourse", "--course", str(self.course.root), "serve", "--port", "0",
                   "--database", self.database, "--state-dir", str(self.state_dir), "--workers", "2",
                   *GRADE_OPTIONS, *self.extra]
        self.process = subprocess.Popen(command, cwd=self.course.root, env=dlcourse_env(), stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, start_new_session=True)
        ready = threading.Event()

        def read():
            for line in self.process.stdout:
                self.log.append(line)
                if "listening on" in line and not ready.is_set():
                    self.url = line.rsplit("listening on", 1)[1].strip()
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        ready.wait(STARTUP_SECONDS)
        assert self.url, "the service did not start:\n" + "".join(self.log[-40:])
        return self

    def kill(self) -> None:
        """``kill -9`` of the service's own process only, as a crash would; its workers are cleaned up after."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # whatever it started and left (a killed service's workers)
        except ProcessLookupError:
            pass

    # -- the API ------------------------------------------------------------

    def submit(self, token: str, data: bytes, filename: str = "tiny.ipynb", assignment: str = ASSIGNMENT,
               **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return requests.post(f"{self.url}api/v1/assignments/{assignment}/submissions", headers=headers,
                             files={"file": (filename, data)}, timeout=60, **kwargs)

    def get(self, path: str, token: str | None) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return requests.get(f"{self.url}{path.lstrip('/')}", headers=headers, timeout=60)

    def wait_finished(self, handin_id: str, token: str, timeout: float = 180) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            view = self.get(f"api/v1/submissions/{handin_id}", token).json()
            if view["state"] in ("graded", "failed"):
                return view
            time.sleep(0.3)
        raise AssertionError(f"hand-in {handin_id} not graded in {timeout} s:\n" + "".join(self.log[-40:]))
