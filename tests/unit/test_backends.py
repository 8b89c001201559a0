"""Where student.… requests go: a context manager chooses the backend, and always restores it."""

from __future__ import annotations

import sys

import pytest

from dlcourse.bridge import backends
from dlcourse.testing import StudentCodeError, student


class Recording:
    def __init__(self):
        self.requests = []

    def request(self, request):
        self.requests.append(request)
        return {"ok": True, "value": 42}

    def cell_sources(self):
        return ["def f():\n    return 1", "%matplotlib inline\ndef f():\n    return 2"]


def test_using_sends_requests_to_the_backend_and_restores_the_previous_one():
    before = backends.current()
    recording = Recording()
    with backends.using(recording):
        assert student.anything == 42
        assert student.source("f").endswith("return 2")  # the last cell that defines f
    assert recording.requests == [{"op": "get", "name": "anything"}]
    assert backends.current() is before


def test_the_backend_is_restored_when_the_test_raises():
    before = backends.current()
    with pytest.raises(AssertionError):
        with backends.using(Recording()):
            raise AssertionError("a failing check")
    assert backends.current() is before


def test_the_default_backend_serves_this_processes_main_namespace():
    main = sys.modules["__main__"].__dict__
    main["dlcourse_unit_value"] = 7
    try:
        assert isinstance(backends.current(), backends.InProcessBackend)
        assert student.dlcourse_unit_value == 7
        with pytest.raises(StudentCodeError, match="NameError"):
            student.dlcourse_no_such_name
    finally:
        del main["dlcourse_unit_value"]
