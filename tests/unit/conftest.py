"""Fixtures of the unit layer: a stand-in for the student's notebook namespace, in this process."""

from __future__ import annotations

import builtins
import sys

import pytest

from dlcourse.bridge import backends


@pytest.fixture
def notebook():
    """``define(source, **values)`` runs ``source`` as a student's cell in ``__main__``; undone afterwards.

    With no IPython shell running, the agent and the in-process backend serve ``__main__``'s namespace,
    so this is where "the notebook" lives in a kernel-free test.
    """
    assert not hasattr(builtins, "get_ipython"), "an IPython shell is running: the agent would use its namespace"
    assert isinstance(backends.current(), backends.InProcessBackend)
    namespace = sys.modules["__main__"].__dict__
    before = dict(namespace)

    def define(source: str = "", filename: str = "<student cell>", **values) -> dict:
        exec(compile(source, filename, "exec"), namespace)
        namespace.update(values)
        return namespace

    yield define
    for name in [name for name in namespace if name not in before]:
        del namespace[name]
    for name, value in before.items():
        if namespace.get(name, object()) is not value:
            namespace[name] = value
