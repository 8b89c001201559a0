"""The Colab set-up cell and the hand-in in Colab, under Colab's conditions reproduced here.

Reproduced: a ``google.colab`` module (a fake: ``_message.blocking_request("get_ipynb")`` and
``files.download``), a ``/content``-like working folder, no notebook path, and another torch already
installed (a fake ``torch`` 2.99.0+colab first on the path); ``pip`` is a recorder, so nothing is
installed here. Not reproduced: Colab's own kernel, its GPU, cloning from GitHub (see docs/colab.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import nbformat
import pytest

from dlcourse.authoring import kit as kit_lib
from dlcourse.student import colab, handin
from test_handin import NAMES, make_course

ROOT = Path(__file__).resolve().parents[2]
ASSIGNMENT, NOTEBOOK = "a1_autodiff", "a1_autodiff.ipynb"
COLAB_TORCH = "2.99.0+colab"


def _fake_colab_world(tmp_path: Path, with_colab: bool) -> tuple[Path, Path]:
    """A folder for PYTHONPATH (fake pip, fake torch, and google.colab when ``with_colab``) and pip's log."""
    fakes = tmp_path / "fakes"
    log = tmp_path / "pip-calls.jsonl"
    (fakes / "pip").mkdir(parents=True)
    (fakes / "pip" / "__init__.py").write_text("")
    (fakes / "pip" / "__main__.py").write_text(
        f"import json, sys\nwith open({str(log)!r}, 'a') as f:\n    f.write(json.dumps(sys.argv[1:]) + '\\n')\n")
    (fakes / "torch").mkdir()
    (fakes / "torch" / "__init__.py").write_text(f"__version__ = {COLAB_TORCH!r}\n")
    if with_colab:
        (fakes / "google" / "colab").mkdir(parents=True)
        (fakes / "google" / "colab" / "__init__.py").write_text("")
    return fakes, log


def _kit(content: Path) -> Path:
    """A kit as the set-up cell finds it after cloning: package, requirements, config, one release folder."""
    kit = content / "dlcourse-kit"
    kit_lib._write_package(kit / "dlcourse")
    (kit / "requirements.txt").write_text(kit_lib.student_requirements())
    (kit / "nbgrader_config.py").write_text("c = get_config()\n")
    (kit / "release" / ASSIGNMENT).mkdir(parents=True)
    (kit / "release" / ASSIGNMENT / NOTEBOOK).write_text(nbformat.writes(nbformat.v4.new_notebook()))
    return kit


def _run_cell(tmp_path: Path, with_colab: bool) -> tuple[dict, list[list[str]]]:
    """Runs the set-up cell in a fresh Python as a kernel would (``google.colab`` imported first in Colab)."""
    fakes, log = _fake_colab_world(tmp_path, with_colab)
    content = tmp_path / "content"
    content.mkdir()
    kit = _kit(content)
    cell = colab.setup_cell(ASSIGNMENT, NOTEBOOK, "course-org/dl-kit").source
    program = ("import sys\n"
               + ("import google.colab\n" if with_colab else "")
               + f"exec({cell!r})\n"
               "import json, os, torch\n"
               "print(json.dumps({'cwd': os.getcwd(), 'torch': torch.__version__,\n"
               f"                  'notebook': os.environ.get({colab.NOTEBOOK_VARIABLE!r}),\n"
               "                  'dlcourse': 'dlcourse.student.colab' in sys.modules}))\n")
    env = {**os.environ, "PYTHONPATH": str(fakes), "DLCOURSE_KIT": str(kit)}
    env.pop(colab.NOTEBOOK_VARIABLE, None)
    process = subprocess.run([sys.executable, "-c", program], cwd=content, env=env, capture_output=True,
                             text=True, timeout=120)
    assert process.returncode == 0, process.stderr
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return json.loads(process.stdout.splitlines()[-1]), calls


def test_setup_cell_does_nothing_outside_colab(tmp_path):
    state, pip_calls = _run_cell(tmp_path, with_colab=False)
    assert pip_calls == []
    assert state == {"cwd": str(tmp_path / "content"), "torch": COLAB_TORCH, "notebook": None, "dlcourse": False}


def test_setup_cell_in_colab_installs_the_package_but_leaves_colabs_torch(tmp_path):
    state, pip_calls = _run_cell(tmp_path, with_colab=True)
    kit = tmp_path / "content" / "dlcourse-kit"
    assert pip_calls[0] == ["install", "--quiet", "--no-deps", "-e", str(kit)]
    installed = [arg for call in pip_calls[1:] for arg in call[2:]]
    assert installed == colab.colab_requirements(kit_lib.student_requirements())
    assert any(arg.startswith("nbgrader") for arg in installed)
    assert not any(arg.lower().startswith(("torch", "torchvision")) for call in pip_calls for arg in call)
    assert state["torch"] == COLAB_TORCH, "Colab's torch was replaced"
    assert state["cwd"] == str(kit / "release" / ASSIGNMENT)
    assert state["notebook"] == str(Path("release", ASSIGNMENT, NOTEBOOK))
    assert state["dlcourse"]


@pytest.mark.parametrize("line, kept", [
    ("torch>=2.13.0,<2.15", False), ("torchvision>=0.28", False), ("Torch==2.14.1", False),
    ("torch ; sys_platform == 'linux'", False), ("torchaudio>=2", True), ("nbgrader>=0.9.6,<0.10", True),
    ("# torch is Colab's", False), ("", False)])
def test_colab_requirements_drop_only_torch_and_torchvision(line, kept):
    assert colab.colab_requirements(line) == ([line] if kept else [])


def test_release_notebooks_start_with_the_locked_setup_cell_and_it_names_its_notebook(tmp_path):
    folder = tmp_path / ASSIGNMENT
    folder.mkdir()
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('NAMES = ""')])
    nbformat.write(notebook, str(folder / NOTEBOOK))
    colab.add_setup_cell(folder)
    colab.add_setup_cell(folder, "course-org/dl-kit")  # again, as the kit does: replaced, not added
    cells = nbformat.read(str(folder / NOTEBOOK), as_version=4).cells
    assert [colab.is_setup_cell(c) for c in cells] == [True, False]
    assert cells[0].metadata["editable"] is False and cells[0].metadata["deletable"] is False
    assert "https://github.com/course-org/dl-kit" in cells[0].source
    assert f"setup(kit, {ASSIGNMENT!r}, {NOTEBOOK!r})" in cells[0].source
    assert "NAMES" not in cells[0].source  # the hand-in's names cell is the first that assigns NAMES


def test_committed_release_notebooks_start_with_the_setup_cell():
    for path in sorted((ROOT / "release").glob("a*/*.ipynb")):
        first = nbformat.read(str(path), as_version=4).cells[0]
        assert colab.is_setup_cell(first), f"{path}: run `dlcourse release`"
        assert f"setup(kit, {path.parent.name!r}, {path.name!r})" in first.source


@pytest.fixture
def fake_colab(monkeypatch):
    """google.colab as a Colab kernel has it: the notebook's content on request, downloads recorded."""
    downloads, held = [], {}
    google, package = types.ModuleType("google"), types.ModuleType("google.colab")
    message, files = types.ModuleType("google.colab._message"), types.ModuleType("google.colab.files")
    message.blocking_request = lambda kind, request="", timeout_sec=None: (
        {"ipynb": held["notebook"]} if kind == "get_ipynb" else None)
    files.download = downloads.append
    package._message, package.files, google.colab = message, files, package
    for name, module in (("google", google), ("google.colab", package), ("google.colab._message", message),
                         ("google.colab.files", files)):
        monkeypatch.setitem(sys.modules, name, module)
    return held, downloads


def test_handin_in_colab_zips_the_notebook_colab_holds_and_offers_it_for_download(tmp_path, monkeypatch,
                                                                                  fake_colab):
    held, downloads = fake_colab
    course = make_course(tmp_path, names=None, run=False)  # on disk: the release copy, names cell empty
    folder = course / "release" / "a0_logistic"
    in_browser = nbformat.read(str(folder / "a0_logistic.ipynb"), as_version=4)
    in_browser.cells[0].source = f"NAMES = {NAMES!r}"  # what the student typed in Colab, never saved to disk
    held["notebook"] = json.loads(nbformat.writes(in_browser))
    monkeypatch.setenv(colab.NOTEBOOK_VARIABLE, "release/a0_logistic/a0_logistic.ipynb")
    monkeypatch.chdir(folder)

    zip_path = handin.handin(".", run_tests=False, make_pdf=False)

    assert downloads == [str(zip_path)]
    with zipfile.ZipFile(zip_path) as bundle:
        (name,) = [n for n in bundle.namelist() if n.endswith(".ipynb")]
        assert handin.read_names(nbformat.reads(bundle.read(name).decode(), as_version=4)) == NAMES


def test_handin_in_colab_before_the_setup_cell_says_to_run_it(tmp_path, monkeypatch, fake_colab):
    course = make_course(tmp_path, run=False)
    monkeypatch.delenv(colab.NOTEBOOK_VARIABLE, raising=False)
    monkeypatch.chdir(course / "release" / "a0_logistic")
    with pytest.raises(colab.ColabError, match="Run the notebook's first cell"):
        handin.handin(".", run_tests=False, make_pdf=False)


def test_stock_nbgrader_grades_a_notebook_that_carries_the_setup_cell(tmp_path):
    """The committed release (set-up cell first), solved: plain ``nbgrader autograde`` gives every point,
    the set-up cell running as a student's own cell and doing nothing outside Colab."""
    sys.path.insert(0, str(ROOT / "tests" / "grader"))
    from dlcourse.authoring.demo import filled_notebook
    from helpers import scratch_course
    from test_nbgrader_compat import autograded_score, nbgrader

    course = scratch_course(tmp_path, "a1_autodiff")
    master = course / "source/a1_autodiff/a1_autodiff.ipynb"
    nbgrader(course, "generate_assignment", "a1_autodiff", "--force")
    solved = filled_notebook(master, ROOT / "release/a1_autodiff/a1_autodiff.ipynb")
    assert colab.is_setup_cell(solved.cells[0])
    folder = course / "submitted" / "alice" / "a1_autodiff"
    folder.mkdir(parents=True)
    nbformat.write(solved, str(folder / master.name))
    nbgrader(course, "autograde", "a1_autodiff", "--force")
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        submission = gradebook.find_submission("a1_autodiff", "alice")
        assert submission.code_score == submission.max_code_score > 0
