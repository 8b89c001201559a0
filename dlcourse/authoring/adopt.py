"""``dlcourse adopt PATH``: bring an existing nbgrader course into this course.

What comes over, and how (nothing of the other course is changed; its gradebook is read from a copy):

* **assignments**: every ``<their source>/<assignment>/`` folder with a notebook, all its files (their
  ``CourseDirectory.ignore`` patterns and ours left out), into ``source/<assignment>/``. An assignment
  already here with the same files is left alone ("unchanged"); one with other files is a conflict.
* **configuration**: their ``nbgrader_config.py`` is saved as ``nbgrader_config.adopted.py`` beside
  ours (nbgrader never reads that name); the settings of theirs that change how notebooks are released
  and graded (:data:`MERGED_SECTIONS`: solution and hidden-test delimiters and stubs, execution
  timeouts, stderr ignore patterns, output limits, locked cells) are appended to our
  ``nbgrader_config.py`` in one marked block, *unless ours sets them already*: then ours is kept and
  the report names both values. Folder settings (``CourseDirectory``: root, folders, database) are
  never taken: this course's layout stays as it is.
* **students** of their gradebook (id, first and last name, email, LMS id) into our gradebook. A
  student already here is never changed: the same details are "unchanged", other details a conflict
  that keeps ours and is reported.

Conflicting assignments or a different ``nbgrader_config.adopted.py`` refuse the whole adoption
(nothing is written) unless ``rename`` is given: then theirs go to the first free name
``<name>_adopted``, ``<name>_adopted2``, ... Running it again is safe: what is already here is
"unchanged". ``dry_run`` reports without writing.
"""

from __future__ import annotations

import fnmatch
import hashlib
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..core.course import CONFIG_NAME, CourseLayout, read_config

ADOPTED_CONFIG = "nbgrader_config.adopted.py"
BLOCK_BEGIN = "# >>> dlcourse adopt"
BLOCK_END = "# <<< dlcourse adopt"
#: Sections of nbgrader's configuration that change what a release holds or how a notebook is graded.
MERGED_SECTIONS = ("ClearSolutions", "ClearHiddenTests", "ClearMarkingScheme", "ClearOutput", "LockCells",
                   "Execute", "IgnorePattern", "LimitOutput", "OverwriteCells", "CheckCellMetadata")
STUDENT_FIELDS = ("first_name", "last_name", "email", "lms_user_id")
_ALWAYS_IGNORED = (".ipynb_checkpoints", "__pycache__", "*.pyc")


class AdoptRefused(Exception):
    """The course cannot be adopted as asked; the message says why and what to do."""


@dataclass
class AdoptReport:
    """What :func:`adopt` did (or, with ``dry_run``, would do): one line per thing."""

    copied: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    not_taken: list[str] = field(default_factory=list)
    dry_run: bool = False

    def text(self) -> str:
        lines = [f"dlcourse adopt{' (dry run: nothing written)' if self.dry_run else ''}:"]
        for title, items in (("copied", self.copied), ("changed", self.changed), ("unchanged", self.unchanged),
                             ("conflicts (ours kept)", self.conflicts), ("not taken", self.not_taken)):
            if items:
                lines.append(f"{title}:")
                lines.extend(f"  {item}" for item in items)
        assignments = [line.split()[1] for line in self.copied if line.startswith("assignment ")]
        if assignments:
            lines.append("next: " + "; ".join(f"dlcourse release {name}" for name in assignments))
        return "\n".join(lines)


# -- their course ------------------------------------------------------------------------------------

def load_config(path: Path):
    """The traitlets Config of an ``nbgrader_config.py`` (the file is run, as nbgrader runs it)."""
    try:
        return read_config(path)
    except Exception as error:
        raise AdoptRefused(f"cannot read {path}: {type(error).__name__}: {error}") from error


def _setting(config, section: str, name: str, default=None):
    return config[section][name] if section in config and name in config[section] else default


def _settings(config) -> dict[tuple[str, str], object]:
    return {(section, name): value for section in config if isinstance(config[section], dict)
            for name, value in config[section].items()}


def _folder(config, root: Path, name: str, default: str) -> Path:
    """One of their folders; a relative one is taken from ``root``, the folder given (their
    ``CourseDirectory.root`` often names where the course lived years ago)."""
    folder = Path(_setting(config, "CourseDirectory", name, default))
    return folder if folder.is_absolute() else root / folder


def _database(config, root: Path) -> Path | None:
    """Their gradebook's SQLite file, or None when it is not SQLite or not there."""
    url = _setting(config, "CourseDirectory", "db_url", "") or "sqlite:///gradebook.db"
    if not url.startswith("sqlite:///"):
        return None
    path = Path(url[len("sqlite:///"):])
    if not path.is_absolute():
        path = root / path
    return path if path.is_file() else None


def _ignored(name: str, patterns) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in patterns)


def _files(folder: Path, patterns) -> dict[str, bytes]:
    """Relative path -> sha256 of every file of ``folder`` but the ignored ones (no links)."""
    files = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(_ignored(part, patterns) for part in relative.parts) or path.is_symlink() or not path.is_file():
            continue
        files[relative.as_posix()] = hashlib.sha256(path.read_bytes()).digest()
    return files


def _read_students(database: Path) -> list[dict]:
    """Their students, read from a copy of the gradebook (nbgrader may upgrade a database it opens)."""
    from nbgrader.api import Gradebook

    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "gradebook.db"
        shutil.copyfile(database, copy)
        with Gradebook(f"sqlite:///{copy}") as gradebook:
            return [{"id": s.id, **{f: getattr(s, f) for f in STUDENT_FIELDS}} for s in gradebook.students]


# -- the plan ----------------------------------------------------------------------------------------

@dataclass
class _Plan:
    assignments: list[tuple[Path, str]] = field(default_factory=list)  # (their folder, our name)
    config_target: str | None = None
    block: str = ""
    students: list[dict] = field(default_factory=list)


def _free_name(existing: Path, base: str, same) -> tuple[str, bool]:
    """The first of ``base_adopted``, ``base_adopted2``, ... that is free or already holds the same files."""
    for number in range(1, 1000):
        name = f"{base}_adopted" + (str(number) if number > 1 else "")
        if not (existing / name).exists():
            return name, False
        if same(existing / name):
            return name, True
    raise AdoptRefused(f"no free name for {base!r} in {existing}")


def _merge_block(theirs_path: Path, theirs, ours, report: AdoptReport) -> str:
    lines = []
    ours_settings = _settings(ours)
    for (section, name), value in sorted(_settings(theirs).items()):
        key = f"{section}.{name}"
        if section not in MERGED_SECTIONS:
            report.not_taken.append(f"{key} = {value!r} (this course's own; see {ADOPTED_CONFIG})")
        elif (section, name) in ours_settings and ours_settings[(section, name)] != value:
            report.conflicts.append(f"setting {key}: ours {ours_settings[(section, name)]!r} kept, "
                                    f"theirs {value!r}")
        elif not _literal(value):
            report.not_taken.append(f"{key}: not a plain value ({type(value).__name__}); see {ADOPTED_CONFIG}")
        elif (section, name) not in ours_settings:
            lines.append(f"c.{key} = {value!r}")
    if not lines:
        return ""
    return "\n".join([f"{BLOCK_BEGIN}: settings of {theirs_path} (all of it: {ADOPTED_CONFIG})", *lines,
                      BLOCK_END]) + "\n"


def _literal(value) -> bool:
    import ast

    try:
        return ast.literal_eval(repr(value)) == value
    except (ValueError, SyntaxError):
        return False


def _strip_block(text: str) -> str:
    """Our config without a block an earlier adoption appended."""
    if BLOCK_BEGIN not in text:
        return text
    start = text.index(BLOCK_BEGIN)
    end = text.find(BLOCK_END, start)
    end = len(text) if end < 0 else text.index("\n", end) + 1 if "\n" in text[end:] else len(text)
    return text[:start].rstrip("\n") + "\n" + text[end:].lstrip("\n")


def adopt(layout: CourseLayout, path: Path, *, rename: bool = False, dry_run: bool = False) -> AdoptReport:
    """Copy another nbgrader course's assignments, config and students into ``layout``'s course.

    Raises :class:`AdoptRefused` (nothing written) when ``path`` is not an nbgrader course, this
    course has no ``nbgrader_config.py``, or an assignment or the saved config conflicts and
    ``rename`` is not given.
    """
    theirs_root = Path(path).resolve()
    ours_config_path = layout.root / CONFIG_NAME
    theirs_config_path = theirs_root / CONFIG_NAME
    if theirs_root == layout.root:
        raise AdoptRefused(f"{theirs_root} is this course itself")
    if not ours_config_path.is_file():
        raise AdoptRefused(f"{layout.root} has no {CONFIG_NAME}: run inside a dlcourse course (or pass --course)")
    theirs = load_config(theirs_config_path) if theirs_config_path.is_file() else None
    from traitlets.config import Config

    theirs = theirs if theirs is not None else Config()
    source = _folder(theirs, theirs_root, "source_directory", "source")
    if not source.is_dir():
        raise AdoptRefused(f"{theirs_root} is not an nbgrader course: it has no {source.name}/ folder of "
                           f"assignments")
    patterns = (*_ALWAYS_IGNORED, *(_setting(theirs, "CourseDirectory", "ignore", []) or []))
    report = AdoptReport(dry_run=dry_run)
    plan = _Plan()
    refusals: list[str] = []
    _plan_assignments(layout, source, patterns, rename, plan, report, refusals)
    _plan_config(layout, theirs_root, theirs, rename, plan, report, refusals)
    _plan_students(layout, theirs_root, theirs, plan, report)
    if refusals:
        raise AdoptRefused("nothing adopted, because:\n  " + "\n  ".join(refusals))
    if not dry_run:
        _apply(layout, theirs_config_path, plan, patterns)
    return report


def _plan_assignments(layout, source: Path, patterns, rename: bool, plan: _Plan, report: AdoptReport,
                      refusals: list[str]) -> None:
    """Which of their assignment folders to copy, and under which name."""
    for folder in sorted(p for p in source.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = _files(folder, patterns)
        if not any(name.endswith(".ipynb") and "/" not in name for name in files):
            continue
        same = lambda target, files=files: _files(target, patterns) == files  # noqa: E731
        target = layout.source / folder.name
        if not target.exists():
            plan.assignments.append((folder, folder.name))
            report.copied.append(f"assignment {folder.name} ({len(files)} files) -> source/{folder.name}/")
        elif same(target):
            report.unchanged.append(f"assignment {folder.name}: source/{folder.name}/ holds the same files")
        elif rename:
            name, already = _free_name(layout.source, folder.name, same)
            if already:
                report.unchanged.append(f"assignment {folder.name}: already adopted as source/{name}/")
            else:
                plan.assignments.append((folder, name))
                report.copied.append(f"assignment {name} ({len(files)} files) -> source/{name}/ "
                                     f"(renamed: source/{folder.name}/ here has other files)")
        else:
            refusals.append(f"assignment {folder.name}: source/{folder.name}/ here has other files "
                            f"(compare them, or pass --rename to adopt it as {folder.name}_adopted)")


def _plan_config(layout, theirs_root: Path, theirs, rename: bool, plan: _Plan, report: AdoptReport,
                 refusals: list[str]) -> None:
    """Where to save their config, and the block of their settings for ours."""
    ours_config_path = layout.root / CONFIG_NAME
    theirs_config_path = theirs_root / CONFIG_NAME
    if theirs_config_path.is_file():
        ours_text = ours_config_path.read_text()
        base = _strip_block(ours_text)
        ours = _config_of_text(layout.root, base)
        same_bytes = theirs_config_path.read_bytes()
        names = [ADOPTED_CONFIG, *(f"nbgrader_config.adopted{n}.py" for n in range(2, 1000))]
        target = next(n for n in names
                      if not (layout.root / n).exists() or (layout.root / n).read_bytes() == same_bytes)
        if target != ADOPTED_CONFIG and not (layout.root / target).exists() and not rename:
            refusals.append(f"{ADOPTED_CONFIG} here holds another course's config (pass --rename to save "
                            f"this one beside it as {target})")
        if (layout.root / target).exists():
            report.unchanged.append(f"{CONFIG_NAME} of {theirs_root}: already saved as {target}")
        else:
            plan.config_target = target
            report.copied.append(f"{CONFIG_NAME} of {theirs_root} -> {target} (nbgrader does not read it)")
        block = _merge_block(theirs_config_path, theirs, ours, report)
        if block and target != ADOPTED_CONFIG:
            report.not_taken.append(f"its settings: {CONFIG_NAME} holds those of the course saved as "
                                    f"{ADOPTED_CONFIG}; copy what you need from {target}")
        elif block:
            new_text = base.rstrip("\n") + "\n\n" + block
            if new_text == ours_text:
                report.unchanged.append(f"{CONFIG_NAME}: already holds their settings")
            else:
                plan.block = new_text
                report.changed.extend(f"{CONFIG_NAME}: {line[2:]}" for line in block.splitlines()
                                      if line.startswith("c."))
    else:
        report.not_taken.append(f"no {CONFIG_NAME} in {theirs_root}: nbgrader's defaults were theirs")


def _plan_students(layout, theirs_root: Path, theirs, plan: _Plan, report: AdoptReport) -> None:
    """Their gradebook's students that are new here; the ones here with other details are conflicts."""
    database = _database(theirs, theirs_root)
    if database is None:
        report.not_taken.append(f"no SQLite gradebook found for {theirs_root}: no students adopted")
    else:
        from ..grading.gradebook import open_gradebook
        from nbgrader.api import MissingEntry

        students = _read_students(database)
        ours_db = layout.root / "gradebook.db"
        known = {}
        if ours_db.exists():
            with open_gradebook(layout) as gradebook:
                for student in students:
                    try:
                        mine = gradebook.find_student(student["id"])
                    except MissingEntry:
                        continue
                    known[student["id"]] = {f: getattr(mine, f) for f in STUDENT_FIELDS}
        for student in students:
            details = {f: student[f] for f in STUDENT_FIELDS}
            if student["id"] not in known:
                plan.students.append(student)
                report.copied.append(f"student {student['id']} ({_name(details)})")
            elif known[student["id"]] == details:
                report.unchanged.append(f"student {student['id']}")
            else:
                differ = ", ".join(f"{f}: ours {known[student['id']][f]!r}, theirs {details[f]!r}"
                                   for f in STUDENT_FIELDS if known[student["id"]][f] != details[f])
                report.conflicts.append(f"student {student['id']}: {differ}")


def _name(details: dict) -> str:
    name = " ".join(p for p in (details.get("first_name"), details.get("last_name")) if p)
    return ", ".join(p for p in (name, details.get("email")) if p) or "no name"


def _config_of_text(root: Path, text: str):
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / CONFIG_NAME
        path.write_text(text)
        return load_config(path)


def _apply(layout: CourseLayout, theirs_config: Path, plan: _Plan, patterns) -> None:
    def ignore(folder, names):
        return [n for n in names if _ignored(n, patterns) or (Path(folder) / n).is_symlink()]

    layout.source.mkdir(parents=True, exist_ok=True)
    for folder, name in plan.assignments:
        partial = layout.source / f".{name}.adopting"
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(folder, partial, ignore=ignore, symlinks=False)
        partial.rename(layout.source / name)
    if plan.config_target:
        shutil.copyfile(theirs_config, layout.root / plan.config_target)
    if plan.block:
        from ..core.notebook import atomic_write

        atomic_write(layout.root / CONFIG_NAME, plan.block)
    if plan.students:
        from ..grading.gradebook import open_gradebook

        with open_gradebook(layout) as gradebook:
            for student in plan.students:
                gradebook.add_student(student["id"], **{f: student[f] for f in STUDENT_FIELDS})
