"""``dlcourse lab --exam NAME``: a computer-based exam sitting in JupyterLab, handed in at the deadline.

    dlcourse lab --exam final-2027 --minutes 120 --student "Ada Lovelace"

What it does:

1. **The sitting folder.** The first start copies the exam's released notebook
   (``release/NAME/exam.ipynb``, or ``NAME/exam.ipynb`` in a student kit) to
   ``exam-sitting/NAME/exam.ipynb`` with the names cell filled in from ``--student``, and
   writes ``exam-sitting/NAME/sitting.json`` with the deadline (now + ``--minutes``, by default the
   duration the exam was built with). A later
   start (after a crash, a closed terminal, a lost connection) keeps both: the notebook as last
   saved and the original deadline; no start ever gives more time.
2. **Only that notebook.** JupyterLab's root is the sitting folder and it opens the exam's
   notebook; the course's other files are not in its file browser. JupyterLab saves the
   notebook every :data:`AUTOSAVE_SECONDS` seconds (its own autosave, set in a settings folder
   of the sitting), so the saved state is never older than that.
3. **A visible countdown.** A bar at the top of the page shows the minutes left and the deadline;
   it is the lab's custom CSS, rewritten every :data:`TICK_SECONDS` seconds, so a reloaded page
   shows the right time. The terminal prints the minutes left too.
4. **Automatic hand-in.** At the deadline the server is stopped (its kernels shut down) and the
   notebook *as last saved* is handed in as ``dlcourse handin`` does: ``handin/NAME_<names>.zip``
   with the notebook and its PDF (no public tests are run: the grader grades). Stopping the lab
   early (Ctrl+C, SIGTERM) hands in the same way: it ends the sitting. A start after the
   deadline hands in at once, without starting the lab.

5. **No network for the kernel.** The kernel runs in a network namespace of its own
   (``unshare --net``; the server reaches it over Unix sockets). Where the machine does not allow
   that (no unprivileged user namespaces, not Linux) the lab says so and the kernel keeps the network.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat

from . import lab
from ..core.config import lab_token
from ..core.course import find_course_root

SITTING_DIR = "exam-sitting"
AUTOSAVE_SECONDS = 10
DEFAULT_MINUTES = 120
TICK_SECONDS = 15
_NAMES_PREFIX = "NAMES ="


class SittingError(Exception):
    """The exam cannot be sat here (no such exam, no student); the message says what to do."""


def exam_notebook_path(course_root: Path, name: str) -> Path:
    for candidate in (course_root / "release" / name / "exam.ipynb", course_root / name / "exam.ipynb"):
        if candidate.is_file():
            return candidate
    raise SittingError(f"there is no exam {name!r} here (looked for release/{name}/exam.ipynb and "
                       f"{name}/exam.ipynb in {course_root}); ask the examiner for the exam's release")


def _fill_names(notebook, student: str) -> None:
    for cell in notebook.cells:
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade_id") == "names":
            lines = [line for line in cell.source.splitlines() if not line.startswith(_NAMES_PREFIX)]
            cell.source = "\n".join(lines + [f"{_NAMES_PREFIX} {json.dumps(student)}"])
            return


def prepare_sitting(course_root: Path, name: str, minutes: float | None, student: str | None,
                    now: dt.datetime | None = None) -> tuple[Path, dict]:
    """The sitting's folder and its state (``deadline``, ``student``, ``handed_in``); made on the first start."""
    now = now or dt.datetime.now().astimezone()
    folder = course_root / SITTING_DIR / name
    state_path = folder / "sitting.json"
    if state_path.is_file():
        return folder, json.loads(state_path.read_text())
    if not student or not student.strip():
        raise SittingError('give your name: --student "Ada Lovelace"')
    notebook = nbformat.read(str(exam_notebook_path(course_root, name)), as_version=4)
    if minutes is None:  # the exam's own duration (dlcourse exam build --duration)
        minutes = notebook.metadata.get("dlcourse", {}).get("exam", {}).get("duration_minutes", DEFAULT_MINUTES)
    _fill_names(notebook, student.strip())
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, str(folder / "exam.ipynb"))
    state = {"exam": name, "student": student.strip(), "started": now.isoformat(timespec="seconds"),
             "deadline": (now + dt.timedelta(minutes=minutes)).isoformat(timespec="seconds"), "handed_in": None}
    state_path.write_text(json.dumps(state, indent=1) + "\n")
    return folder, state


def deadline_of(state: dict) -> dt.datetime:
    return dt.datetime.fromisoformat(state["deadline"])


def countdown_css(deadline: dt.datetime, now: dt.datetime) -> str:
    """The bar on top of the lab: minutes left (at most a tick old) and the deadline."""
    left = max(0, int((deadline - now).total_seconds()))
    text = f"Exam: {left // 60} min {left % 60:02d} s left (at {now:%H:%M:%S}); hand-in at {deadline:%H:%M:%S}"
    colour = "#b00020" if left < 300 else "#1d4e89"
    return ("body::before { content: %s; position: fixed; top: 0; left: 50%%; transform: translateX(-50%%); "
            "z-index: 100000; background: %s; color: #fff; font: bold 13px sans-serif; padding: 3px 14px; "
            "border-radius: 0 0 6px 6px; }\n" % (json.dumps(text), colour))


def _write_settings(folder: Path, deadline: dt.datetime) -> tuple[Path, Path]:
    config_dir, settings_dir = folder / ".jupyter-config", folder / ".lab-settings"
    (config_dir / "custom").mkdir(parents=True, exist_ok=True)
    (config_dir / "custom" / "custom.css").write_text(countdown_css(deadline, dt.datetime.now().astimezone()))
    plugin = settings_dir / "@jupyterlab" / "docmanager-extension" / "plugin.jupyterlab-settings"
    plugin.parent.mkdir(parents=True, exist_ok=True)
    plugin.write_text(json.dumps({"autosave": True, "autosaveInterval": AUTOSAVE_SECONDS}))
    return config_dir, settings_dir


#: How the sitting's kernel loses the network: a network namespace of its own (Linux user namespaces).
NO_NETWORK = ("unshare", "--net", "--map-root-user", "--")


def network_can_be_cut() -> bool:
    """Whether :data:`NO_NETWORK` works on this machine (it needs unprivileged user namespaces)."""
    if shutil.which(NO_NETWORK[0]) is None:
        return False
    try:
        return subprocess.run([*NO_NETWORK, "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def write_kernel_spec(data_dir: Path) -> Path:
    """A ``python3`` kernel spec that starts the kernel without network (found before the stock one).

    In its own network namespace the kernel cannot reach the server over TCP either, so the server talks
    to it over Unix sockets (``KernelManager.transport = ipc``), which a network namespace does not cut.
    """
    spec = data_dir / "kernels" / "python3" / "kernel.json"
    spec.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(json.dumps({
        "argv": [*NO_NETWORK, sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (exam: no network)", "language": "python"}, indent=1))
    return spec


def hand_in(course_root: Path, folder: Path, state: dict, *, stream=None) -> Path:
    """Hands in the sitting's notebook as last saved (notebook and PDF); records it in sitting.json."""
    from .handin import HandinError, format_report, handin_report

    stream = stream or sys.stdout
    # handin names the zip after the folder: a copy named after the exam, beside the sitting
    bundle = folder.parent / f".{state['exam']}-handin" / state["exam"]
    if bundle.parent.exists():
        shutil.rmtree(bundle.parent)
    bundle.mkdir(parents=True)
    shutil.copy2(folder / "exam.ipynb", bundle / "exam.ipynb")
    def report():
        return handin_report(str(bundle), state["student"], course_root=course_root, run_tests=False,
                             out_dir=course_root / "handin")

    try:
        try:
            result = report()
        except HandinError as error:  # e.g. the names cell emptied or edited: the sitting's name is used
            print(f"  ({error}; the names cell is set to {state['student']!r} in the handed-in copy)",
                  file=stream, flush=True)
            notebook = nbformat.read(str(bundle / "exam.ipynb"), as_version=4)
            _fill_names(notebook, state["student"])
            nbformat.write(notebook, str(bundle / "exam.ipynb"))
            result = report()
    finally:
        shutil.rmtree(bundle.parent, ignore_errors=True)
    print(format_report(result), file=stream, flush=True)
    state["handed_in"] = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    state["zip"] = str(result.zip_path)
    (folder / "sitting.json").write_text(json.dumps(state, indent=1) + "\n")
    return result.zip_path


def sit(course_root: Path, name: str, *, minutes: float | None, student: str | None, port: int | None = None,
        open_browser: bool = True, ip: str = "127.0.0.1", token: str | None = None, stream=None) -> Path:
    """The whole sitting: prepare (or resume), serve until the deadline or a stop, hand in. Returns the zip."""
    stream = stream or sys.stdout
    folder, state = prepare_sitting(course_root, name, minutes, student)
    deadline = deadline_of(state)
    if state.get("handed_in"):
        raise SittingError(f"exam {name} was handed in at {state['handed_in']} ({state.get('zip')})")
    if dt.datetime.now().astimezone() >= deadline:
        print(f"dlcourse lab --exam: the deadline {deadline:%H:%M:%S} has passed; handing in what was saved",
              file=stream, flush=True)
        return hand_in(course_root, folder, state, stream=stream)
    config_dir, settings_dir = _write_settings(folder, deadline)
    extra = ["--LabApp.default_url=/lab/tree/exam.ipynb", "--LabApp.custom_css=True"]
    env = lab.lab_env(course_root)
    env.update(JUPYTER_CONFIG_DIR=str(config_dir), JUPYTERLAB_SETTINGS_DIR=str(settings_dir))
    if network_can_be_cut():
        data_dir = folder / ".jupyter-data"
        write_kernel_spec(data_dir)
        env["JUPYTER_PATH"] = os.pathsep.join([str(data_dir)] + [p for p in env.get("JUPYTER_PATH", "").split(
            os.pathsep) if p])
        extra.append("--KernelManager.transport=ipc")
    else:
        print("dlcourse lab --exam: warning: this machine cannot take the network from the kernel "
              "(no unprivileged user namespaces); the kernel has the network", file=stream, flush=True)
    command = lab.lab_command(folder, port=port, open_browser=open_browser, ip=ip, instructor=False, extra=extra,
                              token=token if token is not None else lab_token())
    print(f"dlcourse lab --exam: {name} for {state['student']}, hand-in at {deadline:%H:%M:%S} "
          f"(the notebook is saved every {AUTOSAVE_SECONDS} s; Ctrl+C ends the sitting and hands in)",
          file=stream, flush=True)
    process = subprocess.Popen(command, cwd=folder, env=env, start_new_session=True)

    def stop(signum, frame):
        raise KeyboardInterrupt

    main_thread = threading.current_thread() is threading.main_thread()  # signals are the main thread's
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)} if main_thread else {}
    crashed = False
    try:
        last_tick = 0.0
        while True:
            now = dt.datetime.now().astimezone()
            if now >= deadline:
                print("dlcourse lab --exam: time is up", file=stream, flush=True)
                break
            if process.poll() is not None:
                crashed = True
                break
            if time.monotonic() - last_tick >= TICK_SECONDS:
                (config_dir / "custom" / "custom.css").write_text(countdown_css(deadline, now))
                left = int((deadline - now).total_seconds())
                print(f"  {left // 60} min {left % 60:02d} s left", file=stream, flush=True)
                last_tick = time.monotonic()
            time.sleep(min(1.0, max(0.05, (deadline - now).total_seconds())))
    except KeyboardInterrupt:
        print("dlcourse lab --exam: stopped; handing in what was saved", file=stream, flush=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
    if crashed and dt.datetime.now().astimezone() < deadline:
        raise SittingError(f"JupyterLab stopped (exit {process.returncode}) before the deadline; run the same "
                           "command again to go on: the saved notebook and the deadline are kept")
    return hand_in(course_root, folder, state, stream=stream)


# --------------------------------------------------------------------------
# `dlcourse lab`, with --exam.


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    lab.add_arguments(parser)
    parser.add_argument("--exam", default=None, metavar="NAME",
                        help="sit exam NAME: only its notebook, a countdown, hand-in at the end (see docs/exam.md)")
    parser.add_argument("--minutes", type=float, default=None,
                        help=f"with --exam: the sitting's length (default: the exam's duration, else {DEFAULT_MINUTES})")
    parser.add_argument("--student", default=None, help='with --exam: your name, e.g. "Ada Lovelace" (the names cell)')
    return parser


def run(args: argparse.Namespace) -> int:
    if not args.exam:
        return lab.run(args)
    course_root = Path(args.course_root).resolve() if args.course_root else find_course_root()
    try:
        zip_path = sit(course_root, args.exam, minutes=args.minutes, student=args.student, port=args.port,
                       open_browser=not args.no_browser, ip=args.ip)
    except SittingError as error:
        print(f"dlcourse lab --exam: {error}", file=sys.stderr)
        return 1
    print(f"dlcourse lab --exam: handed in {zip_path}")
    return 0
