"""Starting and stopping the service: the pieces of :mod:`dlcourse.serve` put together.

    store (database) + files + grader (workers) + publish + web app -> one process

On start: the database's tables are made if missing; claims that a killed
process left are queued again (all of them with SQLite, where one process
serves; those whose lease ran out with PostgreSQL); every assignment is
published once (a result written just before a ``kill -9`` reaches
``submitted/``); the workers are warmed and each assignment's reference
solutions checked; then the port is opened and ``on_ready(url)`` is called.
SIGTERM and SIGINT stop it cleanly.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import threading
from pathlib import Path

from ..core.config import serve_database
from ..core.course import CourseLayout
from ..grading.results import GradingOptions
from ..lms.roster import Roster
from .auth import TokenSignIn
from .files import FileStore
from .policy import course_policy
from .publish import publish_assignment
from .settings import ServeSettings
from .store import Store

log = logging.getLogger(__name__)


def state_dir(layout: CourseLayout, settings: ServeSettings) -> Path:
    return Path(settings.state_dir) if settings.state_dir else layout.root / "serve"


def database_url(layout: CourseLayout, settings: ServeSettings) -> str:
    return settings.database or serve_database() \
        or f"sqlite:///{state_dir(layout, settings) / 'serve.db'}"


def open_store(layout: CourseLayout, settings: ServeSettings) -> Store:
    state_dir(layout, settings).mkdir(parents=True, exist_ok=True)
    return Store(database_url(layout, settings))


def cookie_secret(folder: Path) -> str:
    """The page's cookie-signing key: made once, kept in ``folder`` (share it between service processes)."""
    path = folder / "cookie-secret"
    if not path.is_file():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def serve(layout: CourseLayout, settings: ServeSettings, options: GradingOptions, *,
          assignments: list[str] | None = None, executor=None, on_ready=None) -> None:
    """Run the service until SIGTERM or SIGINT; ``on_ready(url)`` once it listens (default: logged)."""
    on_ready = on_ready or (lambda url: log.info("listening on %s", url))
    from .app import make_app
    from .service import HandinService
    from .worker import Grader

    folder = state_dir(layout, settings)
    store = open_store(layout, settings)
    requeued = store.requeue(every_claim=store.sqlite)
    if requeued:
        log.warning("%d hand-in(s) were being graded when the service stopped: graded again now", requeued)
    files, work = FileStore(folder / "files"), folder / "work"
    policy, roster = course_policy(layout.root), Roster.of_course(layout)
    assignments = assignments or layout.assignments()
    for assignment in assignments:
        layout.require_assignment(assignment)
        publish_assignment(layout, store, work, policy, assignment, roster, verify=True)

    publishing, publish_lock = threading.Lock(), threading.Lock()
    pending: set[str] = set()

    def finished(handin_id: str) -> None:
        """Publish the hand-in's assignment; results that arrive meanwhile are published in one pass after.

        Each pass makes every group's folder agree with the database, so one pass started after a result was
        stored covers it: a result recorded while another thread publishes only marks its assignment, and
        that thread publishes again (with two recorders, each result otherwise waited for a whole pass).
        """
        handin = store.get(handin_id)
        with publishing:
            pending.add(handin.assignment)
        while True:
            if not publish_lock.acquire(blocking=False):
                return  # the thread that holds it looks at `pending` again before it lets go
            try:
                while True:
                    with publishing:
                        if not pending:
                            break
                        assignment = pending.pop()
                    publish_assignment(layout, store, work, policy, assignment, roster)
            finally:
                publish_lock.release()
            with publishing:
                if not pending:  # else marked after the last look and before the release: publish it here
                    return

    grader = Grader(layout, store, files, work, options, workers=settings.workers or os.cpu_count() or 1,
                    assignments=assignments, executor=executor, on_finished=finished)
    service = HandinService(layout, store, files, work, policy, roster, settings, notify=grader.notify)
    grader.start()
    try:
        asyncio.run(_listen(make_app(service, TokenSignIn(store), cookie_secret(folder)), settings, on_ready))
    finally:
        grader.stop()
        store.close()


async def _listen(app, settings: ServeSettings, on_ready) -> None:
    from tornado.httpserver import HTTPServer
    from tornado.netutil import bind_sockets

    limit = int(settings.max_upload_mb * 2**20)
    server = HTTPServer(app, max_body_size=4 * limit + 2**20, xheaders=True)
    sockets = bind_sockets(settings.port, settings.host)
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    on_ready(f"http://{settings.host}:{port}/")
    await stop.wait()
    server.stop()
