"""Grading mode is out of the students' reach: no cell of theirs tests it, and the set-up it needs is locked.

Every code cell a master gives (set-up, data, training, figures) is locked: nbgrader marks it read-only and
checksums it at release, and the grader runs the master's copy of it, so a student who deletes or edits one
(removes the line that shrinks the data, sets 1000 epochs) changes nothing in what is graded. How long a
cell trains is :func:`dlcourse.budget.budget`'s business, never a cell's own ``NBGRADER_EXECUTION`` test.
"""

from __future__ import annotations

import random
import re

import nbformat
import pytest

from dlcourse.grading.merge import merge_with_master
from dlcourse.core.notebook import grade_id, is_answer_cell, is_locked_cell, is_test_cell, nbgrader_meta, read_notebook
from dlcourse.student.colab import SETUP_TAG
from helpers import master_notebooks, release_path, solution_notebook

#: What reads grading mode: the environment variable itself, the old helpers that test it, os.environ.
GRADING_MODE_READERS = re.compile(r"NBGRADER_EXECUTION|grading_mode|\bshrink\(|environ")

MASTERS = master_notebooks()


def _release_of_master(master):
    """The release notebook without the Colab set-up cell that ``dlcourse release`` puts first: no master holds
    it, grading drops it (it is not on the master's skeleton), and ``tests/student/test_colab.py`` tests it (it
    reads ``os.environ`` to tell Colab, never grading mode)."""
    release = nbformat.read(str(release_path(master)), as_version=4)
    release.cells = [c for c in release.cells if SETUP_TAG not in c.metadata.get("tags", [])]
    return release


def _given_code_cells(notebook) -> list:
    """The code cells a master gives the student: neither answers nor tests (nor the names cell, nor the
    release's Colab set-up cell, which no master holds)."""
    return [c for c in notebook.cells if c.cell_type == "code" and not is_answer_cell(c) and not is_test_cell(c)
            and grade_id(c) != "names" and SETUP_TAG not in c.metadata.get("tags", [])]


@pytest.mark.parametrize("master", MASTERS, ids=lambda p: p.stem)
def test_no_code_cell_of_the_release_reads_grading_mode_itself(master):
    release = _release_of_master(master)
    readers = [(index, match.group(0)) for index, cell in enumerate(release.cells) if cell.cell_type == "code"
               for match in [GRADING_MODE_READERS.search(cell.source)] if match]
    assert not readers, f"cells (index, what) that test grading mode instead of calling budget(): {readers}"


@pytest.mark.parametrize("master", MASTERS, ids=lambda p: p.stem)
def test_every_code_cell_a_master_gives_is_locked(master):
    unlocked = [(grade_id(cell), cell.source[:60]) for cell in _given_code_cells(read_notebook(master))
                if not (is_locked_cell(cell) and nbgrader_meta(cell).get("locked"))]
    assert not unlocked, f"code cells without nbgrader's locked metadata and a grade_id: {unlocked}"


@pytest.mark.parametrize("master", MASTERS, ids=lambda p: p.stem)
def test_the_release_makes_every_given_code_cell_read_only_and_checksummed(master):
    release = _release_of_master(master)
    given = _given_code_cells(release)
    assert given
    open_cells = [grade_id(c) for c in given if c.metadata.get("editable", True) or c.metadata.get("deletable", True)
                  or not nbgrader_meta(c).get("checksum")]
    assert not open_cells, f"locked cells a student can edit or delete in the lab, or without checksum: {open_cells}"


def _graded_cells(master, student) -> list[tuple[str, str | None, str]]:
    """What grading runs or checks, in order: (role, grade_id, source) of every cell, the student's extras too."""
    return [(c.role, c.grade_id, c.source) for c in merge_with_master(master, student)]


def _edits(source: str, rng: random.Random) -> list[str]:
    """Ways a student might change a given cell: a line removed, the numbers changed, a loop that never ends."""
    lines = source.splitlines()
    cut = rng.randrange(len(lines)) if lines else 0
    without = "\n".join(lines[:cut] + lines[cut + 1:]) or "pass"
    numbers = re.sub(r"\b\d+\b", lambda m: str(int(m.group(0)) * 1000 + 7), source)
    return [without, numbers, "import time\nwhile True:\n    time.sleep(1)", ""]


@pytest.mark.parametrize("master", MASTERS, ids=lambda p: p.stem)
def test_deleting_or_editing_any_given_cell_changes_nothing_that_is_graded(master):
    """The reference submission, with each locked code cell deleted or edited in turn, merges to the same cells."""
    notebook = read_notebook(master)
    reference = solution_notebook(master)
    expected = _graded_cells(notebook, reference)
    rng = random.Random(master.stem)
    locked = [grade_id(c) for c in _given_code_cells(reference)]
    assert locked
    for cell_id in locked:
        deleted = nbformat.from_dict(reference)
        deleted.cells = [c for c in deleted.cells if grade_id(c) != cell_id]
        assert _graded_cells(notebook, deleted) == expected, f"{cell_id} deleted"
        original = next(c.source for c in reference.cells if grade_id(c) == cell_id)
        for edit in _edits(original, rng):
            edited = nbformat.from_dict(reference)
            next(c for c in edited.cells if grade_id(c) == cell_id).source = edit
            assert _graded_cells(notebook, edited) == expected, f"{cell_id} edited to {edit[:80]!r}"
