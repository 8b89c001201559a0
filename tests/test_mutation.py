"""The mutation suite: plausible mistakes lose points, valid alternatives don't.

For every assignment, each mutant of ``tests/mutants/aN.py`` replaces one
answer cell of the reference solution; it must lose points on that item's
own test cells. Each alternative must get full marks everywhere. All
variants of an assignment are graded in one parallel run of the real engine.
"""

from __future__ import annotations

import nbformat
import pytest

from dlcourse.grading import CourseLayout, grade_assignment
from helpers import (KILL_RATE_FILE, master_with_answer, mutant_modules, options, scratch_course,
                     solution_notebook, item_test_ids, with_answer)

MODULES = mutant_modules()


@pytest.mark.slow
@pytest.mark.parametrize("prefix", sorted(MODULES))
def test_mutants_are_killed_and_alternatives_pass(prefix, tmp_path):
    module = MODULES[prefix]
    variants = [("mutant", *m) for m in module.MUTANTS] + [("alternative", *a) for a in module.ALTERNATIVES]
    assert len(module.MUTANTS) >= 3 and module.ALTERNATIVES, f"{prefix}: too few mutants or alternatives"
    masters = {answer_id: master_with_answer(prefix, answer_id) for _, answer_id, _, _ in variants}
    assignment = next(iter(masters.values())).parent.name
    course = scratch_course(tmp_path, assignment)
    layout = CourseLayout(course)
    plan = {}
    for index, (kind, answer_id, description, source) in enumerate(variants):
        student = f"{kind}-{index:03d}"
        folder = layout.submitted / student / assignment
        folder.mkdir(parents=True)
        master = masters[answer_id]
        for other in sorted(master.parent.glob("*.ipynb")):
            notebook = solution_notebook(other)
            if other == master:
                notebook = with_answer(notebook, answer_id, source)
            nbformat.write(notebook, str(folder / other.name))
        plan[student] = (kind, answer_id, description, master)
    results = {r.student_id: r for r in grade_assignment(layout, assignment, workers=2, options=options(),
                                                         progress=False)}
    survivors, failed_alternatives = [], []
    for student, (kind, answer_id, description, master) in plan.items():
        result = results[student]
        cells = {c.grade_id: c for nb in result.notebooks if nb.name == master.stem for c in nb.cells}
        own = item_test_ids(master, answer_id)
        assert own, f"{prefix}: answer cell {answer_id!r} has no test cell named test_{answer_id}[_*]"
        if kind == "mutant":
            if all(cells[i].score == cells[i].max_score for i in own):
                survivors.append(f"{answer_id}: {description}")
        else:
            lost = [f"{c.grade_id} ({c.message[:120]})" for nb in result.notebooks for c in nb.cells
                    if c.kind == "test" and c.score != c.max_score]
            if lost or result.status != "ok":
                failed_alternatives.append(f"{answer_id}: {description}: status {result.status}, lost {lost}")
    killed = len(module.MUTANTS) - len(survivors)
    KILL_RATE_FILE.parent.mkdir(exist_ok=True)
    with open(KILL_RATE_FILE, "a") as handle:
        handle.write(f"{assignment}: {killed}/{len(module.MUTANTS)} mutants killed "
                     f"({100 * killed / len(module.MUTANTS):.0f}%), "
                     f"{len(module.ALTERNATIVES) - len(failed_alternatives)}/{len(module.ALTERNATIVES)} "
                     f"alternatives with full marks\n")
    assert not survivors, "mutants that kept all their points:\n" + "\n".join(survivors)
    assert not failed_alternatives, "valid alternatives that lost points:\n" + "\n".join(failed_alternatives)

