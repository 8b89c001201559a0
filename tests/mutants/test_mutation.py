"""The mutation suite: plausible mistakes lose points, valid alternatives don't.

One test per graded item (an answer cell of an assignment): each mutant of
that item in ``tests/mutants/aN.py`` replaces the item's answer cell of the
reference solution and must lose points on the item's own test cells; each
alternative of the item must get full marks on every cell of its notebook.
All variants are graded by the real engine (sandboxed kernels, tests in the
clean process), in parallel through one executor shared by the module.

A mutant only needs its notebook up to its item's last test cell: later
cells cannot change those tests' outcome, and the other items' tests do not
decide whether it is killed. So each mutant is graded against a master cut
there, which keeps the training notebooks (A3, A4, A6) affordable.
"""

from __future__ import annotations

import nbformat
import pytest

from dlcourse.course import CourseLayout
from dlcourse.grading import GradingJob, default_executor, grade_submission
from dlcourse.notebook import grade_id, is_test_cell
from helpers import (SOURCE, answer_ids, item_test_ids, kill_rate_summary, master_with_answer, mutant_modules,
                     options, record_kill_rate, solution_notebook, dependencies_between_test_cells, with_answer)

MODULES = mutant_modules()


def graded_items() -> list[tuple[str, str]]:
    """(prefix, answer_id) of every code answer cell of the masters, then of any variant naming another id.

    A variant whose grade id is not an answer cell gets its own item, whose test fails (no master has it).
    """
    items = [(prefix, answer_id) for prefix in sorted(MODULES)
             for master in sorted(SOURCE.glob(f"{prefix}_*/*.ipynb")) for answer_id in answer_ids(master)]
    for prefix, module in sorted(MODULES.items()):
        for answer_id, _, _ in module.MUTANTS + module.ALTERNATIVES:
            if (prefix, answer_id) not in items:
                items.append((prefix, answer_id))
    return items


@pytest.fixture(scope="module")
def executor():
    pool = default_executor(2)
    yield pool
    pool.shutdown()


def cut_master(master_path, answer_id: str):
    """The master up to the item's last test cell, without the other items' tests.

    Earlier test cells whose helpers the item's tests use stay (they pass on the reference's other
    answers): without them a mutant would be "killed" by a NameError of the test, not by its mistake.
    """
    master = nbformat.read(str(master_path), as_version=4)
    own = set(item_test_ids(master_path, answer_id))
    dependencies = dependencies_between_test_cells(master_path)
    keep, todo = set(own), list(own)
    while todo:
        for needed in dependencies[todo.pop()][0] - keep:
            keep.add(needed)
            todo.append(needed)
    last = max(i for i, c in enumerate(master.cells) if grade_id(c) in own)
    cells = [c for c in master.cells[:last + 1]
             if not (is_test_cell(c) and grade_id(c) not in keep)]
    master.cells = cells
    return master


def write_course(root, assignment: str, master, master_name: str):
    layout = CourseLayout(root)
    folder = layout.source / assignment
    folder.mkdir(parents=True)
    nbformat.write(master, str(folder / master_name))
    return layout


@pytest.mark.slow
@pytest.mark.parametrize(("prefix", "answer_id"), graded_items())
def test_mutants_are_killed_and_alternatives_pass(prefix, answer_id, tmp_path, executor):
    module = MODULES[prefix]
    variants = {kind: [(index, description, source) for index, (item, description, source) in enumerate(entries)
                       if item == answer_id]
                for kind, entries in (("mutant", module.MUTANTS), ("alternative", module.ALTERNATIVES))}
    master_path = master_with_answer(prefix, answer_id)
    assert len(variants["mutant"]) >= 3 and variants["alternative"], (
        f"{prefix} {answer_id}: too few mutants ({len(variants['mutant'])}, at least 3) "
        f"or alternatives ({len(variants['alternative'])}, at least 1)")
    own = item_test_ids(master_path, answer_id)
    assert own, f"{prefix}: answer cell {answer_id!r} has no test cell named test_{answer_id}[_*]"
    assignment = master_path.parent.name
    futures = {}  # the alternatives first: they run the whole notebook, the longest jobs go first
    for kind, master in (("alternative", nbformat.read(str(master_path), as_version=4)),
                         ("mutant", cut_master(master_path, answer_id))):
        layout = write_course(tmp_path / kind, assignment, master, master_path.name)
        # the cut master's graded and locked cells, for mutants (not None: an id-less markdown cell near the
        # end would keep the whole notebook)
        kept = {grade_id(c) for c in master.cells} - {None}
        for index, description, source in variants[kind]:
            student = f"{kind}-{index:03d}"
            folder = layout.submitted / student / assignment
            folder.mkdir(parents=True)
            notebook = with_answer(solution_notebook(master_path), answer_id, source)
            if kind == "mutant":
                last = max(i for i, c in enumerate(notebook.cells) if grade_id(c) in kept)
                notebook.cells = notebook.cells[:last + 1]
            nbformat.write(notebook, str(folder / master_path.name))
            job = GradingJob(student, assignment, str(folder), str(layout.source / assignment), options())
            futures[executor.submit(grade_submission, job)] = (kind, description)
    survivors, failed_alternatives = [], []
    for future, (kind, description) in futures.items():
        result = future.result()
        cells = {c.grade_id: c for nb in result.notebooks for c in nb.cells}
        if kind == "mutant":
            if all(cells[i].score == cells[i].max_score for i in own):
                survivors.append(f"{answer_id}: {description}")
        else:
            lost = [f"{c.grade_id} ({c.message[:160]})" for c in cells.values()
                    if c.kind == "test" and c.score != c.max_score]
            if lost or result.status != "ok":
                failed_alternatives.append(f"{answer_id}: {description}: status {result.status}, lost {lost}")
    n_mutants, n_alternatives = len(variants["mutant"]), len(variants["alternative"])
    record_kill_rate(prefix, answer_id, n_mutants - len(survivors), n_mutants,
                     n_alternatives - len(failed_alternatives), n_alternatives)
    assert not survivors, "mutants that kept all their points:\n" + "\n".join(survivors)
    assert not failed_alternatives, "valid alternatives that lost points:\n" + "\n".join(failed_alternatives)


def test_kill_rate_summary_adds_up_the_items_of_each_assignment():
    lines = ("a2 adam: 7/8 mutants killed, 3/3 alternatives with full marks\n"
             "a10 x: 3/3 mutants killed, 1/1 alternatives with full marks\n"
             "a2 ewma: 5/5 mutants killed, 1/2 alternatives with full marks\n"
             "something else\n")
    assert kill_rate_summary(lines) == (
        "a10: 3/3 mutants killed (100%), 1/1 alternatives with full marks (1 items)\n"
        "a2: 12/13 mutants killed (92%), 4/5 alternatives with full marks (2 items)\n"
        "something else\n")
