"""The reference check's judgement and the grader-fault state, on random results (no kernel).

`judge` finds exactly the test cells the reference lost points on (with their
reasons, without tracebacks) and the errors of its own cells; `mark_grader_faults`
removes exactly those cells from every student's score and maximum and keeps
the reason from the student; the state survives the stored JSON; a student's
fingerprint changes with the set of excluded cells; the fingerprint of the
reference changes with the master, the options and the data sets present.
"""

from __future__ import annotations

import json
import random

import nbformat
import pytest

from dlcourse.grading.reference import (STUDENT_MESSAGE, ReferenceCheck, faults_digest, judge, mark_grader_faults,
                                        reference_fingerprint)
from dlcourse.grading.results import GRADER_FAULT, CellGrade, GradingOptions, NotebookResult, Status, SubmissionResult

SEEDS = range(30)


def _random_result(rng: random.Random, student: str = "ref") -> SubmissionResult:
    notebooks = []
    for n in range(rng.randint(1, 3)):
        cells = []
        for c in range(rng.randint(1, 6)):
            if rng.random() < 0.2:
                cells.append(CellGrade(f"nb{n}", f"why{c}", "manual", float(rng.randint(1, 3)), None))
                continue
            points = float(rng.randint(1, 5))
            cells.append(CellGrade(f"nb{n}", f"test_{c}", "test", points, rng.choice([points, 0.0, points]),
                                   rng.choice(["", f"reason {n}.{c}\nTraceback (most recent call last):\n  x"])))
        notebooks.append(NotebookResult(f"nb{n}", Status.OK, cells))
    return SubmissionResult(student, "a1", Status.OK, notebooks)


@pytest.mark.parametrize("seed", SEEDS)
def test_judge_names_exactly_the_cells_short_of_full_marks_without_tracebacks(seed):
    result = _random_result(random.Random(seed))
    check = judge(result)
    short = {(nb.name, c.grade_id) for nb in result.notebooks for c in nb.cells
             if c.kind == "test" and c.score < c.max_score}
    assert set(check.faults) == short
    assert check.ok == (not short)
    assert all("Traceback" not in reason and reason for reason in check.faults.values())
    text = check.refusal()
    assert all(f"{nb} {cell}:" in text for nb, cell in short) and "--force" in text


def test_judge_reports_an_error_of_the_references_own_cell_such_as_a_missing_data_set():
    graded = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = load()")])
    graded.cells[0].outputs = [nbformat.v4.new_output("error", ename="DataMissingError",
                                                      evalue="MNIST is not in /d/MNIST/raw (download=False).",
                                                      traceback=[])]
    result = SubmissionResult("ref", "a6", Status.OK, [NotebookResult("a6", Status.OK, [], graded=graded)])
    check = judge(result)
    assert not check.ok
    assert check.problems == ["a6: cell 1 raised DataMissingError: MNIST is not in /d/MNIST/raw (download=False)."]


@pytest.mark.parametrize("seed", SEEDS)
def test_grader_faults_leave_score_and_maximum_of_every_student_and_hide_the_reason(seed):
    rng = random.Random(seed)
    reference = _random_result(rng)
    check = judge(reference)
    student = _random_result(random.Random(seed + 1000), "ann")  # same cells, other scores
    student.notebooks = [NotebookResult(nb.name, nb.status, [CellGrade(**vars(c)) for c in nb.cells])
                         for nb in reference.notebooks]
    for cell in (c for nb in student.notebooks for c in nb.cells if c.kind == "test"):
        cell.score = rng.choice([0.0, cell.max_score])
    kept = [c for nb in student.notebooks for c in nb.cells
            if c.kind == "test" and (c.notebook, c.grade_id) not in check.faults]
    expected = (sum(c.score for c in kept), sum(c.max_score for c in kept))
    mark_grader_faults(student, check)
    assert (student.score, student.max_score) == expected
    for cell in (c for nb in student.notebooks for c in nb.cells):
        faulty = (cell.notebook, cell.grade_id) in check.faults
        assert (cell.state == GRADER_FAULT) == faulty
        if faulty:
            assert cell.score is None and cell.message == STUDENT_MESSAGE
    back = SubmissionResult.from_json(json.loads(json.dumps(student.to_json())))
    assert (back.score, back.max_score) == expected
    assert [c.state for nb in back.notebooks for c in nb.cells] == [c.state for nb in student.notebooks
                                                                     for c in nb.cells]


@pytest.mark.parametrize("seed", SEEDS[:10])
def test_the_set_of_excluded_cells_is_part_of_a_students_fingerprint(seed):
    rng = random.Random(seed)
    cells = [(f"nb{rng.randint(0, 2)}", f"test_{i}") for i in range(rng.randint(1, 5))]
    check = ReferenceCheck("a1", {cell: "reason" for cell in cells})
    assert faults_digest(ReferenceCheck("a1")) == "" and faults_digest(None) == ""
    assert faults_digest(check) != ""
    assert faults_digest(check) == faults_digest(ReferenceCheck("a1", {c: "other" for c in reversed(cells)}))
    assert faults_digest(check) != faults_digest(ReferenceCheck("a1", {c: "r" for c in cells[1:]} | {("x", "y"): ""}))


def test_reference_fingerprint_follows_master_options_and_data_sets(tmp_path):
    master, data = tmp_path / "source" / "a1", tmp_path / "data"
    master.mkdir(parents=True)
    data.mkdir()
    (master / "a1.ipynb").write_text("{}")
    options = GradingOptions(read_only=[str(data)])
    first = reference_fingerprint(master, options)
    assert reference_fingerprint(master, options) == first
    (data / "MNIST").mkdir()
    (data / "MNIST" / "train").write_bytes(b"x" * 10)
    with_data = reference_fingerprint(master, options)
    assert with_data != first
    (master / "a1.ipynb").write_text('{"changed": 1}')
    assert reference_fingerprint(master, options) not in (first, with_data)
    assert reference_fingerprint(master, GradingOptions(read_only=[str(data)], cell_timeout=1)) \
        != reference_fingerprint(master, options)


class _CannedExecutor:
    """Stands in for the pool: every job gets ``result``; the jobs are counted."""

    def __init__(self, result: SubmissionResult):
        self.result, self.jobs = result, 0

    def submit(self, function, job):
        from concurrent.futures import Future

        self.jobs += 1
        future = Future()
        future.set_result(self.result)
        return future


_MASTER = nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]))


def _course_with_master(root):
    from dlcourse.core.course import CourseLayout

    layout = CourseLayout(root)
    folder = layout.source / "a1"
    folder.mkdir(parents=True)
    (folder / "a1.ipynb").write_text(_MASTER)  # the same bytes in every copy (a new cell gets a random id)
    return layout


@pytest.mark.parametrize("seed", range(6))
def test_a_passing_check_serves_every_copy_of_the_course_on_this_machine_and_a_failing_one_none(
        seed, tmp_path, monkeypatch):
    from dlcourse.grading.reference import check_reference

    monkeypatch.setenv("DLCOURSE_CACHE", str(tmp_path / "machine"))
    result = _random_result(random.Random(seed))
    graded = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    result.notebooks[0].graded = graded
    passes = judge(result).ok
    executor = _CannedExecutor(result)
    first = check_reference(_course_with_master(tmp_path / "one"), "a1", GradingOptions(), executor)
    assert not first.cached and executor.jobs == 1 and first.ok == passes
    from dlcourse.core.course import CourseLayout

    again = check_reference(CourseLayout(tmp_path / "one"), "a1", GradingOptions(), executor)
    assert again.cached and executor.jobs == 1  # the course's own copy, as before
    copy = _course_with_master(tmp_path / "two")
    second = check_reference(copy, "a1", GradingOptions(), executor)
    assert second.cached == passes and executor.jobs == (1 if passes else 2)
    assert (second.faults, second.problems) == (first.faults, first.problems)
    folder = copy.autograded / ".reference" / "a1"
    assert json.loads((folder / "reference.json").read_text())["check"] == first.to_json()
    assert nbformat.read(str(folder / f"{result.notebooks[0].name}.ipynb"), as_version=4).cells[0].source == "x = 1"
    changed = _course_with_master(tmp_path / "three")
    (changed.source / "a1" / "notes.txt").write_text("a change of the master's folder")
    assert not check_reference(changed, "a1", GradingOptions(), executor).cached
