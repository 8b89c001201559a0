"""Bad submissions are graded, never crashed on, and never hurt the others.

One `dlcourse grade` run (2 workers, cell limit 15 s, 1 GiB) over a tiny
course: broken files, a missing or renamed notebook, mangled cells, an
infinite loop, a loop that ignores interrupts, a memory hog, a kernel that
exits or segfaults, sys.exit, an output flood and a fork bomb. Each ends
with the status and points asserted here (the run in under 600 s, an endless
loop in under 90 s), and the honest student graded beside them gets full marks.
"""

from __future__ import annotations

import pytest

from tiny_course import GOOD_CUBE, GOOD_SQUARE, MAX_SCORE, template_course, tree_digest

GOOD = {"square": GOOD_SQUARE, "cube": GOOD_CUBE}

INFINITE_LOOP = "while True:\n    pass"
STUBBORN_CUBE = """
import signal
def cube(x):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        pass
"""
MEMORY_HOG = "import torch\nhog = torch.ones(900_000_000)  # 3.6 GB\nprint(hog.sum())"
OS_EXIT = "import os\nos._exit(3)"
SEGFAULT_CUBE = "import ctypes\ndef cube(x):\n    ctypes.string_at(0)\n    return x ** 3"
SYS_EXIT = "import sys\nsys.exit(1)"
FLOOD = "for i in range(2000):\n    print('flood', i, 'x' * 5000)"  # 10 MB
FLOOD_SQUARE = "def square(x):\n    print('y' * 1_000_000)\n    return x * x"
# os.fork from a small process: forking the kernel itself (torch loaded) takes ~0.2 s a time on a busy machine.
FORKER = """
import os, time
children = []
try:
    for _ in range(300):
        pid = os.fork()
        if pid == 0:
            time.sleep(2)
            os._exit(0)
        children.append(pid)
except OSError as error:
    print("fork refused:", type(error).__name__)
print("FORKED", len(children), flush=True)
for pid in children:
    os.waitpid(pid, 0)
"""
FORK = f"""
import subprocess, sys
print(subprocess.run([sys.executable, "-c", {FORKER!r}], capture_output=True, text=True, timeout=60).stdout)
"""


def _mangle(notebook):
    """Delete the test cells, duplicate an answer, retype another, reverse the order."""
    cells = []
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution"):
            continue  # deleted test cell
        if meta.get("grade_id") == "square":
            cell.cell_type = "markdown"  # retyped: a code answer kept as markdown counts as empty
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
        cells.append(cell)
        if meta.get("grade_id") == "cube":
            cells.append(cell.copy())  # duplicated
    notebook.cells = cells[::-1]


def _empty(notebook):
    notebook.cells = []


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = template_course(tmp_path_factory).copy(tmp_path_factory.mktemp("bad") / "course")
    course.submit("good", GOOD)
    course.submit("invalid_json", raw=b'{"cells": [ this is not json')
    course.submit("bad_schema", raw=b'{"cells": 5, "metadata": [], "nbformat": 4}')
    course.submit("missing", name=None, files={"notes.txt": b"I forgot the notebook"})
    course.submit("renamed", GOOD, name="tiny-final (1).ipynb")
    course.submit("empty", edit=_empty)
    course.submit("mangled", {"square": GOOD_SQUARE, "cube": GOOD_CUBE}, edit=_mangle)
    course.submit("infinite_loop", GOOD, extra_before={"square": [INFINITE_LOOP]})
    course.submit("stubborn_loop", {"square": GOOD_SQUARE, "cube": STUBBORN_CUBE})
    course.submit("memory_hog", GOOD, extra_after={"test_square": [MEMORY_HOG]})
    course.submit("os_exit", GOOD, extra_after={"test_square": [OS_EXIT]})
    course.submit("segfault", {"square": GOOD_SQUARE, "cube": SEGFAULT_CUBE})
    course.submit("sys_exit", GOOD, extra_before={"square": [SYS_EXIT]})
    course.submit("flood", {"square": FLOOD_SQUARE, "cube": GOOD_CUBE}, extra_before={"square": [FLOOD]})
    course.submit("fork", GOOD, extra_before={"square": [FORK]})
    course.submit("syntax_error", {"square": "def square(x) return x", "cube": GOOD_CUBE})
    submitted = tree_digest(course.submitted)
    run = course.grade("--workers", "2")
    assert run.returncode == 0, run.stdout + run.stderr
    feedback = course.dlcourse("feedback", "tiny")
    assert feedback.returncode == 0, feedback.stdout + feedback.stderr
    return {"course": course, "run": run, "submitted": submitted}


# student -> (score, status)
EXPECTED = {
    "good": (MAX_SCORE, "ok"),
    "invalid_json": (0.0, "invalid-notebook"),
    "bad_schema": (0.0, "invalid-notebook"),
    "missing": (0.0, "missing"),
    "renamed": (MAX_SCORE, "renamed"),
    "empty": (0.0, "ok"),
    "mangled": (1.0, "ok"),  # square was retyped to markdown (0 of 2), cube graded (1)
    "infinite_loop": (MAX_SCORE, "timeout"),  # the loop is stopped; the later cells still run
    "stubborn_loop": (2.0, "timeout"),
    "memory_hog": (2.0, "memory"),  # square was tested before the hog; cube not
    "os_exit": (2.0, "crashed"),
    "segfault": (2.0, "crashed"),
    "sys_exit": (MAX_SCORE, "ok"),  # IPython turns SystemExit into an error of that cell
    "flood": (MAX_SCORE, "ok"),
    "fork": (MAX_SCORE, "ok"),
    "syntax_error": (1.0, "ok"),
}


@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_outcome(graded, student):
    course = graded["course"]
    score, max_score, status = course.grades()[student]
    expected_score, expected_status = EXPECTED[student]
    assert (score, status) == (expected_score, expected_status), course.result(student)["notebooks"][0]["message"]
    assert max_score == MAX_SCORE
    html = course.feedback_html(student)
    assert "Status:" in html and "Automatic score:" in html


def test_every_student_has_a_row(graded):
    assert set(graded["course"].grades()) == set(EXPECTED)


def test_the_run_takes_under_600_s_and_each_endless_loop_under_90_s(graded):
    assert graded["run"].seconds < 600, f"grading took {graded['run'].seconds:.0f} s"
    for student in ("infinite_loop", "stubborn_loop"):
        seconds = graded["course"].result(student)["seconds"]
        assert seconds < 90, f"{student} took {seconds:.0f} s with a cell limit of 15 s"


def test_submitted_is_never_modified(graded):
    assert tree_digest(graded["course"].submitted) == graded["submitted"]


def test_feedback_says_why(graded):
    assert not graded["course"].missing_texts({
        "feedback": [("invalid_json", "could not be read"), ("missing", "notebook missing"),
                     ("infinite_loop", "time limit"), ("memory_hog", "out of memory"), ("os_exit", "crashed"),
                     ("renamed", "another name")],
        "printed": [("infinite_loop", "stopped by the grader after 15 s")],
    })


def test_tests_after_a_dead_kernel_are_marked_not_run(graded):
    course = graded["course"]
    for student in ("memory_hog", "os_exit"):
        cells = {c["grade_id"]: c for c in course.result(student)["notebooks"][0]["cells"]}
        assert cells["test_square"]["score"] == 2.0
        assert cells["test_cube"]["score"] == 0.0
        assert cells["test_cube"]["message"].startswith("not run"), cells["test_cube"]["message"]


def test_a_flood_of_output_is_cut(graded):
    from dlcourse.sandbox.kernel import OUTPUT_LIMIT_BYTES

    text = graded["course"].graded_text("flood")
    assert "output cut by the grader" in text
    assert len(text) < 3 * OUTPUT_LIMIT_BYTES


def test_the_fork_finishes_and_a_pids_cgroup_holds_it_below_the_process_limit(graded):
    """The forker prints how many children it made; where there is no pids cgroup (the rlimit fallback)
    only that it finished is checked."""
    import re

    text = graded["course"].graded_text("fork")
    match = re.search(r"FORKED (\d+)", text)
    assert match, text[-2000:]
    from dlcourse.sandbox.isolation import Limits, _cgroup_roots

    if _cgroup_roots() is not None:  # a pids cgroup holds the kernel to Limits.processes
        assert int(match.group(1)) < Limits().processes
        assert "fork refused" in text


def test_a_memory_hog_never_got_its_memory(graded):
    """Its ``print(hog.sum())`` never printed: the 3.6 GB tensor was never made whole."""
    text = graded["course"].graded_text("memory_hog")
    assert "tensor(" not in text  # the sum was never printed



JUNK = {
    "binary": b"\x89PNG\r\n\x1a\n\x00\x00",
    "empty file": b"",
    "a list": b"[1, 2, 3]",
    "cells are not cells": b'{"cells": ["x", 5, null, []], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}',
    "metadata is a list": (b'{"cells": [{"cell_type": "code", "source": "x", "metadata": [], "outputs": []}], '
                           b'"metadata": {}, "nbformat": 4, "nbformat_minor": 5}'),
    "source is a number": (b'{"cells": [{"cell_type": "code", "source": 5, "metadata": {}, "outputs": []}], '
                           b'"metadata": {}, "nbformat": 4, "nbformat_minor": 5}'),
    "nested too deep": b"[" * 100_000 + b"]" * 100_000,
    "old format 3": b'{"worksheets": [{"cells": []}], "metadata": {}, "nbformat": 3, "nbformat_minor": 0}',
}


@pytest.mark.parametrize("kind", sorted(JUNK))
def test_junk_files_are_refused_or_merged_never_crash(tmp_path, tmp_path_factory, kind):
    """No kernel needed: reading and merging either refuse the file (invalid-notebook) or give cells."""
    from dlcourse.grading import merge_with_master
    from dlcourse.core.notebook import read_notebook

    master = read_notebook(template_course(tmp_path_factory).master_path)
    path = tmp_path / "tiny.ipynb"
    path.write_bytes(JUNK[kind])
    try:
        notebook = read_notebook(path)
    except ValueError as error:
        assert "cannot be read" in str(error) or "no list of cells" in str(error)
        return
    cells = merge_with_master(master, notebook)
    assert [c.grade_id for c in cells if c.role == "test"] == ["test_square", "test_cube"]
    assert all(c.source == "" for c in cells if c.role == "answer")


def test_the_notebook_time_limit_holds_when_each_cell_keeps_to_its_own(tmp_path, tmp_path_factory):
    """Cells of 8 s each under a cell limit of 15 s, and a notebook limit of 20 s: a timeout, no points,
    and the run ends in under 120 s."""
    import time

    from dlcourse.grading import GradingOptions, grade_notebook
    from dlcourse.sandbox.isolation import Limits

    course = template_course(tmp_path_factory).copy(tmp_path / "course")
    slow = ["import time\ntime.sleep(8)"] * 4
    path = course.submit("slow", GOOD, extra_before={"square": slow})
    started = time.monotonic()
    result = grade_notebook(course.master_path, path, GradingOptions(
        cell_timeout=15, notebook_timeout=20, limits=Limits(memory_bytes=2**30)))
    elapsed = time.monotonic() - started
    assert result.status == "timeout"
    assert result.score == 0.0
    assert elapsed < 120, f"a notebook limit of 20 s took {elapsed:.0f} s"


def test_without_cgroups_rlimits_hold_memory(tmp_path, tmp_path_factory, monkeypatch):
    """Where /sys/fs/cgroup is not writable: torch still imports, and a hog gets an error, not the memory."""
    import dlcourse.sandbox.isolation
    from dlcourse.grading import GradingOptions, grade_notebook
    from dlcourse.sandbox.isolation import Limits

    monkeypatch.setattr(dlcourse.sandbox.isolation, "_cgroup_roots", lambda: None)
    course = template_course(tmp_path_factory).copy(tmp_path / "course")
    options = GradingOptions(cell_timeout=15, notebook_timeout=90, limits=Limits(memory_bytes=2**30))
    good = grade_notebook(course.master_path, course.submit("good", GOOD), options)
    assert (good.status, good.score) == ("ok", MAX_SCORE), [c.message for c in good.cells]
    hog = grade_notebook(course.master_path, course.submit("hog", GOOD, extra_after={"test_square": [MEMORY_HOG]}),
                         options)
    assert hog.status == "memory"
    assert hog.score == 2.0  # square, tested before the hog; the cells after a memory error are not run
