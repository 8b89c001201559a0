"""The instructor's and student's command line: ``dlcourse`` / ``python -m dlcourse``.

Each command is one function of the module that owns the work; this file
only parses arguments and prints. Defaults are not repeated here: the
grading options come from :class:`dlcourse.grading.GradingOptions` and
:class:`dlcourse.sandbox.isolation.Limits`.

Exit codes: 0 done, 1 refused with a reason, 2 usage error.

Why one module of over 450 lines: most of it is :func:`build_parser`'s
declarations, each command's options, help and example side by side, so that
``dlcourse --help`` and a command's ``--help`` are read and changed in one
place; every ``cmd_*`` is a few lines that call the package that owns the work
(a command with many options of its own keeps them there, as
:mod:`dlcourse.serve.cli` does).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .student.cli import EXIT_CODES, add_student_commands, help_kwargs
from .core import config
from .core.course import CourseLayout, course_root
from .grading.results import GradingOptions
from .sandbox.isolation import Limits

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


def _layout(args, submissions: Path | None = None) -> CourseLayout:
    return CourseLayout(course_root(args.course), submissions)


def cmd_release(args) -> int:
    from .authoring.release import StrictTestsRefused, release_assignments

    layout = _layout(args)
    try:
        paths = release_assignments(layout, [args.assignment] if args.assignment else None)
    except (FileNotFoundError, StrictTestsRefused) as error:
        print(f"dlcourse release: {error}", file=sys.stderr)
        return EXIT_REFUSED
    for path in paths:
        print(f"released {path.name} -> {path.relative_to(layout.root)}")
    return EXIT_OK


def grading_options(args) -> GradingOptions:
    """The options given on the command line over :class:`GradingOptions`' defaults."""
    from .core.course import data_root

    options = GradingOptions(isolate=not args.no_isolation, read_only=[str(data_root())])
    if args.cell_timeout is not None:
        options.cell_timeout = args.cell_timeout
    if args.notebook_timeout is not None:
        options.notebook_timeout = args.notebook_timeout
    if args.memory_gb is not None:
        options.limits.memory_bytes = int(args.memory_gb * 2**30)
    engine = getattr(args, "engine", None) or config.default_engine()
    if engine in ("fork", "kernel"):
        options.engine = engine
    return options


def cmd_grade(args) -> int:
    from .grading import GradingRefused, grade_and_report

    layout = _layout(args, args.submissions)
    options = grading_options(args)
    from .core.config import course_settings

    course_timeout = course_settings(layout.root).cell_timeout  # nbgrader's c.Execute.timeout
    if args.cell_timeout is None and course_timeout:
        options.cell_timeout = course_timeout
    executor = None
    try:
        cluster = args.cluster or config.default_cluster()
        if cluster:  # see docs/cluster.md; imported only then (Dask is not light)
            from .grading.cluster import ClusterExecutor

            executor = ClusterExecutor(cluster, tls=args.tls or config.default_tls(), force=args.force,
                                       unisolated=args.no_isolation)
        report = grade_and_report(layout, args.assignment, options, workers=args.workers, force=args.force,
                                  executor=executor)
    except GradingRefused as error:
        print(f"dlcourse grade: {error}", file=sys.stderr)
        return EXIT_REFUSED
    finally:
        if executor is not None:
            executor.shutdown(cancel_futures=True)
    if config.profile_path():  # where the seconds went, for bench/profile_grading.py
        config.profile_path().write_text(json.dumps(report.timings))
    for warning in report.warnings:
        print(warning, file=sys.stderr)
    print(report.table())
    print(f"\nwrote {' and '.join(str(p.relative_to(layout.root)) for p in report.files)}")
    return EXIT_OK


def cmd_worker(args) -> int:
    from .grading.cluster import run_worker
    from .grading import GradingRefused

    resources = {}
    for item in args.resources or []:
        name, _, amount = item.partition("=")
        resources[name] = float(amount or 1)
    try:
        return run_worker(args.scheduler, tls=args.tls or config.default_tls(), unisolated=args.no_isolation,
                          resources=resources, name=args.name)
    except GradingRefused as error:
        print(f"dlcourse worker: {error}", file=sys.stderr)
        return EXIT_REFUSED


def cmd_cluster_certs(args) -> int:
    from .grading.certificates import make_certificates
    from .grading import GradingRefused

    try:
        paths = make_certificates(args.dir, days=args.days)
    except GradingRefused as error:
        print(f"dlcourse cluster-certs: {error}", file=sys.stderr)
        return EXIT_REFUSED
    for path in paths:
        print(f"wrote {path}")
    print(f"copy {args.dir} (without ca-key.pem) to each worker machine; then --tls {args.dir} (docs/cluster.md)")
    return EXIT_OK


def cmd_config(args) -> int:
    if args.generate:
        print(config.generate_config(), end="")
        return EXIT_OK
    print(config.describe(course_root(args.course)), end="")
    return EXIT_OK


def cmd_feedback(args) -> int:
    from .insight.feedback import write_assignment_feedback
    from .student.pdf import PdfEngineMissing

    layout = _layout(args)
    try:
        layout.require_assignment(args.assignment)
        if args.student:
            layout.require_students(args.assignment, args.student)
    except FileNotFoundError as error:
        print(f"dlcourse feedback: {error}", file=sys.stderr)
        return EXIT_REFUSED
    try:
        written = write_assignment_feedback(layout, args.assignment, students=args.student, pdf=args.pdf,
                                            zips=not args.no_zip)
    except PdfEngineMissing as error:
        print(f"dlcourse feedback --pdf: {error}", file=sys.stderr)
        return EXIT_REFUSED
    for path in written:
        print(f"wrote {path.relative_to(layout.root)}")
    if not written:
        print(f"dlcourse feedback: nothing graded for {args.assignment} yet; run `dlcourse grade {args.assignment}`",
              file=sys.stderr)
        return EXIT_REFUSED
    return EXIT_OK


def cmd_report(args) -> int:
    from .insight.report import write_course_report, write_report

    layout = _layout(args)
    try:
        if args.across:
            scores, page, summary = write_course_report(layout)
            print(summary)
            print(f"\nwrote {scores.relative_to(layout.root)} and {page.relative_to(layout.root)}")
            return EXIT_OK
        if not args.assignment:
            print("dlcourse report: name an assignment, or --course for all of them", file=sys.stderr)
            return EXIT_USAGE
        layout.require_assignment(args.assignment)
        path, report = write_report(layout, args.assignment)
    except FileNotFoundError as error:
        print(f"dlcourse report: {error}", file=sys.stderr)
        return EXIT_REFUSED
    print(report.summary())
    print(f"\nwrote {path.relative_to(layout.root)}")
    return EXIT_OK


def cmd_collect(args) -> int:
    from .lms.collect import CollectError, collect, format_summary, parse_deadline
    from .lms.roster import RosterError

    layout = _layout(args)
    try:
        deadline = parse_deadline(args.deadline) if args.deadline else None
        report = collect(layout, args.assignment, args.download, source=args.source, deadline=deadline,
                         group_size=args.group_size, make_pdfs=not args.no_pdfs)
    except (CollectError, RosterError, FileNotFoundError) as error:
        print(f"dlcourse collect: {error}", file=sys.stderr)
        return EXIT_REFUSED
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(format_summary(report))
    print(f"wrote {', '.join(str(p.relative_to(layout.root)) for p in report.files)}")
    return EXIT_OK


def cmd_export(args) -> int:
    from .lms.export import ExportRefused, export
    from .lms.roster import RosterError

    layout = _layout(args)
    try:
        report = export(layout, args.assignment, args.to, partial=args.partial, template=args.template,
                        canvas_id=args.lms_assignment_id, feedback=not args.no_feedback)
    except (ExportRefused, RosterError) as error:
        print(f"dlcourse export: {error}", file=sys.stderr)
        return EXIT_REFUSED
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    exported = sum(1 for r in report.rows if r.handed_in)
    print(f"{exported} of {len(report.rows)} roster students graded")
    print(f"wrote {', '.join(str(p.relative_to(layout.root)) for p in report.files)}")
    return EXIT_OK


def cmd_adopt(args) -> int:
    from .authoring.adopt import AdoptRefused, adopt

    try:
        report = adopt(_layout(args), args.path, rename=args.rename, dry_run=args.dry_run)
    except AdoptRefused as error:
        print(f"dlcourse adopt: {error}", file=sys.stderr)
        return EXIT_REFUSED
    print(report.text())
    return EXIT_OK


def cmd_demo(args) -> int:
    from .authoring.demo import run_demo

    return run_demo(course_root(args.course), workers=args.workers)


def cmd_student_kit(args) -> int:
    from .authoring.kit import KitRefused, build_kit

    layout = _layout(args)
    try:
        kit = build_kit(layout, args.dir, regenerate=not args.no_regenerate, git=args.git, zip=not args.no_zip,
                        github=args.github)
    except (KitRefused, FileNotFoundError) as error:
        print(f"dlcourse student-kit: {error}", file=sys.stderr)
        return EXIT_REFUSED
    print(kit.summary())
    return EXIT_OK


def cmd_exam(args) -> int:
    from .exam import ExamError, build_exam
    from .student.pdf import PdfEngineMissing

    layout = _layout(args)
    split = lambda value: [v for v in value.split(",") if v] if value else None  # noqa: E731
    given = {name: value for name, value in (("seed", args.seed), ("variants", args.variants),
                                             ("duration", args.duration)) if value is not None}
    try:  # what is not given keeps build_exam's default (the one place defaults live)
        if args.room:
            room = tuple(int(n) for n in args.room.lower().split("x") if n.isdigit())
            if len(room) != 2 or min(room) < 1:
                raise ValueError(f"--room {args.room!r}: give ROWSxCOLUMNS, e.g. 10x12")
            given["room"] = room
        built = build_exam(layout, args.name, items=split(args.items), open_questions=split(args.open),
                           papers=split(args.papers), pdf=not args.no_pdf, students=split(args.students), **given)
    except (ExamError, PdfEngineMissing, ValueError) as error:
        print(f"dlcourse exam build: {error}", file=sys.stderr)
        return EXIT_REFUSED
    print(built.summary(layout.root))
    return EXIT_OK


def cmd_exam_results(args) -> int:
    from .exam import ExamError, exam_results

    layout = _layout(args)
    try:
        path = exam_results(layout, args.name)
    except ExamError as error:
        print(f"dlcourse exam results: {error}", file=sys.stderr)
        return EXIT_REFUSED
    print(f"wrote {path.relative_to(layout.root)}")
    return EXIT_OK


def cmd_serve(args) -> int:
    from .serve.cli import run as run_serve

    return run_serve(args, _layout(args), grading_options(args))


def _with_course(module):
    """A student command (``handin``, ``lab``) that also honours the global ``--course``."""
    def run(args) -> int:
        if getattr(args, "course_root", None) is None and args.course:
            args.course_root = Path(args.course)
        return module.run(args)
    return run


_help = help_kwargs


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dlcourse",
                                     description="Release, grade and hand in the course's notebooks.",
                                     **_help("dlcourse grade a1_autodiff   (then: dlcourse feedback a1_autodiff --pdf)"))
    parser.add_argument("--course", help="course root (default: $DLCOURSE_ROOT, or the folder holding "
                                         "nbgrader_config.py at or above the current one)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    release = commands.add_parser("release", help="regenerate release/ from source/ with nbgrader",
                                  description="Regenerate release/ (the students' notebooks) from source/.",
                                  **_help("dlcourse release a1_autodiff"))
    release.add_argument("assignment", nargs="?", help="one assignment (default: all)")
    release.set_defaults(func=cmd_release)

    limits = Limits()
    grade = commands.add_parser("grade", help="autograde every submission, in parallel and isolated",
                                description="Autograde submitted/<student>/<assignment>/ for every student; writes "
                                            "autograded/, the gradebook and reports/<assignment>/.",
                                **_help("dlcourse grade a1_autodiff --workers 2"))
    grade.add_argument("assignment")
    grade.add_argument("--submissions", type=Path, help="folder with <student_id>/<assignment>/*.ipynb "
                                                        "(default: submitted/)")
    grade.add_argument("--workers", type=int, default=None, help="students graded at once (default: one per core)")
    grade.add_argument("--no-isolation", action="store_true",
                       help="run students' code without the sandbox (unsafe; noted in the report)")
    grade.add_argument("--cell-timeout", type=float, default=None,
                       help=f"seconds per cell (default {GradingOptions.default('cell_timeout'):g})")
    grade.add_argument("--notebook-timeout", type=float, default=None,
                       help=f"seconds per notebook (default {GradingOptions.default('notebook_timeout'):g})")
    grade.add_argument("--memory-gb", type=float, default=None,
                       help=f"memory per notebook (default {limits.memory_bytes / 2**30:g} GiB)")
    grade.add_argument("--force", action="store_true",
                       help="grade even if the reference solutions lose points here; those cells are then "
                            "'not graded: grader fault' for every student (listed in WARNINGS.txt)")
    grade.add_argument("--engine", choices=("fork", "kernel"), default=None,
                       help="fork: each notebook in a child of a warm, sandboxed Python; kernel: a Jupyter kernel "
                            f"per notebook (default $DLCOURSE_ENGINE, else {GradingOptions.default('engine')})")
    grade.add_argument("--cluster", default=None, metavar="ADDRESS",
                       help="grade on a Dask cluster: its scheduler (tcp://host:8786, tls://...) or local:N "
                            "(N worker processes here); default $DLCOURSE_CLUSTER (docs/cluster.md)")
    grade.add_argument("--tls", default=None, metavar="DIR", help="the cluster's TLS certificates (from "
                       "`dlcourse cluster-certs DIR`; default $DLCOURSE_CLUSTER_TLS)")
    grade.set_defaults(func=cmd_grade)

    worker = commands.add_parser("worker", help="a Dask worker that grades (for grade --cluster)",
                                 description="Join a Dask scheduler as a worker that grades one student at a time, "
                                             "isolated\n(bubblewrap); see docs/cluster.md.",
                                 **_help("dlcourse worker tls://grader.example.org:8786 --tls ~/dlcourse-certs"))
    worker.add_argument("scheduler", help="the scheduler's address (tcp://host:8786, tls://host:8786)")
    worker.add_argument("--tls", default=None, metavar="DIR", help="TLS certificates (default $DLCOURSE_CLUSTER_TLS)")
    worker.add_argument("--no-isolation", action="store_true",
                        help="may grade without the sandbox, for clients that ask --no-isolation (unsafe)")
    worker.add_argument("--resources", nargs="*", metavar="NAME=N", help="Dask worker resources, e.g. GPU=1")
    worker.add_argument("--name", default=None, help="the worker's name (default: Dask's)")
    worker.set_defaults(func=cmd_worker)

    certs = commands.add_parser("cluster-certs", help="a CA and a certificate for the cluster's TLS",
                                description="Write DIR/ca.pem, ca-key.pem, node.pem, node-key.pem (openssl) for "
                                            "grade --cluster --tls DIR\nand worker --tls DIR.",
                                **_help("dlcourse cluster-certs ~/dlcourse-certs"))
    certs.add_argument("dir", type=Path)
    certs.add_argument("--days", type=int, default=365, help="validity (default 365 days)")
    certs.set_defaults(func=cmd_cluster_certs)

    feedback = commands.add_parser(
        "feedback", help="per-student feedback: HTML, PDF, a zip each (no hidden test code)",
        description="Per-student feedback of a graded assignment: feedback/<student>/<assignment>/<notebook>.html\n"
                    "(a table of every item on top, math typeset offline), with --pdf also <notebook>.pdf,\n"
                    "and reports/<assignment>/feedback/<student>.zip for the LMS's feedback upload.\n"
                    "The graders' points and comments from formgrader are included when given.",
        **_help("dlcourse feedback a1_autodiff --pdf --student alice"))
    feedback.add_argument("assignment")
    feedback.add_argument("--pdf", action="store_true", help="also a PDF of each notebook's feedback")
    feedback.add_argument("--student", action="append", default=None, metavar="STUDENT",
                          help="only this student (may be given more than once; default: every graded student)")
    feedback.add_argument("--no-zip", action="store_true", help="do not write the zip per student")
    feedback.set_defaults(func=cmd_feedback)

    report = commands.add_parser("report", help="instructor report: items, failures, time, similarity (HTML)",
                                 description="What the grades say: item analysis, common failures, grading time, "
                                             "manual grading progress and similar pairs, as one HTML page.",
                                 **_help("dlcourse report a1_autodiff   (or: dlcourse report --course)"))
    report.add_argument("assignment", nargs="?")
    report.add_argument("--course", dest="across", action="store_true",
                        help="every assignment: scores per student (CSV for the LMS) and the class's trend")
    report.set_defaults(func=cmd_report)

    collect = commands.add_parser("collect", help="fill submitted/ from an LMS download (Moodle, Canvas, GitHub "
                                                  "Classroom, dlcourse handin zips), groups matched to roster.csv",
                                  description="Fill submitted/ from an LMS download; groups are read from the "
                                              "notebooks' names cells and matched to roster.csv.",
                                  **_help("dlcourse collect a1_autodiff moodle-download.zip "
                                          "--deadline 2026-12-01T12:00"))
    collect.add_argument("assignment")
    collect.add_argument("download", type=Path, help="the LMS's zip, or a folder of repositories or hand-in zips")
    collect.add_argument("--source", choices=["moodle", "canvas", "github", "handin"], default=None,
                         help="what the download is (default: found out from its file names)")
    collect.add_argument("--deadline", default=None, help="e.g. 2026-12-01T12:00 (local time): later hand-ins are "
                                                          "marked late in collect.csv")
    collect.add_argument("--no-pdfs", action="store_true",
                         help="do not print the PDF of hand-ins that came without one (by default the course's "
                              "engine makes it, marked 'PDF made by the grader' in collect.csv)")
    collect.add_argument("--group-size", type=int, default=None,
                         help="students per group (default: c.Dlcourse.group_size of nbgrader_config.py, else 2)")
    collect.set_defaults(func=cmd_collect)

    export = commands.add_parser("export", help="grades and feedback in the LMS's import format",
                                 description="Grades (automatic plus manual points) and feedback files in the "
                                             "LMS's own import format.",
                                 **_help("dlcourse export a1_autodiff --to moodle"))
    export.add_argument("assignment")
    export.add_argument("--to", choices=["moodle", "canvas", "csv"], required=True)
    export.add_argument("--partial", action="store_true", help="export although manual grading is unfinished")
    export.add_argument("--template", type=Path, default=None,
                        help="the LMS's own download to fill in (Moodle's grading worksheet, Canvas's gradebook)")
    export.add_argument("--lms-assignment-id", default=None, help="Canvas's assignment id (its column's name)")
    export.add_argument("--no-feedback", action="store_true", help="do not rewrite feedback/ before packaging it")
    export.set_defaults(func=cmd_export)

    adopt = commands.add_parser("adopt", help="import an existing nbgrader course: its source/, config, students",
                                description="Copy another nbgrader course into this one: its source/<assignment>/ "
                                            "folders,\nits nbgrader_config.py (saved as nbgrader_config.adopted.py; "
                                            "its release and grading\nsettings that ours lacks are added to ours) "
                                            "and its gradebook's students.\nNothing here is overwritten; running "
                                            "it again is safe.",
                                **_help("dlcourse adopt ~/old-course --dry-run"))
    adopt.add_argument("path", type=Path, help="the other course's root (the folder of its nbgrader_config.py)")
    adopt.add_argument("--rename", action="store_true",
                       help="adopt an assignment whose name is taken here as <name>_adopted (default: refuse)")
    adopt.add_argument("--dry-run", action="store_true", help="print what would be done; write nothing")
    adopt.set_defaults(func=cmd_adopt)

    settings = commands.add_parser("config", help="every course setting and DLCOURSE_* variable: help, default, value",
                                   description="Print every c.Dlcourse setting of nbgrader_config.py (its help, default "
                                               "and this course's value)\nand every DLCOURSE_* environment variable "
                                               "(its meaning, default and value here).",
                                   **_help("dlcourse config --generate >> nbgrader_config.py"))
    settings.add_argument("--generate", action="store_true",
                          help="print a commented c.Dlcourse block for nbgrader_config.py instead")
    settings.set_defaults(func=cmd_config)

    demo = commands.add_parser("demo", help="release, grade a few example submissions, print the grades",
                               description="Release, grade a few example submissions, print the grades.",
                               **_help("dlcourse demo --workers 2"))
    demo.add_argument("--workers", type=int, default=None, help="students graded at once (default: one per core)")
    demo.set_defaults(func=cmd_demo)

    kit = commands.add_parser("student-kit", help="write the folder (and zip) that students are given",
                              description="Write the student kit: release/ (regenerated from source/), the\n"
                                          "students' part of dlcourse, requirements, environment.yml and a README;\n"
                                          "nothing of source/, tests/, the gradebook or the grader's code. Also\n"
                                          "DIR.zip, and with --git a repository with one commit.",
                              **_help("dlcourse student-kit dist/dlcourse-kit --git"))
    kit.add_argument("dir", nargs="?", type=Path, default=None,
                     help="where to write it (default: student-kit/ in the course root); replaced if it is a kit")
    kit.add_argument("--no-regenerate", action="store_true",
                     help="copy release/ as committed instead of regenerating it from source/")
    kit.add_argument("--git", action="store_true", help="also make DIR a git repository with one commit "
                                                         "(e.g. a GitHub Classroom template)")
    kit.add_argument("--no-zip", action="store_true", help="do not write DIR.zip")
    kit.add_argument("--github", default="", metavar="OWNER/REPO",
                     help="the GitHub repository the kit will be pushed to: its notebooks' Colab set-up cell "
                          "clones it, and the README links each notebook to Colab")
    kit.set_defaults(func=cmd_student_kit)

    exam = commands.add_parser("exam", help="an exam from the masters: paper, key, and a notebook to grade",
                               description="Exams built from the masters' items (see docs/exam.md).",
                               **_help("dlcourse exam build final-2027 --seed 7 --variants 2"))
    exam_commands = exam.add_subparsers(dest="exam_command", required=True, metavar="EXAM_COMMAND")
    build = exam_commands.add_parser(
        "build", help="write exams/NAME/exam.pdf, key.pdf and source/NAME/exam.ipynb",
        description="Build an exam from the masters: exams/NAME/exam.pdf (the paper), exams/NAME/key.pdf\n"
                    "(solutions, points, partial credit) and source/NAME/exam.ipynb, a master that\n"
                    "`dlcourse release NAME` and `dlcourse grade NAME` take like any assignment. With\n"
                    "--variants K: exams/NAME/vk/, source/NAME_vk/ and exams/NAME/seating.csv.",
        **_help("dlcourse exam build final-2027 --items linear,conv2d,rnn --papers recht,vaswani --seed 7"))
    build.add_argument("name", help="the exam's name (its assignment in source/)")
    build.add_argument("--items", default=None, help="coding items, comma-separated (default: the eight of "
                                                     "docs/exam.md)")
    build.add_argument("--open", default=None, help="open questions: written cells' grade_ids, comma-separated "
                                                    "(default: those the masters mark for the exam)")
    build.add_argument("--papers", default=None, help="A7's papers for the single-choice part, comma-separated "
                                                      "(default: all)")
    build.add_argument("--seed", type=int, default=None, help="draws option and question orders (default 0)")
    build.add_argument("--variants", type=int, default=None, help="versions to make (default 1)")
    build.add_argument("--duration", type=int, default=None, help="minutes (default: dlcourse.exam.DEFAULT_DURATION)")
    build.add_argument("--room", default=None, help="ROWSxCOLUMNS of the room, for seating.csv (default "
                                                    "dlcourse.exam.DEFAULT_ROOM)")
    build.add_argument("--students", default=None, help="student ids in seating order, comma-separated "
                                                        "(for seating.csv)")
    build.add_argument("--no-pdf", action="store_true", help="write only the notebook(s)")
    build.set_defaults(func=cmd_exam)
    results = exam_commands.add_parser(
        "results", help="exams/NAME/grades.csv: every version's grades, checked against the seating",
        description="Collect the grades of every version (reports/NAME_vk/grades.csv, from `dlcourse grade`)\n"
                    "into exams/NAME/grades.csv, with the version each student was seated for.",
        **_help("dlcourse exam results final-2027"))
    results.add_argument("name")
    results.set_defaults(func=cmd_exam_results)

    from .serve.cli import add_arguments as add_serve_arguments

    serve = commands.add_parser("serve", help="a hand-in service that grades each hand-in as it arrives",
                                description="Serve the hand-in page and API; grade each hand-in on arrival "
                                            "(docs/serve.md).\n`dlcourse serve tokens --out FILE` writes a personal "
                                            "token for every student of roster.csv.",
                                **_help("dlcourse serve --port 8765   (first: dlcourse serve tokens --out tokens.csv)"))
    add_serve_arguments(serve)
    serve.set_defaults(func=cmd_serve)

    add_student_commands(commands, wrap=_with_course)
    return parser


class _StderrLines(logging.Handler):
    """Each log record as a plain line on the current ``sys.stderr`` (what library code once printed there)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), file=sys.stderr, flush=True)
        except Exception:
            self.handleError(record)


#: The library modules whose INFO lines a command shows (their progress, which they once printed); every
#: other module shows its warnings only.
PROGRESS_LOGGERS = ("dlcourse.grading.cluster", "dlcourse.grading.cluster_worker", "dlcourse.grading.progress")


def show_library_messages() -> None:
    """Library code logs (``logging.getLogger(__name__)``); a command shows the progress of
    :data:`PROGRESS_LOGGERS` and every warning on stderr, as plain lines. A host that set up logging itself
    (a test runner, a notebook) keeps its own handlers."""
    root = logging.getLogger()
    if not root.handlers:
        handler = _StderrLines()
        handler.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(handler)
    for name in PROGRESS_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    show_library_messages()
    try:
        return int(args.func(args) or 0)
    except config.SettingError as error:  # a c.Dlcourse value of the wrong kind, from any command
        print(f"dlcourse {args.command}: {error}", file=sys.stderr)
        return EXIT_REFUSED


if __name__ == "__main__":
    sys.exit(main())
