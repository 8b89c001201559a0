"""``dlcourse student-kit [DIR]``: the folder students are given, and nothing else.

    dlcourse student-kit                      # student-kit/ and student-kit.zip in the course root
    dlcourse student-kit ../dlcourse-kit --git  # also a git repository with one commit (a Classroom template)
    dlcourse student-kit ../dlcourse-kit --git --github course-org/dl-kit  # and Colab links to it on GitHub

The course repository holds every solution (``source/``), the mutation
suite's mistakes (``tests/mutants/``) and the gradebook, so it stays private;
students get this kit instead:

* ``release/``: regenerated from ``source/`` into the kit (``--no-regenerate``
  copies the committed ``release/``, whose currency the course's tests check);
* ``dlcourse/``: the students' side of the package only (:data:`STUDENT_MODULES`:
  hand-in, PDF, data sets, the test helpers the public checks use, the lab, and
  what they import), its ``dlcourse`` command being :mod:`dlcourse.student.cli`,
  and a ``STUDENT_KIT`` marker that turns the formgrader off
  (:func:`dlcourse.core.course.student_kit`);
* ``requirements.txt``: what the course needs as ranges it is checked with
  (:func:`student_requirements`; no single-platform package without an
  environment marker, so it installs on macOS, Windows and Linux), the same in
  ``pyproject.toml`` and ``environment.yml``; ``grader-constraints.txt``, the
  grader's ``requirements.lock``, as optional constraints for the grader's
  exact versions;
* a student ``nbgrader_config.py`` (the grader's time limit and stderr rule,
  so that Validate and the hand-in judge alike) and a ``README.md`` written for
  students (set-up per platform, download sizes, Colab, and a table of what was
  checked where). The texts are templates of ``dlcourse/authoring/templates/kit/``,
  rendered by :mod:`dlcourse.authoring.kit_texts`;
* each notebook starts with the Colab set-up cell (:mod:`dlcourse.student.colab`);
  ``--github OWNER/REPO`` writes the kit's repository into it and "Open in
  Colab" links into the README.

Before anything is written where it was asked, :func:`find_secrets` scans the
whole kit for every line that is secret in a master (solution regions, hidden
tests, mark schemes) or in ``tests/mutants/``; a kit with one is refused.
"""

from __future__ import annotations

import ast
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
import tokenize
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from ..core.course import CONFIG_NAME, STUDENT_KIT_MARKER, CourseLayout, read_config
from ..student.lab import STUDENT_DISABLED_PLUGINS
from .kit_texts import (CHECKS, DOWNLOADS, KIT_DISTRIBUTION, OLDEST_TORCH, OLDEST_TORCHVISION,  # noqa: F401
                        PACKAGE_DATA, REQUIRES_PYTHON, SINGLE_PLATFORM, TORCH_RANGE, TORCHVISION_RANGE, _environment,
                        _pyproject, _readme, colab_url, requirement_lines, student_requirements,
                        unmarked_single_platform)
from .release import add_colab_setup

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # dlcourse/

#: The students' side of dlcourse, as a rule over folders: these packages whole, plus the modules the
#: notebooks import. tests/unit/test_architecture.py checks that they import only each other (so the kit's
#: copy imports nothing it lacks) and never a grader-only module.
STUDENT_PACKAGES = ("dlcourse.core", "dlcourse.bridge", "dlcourse.student")
NOTEBOOK_MODULES = ("dlcourse.testing", "dlcourse.data", "dlcourse.budget", "dlcourse.checkpoint")


def _student_modules() -> frozenset[str]:
    found = set(NOTEBOOK_MODULES)
    for package in STUDENT_PACKAGES:
        folder = PACKAGE_DIR.joinpath(*package.split(".")[1:])
        found.update(f"{package}.{path.stem}" for path in folder.glob("*.py") if path.stem != "__init__")
    return frozenset(found)


#: Every module a kit ships (the packages' own ``__init__`` aside), computed from the folders.
STUDENT_MODULES = _student_modules()
#: Markers of what only a master holds (nbgrader's own spellings).
SECRET_BEGIN = re.compile(r"(?:###|===)\s*BEGIN (SOLUTION|HIDDEN TESTS|MARK SCHEME)")
SECRET_END = re.compile(r"(?:###|===)\s*END (SOLUTION|HIDDEN TESTS|MARK SCHEME)")
#: A secret line shorter than this (after whitespace is normalised) is not searched for: under 10
#: characters a line is a keyword or a bare name (``else:``, ``finally:``, ``answer_id``). Ten is low on
#: purpose: short lines do give answers away (``v1 = x ** 2`` of A1's trace, 11; ``answer_wu = "C"``,
#: a reading question's key, 15; ``t.grad += out.grad``, 17), so a larger cut-off would miss them.
SECRET_MIN_CHARS = 10
#: Lines of these shapes are not searched for either, whatever their length: an answer lies in an
#: expression, an assignment or a literal, and these have none. Each shape is a line the kit must hold
#: and a master's solution or the mutation suite also has: an import (``from __future__ import
#: annotations`` starts every module of the package and of the suite), ``return NAME`` / ``pass`` /
#: ``raise`` (``return grad``, ``return found``), a bare name (an answer's grade id, ``two_layer_net``,
#: which the kit's notebooks carry in their metadata), and one name called with names (``out.append(line)``,
#: ``f.backward()``, ``visit(root)``: which method to call is what the text says).
IMPORT_LINE = re.compile(r"(from\s+\S+\s+)?import\s")
TRIVIAL_LINE = re.compile(r"(return|yield|raise|pass|break|continue|else|finally|try)?\s*[\w.]*:?"
                          r"|[\w.]+\((\s*[\w.]+\s*(,\s*[\w.]+\s*)*)?\)")


class KitRefused(Exception):
    """The kit cannot be written; the message says why."""


@dataclass
class Kit:
    path: Path
    assignments: list[str]
    files: list[Path]
    zip_path: Path | None = None
    git: bool = False
    regenerated: bool = True
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"wrote the student kit {self.path} ({len(self.files)} files): "
                 f"{len(self.assignments)} assignments ({', '.join(self.assignments)}), "
                 f"release/ {'regenerated from source/' if self.regenerated else 'copied as committed'}; "
                 "no line of a solution, hidden test, mark scheme or mutant in it"]
        if self.zip_path:
            lines.append(f"wrote {self.zip_path}")
        if self.git:
            lines.append(f"{self.path} is a git repository with one commit (push it as the Classroom template)")
        return "\n".join(lines + self.notes)


# --------------------------------------------------------------------------
# What students get.


def student_files() -> list[str]:
    """The package's files a kit holds, relative to the package: the student modules, their packages, data."""
    files = set(PACKAGE_DATA)
    for module in STUDENT_MODULES:
        parts = module.split(".")[1:]
        path = Path(*parts).with_suffix(".py")
        if not (PACKAGE_DIR / path).is_file():
            path = Path(*parts, "__init__.py")
        files.add(str(path))
        for depth in range(len(parts)):  # the packages above it: dlcourse/__init__.py, dlcourse/bridge/__init__.py
            files.add(str(Path(*parts[:depth], "__init__.py")))
    return sorted(files)


def _write_package(target: Path) -> None:
    for name in student_files():
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PACKAGE_DIR / name, destination)
    (target / "__main__.py").write_text(
        "import sys\n\nfrom .student.cli import main\n\nsys.exit(main())\n")
    (target / STUDENT_KIT_MARKER).write_text(
        "This copy of dlcourse is a student kit's (written by `dlcourse student-kit`): "
        "`dlcourse lab` starts without the formgrader.\n")
    page_config = target / "jupyter_config" / "labconfig" / "page_config.json"
    config = json.loads(page_config.read_text())
    config.setdefault("disabledExtensions", {}).update({plugin: True for plugin in STUDENT_DISABLED_PLUGINS})
    page_config.write_text(json.dumps(config, indent=2) + "\n")


def _write_release(layout: CourseLayout, target: Path, regenerate: bool) -> list[str]:
    from ..exam import exam_assignments
    from .release import generate_release

    exams = set(exam_assignments(layout))  # an exam is handed out at its sitting, never in the kit
    assignments = [name for name in layout.assignments() if name not in exams]
    if not assignments:
        raise KitRefused(f"{layout.root} has no assignments in source/ (a kit is written from a course)")
    ignore = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.pyc", ".*")
    if not regenerate:
        missing = [name for name in assignments if not (layout.release / name).is_dir()]
        if missing:
            raise KitRefused(f"release/ has no {', '.join(missing)}: run `dlcourse release` or leave out "
                             "--no-regenerate")
        for name in assignments:
            shutil.copytree(layout.release / name, target / name, ignore=ignore)
        return assignments
    with tempfile.TemporaryDirectory(prefix="dlcourse-kit-release-") as scratch:
        for name in assignments:
            fresh = generate_release(layout, name, release_dir=Path(scratch) / "release",
                                     db_url=f"sqlite:///{Path(scratch) / 'gradebook.db'}")
            shutil.copytree(fresh, target / name, ignore=ignore)
    return assignments


def _grader_constraints(layout: CourseLayout) -> str:
    """``grader-constraints.txt``: the grader's exact versions, for ``pip install -c`` (optional)."""
    lock = layout.root / "requirements.lock"
    if not lock.is_file():
        raise KitRefused(f"{lock} is missing: the kit offers the grader's exact versions as constraints")
    return ("# The exact versions the grader runs (its requirements.lock), as optional constraints:\n"
            "#   pip install -r requirements.txt -c grader-constraints.txt -e .\n"
            "# Linux x86-64 only (some of these exist for no other platform); elsewhere use requirements.txt.\n"
            + lock.read_text())


def _nbgrader_config(layout: CourseLayout) -> str:
    """The student's nbgrader_config.py: the grader's rules for running a notebook, nothing of its folders."""
    config = read_config(layout.root / CONFIG_NAME)
    wanted = [("CourseDirectory", "course_id"), ("Execute", "timeout"), ("IgnorePattern", "enabled"),
              ("IgnorePattern", "pattern")]
    lines = [f"c.{section}.{name} = {config[section][name]!r}" for section, name in wanted
             if section in config and name in config[section]]
    return ('"""nbgrader\'s settings for your notebooks: the same time limit per cell and the same rule for\n'
            "warnings as the grader's, so that the Validate button and `dlcourse handin` judge as grading does.\n"
            '"""\n\nc = get_config()  # noqa: F821 - provided by traitlets when nbgrader loads this file\n\n'
            + "\n".join(lines) + "\n")


def _datasets_by_assignment(release: Path) -> dict[str, list[str]]:
    """Which data sets each released notebook loads (from its code: mnist_* / cifar10_* of dlcourse.data)."""
    found: dict[str, list[str]] = {}
    for notebook in sorted(release.glob("*/*.ipynb")):
        text = "\n".join(c.source for c in nbformat.read(str(notebook), as_version=4).cells if c.cell_type == "code")
        for dataset, pattern in (("MNIST", r"\b(mnist_tensors|load_mnist)\b"),
                                 ("CIFAR-10", r"\b(cifar10_tensors|load_cifar10)\b")):
            if re.search(pattern, text):
                found.setdefault(dataset, []).append(notebook.stem)
    return found


_GITIGNORE = ".venv/\n__pycache__/\n*.pyc\n.ipynb_checkpoints/\n*.egg-info/\ndata/\nhandin/\n"


# --------------------------------------------------------------------------
# Secrets.


def _normalise(line: str) -> str:
    return " ".join(line.split())


def _regions(source: str) -> tuple[list[str], list[str]]:
    """A cell's lines inside secret regions, and outside them."""
    secret, public, inside = [], [], False
    for line in source.splitlines():
        if SECRET_BEGIN.search(line):
            inside = True
        elif SECRET_END.search(line):
            inside = False
        else:
            (secret if inside else public).append(_normalise(line))
    return secret, public


def _mutant_lines(path: Path) -> list[str]:
    """Every line of code of a mutants file: its physical lines and the lines of its strings (the edits).

    Comments and docstrings are not code; the strings are, for they hold the edited solutions
    (``("self.dW = self.x.T @ dupstream", ...)``).
    """
    text = path.read_text()
    tree = ast.parse(text)
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                docstrings.update(range(first.lineno, first.end_lineno + 1))
    comments = {token.start[0] for token in tokenize.generate_tokens(io.StringIO(text).readline)
                if token.type == tokenize.COMMENT}
    lines = []
    for number, line in enumerate(text.splitlines(), start=1):
        if number in docstrings:
            continue
        code = line.split("#", 1)[0] if number in comments else line
        lines.append(_normalise(code))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.lineno not in docstrings:
            lines += [_normalise(part) for part in node.value.splitlines()]
    return lines


def secret_lines(root: Path) -> dict[str, str]:
    """Every line a student must not see -> where it comes from (``source/a1/a1.ipynb``, ``tests/mutants/a3.py``).

    The masters' solution regions (code and written answers' rubrics), hidden tests and mark schemes,
    and every line of code of ``tests/mutants/aN.py``; less the lines that any master shows outside its
    secret regions, or a part of such a line (students see those anyway), imports, and lines shorter
    than :data:`SECRET_MIN_CHARS`.
    """
    root = Path(root)
    secret: dict[str, str] = {}
    public: set[str] = set()
    for master in sorted((root / "source").glob("*/*.ipynb")):
        where = str(master.relative_to(root))
        for cell in nbformat.read(str(master), as_version=4).cells:
            hidden, shown = _regions(cell.source)
            public.update(shown)
            for line in hidden:
                secret.setdefault(line, where)
    for path in sorted((root / "tests" / "mutants").glob("a*.py")):  # the mutants (aN.py), not the suite's tests
        for line in _mutant_lines(path):
            secret.setdefault(line, str(path.relative_to(root)))
    shown = "\n".join(public)
    return {line: where for line, where in secret.items()
            if len(line) >= SECRET_MIN_CHARS and not IMPORT_LINE.match(line) and not TRIVIAL_LINE.fullmatch(line)
            and line not in shown}


def kit_lines(path: Path) -> list[str]:
    """Every line of text a kit file holds: a notebook's cell sources, outputs and metadata; any other file's lines."""
    data = path.read_bytes()
    if path.suffix == ".ipynb":
        texts = []

        def walk(value):
            if isinstance(value, str):
                texts.append(value)
            elif isinstance(value, list):
                if value and all(isinstance(v, str) for v in value):
                    texts.append("".join(value))  # a notebook's multi-line strings are lists of lines
                else:
                    for item in value:
                        walk(item)
            elif isinstance(value, dict):
                for item in value.values():
                    walk(item)

        walk(json.loads(data))
        text = "\n".join(texts)
    else:
        text = data.decode("utf-8", errors="replace")
    return [_normalise(line) for line in text.splitlines()]


def find_secrets(kit: Path, secrets: dict[str, str]) -> list[str]:
    """``file: line (from where)`` for each secret line that stands in a file of ``kit``, as a whole line or
    inside a longer one; and each secret region's marker."""
    found = []
    kit = Path(kit)
    for path in sorted(p for p in kit.rglob("*") if p.is_file() and ".git" not in p.relative_to(kit).parts):
        name = path.relative_to(kit)
        lines = kit_lines(path)
        text, whole = "\n".join(lines), set(lines)
        if SECRET_BEGIN.search(text) or SECRET_END.search(text):
            found.append(f"{name}: a solution, hidden-test or mark-scheme marker")
        for line in whole & secrets.keys():
            found.append(f"{name}: {line!r} (from {secrets[line]})")
        for secret, where in secrets.items():
            if secret in text and secret not in whole:
                found.append(f"{name}: {secret!r} inside a line (from {where})")
    return found


# --------------------------------------------------------------------------
# Writing it.


def default_dir(layout: CourseLayout) -> Path:
    return layout.root / "student-kit"


def _check_target(layout: CourseLayout, target: Path) -> None:
    if target == layout.root or layout.root.is_relative_to(target):
        raise KitRefused(f"{target} holds the course itself; name a new folder for the kit")
    for private in (layout.source, layout.submitted, layout.autograded, layout.feedback, layout.reports):
        if target.is_relative_to(private):
            raise KitRefused(f"{target} is inside {private}; name a folder outside the course's own folders")
    if target.exists() and any(target.iterdir()) and not (target / "dlcourse" / STUDENT_KIT_MARKER).is_file():
        raise KitRefused(f"{target} exists and is not a student kit; name a new or empty folder")


def _zip(folder: Path) -> Path:
    zip_path = folder.with_name(folder.name + ".zip")
    part = zip_path.with_name(zip_path.name + ".part")
    with zipfile.ZipFile(part, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and ".git" not in p.relative_to(folder).parts):
            bundle.write(path, f"{folder.name}/{path.relative_to(folder).as_posix()}")
    os.replace(part, zip_path)
    return zip_path


def _git_commit(folder: Path) -> None:
    def git(*args):
        subprocess.run(["git", "-c", "user.name=dlcourse student-kit", "-c", "user.email=student-kit@dlcourse.invalid",
                        "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", *args],
                       cwd=folder, check=True, capture_output=True, text=True)

    if shutil.which("git") is None:
        raise KitRefused("--git needs git, which is not installed")
    git("init", "-q")
    git("add", "-A")
    git("commit", "-q", "-m", "The course's student kit (dlcourse student-kit)")


def check_github(repository: str) -> str:
    """``OWNER/REPO`` as GitHub spells repositories, or :class:`KitRefused` saying how to write it."""
    if repository and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}", repository):
        raise KitRefused(f"--github {repository!r}: write it as OWNER/REPO, e.g. course-org/dl-kit")
    return repository


def build_kit(layout: CourseLayout, target: Path | None = None, *, regenerate: bool = True, git: bool = False,
              zip: bool = True, github: str = "") -> Kit:
    """Writes the student kit to ``target`` (default ``student-kit/`` in the course root); see the module's text.

    ``github`` (``OWNER/REPO``, where the kit will be pushed) goes into each notebook's Colab set-up cell
    (the repository it clones) and the README's "Open in Colab" links.

    The kit is made in a scratch folder beside ``target`` and scanned for secrets first; ``target`` is
    replaced only when the scan finds none (and only if it is missing, empty, or an earlier kit).
    """
    target = Path(target).resolve() if target else default_dir(layout)
    _check_target(layout, target)
    check_github(github)
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        kit = scratch / target.name
        kit.mkdir()
        assignments = _write_release(layout, kit / "release", regenerate)
        for name in assignments:
            add_colab_setup(layout, kit / "release" / name, github)
        _write_package(kit / "dlcourse")
        (kit / "requirements.txt").write_text(student_requirements())
        (kit / "grader-constraints.txt").write_text(_grader_constraints(layout))
        (kit / "environment.yml").write_text(_environment())
        (kit / "pyproject.toml").write_text(_pyproject(layout))
        (kit / "nbgrader_config.py").write_text(_nbgrader_config(layout))
        (kit / "README.md").write_text(_readme(kit / "release", assignments, _datasets_by_assignment(kit / "release"),
                                               github))
        (kit / ".gitignore").write_text(_GITIGNORE)
        leaks = find_secrets(kit, secret_lines(layout.root))
        if leaks:
            raise KitRefused("the kit would give students secret lines, so it was not written:\n  "
                             + "\n  ".join(leaks[:20]))
        if target.exists():
            shutil.rmtree(target)
        os.replace(kit, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if git:
        _git_commit(target)
    files = sorted(p for p in target.rglob("*") if p.is_file() and ".git" not in p.relative_to(target).parts)
    return Kit(target, assignments, files, zip_path=_zip(target) if zip else None, git=git, regenerated=regenerate)
