"""The readers of each LMS's download, for ``dlcourse collect`` (:mod:`dlcourse.lms.collect`).

One reader per source, each returning the :class:`Handin` s it found (files,
time, whom the LMS says handed it in), before any is matched to the roster:

* :func:`read_moodle`: Moodle's "Download all submissions" zip;
* :func:`read_canvas`: Canvas's "Download Submissions" zip;
* :func:`read_github`: a folder of GitHub Classroom repositories;
* :func:`read_handin_zips`: a folder of ``dlcourse handin`` zips (or one zip).

:func:`detect_source` tells them apart; :func:`read_download` picks the reader.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import subprocess
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .roster import Roster, Student

SOURCES = ("moodle", "canvas", "github", "handin")
KEPT_SUFFIXES = (".ipynb", ".pdf")

#: ``fullname_participantid_plugintype_pluginname[_rest]``: Moodle >= 4.1 names folders without the trailing "_",
#: earlier versions with it; a flat download puts the file name in ``rest``.
_MOODLE = re.compile(r"^(?P<name>.+?)_(?P<pid>\d+)_assign(?:submission|feedback)_[a-z]+(?:_(?P<rest>.*))?$")
_CANVAS = re.compile(r"^(?P<name>[a-z0-9]+?)(?P<late>_LATE)?_(?P<uid>\d+)_(?P<sid>\d+)_(?P<file>.+)$")


class CollectError(Exception):
    """Nothing can be collected from what was given; the message says why."""


@dataclass
class Handin:
    """One hand-in as the LMS delivered it, before it is matched to the roster."""

    source: str
    origin: str  # where it was in FROM
    files: dict[str, bytes]  # file name -> bytes: the notebooks and PDFs
    handed_in: dt.datetime  # aware
    account: Student | None = None  # whom the LMS says handed it in
    account_text: str = ""
    marked_late: bool = False  # the LMS said so (Canvas's _LATE)
    folder: Path | None = None  # an earlier collect's folder in submitted/ (files not read)
    # filled by collect.match_members():
    names: list[str] = field(default_factory=list)
    members: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def as_aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.astimezone()


def _zip_time(info: zipfile.ZipInfo) -> dt.datetime:
    return as_aware(dt.datetime(*info.date_time))


def _useful(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return not any(p.startswith(".") or p == "__MACOSX" for p in parts)


def _handin_zip_files(data: bytes) -> tuple[dict[str, bytes], dt.datetime | None]:
    """The notebooks and PDFs of a ``dlcourse handin`` zip, and its HANDIN.txt time."""
    files, stamp = {}, None
    with zipfile.ZipFile(io.BytesIO(data)) as bundle:
        for info in bundle.infolist():
            name = PurePosixPath(info.filename)
            if info.is_dir() or not _useful(info.filename):
                continue
            if name.suffix.lower() in KEPT_SUFFIXES:
                files[name.name] = bundle.read(info)
            elif name.name == "HANDIN.txt":
                match = re.search(r"^handed in: (.+)$", bundle.read(info).decode("utf-8", "replace"), re.M)
                if match:
                    try:
                        stamp = as_aware(dt.datetime.fromisoformat(match.group(1).strip()))
                    except ValueError:
                        pass
    return files, stamp


def _add_file(files: dict[str, bytes], name: str, data: bytes) -> None:
    """A file of a hand-in: kept if a notebook or PDF, unpacked if a hand-in zip."""
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in KEPT_SUFFIXES:
        files[PurePosixPath(name).name] = data
    elif suffix == ".zip":
        try:
            files.update(_handin_zip_files(data)[0])
        except zipfile.BadZipFile:
            pass


def read_moodle(path: Path, roster: Roster) -> list[Handin]:
    """Moodle's "Download all submissions" zip (in folders or not)."""
    found: dict[str, Handin] = {}
    with zipfile.ZipFile(path) as download:
        for info in download.infolist():
            if info.is_dir() or not _useful(info.filename):
                continue
            parts = PurePosixPath(info.filename).parts
            match = _MOODLE.match(parts[0]) if len(parts) > 1 else _MOODLE.match(parts[-1])
            if not match or (len(parts) == 1 and not match["rest"]):
                continue
            key = f"{match['name']}_{match['pid']}"
            if key not in found:
                account = roster.by_lms_id(match["pid"]) or roster.match_name(match["name"]).student
                found[key] = Handin("moodle", parts[0] if len(parts) > 1 else key, {}, _zip_time(info), account,
                                    f"{match['name']} (participant {match['pid']})")
            handin = found[key]
            handin.handed_in = max(handin.handed_in, _zip_time(info))
            _add_file(handin.files, parts[-1] if len(parts) > 1 else match["rest"], download.read(info))
    return list(found.values())


def read_canvas(path: Path, roster: Roster) -> list[Handin]:
    """Canvas's "Download Submissions" zip: ``lastnamefirstname[_LATE]_userid_submissionid_file``."""
    found: dict[str, Handin] = {}
    with zipfile.ZipFile(path) as download:
        for info in download.infolist():
            if info.is_dir() or not _useful(info.filename):
                continue
            base = PurePosixPath(info.filename).name
            match = _CANVAS.match(base)
            if not match:
                continue
            key = match["uid"]
            if key not in found:
                account = roster.by_lms_id(match["uid"]) or roster.match_name(match["name"]).student
                found[key] = Handin("canvas", f"{match['name']}_{match['uid']}", {}, _zip_time(info), account,
                                    f"{match['name']} (user {match['uid']})")
            handin = found[key]
            handin.handed_in = max(handin.handed_in, _zip_time(info))
            handin.marked_late = handin.marked_late or bool(match["late"])
            # Canvas appends "-1", "-2" to a re-uploaded file's name: the file is still the notebook
            original = re.sub(r"-\d+(\.[A-Za-z0-9]+)$", r"\1", match["file"])
            _add_file(handin.files, original, download.read(info))
    return list(found.values())


def _git_time(repo: Path) -> dt.datetime | None:
    if not (repo / ".git").exists():
        return None
    process = subprocess.run(["git", "-C", str(repo), "log", "-1", "--format=%cI"], capture_output=True,
                             text=True, timeout=60)
    if process.returncode != 0 or not process.stdout.strip():
        return None
    return dt.datetime.fromisoformat(process.stdout.strip())


def read_github(path: Path, roster: Roster, assignment: str) -> list[Handin]:
    """A folder of repositories ``<assignment>-<user or team>/`` (``gh classroom clone student-repos``)."""
    handins = []
    for repo in sorted(p for p in Path(path).iterdir() if p.is_dir() and not p.name.startswith(".")):
        owner = repo.name[len(assignment) + 1:] if repo.name.startswith(assignment + "-") else repo.name
        files = {}
        newest = None
        for file in sorted(repo.rglob("*")):
            relative = file.relative_to(repo)
            if file.is_file() and _useful(str(relative)):
                if file.suffix.lower() in KEPT_SUFFIXES + (".zip",):
                    _add_file(files, file.name, file.read_bytes())
                moment = dt.datetime.fromtimestamp(file.stat().st_mtime).astimezone()
                newest = moment if newest is None or moment > newest else newest
        stamp = _git_time(repo) or newest or dt.datetime.now().astimezone()
        account = roster.by_github(owner) or roster.match_name(owner).student
        handins.append(Handin("github", repo.name, files, stamp, account, f"{owner} (GitHub)"))
    return handins


def read_handin_zips(path: Path) -> list[Handin]:
    """A folder of ``dlcourse handin`` zips; the time is HANDIN.txt's (else the file's)."""
    handins = []
    for file in sorted(Path(path).glob("*.zip")):
        try:
            files, stamp = _handin_zip_files(file.read_bytes())
        except zipfile.BadZipFile:
            handins.append(Handin("handin", file.name, {}, dt.datetime.fromtimestamp(file.stat().st_mtime).astimezone()))
            continue
        stamp = stamp or dt.datetime.fromtimestamp(file.stat().st_mtime).astimezone()
        handins.append(Handin("handin", file.name, files, stamp))
    return handins


def detect_source(path: Path) -> str:
    """Which LMS's download ``path`` is."""
    path = Path(path)
    if path.is_dir():
        if any(path.glob("*.zip")):
            return "handin"
        return "github"
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as download:
            names = [PurePosixPath(n).parts[0] for n in download.namelist() if _useful(n)]
        if any(_MOODLE.match(n) for n in names):
            return "moodle"
        if any(_CANVAS.match(PurePosixPath(n).name) for n in names):
            return "canvas"
        return "handin"
    raise CollectError(f"{path} is neither a zip file nor a folder")


def read_download(path: Path, source: str, roster: Roster, assignment: str) -> list[Handin]:
    path = Path(path)
    if source == "moodle":
        return read_moodle(path, roster)
    if source == "canvas":
        return read_canvas(path, roster)
    if source == "github":
        return read_github(path, roster, assignment)
    if path.is_file():  # one hand-in zip
        files, stamp = _handin_zip_files(path.read_bytes())
        return [Handin("handin", path.name, files, stamp or dt.datetime.fromtimestamp(path.stat().st_mtime).astimezone())]
    return read_handin_zips(path)
