"""The README's main job: release, grade a few example submissions, print grades.

Example submissions are made at run time from ``source/`` (this module
holds no solution): the reference solution, the untouched release notebook,
a half-done notebook, and a cheater whose answers are wrong but who
monkeypatches torch and the test helpers.
"""

from __future__ import annotations

import re
import shutil
import sys
import time
from pathlib import Path

import nbformat

DEMO_ASSIGNMENT = "a1_autodiff"

CHEAT = '''
import torch, builtins
import dlcourse.testing as _t
torch.allclose = lambda *a, **k: True
torch.Tensor.tolist = lambda self: [42.0]
_t.assert_close = lambda *a, **k: None
builtins.AssertionError = type("Never", (Exception,), {})
'''

_SOLUTION_LINE = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$")


def solution_source(master_cell) -> str:
    """A master answer cell with its solution markers removed."""
    return "\n".join(line for line in master_cell.source.splitlines() if not _SOLUTION_LINE.match(line))


def filled_notebook(master_path: Path, release_path: Path, solve=lambda grade_id: True, extra: str = ""):
    """The release notebook with some answer cells filled by the master's solution."""
    master = nbformat.read(str(master_path), as_version=4)
    solutions = {c.metadata["nbgrader"]["grade_id"]: c for c in master.cells
                 if c.metadata.get("nbgrader", {}).get("solution")}
    notebook = nbformat.read(str(release_path), as_version=4)
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and meta.get("grade_id") in solutions and solve(meta["grade_id"]):
            cell.source = solution_source(solutions[meta["grade_id"]])
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


def run_demo(root: Path, workers: int) -> int:
    from .cli import main

    root = Path(root)
    started = time.monotonic()
    print(f"1. release: regenerating release/{DEMO_ASSIGNMENT} from source/ with nbgrader")
    main(["--course", str(root), "release", DEMO_ASSIGNMENT])
    submissions = root / "submitted"
    for student in ("ada", "blank", "half", "cheater"):
        shutil.rmtree(submissions / student / DEMO_ASSIGNMENT, ignore_errors=True)
    names = write_examples(root, submissions)
    print(f"2. example submissions in submitted/: {', '.join(names)} (cheater: wrong answers, "
          "monkeypatches torch.allclose and the test helpers)")
    print(f"3. grade: {workers} workers, each notebook in its own sandboxed kernel")
    code = main(["--course", str(root), "grade", DEMO_ASSIGNMENT, "--workers", str(workers)])
    if code:
        return code
    print("4. feedback: per-student HTML (no hidden test code)")
    main(["--course", str(root), "feedback", DEMO_ASSIGNMENT])
    print(f"demo finished in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(run_demo(Path.cwd(), 2))
