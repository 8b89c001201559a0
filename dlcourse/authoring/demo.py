"""The README's main job: release, grade a few example submissions, print grades.

Example submissions are made at run time from ``source/`` (this module
holds no solution): the reference solution, the untouched release notebook,
a half-done notebook, and a cheater whose answers are wrong but who
monkeypatches torch and the test helpers.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import nbformat

from ..core.course import CourseLayout
from ..core.notebook import grade_id, nbgrader_meta, solution_source

DEMO_ASSIGNMENT = "a1_autodiff"

CHEAT = '''
import torch, builtins
import dlcourse.testing as _t
torch.allclose = lambda *a, **k: True
torch.Tensor.tolist = lambda self: [42.0]
_t.assert_close = lambda *a, **k: None
builtins.AssertionError = type("Never", (Exception,), {})
'''


def filled_notebook(master_path: Path, release_path: Path, solve=lambda grade_id: True, extra: str = ""):
    """The release notebook with some answer cells filled by the master's solution."""
    master = nbformat.read(str(master_path), as_version=4)
    solutions = {grade_id(c): c for c in master.cells if nbgrader_meta(c).get("solution")}
    notebook = nbformat.read(str(release_path), as_version=4)
    for cell in notebook.cells:
        if nbgrader_meta(cell).get("solution") and grade_id(cell) in solutions and solve(grade_id(cell)):
            cell.source = solution_source(solutions[grade_id(cell)])
            if extra and cell.cell_type == "code":
                cell.source += "\n" + extra
    return notebook


def write_examples(root: Path, submissions: Path, assignment: str = DEMO_ASSIGNMENT) -> list[str]:
    masters = sorted((root / "source" / assignment).glob("*.ipynb"))
    students = {
        "ada": dict(),
        "blank": dict(solve=lambda gid: False),
        "half": dict(solve=lambda gid: hash_bucket(gid) == 0),
        "cheater": dict(solve=lambda gid: False, extra=CHEAT),
    }
    for student, how in students.items():
        folder = submissions / student / assignment
        folder.mkdir(parents=True, exist_ok=True)
        for master in masters:
            release = root / "release" / assignment / master.name
            kwargs = dict(how)
            extra = kwargs.pop("extra", "")
            notebook = filled_notebook(master, release, **kwargs)
            if extra:
                notebook.cells.insert(1, nbformat.v4.new_code_cell(extra))
            nbformat.write(notebook, str(folder / master.name))
    return sorted(students)


def hash_bucket(text: str) -> int:
    return sum(map(ord, text)) % 2


def run_demo(root: Path, workers: int | None = None) -> int:
    from ..insight.feedback import write_assignment_feedback
    from ..grading import GradingOptions, GradingRefused, grade_and_report
    from ..data import data_root
    from .release import generate_release

    layout = CourseLayout(root)
    started = time.monotonic()
    print(f"1. release: regenerating release/{DEMO_ASSIGNMENT} from source/ with nbgrader")
    generate_release(layout, DEMO_ASSIGNMENT)
    for student in ("ada", "blank", "half", "cheater"):
        shutil.rmtree(layout.submission_dir(student, DEMO_ASSIGNMENT), ignore_errors=True)
    names = write_examples(layout.root, layout.submitted)
    print(f"2. example submissions in submitted/: {', '.join(names)} (cheater: wrong answers, "
          "monkeypatches torch.allclose and the test helpers)")
    how_many = f"{workers} workers" if workers else "one worker per core"
    print(f"3. grade: {how_many}, each notebook in a sandboxed process of its own (forked from a warm zygote)")
    try:
        report = grade_and_report(layout, DEMO_ASSIGNMENT, GradingOptions(read_only=[str(data_root())]),
                                  workers=workers)
    except GradingRefused as error:
        print(f"dlcourse demo: {error}", file=sys.stderr)
        return 1
    print(report.table())
    print(f"\nwrote {', '.join(str(p.relative_to(layout.root)) for p in report.files)}")
    print("4. feedback: per-student HTML (no hidden test code)")
    for path in write_assignment_feedback(layout, DEMO_ASSIGNMENT):
        print(f"wrote {path.relative_to(layout.root)}")
    print(f"demo finished in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(run_demo(Path.cwd()))
