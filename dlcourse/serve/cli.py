"""``dlcourse serve`` and ``dlcourse serve tokens --out FILE``: the arguments and what they run.

Light to import (the parser is built for every ``dlcourse`` command): the
service's own modules are imported when the command runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from .settings import ServeSettings

EXIT_OK, EXIT_REFUSED = 0, 1
#: As for ``dlcourse grade`` (docs/cluster.md).
CLUSTER_ENV, CLUSTER_TLS_ENV = "DLCOURSE_CLUSTER", "DLCOURSE_CLUSTER_TLS"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``dlcourse serve`` (the grading options are added by :mod:`dlcourse.cli`)."""
    defaults = ServeSettings()
    parser.add_argument("action", nargs="?", choices=["tokens"], default=None,
                        help="tokens: write a new personal token for every student of roster.csv (--out FILE)")
    parser.add_argument("--out", type=Path, default=None, help="tokens: the CSV to write (student_id,token,link)")
    parser.add_argument("--url", default="", help="tokens: the service's public address, for the sign-in links")
    parser.add_argument("--host", default=defaults.host, help=f"address to listen on (default {defaults.host})")
    parser.add_argument("--port", type=int, default=defaults.port,
                        help=f"port (default {defaults.port}; 0: any free port, printed)")
    parser.add_argument("--database", default=defaults.database,
                        help="SQLAlchemy URL (default $DLCOURSE_SERVE_DATABASE, else sqlite:///COURSE/serve/serve.db; "
                             "postgresql+psycopg://... for several service processes)")
    parser.add_argument("--state-dir", default=defaults.state_dir,
                        help="hand-in files and work folders (default COURSE/serve)")
    parser.add_argument("--max-upload-mb", type=float, default=defaults.max_upload_mb,
                        help=f"largest upload (default {defaults.max_upload_mb:g} MB)")
    parser.add_argument("--uploads-per-minute", type=int, default=defaults.uploads_per_minute,
                        help=f"hand-ins per student per minute before 429 (default {defaults.uploads_per_minute})")
    parser.add_argument("--assignment", action="append", default=None, metavar="ASSIGNMENT",
                        help="accept this assignment (may be repeated; default: every assignment in source/)")
    add_grading_arguments(parser)


def add_grading_arguments(parser: argparse.ArgumentParser) -> None:
    """The grading options of ``dlcourse grade`` that the service takes too (same names, same defaults)."""
    from ..grading.results import GradingOptions
    from ..sandbox.isolation import Limits

    parser.add_argument("--workers", type=int, default=None, help="hand-ins graded at once (default: one per core)")
    parser.add_argument("--no-isolation", action="store_true", help="run students' code without the sandbox (unsafe)")
    parser.add_argument("--cell-timeout", type=float, default=None,
                        help=f"seconds per cell (default {GradingOptions.default('cell_timeout'):g}, or the course's)")
    parser.add_argument("--notebook-timeout", type=float, default=None,
                        help=f"seconds per notebook (default {GradingOptions.default('notebook_timeout'):g})")
    parser.add_argument("--memory-gb", type=float, default=None,
                        help=f"memory per notebook (default {Limits().memory_bytes / 2**30:g} GiB)")
    parser.add_argument("--engine", choices=("fork", "kernel"), default=None,
                        help=f"as for dlcourse grade (default {GradingOptions.default('engine')})")
    parser.add_argument("--cluster", default=None, metavar="ADDRESS",
                        help="grade on a Dask cluster, as dlcourse grade --cluster (docs/cluster.md)")
    parser.add_argument("--tls", default=None, metavar="DIR", help="the cluster's TLS certificates")


def settings_of(args) -> ServeSettings:
    return ServeSettings(host=args.host, port=args.port, database=args.database, state_dir=args.state_dir,
                         max_upload_mb=args.max_upload_mb, uploads_per_minute=args.uploads_per_minute,
                         workers=args.workers)


def run(args, layout, options) -> int:
    """``dlcourse serve`` (or ``serve tokens``) on ``layout`` with the grading ``options`` of the command line."""
    from ..core.config import course_settings
    from ..grading import GradingRefused
    from ..lms.roster import Roster, RosterError
    from .policy import PolicyError
    from .server import open_store, serve

    settings = settings_of(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    if args.action == "tokens":
        from .auth import issue_tokens

        if args.out is None:
            print("dlcourse serve tokens: give the file to write: --out tokens.csv", file=sys.stderr)
            return EXIT_REFUSED
        try:
            count = issue_tokens(open_store(layout, settings), Roster.of_course(layout), args.out, args.url)
        except RosterError as error:
            print(f"dlcourse serve tokens: {error}", file=sys.stderr)
            return EXIT_REFUSED
        print(f"wrote {count} token(s) to {args.out} (the only copy: send each student their row, then delete it; "
              "earlier tokens no longer work)")
        return EXIT_OK
    course = course_settings(layout.root)
    if args.cell_timeout is None and course.cell_timeout:  # as dlcourse grade does: the results are shared
        options.cell_timeout = course.cell_timeout
    options.ignore_pattern = course.ignore_pattern
    executor = None
    try:
        cluster = args.cluster or os.environ.get(CLUSTER_ENV)
        if cluster:  # see docs/cluster.md
            from ..grading.cluster import ClusterExecutor

            executor = ClusterExecutor(cluster, tls=args.tls or os.environ.get(CLUSTER_TLS_ENV),
                                       unisolated=args.no_isolation)
        serve(layout, settings, options, assignments=args.assignment, executor=executor,
              on_ready=lambda url: print(f"dlcourse serve: listening on {url}", flush=True))
    except (GradingRefused, RosterError, PolicyError, FileNotFoundError) as error:
        print(f"dlcourse serve: {error}", file=sys.stderr)
        return EXIT_REFUSED
    finally:
        if executor is not None:
            executor.shutdown(cancel_futures=True)
    return EXIT_OK
