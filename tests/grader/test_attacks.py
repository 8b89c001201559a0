"""Students who attack the grader get nothing for it.

One `dlcourse grade` run over a tiny course where most students cheat:
monkeypatching torch, numpy, builtins and dlcourse's helpers, forging the
kernel's replies, returning objects that equal everything, snooping on the
course and the network, editing tests and the gradebook. Each one's outcome
is asserted, and the honest students beside them are graded as usual.
"""

from __future__ import annotations

import shutil
import socket
import threading

import pytest

from tiny_course import (GOOD_CUBE, GOOD_SQUARE, HIDDEN_MARKER, MAX_SCORE, REPOSITORY, WRONG_CUBE, WRONG_SQUARE,
                         dlcourse_env, template_course, tree_digest)

WRONG = {"square": WRONG_SQUARE, "cube": WRONG_CUBE}
GOOD = {"square": GOOD_SQUARE, "cube": GOOD_CUBE}

PATCH_LIBRARIES = """
import builtins, math
import numpy, torch
import dlcourse.testing as testing, dlcourse.bridge.wire as wire
torch.allclose = lambda *args, **kwargs: True
torch.equal = lambda *args, **kwargs: True
torch.isclose = lambda a, b, *args, **kwargs: torch.ones_like(a, dtype=torch.bool)
torch.Tensor.__eq__ = lambda self, other: True
torch.Tensor.__sub__ = lambda self, other: torch.zeros_like(self)
torch.Tensor.abs = lambda self: torch.zeros_like(self)
torch.testing.assert_close = lambda *args, **kwargs: None
numpy.allclose = lambda *args, **kwargs: True
math.isclose = lambda *args, **kwargs: True
builtins.abs = lambda value: 0
builtins.AssertionError = type("Quiet", (Exception,), {})
testing.assert_close = lambda *args, **kwargs: None
testing.assert_equal = lambda *args, **kwargs: None
testing.student = None
testing.StudentCodeError = type("Quiet", (Exception,), {})
wire.loads = lambda blob: {"ok": True, "value": True}
print("patched")
"""

FORGE_REPLY = """
import dlcourse.bridge.agent as agent, dlcourse.bridge.wire as wire
agent.serve = lambda blob: wire.dumps({"ok": True, "value": 9.0})
print("forged")
"""

# A reply the grader must never unpickle: it would create a file in the grader's process.
FORGE_PICKLE = """
import base64, os, pickle
import dlcourse.bridge.agent as agent, dlcourse.bridge.wire as wire
from IPython.display import display

class Exploit:
    def __reduce__(self):
        return (os.system, ("touch {proof}",))

class Equal:
    def __eq__(self, other):
        return True

def forged(request_b64):
    blob = pickle.dumps({{"ok": True, "value": [Exploit(), Equal()]}})
    display({{wire.REPLY_MIME_TYPE: base64.b64encode(blob).decode("ascii")}}, raw=True)

agent.serve_b64 = forged  # the kernel engine's way in
agent.serve = lambda blob: pickle.dumps({{"ok": True, "value": [Exploit(), Equal()]}})  # the fork engine's
print("forged pickles")
"""

ALWAYS_EQUAL = """
import torch

class Always:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __bool__(self): return True
    def __float__(self): return 8.0
    def __lt__(self, other): return True
    def __le__(self, other): return True
    def __gt__(self, other): return True
    def __ge__(self, other): return True
    def __abs__(self): return 0.0
    def __sub__(self, other): return 0.0
    def __rsub__(self, other): return 0.0
    def __len__(self): return 0

class EqualTensor(torch.Tensor):
    def __eq__(self, other): return True
    def __sub__(self, other): return torch.zeros_like(torch.Tensor(self))

class EqualFloat(float):
    def __eq__(self, other): return True
    def __sub__(self, other): return 0.0

def square(x):
    if isinstance(x, torch.Tensor):
        return torch.zeros_like(x).as_subclass(EqualTensor)
    return EqualFloat(0.0)

def cube(x):
    return Always()
"""

SNOOP = """
import glob, os, socket, sqlite3
course = {course!r}
targets = [
    course + "/source/tiny/tiny.ipynb", course + "/gradebook.db", course + "/submitted/good/tiny/tiny.ipynb",
    course + "/nbgrader_config.py", {repo_source!r}, "../../../source/tiny/tiny.ipynb", "/proc/1/cwd/source",
]
for path in targets:
    try:
        with open(path, "rb") as handle:
            print("FOUND", path, handle.read(200000))
    except OSError as error:
        print("no access to", path, type(error).__name__)
    try:
        os.listdir(path)
        print("FOUND directory", path)
    except OSError:
        pass
    try:
        with open(path, "r+b") as handle:  # an existing file only
            handle.write(b"tampered")
        print("FOUND writable", path)
    except OSError:
        pass
skip = ("/proc", "/sys", "/dev", "/usr")
for root, dirs, files in os.walk("/"):
    dirs[:] = [d for d in dirs if os.path.join(root, d) not in skip and d not in ("site-packages", "dist-packages")]
    if root.startswith(os.getcwd()):
        continue  # the student's own copy of the submission
    for name in files:
        if name.endswith(".ipynb") or name in ("gradebook.db", "nbgrader_config.py"):
            path = os.path.join(root, name)
            try:
                text = open(path, "rb").read()
            except OSError:
                continue
            print("FOUND by search", path, text[:200000])
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            print("process", pid, open(f"/proc/{{pid}}/cmdline", "rb").read()[:80])
        except OSError:
            pass

def attempt(what, action):
    try:
        action()
        print("NET-OK", what)
    except OSError as error:
        print("NET-BLOCKED", what, type(error).__name__)

attempt("host server", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=3))
attempt("internet", lambda: socket.create_connection(("1.1.1.1", 53), timeout=3))
attempt("name resolution", lambda: socket.getaddrinfo("pypi.org", 443))
"""

EDITOR = """
import json, os, sqlite3
course = {course!r}
master = course + "/source/tiny/tiny.ipynb"
try:
    with open(master) as handle:
        notebook = json.load(handle)
    for cell in notebook["cells"]:
        if cell["metadata"].get("nbgrader", {{}}).get("grade"):
            cell["source"] = "pass"
    with open(master, "w") as handle:
        json.dump(notebook, handle)
    print("EDITED the hidden tests")
except OSError as error:
    print("could not edit the tests:", type(error).__name__)
try:
    db = sqlite3.connect("file:" + course + "/gradebook.db?mode=rw", uri=True)
    db.execute("update grade set auto_score = 100")
    db.commit()
    print("EDITED the gradebook")
except Exception as error:
    print("could not edit the gradebook:", type(error).__name__)
try:
    os.remove(course + "/submitted/good/tiny/tiny.ipynb")
    print("DELETED another submission")
except OSError as error:
    print("could not delete:", type(error).__name__)
"""


def _edit_tests(notebook):
    """Replace every test by `pass`, claim 100 points, add a test of one's own."""
    import nbformat

    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution"):
            cell.source = "pass"
            meta["points"] = 100
    bonus = nbformat.v4.new_code_cell("pass")
    bonus.metadata["nbgrader"] = {"grade": True, "grade_id": "bonus", "locked": True, "points": 50,
                                  "schema_version": 3, "solution": False, "task": False}
    notebook.cells.append(bonus)


class HostServer:
    """A TCP server on the host's loopback that counts who reaches it."""

    def __init__(self):
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(8)
        self.socket.settimeout(0.5)
        self.port = self.socket.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                connection, _ = self.socket.accept()
            except OSError:
                continue
            self.connections += 1
            connection.close()

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self.socket.close()


@pytest.fixture(scope="module", params=["kernel", "fork"])
def attacked(tmp_path_factory, request):
    """One run per engine (`--engine`): every attack test holds on both."""
    course = template_course(tmp_path_factory).copy(tmp_path_factory.mktemp(f"attacks-{request.param}") / "course")
    proof = tmp_path_factory.mktemp("proof") / "PWNED"
    server = HostServer()
    root = str(course.root)
    course.submit("good", GOOD)
    course.submit("wrong", WRONG)
    course.submit("patch_libs", WRONG, extra_before={"square": [PATCH_LIBRARIES]})
    course.submit("forge_reply", WRONG, extra_after={"cube": [FORGE_REPLY]})
    course.submit("forge_pickle", WRONG, extra_after={"cube": [FORGE_PICKLE.format(proof=proof)]})
    course.submit("always_equal", {"square": ALWAYS_EQUAL, "cube": "# see above"})
    course.submit("snoop", GOOD, extra_before={"square": [SNOOP.format(
        course=root, repo_source=str(REPOSITORY / "source"), port=server.port)]})
    course.submit("editor", WRONG, extra_before={"square": [EDITOR.format(course=root)]})
    course.submit("edited_tests", WRONG, edit=_edit_tests)
    before = {name: tree_digest(course.root / name) for name in ("source", "submitted", "release")}
    try:
        run = course.grade("--workers", "2", "--engine", request.param)
        feedback = course.dlcourse("feedback", "tiny")
    finally:
        server.close()
    assert run.returncode == 0, run.stdout + run.stderr
    assert feedback.returncode == 0, feedback.stdout + feedback.stderr
    return {"course": course, "run": run, "proof": proof, "server": server, "before": before}


def test_honest_students_are_graded_as_usual(attacked):
    grades = attacked["course"].grades()
    assert grades["good"] == (MAX_SCORE, MAX_SCORE, "ok")
    assert grades["wrong"] == (0.0, MAX_SCORE, "ok")
    assert attacked["run"].seconds < 600, f"the run took {attacked['run'].seconds:.0f} s"


@pytest.mark.parametrize("student", ["patch_libs", "forge_reply", "forge_pickle", "always_equal", "editor",
                                     "edited_tests"])
def test_cheaters_gain_no_point(attacked, student):
    course = attacked["course"]
    score, max_score, status = course.grades()[student]
    assert score == 0.0, f"{student} gained {score} points: {course.cell_scores()[student]}"
    assert max_score == MAX_SCORE  # points claimed in the submission's metadata do not count
    assert status == "ok"
    assert set(course.cell_scores()[student]) == {"test_square", "test_cube", "why"}


def test_the_attacks_did_run(attacked):
    """Otherwise a zero would prove nothing."""
    assert not attacked["course"].missing_texts({"printed": [
        ("patch_libs", "patched"), ("forge_reply", "forged"), ("forge_pickle", "forged pickles"),
        ("editor", "could not edit the tests"),
    ]})


def test_a_forged_pickle_never_runs_in_the_grader(attacked):
    assert not attacked["proof"].exists()


def test_sandbox_sees_nothing_of_the_course(attacked):
    course = attacked["course"]
    assert course.grades()["snoop"] == (MAX_SCORE, MAX_SCORE, "ok")
    printed = course.graded_text("snoop")
    assert "no access to" in printed  # the probe ran
    assert "FOUND" not in printed, printed[:3000]
    assert HIDDEN_MARKER not in printed
    processes = [line for line in printed.splitlines() if line.startswith("process ")]
    assert processes  # its own kernel, at least
    assert not [line for line in processes if "pytest" in line or "spawn_main" in line], processes


def test_hidden_tests_never_reach_a_student(attacked):
    course = attacked["course"]
    assert HIDDEN_MARKER not in course.release_path.read_text()
    for student in ("snoop", "good", "wrong", "patch_libs"):
        html = course.feedback_html(student)
        assert "test_square" in html and "points" in html
        assert HIDDEN_MARKER not in html
        assert "manual_seed" not in html  # no line of the tests' code either


def test_no_network(attacked):
    printed = attacked["course"].graded_text("snoop")
    assert "NET-OK" not in printed
    assert printed.count("NET-BLOCKED") == 3, printed[-2000:]
    assert attacked["server"].connections == 0


def test_course_files_are_untouched(attacked):
    course = attacked["course"]
    for name, digest in attacked["before"].items():
        assert tree_digest(course.root / name) == digest, f"{name}/ changed during grading"
    assert "EDITED" not in course.graded_text("editor")
    assert "DELETED" not in course.graded_text("editor")


def test_gradebook_holds_the_graders_scores(attacked):
    course = attacked["course"]
    grades = course.grades()
    assert course.gradebook_scores() == {student: score for student, (score, _, _) in grades.items()}


def test_no_isolation_needs_the_flag_and_warns(tmp_path, template):
    course = template.copy(tmp_path / "course")
    course.submit("good", GOOD)
    run = course.grade("--no-isolation", "--workers", "1")
    assert run.returncode == 0, run.stderr
    assert "WITHOUT isolation" in run.stderr
    warning = (course.reports / "WARNINGS.txt").read_text()
    assert "WITHOUT isolation" in warning
    assert course.grades()["good"] == (MAX_SCORE, MAX_SCORE, "ok")
    # The same run isolated takes the warning away.
    shutil.rmtree(course.root / "autograded")
    assert course.grade("--workers", "1").returncode == 0
    assert not (course.reports / "WARNINGS.txt").exists()


def test_refuses_to_grade_without_bubblewrap(tmp_path, template):
    course = template.copy(tmp_path / "course")
    course.submit("good", GOOD)
    empty = tmp_path / "bin"
    empty.mkdir()
    run = course.grade("--workers", "1", env=dlcourse_env(PATH=str(empty)))
    assert run.returncode == 1  # refused, with the reason
    assert "bubblewrap" in run.stderr and "--no-isolation" in run.stderr
    assert not (course.root / "reports").exists()
    assert not (course.root / "autograded").exists()


@pytest.fixture
def template(tmp_path_factory):
    return template_course(tmp_path_factory)

