"""The course on Google Colab: the set-up cell every release notebook starts with, and what it calls.

Colab gives a notebook no course package, no data folder and no notebook file (the notebook lives in the
browser and in Drive, never on the runtime's disk), and it has a PyTorch of its own, built for its GPU
driver. So the first cell of each release notebook (written by :func:`setup_cell`, put there at release
time by :func:`add_setup_cell`; locked: Jupyter's ``editable``/``deletable`` are false) does, in Colab only:

1. clones the student kit (``--github OWNER/REPO`` of ``dlcourse student-kit``) to ``/content/<REPO>``;
2. :func:`setup`: installs the kit's package with ``--no-deps`` and its requirements *except* torch and
   torchvision (Colab's stay as they are), makes the package importable at once, moves into the
   assignment's folder of the kit (the data sets then land in the kit's ``data/``, where the course
   looks) and records which notebook this is (:data:`NOTEBOOK_VARIABLE`);
3. at hand-in (:func:`dlcourse.student.handin.handin`), :func:`save_notebook` writes the notebook as
   Colab holds it into the kit's folder, and :func:`offer_download` hands the zip to the browser.

Outside Colab (``google.colab`` not imported: JupyterLab, the grader) the cell does nothing. Nothing here
imports torch, so that the set-up runs before any PyTorch question arises.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import nbformat

log = logging.getLogger(__name__)

#: The tag and the metadata that mark the set-up cell (the tag finds it again; the two flags lock it).
SETUP_TAG = "colab-setup"
CELL_ID = "dlcourse-colab-setup"
LOCKED = {"editable": False, "deletable": False}
#: Which notebook of the kit this Colab runtime works on: ``release/<assignment>/<notebook>.ipynb``.
NOTEBOOK_VARIABLE = "DLCOURSE_COLAB_NOTEBOOK"
#: Colab's own PyTorch stays: the kit's requirements are installed without these.
COLAB_KEEPS = ("torch", "torchvision")
COLAB_ROOT = Path("/content")


class ColabError(RuntimeError):
    """The Colab set-up or hand-in cannot go on; the message says what to do."""


def in_colab() -> bool:
    """True in a Google Colab runtime (its kernel imports ``google.colab`` at start)."""
    return "google.colab" in sys.modules


def setup_cell(assignment: str, notebook: str, repository: str = "") -> nbformat.NotebookNode:
    """The locked first cell of a release notebook (``repository``: ``OWNER/REPO`` on GitHub, or "")."""
    name = repository.rsplit("/", 1)[-1] if repository else "dlcourse-kit"
    clone = (f'        subprocess.run(["git", "clone", "--quiet", "--depth=1", '
             f'"https://github.com/{repository}", kit], check=True)\n' if repository else
             '        raise RuntimeError("This notebook\'s kit has no GitHub address: upload the kit\'s zip to "\n'
             f'                           "Colab and unzip it into {COLAB_ROOT}/{name}, then run this cell again.")\n')
    source = (
        "# Google Colab set-up: run this cell first. Outside Colab it does nothing.\n"
        "# In Colab it fetches the course's kit, installs the course's package without changing Colab's\n"
        "# PyTorch, and tells the hand-in which notebook this is.\n"
        "import sys\n"
        'if "google.colab" in sys.modules:\n'
        "    import os, subprocess\n"
        f'    kit = os.environ.get("DLCOURSE_KIT", "{COLAB_ROOT}/{name}")\n'
        "    if not os.path.isdir(kit):\n"
        + clone +
        "    sys.path.insert(0, kit)\n"
        "    from dlcourse.student.colab import setup\n"
        f"    setup(kit, {assignment!r}, {notebook!r})\n")
    cell = nbformat.v4.new_code_cell(source)
    cell.id = CELL_ID  # the same every release: regenerating release/ changes nothing that did not change
    cell.metadata.update({**LOCKED, "tags": [SETUP_TAG]})
    return cell


def add_setup_cell(folder: Path, repository: str = "") -> list[Path]:
    """Puts (or replaces) the set-up cell first in every notebook of a release ``folder``; returns those changed."""
    folder = Path(folder)
    written = []
    for path in sorted(folder.glob("*.ipynb")):
        notebook = nbformat.read(str(path), as_version=4)
        wanted = setup_cell(folder.name, path.name, repository)
        if notebook.cells and notebook.cells[0] == wanted:
            continue  # already there: the file stays as it is, byte for byte
        notebook.cells = [cell for cell in notebook.cells if not is_setup_cell(cell)]
        notebook.cells.insert(0, wanted)
        nbformat.write(notebook, str(path))
        written.append(path)
    return written


def is_setup_cell(cell) -> bool:
    return SETUP_TAG in cell.get("metadata", {}).get("tags", [])


def colab_requirements(requirements: str) -> list[str]:
    """The kit's requirement lines without those Colab keeps its own of (:data:`COLAB_KEEPS`)."""
    import re

    kept = []
    for line in requirements.splitlines():
        line = line.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        name = re.split(r"[\s<>=!~;\[]", line, maxsplit=1)[0].lower()
        if name not in COLAB_KEEPS:
            kept.append(line)
    return kept


def _pip(*args: str) -> None:
    command = [sys.executable, "-m", "pip", "install", "--quiet", *args]
    process = subprocess.run(command, capture_output=True, text=True)
    if process.returncode != 0:
        raise ColabError(f"`pip install {' '.join(args)}` failed:\n{process.stderr[-2000:]}\n"
                         "Run the cell again; if it fails again, Runtime > Disconnect and delete runtime, "
                         "then run all cells.")


def setup(kit: str | Path, assignment: str, notebook: str) -> Path:
    """The Colab half of the set-up cell: install, make importable, move into the assignment, remember.

    Returns the assignment's folder in the kit. Never installs or upgrades torch or torchvision.
    """
    kit = Path(kit).resolve()
    requirements = kit / "requirements.txt"
    if not requirements.is_file():
        raise ColabError(f"{kit} is not the course's kit (no requirements.txt): delete it and run the cell again")
    _pip("--no-deps", "-e", str(kit))
    _pip(*colab_requirements(requirements.read_text()))
    if str(kit) not in sys.path:
        sys.path.insert(0, str(kit))  # an editable install is seen only by a new kernel; this one needs it now
    folder = kit / "release" / assignment
    os.chdir(folder)
    os.environ[NOTEBOOK_VARIABLE] = str(Path("release", assignment, notebook))
    log.warning("Colab is ready: %s of the kit in %s (torch as Colab has it).", notebook, kit)
    return folder


def notebook_path(kit: Path) -> Path | None:
    """The kit's file of the notebook this runtime works on, or None when the set-up cell has not run."""
    from ..core.config import colab_notebook  # DLCOURSE_COLAB_NOTEBOOK (NOTEBOOK_VARIABLE), read where all are

    relative = colab_notebook()
    return Path(kit) / relative if relative else None


def save_notebook(course_root: Path, timeout_s: float = 30) -> Path:
    """Writes the notebook as Colab holds it now to its place in the kit (the hand-in reads saved files)."""
    from google.colab import _message  # only in Colab

    path = notebook_path(course_root)
    if path is None:
        raise ColabError("Run the notebook's first cell (the Colab set-up) first, then hand in again.")
    reply = _message.blocking_request("get_ipynb", request="", timeout_sec=timeout_s)
    content = reply.get("ipynb") if isinstance(reply, dict) else None
    if not content:
        raise ColabError("Colab did not give the notebook's content: save it (Ctrl+S) and hand in again.")
    nbformat.write(nbformat.from_dict(json.loads(json.dumps(content))), str(path))
    return path


def offer_download(path: Path) -> None:
    """Hands ``path`` (the hand-in zip) to the browser as a download."""
    from google.colab import files  # only in Colab

    files.download(str(path))
