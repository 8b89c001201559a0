"""The instructor's and student's command line: ``dlcourse`` / ``python -m dlcourse``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent


def _course_root(args) -> Path:
    return Path(args.course or os.environ.get("DLCOURSE_ROOT") or _find_root(Path.cwd())).resolve()


def _find_root(start: Path) -> Path:
    for folder in (start, *start.parents):
        if (folder / "nbgrader_config.py").exists() and (folder / "source").is_dir():
            return folder
    return REPOSITORY


def cmd_release(args) -> int:
    from .gradebook import assignments, generate_release
    from .grading import CourseLayout

    layout = CourseLayout(_course_root(args))
    names = [args.assignment] if args.assignment else assignments(layout)
    for name in names:
        path = generate_release(layout, name)
        print(f"released {name} -> {path.relative_to(layout.root)}")
    return 0


def cmd_grade(args) -> int:
    from .gradebook import GradebookRecorder
    from .grading import CourseLayout, GradingOptions, grade_assignment, write_reports
    from .isolation import Limits, isolation_problem
    from .data import data_root

    layout = CourseLayout(_course_root(args), args.submissions)
    if not layout.students(args.assignment):
        print(f"dlcourse grade: no submissions found in {layout.submitted}/<student_id>/{args.assignment}/",
              file=sys.stderr)
        return 2
    warnings = []
    isolate = not args.no_isolation
    if isolate and isolation_problem():
        print(f"dlcourse grade: {isolation_problem()}.\n"
              "Refusing to run students' code unisolated; pass --no-isolation to grade anyway.", file=sys.stderr)
        return 2
    if not isolate:
        warnings.append("WARNING: graded WITHOUT isolation (--no-isolation): students' code ran with the grader's "
                        "rights and could read source/, the gradebook and other submissions.")
        print(warnings[-1], file=sys.stderr)
    limits = Limits(memory_bytes=int(args.memory_gb * 2**30))
    options = GradingOptions(isolate=isolate, cell_timeout=args.cell_timeout,
                             notebook_timeout=args.notebook_timeout, limits=limits,
                             read_only=[str(data_root())])
    recorder = GradebookRecorder(layout, args.assignment)
    try:
        results = grade_assignment(layout, args.assignment, workers=args.workers, options=options,
                                   record=recorder)
    finally:
        recorder.close()
    grades, cells = write_reports(layout, args.assignment, results, warnings)
    print_table(results)
    print(f"\nwrote {grades.relative_to(layout.root)} and {cells.relative_to(layout.root)}")
    return 0


def print_table(results) -> None:
    width = max([len(r.student_id) for r in results] + [10])
    print(f"{'student_id':<{width}}  {'score':>7}  {'max':>5}  status")
    for r in results:
        print(f"{r.student_id:<{width}}  {r.score:>7g}  {r.max_score:>5g}  {r.status}")


def cmd_feedback(args) -> int:
    from .feedback import manual_scores_from_gradebook, write_feedback
    from .grading import CourseLayout, SubmissionResult

    layout = CourseLayout(_course_root(args))
    count = 0
    for path in sorted(layout.autograded.glob(f"*/{args.assignment}/.dlcourse-result.json")):
        result = SubmissionResult.from_json(json.loads(path.read_text()))
        manual = manual_scores_from_gradebook(layout, args.assignment, result.student_id)
        for written in write_feedback(layout, result, manual):
            print(f"wrote {written.relative_to(layout.root)}")
            count += 1
    if count == 0:
        print(f"dlcourse feedback: nothing graded for {args.assignment} yet; run `dlcourse grade {args.assignment}`",
              file=sys.stderr)
        return 2
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo(_course_root(args), workers=args.workers)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dlcourse", description=__doc__)
    parser.add_argument("--course", help="course root (default: the folder holding nbgrader_config.py)")
    commands = parser.add_subparsers(dest="command", required=True)

    release = commands.add_parser("release", help="regenerate release/ from source/ with nbgrader")
    release.add_argument("assignment", nargs="?", help="one assignment (default: all)")
    release.set_defaults(func=cmd_release)

    grade = commands.add_parser("grade", help="autograde every submission, in parallel and isolated")
    grade.add_argument("assignment")
    grade.add_argument("--submissions", type=Path, help="folder with <student_id>/<assignment>/*.ipynb "
                                                        "(default: submitted/)")
    grade.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="students graded at once "
                                                                                "(default: number of cores)")
    grade.add_argument("--no-isolation", action="store_true",
                       help="run students' code without the sandbox (unsafe; noted in the report)")
    grade.add_argument("--cell-timeout", type=float, default=120.0, help="seconds per cell (default 120)")
    grade.add_argument("--notebook-timeout", type=float, default=600.0, help="seconds per notebook (default 600)")
    grade.add_argument("--memory-gb", type=float, default=3.0, help="memory per notebook (default 3 GiB)")
    grade.set_defaults(func=cmd_grade)

    feedback = commands.add_parser("feedback", help="per-student HTML feedback (no hidden test code)")
    feedback.add_argument("assignment")
    feedback.set_defaults(func=cmd_feedback)

    demo = commands.add_parser("demo", help="release, grade a few example submissions, print the grades")
    demo.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    demo.set_defaults(func=cmd_demo)

    for name, module_name, text in (("handin", "handin", "check, export to PDF and zip your notebooks"),
                                    ("lab", "lab", "start JupyterLab in the course with nbgrader's extensions")):
        module = _optional_module(module_name)
        if module is None or not hasattr(module, "add_arguments"):
            continue
        sub = commands.add_parser(name, help=text)
        module.add_arguments(sub)
        sub.set_defaults(func=module.run)
    return parser


def _optional_module(name: str):
    import importlib

    try:
        return importlib.import_module(f"dlcourse.{name}")
    except ImportError:
        return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
