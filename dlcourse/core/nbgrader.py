"""nbgrader's own commands, run in the course root with the course's config.

Both sides of the instructor's tools need them: :mod:`dlcourse.authoring.release`
generates ``release/``, and :mod:`dlcourse.grading.gradebook` records an
assignment's notebooks and cells in the gradebook by the same
``generate_assignment``, into a scratch folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .course import CourseLayout


def with_tools_on_path(env: dict[str, str]) -> dict[str, str]:
    """``env`` with this environment's scripts first on PATH.

    nbgrader runs ``alembic`` and ``jupyter`` by name, also in-process when it
    creates a gradebook; without this, a ``.venv`` that is not activated
    would find other copies or none.
    """
    env = dict(env)
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in env.get("PATH", "").split(os.pathsep):
        env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    return env


def run_nbgrader(layout: CourseLayout, *args: str) -> subprocess.CompletedProcess:
    """Run an nbgrader command in the course root, with the course's config."""
    command = [sys.executable, "-m", "nbgrader", *args]
    process = subprocess.run(command, cwd=layout.root, capture_output=True, text=True,
                             env=with_tools_on_path(os.environ))
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(['nbgrader', *args])} failed:\n"
                           f"{process.stdout[-3000:]}{process.stderr[-3000:]}")
    return process


def generate_assignment(layout: CourseLayout, assignment: str, release_dir: Path | None = None,
                        db_url: str | None = None) -> Path:
    """``nbgrader generate_assignment`` for ``assignment`` (into ``release_dir``/``db_url`` when given)."""
    layout.require_assignment(assignment)
    args = ["generate_assignment", assignment, "--force", "--log-level=WARN"]
    if release_dir is not None:
        args.append(f"--CourseDirectory.release_directory={release_dir}")
    if db_url is not None:
        args.append(f"--CourseDirectory.db_url={db_url}")
    run_nbgrader(layout, *args)
    return Path(release_dir or layout.release) / assignment
