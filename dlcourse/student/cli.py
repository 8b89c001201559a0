"""The students' commands: ``dlcourse handin``, ``dlcourse lab``, ``dlcourse data``.

The course's command line (:mod:`dlcourse.cli`) adds them beside the
instructor's commands; in a student kit (``dlcourse student-kit``) they are
the whole ``dlcourse`` command, since :mod:`dlcourse.cli` and everything
that grades stays with the instructor.

Exit codes: 0 done, 1 refused with a reason, 2 usage error (``handin`` also
3: handed in without PDFs).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from . import examlab, handin, lab
from ..core.config import submit_token

EXIT_CODES = "exit codes: 0 done, 1 refused (the message says why), 2 usage error (a wrong option)"


def help_kwargs(example: str, codes: str = EXIT_CODES) -> dict:
    """Plain-text help: the description as written, one example, the exit codes."""
    return dict(formatter_class=argparse.RawDescriptionHelpFormatter, epilog=f"example:\n  {example}\n\n{codes}")


DATASETS = ("mnist", "cifar10")


def _dataset(name: str) -> str:
    if name.lower() not in DATASETS:
        raise argparse.ArgumentTypeError(f"there is no data set {name!r} (data sets: {', '.join(DATASETS)})")
    return name.lower()


def add_data_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("datasets", nargs="*", type=_dataset, default=[], metavar="DATASET",
                        help="mnist and/or cifar10 (default: both)")
    return parser


def run_data(args: argparse.Namespace) -> int:
    """Loads each data set once (downloading it when missing and online), or says where to put its files."""
    from ..data import DataMissingError, data_root, load_cifar10, load_mnist

    loaders = {"mnist": load_mnist, "cifar10": load_cifar10}
    print(f"dlcourse data: the data sets live in {data_root()} (set DLCOURSE_DATA to use another folder)")
    refused = 0
    for name in args.datasets or list(loaders):
        try:
            for train in (True, False):
                loaders[name](train=train)
        except DataMissingError as error:
            print(f"dlcourse data: {error}", file=sys.stderr)
            refused = 1
            continue
        print(f"  {name}: ready")
    return refused


def add_handin_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("assignment", nargs="?", default=".",
                        help="assignment name (e.g. a1_autodiff) or the folder of its notebooks "
                             "(default: the current folder)")
    parser.add_argument("--names", default=None,
                        help='your names, e.g. "Ada Lovelace, Alan Turing" (groups of up to two); '
                             "must match the notebooks' names cells")
    parser.add_argument("--course-root", type=Path, default=None,
                        help="course folder (default: the one with nbgrader_config.py above here)")
    parser.add_argument("--out-dir", type=Path, default=None, help="where the zip goes (default: COURSE/handin)")
    parser.add_argument("--no-tests", action="store_true", help="skip running the public tests")
    parser.add_argument("--no-pdf", action="store_true", help="zip the notebooks without PDFs")
    parser.add_argument("--pdf-outputs", choices=["saved", "executed"], default="saved",
                        help="outputs in the PDF: as saved in your notebook (default), or from the "
                             "test run (NBGRADER_EXECUTION set, so training cells run shortened)")
    parser.add_argument("--allow-browser-download", action="store_true",
                        help="with internet: let nbconvert download a Chromium when none is installed")
    parser.add_argument("--submit", default=None, metavar="URL",
                        help="then hand the zip in to the course's hand-in service at URL and show the result")
    parser.add_argument("--token", default=None, help="your personal token for --submit (default $DLCOURSE_TOKEN)")
    parser.add_argument("--wait", type=float, default=120, help="seconds to wait for the result (default 120)")
    return parser


def run_handin(args: argparse.Namespace) -> int:
    """Hands in, then prints the report (:func:`handin.format_report`); exit 3 when PDFs are missing."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger(handin.__name__).setLevel(logging.INFO)  # "running the public tests" before the wait
    try:
        result = handin.handin_report(args.assignment, args.names, course_root=args.course_root,
                                      out_dir=args.out_dir, run_tests=not args.no_tests,
                                      make_pdf=not args.no_pdf, pdf_outputs=args.pdf_outputs,
                                      allow_browser_download=args.allow_browser_download)
    except handin.HandinError as error:
        print(f"Hand-in refused: {error}", file=sys.stderr)
        return handin.EXIT_REFUSED
    print(handin.format_report(result), flush=True)
    if getattr(args, "submit", None):
        from . import submit

        print(f"Handing {result.zip_path.name} in to {args.submit} ...", flush=True)
        try:
            print(submit.submit_and_report(args.submit, args.token or submit_token() or "",
                                           result.assignment, result.zip_path, wait=args.wait), flush=True)
        except submit.SubmitError as error:
            print(f"Hand-in not submitted: {error}. The zip is written: {result.zip_path}", file=sys.stderr)
            return handin.EXIT_REFUSED
    if not args.no_pdf and not result.complete:
        return handin.EXIT_NO_PDF
    return handin.EXIT_OK


class _HandinCommand:
    """``dlcourse handin``: the hand-in (:mod:`dlcourse.student.handin`) and its printed report."""

    add_arguments = staticmethod(add_handin_arguments)
    run = staticmethod(run_handin)


class _DataCommand:
    """``dlcourse data`` in the shape of the handin and lab modules (add_arguments, run)."""

    add_arguments = staticmethod(add_data_arguments)
    run = staticmethod(run_data)


#: (command, module with add_arguments and run, help, example, exit codes)
STUDENT_COMMANDS = (
    ("handin", _HandinCommand, "check, export to PDF and zip your notebooks",
     'dlcourse handin a1_autodiff --names "Ada Lovelace, Alan Turing"',
     EXIT_CODES + ", 3 handed in without PDFs (no PDF engine)"),
    ("lab", examlab, "start JupyterLab in the course or kit, with nbgrader's extensions (--exam: an exam sitting)",
     "dlcourse lab --no-browser", EXIT_CODES),
    ("data", _DataCommand, "fetch the data sets (MNIST, CIFAR-10) once, or say where to put them",
     "dlcourse data mnist", EXIT_CODES),
)


def add_student_commands(commands, wrap=lambda module: module.run) -> None:
    """``handin``, ``lab`` and ``data`` on ``commands`` (argparse sub-parsers); ``wrap(module)`` is each one's func."""
    for name, module, text, example, codes in STUDENT_COMMANDS:
        sub = commands.add_parser(name, help=text,
                                  description=text[0].upper() + text[1:] + ".", **help_kwargs(example, codes))
        module.add_arguments(sub)
        sub.set_defaults(func=wrap(module))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dlcourse", description="Work on and hand in the course's notebooks.",
                                     **help_kwargs('dlcourse handin a1_autodiff --names "Ada Lovelace"'))
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_student_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
