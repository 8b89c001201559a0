"""Plain `nbgrader autograde` works with the course's config, warnings cost nothing."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from dlcourse import authoring
from dlcourse.authoring.demo import filled_notebook
from helpers import ROOT, scratch_course

NOISY_TEST = '''
import warnings
import torch
from dlcourse.testing import student, assert_close
warnings.warn("this API is deprecated", UserWarning)
torch.tensor([1.0, 2.0]).resize_(3)   # torch's own UserWarning on stderr
assert_close(student.double(2.0), 4.0)
'''


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    env_path = str(Path(sys.executable).parent)
    import os

    env = dict(os.environ, PATH=env_path + os.pathsep + os.environ.get("PATH", ""))
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env,
                          capture_output=True, text=True, check=True)


def autograded_score(course: Path, assignment: str, student: str) -> float:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        return gradebook.find_submission(assignment, student).score


def _noisy_course(tmp_path: Path) -> Path:
    course = tmp_path / "course"
    course.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", course)
    authoring.write_notebook(course / "source" / "noisy" / "noisy.ipynb", [
        authoring.code("import warnings"),
        authoring.answer("double", "def double(x):\n    ### BEGIN SOLUTION\n    warnings.warn('student warning')\n"
                         "    return 2 * x\n    ### END SOLUTION"),
        authoring.tests("test_double", 1, NOISY_TEST),
    ])
    nbgrader(course, "generate_assignment", "noisy", "--force")
    folder = course / "submitted" / "alice" / "noisy"
    folder.mkdir(parents=True)
    notebook = filled_notebook(course / "source/noisy/noisy.ipynb", course / "release/noisy/noisy.ipynb")
    nbformat.write(notebook, str(folder / "noisy.ipynb"))
    return course


@pytest.mark.slow
def test_a_warning_on_stderr_does_not_cost_points(tmp_path):
    course = _noisy_course(tmp_path)
    nbgrader(course, "autograde", "noisy", "--force")
    assert autograded_score(course, "noisy", "alice") == 1.0
    # The same run without the course's IgnorePattern shows why it is needed.
    nbgrader(course, "autograde", "noisy", "--force", "--IgnorePattern.enabled=False")
    assert autograded_score(course, "noisy", "alice") == 0.0


@pytest.mark.slow
def test_plain_nbgrader_autograde_gives_the_reference_full_marks(tmp_path):
    course = scratch_course(tmp_path, "a1_autodiff")
    master = course / "source/a1_autodiff/a1_autodiff.ipynb"
    nbgrader(course, "generate_assignment", "a1_autodiff", "--force")
    folder = course / "submitted" / "alice" / "a1_autodiff"
    folder.mkdir(parents=True)
    nbformat.write(filled_notebook(master, course / "release/a1_autodiff/a1_autodiff.ipynb"),
                   str(folder / master.name))
    nbgrader(course, "autograde", "a1_autodiff", "--force")
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        submission = gradebook.find_submission("a1_autodiff", "alice")
        assert submission.code_score == submission.max_code_score > 0
