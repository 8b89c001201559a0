"""AUTOTEST and HASHED AUTOTEST test cells, graded as stock nbgrader expands them.

nbgrader's ``generate_assignment`` replaces each ``### AUTOTEST expr`` (and
``### HASHED AUTOTEST expr``) line of a test cell with asserts whose expected
values come from running the master's own cells in a kernel
(:class:`nbgrader.preprocessors.InstantiateTests`: the ``autotests.yml`` of the
assignment's folder, else of the course's root; the salt of a hashed test
derived from the cell's source and index). Stock ``autograde`` then runs those
expanded cells, hidden parts included, as the gradebook recorded them.

:func:`expanded_tests` runs that same preprocessor on the master (never on a
submission), so the grader's test cells are the very asserts stock nbgrader
would run; they then run in the grader's process like any plain test cell
(:mod:`.plain`). The expansion runs the instructor's master in a kernel on
this machine (as ``generate_assignment`` does) and is cached by a digest of
the master, the ``autotests.yml`` used, the course's ``InstantiateTests``
settings and nbgrader's version, in the machine's cache
(:func:`dlcourse.core.config.cache_dir`), so it costs one kernel per master and
machine. The release is untouched: ``dlcourse release`` runs stock
``generate_assignment``.

:func:`kernel_cells` lists the plain test cells that run in the student's
kernel as the cells are graded (expanded), for ``WARNINGS.txt``; besides
:func:`dlcourse.core.testcode.kernel_reason`'s reasons, a cell that imports
a module of the assignment's folder (:func:`folder_import_reason`) runs there.

:func:`lay_out_supporting_files` copies the assignment's other files over the
student's copies before a notebook runs, as stock ``autograde`` does
(``c.Autograde.exclude_overwriting``, ``c.CourseDirectory.ignore``).
"""

from __future__ import annotations

import ast
import contextlib
import copy
import fnmatch
import hashlib
import json
import logging
import os
import shutil
from importlib import metadata
from pathlib import Path

from ..core.course import CONFIG_NAME, read_config
from ..core.notebook import (
    atomic_write,
    grade_id,
    is_test_cell,
    read_notebook,
    strip_magics,
)

log = logging.getLogger(__name__)

#: nbgrader's default delimiter (``c.InstantiateTests.autotest_delimiter``).
DELIMITER = "AUTOTEST"
_CACHE_VERSION = "1"


class AutotestError(Exception):
    """The master's AUTOTEST cells could not be expanded; the message says why and what to do."""


def has_autotests(notebook, delimiter: str = DELIMITER) -> bool:
    """Whether a code cell of ``notebook`` holds the AUTOTEST delimiter (nbgrader's own test, ``in source``)."""
    return any(cell.cell_type == "code" and delimiter in cell.source for cell in notebook.cells)


def _course_root(master_path: Path) -> Path:
    """``source/<assignment>/<nb>.ipynb`` -> the course's root (where stock runs ``generate_assignment``)."""
    return Path(master_path).resolve().parent.parent.parent


def _settings(root: Path):
    """The course's ``c.InstantiateTests`` settings (a traitlets Config; empty when there are none)."""
    from traitlets.config import Config

    try:
        config = read_config(root / CONFIG_NAME)
    except Exception:  # noqa: BLE001 - a broken config is nbgrader's to report; its defaults apply here
        return Config()
    return Config({"InstantiateTests": config["InstantiateTests"]}) if "InstantiateTests" in config else Config()


def _templates_file(master_path: Path, root: Path, filename: str) -> Path | None:
    """The ``autotests.yml`` stock reads: the assignment's folder first, then the course's root."""
    for folder in (Path(master_path).resolve().parent, root):
        if (folder / filename).is_file():
            return folder / filename
    return None


def course_templates(master_dir: Path) -> bytes:
    """The course root's ``autotests.yml`` (empty when there is none): part of every fingerprint of graded
    results, since it decides the expansion but lies outside ``source/<assignment>/`` (whose own copy the
    fingerprints already read)."""
    path = _course_root(Path(master_dir) / "x.ipynb") / "autotests.yml"
    return path.read_bytes() if path.is_file() else b""


def _digest(master_path: Path, templates: Path | None, settings) -> str:
    digest = hashlib.sha256(_CACHE_VERSION.encode())
    digest.update(Path(master_path).read_bytes())
    digest.update(templates.read_bytes() if templates else b"(no autotests.yml)")
    digest.update(json.dumps(settings, sort_keys=True, default=repr).encode())
    digest.update(metadata.version("nbgrader").encode())
    return digest.hexdigest()


def expanded_tests(master_path: Path) -> dict[str, str]:
    """grade_id -> the expanded source of each test cell of ``master_path`` that holds AUTOTEST directives.

    Empty when the master has none. Raises :class:`AutotestError` when nbgrader's expansion fails (no
    ``autotests.yml``, a master cell that raises, an AUTOTEST outside a test cell).
    """
    master_path = Path(master_path)
    master = read_notebook(master_path)
    root = _course_root(master_path)
    settings = _settings(root)
    delimiter = settings.get("InstantiateTests", {}).get("autotest_delimiter", DELIMITER)
    if not has_autotests(master, delimiter):
        return {}
    filename = settings.get("InstantiateTests", {}).get("autotest_filename", "autotests.yml")
    templates = _templates_file(master_path, root, filename)
    if templates is None:
        raise AutotestError(f"{master_path.name} has AUTOTEST cells but there is no {filename} in "
                            f"{master_path.parent} or in the course's root {root}; add the one your nbgrader "
                            "course used (nbgrader's documentation has an example)")
    from ..core.config import cache_dir

    cache = cache_dir() / "autotest" / f"{_digest(master_path, templates, settings)}.json"
    try:
        return json.loads(cache.read_text())
    except (OSError, ValueError):
        pass
    expanded = _expand(master, master_path, root, settings)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(cache, json.dumps(expanded))
    except OSError:  # a read-only cache: expanded again next time
        log.warning("could not cache the AUTOTEST expansion of %s in %s", master_path, cache)
    return expanded


def _expand(master, master_path: Path, root: Path, settings) -> dict[str, str]:
    """Run nbgrader's InstantiateTests on a copy of the master, as ``generate_assignment`` runs it."""
    from nbgrader.preprocessors import InstantiateTests

    notebook = copy.deepcopy(master)
    preprocessor = InstantiateTests(config=settings)
    resources = {"metadata": {"path": str(master_path.parent.resolve())}}
    log.info("expanding the AUTOTEST cells of %s (nbgrader's InstantiateTests, a kernel on the master)",
             master_path)
    try:
        with _working_directory(root):  # stock's fallback autotests.yml is read relative to the course's root
            notebook, _ = preprocessor.preprocess(notebook, resources)
    except Exception as error:
        detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        raise AutotestError(f"nbgrader could not expand the AUTOTEST cells of {master_path.name} ({detail}); "
                            f"run `nbgrader generate_assignment {master_path.parent.name}` to see nbgrader's own "
                            "log, fix the master and grade again") from error
    return {grade_id(cell): cell.source for cell, original in zip(notebook.cells, master.cells)
            if is_test_cell(cell) and grade_id(cell) and cell.source != original.source}


@contextlib.contextmanager
def _working_directory(folder: Path):
    previous = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


def expanded_sources(master_path: Path) -> dict[str, str]:
    """Like :func:`expanded_tests`, but ``{}`` when the expansion fails (for listings, never for grading)."""
    try:
        return expanded_tests(master_path)
    except AutotestError as error:
        log.warning("%s", error)
        return {}


def kernel_cells(notebook_paths) -> list[tuple[str, str, str]]:
    """(notebook, grade_id, reason) of every plain test cell that runs in the kernel, AUTOTEST cells expanded
    (and a cell that imports a module of the assignment's folder, :func:`folder_import_reason`)."""
    from ..core.testcode import is_plain, kernel_reason

    found = []
    for path in sorted(Path(p) for p in notebook_paths):
        expanded = expanded_sources(path)
        for cell in read_notebook(path).cells:
            source = expanded.get(grade_id(cell), cell.source)
            if cell.cell_type == "code" and is_test_cell(cell) and is_plain(source):
                reason = kernel_reason(source) or folder_import_reason(source, path.parent)
                if reason:
                    found.append((path.stem, grade_id(cell), reason))
    return found


def folder_import_reason(source: str, master_folder: Path | None) -> str | None:
    """Why a plain cell must run in the kernel: it imports a module of the assignment's folder (``source/``'s
    ``helper.py``), which stock imports from the notebook's folder and the grader's process never imports (the
    student's copy may stand there). Only the master's folder decides: a student's file cannot send a test to
    their kernel."""
    if master_folder is None:
        return None
    try:
        tree = ast.parse(strip_magics(source))
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        modules = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
        for module in modules:
            top = module.split(".")[0]
            if (Path(master_folder) / f"{top}.py").is_file() or (Path(master_folder) / top).is_dir():
                return f"imports {top}, a module of the assignment's folder"
    return None


# --------------------------------------------------------------------------
# The supporting files of source/<assignment>/, laid out as stock's autograde lays them out.

#: nbgrader's default ``c.CourseDirectory.ignore``: never copied from ``source/``.
STOCK_IGNORE = (".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback")


def supporting_files(master_dir: Path) -> list[Path]:
    """The files of ``source/<assignment>/`` that stock autograde copies over the student's: every file but
    the notebooks, nbgrader's ignored names (``c.CourseDirectory.ignore``) and the assignment's
    ``c.Autograde.exclude_overwriting``."""
    master_dir = Path(master_dir)
    ignore, excluded = _overwrite_settings(master_dir.parent.parent, master_dir.name)
    found = []
    for path in sorted(master_dir.rglob("*")):
        relative = path.relative_to(master_dir)
        if path.is_symlink() or not path.is_file() or path.suffix == ".ipynb" or str(relative) in excluded:
            continue
        if any(fnmatch.fnmatch(part, pattern) for part in relative.parts for pattern in ignore):
            continue
        found.append(path)
    return found


def _overwrite_settings(root: Path, assignment: str) -> tuple[tuple[str, ...], set[str]]:
    from ..core.course import CONFIG_NAME, read_config

    try:
        config = read_config(root / CONFIG_NAME)
    except Exception:  # noqa: BLE001 - a broken config is nbgrader's to report; its defaults apply
        return STOCK_IGNORE, set()
    ignore = tuple(config.get("CourseDirectory", {}).get("ignore", STOCK_IGNORE))
    excluded = config.get("Autograde", {}).get("exclude_overwriting", {}).get(assignment, [])
    return ignore, {str(Path(name)) for name in excluded}


def lay_out_supporting_files(master_dir: Path, workdir: Path) -> None:
    """Copy the assignment's supporting files (:func:`supporting_files`) over the student's copies in
    ``workdir``, as stock ``nbgrader autograde`` does before it runs the notebooks."""
    master_dir = Path(master_dir)
    for path in supporting_files(master_dir):
        target = Path(workdir) / path.relative_to(master_dir)
        if target.is_symlink() or target.exists():
            target.unlink() if not target.is_dir() or target.is_symlink() else shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        log.debug("supporting file %s laid out in %s", path.name, workdir)
