"""How long each notebook takes to grade (reference solution, isolated).

The course promises at most 90 s per notebook on 2 CPU cores. This prints
the grading time of every master notebook's reference solution, run one at
a time by the real engine in its sandbox. Needs data in $DLCOURSE_DATA for
the training notebooks (the tests' stand-ins are made with
`tests/stand_in_data.py`). Run: `.venv/bin/python bench/notebook_times.py`.
"""

from __future__ import annotations

import os
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


def main() -> int:
    if "DLCOURSE_DATA" not in os.environ:
        from stand_in_data import prepare_mnist_from_fashion, write_cifar10

        root = Path(tempfile.mkdtemp(prefix="dlcourse-data-"))
        prepare_mnist_from_fashion(root)
        write_cifar10(root, n_train=500, n_test=100)
        os.environ["DLCOURSE_DATA"] = str(root)
    options = GradingOptions(read_only=[str(data_root())])
    print(f"{'notebook':<22} {'seconds':>8}  score  status")
    worst = 0.0
    for master in sorted((ROOT / "source").glob("*/*.ipynb")):
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / master.name
            nbformat.write(filled_notebook(master, ROOT / "release" / master.parent.name / master.name), str(path))
            started = time.perf_counter()
            result = grade_notebook(master, path, options)
            seconds = time.perf_counter() - started
        worst = max(worst, seconds)
        print(f"{master.stem:<22} {seconds:8.1f}  {result.score:g}/{result.max_score:g}  {result.status}", flush=True)
    print(f"slowest notebook: {worst:.1f} s (limit 90 s on 2 cores); machine: {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
