"""``dlcourse lab``: JupyterLab 4 in the course folder, nbgrader's extensions on.

    dlcourse lab                 # opens the browser; students and instructors alike
    dlcourse lab --no-browser --port 8888
    dlcourse lab --check         # only say whether everything needed is installed

The server runs in the course root (the folder with ``nbgrader_config.py``),
so the formgrader (instructors) and the Validate button (students) find the
course's configuration. nbgrader's server extensions (formgrader,
validate_assignment, assignment_list, course_list) are switched on explicitly
for this server, whatever the user's own Jupyter config says, and the
virtual environment's ``bin`` is put first on ``PATH`` (nbgrader runs
``alembic`` from there to create the gradebook).

In a student kit (``dlcourse student-kit``; :func:`dlcourse.core.course.student_kit`)
only the Validate button's extension is switched on, and the kit's
``page_config.json`` also hides the formgrader's and the instructors' panels
(:data:`STUDENT_DISABLED_PLUGINS`): a student's lab needs no masters, no
gradebook and no exchange.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ..core.course import find_course_root, student_kit

NBGRADER_SERVER_EXTENSIONS = (
    "nbgrader.server_extensions.formgrader",
    "nbgrader.server_extensions.validate_assignment",
    "nbgrader.server_extensions.assignment_list",
    "nbgrader.server_extensions.course_list",
)
#: A student kit's lab: the Validate button only.
STUDENT_SERVER_EXTENSIONS = ("nbgrader.server_extensions.validate_assignment",)
NBGRADER_LAB_EXTENSION = "@jupyter/nbgrader"
#: nbgrader's JupyterLab plugins that a student kit switches off (its page_config.json): they need the
#: formgrader, the masters or nbgrader's exchange, none of which a kit has; "validate-assignment" stays.
STUDENT_DISABLED_PLUGINS = tuple(f"{NBGRADER_LAB_EXTENSION}:{name}" for name in
                                 ("formgrader", "create-assignment", "assignment-list", "course-list"))
#: Jupyter config shipped with the course (and the student kit): labconfig/page_config.json turns
#: JupyterLab's news announcements off.
JUPYTER_CONFIG = Path(__file__).resolve().parents[1] / "jupyter_config"
NEWS_PLUGIN = "@jupyterlab/apputils-extension:announcements"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def lab_env(course_root: Path) -> dict:
    """The server's environment: the venv's tools on PATH, the course importable."""
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    paths = [str(course_root)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    # The course's JupyterLab settings first: no "get notified about news?" pop-up (page_config.json).
    configs = [str(JUPYTER_CONFIG)] + [p for p in env.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep) if p]
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(dict.fromkeys(configs))
    # On a Mac's GPU (MPS), what MPS lacks runs on the CPU: torch reads this at import, so the kernel needs it
    # from its start (dlcourse.data.MPS_FALLBACK_VARIABLE; it changes nothing elsewhere).
    env.setdefault("PYTORCH_ENABLE_MPS_FALLBACK", "1")
    return env


def _exchange_configured(course_root: Path) -> bool:
    configs = [course_root / "nbgrader_config.py", Path.home() / ".jupyter" / "nbgrader_config.py"]
    return any(path.is_file() and "Exchange.root" in path.read_text(errors="replace") for path in configs)


def exchange_dir() -> Path:
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "dlcourse-exchange"


def server_extensions(instructor: bool | None = None) -> tuple[str, ...]:
    """nbgrader's server extensions for this lab: all of them, or in a student kit the Validate button's."""
    if instructor is None:
        instructor = not student_kit()
    return NBGRADER_SERVER_EXTENSIONS if instructor else STUDENT_SERVER_EXTENSIONS


def lab_command(course_root: Path, *, port: int | None = None, token: str | None = None,
                open_browser: bool = True, ip: str = "127.0.0.1", extra: list[str] | None = None,
                instructor: bool | None = None) -> list[str]:
    """The ``jupyter lab`` command line ``dlcourse lab`` runs (``instructor``: default, not a student kit)."""
    command = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={course_root}",
               f"--ServerApp.ip={ip}", "--ServerApp.port_retries=0" if port else "--ServerApp.port_retries=50"]
    for extension in NBGRADER_SERVER_EXTENSIONS:
        enabled = extension in server_extensions(instructor)
        command.append(f"--ServerApp.jpserver_extensions={extension}={enabled}")
    if not _exchange_configured(course_root):
        # nbgrader's default exchange (/usr/local/share/...) is not writable for students, and
        # the course hands in with `dlcourse handin`; a per-user folder keeps nbgrader quiet.
        command.append(f"--Exchange.root={exchange_dir()}")
    if port:
        command.append(f"--ServerApp.port={port}")
    if token is not None:
        command.append(f"--IdentityProvider.token={token}")
    if not open_browser:
        command.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers and CI run as root
        command.append("--allow-root")
    return command + list(extra or [])


class LabServer:
    """A running ``dlcourse lab`` (for tests and scripts): ``url``, ``token``, ``stop()``."""

    def __init__(self, course_root: Path, *, port: int | None = None, token: str | None = None,
                 log_path: Path | None = None, extra: list[str] | None = None):
        self.course_root = Path(course_root).resolve()
        self.port = port or free_port()
        self.token = token if token is not None else secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "w") if log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            lab_command(self.course_root, port=self.port, token=self.token, open_browser=False, extra=extra),
            cwd=self.course_root, env=lab_env(self.course_root), stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.process.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=2) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise TimeoutError(f"JupyterLab did not answer within {timeout} s; see {self.log_path}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self._log is not subprocess.DEVNULL:
            self._log.close()

    def __enter__(self):
        self.wait_ready()
        return self

    def __exit__(self, *exc):
        self.stop()


def check() -> list[str]:
    """What is missing for ``dlcourse lab`` (empty when all is there)."""
    problems = []
    try:
        import jupyterlab

        if int(jupyterlab.__version__.split(".")[0]) < 4:
            problems.append(f"JupyterLab {jupyterlab.__version__} is too old: pip install jupyterlab==4.*")
    except ImportError:
        problems.append("JupyterLab is not installed: pip install -r requirements.lock")
    for extension in server_extensions():
        try:
            __import__(extension)
        except ImportError:
            problems.append(f"{extension} is missing: pip install nbgrader")
            break
    try:
        from jupyter_core.paths import jupyter_path

        if not any((Path(folder) / NBGRADER_LAB_EXTENSION / "package.json").is_file()
                   for folder in jupyter_path("labextensions")):
            problems.append(f"the {NBGRADER_LAB_EXTENSION} lab extension is not installed (pip install nbgrader)")
    except ImportError:
        problems.append("jupyter_core is not installed: pip install -r requirements.lock")
    return problems


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--course-root", type=Path, default=None,
                        help="course folder (default: the one with nbgrader_config.py above here)")
    parser.add_argument("--port", type=int, default=None, help="port (default: 8888 or the next free one)")
    parser.add_argument("--ip", default="127.0.0.1", help="address to listen on (default: this machine only)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")
    parser.add_argument("--check", action="store_true", help="only check that JupyterLab and nbgrader are there")
    return parser


def run(args: argparse.Namespace) -> int:
    problems = check()
    if args.check or problems:
        for problem in problems:
            print(f"dlcourse lab: {problem}", file=sys.stderr)
        if not problems:
            print("dlcourse lab: JupyterLab 4 and nbgrader's extensions are installed.")
        return 1 if problems else 0
    course_root = Path(args.course_root).resolve() if args.course_root else find_course_root()
    command = lab_command(course_root, port=args.port, open_browser=not args.no_browser, ip=args.ip)
    print(f"dlcourse lab: JupyterLab in {course_root} (Ctrl+C to stop)", flush=True)
    return run_server(command, course_root)


def run_server(command: list[str], course_root: Path) -> int:
    """Run the server until it exits; SIGTERM, SIGHUP or Ctrl+C stop it (and wait for it) first."""
    process = subprocess.Popen(command, cwd=course_root, env=lab_env(course_root), start_new_session=True)

    def stop(signum, frame):
        raise KeyboardInterrupt

    signals = [signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {sig: signal.signal(sig, stop) for sig in signals}
    try:
        return process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if process.poll() is None:
            process.terminate()  # jupyter_server shuts its kernels down on SIGTERM
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
