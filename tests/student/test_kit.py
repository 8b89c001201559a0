"""``dlcourse student-kit``: what students are given holds what they need and no secret, and works alone.

The kit of this course is built once (``--no-regenerate``: the committed release, whose currency
tests/grader/test_pipeline.py checks) and installed once into a fresh virtual environment; regeneration,
``--git``, the zip and the refusal of a kit with a secret are checked on the tiny course.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import nbformat
import pytest

from dlcourse import cli
from dlcourse.authoring import kit as kit_lib
from dlcourse.core.course import STUDENT_KIT_MARKER, CourseLayout
from dlcourse.authoring.demo import filled_notebook
from dlcourse.student import colab, handin as handin_lib
from dlcourse.student.handin import NAMES_VARIABLE
from dlcourse.core.notebook import is_test_cell

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "grader"))
from tiny_course import ASSIGNMENT as TINY, HIDDEN_MARKER, NOTEBOOK as TINY_NOTEBOOK, template_course  # noqa: E402

NAMES = "Ada Lovelace, Alan Turing"
A1 = "a1_autodiff"
KIT_TOP_LEVEL = {".gitignore", "README.md", "dlcourse", "environment.yml", "grader-constraints.txt",
                 "nbgrader_config.py", "pyproject.toml", "release", "requirements.txt"}


def kit_files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and ".git" not in p.relative_to(folder).parts)


@pytest.fixture(scope="module")
def kit(tmp_path_factory) -> Path:
    built = kit_lib.build_kit(CourseLayout(ROOT), tmp_path_factory.mktemp("kit") / "dlcourse-kit", regenerate=False)
    return built.path


@pytest.fixture(scope="module")
def secrets() -> dict[str, str]:
    return kit_lib.secret_lines(ROOT)


# --------------------------------------------------------------------------
# What the kit holds.


def test_the_kit_holds_the_release_the_students_modules_and_its_own_files_and_nothing_else(kit):
    assert {p.name for p in kit.iterdir()} == KIT_TOP_LEVEL
    released = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "release").rglob("*")
                      if p.is_file() and ".ipynb_checkpoints" not in p.parts and p.suffix in (".ipynb", ".png"))
    assert sorted(p for p in kit_files(kit) if p.startswith("release/")) == released
    package = {p.removeprefix("dlcourse/") for p in kit_files(kit) if p.startswith("dlcourse/")}
    assert package == set(kit_lib.student_files()) | {"__main__.py", STUDENT_KIT_MARKER}
    for grader_only in ("grading/__init__.py", "cli.py", "release.py", "gradebook.py", "collect.py", "report.py",
                        "similarity.py", "export.py", "feedback.py", "isolation.py", "kit.py", "authoring.py"):
        assert grader_only not in package
    assert "from .student.cli import main" in (kit / "dlcourse" / "__main__.py").read_text()


def test_the_kit_offers_what_the_grader_runs_as_constraints_and_its_requirements_agree_with_environment_yml(kit):
    """requirements.txt is the course's ranges (tests/student/test_kit_requirements.py); the grader's exact
    pins, once requirements.txt itself, are grader-constraints.txt."""
    import yaml

    lock = [line.strip() for line in (ROOT / "requirements.lock").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    constraints = [line.strip() for line in (kit / "grader-constraints.txt").read_text().splitlines()
                   if line.strip() and not line.startswith("#")]
    assert constraints == lock
    requirements = [line.strip() for line in (kit / "requirements.txt").read_text().splitlines()
                    if line.strip() and not line.startswith("#")]
    assert requirements == kit_lib.requirement_lines(kit_lib.student_requirements())
    environment = yaml.safe_load((kit / "environment.yml").read_text())
    pip = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    assert pip == requirements + ["-e ."]
    pyproject = (kit / "pyproject.toml").read_text()
    assert 'dlcourse = "dlcourse.student.cli:main"' in pyproject and STUDENT_KIT_MARKER in pyproject


def test_the_student_readme_gives_set_up_lab_data_and_hand_in_with_the_names_cell_first(kit):
    readme = (kit / "README.md").read_text()
    assert "pip install -r requirements.txt -e ." in readme and "dlcourse lab" in readme
    assert "dlcourse data" in readme and "DLCOURSE_DATA" in readme and "MNIST/raw" in readme
    names_rule = readme.index(f'{NAMES_VARIABLE} = ""')
    assert names_rule < readme.index("dlcourse handin a1_autodiff --names")
    assert "refuses while a names cell is empty" in readme
    for folder in (ROOT / "release").iterdir():
        assert f"release/{folder.name}/" in readme
    for private in ("source/", "tests/", "gradebook", "formgrader", "autograded", "mutant"):
        assert private not in readme, private


def test_the_student_readme_covers_each_platform_colab_sizes_and_what_was_checked(kit):
    readme = (kit / "README.md").read_text()
    for needle in (r".venv\Scripts\pip install -r requirements.txt -e .", "Intel", "use Google Colab",
                   "--index-url https://download.pytorch.org/whl/cpu", "grader-constraints.txt",
                   "PYTORCH_ENABLE_MPS_FALLBACK=1", "DLCOURSE_DEVICE=cpu", f"exit code {handin_lib.EXIT_NO_PDF}",
                   "PDF made by the grader", "## What was checked, where, and how"):
        assert needle in readme, needle
    for row in kit_lib.DOWNLOADS:
        assert f"| {row['platform']} | {row['size']} |" in readme
    for row in kit_lib.CHECKS:
        assert f"| {row['platform']} | {row['what']} | {row['how']} |" in readme
    assert "{{" not in readme and "{%" not in readme
    assert "colab.research.google.com" not in readme  # no --github: no links, and the README says how instead
    assert "Upload notebook" in readme


def test_the_secrets_come_from_every_master_and_every_mutants_file(secrets):
    origins = set(secrets.values())
    for master in (ROOT / "source").glob("*/*.ipynb"):
        assert master.relative_to(ROOT).as_posix() in origins, master
    for mutants in (ROOT / "tests" / "mutants").glob("a*.py"):
        assert mutants.relative_to(ROOT).as_posix() in origins, mutants
    # the issue's example: an edit of A3's solution that lives in tests/mutants/a3.py only
    assert "self.dW = self.x.T @ dupstream" in secrets
    assert all(len(line) >= kit_lib.SECRET_MIN_CHARS for line in secrets)


def test_no_line_that_is_secret_in_a_master_or_the_mutants_is_anywhere_in_the_kit_or_its_zip(kit, secrets, tmp_path):
    assert not kit_lib.find_secrets(kit, secrets)
    zip_path = kit.with_name(kit.name + ".zip")
    with zipfile.ZipFile(zip_path) as bundle:
        names = sorted(bundle.namelist())
        bundle.extractall(tmp_path)
    assert names == [f"{kit.name}/{name}" for name in kit_files(kit)]
    assert not kit_lib.find_secrets(tmp_path / kit.name, secrets)


@pytest.mark.parametrize("seed", range(4))
def test_a_secret_line_planted_in_any_file_of_the_kit_is_found(kit, secrets, tmp_path, seed):
    rng = random.Random(seed)
    copy = tmp_path / "kit"
    shutil.copytree(kit, copy)
    line, origin = rng.choice(sorted(secrets.items()))
    target = copy / rng.choice(kit_files(copy))
    if target.suffix == ".ipynb":
        notebook = nbformat.read(str(target), as_version=4)
        cell = rng.choice(notebook.cells)
        lines = cell.source.splitlines() or [""]
        at = rng.randrange(len(lines) + 1)
        inside = rng.random() < 0.5  # inside a longer line, or a line of its own
        planted = f"x = 1  # {line}" if inside else "    " + line
        cell.source = "\n".join(lines[:at] + [planted] + lines[at:])
        nbformat.write(notebook, str(target))
    else:
        target.write_text(target.read_text(errors="replace") + f"\n{line}\n")
    found = kit_lib.find_secrets(copy, secrets)
    assert any(f.startswith(target.relative_to(copy).as_posix() + ":") and repr(line) in f for f in found), \
        (line, origin, target, found)


# --------------------------------------------------------------------------
# Building it: regenerated release, --git, the zip, refusals (on the tiny course).


@pytest.fixture
def tiny(tmp_path, tmp_path_factory):
    """A copy of the tiny course (built and released once per session), with the files a kit pins."""
    course = template_course(tmp_path_factory).copy(tmp_path / "course")
    for name in ("requirements.lock", "pyproject.toml"):
        shutil.copy(ROOT / name, course.root / name)
    return course


def test_a_kit_regenerates_its_release_from_source_and_can_be_a_git_repository_with_one_commit(tiny, tmp_path,
                                                                                              capsys):
    master_path = tiny.root / "source" / TINY / TINY_NOTEBOOK
    master = nbformat.read(str(master_path), as_version=4)
    news = f"Edited after the release {random.Random().randrange(10**9)}."
    master.cells[0].source += "\n\n" + news
    nbformat.write(master, str(master_path))
    committed = (tiny.root / "release" / TINY / TINY_NOTEBOOK).read_bytes()
    target = tmp_path / "out" / "tiny-kit"

    assert cli.main(["--course", str(tiny.root), "student-kit", str(target), "--git",
                     "--github", "course-org/tiny-kit"]) == 0
    assert "wrote the student kit" in capsys.readouterr().out
    released = nbformat.read(str(target / "release" / TINY / TINY_NOTEBOOK), as_version=4)
    assert colab.is_setup_cell(released.cells[0]) and "https://github.com/course-org/tiny-kit" in released.cells[0].source
    assert news in released.cells[1].source  # regenerated from source/, not the stale release/ (after Colab's cell)
    assert (kit_lib.colab_url("course-org/tiny-kit", f"release/{TINY}/{TINY_NOTEBOOK}")
            in (target / "README.md").read_text())
    assert (tiny.root / "release" / TINY / TINY_NOTEBOOK).read_bytes() == committed  # the course's is untouched
    assert not kit_lib.find_secrets(target, kit_lib.secret_lines(tiny.root))
    assert all(HIDDEN_MARKER not in (target / name).read_text(errors="replace") for name in kit_files(target))

    def git(*args):
        return subprocess.run(["git", "-C", str(target), *args], capture_output=True, text=True, check=True).stdout

    assert len(git("log", "--format=%H").split()) == 1
    assert git("status", "--porcelain") == ""
    assert sorted(git("ls-files").split()) == kit_files(target)
    with zipfile.ZipFile(target.with_name("tiny-kit.zip")) as bundle:
        assert sorted(bundle.namelist()) == [f"tiny-kit/{name}" for name in kit_files(target)]

    # a second run replaces the earlier kit
    assert cli.main(["--course", str(tiny.root), "student-kit", str(target), "--no-zip", "--no-regenerate"]) == 0
    assert not (target / ".git").exists() and (target / "release" / TINY / TINY_NOTEBOOK).read_bytes() == committed


def test_a_kit_that_would_hold_a_solution_line_is_refused_and_not_written(tiny, tmp_path, capsys):
    # an instructor's helper file left in source/tiny, which nbgrader copied into the release
    (tiny.root / "release" / TINY / "notes.py").write_text("def cube(x):\n    return x * x * x\n")
    target = tmp_path / "tiny-kit"
    assert cli.main(["--course", str(tiny.root), "student-kit", str(target), "--no-regenerate"]) == 1
    error = capsys.readouterr().err
    assert "notes.py: 'return x * x * x'" in error
    assert not target.exists() and not target.with_name("tiny-kit.zip").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tiny-kit")]  # no scratch left behind


def test_a_kit_is_never_written_over_a_folder_that_is_not_a_kit(tiny, tmp_path, capsys):
    other = tmp_path / "thesis"
    other.mkdir()
    (other / "chapter1.tex").write_text("precious")
    assert cli.main(["--course", str(tiny.root), "student-kit", str(other)]) == 1
    assert "is not a student kit" in capsys.readouterr().err
    assert (other / "chapter1.tex").read_text() == "precious"
    assert cli.main(["--course", str(tiny.root), "student-kit", str(tiny.root / "source" / "kit")]) == 1


# --------------------------------------------------------------------------
# `dlcourse data`: the students' way to fetch the data sets ahead.


def test_dlcourse_data_says_ready_for_data_sets_that_are_there(course_data, capsys):
    from dlcourse.student import cli as studentcli

    assert studentcli.main(["data"]) == 0
    out = capsys.readouterr().out
    assert str(course_data) in out and "mnist: ready" in out and "cifar10: ready" in out


def test_dlcourse_data_offline_says_which_files_to_put_where_and_exits_1(monkeypatch, tmp_path, capsys):
    import urllib.error
    import urllib.request

    from dlcourse.student import cli as studentcli

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("no network in this test")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setenv("DLCOURSE_DATA", str(tmp_path / "empty"))
    assert studentcli.main(["data", "mnist"]) == 1
    error = capsys.readouterr().err
    assert str(tmp_path / "empty" / "MNIST" / "raw") in error and "train-images-idx3-ubyte" in error
    with pytest.raises(SystemExit) as usage:
        studentcli.main(["data", "imagenet"])
    assert usage.value.code == 2 and "there is no data set 'imagenet'" in capsys.readouterr().err


# --------------------------------------------------------------------------
# The kit alone: a fresh virtual environment, the lab, the public checks, the hand-in.


def _venv_env(venv: Path) -> dict[str, str]:
    """The environment of a student's shell: the venv first, nothing of the course repository."""
    course_only = ("PYTHONPATH", "DLCOURSE_ROOT", "DLCOURSE_DATA", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONSTARTUP")
    env = {k: v for k, v in os.environ.items() if k not in course_only}
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", "")])
    env["VIRTUAL_ENV"] = str(venv)
    # The venv borrows this machine's installed packages (below), and so also their data files: nbconvert's
    # templates and nbgrader's lab extension, which a real venv holds in its own share/jupyter.
    env["JUPYTER_PATH"] = str(Path(sys.prefix) / "share" / "jupyter")
    return env


@pytest.fixture(scope="module")
def student(kit, tmp_path_factory):
    """A student's copy of the kit, installed (editable, as its README says) into a fresh venv."""
    home = tmp_path_factory.mktemp("student")
    copy = home / "dlcourse-kit"
    shutil.copytree(kit, copy)
    venv = home / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()"
                                "['purelib'])"], capture_output=True, text=True, check=True).stdout.strip())
    # No network here: the venv sees this machine's packages (torch, nbgrader, pip, setuptools ...) through a
    # plain path line, which adds the folder but runs none of its .pth files, so the course repository's
    # editable install of dlcourse (a .pth hook there) stays out. The name sorts after pip's own .pth files.
    (site / "zz-borrowed-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = _venv_env(venv)
    install = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--no-deps", "--no-index",
                              "--no-build-isolation", "-e", str(copy)], cwd=home, env=env, capture_output=True,
                             text=True, timeout=300)
    assert install.returncode == 0, install.stdout + install.stderr
    return dict(kit=copy, venv=venv, env=env, home=home)


def _run(student, *args, cwd=None, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), cwd=cwd or student["kit"], env=student["env"], capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.slow
def test_dlcourse_in_the_kits_venv_is_the_kits_copy_without_the_grader(student):
    probe = textwrap.dedent("""
        import importlib.util, json, dlcourse, dlcourse.core.course, dlcourse.data
        print(json.dumps({"file": dlcourse.__file__, "kit": dlcourse.core.course.student_kit(),
                          "data": str(dlcourse.data.data_root()),
                          "grader": [m for m in ("dlcourse.grading", "dlcourse.cli", "dlcourse.kit", "dlcourse.authoring")
                                     if importlib.util.find_spec(m)]}))
    """)
    for cwd in (student["home"], student["kit"] / "release" / A1):
        process = _run(student, str(student["venv"] / "bin" / "python"), "-c", probe, cwd=cwd)
        assert process.returncode == 0, process.stderr
        found = json.loads(process.stdout)
        assert Path(found["file"]) == student["kit"] / "dlcourse" / "__init__.py"
        assert found["kit"] is True and found["grader"] == []
        assert Path(found["data"]) == student["kit"] / "data"  # not the course repository's data/
    help_text = _run(student, str(student["venv"] / "bin" / "dlcourse"), "--help").stdout
    listed = set(re.findall(r"^ {4}(\S+) {2,}\S", help_text, re.M))  # argparse's list of sub-commands
    assert listed == {"handin", "lab", "data"}, help_text


@pytest.mark.slow
def test_the_kits_lab_starts_without_formgrader_course_or_masters(student):
    assert _run(student, str(student["venv"] / "bin" / "dlcourse"), "lab", "--check").returncode == 0
    script = textwrap.dedent("""
        import json, sys, urllib.error, urllib.request
        from pathlib import Path
        from jupyterlab_server.config import get_page_config
        from dlcourse import lab
        kit = Path(sys.argv[1])
        command = lab.lab_command(kit)
        server = lab.LabServer(kit, log_path=kit.parent / "lab.log")
        def status(path):
            try:
                with urllib.request.urlopen(f"{server.url}{path}?token={server.token}", timeout=30) as reply:
                    return reply.status
            except urllib.error.HTTPError as error:
                return error.code
        try:
            server.wait_ready(timeout=120)
            statuses = {path: status(path) for path in ("/api/status", "/lab", "/formgrader")}
        finally:
            server.stop()
        import os
        os.environ["JUPYTER_CONFIG_PATH"] = lab.lab_env(kit)["JUPYTER_CONFIG_PATH"]
        disabled = get_page_config([], str(kit.parent / "no-settings")).get("disabledExtensions", [])
        print(json.dumps({"command": command, "statuses": statuses, "disabled": disabled}))
    """)
    process = _run(student, str(student["venv"] / "bin" / "python"), "-c", script, str(student["kit"]))
    assert process.returncode == 0, process.stderr[-3000:]
    found = json.loads(process.stdout.strip().splitlines()[-1])
    assert "--ServerApp.jpserver_extensions=nbgrader.server_extensions.formgrader=False" in found["command"]
    assert "--ServerApp.jpserver_extensions=nbgrader.server_extensions.validate_assignment=True" in found["command"]
    assert found["statuses"] == {"/api/status": 200, "/lab": 200, "/formgrader": 404}
    disabled = found["disabled"] if isinstance(found["disabled"], list) else \
        [k for k, v in found["disabled"].items() if v]
    assert "@jupyter/nbgrader:formgrader" in disabled and "@jupyter/nbgrader:create-assignment" in disabled


def _with_names(notebook, names: str):
    for cell in notebook.cells:
        if cell.cell_type == "code" and f'\n{NAMES_VARIABLE} = ""' in "\n" + cell.source:
            cell.source = cell.source.replace(f'{NAMES_VARIABLE} = ""', f"{NAMES_VARIABLE} = {names!r}")
            return notebook
    raise AssertionError("no names cell")


@pytest.mark.slow
def test_handin_from_the_kit_wants_the_names_then_runs_the_public_checks_in_the_kits_dlcourse(student):
    folder = student["kit"] / "release" / A1
    notebook_path = folder / f"{A1}.ipynb"
    dlcourse = str(student["venv"] / "bin" / "dlcourse")

    # as released: the names cell is empty, so the hand-in is refused and says what to do
    refused = _run(student, dlcourse, "handin", A1, "--names", NAMES, "--no-tests", "--no-pdf")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "names cell" in refused.stderr and "is empty" in refused.stderr

    # names filled, nothing solved: the public checks run and fail, the hand-in still goes ahead
    blank = _with_names(nbformat.read(str(notebook_path), as_version=4), NAMES)
    test_cells = sum(1 for c in blank.cells if is_test_cell(c) and c.cell_type == "code")
    nbformat.write(blank, str(notebook_path))
    unsolved = _run(student, dlcourse, "handin", A1, "--no-pdf")
    assert unsolved.returncode == 0, unsolved.stdout + unsolved.stderr
    assert f"of {test_cells} test cells FAIL" in unsolved.stdout

    # solved with the master's solutions: every public check passes, in a kernel that imports the kit's dlcourse
    solved = _with_names(filled_notebook(ROOT / "source" / A1 / f"{A1}.ipynb", ROOT / "release" / A1 / f"{A1}.ipynb"),
                         NAMES)
    record = student["home"] / "kernel-dlcourse.txt"
    solved.cells.insert(1, nbformat.v4.new_code_cell(
        f"import dlcourse\nopen({str(record)!r}, 'w').write(dlcourse.__file__)"))
    nbformat.write(solved, str(notebook_path))
    handed = _run(student, dlcourse, "handin", A1)
    assert handed.returncode == 0, handed.stdout + handed.stderr
    assert f"all {test_cells} test cells pass" in handed.stdout, handed.stdout
    assert Path(record.read_text()) == student["kit"] / "dlcourse" / "__init__.py"
    zip_path = student["kit"] / "handin" / f"{A1}_Ada-Lovelace_Alan-Turing.zip"
    with zipfile.ZipFile(zip_path) as bundle:
        names = set(bundle.namelist())
        stem = f"{A1}_Ada-Lovelace_Alan-Turing"
        assert {f"{stem}/{A1}.ipynb", f"{stem}/{A1}.pdf", f"{stem}/HANDIN.txt"} == names
        assert bundle.read(f"{stem}/{A1}.ipynb") == notebook_path.read_bytes()
        assert bundle.read(f"{stem}/{A1}.pdf").startswith(b"%PDF")
