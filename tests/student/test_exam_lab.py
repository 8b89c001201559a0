"""`dlcourse lab --exam`: the sitting folder and its deadline survive a restart, the last saved state is
handed in (notebook and PDF) at the deadline, also after a crash; one `slow` run with a real JupyterLab
and a deadline seconds away."""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import nbformat
import pytest

from dlcourse import exam
from dlcourse.student import examlab
from dlcourse.core.course import CourseLayout
from dlcourse.student.lab import free_port
from dlcourse.authoring.release import generate_release

from helpers import ROOT, shared_folder

import sys  # noqa: E402

sys.path.insert(0, str(ROOT / "tests" / "grader"))
from tiny_course import dlcourse_env, python  # noqa: E402

NAME = "quiz"
STUDENT = "Ada Lovelace"
TOKEN = "exam-lab-test-token"


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """A course with a small exam (one item, one paper) released as students get it."""
    folder, lock = shared_folder(tmp_path_factory, "examlab")  # one release for the session's workers (copied)
    try:
        course = folder / "course"
        if not (course / "release" / NAME / "exam.ipynb").is_file():
            shutil.rmtree(course, ignore_errors=True)
            course.mkdir(parents=True)
            shutil.copy(ROOT / "nbgrader_config.py", course)
            shutil.copytree(ROOT / "source", course / "source")
            layout = CourseLayout(course)
            exam.build_exam(layout, NAME, items=["linear"], open_questions=["why_heads"], papers=["recht"],
                            pdf=False)
            generate_release(layout, NAME)
    finally:
        if lock is not None:
            lock.close()
    return course


def _fresh(released, tmp_path):
    course = tmp_path / "course"
    shutil.copytree(released, course)
    return course


def _zip_notebook(path):
    with zipfile.ZipFile(path) as bundle:
        names = bundle.namelist()
        notebook = next(n for n in names if n.endswith("/exam.ipynb"))
        return names, nbformat.reads(bundle.read(notebook).decode(), as_version=4)


def test_a_restart_keeps_the_saved_notebook_and_the_first_deadline(released, tmp_path):
    course = _fresh(released, tmp_path)
    start = dt.datetime(2027, 2, 1, 9, 0, tzinfo=dt.timezone.utc)
    folder, state = examlab.prepare_sitting(course, NAME, 120, STUDENT, now=start)
    notebook = nbformat.read(str(folder / "exam.ipynb"), as_version=4)
    assert json.dumps(STUDENT) in notebook.cells[0].source, "the names cell is filled in from --student"
    notebook.cells[4].source += "\n# saved by the student"
    nbformat.write(notebook, str(folder / "exam.ipynb"))
    other = _fresh(released, tmp_path / "other")
    _, default = examlab.prepare_sitting(other, NAME, None, STUDENT, now=start)
    duration = nbformat.read(str(released / "release" / NAME / "exam.ipynb"), as_version=4).metadata["dlcourse"]["exam"]
    assert examlab.deadline_of(default) == start + dt.timedelta(minutes=duration["duration_minutes"])
    again, state_again = examlab.prepare_sitting(course, NAME, 600, "someone else", now=start + dt.timedelta(hours=1))
    assert again == folder and state_again == state
    assert examlab.deadline_of(state_again) == start + dt.timedelta(minutes=120)
    assert "# saved by the student" in nbformat.read(str(folder / "exam.ipynb"), as_version=4).cells[4].source


def test_a_start_after_the_deadline_hands_in_the_last_saved_state_at_once(released, tmp_path):
    """A crash (or a lost connection) near the end: the next start finds the deadline past and hands in."""
    course = _fresh(released, tmp_path)
    folder, state = examlab.prepare_sitting(course, NAME, 1, STUDENT,
                                            now=dt.datetime.now().astimezone() - dt.timedelta(minutes=5))
    notebook = nbformat.read(str(folder / "exam.ipynb"), as_version=4)
    notebook.cells[4].source += "\n# last saved state"
    nbformat.write(notebook, str(folder / "exam.ipynb"))
    zip_path = examlab.sit(course, NAME, minutes=1, student=None, open_browser=False)
    names, handed_in = _zip_notebook(zip_path)
    assert any(n.endswith("/exam.pdf") for n in names), names
    assert handed_in.cells[4].source.endswith("# last saved state")
    assert json.loads((folder / "sitting.json").read_text())["handed_in"]
    notebook.cells[0].source = 'NAMES = ""'  # an emptied names cell never stops the hand-in at the end
    nbformat.write(notebook, str(folder / "exam.ipynb"))
    state = json.loads((folder / "sitting.json").read_text())
    names, handed_in = _zip_notebook(examlab.hand_in(course, folder, state))
    assert json.dumps(STUDENT) in handed_in.cells[0].source
    with pytest.raises(examlab.SittingError, match="was handed in"):
        examlab.sit(course, NAME, minutes=1, student=None, open_browser=False)


def test_no_sitting_without_a_student_or_an_exam(released, tmp_path):
    course = _fresh(released, tmp_path)
    with pytest.raises(examlab.SittingError, match="--student"):
        examlab.prepare_sitting(course, NAME, 10, "  ")
    with pytest.raises(examlab.SittingError, match="there is no exam 'nope'"):
        examlab.prepare_sitting(course, "nope", 10, STUDENT)


@pytest.mark.parametrize("seed", range(8))
def test_the_countdown_shows_the_minutes_and_seconds_left(seed):
    rng = random.Random(seed)
    now = dt.datetime(2027, 2, 1, 9, 0, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=rng.randint(0, 86400))
    left = rng.randint(-100, 4 * 3600)
    css = examlab.countdown_css(now + dt.timedelta(seconds=left), now)
    minutes, seconds = re.search(r"Exam: (\d+) min (\d+) s left", css).groups()
    assert int(minutes) * 60 + int(seconds) == max(0, left)


def _kernel_output(kernel_id: str) -> str:
    """What the lab's own kernel prints when it tries the network (a client on its connection file)."""
    from jupyter_client import BlockingKernelClient
    from jupyter_core.paths import jupyter_runtime_dir

    client = BlockingKernelClient(connection_file=str(Path(jupyter_runtime_dir()) / f"kernel-{kernel_id}.json"))
    client.load_connection_file()
    printed = []
    try:
        # no heartbeat channel: its 1 s time-to-dead calls a kernel dead that is only slow on a loaded machine
        client.start_channels(hb=False)
        client.wait_for_ready(timeout=60)
        client.execute_interactive(
            "import socket\ntry:\n    socket.create_connection(('192.0.2.1', 80), timeout=3)\n    print('connected')\n"
            "except OSError as error:\n    print('refused', error)\n",
            output_hook=lambda message: printed.append(message["content"].get("text", "")), timeout=60)
    finally:
        client.stop_channels()
    return "".join(printed)


@pytest.mark.slow
def test_the_lab_opens_only_the_exam_and_hands_in_what_was_saved_at_the_deadline(released, tmp_path):
    course = _fresh(released, tmp_path)
    port = free_port()
    process = subprocess.Popen(
        [python(), "-m", "dlcourse", "lab", "--exam", NAME, "--minutes", "0.75", "--student", STUDENT,
         "--no-browser", "--port", str(port), "--course-root", str(course)],
        cwd=course, env=dlcourse_env(DLCOURSE_LAB_TOKEN=TOKEN), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    try:
        folder = course / examlab.SITTING_DIR / NAME
        for _ in range(120):  # the server answers (401 without its token: it is up)
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=2)
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                time.sleep(0.5)
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/custom/custom.css", timeout=5).read().decode()
        assert "left" in page and "hand-in at" in page, "the countdown is served to the page"
        if examlab.network_can_be_cut():  # the server reaches a kernel that has no network (over Unix sockets)
            api = f"http://127.0.0.1:{port}/api/kernels?token={TOKEN}"
            request = urllib.request.Request(api, data=b"{}", method="POST",
                                             headers={"Content-Type": "application/json"})
            kernel = json.loads(urllib.request.urlopen(request, timeout=60).read())
            assert _kernel_output(kernel["id"]).startswith("refused"), "the lab's kernel reached the network"
        notebook = nbformat.read(str(folder / "exam.ipynb"), as_version=4)  # a save, as the autosave does
        notebook.cells[4].source += "\n# saved during the sitting"
        nbformat.write(notebook, str(folder / "exam.ipynb"))
        output, _ = process.communicate(timeout=240)
    finally:
        if process.poll() is None:  # SIGTERM: the lab stops its server (and hands in), leaving nothing running
            process.terminate()
            process.wait(timeout=120)
    assert process.returncode == 0, output
    assert "time is up" in output
    zip_path = json.loads((folder / "sitting.json").read_text())["zip"]
    names, handed_in = _zip_notebook(zip_path)
    assert any(n.endswith("/exam.pdf") for n in names)
    assert handed_in.cells[4].source.endswith("# saved during the sitting")
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=2)


@pytest.mark.skipif(not examlab.network_can_be_cut(), reason="no unprivileged user namespaces here")
def test_the_sittings_kernel_has_no_network_and_still_talks_to_its_client(tmp_path, monkeypatch):
    from jupyter_client.manager import KernelManager

    examlab.write_kernel_spec(tmp_path / "data")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    manager = KernelManager(kernel_name="python3", transport="ipc")
    assert manager.kernel_spec.argv[:len(examlab.NO_NETWORK)] == list(examlab.NO_NETWORK)
    manager.start_kernel()
    client = manager.client()
    try:
        client.start_channels()
        client.wait_for_ready(timeout=60)
        printed = []
        client.execute_interactive(
            "import socket\n"
            "names = [name for _, name in socket.if_nameindex()]\n"
            "try:\n"
            "    socket.create_connection(('192.0.2.1', 80), timeout=3)\n"
            "    print('connected', names)\n"
            "except OSError as error:\n"
            "    print('refused', error.errno, names)\n",
            output_hook=lambda message: printed.append(message["content"].get("text", "")), timeout=60)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    text = "".join(printed)
    assert text.startswith("refused") and "['lo']" in text, text
