"""The names cell: who hands in (one student, or a group of two).

Every notebook starts with ``NAMES = "..."`` (:func:`names_cell`); the hand-in
(:mod:`dlcourse.student.handin`) reads and checks it (:func:`check_names`),
and the grader's collection of hand-ins (:mod:`dlcourse.lms.collect`) reads
it to know each zip's group.
"""

from __future__ import annotations

import ast
import re
import unicodedata
from pathlib import Path

import nbformat

NAMES_VARIABLE = "NAMES"
NAMES_GRADE_ID = "names"
MAX_GROUP_SIZE = 2
NAMES_EXAMPLE = 'NAMES = "Ada Lovelace, Alan Turing"'
NAMES_SOURCE = (
    "# Your names: one student, or a group of two separated by a comma, e.g.\n"
    f"# {NAMES_EXAMPLE}\n"
    f'{NAMES_VARIABLE} = ""'
)


class HandinError(Exception):
    """The hand-in cannot go ahead; the message says what to fix."""


# --------------------------------------------------------------------------
# The names cell.


def names_cell():
    """The cell authors put first in every notebook: ``NAMES = ""``.

    A plain, unlocked code cell (nbgrader metadata: no grade, no solution, not
    locked), so students can fill it in and ``generate_assignment`` keeps it
    as it is. Use it with :mod:`dlcourse.authoring`: ``cells = [names_cell(), md(...), ...]``.
    """
    cell = nbformat.v4.new_code_cell(NAMES_SOURCE)
    cell.metadata["nbgrader"] = {"grade": False, "grade_id": NAMES_GRADE_ID, "locked": False,
                                 "schema_version": 3, "solution": False, "task": False}
    cell.metadata["tags"] = ["names"]
    return cell


def read_names(notebook) -> str | None:
    """The string assigned to ``NAMES`` in the notebook's names cell.

    Returns None when the notebook has no names cell; "" when it is empty.
    The names cell is the first code cell that assigns ``NAMES`` (normally
    the notebook's first cell).
    """
    for cell in notebook.cells:
        if cell.cell_type != "code" or NAMES_VARIABLE not in cell.source:
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            match = re.search(rf"^\s*{NAMES_VARIABLE}\s*=\s*(['\"])(.*?)\1", cell.source, re.M)
            if match:
                return match.group(2)
            raise HandinError(
                f"The names cell does not parse as Python. Write it as {NAMES_EXAMPLE}")
        for node in tree.body:
            if (isinstance(node, ast.Assign) and len(node.targets) == 1
                    and isinstance(node.targets[0], ast.Name) and node.targets[0].id == NAMES_VARIABLE):
                if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                    return node.value.value
                if (isinstance(node.value, (ast.List, ast.Tuple))
                        and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.value.elts)):
                    return ", ".join(e.value for e in node.value.elts)
                raise HandinError(
                    f"NAMES must be a plain string in quotes, e.g. {NAMES_EXAMPLE}")
    return None


_PLACEHOLDERS = {"your name", "your names", "name", "names", "todo", "...", "your name here",
                 "your names here", "first last", "firstname lastname"}


def parse_names(text: str) -> list[str]:
    """``"Ada Lovelace, Alan Turing"`` -> ``["Ada Lovelace", "Alan Turing"]`` (checked).

    Names are separated by commas, semicolons, new lines, "&" or " and ".
    Raises :class:`HandinError` for no name, a placeholder, or more than
    two students.
    """
    parts = re.split(r"[,;\n&]|\s+and\s+", text or "")
    names = [" ".join(part.split()) for part in parts]
    names = [name for name in names if name]
    if not names:
        raise HandinError("No names given.")
    for name in names:
        if name.casefold() in _PLACEHOLDERS or not any(ch.isalpha() for ch in name):
            raise HandinError(f"{name!r} is not a name. Write your real names, e.g. {NAMES_EXAMPLE}")
    if len(names) > MAX_GROUP_SIZE:
        raise HandinError(
            f"{len(names)} names given ({', '.join(names)}); a group has at most {MAX_GROUP_SIZE} "
            "students. Each group hands in its own notebook.")
    if len({name.casefold() for name in names}) < len(names):
        raise HandinError(f"A name appears twice: {', '.join(names)}")
    return names


def _same_group(a: list[str], b: list[str]) -> bool:
    return sorted(n.casefold() for n in a) == sorted(n.casefold() for n in b)


def group_slug(names: list[str]) -> str:
    """File-name-safe group name: ``Ada-Lovelace_Alan-Turing`` (ASCII only)."""
    out = []
    for name in names:
        ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
        ascii_name = re.sub(r"[^A-Za-z0-9]+", "-", ascii_name).strip("-")
        out.append(ascii_name or "student")
    return "_".join(out)


def check_names(notebooks: list[Path], names_arg: str | None) -> tuple[list[str], list[str]]:
    """The group's names, checked against every notebook's names cell."""
    warnings = []
    given = parse_names(names_arg) if names_arg is not None and names_arg.strip() else None
    found = {path.name: _names_of(path) for path in notebooks}
    cells = {name: names for name, names in found.items() if names is not None}
    reference = given
    for notebook_name, names in cells.items():
        if reference is None:
            reference = names
        elif not _same_group(reference, names):
            where = "--names" if given is not None else next(iter(cells))
            raise HandinError(
                f"The names in {notebook_name} ({', '.join(names)}) differ from those in {where} "
                f"({', '.join(reference)}). Make them the same, save, and hand in again.")
    missing = [name for name, names in found.items() if names is None]
    if reference is None:
        raise HandinError(
            f"No names: {', '.join(missing)} has no names cell. Give your names with "
            '--names "First Last, First Last" (or handin(..., names="...") in Python).')
    if cells:  # the spelling and order written in the notebook win over --names
        reference = next(iter(cells.values()))
    if missing:
        warnings.append(f"{', '.join(missing)} has no names cell; the names from --names are used "
                        "for its PDF.")
    return reference, warnings


def _names_of(path: Path) -> list[str] | None:
    """The names in ``path``'s names cell (None: it has none); refuses an unreadable notebook or empty cell."""
    try:
        notebook = nbformat.read(str(path), as_version=4)
    except Exception as error:  # not JSON, truncated by a crash, ...
        raise HandinError(f"{path.name} cannot be read as a notebook ({type(error).__name__}: "
                          f"{str(error).splitlines()[0] if str(error) else ''}). Open it in "
                          "JupyterLab, fix or restore it (File > Revert Notebook to Checkpoint), "
                          "save, and hand in again.") from None
    text = read_names(notebook)
    if text is None:
        return None
    if not text.strip():
        raise HandinError(
            f"The names cell of {path.name} is empty.\n"
            f"Open {path.name}, write your names in its first cell, e.g.\n"
            f"    {NAMES_EXAMPLE}\n"
            "(one student, or a group of two), save the notebook (Ctrl+S) and hand in again.")
    try:
        return parse_names(text)
    except HandinError as error:
        raise HandinError(f"The names cell of {path.name}: {error}") from None
