"""A student cannot change what grading runs: deleted or edited set-up cells, a checkpoint handed in.

The master's locked cells are what the grader runs (``tests/content/test_grading_mode.py`` checks that for
every cell of every master without a kernel); here whole notebooks are graded: A4's VGG notebook, whose nine
given cells load CIFAR-10, shrink it and train, each edited to a loop that would never end or deleted,
with a checkpoint beside it that claims the training is done; and, for stock ``nbgrader autograde``, a tiny
course whose locked set-up cell a student edited.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import nbformat
import pytest
import torch

from dlcourse import authoring
from dlcourse.authoring.demo import filled_notebook
from dlcourse.grading import grade_notebook
from dlcourse.core.nbgrader import with_tools_on_path
from dlcourse.core.notebook import cell_source, grade_id, is_answer_cell, is_test_cell
from helpers import ROOT, SOURCE, options, solution_notebook

VGG = SOURCE / "a4_convnets" / "a4_vgg_cifar.ipynb"
NEVER_ENDS = "import time\nwhile True:  # the student's copy of this cell ran\n    time.sleep(1)"


def nbgrader(course, *args: str) -> None:
    """Stock nbgrader in the course root, with this environment's tools first on PATH."""
    env = with_tools_on_path(os.environ)
    subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, capture_output=True, text=True,
                   check=True)


def _given_ids(notebook) -> list[str]:
    return [grade_id(c) for c in notebook.cells if c.cell_type == "code" and not is_answer_cell(c)
            and not is_test_cell(c) and grade_id(c) != "names"]


def _handed_in_checkpoint(path) -> None:
    """A checkpoint that claims all ten epochs are done: read at all, it would print what it did with it."""
    torch.save({"settings": {"batch_size": 32, "train_images": 64, "lr": 1e-4, "weight_decay": 1e-3},
                "epochs_done": 10, "history": {"batch_loss": [0.0], "train_acc": [1.0], "test_acc": [1.0]},
                "model": {}, "optimizer": {}, "rng": torch.get_rng_state()}, path)


def _printed(result) -> str:
    return "\n".join("".join(o.get("text", "")) for c in result.graded.cells for o in c.get("outputs", []))


@pytest.mark.slow
@pytest.mark.parametrize("master", [VGG], ids=lambda p: p.stem)
def test_a_vgg_submission_with_every_given_cell_edited_or_deleted_gets_full_marks_and_ignores_its_checkpoint(
        master, tmp_path):
    """Every other given cell edited into a loop that never ends, the rest deleted (both, for every cell of every
    master, are checked without a kernel in test_grading_mode.py); one graded run, the grader's usual limits."""
    submission = solution_notebook(master)
    given = _given_ids(submission)
    assert {"data", "training", "training_batchnorm"} <= set(given)
    edited, deleted = set(given[::2]), set(given[1::2])
    for cell in submission.cells:
        if grade_id(cell) in edited:
            cell.source = NEVER_ENDS
    submission.cells = [c for c in submission.cells if grade_id(c) not in deleted]
    folder = tmp_path / "alice"
    folder.mkdir()
    nbformat.write(submission, str(folder / master.name))
    _handed_in_checkpoint(folder / "vgg16.pt")
    _handed_in_checkpoint(folder / "vgg16_bn.pt")

    result = grade_notebook(master, folder / master.name, options())

    lost = [f"{c.grade_id}: {c.message[:300]}" for c in result.cells if c.kind == "test" and c.score != c.max_score]
    assert result.status == "ok" and not lost, f"status {result.status} {result.message}; lost: {lost}"
    printed = _printed(result)
    assert "epoch 1/1" in printed, "the master's training cell should have trained one epoch from scratch"
    for sign in ("resumed from", "cannot be resumed", "other settings"):
        assert sign not in printed, f"grading read the checkpoint handed in: {sign!r}"


SETUP = "FACTOR = 2  # the set-up the tests rely on"
TESTS = """
from dlcourse.testing import student, assert_close
assert_close(student.scaled(3.0), 6.0, name="scaled(3.0)")
"""


@pytest.mark.slow
def test_stock_nbgrader_autograde_restores_an_edited_locked_setup_cell(tmp_path):
    course = tmp_path / "course"
    course.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", course)
    master = course / "source" / "locked" / "locked.ipynb"
    authoring.write_notebook(master, [
        authoring.code(SETUP, "setup"),
        authoring.answer("scaled", "def scaled(x):\n    ### BEGIN SOLUTION\n    return FACTOR * x\n"
                                   "    ### END SOLUTION"),
        authoring.tests("test_scaled", 1, TESTS),
    ])
    nbgrader(course, "generate_assignment", "locked", "--force")
    notebook = filled_notebook(master, course / "release/locked/locked.ipynb")
    setup = next(c for c in notebook.cells if grade_id(c) == "setup")
    setup.source = "FACTOR = 3  # the student's edit"
    folder = course / "submitted" / "alice" / "locked"
    folder.mkdir(parents=True)
    nbformat.write(notebook, str(folder / "locked.ipynb"))

    nbgrader(course, "autograde", "locked", "--force")

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        assert gradebook.find_submission("locked", "alice").score == 1.0
    graded = nbformat.read(str(course / "autograded/alice/locked/locked.ipynb"), as_version=4)
    assert cell_source(next(c for c in graded.cells if grade_id(c) == "setup")) == SETUP
