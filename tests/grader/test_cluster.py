"""`dlcourse grade --cluster` on a real Dask cluster of separate worker processes, on loopback only.

- a varied set of students graded on ``--cluster local:2`` gets every cell's points and every status that
  local grading gives (and the client wrote autograded/, the gradebook and the reports);
- a worker killed mid-job: the job is graded again elsewhere with the same grades; a job that kills its
  worker on every try is ``crashed`` for that student alone;
- a scheduler that cannot be reached is refused with a message naming it; a worker without bubblewrap
  does not start unless told --no-isolation, and then gets no job from a client that asked for isolation;
- TLS on: `dlcourse cluster-certs`, a scheduler that requires it, `dlcourse worker --tls`, and a client with
  and without the certificates.
Plus, without a cluster: what a job carries (its files as data, no path of the client's).
"""

from __future__ import annotations

import os
import pickle
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dlcourse.sandbox import scratch
from helpers import folders_made_by
from tiny_course import (ASSIGNMENT, GOOD_CUBE, GOOD_SQUARE, GRADE_OPTIONS, MAX_SCORE, WRONG_CUBE, WRONG_SQUARE,
                         dlcourse_env, python, template_course)

GOOD = {"square": GOOD_SQUARE, "cube": GOOD_CUBE}
WRONG = {"square": WRONG_SQUARE, "cube": WRONG_CUBE}
#: A student's cell that ends the Dask worker process grading it (its nearest ancestor started by
#: multiprocessing's spawn); possible only unisolated, which is how the faults test grades.
KILL_MY_WORKER = """
import os, signal
pid = os.getppid()
while pid > 1:
    cmdline = open(f"/proc/{pid}/cmdline", "rb").read()
    if b"spawn_main" in cmdline:
        os.kill(pid, signal.SIGKILL)
        break
    pid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
"""


def _submit_varied(course, rng: random.Random) -> list[str]:
    offset = rng.choice(["1e-3", "1e-2", "0.5"])
    course.submit("good", GOOD)
    course.submit("blank")
    course.submit("wrong", WRONG)
    course.submit("near_miss", {"square": f"def square(x):\n    return x * x + {offset}", "cube": GOOD_CUBE})
    course.submit("half", {"square": GOOD_SQUARE, "cube": WRONG_CUBE},
                  files={"data/notes.txt": rng.randbytes(rng.randrange(1, 5000))})
    course.submit("error_midway", GOOD, extra_after={"square": ["undefined_name + 1"]})
    course.submit("broken", raw=b"{ not a notebook")
    return ["good", "blank", "wrong", "near_miss", "half", "error_midway", "broken"]


# -- without a cluster: what travels ------------------------------------------


def test_a_job_carries_the_submissions_files_as_data_and_no_path_of_the_client(tmp_path):
    from dlcourse.grading.cluster import JobData, pack_folder, unpack_folder
    from dlcourse.grading.results import GradingOptions

    rng = random.Random()
    folder = tmp_path / "client-only-folder-7f3a" / "alice" / ASSIGNMENT
    files = {}
    for index in range(rng.randrange(1, 8)):
        name = f"sub{rng.randrange(3)}/f{index}.bin" if rng.random() < 0.5 else f"f{index}.ipynb"
        files[name] = rng.randbytes(rng.randrange(0, 3000))
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    (folder / "link").symlink_to("/etc/passwd")
    packed = pack_folder(folder)
    assert packed == files  # every file, byte for byte; no symlink followed
    job = JobData("alice", ASSIGNMENT, packed, GradingOptions(read_only=[]), "f" * 64, "plugin")
    assert b"client-only-folder-7f3a" not in pickle.dumps(job)
    assert {str(p.relative_to(tmp_path / "out")): p.read_bytes()
            for p in unpack_folder(packed, tmp_path / "out").rglob("*") if p.is_file()} == files


def test_a_jobs_files_stop_at_the_size_limit_that_the_local_copy_uses(tmp_path):
    from dlcourse.grading.cluster import pack_folder
    from dlcourse.grading.run import copy_submission

    rng = random.Random()
    folder = tmp_path / "s"
    folder.mkdir()
    for index in range(6):
        (folder / f"f{index}").write_bytes(rng.randbytes(rng.randrange(100, 1000)))
    limit = rng.randrange(500, 4000)
    import dlcourse.grading.run as run

    saved, run.SUBMISSION_COPY_LIMIT = run.SUBMISSION_COPY_LIMIT, limit
    try:
        copy_submission(folder, tmp_path / "copy")
    finally:
        run.SUBMISSION_COPY_LIMIT = saved
    copied = {p.name for p in (tmp_path / "copy").iterdir()} if (tmp_path / "copy").exists() else set()
    assert set(pack_folder(folder, limit=limit)) == copied


def test_a_job_file_name_that_leaves_its_folder_is_refused(tmp_path):
    from dlcourse.grading.cluster import unpack_folder

    with pytest.raises(ValueError, match="leaves its folder"):
        unpack_folder({"../outside.txt": b"x"}, tmp_path / "in")
    assert not (tmp_path / "outside.txt").exists()


# -- a scheduler that cannot be reached ---------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_scheduler_is_refused_with_its_address(tmp_path_factory):
    course = template_course(tmp_path_factory).copy(tmp_path_factory.mktemp("unreachable") / "course")
    course.submit("alice", GOOD)
    address = f"tcp://127.0.0.1:{_free_port()}"
    run = course.grade(env=dlcourse_env(DLCOURSE_CLUSTER=address), timeout=120)  # $DLCOURSE_CLUSTER
    assert run.returncode == 1, run.stdout + run.stderr
    assert "cannot reach the Dask scheduler" in run.stderr and address in run.stderr
    assert not (course.root / "autograded" / "alice").exists()


def test_a_worker_without_bubblewrap_refuses_to_start_unless_told_no_isolation(tmp_path):
    no_bwrap = tmp_path / "bin"
    no_bwrap.mkdir()
    run = subprocess.run([python(), "-m", "dlcourse", "worker", f"tcp://127.0.0.1:{_free_port()}"],
                         env=dlcourse_env(PATH=str(no_bwrap)), capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "cannot isolate students' code" in run.stderr and "--no-isolation" in run.stderr


# -- same grades as local grading ---------------------------------------------


@pytest.fixture(scope="module")
def local_and_cluster(tmp_path_factory):
    template = template_course(tmp_path_factory)
    seed = random.randrange(2**32)
    graded = {}
    for how, args in (("local", ("--workers", "2")), ("cluster", ("--cluster", "local:2"))):
        course = template.copy(tmp_path_factory.mktemp(how) / "course")
        students = _submit_varied(course, random.Random(seed))
        run = course.grade(*args)
        assert run.returncode == 0, run.stdout + run.stderr
        graded[how] = (course, run)
    return graded, students, seed


@pytest.mark.slow
def test_a_local_cluster_gives_every_cell_and_status_that_local_grading_gives(local_and_cluster):
    graded, students, seed = local_and_cluster
    (local, _), (cluster, run) = graded["local"], graded["cluster"]
    assert "cluster: scheduler tcp://127.0.0.1:" in run.stderr and "dashboard:" in run.stderr
    assert "2 of 2 worker(s) ready to grade" in run.stderr
    assert set(cluster.grades()) == set(students)
    assert cluster.grades() == local.grades(), f"seed {seed}"
    assert cluster.cell_scores() == local.cell_scores(), f"seed {seed}"
    assert cluster.gradebook_scores() == local.gradebook_scores()
    assert cluster.grades()["good"] == (MAX_SCORE, MAX_SCORE, "ok")  # the grades are real, not all zero


@pytest.mark.slow
def test_the_client_stores_each_students_graded_notebook_and_result(local_and_cluster):
    graded, students, _ = local_and_cluster
    cluster, _ = graded["cluster"]
    for student in students:
        assert cluster.result(student)["fingerprint"], student  # stored under its fingerprint: a rerun resumes
    assert "undefined_name" in cluster.graded_text("error_midway")  # the executed notebook came back as data


@pytest.mark.slow
def test_a_rerun_after_a_lost_result_grades_only_that_student_and_keeps_the_others(local_and_cluster):
    """As after a client killed midway: what is stored stays, the rest is graded (runs last on this fixture)."""
    graded, students, _ = local_and_cluster
    cluster, _ = graded["cluster"]
    lost = random.choice([s for s in students if s != "broken"])
    before = cluster.cell_scores()
    kept = {s: cluster.root / "autograded" / s / ASSIGNMENT / ".dlcourse-result.json" for s in students if s != lost}
    stamps = {s: (p.read_bytes(), p.stat().st_mtime_ns) for s, p in kept.items()}
    (cluster.root / "autograded" / lost / ASSIGNMENT / ".dlcourse-result.json").unlink()
    run = cluster.grade("--cluster", "local:1")
    assert run.returncode == 0, run.stdout + run.stderr
    assert {s: (p.read_bytes(), p.stat().st_mtime_ns) for s, p in kept.items()} == stamps
    assert cluster.result(lost)["fingerprint"]
    assert cluster.cell_scores() == before, lost


# -- faults: a worker killed mid-job, a job that kills its workers ------------


def _executing(dask_worker) -> list[str]:
    return [str(ts.key) for ts in dask_worker.state.executing]


@pytest.mark.slow
def test_a_killed_worker_is_retried_elsewhere_and_a_job_that_kills_workers_is_crashed_alone(tmp_path_factory):
    from dlcourse.grading.cluster import ClusterExecutor
    from dlcourse.core.course import CourseLayout
    from dlcourse.grading import GradingOptions, grade_and_report

    course = template_course(tmp_path_factory).copy(tmp_path_factory.mktemp("faults") / "course")
    course.submit("good", GOOD)
    course.submit("sleepy", GOOD, extra_before={"square": ["import time\ntime.sleep(6)"]})
    course.submit("killer", GOOD, extra_before={"square": [KILL_MY_WORKER]})
    lines: list[str] = []
    executor = ClusterExecutor("local:2", allowed_failures=1, unisolated=True, log=lines.append)
    options = GradingOptions(isolate=False, cell_timeout=15, notebook_timeout=90, read_only=[])
    outcome: dict = {}

    def grade():
        try:
            outcome["report"] = grade_and_report(CourseLayout(course.root), ASSIGNMENT, options, executor=executor,
                                                 progress=False)
        except BaseException as error:  # reported below
            outcome["error"] = error

    thread = threading.Thread(target=grade)
    thread.start()
    killed = None
    try:
        deadline = time.monotonic() + 240
        while killed is None and thread.is_alive() and time.monotonic() < deadline:
            try:  # a worker that is restarting answers with an error, the others with their keys
                running = executor.client.run(_executing, on_error="return")
                pids = executor.client.run(os.getpid, on_error="return")
            except Exception:  # the scheduler is busy with a dead worker
                running, pids = {}, {}
            for worker, keys in running.items():
                if isinstance(keys, list) and any(k.startswith("grade-sleepy-") for k in keys) \
                        and isinstance(pids.get(worker), int):
                    time.sleep(1.0)  # mid-job: inside its notebook's six seconds
                    made = folders_made_by({pids[worker]})
                    os.kill(pids[worker], signal.SIGKILL)
                    killed, killed_pid = worker, pids[worker]
                    break
            time.sleep(0.2)
        thread.join(timeout=300)
    finally:
        executor.shutdown(cancel_futures=True)
    assert "error" not in outcome, outcome.get("error")
    assert killed is not None, "the sleepy student's job was never seen running"
    results = {r.student_id: r for r in outcome["report"].results}
    for student in ("good", "sleepy"):
        assert (results[student].status, results[student].score) == ("ok", MAX_SCORE), student
    good_cells = [(c.grade_id, c.score) for nb in results["good"].notebooks for c in nb.cells]
    assert [(c.grade_id, c.score) for nb in results["sleepy"].notebooks for c in nb.cells] == good_cells
    assert results["killer"].status == "crashed" and results["killer"].score == 0
    assert results["killer"].max_score == MAX_SCORE  # counted out of the full maximum, every test at 0
    assert any("killer" in line and "crashed" in line for line in lines), lines
    assert course.grades()["killer"] == (0.0, MAX_SCORE, "crashed")  # the reports say so too
    # The killed worker's folders (its job's files, the masters) are named after it: the next sweep on the
    # machine (a restarted worker's, or the next `dlcourse grade`'s) removes them, if the restart has not.
    assert {path.name.split("-")[1] for path in made} >= {"job", "masters"}, made
    scratch.sweep()
    assert not folders_made_by({killed_pid})


# -- TLS, and `dlcourse worker` -----------------------------------------------


def _start_worker(address: str, certs: Path, *extra: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen([python(), "-m", "dlcourse", "worker", address, "--tls", str(certs), *extra],
                            env=dlcourse_env(**env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _stop(worker: subprocess.Popen) -> str:
    worker.send_signal(signal.SIGINT)
    try:
        return worker.communicate(timeout=30)[0]
    except subprocess.TimeoutExpired:
        worker.kill()
        return worker.communicate()[0]


@pytest.mark.slow
def test_tls_cluster_grades_only_on_the_worker_with_isolation_and_data_and_refuses_a_client_without_certs(
        tmp_path_factory):
    """Three `dlcourse worker`s: one fit, one without bubblewrap (--no-isolation), one without the data set."""
    import nbformat
    from distributed import LocalCluster

    from dlcourse import authoring
    from dlcourse.grading.cluster import STARTED_TOPIC, security
    from test_reference import DATA_TEST

    course = template_course(tmp_path_factory).copy(tmp_path_factory.mktemp("tls") / "course")
    master = nbformat.read(str(course.master_path), as_version=4)
    master.cells.append(authoring.tests("test_data", 1, DATA_TEST))  # needs tiny-set/numbers.txt of the data
    nbformat.write(master, str(course.master_path))
    assert course.dlcourse("release", ASSIGNMENT).returncode == 0
    course.submit("good", GOOD)
    course.submit("wrong", WRONG)
    data, no_data = course.root.parent / "data", course.root.parent / "no-data"
    (data / "tiny-set").mkdir(parents=True)
    (data / "tiny-set" / "numbers.txt").write_text(str(random.uniform(-5, 5)))
    no_data.mkdir()
    certs = course.root.parent / "certs"
    made = subprocess.run([python(), "-m", "dlcourse", "cluster-certs", str(certs)], env=dlcourse_env(),
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    assert (certs / "ca-key.pem").stat().st_mode & 0o077 == 0  # the CA's key is the owner's alone
    scheduler = LocalCluster(n_workers=0, host="127.0.0.1", protocol="tls", security=security(certs),
                             dashboard_address=None, scheduler_port=0)
    workers = []
    try:
        address = scheduler.scheduler_address
        assert address.startswith("tls://127.0.0.1:")
        no_bwrap = course.root.parent / "bin-without-bwrap"  # a machine without bubblewrap
        no_bwrap.mkdir()
        workers.append(_start_worker(address, certs, DLCOURSE_DATA=str(data)))
        workers.append(_start_worker(address, certs, "--no-isolation", PATH=str(no_bwrap), DLCOURSE_DATA=str(data)))
        workers.append(_start_worker(address, certs, DLCOURSE_DATA=str(no_data)))
        scheduler.wait_for_workers(3, timeout=400)  # three Python processes start: slow when loaded
        without = course.grade("--cluster", address, timeout=120)
        assert without.returncode == 1 and "cannot reach the Dask scheduler" in without.stderr, without.stderr
        run = course.grade("--cluster", address, "--tls", str(certs), timeout=300)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "1 of 3 worker(s) ready to grade" in run.stderr
        assert run.stderr.count("is broken and gets no job") == 2
        assert "cannot isolate students' code here" in run.stderr
        assert "tiny test_data: the tiny data set is not in" in run.stderr
        max_score = MAX_SCORE + 1
        assert course.grades() == {"good": (max_score, max_score, "ok"), "wrong": (0.0, max_score, "ok")}
        graders = {msg["worker"] for _, msg in scheduler.scheduler.get_events(STARTED_TOPIC)}
        broken = {part.split(" ", 1)[0] for part in run.stderr.split("cluster: worker ")[1:]}
        assert len(graders) == 1 and len(broken) == 2 and not broken & graders, (graders, broken)
    finally:
        for worker in workers:
            sys.stderr.write(_stop(worker)[-2000:])
        scheduler.close()
