"""Public checks that find the bug: the mistakes a student can see fail before handing in.

``PUBLIC`` in ``tests/mutants/aN.py`` names mutants (by answer id and description) that the
*public* part of their item's test cells must catch alone: the part the release shows and a
student runs. Each such mutant is graded against the master cut after its item's last test
cell with every hidden part removed (what ``release/`` holds), and must lose points on its own
item; the reference solution, graded the same way, must keep them all (so a loss is the
mistake's, not a broken check's).
"""

from __future__ import annotations

import re

import nbformat
import pytest

from dlcourse.grading import GradingJob, default_executor, grade_submission
from dlcourse.core.notebook import grade_id, is_test_cell
from helpers import item_test_ids, master_with_answer, mutant_modules, options, solution_notebook, with_answer
from mutants.test_mutation import cut_master, write_course

MODULES = mutant_modules()
_HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", re.S)


def public_items() -> list[tuple[str, str]]:
    return sorted({(prefix, answer_id) for prefix, module in MODULES.items()
                   for answer_id, _ in getattr(module, "PUBLIC", [])})


def public_only(notebook):
    """The notebook with the hidden part of every test cell removed, as nbgrader releases it."""
    copy = nbformat.from_dict(notebook)
    for cell in copy.cells:
        if is_test_cell(cell):
            cell.source = _HIDDEN.sub("", cell.source)
    return copy


def test_every_public_entry_names_a_mutant_of_its_item():
    unknown = [f"{prefix}: {answer_id}: {description}" for prefix, module in sorted(MODULES.items())
               for answer_id, description in getattr(module, "PUBLIC", [])
               if (answer_id, description) not in {(a, d) for a, d, _ in module.MUTANTS}]
    assert not unknown, "PUBLIC entries that are not a mutant's (answer id, description):\n" + "\n".join(unknown)


def test_public_only_removes_exactly_the_hidden_parts():
    notebook = nbformat.v4.new_notebook()
    test = nbformat.v4.new_code_cell("a = 1\n### BEGIN HIDDEN TESTS\nb = 2\n### END HIDDEN TESTS\nc = 3\n")
    test.metadata["nbgrader"] = {"grade": True, "grade_id": "test_x", "locked": True, "points": 1,
                                 "solution": False, "schema_version": 3}
    answer = nbformat.v4.new_code_cell("x = 1\n### BEGIN HIDDEN TESTS\ny = 2\n### END HIDDEN TESTS\n")
    notebook.cells = [test, answer]
    stripped = public_only(notebook)
    assert stripped.cells[0].source == "a = 1\nc = 3\n"
    assert stripped.cells[1].source == answer.source  # only test cells are touched
    assert "BEGIN HIDDEN" in notebook.cells[0].source  # the original is unchanged


@pytest.fixture(scope="module")
def executor():
    pool = default_executor(2)
    yield pool
    pool.shutdown()


@pytest.mark.slow
@pytest.mark.parametrize(("prefix", "answer_id"), public_items())
def test_public_checks_catch_the_mistakes_they_are_meant_to(prefix, answer_id, tmp_path, executor):
    module = MODULES[prefix]
    wanted = [description for item, description in module.PUBLIC if item == answer_id]
    sources = {description: source for item, description, source in module.MUTANTS if item == answer_id}
    master_path = master_with_answer(prefix, answer_id)
    own = item_test_ids(master_path, answer_id)
    master = public_only(cut_master(master_path, answer_id))
    assert not any("HIDDEN TESTS" in c.source for c in master.cells if is_test_cell(c))
    layout = write_course(tmp_path, master_path.parent.name, master, master_path.name)
    kept = {grade_id(c) for c in master.cells}
    futures = {}
    for index, (description, source) in enumerate([("the reference solution", None)] +
                                                  [(d, sources[d]) for d in wanted]):
        notebook = solution_notebook(master_path)
        if source is not None:
            notebook = with_answer(notebook, answer_id, source)
        last = max(i for i, c in enumerate(notebook.cells) if grade_id(c) in kept)
        notebook.cells = notebook.cells[:last + 1]
        student = f"variant-{index:03d}"
        folder = layout.submitted / student / master_path.parent.name
        folder.mkdir(parents=True)
        nbformat.write(notebook, str(folder / master_path.name))
        job = GradingJob(student, master_path.parent.name, str(folder),
                         str(layout.source / master_path.parent.name), options())
        futures[executor.submit(grade_submission, job)] = description
    survivors, reference_lost = [], []
    for future, description in futures.items():
        cells = {c.grade_id: c for nb in future.result().notebooks for c in nb.cells}
        full = all(cells[i].score == cells[i].max_score for i in own)
        if description == "the reference solution":
            if not full:
                reference_lost = [f"{i}: {cells[i].message[:200]}" for i in own if cells[i].score != cells[i].max_score]
        elif full:
            survivors.append(description)
    assert not reference_lost, "the reference solution fails the public checks:\n" + "\n".join(reference_lost)
    assert not survivors, (f"{prefix} {answer_id}: mistakes the public checks let through (only the hidden "
                           "tests would find them):\n" + "\n".join(survivors))
