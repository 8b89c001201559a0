"""``make oldest-torch``: every release notebook's public checks and ``dlcourse handin``, under this Python's torch.

Run by the second environment's Python (``.venv-oldest-torch/bin/python``, built by ``make
oldest-torch-env``); the grader's own torch runs the same through the test suite (tests/student/test_kit.py
for A1, tests/grader/test_pipeline.py for every master). For each notebook of ``release/``, in a copy of
its assignment folder:

* the blank release notebook (names filled in): ``dlcourse handin`` goes ahead and its public checks FAIL,
  each failure named with its test cell and a message;
* the release notebook with the master's solutions: every public check passes.

The data sets are the test suite's offline stand-ins (Fashion-MNIST as MNIST, a small CIFAR-10) unless
``DLCOURSE_DATA`` names a folder. Lean on purpose: the public checks only (never the hidden tests), no PDF, in grading mode (nbgrader's
validation shrinks the training as grading does). Prints one line per notebook and the time; exit 1 when
any notebook does not behave.
"""

from __future__ import annotations

import concurrent.futures
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dlcourse.authoring.demo import filled_notebook  # noqa: E402
from dlcourse.core.notebook import is_test_cell  # noqa: E402

NAMES = "Ada Lovelace, Alan Turing"
DLCOURSE = [sys.executable, "-m", "dlcourse.student.cli"]


def _with_names(notebook, names: str):
    """The notebook with its names cell (a line ``NAMES = ""``) filled in."""
    for cell in notebook.cells:
        if cell.cell_type == "code" and '\nNAMES = ""' in "\n" + cell.source:
            cell.source = cell.source.replace('NAMES = ""', f"NAMES = {names!r}", 1)
            return notebook
    raise ValueError("no names cell")


def _handin(course: Path, assignment: str) -> subprocess.CompletedProcess:
    return subprocess.run([*DLCOURSE, "handin", assignment, "--no-pdf", "--course-root", str(course)],
                          cwd=course, capture_output=True, text=True, timeout=1800)


def check_notebook(release: Path) -> tuple[bool, str]:
    """(ok, one line) for one release notebook: blank fails clearly, the reference passes."""
    assignment, started = release.parent.name, time.perf_counter()
    master = ROOT / "source" / assignment / release.name
    with tempfile.TemporaryDirectory(prefix="public-checks-") as scratch:
        course = Path(scratch) / "course"
        folder = course / "release" / assignment
        shutil.copytree(release.parent, folder)
        shutil.copy(ROOT / "nbgrader_config.py", course)
        others = [p for p in folder.glob("*.ipynb") if p.name != release.name]
        for other in others:  # the hand-in reads every notebook of the folder: the others as solved
            nbformat.write(_with_names(filled_notebook(ROOT / "source" / assignment / other.name, other), NAMES),
                           str(other))
        blank = _with_names(nbformat.read(str(release), as_version=4), NAMES)
        tests = sum(1 for cell in blank.cells if is_test_cell(cell) and cell.cell_type == "code")
        nbformat.write(blank, str(folder / release.name))
        unsolved = _handin(course, assignment)
        failures = re.findall(rf"^\s*FAILED (\S+): (\w+): (.+)$", unsolved.stdout, re.M)
        blank_ok = (unsolved.returncode == 0 and f"of {tests} test cells FAIL" in unsolved.stdout
                    and failures and all(message.strip() for _, _, message in failures))
        nbformat.write(_with_names(filled_notebook(master, release), NAMES), str(folder / release.name))
        solved = _handin(course, assignment)
        solved_ok = solved.returncode == 0 and f"all {tests} test cells pass" in solved.stdout
    seconds = time.perf_counter() - started
    line = (f"{assignment}/{release.name}: blank {'fails clearly' if blank_ok else 'WRONG'} "
            f"({len(failures)} failures named), reference {'passes' if solved_ok else 'FAILS'} "
            f"({tests} test cells), {seconds:.0f} s")
    if not (blank_ok and solved_ok):
        line += "\n" + (unsolved.stdout + unsolved.stderr)[-1500:] + "\n" + (solved.stdout + solved.stderr)[-3000:]
    return blank_ok and solved_ok, line


def _stand_in_data(root: Path) -> None:
    """The test suite's offline data sets (tests/stand_in_data.py), unless DLCOURSE_DATA names real ones."""
    import os

    if os.environ.get("DLCOURSE_DATA"):
        return
    sys.path.insert(0, str(ROOT / "tests"))
    from stand_in_data import prepare_mnist_from_fashion, write_cifar10

    prepare_mnist_from_fashion(root)
    write_cifar10(root, n_train=500, n_test=100)
    os.environ["DLCOURSE_DATA"] = str(root)  # the hand-ins' kernels inherit it


def main() -> int:
    import torch

    notebooks = sorted((ROOT / "release").glob("a*/*.ipynb"))
    started = time.perf_counter()
    data = tempfile.TemporaryDirectory(prefix="public-checks-data-")
    _stand_in_data(Path(data.name))
    print(f"torch {torch.__version__}; {len(notebooks)} release notebooks", flush=True)
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:  # each handin runs its own kernel
        results = list(pool.map(check_notebook, notebooks))
    for _, line in results:
        print(line)
    bad = sum(not ok for ok, _ in results)
    print(f"{len(results) - bad} of {len(results)} notebooks behave under torch {torch.__version__}, "
          f"{time.perf_counter() - started:.0f} s")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
