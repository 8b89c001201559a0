"""``dlcourse collect ASSIGNMENT FROM``: an LMS download into nbgrader's ``submitted/``.

``FROM`` is one of (found out from what it holds, or ``--source``):

* **moodle**: the zip of Moodle's "Download all submissions": a folder (or a
  file-name prefix) per participant, ``Full Name_<participant id>_assignsubmission_file_``;
* **canvas**: the zip of Canvas's "Download Submissions": files named
  ``lastnamefirstname[_LATE]_<user id>_<submission id>_<file name>``;
* **github**: a folder of GitHub Classroom repositories as ``gh classroom
  clone student-repos`` writes them: ``<assignment>-<user or team>/``;
* **handin**: a folder of ``dlcourse handin`` zips (``<assignment>_<names>.zip``).

A hand-in may hold the notebooks and PDFs themselves or a ``dlcourse handin``
zip. Its group is the names cell of its notebook (:func:`dlcourse.student.handin.read_names`),
matched to ``roster.csv``; without a names cell, the LMS's own account (the
participant, the Canvas user, the GitHub user) is the student. The group's
hand-in goes to ``submitted/<representative>/<assignment>/`` (the member
first on the roster), with ``.dlcourse-collected.json`` (when, from where,
who); ``reports/<assignment>/groups.csv`` lists the members.

For each student the newest hand-in wins, also against what an earlier
collect put in ``submitted/``; an older one is reported, never copied over
a newer one. Everything is written to ``reports/<assignment>/collect.csv``;
what needs a person (a name not on the roster or ambiguous, a student in two
groups, two hand-ins for one student, a group smaller than the course
requires, a hand-in without a notebook) also to ``WARNINGS.txt``.

It is about 500 lines because it reads four layouts; each has its own small
reader here, next to the one matching and newest-wins step they share, so
that what "collected" means is read in one place.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import shutil
import subprocess
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import nbformat

from ..core.course import CourseLayout
from ..student.handin import HandinError, parse_names, read_names
from ..core.notebook import atomic_write
from .roster import COLLECT_WARNINGS_NAME, Group, Roster, Student, required_group_size, write_groups

COLLECTED_NAME = ".dlcourse-collected.json"
SOURCES = ("moodle", "canvas", "github", "handin")
KEPT_SUFFIXES = (".ipynb", ".pdf")
REPORT_COLUMNS = ["source", "origin", "handed_in", "late", "names", "student_ids", "group", "representative",
                  "action", "reason"]

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
    # filled by resolve():
    names: list[str] = field(default_factory=list)
    members: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass
class CollectReport:
    rows: list[dict]
    warnings: list[str]
    groups: list[Group]
    files: list[Path]


# --------------------------------------------------------------------------
# Reading each LMS's download.


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.astimezone()


def _zip_time(info: zipfile.ZipInfo) -> dt.datetime:
    return _aware(dt.datetime(*info.date_time))


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
                        stamp = _aware(dt.datetime.fromisoformat(match.group(1).strip()))
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


def previous_handins(layout: CourseLayout, assignment: str) -> tuple[list[Handin], set[str]]:
    """What earlier collects put in ``submitted/``, and the students whose folders were put there by hand."""
    earlier, by_hand = [], set()
    if not layout.submitted.is_dir():
        return earlier, by_hand
    for student in layout.students(assignment):
        folder = layout.submission_dir(student, assignment)
        stamp_file = folder / COLLECTED_NAME
        if not stamp_file.is_file():
            by_hand.add(student)
            continue
        data = json.loads(stamp_file.read_text())
        handin = Handin("previous", data.get("origin", ""), {}, dt.datetime.fromisoformat(data["handed_in"]),
                        folder=folder)
        handin.members = list(data.get("claimed", data.get("members", [student])))  # all it named, not what it won
        handin.names = list(data.get("names", []))
        handin.problems = list(data.get("problems", []))
        handin.marked_late = bool(data.get("marked_late", False))
        handin.source = data.get("source", "previous")
        earlier.append(handin)
    return earlier, by_hand


# --------------------------------------------------------------------------
# Matching to the roster and choosing, per student, the newest hand-in.


def _notebooks(handin: Handin) -> dict[str, bytes]:
    return {n: d for n, d in handin.files.items() if n.lower().endswith(".ipynb")}


def match_members(handin: Handin, roster: Roster) -> None:
    """Fill ``names``, ``members`` and ``problems`` from the names cell (else the LMS's account)."""
    text = None
    for name, data in sorted(_notebooks(handin).items()):
        try:
            text = read_names(nbformat.reads(data.decode("utf-8"), as_version=4))
        except HandinError as error:
            handin.problems.append(f"{name}: {error}")
        except Exception as error:  # not a notebook: grading reports it; the names come from the LMS
            handin.problems.append(f"{name} cannot be read as a notebook ({type(error).__name__})")
        if text is not None and text.strip():
            break
    names: list[str] = []
    if text is not None and text.strip():
        try:
            names = parse_names(text)
        except HandinError:  # e.g. three names: list them all, the group-size check reports it
            names = [" ".join(p.split()) for p in re.split(r"[,;\n&]|\s+and\s+", text) if p.strip()]
    handin.names = names
    members = []
    for name in names:
        match = roster.match_name(name)
        if match.student is None:
            handin.problems.append(match.problem)
        elif match.student.student_id not in members:
            members.append(match.student.student_id)
    if not names:
        if handin.account is not None:
            members = [handin.account.student_id]
            handin.problems.append("no names in the names cell; taken as the hand-in of "
                                   f"{handin.account.name} ({handin.account.student_id}), who uploaded it")
        else:
            handin.problems.append("no names in the names cell, and the uploader "
                                   f"{handin.account_text or '(unknown)'} is not on the roster")
    elif not members and handin.account is not None:
        members = [handin.account.student_id]
        handin.problems.append(f"none of the names is on the roster; taken as the hand-in of "
                               f"{handin.account.name} ({handin.account.student_id}), who uploaded it")
    handin.members = roster.sort_ids(members)


def collect(layout: CourseLayout, assignment: str, download: Path, *, source: str | None = None,
            deadline: dt.datetime | None = None, group_size: int | None = None) -> CollectReport:
    """The whole ``dlcourse collect``: read, match, choose the newest, write ``submitted/`` and the report."""
    layout.require_assignment(assignment)
    roster = Roster.of_course(layout)
    download = Path(download)
    if not download.exists():
        raise CollectError(f"{download} does not exist")
    source = source or detect_source(download)
    if source not in SOURCES:
        raise CollectError(f"unknown source {source!r} (one of {', '.join(SOURCES)})")
    size = group_size if group_size is not None else required_group_size(layout)
    deadline = _aware(deadline) if deadline is not None else None

    new = read_download(download, source, roster, assignment)
    for handin in new:
        match_members(handin, roster)
    earlier, by_hand = previous_handins(layout, assignment)
    rows, warnings = [], []

    def row(handin: Handin, action: str, reason: str, members=None, group: Group | None = None) -> dict:
        late = deadline is not None and handin.handed_in > deadline or handin.marked_late
        return {"source": handin.source, "origin": handin.origin,
                "handed_in": handin.handed_in.isoformat(timespec="seconds"), "late": "yes" if late else "no",
                "names": "; ".join(handin.names), "student_ids": " ".join(members if members is not None
                                                                            else handin.members),
                "group": group.name if group else "", "representative": group.representative if group else "",
                "action": action, "reason": reason}

    # newest first: a student's first claim is their hand-in
    candidates = sorted(earlier + new, key=lambda h: (h.handed_in, h.folder is not None), reverse=True)
    owner: dict[str, Handin] = {}
    claims: dict[str, list[Handin]] = {}
    for handin in candidates:
        for member in handin.members:
            claims.setdefault(member, []).append(handin)
            owner.setdefault(member, handin)
    for student, handins in sorted(claims.items()):
        groups_seen = {tuple(h.members) for h in handins}
        if len(groups_seen) < 2:
            continue  # the same group uploaded again (or by each member): the newest counts, collect.csv says so
        winner = handins[0]
        for older in handins[1:]:
            if tuple(older.members) != tuple(winner.members):
                warnings.append(f"two hand-ins claim {student}: {winner.source} {winner.origin} "
                                f"({winner.handed_in:%Y-%m-%d %H:%M}) is taken, {older.source} {older.origin} "
                                f"({older.handed_in:%Y-%m-%d %H:%M}) is older and not graded for {student}")
        listed = "; ".join(" + ".join(g) for g in sorted(groups_seen))
        warnings.append(f"{student} is in two groups ({listed}); graded with the newest hand-in "
                        f"({winner.source} {winner.origin})")

    winners: list[tuple[Handin, list[str]]] = []
    for handin in candidates:
        mine = [m for m in handin.members if owner.get(m) is handin and m not in by_hand]
        taken = [m for m in handin.members if m not in mine]
        for m in handin.members:
            if m in by_hand:
                warnings.append(f"{layout.submission_dir(m, assignment)} was not written by dlcourse collect; "
                                f"left alone, so {handin.source} {handin.origin} is not collected for {m}")
        for problem in handin.problems:  # an earlier collect's too: WARNINGS.txt lists all that is graded
            warnings.append(f"{handin.source} {handin.origin}: {problem}")
        if handin.folder is None and not _notebooks(handin):
            warnings.append(f"{handin.source} {handin.origin}: no notebook in the hand-in; nothing collected")
            rows.append(row(handin, "no-notebook", "no .ipynb file"))
            continue
        if not handin.members:
            rows.append(row(handin, "unmatched", "; ".join(handin.problems) or "no student"))
            continue
        if not mine:
            if handin.folder is None:
                rows.append(row(handin, "superseded", _newer(handin, taken, owner)))
            continue
        winners.append((handin, mine))

    groups: list[Group] = []
    plans = []
    for handin, mine in winners:
        members = roster.sort_ids(mine)
        group = Group("+".join(members), members[0], tuple(members))
        groups.append(group)
        reasons = list(handin.problems)
        dropped = [m for m in handin.members if m not in mine and m in owner and owner[m] is not handin]
        if dropped:
            reasons.append(_newer(handin, dropped, owner))
        named = len(handin.names) or len(members)
        if named < size:
            text = (f"group {group.name} has {named} member{'s' if named != 1 else ''}; the course requires "
                    f"{size} (c.Dlcourse.group_size)")
            warnings.append(f"{handin.source} {handin.origin}: {text}")
            reasons.append(text)
        elif named > size:
            text = f"group {group.name} names {named} students; the course allows {size}"
            warnings.append(f"{handin.source} {handin.origin}: {text}")
            reasons.append(text)
        if deadline is not None and handin.handed_in > deadline or handin.marked_late:
            reasons.append("late" + (f" (deadline {deadline:%Y-%m-%d %H:%M})" if deadline else " (marked by the LMS)"))
        plans.append((handin, group))
        action = "kept" if handin.folder is not None else "collected"
        rows.append(row(handin, action, "; ".join(reasons), members, group))

    _write_submitted(layout, assignment, plans, earlier)
    folder = layout.reports / assignment
    out = io.StringIO()
    writer = csv.DictWriter(out, REPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(folder / "collect.csv", out.getvalue())
    warnings = list(dict.fromkeys(warnings))
    atomic_write(folder / COLLECT_WARNINGS_NAME, "".join(w + "\n" for w in warnings))
    files = [folder / "collect.csv", write_groups(layout, assignment, groups)]
    if warnings:
        atomic_write(folder / "WARNINGS.txt", "\n".join(warnings) + "\n")
        files.append(folder / "WARNINGS.txt")
    return CollectReport(rows, warnings, groups, files)


def _newer(handin: Handin, students: list[str], owner: dict[str, Handin]) -> str:
    """Why ``handin`` is not graded for ``students``: which newer hand-in each has."""
    parts = []
    for student in students:
        newer = owner.get(student)
        if newer is None or newer is handin:
            continue
        same = " of the same group" if tuple(newer.members) == tuple(handin.members) else ""
        if newer.handed_in == handin.handed_in and same:
            parts.append(f"{student}: already collected from {newer.source} {newer.origin}")
            continue
        parts.append(f"{student}: older than {newer.source} {newer.origin}{same} "
                     f"({newer.handed_in:%Y-%m-%d %H:%M})")
    return "; ".join(parts) or "left alone (see WARNINGS.txt)"


def _write_submitted(layout: CourseLayout, assignment: str, plans: list[tuple[Handin, Group]],
                     earlier: list[Handin]) -> None:
    """Earlier collects' folders out of the way, then each group's hand-in under its representative."""
    parked = {}
    for index, handin in enumerate(earlier):
        spot = layout.submitted / f".collect-parked-{index}"
        if spot.exists():
            shutil.rmtree(spot)
        handin.folder.rename(spot)
        parked[id(handin)] = spot
        try:
            handin.folder.parent.rmdir()  # the student's folder, now empty
        except OSError:
            pass
    for handin, group in plans:
        target = layout.submission_dir(group.representative, assignment)
        if id(handin) in parked:
            target.parent.mkdir(parents=True, exist_ok=True)
            parked.pop(id(handin)).rename(target)
            data = json.loads((target / COLLECTED_NAME).read_text())
        else:
            target.mkdir(parents=True, exist_ok=True)
            for name, content in sorted(handin.files.items()):
                (target / name).write_bytes(content)
            data = {"source": handin.source, "origin": handin.origin,
                    "handed_in": handin.handed_in.isoformat(timespec="seconds"), "names": handin.names,
                    "claimed": handin.members, "problems": handin.problems, "marked_late": handin.marked_late}
        data["members"] = list(group.members)
        atomic_write(target / COLLECTED_NAME, json.dumps(data, indent=1))
    for spot in parked.values():  # superseded: every member has a newer hand-in
        shutil.rmtree(spot)


def parse_deadline(text: str) -> dt.datetime:
    """``2026-12-01 12:00`` or ISO 8601 (local time unless it says otherwise)."""
    try:
        return _aware(dt.datetime.fromisoformat(text.strip().replace(" ", "T", 1)))
    except ValueError:
        raise CollectError(f"--deadline {text!r}: write it as 2026-12-01T12:00 (ISO 8601)") from None


def format_summary(report: CollectReport) -> str:
    counts: dict[str, int] = {}
    for r in report.rows:
        counts[r["action"]] = counts.get(r["action"], 0) + 1
    late = sum(1 for r in report.rows if r["late"] == "yes" and r["action"] in ("collected", "kept"))
    students = sum(len(g.members) for g in report.groups)
    parts = ", ".join(f"{n} {a}" for a, n in sorted(counts.items()))
    return f"{len(report.groups)} group(s), {students} student(s): {parts}; {late} late"
