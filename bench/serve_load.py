"""A burst of hand-ins to `dlcourse serve`, beside `dlcourse grade` on the same submissions, in one run.

Loopback only, bounded (every wait has a limit), and it stops by itself:

  1. a scratch course with A1 and a roster of N students; `dlcourse serve tokens`;
  2. `dlcourse serve --workers W` on a free loopback port (SQLite, isolated, the fork engine);
  3. N hand-ins of the master's full solutions (the release notebook filled in, as bench/grade_speed.py makes
     them) from C concurrent clients, all at once; each client then polls its hand-in until graded;
  4. after the burst, a few single hand-ins one at a time (the latency when not in a burst);
  5. `dlcourse grade A --workers W` on the same N submissions in a fresh copy of the course.

It also prints where the burst's CPU went (seconds of CPU, user + system): the clients (this process), the
service's own process and its descendants (the warm workers), and the machine's load average before and after.

It prints: hand-ins acknowledged, lost (acknowledged but missing or not graded) and graded wrong (not full
marks), p50/p95/max seconds from the start of an upload to its result, the burst's throughput (hand-ins
per second from the first upload to the last result), `dlcourse grade`'s throughput over its grading step
(the reference check and start-up excluded, from its DLCOURSE_PROFILE timings) and over the whole command,
and their ratio.

Run: `.venv/bin/python bench/serve_load.py [--handins 300] [--clients 16] [--workers 2]`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import psutil
import requests
from benchcourse import PYTHON, env, make_course, timed

from dlcourse.authoring.demo import filled_notebook  # importable: benchcourse puts the checkout first on the path

STARTUP_SECONDS = 300
RESULT_SECONDS = 900  # the longest any one hand-in may take before the run gives up on it


def full_solution(course: Path, assignment: str) -> bytes:
    master = next((course / "source" / assignment).glob("*.ipynb"))
    return nbformat.writes(filled_notebook(master, course / "release" / assignment / master.name)).encode()


def start_service(course: Path, workers: int, log: Path) -> tuple[subprocess.Popen, str]:
    command = [PYTHON, "-m", "dlcourse", "--course", str(course), "serve", "--port", "0", "--workers", str(workers),
               "--uploads-per-minute", "0"]
    with open(log, "w") as stderr:  # the child keeps its own copy of the file
        process = subprocess.Popen(command, cwd=course, env=env(), stdout=subprocess.PIPE, stderr=stderr,
                                   text=True, start_new_session=True)
    found: list[str] = []

    def read():
        for line in process.stdout:
            if "listening on" in line:
                found.append(line.rsplit("listening on", 1)[1].strip())

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + STARTUP_SECONDS
    while not found and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    if not found:
        stop_service(process)
        raise SystemExit(f"the service did not start; its log: {log}")
    return process, found[0]


def stop_service(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def hand_in(url: str, token: str, assignment: str, data: bytes, poll: float = 0.25) -> dict:
    """One student's hand-in: upload, then poll until graded; the seconds from upload start to result."""
    headers = {"Authorization": f"Bearer {token}"}
    started = time.monotonic()
    reply = requests.post(f"{url}api/v1/assignments/{assignment}/submissions", headers=headers,
                          files={"file": (f"{assignment}.ipynb", data)}, timeout=120)
    if reply.status_code != 201:
        return {"acknowledged": False, "status": reply.status_code, "error": reply.text[:300]}
    handin_id = reply.json()["id"]
    deadline = started + RESULT_SECONDS
    view = reply.json()
    while view["state"] not in ("graded", "failed") and time.monotonic() < deadline:
        time.sleep(poll)
        view = requests.get(f"{url}api/v1/submissions/{handin_id}", headers=headers, timeout=60).json()
    return {"acknowledged": True, "id": handin_id, "state": view["state"], "score": view["score"],
            "max_score": view["max_score"], "seconds": time.monotonic() - started, "started": started,
            "finished": time.monotonic()}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def run_burst(course: Path, assignment: str, args, data: bytes) -> tuple[list[dict], list[dict]]:
    subprocess.run([PYTHON, "-m", "dlcourse", "--course", str(course), "serve", "tokens", "--out",
                    str(course / "tokens.csv")], env=env(), check=True, stdout=subprocess.DEVNULL)
    tokens = [line.split(",")[1] for line in (course / "tokens.csv").read_text().splitlines()[1:]]
    process, url = start_service(course, args.workers, course / "serve.log")
    try:
        service, load_before = psutil.Process(process.pid), os.getloadavg()
        before = cpu_seconds(service), resource.getrusage(resource.RUSAGE_SELF)
        with ThreadPoolExecutor(args.clients) as clients:
            burst = list(clients.map(lambda token: hand_in(url, token, assignment, data, args.poll_seconds),
                                     tokens[:args.handins]))
        after = cpu_seconds(service), resource.getrusage(resource.RUSAGE_SELF)
        used = {"clients": (after[1].ru_utime + after[1].ru_stime) - (before[1].ru_utime + before[1].ru_stime),
                "service": after[0][0] - before[0][0], "workers": after[0][1] - before[0][1]}
        print(f"CPU in the burst: clients {used['clients']:.1f} s, service process {used['service']:.1f} s, its "
              f"workers {used['workers']:.1f} s; load average {load_before[0]:.2f} before, "
              f"{os.getloadavg()[0]:.2f} after", flush=True)
        single = [hand_in(url, tokens[i], assignment, data) for i in range(args.single)]
    finally:
        stop_service(process)
    return burst, single


def cpu_seconds(service: psutil.Process) -> tuple[float, float]:
    """CPU seconds of the service's own process and of its live descendants (the warm workers, the zygote)."""
    own = service.cpu_times()
    rest = 0.0
    for child in service.children(recursive=True):
        try:
            times = child.cpu_times()
            rest += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return own.user + own.system, rest


def run_batch(template: Path, where: Path, assignment: str, workers: int, data: bytes, students: list[str]):
    course = where / "batch"
    shutil.copytree(template, course)
    for student in students:
        folder = course / "submitted" / student / assignment
        folder.mkdir(parents=True)
        (folder / f"{assignment}.ipynb").write_bytes(data)
    profile = where / "batch-profile.json"
    run = timed([PYTHON, "-m", "dlcourse", "grade", assignment, "--workers", str(workers)], course,
                {"DLCOURSE_PROFILE": str(profile)})
    if run.returncode != 0:
        raise SystemExit(f"dlcourse grade failed:\n{run.stderr}")
    return run.wall, json.loads(profile.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--handins", type=int, default=300)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--single", type=int, default=5, help="hand-ins one at a time after the burst")
    parser.add_argument("--assignment", default="a1_autodiff")
    parser.add_argument("--poll-seconds", type=float, default=0.25, help="how often each client asks for its result")
    args = parser.parse_args()
    assignment = args.assignment
    print(f"machine: {os.cpu_count()} cores; {args.handins} hand-ins of {assignment} (full solutions) from "
          f"{args.clients} clients polling every {args.poll_seconds:g} s, --workers {args.workers}", flush=True)
    with tempfile.TemporaryDirectory(prefix="dlcourse-serve-bench-") as scratch:
        scratch = Path(scratch)
        template = make_course(scratch / "template", assignment, 0)
        students = [f"student{i:03d}" for i in range(max(args.handins, args.single))]
        (template / "roster.csv").write_text("student_id,name,email,lms_id,github\n"
                                             + "".join(f"{s},Student {s[7:]},,,\n" for s in students))
        data = full_solution(template, assignment)
        served = scratch / "served"
        shutil.copytree(template, served)
        started = time.monotonic()
        burst, single = run_burst(served, assignment, args, data)
        print(f"service run: {time.monotonic() - started:.1f} s including start-up", flush=True)
        batch_wall, timings = run_batch(template, scratch, assignment, args.workers, data, students[:args.handins])
    report(args, burst, single, batch_wall, timings)
    return 0 if all(r.get("state") == "graded" for r in burst) else 1


def report(args, burst: list[dict], single: list[dict], batch_wall: float, timings: dict) -> None:
    acknowledged = [r for r in burst if r["acknowledged"]]
    graded = [r for r in acknowledged if r["state"] == "graded"]
    wrong = [r for r in graded if r["score"] != r["max_score"]]
    seconds = [r["seconds"] for r in graded]
    span = max(r["finished"] for r in graded) - min(r["started"] for r in acknowledged)
    print(f"acknowledged {len(acknowledged)} / {len(burst)}; lost (acknowledged, not graded) "
          f"{len(acknowledged) - len(graded)}; graded wrong (not full marks) {len(wrong)}")
    refused = [r for r in burst if not r["acknowledged"]]
    if refused:
        print(f"refused: {refused[0]['status']} {refused[0]['error']}")
    print(f"upload -> result in the burst: p50 {percentile(seconds, .5):.2f} s, p95 {percentile(seconds, .95):.2f} s, "
          f"max {max(seconds):.2f} s")
    alone = [r["seconds"] for r in single if r.get("state") == "graded"]
    if alone:
        print(f"upload -> result one at a time ({len(alone)}): p50 {percentile(alone, .5):.2f} s, "
              f"max {max(alone):.2f} s")
    service_rate = len(graded) / span
    batch_rate = args.handins / timings["students"]
    print(f"service: {service_rate:.2f} hand-ins/s ({len(graded)} in {span:.1f} s, first upload to last result)")
    print(f"dlcourse grade: {batch_rate:.2f} submissions/s over its grading step ({timings['students']:.1f} s; "
          f"whole command {batch_wall:.1f} s = {args.handins / batch_wall:.2f}/s)")
    print(f"service / batch throughput: {service_rate / batch_rate:.2f} (grading step), "
          f"{service_rate / (args.handins / batch_wall):.2f} (whole command)")


if __name__ == "__main__":
    sys.exit(main())
