"""What the grader tells the fork engine: the modules a master imports, and how many threads a child gets."""

from __future__ import annotations

import os

import nbformat
import pytest

from dlcourse.grading import threads_per_worker
from dlcourse.sandbox.fork import LAZY_IMPORTS, preloads


def _master(*cells: tuple[str, str]):
    """A notebook of code cells: ("own", source) for a student's or a given cell, ("test", source) for a test."""
    nodes = []
    for role, source in cells:
        node = nbformat.v4.new_code_cell(source)
        if role == "test":
            node.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "points": 1,
                                         "grade_id": f"test_{len(nodes)}"}
        nodes.append(node)
    return nbformat.v4.new_notebook(cells=nodes)


def test_the_master_cells_imports_are_preloaded_in_their_order_once_each():
    master = _master(("own", "import math, json as j\nfrom os import path\nimport math"),
                     ("own", "def f():\n    import collections.abc\n    from . import sibling\n"),
                     ("own", "from xml.etree import ElementTree"))
    assert preloads(master) == ("math", "json", "os", "collections.abc", "xml.etree")


def test_a_test_cells_imports_are_not_preloaded_they_run_in_the_grader():
    master = _master(("own", "import math"), ("test", "import fractions\nfrom dlcourse.testing import student"))
    assert preloads(master) == ("math",)


def test_a_dlcourse_module_brings_what_its_functions_import_later():
    master = _master(("own", "from dlcourse.data import mnist_tensors"))
    assert preloads(master) == ("dlcourse.data", *LAZY_IMPORTS["dlcourse.data"])


def test_magics_and_cells_that_do_not_parse_are_read_as_far_as_they_can_be():
    master = _master(("own", "%matplotlib inline\nimport math\n!ls"), ("own", "def broken(:\n    import json"),
                     ("own", "import string"))
    assert preloads(master) == ("math", "string")


@pytest.mark.parametrize("workers", [1, 2, 3, 64])
def test_the_workers_share_the_cores_out_with_one_thread_at_least(workers):
    cores = os.cpu_count() or 1
    threads = threads_per_worker(workers)
    assert threads >= 1
    assert threads * workers <= max(cores, workers)  # never more threads than cores, unless one each is too many
    if workers == 1:
        assert threads == cores  # one worker has the machine
