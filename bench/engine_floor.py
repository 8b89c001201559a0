"""Per-notebook cost of the two engines: the floor (a one-cell notebook) and one full A1 submission.

Grades in this process with :func:`dlcourse.grading.run.grade_notebook`
(isolated, as `dlcourse grade` does; no CLI start-up, no gradebook), so the
numbers are the engine's own. The first fork-engine notebook of a process
also starts the zygote: it is reported apart.

    .venv/bin/python bench/engine_floor.py [--repeat 10] [--assignment a1_autodiff]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dlcourse.data import data_root  # noqa: E402
from dlcourse.authoring.demo import filled_notebook  # noqa: E402
from dlcourse.grading.results import GradingOptions  # noqa: E402
from dlcourse.grading.run import grade_notebook  # noqa: E402
from dlcourse.sandbox.fork import close_zygote  # noqa: E402


def one_cell(where: Path) -> tuple[Path, Path]:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    master, submission = where / "source" / "floor.ipynb", where / "submitted" / "floor.ipynb"
    for path in (master, submission):
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, str(path))
    return master, submission


def solutions(where: Path, assignment: str) -> list[tuple[Path, Path]]:
    pairs = []
    for master in sorted((ROOT / "source" / assignment).glob("*.ipynb")):
        submission = where / "submitted" / assignment / master.name
        submission.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(filled_notebook(master, ROOT / "release" / assignment / master.name), str(submission))
        pairs.append((master, submission))
    return pairs


def grade(pairs, engine: str) -> tuple[float, list]:
    options = GradingOptions(read_only=[str(data_root())], engine=engine)
    started = time.perf_counter()
    results = [grade_notebook(master, submission, options) for master, submission in pairs]
    return time.perf_counter() - started, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10, help="one-cell notebooks per engine")
    parser.add_argument("--assignment", default="a1_autodiff")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as where:
        where = Path(where)
        floor = one_cell(where)
        full = solutions(where, args.assignment)
        print(f"{'engine':8} {'first':>8} {'floor mean':>11} {'floor min':>10} {args.assignment + ' (full)':>22}  score")
        for engine in ("kernel", "fork"):
            close_zygote()
            first, _ = grade([floor], engine)
            times = [grade([floor], engine)[0] for _ in range(args.repeat)]
            seconds, results = grade(full, engine)
            score = sum(r.score for r in results)
            statuses = sorted({r.status.value for r in results})
            print(f"{engine:8} {first:7.2f}s {statistics.mean(times):10.3f}s {min(times):9.3f}s "
                  f"{seconds:21.2f}s  {score:g} {statuses}")
        close_zygote()


if __name__ == "__main__":
    main()
