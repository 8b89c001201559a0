"""Scratch courses for the benchmarks: full-solution submissions, and a one-cell floor assignment."""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dlcourse.authoring.demo import filled_notebook  # noqa: E402

FLOOR = "floor"
PYTHON = sys.executable


def env(**extra: str) -> dict[str, str]:
    """This checkout first on the path, the venv's scripts on PATH."""
    values = dict(os.environ, PATH=str(Path(PYTHON).parent) + os.pathsep + os.environ.get("PATH", ""))
    values["PYTHONPATH"] = str(ROOT) + (os.pathsep + values["PYTHONPATH"] if values.get("PYTHONPATH") else "")
    values.update(extra)
    return values


def make_course(where: Path, assignment: str, students: int) -> Path:
    """A course with ``students`` submissions of ``assignment``, each the master's full solutions."""
    course = Path(where)
    course.mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "source" / assignment, course / "source" / assignment)
    shutil.copytree(ROOT / "release" / assignment, course / "release" / assignment)
    for i in range(students):
        folder = course / "submitted" / f"student{i:02d}" / assignment
        folder.mkdir(parents=True)
        for master in sorted((course / "source" / assignment).glob("*.ipynb")):
            notebook = filled_notebook(master, course / "release" / assignment / master.name)
            nbformat.write(notebook, str(folder / master.name))
    return course


def make_floor_course(where: Path, students: int) -> Path:
    """A course whose one notebook has one cell (a 1-point test): what grading costs before any work."""
    from dlcourse.authoring import tests, write_notebook

    course = Path(where)
    course.mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    write_notebook(course / "source" / FLOOR / f"{FLOOR}.ipynb", [tests("test_nothing", 1, "assert True")])
    for i in range(students):
        folder = course / "submitted" / f"student{i:02d}" / FLOOR
        folder.mkdir(parents=True)
        shutil.copy(course / "source" / FLOOR / f"{FLOOR}.ipynb", folder)
    return course


def prepare_gradebook(course: Path, assignment: str) -> None:
    """The gradebook knows the assignment before any timed run (both graders start from there)."""
    subprocess.run([PYTHON, "-m", "nbgrader", "generate_assignment", assignment, "--force", "--log-level=ERROR",
                    f"--CourseDirectory.release_directory={course / 'scratch'}"], cwd=course, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env())


@dataclass
class Timed:
    wall: float
    cpu: float  # user + system seconds of the command and all it waited for
    returncode: int
    stderr: str


def timed(command: list[str], cwd: Path, extra_env: dict | None = None) -> Timed:
    """Run ``command`` once; wall and CPU seconds (children's rusage), its exit code and stderr's tail."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.run(command, cwd=cwd, env=env(**(extra_env or {})), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timed(wall, cpu, process.returncode, process.stderr[-3000:])


def offered_engines() -> list[str] | None:
    """The engines `dlcourse grade --help` offers (``--engine {a,b}``), or None when it has no --engine."""
    text = subprocess.run([PYTHON, "-m", "dlcourse", "grade", "--help"], capture_output=True, text=True,
                          env=env(), check=True).stdout
    match = re.search(r"--engine \{([^}]*)\}", text)
    return [name.strip() for name in match.group(1).split(",")] if match else None


def stored_results(course: Path, assignment: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(course.glob(f"autograded/*/{assignment}/.dlcourse-result.json"))]
