"""The fork engine grades as the Jupyter-kernel engine does, and keeps students apart.

One set of varied submissions (solutions, blanks, wrong answers, a near-miss
mutant, a library-patching cheat, a broken and a mangled notebook, an error,
an exit, an endless loop, a figure, magics) is graded with ``--engine kernel``
and with ``--engine fork``; every cell's points and every status agree. Then
four hostile students are graded at once on the fork engine (2 workers), each
leaving files for the others everywhere it can write and searching for the
others' files and submissions everywhere it can read: none finds anything. And values that only the
torch.save form of a reply carries (``b""``, ints of thousands of digits) reach the tests on both engines.
"""

from __future__ import annotations

import random

import pytest

from tiny_course import GOOD_CUBE, GOOD_SQUARE, MAX_SCORE, WRONG_CUBE, WRONG_SQUARE, template_course

GOOD = {"square": GOOD_SQUARE, "cube": GOOD_CUBE}
WRONG = {"square": WRONG_SQUARE, "cube": WRONG_CUBE}
ENGINE_PROBE = "import os\nprint('engine probe: pid', os.getpid())"
FIGURE = ("%matplotlib inline\nimport matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()\n"
          "%time total = sum(range(10))\ntotal")


def _near_misses(rng: random.Random) -> dict[str, dict[str, str]]:
    """Answers a little off the reference, drawn at random: each engine must fail them alike."""
    offset = rng.choice(["1e-3", "1e-2", "0.5"])
    power = rng.choice(["2.0001", "2.01"])
    return {
        "offset": {"square": f"def square(x):\n    return x * x + {offset}", "cube": GOOD_CUBE},
        "power": {"square": f"def square(x):\n    return abs(x) ** {power}", "cube": GOOD_CUBE},
        "half": {"square": GOOD_SQUARE,
                 "cube": "def cube(x):\n    return x ** 3 if not hasattr(x, 'shape') else x * x"},
    }


def _submit_varied(course, rng: random.Random) -> None:
    course.submit("good", GOOD, extra_before={"square": [ENGINE_PROBE]})
    course.submit("blank")
    course.submit("wrong", WRONG)
    for name, answers in _near_misses(rng).items():
        course.submit(f"mutant_{name}", answers)
    course.submit("figure", GOOD, extra_after={"cube": [FIGURE]})
    course.submit("patch_libs", WRONG, extra_before={"square": [
        "import torch\ntorch.allclose = lambda *a, **k: True\ntorch.Tensor.__eq__ = lambda s, o: True"]})
    course.submit("error_midway", GOOD, extra_after={"square": ["undefined_name + 1"]})
    course.submit("exits", GOOD, extra_after={"square": ["import os\nos._exit(3)"]})
    course.submit("endless", GOOD, extra_after={"square": ["while True:\n    pass"]})
    course.submit("broken", raw=b"{ not a notebook")
    course.submit("renamed", GOOD, name="Tiny (1).ipynb")


@pytest.fixture(scope="module")
def both_engines(tmp_path_factory):
    template = template_course(tmp_path_factory)
    seed = random.randrange(2**32)
    graded = {}
    for engine in ("kernel", "fork"):
        course = template.copy(tmp_path_factory.mktemp(engine) / "course")
        _submit_varied(course, random.Random(seed))
        run = course.grade("--workers", "2", "--engine", engine)
        assert run.returncode == 0, run.stdout + run.stderr
        graded[engine] = course
    return graded, seed


def test_each_engine_really_ran(both_engines):
    """The fork engine's student process is PID 1 of its own namespace; the kernel's is not."""
    graded, _ = both_engines
    assert "engine probe: pid 1\n" in graded["fork"].graded_text("good")
    kernel_text = graded["kernel"].graded_text("good")
    assert "engine probe: pid" in kernel_text and "engine probe: pid 1\n" not in kernel_text


def test_both_engines_give_every_student_the_same_grade_and_status(both_engines):
    graded, seed = both_engines
    kernel, fork = graded["kernel"].grades(), graded["fork"].grades()
    assert kernel == fork, f"seed {seed}: {kernel} != {fork}"
    assert kernel["good"] == (MAX_SCORE, MAX_SCORE, "ok")  # the comparison is of real grades
    assert {status for _, _, status in kernel.values()} >= {"ok", "timeout", "crashed", "invalid-notebook", "renamed"}


def test_both_engines_give_every_cell_the_same_points(both_engines):
    graded, seed = both_engines
    assert graded["kernel"].cell_scores() == graded["fork"].cell_scores(), f"seed {seed}"


def test_both_engines_keep_figures_results_and_errors_in_the_graded_notebook(both_engines):
    graded, _ = both_engines
    for engine, course in graded.items():
        outputs = [o for cell in course.graded_notebook("figure").cells for o in cell.get("outputs", [])]
        kinds = {o.output_type for o in outputs}
        assert {"display_data", "execute_result"} <= kinds, (engine, kinds)
        assert any("image/png" in o.get("data", {}) for o in outputs), engine
        assert any(o.get("data", {}).get("text/plain") == "45" for o in outputs), engine
        errors = [o for cell in course.graded_notebook("error_midway").cells for o in cell.get("outputs", [])
                  if o.output_type == "error"]
        assert any(o.ename == "NameError" for o in errors), engine


# --------------------------------------------------------------------------
# Hostile neighbours.

HOSTILE = """
import os, secrets, time
token = secrets.token_hex(6)
wrote = []
for folder in (".", "/tmp", "/dev/shm", "/run", os.path.expanduser("~"), "/home/student", "/dev", "/var/tmp"):
    try:
        with open(os.path.join(folder, "LEFT-BY-" + token), "w") as handle:
            handle.write(token)
        wrote.append(folder)
    except OSError:
        pass
print("wrote in", sorted(set(wrote)))
own = open([n for n in os.listdir(".") if n.startswith("secret-")][0]).read()
print("own secret", own)

def search():
    found = []
    skip = ("/proc", "/sys", "/usr")
    for root, dirs, files in os.walk("/"):
        dirs[:] = [d for d in dirs if os.path.join(root, d) not in skip and d not in ("site-packages", "dist-packages")]
        for name in files:
            if (name.startswith("LEFT-BY-") and name != "LEFT-BY-" + token) or \\
                    (name.startswith("secret-") and os.path.abspath(root) != os.getcwd()):
                found.append(os.path.join(root, name))
    me = os.readlink("/proc/self")  # this process as /proc numbers it
    for pid in os.listdir("/proc"):
        if pid.isdigit() and pid != me:
            for link in ("root", "cwd"):
                try:
                    found += [f"/proc/{pid}/{link}/{n}" for n in os.listdir(f"/proc/{pid}/{link}")
                              if n.startswith(("secret-", "LEFT-BY-"))]
                except OSError:
                    pass
            try:
                with open(f"/proc/{pid}/environ", "rb") as handle:
                    found.append(f"/proc/{pid}/environ {handle.read()[:40]!r}")
            except OSError:
                pass
    return found

found = []
deadline = time.monotonic() + 6
while time.monotonic() < deadline:
    found += search()
    time.sleep(0.5)
print("FOUND" if found else "found nothing", sorted(set(found))[:20])
"""


@pytest.fixture(scope="module")
def neighbours(tmp_path_factory):
    course = template_course(tmp_path_factory).copy(tmp_path_factory.mktemp("neighbours") / "course")
    students = ["ann", "ben", "cat", "dan"]
    for student in students:
        course.submit(student, GOOD, extra_before={"square": [HOSTILE]},
                      files={f"secret-{student}.txt": f"SECRET-OF-{student}".encode()})
    run = course.grade("--workers", "2", "--engine", "fork")
    assert run.returncode == 0, run.stdout + run.stderr
    return course, students


def test_hostile_neighbours_graded_at_once_find_nothing_of_each_other(neighbours):
    course, students = neighbours
    for student in students:
        printed = course.graded_text(student)
        assert "found nothing" in printed, printed[-3000:]  # the search ran to its end
        assert "FOUND" not in printed, printed[-3000:]
        for other in students:
            if other != student:
                assert f"SECRET-OF-{other}" not in printed


def test_hostile_neighbours_could_write_only_where_nobody_else_looks(neighbours):
    course, students = neighbours
    for student in students:
        printed = course.graded_text(student)
        assert f"own secret SECRET-OF-{student}" in printed  # its own files are there
        assert "wrote in" in printed and "'/tmp'" in printed  # it could leave files, so finding none means something
        assert course.grades()[student] == (MAX_SCORE, MAX_SCORE, "ok")


# --------------------------------------------------------------------------
# Values that only the torch.save form of a reply carries.

ODD_VALUES_ANSWER = """
import math
import torch

def odd_values(n):
    ### BEGIN SOLUTION
    return {"empty": b"", "text": "hé".encode(), "factorial": math.factorial(n), "negative": -(2 ** (8 * n)),
            "pair": (b"", torch.arange(3))}
    ### END SOLUTION
"""
ODD_VALUES_TESTS = """
import math
import torch
from dlcourse.testing import student
n = {n}
values = student.odd_values(n)
assert values["empty"] == b"" and values["text"] == "hé".encode()
assert values["factorial"] == math.factorial(n) and values["negative"] == -(2 ** (8 * n))
assert values["pair"][0] == b"" and torch.equal(values["pair"][1], torch.arange(3))
assert student.odd_values(n)["empty"] == b""  # one value alone, as a test asks for it
"""


HUGE_ANSWER = """
import torch

def huge():
    ### BEGIN SOLUTION
    return torch.zeros(17_000_000)  # 68 MB
    ### END SOLUTION
"""
HUGE_TESTS = """
from dlcourse.testing import StudentCodeError, student
try:
    student.huge()
except StudentCodeError as error:
    message = str(error)
    assert "larger than 64 MiB; check its shape" in message and "your code raised" not in message, message
else:
    raise AssertionError("a reply of 68 MB came through")
"""


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["kernel", "fork"])
def test_empty_bytes_and_huge_ints_reach_the_tests_and_an_oversized_reply_is_refused_on_both_engines(
        engine, tmp_path):
    """A student's b'' or factorial(1700) once came back as an unreadable reply and cost the points; a reply
    over the limit is refused with a message that says so (and not that the student's code raised it)."""
    import shutil

    from dlcourse.authoring import answer, tests, write_notebook
    from dlcourse.grading import GradingOptions, grade_notebook

    n = random.randrange(1_700, 3_000)  # beyond JSON's 4,300 digits and pickle's 255-byte LONG1
    cells = [answer("odd_values", ODD_VALUES_ANSWER), tests("test_odd_values", 1, ODD_VALUES_TESTS.format(n=n)),
             answer("huge", HUGE_ANSWER), tests("test_huge", 1, HUGE_TESTS)]
    master = write_notebook(tmp_path / "source" / "odd.ipynb", cells)
    submission = tmp_path / "submitted" / "odd.ipynb"
    submission.parent.mkdir()
    shutil.copy(master, submission)  # the master's solutions as the student's
    result = grade_notebook(master, submission, GradingOptions(engine=engine, cell_timeout=60))
    assert (result.status, result.score, result.max_score) == ("ok", 2.0, 2.0), \
        (n, [(c.grade_id, c.message) for c in result.cells])
