"""What a plain test cell sees around it in the grader's process, as under stock nbgrader (issue 29).

``CellFolder``: stock's ``NBGRADER_EXECUTION`` and the notebook's folder as the working directory, as a private
copy that a student's link, FIFO or module cannot turn against the grader; the supporting files of ``source/``
laid out as stock's autograde lays them out; a submission's status when some notebooks are missing; the
AUTOTEST expansion replacing the master's test cell in the merge, never the student's copy.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import nbformat
import pytest

from dlcourse.grading.autotest import lay_out_supporting_files, supporting_files
from dlcourse.grading.merge import merge_with_master
from dlcourse.grading.plain import CellFolder
from dlcourse.grading.results import NotebookResult, Status
from dlcourse.grading.submission import submission_status


@pytest.fixture
def folder(tmp_path):
    workdir = tmp_path / "work"
    workdir.mkdir()
    cell_folder = CellFolder(workdir)
    yield workdir, cell_folder
    cell_folder.close()


def test_a_cell_sees_nbgrader_execution_autograde_and_the_notebooks_folder_then_both_are_restored(folder):
    workdir, cell_folder = folder
    (workdir / "data.txt").write_text("line 1\nline 2\n")
    before_dir, before_env = os.getcwd(), os.environ.get("NBGRADER_EXECUTION")
    with cell_folder.entered():
        assert os.environ["NBGRADER_EXECUTION"] == "autograde"
        with open("data.txt") as handle:
            assert handle.read() == "line 1\nline 2\n"
        assert os.getcwd() != str(workdir)  # a private copy, not the folder the student's code writes to
    assert os.getcwd() == before_dir and os.environ.get("NBGRADER_EXECUTION") == before_env


def test_a_link_a_fifo_and_a_linked_folder_of_the_student_never_reach_the_test(folder, tmp_path):
    workdir, cell_folder = folder
    secret = tmp_path / "gradebook-secret.txt"
    secret.write_text("the grader's own file")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "inner.txt").write_text("the grader's other file")
    os.symlink(secret, workdir / "data.txt")
    os.symlink(tmp_path / "elsewhere", workdir / "sub")
    os.mkfifo(workdir / "pipe.txt")  # opening it for reading would block the grader
    (workdir / "plain.txt").write_text("ok")
    with cell_folder.entered():
        assert sorted(os.listdir(".")) == ["plain.txt"]


def test_the_copy_follows_the_students_folder_from_one_cell_to_the_next(folder):
    workdir, cell_folder = folder
    (workdir / "a.txt").write_text("first")
    (workdir / "gone.txt").write_text("soon removed")
    with cell_folder.entered():
        assert Path("a.txt").read_text() == "first"
        with open("mine.txt", "w") as handle:  # a file the test writes itself stays for the next cell
            handle.write("the test's")
    (workdir / "a.txt").write_text("second, longer")
    (workdir / "gone.txt").unlink()
    (workdir / "sub").mkdir()
    (workdir / "sub" / "b.txt").write_text("new")
    with cell_folder.entered():
        assert Path("a.txt").read_text() == "second, longer"
        assert not os.path.exists("gone.txt")
        assert Path(os.path.join("sub", "b.txt")).read_text() == "new"
        assert Path("mine.txt").read_text() == "the test's"


def test_a_module_in_the_students_folder_is_not_importable_by_the_test(folder):
    workdir, cell_folder = folder
    (workdir / "student_helper_c7.py").write_text("RAN = True\n")
    sys.path.insert(0, "")  # as an interpreter started with -c has it
    try:
        with cell_folder.entered(), pytest.raises(ModuleNotFoundError):
            __import__("student_helper_c7")
        assert sys.path[0] == ""
    finally:
        sys.path.remove("")
        sys.modules.pop("student_helper_c7", None)


def _course(tmp_path, config: str = ""):
    root = tmp_path / "course"
    source = root / "source" / "ps1"
    (source / "sub").mkdir(parents=True)
    (root / "nbgrader_config.py").write_text("c = get_config()\n" + config)
    for name in ("p1.ipynb", "data.csv", "helper.py", "sub/table.txt", "cache.pyc", "sub/__pycache__/x.pyc"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(f"source's {name}")
    return source


def test_supporting_files_are_every_file_but_notebooks_ignored_names_and_exclude_overwriting(tmp_path):
    source = _course(tmp_path, 'c.Autograde.exclude_overwriting = {"ps1": ["helper.py"]}\n')
    assert sorted(str(p.relative_to(source)) for p in supporting_files(source)) == ["data.csv", "sub/table.txt"]


def test_source_files_overwrite_the_students_copies_as_stock_autograde_does(tmp_path):
    source = _course(tmp_path)
    workdir = tmp_path / "work"
    (workdir / "sub").mkdir(parents=True)
    (workdir / "data.csv").write_text("the student's data")
    (workdir / "mine.txt").write_text("the student's own file")
    os.symlink(tmp_path / "nowhere", workdir / "sub" / "table.txt")
    lay_out_supporting_files(source, workdir)
    assert (workdir / "data.csv").read_text() == "source's data.csv"
    assert (workdir / "helper.py").read_text() == "source's helper.py"
    assert not (workdir / "sub" / "table.txt").is_symlink()
    assert (workdir / "sub" / "table.txt").read_text() == "source's sub/table.txt"
    assert (workdir / "mine.txt").read_text() == "the student's own file"
    assert not (workdir / "p1.ipynb").exists()


@pytest.mark.parametrize("seed", range(20))
def test_a_submission_is_missing_only_when_every_notebook_is(seed):
    rng = random.Random(seed)
    statuses = [rng.choice(list(Status)) for _ in range(rng.randint(1, 5))]
    notebooks = [NotebookResult(name=f"p{i}", status=s, cells=[]) for i, s in enumerate(statuses)]
    handed_in = [s for s in statuses if s != Status.MISSING]
    expected = Status.worst(handed_in) if handed_in else Status.MISSING
    assert submission_status(notebooks) == expected


def _cell(kind: str, source: str, grade_id: str, **meta):
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade_id": grade_id, "schema_version": 3, "grade": kind == "test",
                                 "solution": kind == "answer", "locked": kind == "test", **meta}
    if kind == "test":
        cell.metadata["nbgrader"]["points"] = 1
    return cell


def test_the_autotest_expansion_replaces_the_masters_test_never_the_students_copy():
    master = nbformat.v4.new_notebook(cells=[_cell("answer", "a = 5", "soln"),
                                             _cell("test", "### AUTOTEST a", "test_a")])
    student = nbformat.v4.new_notebook(cells=[_cell("answer", "a = 7", "soln"),
                                              _cell("test", "assert True  # the student's own version", "test_a")])
    expanded = 'assert str(a) == "5", "value of a is not correct"'
    merged = {c.grade_id: c for c in merge_with_master(master, student, {"test_a": expanded})}
    assert merged["test_a"].source == expanded and merged["test_a"].role == "test"
    assert merged["soln"].source == "a = 7"
    assert {c.grade_id: c.source for c in merge_with_master(master, student)}["test_a"] == "### AUTOTEST a"


def test_a_test_that_imports_a_module_of_the_assignments_folder_runs_in_the_kernel(tmp_path):
    from dlcourse.grading.autotest import folder_import_reason

    (tmp_path / "helper.py").write_text("VALUE = 1\n")
    (tmp_path / "pkg").mkdir()
    assert "helper" in folder_import_reason("import helper\nassert helper.VALUE == 1", tmp_path)
    assert "helper" in folder_import_reason("from helper import VALUE", tmp_path)
    assert "pkg" in folder_import_reason("import pkg.sub as p", tmp_path)
    assert folder_import_reason("import numpy as np\nfrom . import helper", tmp_path) is None
    assert folder_import_reason("import helper", None) is None


@pytest.mark.parametrize("ending", ["\n", "\n\n", "\r\n", "  \n"])
def test_a_plain_cell_ending_with_a_newline_is_no_magic_and_runs_in_the_graders_process(ending):
    from dlcourse.core.testcode import kernel_reason

    assert kernel_reason("assert squares(1) == [1]" + ending) is None
    assert kernel_reason("%time squares(1)" + ending) == "uses IPython magics or shell commands"


def test_the_course_roots_autotests_yml_is_part_of_every_fingerprint_of_graded_results(tmp_path):
    from dlcourse.grading.reference import reference_fingerprint
    from dlcourse.grading.results import GradingOptions
    from dlcourse.grading.submission import GradingJob, fingerprint

    source = _course(tmp_path)
    job = GradingJob("alice", "ps1", str(tmp_path / "submitted"), str(source), GradingOptions())
    before = fingerprint(job), reference_fingerprint(source, job.options)
    (tmp_path / "course" / "autotests.yml").write_text("python3:\n  dispatch: 'type({{snippet}})'\n")
    after = fingerprint(job), reference_fingerprint(source, job.options)
    assert before[0] != after[0] and before[1] != after[1]


def test_a_file_the_students_code_writes_during_the_cell_is_there_after_the_call(folder):
    from dlcourse.grading.plain import _Refreshing

    workdir, cell_folder = folder

    class SavingBackend:  # the student's save(...) writes beside the notebook, in the kernel's folder
        requests = 0

        def request(self, request):
            if request["op"] == "call":
                (workdir / "model.txt").write_text("saved")
            return {"ok": True, "value": None}

    backend = _Refreshing(SavingBackend(), cell_folder)
    with cell_folder.entered():
        assert not os.path.exists("model.txt")
        backend.request({"op": "names", "names": ["save"]})
        assert not os.path.exists("model.txt")
        backend.request({"op": "call", "target": "save"})
        assert Path("model.txt").read_text() == "saved"
        assert backend.requests == 0  # the backend's own counters stay readable
