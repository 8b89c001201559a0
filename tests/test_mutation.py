"""The mutation suite: plausible mistakes lose points, valid alternatives don't.

For every assignment, each mutant of ``tests/mutants/aN.py`` replaces one
answer cell of the reference solution; it must lose points on that item's
own test cells. Each alternative must get full marks on every cell of its
notebook. All variants are graded by the real engine (sandboxed kernels,
tests in the clean process), in parallel through one shared executor.

A mutant only needs its notebook up to its item's last test cell: later
cells cannot change those tests' outcome, and the other items' tests do not
decide whether it is killed. So each mutant is graded against a master cut
there, which keeps the training notebooks (A3, A4, A6) affordable.
"""

from __future__ import annotations

import nbformat
import pytest

from dlcourse.grading import CourseLayout, GradingJob, default_executor, grade_submission, nbgrader_meta
from helpers import (KILL_RATE_FILE, item_test_ids, master_with_answer, mutant_modules, options,
                     solution_notebook, with_answer)

MODULES = mutant_modules()


@pytest.fixture(scope="module")
def executor():
    pool = default_executor(2)
    yield pool
    pool.shutdown()


def cut_master(master_path, answer_id: str):
    """The master up to the item's last test cell, without the other items' tests."""
    master = nbformat.read(str(master_path), as_version=4)
    own = set(item_test_ids(master_path, answer_id))
    last = max(i for i, c in enumerate(master.cells) if nbgrader_meta(c).get("grade_id") in own)
    cells = [c for c in master.cells[:last + 1]
             if not (nbgrader_meta(c).get("grade") and not nbgrader_meta(c).get("solution")
                     and nbgrader_meta(c).get("grade_id") not in own)]
    master.cells = cells
    return master


def write_course(root, assignment: str, master, master_name: str):
    layout = CourseLayout(root)
    folder = layout.source / assignment
    folder.mkdir(parents=True)
    nbformat.write(master, str(folder / master_name))
    return layout


@pytest.mark.slow
@pytest.mark.parametrize("prefix", sorted(MODULES))
def test_mutants_are_killed_and_alternatives_pass(prefix, tmp_path, executor):
    module = MODULES[prefix]
    assert len(module.MUTANTS) >= 3 and module.ALTERNATIVES, f"{prefix}: too few mutants or alternatives"
    survivors, failed_alternatives = [], []
    runs = []  # (layout, assignment, {student: (kind, answer_id, description)}, master_path)
    groups: dict[tuple, list] = {}
    for index, (answer_id, description, source) in enumerate(module.MUTANTS):
        groups.setdefault(("mutant", answer_id), []).append((index, description, source))
    for index, (answer_id, description, source) in enumerate(module.ALTERNATIVES):
        groups.setdefault(("alternative", master_with_answer(prefix, answer_id).stem), []).append(
            (index, description, source, answer_id))
    for group_index, ((kind, key), items) in enumerate(sorted(groups.items())):
        if kind == "mutant":
            master_path = master_with_answer(prefix, key)
            master = cut_master(master_path, key)
        else:
            master_path = next(master_with_answer(prefix, item[3]) for item in items)
            master = nbformat.read(str(master_path), as_version=4)
        assignment = master_path.parent.name
        layout = write_course(tmp_path / f"run{group_index:03d}", assignment, master, master_path.name)
        plan = {}
        for item in items:
            index, description, source = item[:3]
            answer_id = key if kind == "mutant" else item[3]
            student = f"{kind}-{index:03d}"
            folder = layout.submitted / student / assignment
            folder.mkdir(parents=True)
            notebook = with_answer(solution_notebook(master_path), answer_id, source)
            if kind == "mutant":
                kept = {nbgrader_meta(c).get("grade_id") for c in master.cells}
                last = max(i for i, c in enumerate(notebook.cells) if nbgrader_meta(c).get("grade_id") in kept)
                notebook.cells = notebook.cells[:last + 1]
            nbformat.write(notebook, str(folder / master_path.name))
            plan[student] = (kind, answer_id, description)
        runs.append((layout, assignment, plan, master_path))
    futures = {}
    for layout, assignment, plan, master_path in runs:
        for student in plan:
            job = GradingJob(student, assignment, str(layout.submitted / student / assignment),
                             str(layout.source / assignment), options())
            futures[executor.submit(grade_submission, job)] = (plan[student], master_path)
    for future, ((kind, answer_id, description), master_path) in futures.items():
        result = future.result()
        cells = {c.grade_id: c for nb in result.notebooks for c in nb.cells}
        own = item_test_ids(master_path, answer_id)
        assert own, f"{prefix}: answer cell {answer_id!r} has no test cell named test_{answer_id}[_*]"
        if kind == "mutant":
            if all(cells[i].score == cells[i].max_score for i in own):
                survivors.append(f"{answer_id}: {description}")
        else:
            lost = [f"{c.grade_id} ({c.message[:160]})" for c in cells.values()
                    if c.kind == "test" and c.score != c.max_score]
            if lost or result.status != "ok":
                failed_alternatives.append(f"{answer_id}: {description}: status {result.status}, lost {lost}")
    killed = len(module.MUTANTS) - len(survivors)
    KILL_RATE_FILE.parent.mkdir(exist_ok=True)
    with open(KILL_RATE_FILE, "a") as handle:
        handle.write(f"{prefix}: {killed}/{len(module.MUTANTS)} mutants killed "
                     f"({100 * killed / len(module.MUTANTS):.0f}%), "
                     f"{len(module.ALTERNATIVES) - len(failed_alternatives)}/{len(module.ALTERNATIVES)} "
                     f"alternatives with full marks\n")
    assert not survivors, "mutants that kept all their points:\n" + "\n".join(survivors)
    assert not failed_alternatives, "valid alternatives that lost points:\n" + "\n".join(failed_alternatives)
