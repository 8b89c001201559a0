"""tests/conftest.py marks each test by assignment, answer cell and layer, so ``-m`` selects what it says.

A tiny test tree is generated whose conftest.py takes its two marker hooks from the real tests/conftest.py;
``pytest --collect-only -q -m EXPR`` runs on it in a subprocess (collection only, no plugins: about a second),
and the node ids it selects must be exactly the expected ones. The tree's values name the real
``source/aN_*`` folders, as the real tests do.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
SOURCE = TESTS.parent / "source"


def _folder(prefix: str) -> str:
    """The source/ folder of an assignment, e.g. ``a2`` -> ``a2_optimisers``."""
    names = [p.name for p in SOURCE.iterdir() if p.is_dir() and re.match(rf"^{prefix}_", p.name)]
    assert len(names) == 1, f"expected one source/{prefix}_* folder, found {names}"
    return names[0]


CONFTEST = """
import importlib.util

_spec = importlib.util.spec_from_file_location("real_tests_conftest", {conftest!r})
_real = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_real)
pytest_configure = _real.pytest_configure
pytest_collection_modifyitems = _real.pytest_collection_modifyitems
"""

PARAMS = """
from pathlib import Path

import pytest

SOURCE = Path({source!r})


@pytest.mark.parametrize("assignment", [{a1!r}, {a2!r}, "tiny"])
def test_assignment(assignment):
    pass


@pytest.mark.parametrize("prefix", ["a2", "a3", "a22"])
def test_prefix(prefix):
    pass


@pytest.mark.parametrize("master", [SOURCE / {a2!r} / "x.ipynb", SOURCE / {a3!r} / "x.ipynb",
                                    Path("/elsewhere") / {a2!r} / "x.ipynb"], ids=["a2", "a3", "elsewhere"])
def test_master(master):
    pass


@pytest.mark.parametrize("name", ["a2"])  # only assignment, prefix and master name an assignment
def test_other_name(name):
    pass
"""

ITEMS = """
import pytest


@pytest.mark.parametrize("prefix, answer_id", [("a2", "Linear"), ("a3", "Linear"), ("a2", "SGD")])
def test_item(prefix, answer_id):
    pass


@pytest.mark.parametrize("answer_id", ["Linear"])  # no assignment: no item marker
def test_item_without_assignment(answer_id):
    pass
"""

PLAIN = "def test_plain():\n    pass\n"


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("marker-tree")
    (root / "pytest.ini").write_text("[pytest]\n")  # rootdir here; none of the project's addopts
    files = {
        "tests/conftest.py": CONFTEST.format(conftest=str(TESTS / "conftest.py")),
        "tests/content/test_a2_content.py": PLAIN,
        "tests/content/test_a1.py": PLAIN,
        "tests/grader/test_params.py": PARAMS.format(source=str(SOURCE), a1=_folder("a1"), a2=_folder("a2"),
                                                     a3=_folder("a3")),
        "tests/unit/test_items.py": ITEMS,
        "tests/student/test_student.py": PLAIN,
        "tests/test_top.py": PLAIN,
    }
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root


def collected(tree: Path, expression: str) -> set[str]:
    """Node ids that ``pytest --collect-only -q -m EXPRESSION`` selects in the tree."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    run = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                          "-W", "error::pytest.PytestUnknownMarkWarning", "-m", expression, "tests"],
                         cwd=tree, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode in (0, 5), run.stdout + run.stderr  # 5: nothing selected
    return {line.strip() for line in run.stdout.splitlines() if "::" in line}


A1, A2 = _folder("a1"), _folder("a2")
SELECTIONS = {
    "a2": {
        "tests/content/test_a2_content.py::test_plain",
        f"tests/grader/test_params.py::test_assignment[{A2}]",
        "tests/grader/test_params.py::test_prefix[a2]",
        "tests/grader/test_params.py::test_master[a2]",
        "tests/unit/test_items.py::test_item[a2-Linear]",
        "tests/unit/test_items.py::test_item[a2-SGD]",
    },
    "a1": {"tests/content/test_a1.py::test_plain", f"tests/grader/test_params.py::test_assignment[{A1}]"},
    "a2_Linear": {"tests/unit/test_items.py::test_item[a2-Linear]"},
    "a3_Linear": {"tests/unit/test_items.py::test_item[a3-Linear]"},
    "content": {"tests/content/test_a2_content.py::test_plain", "tests/content/test_a1.py::test_plain"},
    "student": {"tests/student/test_student.py::test_plain"},
    "unit and not a2": {"tests/unit/test_items.py::test_item[a3-Linear]",
                        "tests/unit/test_items.py::test_item_without_assignment[Linear]"},
    "not (a1 or a2 or a3 or unit or grader or content or student)": {"tests/test_top.py::test_plain"},
}


@pytest.mark.parametrize("expression", sorted(SELECTIONS))
def test_marker_expression_selects_exactly_the_expected_tests(tree, expression):
    assert collected(tree, expression) == SELECTIONS[expression]


def test_grader_marker_selects_every_test_of_tests_grader_and_nothing_else(tree):
    selected = collected(tree, "grader")
    assert len(selected) == 10, sorted(selected)
    assert all(node.startswith("tests/grader/") for node in selected), sorted(selected)
