"""Grading speed, in one run: stock nbgrader against every engine of `dlcourse grade`.

Makes 20 submissions of A1, each the master's full solutions (realistic
work: blank notebooks grade in half the time and flatter the ratio), and
grades the same 20 in a fresh copy of the course each time:

  1. `nbgrader autograde` (stock, serial),
  2. `dlcourse grade --workers 2 --engine E` for every engine E that
     `dlcourse grade --help` offers (isolated, the default; the reference
     check of a fresh course on a machine that has not checked it before is
     part of the command, and its time is shown),

then the per-notebook floor of each engine: a one-cell notebook graded 20
times with one worker (the mean seconds a notebook takes in the worker, and
the whole command's wall time per notebook). It prints each wall time, the
CPU seconds and the ratios, and names any engine it could not run.

Run: `make bench` (or `.venv/bin/python bench/grade_speed.py [--students N] [--assignment A] [--workers W]`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from benchcourse import (FLOOR, PYTHON, make_course, make_floor_course, offered_engines, prepare_gradebook,
                         stored_results, timed)

WANTED_ENGINES = ("kernel", "fork")


def dlcourse_grade(assignment: str, workers: int, engine: str | None) -> list[str]:
    command = [PYTHON, "-m", "dlcourse", "grade", assignment, "--workers", str(workers)]
    return command + (["--engine", engine] if engine else [])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--assignment", default="a1_autodiff")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-floor", action="store_true", help="skip the one-cell floor")
    args = parser.parse_args()
    engines = offered_engines()
    if engines is None:
        print("dlcourse grade has no --engine option: its one engine is graded as 'kernel'; "
              "could not run: fork (not offered)")
        runnable: list[str | None] = [None]
    else:
        missing = [e for e in WANTED_ENGINES if e not in engines]
        if missing:
            print(f"could not run: {', '.join(missing)} (dlcourse grade --help offers {', '.join(engines)})")
        runnable = list(engines)
    names = {engine: engine or "kernel" for engine in runnable}
    print(f"machine: {os.cpu_count()} cores; {args.students} full-solution submissions of {args.assignment}\n",
          flush=True)
    failures = []
    with tempfile.TemporaryDirectory(prefix="dlcourse-bench-") as scratch:
        scratch = Path(scratch)
        template = make_course(scratch / "template", args.assignment, args.students)
        prepare_gradebook(template, args.assignment)
        runs = {"nbgrader autograde (serial)": (
            [PYTHON, "-m", "nbgrader", "autograde", args.assignment, "--force", "--log-level=ERROR"], None)}
        for engine in runnable:
            flag = f"--engine {engine}" if engine else "(no --engine: kernel)"
            runs[f"dlcourse grade --workers {args.workers} {flag}"] = (
                dlcourse_grade(args.assignment, args.workers, engine), engine)
        times = {}
        for index, (label, (command, engine)) in enumerate(runs.items()):
            course = scratch / f"run{index}"
            shutil.copytree(template, course)
            profile = scratch / f"profile{index}.json"
            # a machine that has checked no reference yet: the check is part of each timed command
            run = timed(command, course, {"DLCOURSE_PROFILE": str(profile), "DLCOURSE_CACHE": str(scratch / f"cache{index}")})
            if run.returncode != 0:
                print(f"{label:<45} FAILED (exit {run.returncode}):\n{run.stderr}", flush=True)
                failures.append(label)
                continue
            times[label] = run.wall
            steps = json.loads(profile.read_text()) if profile.exists() else {}
            reference = f", of which reference check {steps['reference']:.1f} s" if "reference" in steps else ""
            if label.startswith("dlcourse"):  # full solutions: everyone full marks, or the figure means nothing
                results = stored_results(course, args.assignment)
                short = [r["student_id"] for r in results
                         if sum(c["score"] or 0 for nb in r["notebooks"] for c in nb["cells"] if c["kind"] == "test")
                         < sum(c["max_score"] for nb in r["notebooks"] for c in nb["cells"] if c["kind"] == "test")]
                if short or len(results) != args.students:
                    reference += f"; NOT full marks: {short or 'results missing'}"
            print(f"{label:<45} {run.wall:7.1f} s wall, {run.cpu:7.1f} s CPU{reference}", flush=True)
        labels = list(times)
        stock = "nbgrader autograde (serial)"
        if stock in times:
            print()
            for label in labels[1:]:
                print(f"speed-up of `{label}` over serial nbgrader autograde: {times[stock] / times[label]:.2f}x")
        if not args.no_floor:
            print(f"\nper-notebook floor: a one-cell notebook graded {args.students} times, --workers 1")
            floor = make_floor_course(scratch / "floor-template", args.students)
            prepare_gradebook(floor, FLOOR)
            for index, engine in enumerate(runnable):
                course = scratch / f"floor{index}"
                shutil.copytree(floor, course)
                run = timed(dlcourse_grade(FLOOR, 1, engine), course, {"DLCOURSE_CACHE": str(scratch / f"floor-cache{index}")})
                if run.returncode != 0:
                    print(f"  engine {names[engine]}: FAILED (exit {run.returncode}):\n{run.stderr}")
                    failures.append(f"floor {names[engine]}")
                    continue
                seconds = [nb["seconds"] for r in stored_results(course, FLOOR) for nb in r["notebooks"]]
                print(f"  engine {names[engine]:<8} {sum(seconds) / len(seconds):6.2f} s per notebook in the worker; "
                      f"whole command {run.wall:6.1f} s = {run.wall / args.students:5.2f} s per notebook", flush=True)
    if failures:
        print(f"\nfailed: {', '.join(failures)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
