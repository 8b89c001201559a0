"""``kill -9`` loses nothing: every acknowledged hand-in is there after a restart and is graded exactly once.

Also: a later ``dlcourse grade`` reuses the service's results (no regrading),
and a full disk or a locked database answers 503 and stores nothing.
"""

from __future__ import annotations

import errno
import sqlite3
import time

import pytest
from serve_helpers import Service, fresh_course, issue_tokens, new_database
from test_api import GOOD, notebook_bytes
from tiny_course import GOOD_CUBE, HIDDEN_MARKER, WRONG_SQUARE

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("database_kind", ["sqlite", "postgresql"], indirect=False)
def test_kill_9_loses_no_acknowledged_hand_in_and_grades_each_exactly_once(database_kind, tiny_template, tmp_path,
                                                                           request):
    from dlcourse.serve.store import Store

    course = fresh_course(tiny_template, tmp_path / "course")
    state = tmp_path / "state"
    state.mkdir()
    database = new_database(database_kind, request, tmp_path)
    tokens = issue_tokens(course, database, state)
    service = Service(course, database, state, "--uploads-per-minute", "0").start()
    acknowledged = {}
    try:
        answers = [GOOD, {"square": WRONG_SQUARE, "cube": GOOD_CUBE}]
        for number in range(8):
            student = ["alice", "bob", "carol", "dave"][number % 4]
            reply = service.submit(tokens[student], notebook_bytes(tiny_template, answers[number % 2]))
            assert reply.status_code == 201, reply.text
            acknowledged[reply.json()["id"]] = (student, 3.0 if number % 2 == 0 else 1.0)
        service.kill()  # some graded, some being graded, some queued
    finally:
        service.stop()
    store = Store(database)
    before = {h.id: h.state for h in store.all()}
    assert set(before) == set(acknowledged), "an acknowledged hand-in is missing after kill -9"
    assert any(state != "graded" for state in before.values()), f"all graded before the kill: {before}"

    restarted = Service(course, database, state).start()
    try:
        views = {handin_id: restarted.wait_finished(handin_id, tokens[student])
                 for handin_id, (student, _score) in acknowledged.items()}
    finally:
        restarted.stop()
    assert {i: v["score"] for i, v in views.items()} == {i: score for i, (_s, score) in acknowledged.items()}
    after = store.all()
    assert len(after) == len(acknowledged)
    assert [h.gradings for h in after] == [1] * len(acknowledged)  # one result written for each, none twice
    store.close()


def test_a_later_dlcourse_grade_reuses_the_services_results_and_feedback_reads_them(tiny_template, tmp_path,
                                                                                   request):
    course = fresh_course(tiny_template, tmp_path / "course")
    state = tmp_path / "state"
    state.mkdir()
    database = new_database("sqlite", request, tmp_path)
    tokens = issue_tokens(course, database, state)
    service = Service(course, database, state).start()
    try:
        handin = service.submit(tokens["alice"], notebook_bytes(tiny_template, GOOD)).json()
        service.wait_finished(handin["id"], tokens["alice"])
        wrong = service.submit(tokens["bob"], notebook_bytes(tiny_template, {"square": WRONG_SQUARE})).json()
        service.wait_finished(wrong["id"], tokens["bob"])
    finally:
        service.stop()
    stored = {student: course.result(student) for student in ("alice", "bob")}
    run = course.grade()
    assert run.returncode == 0, run.stderr
    assert course.grades() == {"alice": (3.0, 3.0, "ok"), "bob": (0.0, 3.0, "ok")}
    for student, result in stored.items():  # the very same stored result: same grading time, same fingerprint
        assert course.result(student)["seconds"] == result["seconds"]
        assert course.result(student)["fingerprint"] == result["fingerprint"]
    feedback = course.dlcourse("feedback", "tiny", "--no-zip")
    assert feedback.returncode == 0, feedback.stderr
    page = (course.root / "feedback" / "bob" / "tiny" / "tiny.html").read_text()
    assert "square" in page and HIDDEN_MARKER not in page


def _service_in_process(tmp_path, database: str, tiny_template):
    from dlcourse.core.course import CourseLayout
    from dlcourse.lms.roster import Roster
    from dlcourse.serve.files import FileStore
    from dlcourse.serve.policy import ServePolicy
    from dlcourse.serve.service import HandinService
    from dlcourse.serve.settings import ServeSettings
    from dlcourse.serve.store import Store

    course = fresh_course(tiny_template, tmp_path / "course")
    layout = CourseLayout(course.root)
    store = Store(database)
    service = HandinService(layout, store, FileStore(tmp_path / "files"), tmp_path / "work", ServePolicy(),
                            Roster.of_course(layout), ServeSettings())
    return service, store


def test_a_full_disk_answers_503_with_a_message_and_stores_nothing(tiny_template, tmp_path, monkeypatch):
    from dlcourse.serve.files import FileStore
    from dlcourse.serve.service import Refused

    service, store = _service_in_process(tmp_path, f"sqlite:///{tmp_path / 'serve.db'}", tiny_template)

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(FileStore, "put", full)
    with pytest.raises(Refused) as refusal:
        service.receive("alice", "tiny", "tiny.ipynb", notebook_bytes(tiny_template, GOOD))
    assert refusal.value.status == 503 and "disk is full" in refusal.value.message
    assert "hand in again" in refusal.value.message
    assert store.all() == []


def test_a_locked_database_answers_503_with_a_message(tiny_template, tmp_path, monkeypatch):
    from dlcourse.serve import store as store_module
    from dlcourse.serve.service import Refused

    path = tmp_path / "serve.db"
    monkeypatch.setattr(store_module, "BUSY_SECONDS", 1)
    service, store = _service_in_process(tmp_path, f"sqlite:///{path}", tiny_template)
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        with pytest.raises(Refused) as refusal:
            service.receive("alice", "tiny", "tiny.ipynb", notebook_bytes(tiny_template, GOOD))
        assert refusal.value.status == 503 and "busy" in refusal.value.message
        assert time.monotonic() - started < 30
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert store.all() == []
