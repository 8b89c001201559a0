"""dlcourse: a deep-learning course in PyTorch with an autograder an instructor can trust.

The package is grouped by role (``docs/architecture.md``): ``core``, ``bridge``
and ``student`` (with ``testing``, ``data``, ``budget`` and ``checkpoint``,
which the notebooks import) are what a student kit ships; ``sandbox``,
``grading``, ``authoring``, ``exam``, ``lms`` and ``insight`` are the
instructor's.

Modules that lived directly in ``dlcourse/`` before that grouping keep their
old import paths (``dlcourse.handin``, ``dlcourse.kit``, ...): :data:`MOVED`
maps each to its new home, and importing the old name gives the very same
module object, so instructors' scripts and configs written for the flat
layout go on working.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"

#: Old module path -> where it lives now. Only the paths that existed; new code imports the new ones.
MOVED = {
    "dlcourse.course": "dlcourse.core.course",
    "dlcourse.notebook": "dlcourse.core.notebook",
    "dlcourse.studentcli": "dlcourse.student.cli",
    "dlcourse.handin": "dlcourse.student.handin",
    "dlcourse.pdf": "dlcourse.student.pdf",
    "dlcourse.lab": "dlcourse.student.lab",
    "dlcourse.examlab": "dlcourse.student.examlab",
    "dlcourse.isolation": "dlcourse.sandbox.isolation",
    "dlcourse.scratch": "dlcourse.sandbox.scratch",
    "dlcourse.kernel": "dlcourse.sandbox.kernel",
    "dlcourse.zygote": "dlcourse.sandbox.fork",
    "dlcourse.zygote_server": "dlcourse.sandbox.child",
    "dlcourse.testcells": "dlcourse.core.testcode",
    "dlcourse.gradebook": "dlcourse.grading.gradebook",
    "dlcourse.cluster": "dlcourse.grading.cluster",
    "dlcourse.release": "dlcourse.authoring.release",
    "dlcourse.kit": "dlcourse.authoring.kit",
    "dlcourse.adopt": "dlcourse.authoring.adopt",
    "dlcourse.demo": "dlcourse.authoring.demo",
    "dlcourse.roster": "dlcourse.lms.roster",
    "dlcourse.collect": "dlcourse.lms.collect",
    "dlcourse.export": "dlcourse.lms.export",
    "dlcourse.report": "dlcourse.insight.report",
    "dlcourse.similarity": "dlcourse.insight.similarity",
    "dlcourse.feedback": "dlcourse.insight.feedback",
}


class _MovedModule(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old path (:data:`MOVED`) as its new module: one module object under both names."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        try:
            if importlib.util.find_spec(MOVED[fullname]) is None:
                return None
        except ModuleNotFoundError:  # a student kit lacks the instructor's packages: their old names stay missing
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        module = importlib.import_module(MOVED[spec.name])
        spec.loader_state = module.__spec__  # the import system overwrites __spec__; exec_module puts it back
        return module

    def exec_module(self, module):
        module.__spec__ = module.__spec__.loader_state


if not any(isinstance(finder, _MovedModule) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModule())
