"""Helpers for the course's own tests: scratch courses and example submissions."""

from __future__ import annotations

import ast
import fcntl
import importlib
import os
import re
import shutil
import tempfile
from collections import defaultdict
from pathlib import Path

import nbformat

from dlcourse.authoring.demo import filled_notebook
from dlcourse.grading import GradingOptions
from dlcourse.core.notebook import grade_id, is_test_cell, nbgrader_meta, read_notebook
from dlcourse.data import data_root

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "source"
RELEASE = ROOT / "release"
KILL_RATE_FILE = ROOT / "test-output" / "kill-rates.txt"


def assignments() -> list[str]:
    return sorted(d.name for d in SOURCE.iterdir() if d.is_dir() and any(d.glob("*.ipynb")))


def master_notebooks() -> list[Path]:
    return sorted(SOURCE.glob("*/*.ipynb"))


def session_folder(tmp_path_factory) -> Path:
    """This pytest session's folder: above each xdist worker's, so every worker sees it (the base without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def shared_folder(tmp_path_factory, name: str) -> tuple[Path, object]:
    """A folder this session's xdist workers share (built once, under a lock), else a fresh one.

    Returns the folder (the caller builds it if it is not there) and the lock, held until closed (None without
    xdist).
    """
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = session_folder(tmp_path_factory)
        lock = open(root / f"{name}.lock", "w")
        fcntl.flock(lock, fcntl.LOCK_EX)
        return root / name, lock
    return tmp_path_factory.mktemp(name), None


def folders_made_by(pids: set[int], *elsewhere: Path) -> list[Path]:
    """The grader's temporary folders (:mod:`dlcourse.sandbox.scratch`) that one of ``pids`` made, in /tmp, the
    temporary folder and ``elsewhere``."""
    from dlcourse.sandbox import scratch

    folders = {Path("/tmp"), Path(tempfile.gettempdir()), *elsewhere}
    return sorted(path for folder in folders for path in folder.iterdir()
                  if (scratch.maker(path) or (0, 0, 0))[1] in pids)


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


# --------------------------------------------------------------------------
# What test cells take from each other.

_SAFE_STATEMENTS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _bound_names(tree) -> set[str]:
    """Every name a piece of code binds anywhere (assignments, loops, defs, imports, arguments, comprehensions)."""
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del))}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            arguments = node.args
            names.update(a.arg for a in arguments.posonlyargs + arguments.args + arguments.kwonlyargs)
            names.update(a.arg for a in (arguments.vararg, arguments.kwarg) if a is not None)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        if isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


def _provided_before_any_check(tree) -> set[str]:
    """Names a test cell binds before its first statement that can fail (a check, a call of student code)."""
    names: set[str] = set()
    for node in tree.body:
        constant = isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets) and \
            not any(isinstance(n, (ast.Call, ast.Attribute, ast.Subscript)) for n in ast.walk(node.value))
        if not (isinstance(node, _SAFE_STATEMENTS) or constant):
            break
        names |= _bound_names(ast.Module(body=[node], type_ignores=[]))
    return names


def dependencies_between_test_cells(master: Path) -> dict[str, tuple[set[str], set[str]]]:
    """For each test cell: (earlier test cells whose names it uses, names it uses that no earlier cell
    binds before its first check). A name of the second kind is only there if an earlier test cell got
    past its checks: a student who fails that test would lose this one too."""
    import builtins

    from dlcourse.core.notebook import is_test_cell, strip_magics

    provided: dict[str, str] = {}
    bound_anywhere: dict[str, str] = {}
    result = {}
    for cell in (c for c in read_notebook(master).cells if is_test_cell(c)):
        tree = ast.parse(strip_magics(cell.source))
        used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        free = used - _bound_names(tree) - set(dir(builtins))
        result[grade_id(cell)] = ({provided[n] for n in free if n in provided},
                                  {n for n in free if n not in provided and n in bound_anywhere})
        for name in _provided_before_any_check(tree):
            provided.setdefault(name, grade_id(cell))
        for name in _bound_names(tree):
            bound_anywhere.setdefault(name, grade_id(cell))
    return result
