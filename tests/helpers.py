"""Helpers for the course's own tests: scratch courses and example submissions."""

from __future__ import annotations

import importlib
import re
import shutil
from collections import defaultdict
from pathlib import Path

import nbformat

from dlcourse.demo import filled_notebook
from dlcourse.grading import GradingOptions
from dlcourse.notebook import grade_id, is_test_cell, nbgrader_meta, read_notebook
from dlcourse.data import data_root

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "source"
RELEASE = ROOT / "release"
KILL_RATE_FILE = ROOT / "test-output" / "kill-rates.txt"


def assignments() -> list[str]:
    return sorted(d.name for d in SOURCE.iterdir() if d.is_dir() and any(d.glob("*.ipynb")))


def master_notebooks() -> list[Path]:
    return sorted(SOURCE.glob("*/*.ipynb"))


def options(**kwargs) -> GradingOptions:
    """Grading options for tests: isolated, as in production, with the data sets."""
    return GradingOptions(read_only=[str(data_root())], **kwargs)


def scratch_course(tmp_path: Path, *names: str) -> Path:
    """A copy of the course (config, masters, releases) where tests may write."""
    course = tmp_path / "course"
    course.mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    for name in names:
        shutil.copytree(SOURCE / name, course / "source" / name)
        if (RELEASE / name).exists():
            shutil.copytree(RELEASE / name, course / "release" / name)
    return course


def release_path(master: Path) -> Path:
    return RELEASE / master.parent.name / master.name


def solution_notebook(master: Path):
    return filled_notebook(master, release_path(master))


def answer_ids(master: Path) -> list[str]:
    notebook = read_notebook(master)
    return [grade_id(c) for c in notebook.cells if nbgrader_meta(c).get("solution") and c.cell_type == "code"]


def item_test_ids(master: Path, answer_id: str) -> list[str]:
    """The test cells that belong to an answer cell: test_<id> and test_<id>_*."""
    notebook = read_notebook(master)
    ids = [grade_id(c) for c in notebook.cells if is_test_cell(c)]
    pattern = re.compile(rf"^test_{re.escape(answer_id)}(_.+)?$")
    return [i for i in ids if pattern.match(i)]


def with_answer(notebook, answer_id: str, source: str):
    copy = nbformat.from_dict(notebook)
    found = False
    for cell in copy.cells:
        if grade_id(cell) == answer_id:
            cell.source = source
            found = True
    assert found, f"no answer cell {answer_id!r} in the notebook"
    return copy


def mutant_modules() -> dict[str, object]:
    modules = {}
    for path in sorted((ROOT / "tests" / "mutants").glob("a*.py")):
        modules[path.stem] = importlib.import_module(f"mutants.{path.stem}")
    return modules


def master_with_answer(assignment_prefix: str, answer_id: str) -> Path:
    for master in sorted(SOURCE.glob(f"{assignment_prefix}_*/*.ipynb")):
        if answer_id in answer_ids(master):
            return master
    raise AssertionError(f"no master notebook of {assignment_prefix} has an answer cell {answer_id!r}")


_KILL_RATE_LINE = re.compile(r"^(\S+) (\S+): (\d+)/(\d+) mutants killed, (\d+)/(\d+) alternatives with full marks$")


def record_kill_rate(prefix: str, answer_id: str, killed: int, mutants: int, passed: int, alternatives: int) -> None:
    """Append one graded item's line to KILL_RATE_FILE (one mutation test per item writes one line)."""
    KILL_RATE_FILE.parent.mkdir(exist_ok=True)
    with open(KILL_RATE_FILE, "a") as handle:
        handle.write(f"{prefix} {answer_id}: {killed}/{mutants} mutants killed, "
                     f"{passed}/{alternatives} alternatives with full marks\n")


def kill_rate_summary(text: str) -> str:
    """The per-assignment kill rates, summed over the item lines of KILL_RATE_FILE that this run wrote.

    A line in another form is shown as it is, after the sums.
    """
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    other = []
    for line in text.splitlines():
        found = _KILL_RATE_LINE.match(line)
        if not found:
            other.append(line + "\n")
            continue
        total = totals[found.group(1)]
        for i, value in enumerate(found.groups()[2:]):
            total[i] += int(value)
        total[4] += 1
    sums = [f"{prefix}: {killed}/{mutants} mutants killed ({100 * killed / max(mutants, 1):.0f}%), "
            f"{passed}/{alternatives} alternatives with full marks ({items} items)\n"
            for prefix, (killed, mutants, passed, alternatives, items) in sorted(totals.items())]
    return "".join(sums + other)
