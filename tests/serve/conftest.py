"""Fixtures of the service's tests: a tiny course with a roster, a real PostgreSQL, the database kinds.

``database_kind`` is parametrised: every test that takes it runs on SQLite and
on PostgreSQL. PostgreSQL is Debian's (``scripts/setup.sh`` installs it),
started in a temporary folder as the ``postgres`` user when the tests run as
root (the server refuses root; pytest-postgresql starts it as the current
user, so it cannot be used here), on a free loopback port, and stopped at the
end of the session.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
from serve_helpers import ROSTER, TinyCourse


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server of its own: yields the URL of its ``postgres`` database."""
    binaries = _postgres_bin()
    if binaries is None:
        pytest.fail("PostgreSQL is not installed: run scripts/setup.sh (it installs Debian's postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="dlcourse-pg-"))
    user = "postgres" if os.geteuid() == 0 else None
    if user:
        account = pwd.getpwnam(user)
        os.chown(folder, account.pw_uid, account.pw_gid)

    def as_owner(*command: str) -> None:
        prefix = ["runuser", "-u", user, "--"] if user else []
        subprocess.run(prefix + list(command), check=True, capture_output=True, timeout=120)

    port = _free_port()
    data = folder / "data"
    as_owner(str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
    as_owner(str(binaries / "pg_ctl"), "-D", str(data), "-w", "-l", str(folder / "log"), "-o",
             f"-k {folder} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        as_owner(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_kind(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def tiny_template(tmp_path_factory) -> TinyCourse:
    """The tiny course, built and released once, with a roster."""
    course = TinyCourse.build(tmp_path_factory.mktemp("serve-template") / "course")
    (course.root / "roster.csv").write_text(ROSTER)
    return course


