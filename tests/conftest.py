"""Shared set-up: stand-in data sets, and markers that select by assignment, item and layer.

Markers (see docs/testing.md): ``a1`` ... ``a7``, one per ``source/aN_*`` folder, on every test of that
assignment; ``aN_<answer_id>`` (e.g. ``a3_linear``) on the tests of one answer cell; ``unit``, ``grader``,
``content``, ``mutants``, ``student`` from the folder a test file is in. So ``pytest -m a3``,
``pytest -m a3_linear`` and ``pytest -m grader`` select what they say.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "source"
# `make test` runs two pytest workers on two cores: one torch thread for each test, and for the kernels
# and graders it starts (two threads per process would spin against the other worker's).
os.environ.setdefault("OMP_NUM_THREADS", "1")
# The machine's cache of reference checks (dlcourse.grading.reference.machine_cache): one for this test
# session, shared by its workers (set here, in the controller, before they start), never the user's own.
if not os.environ.get("DLCOURSE_CACHE"):
    os.environ["DLCOURSE_CACHE"] = tempfile.mkdtemp(prefix="dlcourse-test-cache-")
    atexit.register(shutil.rmtree, os.environ["DLCOURSE_CACHE"], ignore_errors=True)  # by the process that made it
sys.path.insert(0, str(Path(__file__).resolve().parent))

#: The layers of the tests, one folder each under tests/, and what a test of each needs.
LAYERS = {
    "unit": "fast and kernel-free: one module or file at a time (tests/unit/)",
    "grader": "the grader end to end: kernels, bubblewrap sandboxes, nbgrader, gradebook (tests/grader/)",
    "content": "one assignment's notebooks: solutions, tests, rubrics, releases (tests/content/)",
    "mutants": "the mutation suite: plausible mistakes lose points, alternatives keep them (tests/mutants/)",
    "student": "what students run: data loaders, hand-in, PDF, JupyterLab in Chromium (tests/student/)",
    "serve": "the hand-in service: its API, page, crash recovery, on SQLite and PostgreSQL (tests/serve/)",
}
_ASSIGNMENT = re.compile(r"^(a\d+)(?:_|$)")
_TEST_FILE = re.compile(r"^test_(a\d+)(?:_.*)?\.py$")


def assignment_prefixes() -> dict[str, str]:
    """``{"a1": "a1_autodiff", ...}``: one marker per ``source/aN_*`` folder."""
    found = {}
    for folder in sorted(SOURCE.glob("a*_*")):
        match = _ASSIGNMENT.match(folder.name)
        if folder.is_dir() and match:
            found[match.group(1)] = folder.name
    return dict(sorted(found.items(), key=lambda item: int(item[0][1:])))


def pytest_configure(config):
    for prefix, folder in assignment_prefixes().items():
        config.addinivalue_line("markers", f"{prefix}: a test of source/{folder}")
    for layer, description in LAYERS.items():
        config.addinivalue_line("markers", f"{layer}: {description}")


def _assignments_of(item, known) -> set[str]:
    """The assignments a test belongs to: by its file name, or by its ``assignment``/``prefix``/``master`` value."""
    found = set()
    match = _TEST_FILE.match(item.path.name)
    if match:
        found.add(match.group(1))
    params = getattr(getattr(item, "callspec", None), "params", {})
    for name in ("assignment", "prefix"):
        value = params.get(name)
        if isinstance(value, str) and _ASSIGNMENT.match(value):
            found.add(_ASSIGNMENT.match(value).group(1))
    master = params.get("master")
    if isinstance(master, Path):
        try:
            parts = master.resolve().relative_to(SOURCE).parts
        except ValueError:
            parts = ()
        if len(parts) > 1 and _ASSIGNMENT.match(parts[0]):
            found.add(_ASSIGNMENT.match(parts[0]).group(1))
    return found & known


def _layer_of(item) -> str | None:
    """The layer folder (tests/<layer>/...) the test file is in, if any."""
    try:
        parts = item.path.relative_to(item.config.rootpath).parts
    except ValueError:
        parts = item.path.parts
    for folder, below in zip(parts, parts[1:-1]):
        if folder == "tests" and below in LAYERS:
            return below
    return None


def pytest_collection_modifyitems(config, items):
    known = set(assignment_prefixes())
    registered: set[str] = set()
    for item in items:
        assignments = _assignments_of(item, known)
        for prefix in sorted(assignments):
            item.add_marker(prefix)
        answer_id = getattr(getattr(item, "callspec", None), "params", {}).get("answer_id")
        if isinstance(answer_id, str) and assignments:
            for prefix in sorted(assignments):
                name = f"{prefix}_{answer_id}"
                if name not in registered:
                    config.addinivalue_line("markers", f"{name}: the tests of answer cell {answer_id!r} of {prefix}")
                    registered.add(name)
                item.add_marker(name)
        layer = _layer_of(item)
        if layer:
            item.add_marker(layer)


@pytest.fixture(scope="session", autouse=True)
def course_data(tmp_path_factory):
    """Real MNIST-format images (Fashion-MNIST) and small CIFAR-10 files, offline.

    Kernels started by the grader inherit DLCOURSE_DATA, so the training
    notebooks load these through the real torchvision loaders.
    """
    if os.environ.get("DLCOURSE_TEST_DATA"):
        os.environ["DLCOURSE_DATA"] = os.environ["DLCOURSE_TEST_DATA"]
        return Path(os.environ["DLCOURSE_DATA"])
    from stand_in_data import prepare_mnist_from_fashion, write_cifar10

    root = tmp_path_factory.mktemp("data")
    prepare_mnist_from_fashion(root)
    write_cifar10(root, n_train=500, n_test=100)
    os.environ["DLCOURSE_DATA"] = str(root)
    return root


def pytest_sessionstart(session):
    from helpers import KILL_RATE_FILE

    # Only the controller starts a fresh file: pytest-xdist workers append to it, one line per item.
    if KILL_RATE_FILE.exists() and not hasattr(session.config, "workerinput"):
        KILL_RATE_FILE.unlink()


def pytest_terminal_summary(terminalreporter):
    from helpers import KILL_RATE_FILE, kill_rate_summary

    if KILL_RATE_FILE.exists():
        terminalreporter.section("mutation kill rate per assignment")
        terminalreporter.write(kill_rate_summary(KILL_RATE_FILE.read_text()))
