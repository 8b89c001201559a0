"""How long each notebook takes to grade (reference solution, isolated).

The course promises at most 90 s per notebook on 2 CPU cores. This prints
the grading time of every master notebook's reference solution, run one at
a time by the real engine in its sandbox. Needs data in $DLCOURSE_DATA for
the training notebooks (the tests' stand-ins are made with
`tests/stand_in_data.py`). Run: `.venv/bin/python bench/notebook_times.py`.

`--against REV [NOTEBOOK ...]` also grades each master as it was at git
revision REV, right after today's, and prints the seconds the tests added
since (the named notebooks only, by stem, e.g. `a4_vgg_cifar`).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from dlcourse.data import data_root  # noqa: E402
from dlcourse.authoring.demo import filled_notebook  # noqa: E402
from dlcourse.grading import GradingOptions, grade_notebook  # noqa: E402


def graded_seconds(master: Path, source: Path, options: GradingOptions):
    """Grade the reference solution of ``source`` (a master, today's or an older copy) against ``master``'s release."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / master.name
        nbformat.write(filled_notebook(source, ROOT / "release" / master.parent.name / master.name), str(path))
        started = time.perf_counter()
        result = grade_notebook(source, path, options)
        return time.perf_counter() - started, result


def older_master(master: Path, revision: str, scratch: Path) -> Path | None:
    """``master`` as it was at git ``revision`` (None when it did not exist)."""
    relative = master.relative_to(ROOT).as_posix()
    shown = subprocess.run(["git", "show", f"{revision}:{relative}"], cwd=ROOT, capture_output=True)
    if shown.returncode:
        return None
    (scratch / master.parent.name).mkdir(exist_ok=True)
    path = scratch / master.parent.name / master.name
    path.write_bytes(shown.stdout)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", metavar="REV", help="also grade each master as it was at this git revision")
    parser.add_argument("notebooks", nargs="*", help="notebook stems to time (default: all)")
    arguments = parser.parse_args()
    if "DLCOURSE_DATA" not in os.environ:
        from stand_in_data import prepare_mnist_from_fashion, write_cifar10

        root = Path(tempfile.mkdtemp(prefix="dlcourse-data-"))
        prepare_mnist_from_fashion(root)
        write_cifar10(root, n_train=500, n_test=100)
        os.environ["DLCOURSE_DATA"] = str(root)
    options = GradingOptions(read_only=[str(data_root())])
    print(f"{'notebook':<22} {'seconds':>8}  score  status" + (f"  seconds at {arguments.against}  added"
                                                                   if arguments.against else ""))
    worst = 0.0
    older_copies = Path(tempfile.mkdtemp(prefix="dlcourse-older-masters-"))
    for master in sorted((ROOT / "source").glob("*/*.ipynb")):
        if arguments.notebooks and master.stem not in arguments.notebooks:
            continue
        seconds, result = graded_seconds(master, master, options)
        worst = max(worst, seconds)
        line = f"{master.stem:<22} {seconds:8.1f}  {result.score:g}/{result.max_score:g}  {result.status}"
        older = older_master(master, arguments.against, older_copies) if arguments.against else None
        if older is not None:
            before, _ = graded_seconds(master, older, options)
            line += f"  {before:8.1f}  {seconds - before:+6.1f}"
        print(line, flush=True)
    print(f"slowest notebook: {worst:.1f} s (limit 90 s on 2 cores); machine: {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
