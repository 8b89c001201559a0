"""Grading speed: `dlcourse grade` against serial `nbgrader autograde`, in one run.

Makes 20 submissions of A1 (reference solutions, untouched releases and
half-done notebooks), then grades the same 20 three ways in fresh copies of
the course:

  1. `nbgrader autograde` (stock, serial),
  2. `dlcourse grade --workers 2` (isolated: the default),
  3. `dlcourse grade --workers 2 --no-isolation`,

and prints the wall times and the ratios. Run: `make bench` (or
`.venv/bin/python bench/grade_speed.py [--students N] [--assignment A]`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dlcourse.demo import filled_notebook, hash_bucket  # noqa: E402


def make_course(where: Path, assignment: str, students: int) -> Path:
    course = where / "course"
    course.mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "source" / assignment, course / "source" / assignment)
    shutil.copytree(ROOT / "release" / assignment, course / "release" / assignment)
    kinds = [
        dict(),
        dict(solve=lambda gid: False),
        dict(solve=lambda gid: hash_bucket(gid) == 0),
    ]
    for i in range(students):
        folder = course / "submitted" / f"student{i:02d}" / assignment
        folder.mkdir(parents=True)
        for master in sorted((course / "source" / assignment).glob("*.ipynb")):
            notebook = filled_notebook(master, course / "release" / assignment / master.name, **kinds[i % 3])
            nbformat.write(notebook, str(folder / master.name))
    return course


def timed(command: list[str], cwd: Path) -> float:
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--assignment", default="a1_autodiff")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="dlcourse-bench-") as scratch:
        template = make_course(Path(scratch) / "template", args.assignment, args.students)
        runs = {
            "nbgrader autograde (serial)": [python, "-m", "nbgrader", "autograde", args.assignment, "--force",
                                            "--log-level=ERROR"],
            f"dlcourse grade --workers {args.workers} (isolated)":
                [python, "-m", "dlcourse", "grade", args.assignment, "--workers", str(args.workers)],
            f"dlcourse grade --workers {args.workers} --no-isolation":
                [python, "-m", "dlcourse", "grade", args.assignment, "--workers", str(args.workers),
                 "--no-isolation"],
        }
        times = {}
        for index, (label, command) in enumerate(runs.items()):
            course = Path(scratch) / f"run{index}"
            shutil.copytree(template, course)
            # Both sides start from a gradebook that knows the assignment (not timed).
            subprocess.run([python, "-m", "nbgrader", "generate_assignment", args.assignment, "--force",
                            "--log-level=ERROR", f"--CourseDirectory.release_directory={course / 'scratch'}"],
                           cwd=course, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env=dict(os.environ, PATH=str(Path(python).parent) + os.pathsep + os.environ["PATH"]))
            times[label] = timed(command, course)
            print(f"{label:<45} {times[label]:7.1f} s  ({args.students} submissions of {args.assignment})",
                  flush=True)
    labels = list(times)
    print(f"\nspeed-up of dlcourse grade (isolated) over serial nbgrader autograde: "
          f"{times[labels[0]] / times[labels[1]]:.2f}x")
    print(f"cost of isolation (isolated / not isolated, both dlcourse): {times[labels[1]] / times[labels[2]]:.2f}x")
    print(f"machine: {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
