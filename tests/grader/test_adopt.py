"""``dlcourse adopt PATH``: an nbgrader course generated here (assignments, config, a gradebook of students).

Each test runs the command line (its parser and command, in this process; one test the real
``python -m dlcourse``) on a fresh course (the repository's nbgrader_config.py and nothing else) and a
generated other course with random students.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from plain_course import HIDDEN_MARKER, master_cells
from tiny_course import REPOSITORY, dlcourse_env, python

THEIR_CONFIG = '''c = get_config()
c.CourseDirectory.root = {root!r}
c.CourseDirectory.course_id = "stats101"
c.Execute.timeout = 45
c.LimitOutput.max_lines = 500
c.ClearSolutions.text_stub = "WRITE YOUR ANSWER HERE"
c.Exchange.root = "/srv/nbgrader/exchange"
'''
FIRST = ["Ada", "Émilie", "Alan", "Grace", "Sofía", "Kurt", "Zoë", "Mary"]
LAST = ["Lovelace", "du Châtelet", "Turing", "Hopper", "Kovalevskaya", "Gödel", "Ng", "Somerville"]


def digest(root: Path, skip=()) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name not in skip}


@pytest.fixture(autouse=True)
def tools_on_path(monkeypatch):
    from dlcourse.core.nbgrader import with_tools_on_path

    monkeypatch.setenv("PATH", with_tools_on_path(os.environ)["PATH"])  # nbgrader runs alembic by name


@pytest.fixture(scope="module")
def empty_gradebook(tmp_path_factory) -> Path:
    """An empty nbgrader gradebook, made once: creating one runs alembic (seconds); copies are instant."""
    from nbgrader.api import Gradebook

    from dlcourse.core.nbgrader import with_tools_on_path

    path = tmp_path_factory.mktemp("gradebook") / "gradebook.db"
    saved = os.environ["PATH"]
    os.environ["PATH"] = with_tools_on_path(os.environ)["PATH"]
    try:
        with Gradebook(f"sqlite:///{path}"):
            pass
    finally:
        os.environ["PATH"] = saved
    return path


def their_course(root: Path, seed: int, gradebook: Path) -> list[dict]:
    """An nbgrader course at ``root``: two assignments (one with a data file), a config, random students."""
    from nbgrader.api import Gradebook

    from dlcourse.authoring import code, md, write_notebook

    rng = random.Random(seed)
    root.mkdir(parents=True)
    (root / "nbgrader_config.py").write_text(THEIR_CONFIG.format(root=str(root)))
    write_notebook(root / "source" / "ps1" / "problem1.ipynb", master_cells())
    (root / "source" / "ps1" / "data.csv").write_text("x,y\n" + "".join(f"{rng.random()},{rng.random()}\n"
                                                                        for _ in range(rng.randint(1, 20))))
    write_notebook(root / "source" / "ps1" / ".ipynb_checkpoints" / "problem1-checkpoint.ipynb", [md("old")])
    write_notebook(root / "source" / "ps2" / "problem2.ipynb", [md("# PS2"), code("x = 1", grade_id="setup")])
    students = []
    for number in rng.sample(range(1000), rng.randint(2, 7)):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        students.append({"id": f"s{number:03d}", "first_name": first, "last_name": last,
                         "email": rng.choice([f"{first[0].lower()}{number}@uni.example", None]),
                         "lms_user_id": rng.choice([str(rng.randint(10**5, 10**6)), None])})
    shutil.copyfile(gradebook, root / "gradebook.db")
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        for student in students:
            gradebook.add_student(student["id"], **{k: v for k, v in student.items() if k != "id"})
        gradebook.add_assignment("ps1")
    return students


def fresh_course(root: Path, gradebook: Path | None = None) -> Path:
    """The repository's nbgrader_config.py, and ``gradebook`` (an empty one) if given."""
    root.mkdir(parents=True)
    shutil.copyfile(REPOSITORY / "nbgrader_config.py", root / "nbgrader_config.py")
    if gradebook is not None:
        shutil.copyfile(gradebook, root / "gradebook.db")
    return root


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def adopt(capsys):
    """``dlcourse --course COURSE adopt THEIRS ARGS...`` through the command line's own parser, in this process."""
    from dlcourse import cli

    def run(course: Path, theirs: Path, *args: str) -> Run:
        capsys.readouterr()
        code = cli.main(["--course", str(course), "adopt", str(theirs), *args])
        out, err = capsys.readouterr()
        return Run(code, out, err)
    return run


def our_students(course: Path) -> list[dict]:
    from nbgrader.api import Gradebook

    if not (course / "gradebook.db").exists():
        return []
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        return sorted(({"id": s.id, "first_name": s.first_name, "last_name": s.last_name, "email": s.email,
                        "lms_user_id": s.lms_user_id} for s in gradebook.students), key=lambda s: s["id"])


def config_of(course: Path):
    from dlcourse.authoring.adopt import load_config

    return load_config(course / "nbgrader_config.py")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_adopt_copies_assignments_config_and_students_into_a_fresh_course_and_leaves_theirs_alone(adopt, empty_gradebook, tmp_path, seed):
    theirs = tmp_path / "theirs"
    students = their_course(theirs, seed, empty_gradebook)
    before = digest(theirs)
    course = fresh_course(tmp_path / "ours", gradebook=None if seed == 0 else empty_gradebook)  # 0: adopt makes one
    run = adopt(course, theirs)
    assert run.returncode == 0, run.stdout + run.stderr
    assert digest(theirs) == before, "dlcourse adopt changed the other course"
    for assignment in ("ps1", "ps2"):
        assert digest(course / "source" / assignment) == {
            k: v for k, v in digest(theirs / "source" / assignment).items() if ".ipynb_checkpoints" not in k}
    assert (course / "nbgrader_config.adopted.py").read_bytes() == (theirs / "nbgrader_config.py").read_bytes()
    config = config_of(course)
    assert config.LimitOutput.max_lines == 500  # theirs, which ours did not set
    assert config.Execute.timeout == 120 and config.ClearSolutions.text_stub == "YOUR ANSWER HERE"  # ours kept
    assert config.CourseDirectory.root == str(course) and config.CourseDirectory.course_id == "dlcourse"
    assert "Exchange" not in config or "root" not in config.Exchange
    assert our_students(course) == sorted(students, key=lambda s: s["id"])
    for text in ("Execute.timeout", "ClearSolutions.text_stub", "LimitOutput.max_lines", "Exchange.root",
                 *(s["id"] for s in students)):
        assert text in run.stdout, f"the report does not mention {text}:\n{run.stdout}"


def test_adopting_the_same_course_again_changes_nothing_and_says_so(adopt, empty_gradebook, tmp_path):
    theirs = tmp_path / "theirs"
    students = their_course(theirs, 3, empty_gradebook)
    course = fresh_course(tmp_path / "ours", empty_gradebook)
    assert adopt(course, theirs).returncode == 0
    after_first = digest(course, skip=("gradebook.db",))
    again = adopt(course, theirs)
    assert again.returncode == 0, again.stdout + again.stderr
    assert digest(course, skip=("gradebook.db",)) == after_first
    assert our_students(course) == sorted(students, key=lambda s: s["id"])
    assert "\ncopied:" not in again.stdout and "\nchanged:" not in again.stdout, again.stdout
    assert all(f"student {s['id']}" in again.stdout for s in students), again.stdout


def test_a_taken_assignment_name_refuses_everything_unless_renamed(adopt, empty_gradebook, tmp_path):
    from dlcourse.authoring import md, write_notebook

    theirs = tmp_path / "theirs"
    students = their_course(theirs, 4, empty_gradebook)
    course = fresh_course(tmp_path / "ours", empty_gradebook)
    write_notebook(course / "source" / "ps1" / "ps1.ipynb", [md("# our own ps1")])
    before = digest(course)
    refused = adopt(course, theirs)
    assert refused.returncode == 1
    assert "ps1" in refused.stderr and "--rename" in refused.stderr, refused.stderr
    assert digest(course) == before and our_students(course) == [], "a refused adoption wrote something"

    renamed = adopt(course, theirs, "--rename")
    assert renamed.returncode == 0, renamed.stdout + renamed.stderr
    assert digest(course / "source" / "ps1") == {k: v for k, v in before.items() if k.startswith("source/ps1/")} \
        or digest(course / "source" / "ps1") == {"ps1.ipynb": before["source/ps1/ps1.ipynb"]}
    assert (course / "source" / "ps1_adopted" / "problem1.ipynb").read_bytes() == \
        (theirs / "source" / "ps1" / "problem1.ipynb").read_bytes()
    assert (course / "source" / "ps2" / "problem2.ipynb").exists()
    assert our_students(course) == sorted(students, key=lambda s: s["id"])
    assert "ps1_adopted" in renamed.stdout
    again = adopt(course, theirs, "--rename")
    assert again.returncode == 0 and "\ncopied:" not in again.stdout, again.stdout + again.stderr
    assert not (course / "source" / "ps1_adopted2").exists()


def test_a_student_already_here_with_other_details_keeps_ours_and_is_reported(adopt, empty_gradebook, tmp_path):
    from nbgrader.api import Gradebook

    theirs = tmp_path / "theirs"
    students = their_course(theirs, 5, empty_gradebook)
    course = fresh_course(tmp_path / "ours", empty_gradebook)
    mine = {"id": students[0]["id"], "first_name": "Someone", "last_name": "Else", "email": "else@here.example",
            "lms_user_id": None}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        gradebook.add_student(mine["id"], **{k: v for k, v in mine.items() if k != "id"})
    run = adopt(course, theirs)
    assert run.returncode == 0, run.stdout + run.stderr
    assert our_students(course) == sorted([mine, *students[1:]], key=lambda s: s["id"])
    conflicts = run.stdout.split("conflicts (ours kept):", 1)[-1]
    assert f"student {mine['id']}" in conflicts and "else@here.example" in conflicts, run.stdout


def test_a_dry_run_reports_and_writes_nothing(adopt, empty_gradebook, tmp_path):
    theirs = tmp_path / "theirs"
    students = their_course(theirs, 6, empty_gradebook)
    course = fresh_course(tmp_path / "ours", empty_gradebook)
    before = digest(course)
    run = adopt(course, theirs, "--dry-run")
    assert run.returncode == 0, run.stdout + run.stderr
    assert digest(course) == before
    assert "dry run" in run.stdout and "assignment ps1" in run.stdout and students[0]["id"] in run.stdout


def test_the_command_refuses_a_folder_that_is_no_nbgrader_course_with_exit_code_1(tmp_path):
    course = fresh_course(tmp_path / "ours")
    (tmp_path / "empty").mkdir()
    run = subprocess.run([python(), "-m", "dlcourse", "--course", str(course), "adopt", str(tmp_path / "empty")],
                         cwd=course, env=dlcourse_env(), capture_output=True, text=True, timeout=300)
    assert run.returncode == 1 and "not an nbgrader course" in run.stderr, run.stderr


@pytest.mark.slow
def test_an_adopted_assignment_releases_with_the_merged_config(adopt, empty_gradebook, tmp_path):
    theirs = tmp_path / "theirs"
    their_course(theirs, 7, empty_gradebook)
    course = fresh_course(tmp_path / "ours", empty_gradebook)
    assert adopt(course, theirs).returncode == 0
    release = subprocess.run([python(), "-m", "dlcourse", "--course", str(course), "release", "ps1"], cwd=course,
                             env=dlcourse_env(), capture_output=True, text=True, timeout=300)
    assert release.returncode == 0, release.stdout + release.stderr
    text = (course / "release" / "ps1" / "problem1.ipynb").read_text()
    assert "def squares(n)" in text and HIDDEN_MARKER not in text and "BEGIN SOLUTION" not in text
