"""`dlcourse grade --cluster` against local grading, and a scale simulation toward a MOOC, in one run.

1. The 20 full-solution submissions of A1 (as bench/grade_speed.py makes them), each grader in a
   fresh copy of the course: `dlcourse grade --workers 2` (local), `--cluster local:1` and
   `--cluster local:2`. It prints the wall and CPU seconds, the ratios to local grading, the
   reference step (for the cluster: starting it, each worker's warm-up and reference check) and the
   per-job overhead the cluster adds (students' step, cluster minus local, per student).
2. Scale: --jobs (5,000) jobs of a stand-in grading function (50 ms of work, a result of realistic
   size: one notebook's cells and an executed notebook of about --result-kb kB) through a local
   cluster of --sim-workers processes, on the real client path (`grade_assignment`: jobs as data,
   results stored in `autograded/` as they arrive). It prints jobs per second, the scheduler's
   per-job overhead (wall time beyond the ideal jobs x 50 ms / workers, per job) and the client's
   resident memory at 10 %, 50 % and 100 % of the jobs, and its peak, which must stay flat.

Run: `.venv/bin/python bench/cluster_bench.py [--students 20] [--jobs 5000] [--no-a1] [--no-scale]`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchcourse import PYTHON, ROOT, make_course, prepare_gradebook, stored_results, timed

WORK_SECONDS = 0.05


def full_marks(course: Path, assignment: str, students: int) -> str:
    results = stored_results(course, assignment)
    short = [r["student_id"] for r in results
             if sum(c["score"] or 0 for nb in r["notebooks"] for c in nb["cells"] if c["kind"] == "test")
             < sum(c["max_score"] for nb in r["notebooks"] for c in nb["cells"] if c["kind"] == "test")]
    return "" if not short and len(results) == students else f"; NOT full marks: {short or 'results missing'}"


def a1_comparison(args, scratch: Path) -> bool:
    print(f"1. {args.students} full-solution submissions of {args.assignment}, {os.cpu_count()} cores", flush=True)
    template = make_course(scratch / "template", args.assignment, args.students)
    prepare_gradebook(template, args.assignment)
    runs = {"local --workers 2": ["--workers", "2"], "--cluster local:1": ["--cluster", "local:1"],
            "--cluster local:2": ["--cluster", "local:2"]}
    measured, ok = {}, True
    for index, (label, extra) in enumerate(runs.items()):
        course = scratch / f"a1-{index}"
        shutil.copytree(template, course)
        profile = scratch / f"profile{index}.json"
        run = timed([PYTHON, "-m", "dlcourse", "grade", args.assignment, *extra], course,
                    {"DLCOURSE_PROFILE": str(profile)})
        if run.returncode != 0:
            print(f"  {label:<20} FAILED (exit {run.returncode}):\n{run.stderr}", flush=True)
            ok = False
            continue
        steps = json.loads(profile.read_text()) if profile.exists() else {}
        measured[label] = (run.wall, steps)
        print(f"  {label:<20} {run.wall:7.1f} s wall, {run.cpu:7.1f} s CPU; reference step "
              f"{steps.get('reference', float('nan')):5.1f} s, students {steps.get('students', float('nan')):6.1f} s"
              f"{full_marks(course, args.assignment, args.students)}", flush=True)
    local = measured.get("local --workers 2")
    if local:
        for label in ("--cluster local:1", "--cluster local:2"):
            if label in measured:
                wall, steps = measured[label]
                print(f"  {label}: {wall / local[0]:.2f}x the local wall time")
        if "--cluster local:2" in measured:
            wall, steps = measured["--cluster local:2"]
            per_job = (steps.get("students", 0) - local[1].get("students", 0)) / args.students
            print(f"  per-job overhead of the cluster (2 workers vs 2 local workers, students' step): "
                  f"{per_job:+.2f} s per student; start-up and per-worker reference check: "
                  f"{steps.get('reference', 0) - local[1].get('reference', 0):+.1f} s once", flush=True)
    return ok


def _stand_in(job):
    """50 ms of work and a result of realistic size (runs on a worker; pickled by value from __main__)."""
    import time as _time

    from dlcourse.grading.results import CellGrade, NotebookResult, Status, SubmissionResult

    _time.sleep(WORK_SECONDS)
    size = int(job.files.get("size.txt", b"60"))
    cells = [CellGrade("nb", f"test_{i}", "test", 2.0, 2.0, "") for i in range(10)]
    text = ("x" * 99 + "\n") * (size * 10)  # ~size kB of outputs
    graded = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
              "cells": [{"cell_type": "code", "id": f"c{i}", "metadata": {}, "execution_count": i, "source": "pass",
                         "outputs": [{"output_type": "stream", "name": "stdout", "text": text[:len(text) // 10]}]}
                        for i in range(10)]}
    notebook = NotebookResult("nb", Status.OK, cells, seconds=WORK_SECONDS, graded=graded)
    return SubmissionResult(job.student_id, job.assignment, Status.OK, [notebook], fingerprint=job.fingerprint)


def scale_simulation(args, scratch: Path) -> bool:
    import psutil

    sys.path.insert(0, str(ROOT))
    from dlcourse.authoring import tests, write_notebook
    from dlcourse.grading.cluster import ClusterExecutor
    from dlcourse.core.course import CourseLayout
    from dlcourse.grading import GradingOptions, grade_assignment

    print(f"\n2. scale: {args.jobs} jobs of a {WORK_SECONDS * 1000:.0f} ms stand-in, results of ~{args.result_kb} kB, "
          f"{args.sim_workers} local cluster workers", flush=True)
    course = scratch / "scale"
    write_notebook(course / "source" / "sim" / "nb.ipynb", [tests("test_0", 1, "assert True")])
    for i in range(args.jobs):
        folder = course / "submitted" / f"s{i:05d}" / "sim"
        folder.mkdir(parents=True)
        (folder / "nb.ipynb").write_text("{}")
        (folder / "size.txt").write_text(str(args.result_kb))
    layout = CourseLayout(course)
    process = psutil.Process()
    samples: list[tuple[float, int]] = []
    done = {"n": 0}
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            samples.append((done["n"], process.memory_info().rss))
            stop.wait(0.2)

    executor = ClusterExecutor(f"local:{args.sim_workers}", remote=_stand_in, prepare=False, log=lambda line: None)
    sampler = threading.Thread(target=sample, daemon=True)
    try:
        before = process.memory_info().rss
        sampler.start()
        started = time.perf_counter()
        timings: dict = {}
        results = grade_assignment(layout, "sim", options=GradingOptions(isolate=False), executor=executor,
                                   progress=False, record=lambda result: done.__setitem__("n", done["n"] + 1),
                                   timings=timings)
        wall = time.perf_counter() - started
    finally:
        stop.set()
        executor.shutdown()
    ideal = args.jobs * WORK_SECONDS / args.sim_workers
    stored = len(list(course.glob("autograded/*/sim/.dlcourse-result.json")))
    print(f"  {args.jobs} jobs in {wall:.1f} s: {args.jobs / wall:.0f} jobs/s "
          f"(ideal {args.sim_workers / WORK_SECONDS:.0f});"
          f" per-job overhead beyond the work: {(wall - ideal) / args.jobs * 1000:.1f} ms of wall per job; "
          f"{stored} results stored, {sum(r.status == 'ok' for r in results)} ok")
    storing = timings.get("recording", 0.0) / args.jobs
    print(f"  of which the client storing each result (autograded/): {storing * 1000:.1f} ms per job; "
          f"the rest (scheduler, transfers, submitting): {((wall - ideal) / args.jobs - storing) * 1000:.1f} ms "
          "per job", flush=True)

    def rss_at(fraction: float) -> float:
        for count, rss in samples:
            if count >= fraction * args.jobs:
                return rss / 2**20
        return samples[-1][1] / 2**20

    peak = max(rss for _, rss in samples) / 2**20
    print(f"  client memory (RSS): {before / 2**20:.0f} MiB before; at 10 % {rss_at(0.1):.0f} MiB, 50 % "
          f"{rss_at(0.5):.0f} MiB, 100 % {rss_at(1.0):.0f} MiB; peak {peak:.0f} MiB "
          f"(all results held would be ~{args.jobs * args.result_kb / 1024:.0f} MiB more)", flush=True)
    return stored == args.jobs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--assignment", default="a1_autodiff")
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--sim-workers", type=int, default=4)
    parser.add_argument("--result-kb", type=int, default=60)
    parser.add_argument("--no-a1", action="store_true")
    parser.add_argument("--no-scale", action="store_true")
    args = parser.parse_args()
    ok = True
    with tempfile.TemporaryDirectory(prefix="dlcourse-cluster-bench-") as scratch:
        if not args.no_a1:
            ok &= a1_comparison(args, Path(scratch))
        if not args.no_scale:
            ok &= scale_simulation(args, Path(scratch))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
