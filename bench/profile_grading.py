"""Where the seconds of grading one full-solution submission go.

Grades one submission of A1 (the master's solutions in the release
notebook) with `dlcourse grade --workers 1` in a scratch course, twice: a
first run that also checks the reference solutions, and a second, with the
reference cached, of a new copy of the same submission. The phases come from the grader's own
cheap timing fields (``NotebookResult.timings``, and ``$DLCOURSE_PROFILE``
for the command's steps), not from a copy of its code. The CLI's fixed cost
is an empty `dlcourse grade` (a course with no submissions: it refuses
after its checks).

Run: `.venv/bin/python bench/profile_grading.py [--assignment A] [--engine E]`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from benchcourse import PYTHON, make_course, prepare_gradebook, stored_results, timed


def grade(course: Path, assignment: str, engine: str | None, profile: Path):
    command = [PYTHON, "-m", "dlcourse", "grade", assignment, "--workers", "1"]
    if engine:
        command += ["--engine", engine]
    # the machine's cache of reference checks starts empty (beside the course): the first run checks it
    run = timed(command, course, {"DLCOURSE_PROFILE": str(profile), "DLCOURSE_CACHE": str(course.parent / "cache")})
    if run.returncode != 0:
        raise SystemExit(f"dlcourse grade failed ({run.returncode}):\n{run.stderr}")
    return run, json.loads(profile.read_text())


def rows(run, steps: dict, notebooks: list[dict]) -> list[tuple[str, str]]:
    timing = {key: sum(nb.get("timings", {}).get(key, 0.0) for nb in notebooks)
              for key in ("start", "imports", "student_cells", "test_cells", "requests", "request_seconds",
                          "teardown")}
    seconds = sum(nb.get("seconds", 0.0) for nb in notebooks)
    requests = int(timing["requests"])
    mean = timing["request_seconds"] / requests if requests else 0.0
    accounted = timing["start"] + timing["imports"] + timing["student_cells"] + timing["test_cells"] \
        + timing["teardown"]
    out = [
        ("sandbox + kernel start (fork engine: none, forked)", f"{timing['start']:.2f}"),
        ("imports (fork engine: none, the zygote has them)", f"{timing['imports']:.2f}"),
        ("student cells (sum)", f"{timing['student_cells']:.2f}"),
        (f"test cells (sum; {requests} requests, mean round trip {mean * 1000:.0f} ms)", f"{timing['test_cells']:.2f}"),
        ("  of which request round trips", f"{timing['request_seconds']:.2f}"),
        ("teardown (kernel shut down, or child and cgroup)", f"{timing['teardown']:.2f}"),
        ("rest of the notebook (merge, copy, outputs)", f"{seconds - accounted:.2f}"),
        ("= one notebook, in the worker", f"{seconds:.2f}"),
        ("workers' fork server (its imports, waited for)", f"{steps.get('workers', 0.0):.2f}"),
        ("reference check (first run only; cached after)", f"{steps.get('reference', 0.0):.2f}"),
        ("students, incl. worker start (pool of 1)", f"{steps.get('students', 0.0):.2f}"),
        ("recording (results + gradebook)", f"{steps.get('recording', 0.0):.2f}"),
        ("reports (grades.csv, cells.csv)", f"{steps.get('reports', 0.0):.2f}"),
        ("= the whole `dlcourse grade` (wall)", f"{run.wall:.2f}"),
    ]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assignment", default="a1_autodiff")
    parser.add_argument("--engine", default=None, help="passed to dlcourse grade --engine (default: its default)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dlcourse-profile-") as scratch:
        scratch = Path(scratch)
        course = make_course(scratch / "course", args.assignment, 1)
        prepare_gradebook(course, args.assignment)
        empty = scratch / "empty"
        shutil.copytree(course, empty, ignore=shutil.ignore_patterns("submitted"))
        fixed = timed([PYTHON, "-m", "dlcourse", "grade", args.assignment], empty)
        first, first_steps = grade(course, args.assignment, args.engine, scratch / "first.json")
        first_notebooks = stored_results(course, args.assignment)[0]["notebooks"]
        # A second student, the same solutions: the reference is cached now.
        shutil.copytree(course / "submitted" / "student00", course / "submitted" / "student01")
        second, second_steps = grade(course, args.assignment, args.engine, scratch / "second.json")
        second_notebooks = [r for r in stored_results(course, args.assignment)
                            if r["student_id"] == "student01"][0]["notebooks"]
    table_first = rows(first, first_steps, first_notebooks)
    table_second = rows(second, second_steps, second_notebooks)
    width = max(len(label) for label, _ in table_first)
    print(f"one full-solution submission of {args.assignment}, `dlcourse grade --workers 1`"
          f"{' --engine ' + args.engine if args.engine else ''}; seconds\n")
    print(f"| {'phase':<{width}} | first run | reference cached |")
    print(f"| {'-' * width} | --------: | ---------------: |")
    for (label, a), (_, b) in zip(table_first, table_second):
        print(f"| {label:<{width}} | {a:>9} | {b:>16} |")
    print(f"| {'CLI fixed cost (an empty `dlcourse grade`)':<{width}} | {fixed.wall:>9.2f} | {'':>16} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
