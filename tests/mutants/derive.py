"""The one way to write a mutant: an anchored edit of the master's reference solution.

Every ``aN.py`` builds its mutants from the reference solutions in the master
notebooks (``source/``), so they stay in step with the master: a mistake is
the smallest edit that makes it, and an edit whose anchor is no longer in the
master (or is there twice) fails loudly at import, naming the answer cell and
the anchor.

    from mutants.derive import Reference

    reference = Reference("a2_optimisers/a2_optimisers.ipynb")
    edit = reference.edit
    MUTANTS = [("l2_penalty", "factor 1/2 missing", edit("l2_penalty", ("0.5 * weight_decay", "weight_decay")))]

Beside ``edit``: ``with_body`` replaces the body of named functions or methods
(signature and docstring kept), for mistakes that are a different approach
rather than a slip; ``with_regions`` replaces the solution regions (what a
student writes between the markers), for alternatives that share the
reference's boilerplate around them.
"""

from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

import nbformat

from dlcourse.core.notebook import grade_id, nbgrader_meta, solution_source

SOURCE = Path(__file__).resolve().parents[2] / "source"

# The solution markers of a master's answer cell (the lines dlcourse.authoring.demo.solution_source removes).
_MARKER = re.compile(r"^(\s*)### (BEGIN|END) SOLUTION\s*$")


def _answer_cells(notebooks) -> dict[str, object]:
    """grade_id -> the master's answer cell (code), over all the given notebooks (paths relative to source/)."""
    cells = {}
    for name in notebooks:
        for cell in nbformat.read(str(SOURCE / name), as_version=4).cells:
            if nbgrader_meta(cell).get("solution") and cell.cell_type == "code":
                assert grade_id(cell) not in cells, f"answer cell {grade_id(cell)!r} in two notebooks"
                cells[grade_id(cell)] = cell
    return cells


def reference_sources(*notebooks: str) -> dict[str, str]:
    """grade_id -> the reference solution of every answer (code) cell of the masters, markers removed.

    ``notebooks`` are paths relative to ``source/``; an assignment with several notebooks (A3, A4)
    passes them all. Each source ends with a newline, so an anchor may end with one on the last line.
    """
    return _sources(_answer_cells(notebooks))


def _sources(cells: dict) -> dict[str, str]:
    return {grade_id: solution_source(cell) + "\n" for grade_id, cell in cells.items()}


def _functions(source: str) -> dict[str, list[ast.FunctionDef]]:
    """name -> the function and method definitions of that name, at any depth."""
    found: dict[str, list] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.setdefault(node.name, []).append(node)
    return found


def _indent(code: str, prefix: str) -> str:
    return textwrap.indent(textwrap.dedent(code).strip("\n") + "\n", prefix, lambda line: line.strip() != "")


class Reference:
    """The reference solutions of one assignment's masters, and the edits that derive variants from them."""

    def __init__(self, *notebooks: str):
        assert notebooks, "Reference needs the assignment's master notebooks (paths relative to source/)"
        self.notebooks = notebooks
        self._cells = _answer_cells(notebooks)
        self.sources = _sources(self._cells)

    def __getitem__(self, grade_id: str) -> str:
        assert grade_id in self.sources, f"no answer cell {grade_id!r} in {', '.join(self.notebooks)}"
        return self.sources[grade_id]

    def edit(self, grade_id: str, *replacements: tuple[str, str], base: str | None = None) -> str:
        """The reference of ``grade_id`` with each ``(old, new)`` applied in turn; each old must occur exactly once.

        ``base``: edit this variant of the cell (e.g. a ``with_body`` result) instead of the reference.
        """
        source = self[grade_id] if base is None else base
        assert replacements, f"{grade_id}: an edit needs at least one (old, new) pair"
        for old, new in replacements:
            found = source.count(old)
            assert found == 1, (f"mutant anchor of {grade_id!r} found {found} times (not exactly once) "
                                f"in the master's reference: {old!r}")
            source = source.replace(old, new)
        return source

    def with_body(self, grade_id: str, base: str | None = None, **bodies: str) -> str:
        """The reference with the body of each named function or method replaced (def line and docstring kept).

        ``with_body("adam", step="...", zero_grad="...")``: each name must be defined exactly once in the
        cell; the new body may be indented any way (it is dedented). ``base`` as for ``edit``.
        """
        source = self[grade_id] if base is None else base
        assert bodies, f"{grade_id}: with_body needs at least one name=body"
        for name, body in bodies.items():
            definitions = _functions(source).get(name, [])
            assert len(definitions) == 1, (f"{grade_id}: def {name} found {len(definitions)} times "
                                           f"(not exactly once) in the master's reference")
            node = definitions[0]
            statements = node.body
            if (isinstance(statements[0], ast.Expr) and isinstance(statements[0].value, ast.Constant)
                    and isinstance(statements[0].value.value, str)):
                statements = statements[1:]
            assert statements, f"{grade_id}: def {name} has no body besides its docstring"
            lines = source.splitlines(keepends=True)
            first, last = statements[0].lineno - 1, node.end_lineno
            prefix = re.match(r"\s*", lines[first]).group(0)
            source = "".join(lines[:first]) + _indent(body, prefix) + "".join(lines[last:])
        return source

    def with_regions(self, grade_id: str, *regions: str | None) -> str:
        """The reference with its solution regions (between the markers) replaced, in order; None keeps one.

        For alternatives written as a student fills the release: the code around the regions (signatures,
        docstrings, given lines) stays the reference's. The number of regions must match the cell's.
        """
        cell = self._cells.get(grade_id)
        assert cell is not None, f"no answer cell {grade_id!r} in {', '.join(self.notebooks)}"
        out, region, inside, keep, given = [], 0, False, True, list(regions)
        for line in cell.source.splitlines():
            marker = _MARKER.match(line)
            if marker and marker.group(2) == "BEGIN":
                assert not inside, f"{grade_id}: nested solution markers"
                assert region < len(given), f"{grade_id}: more solution regions than the {len(given)} given"
                inside, keep = True, given[region] is None
                if not keep:
                    out.append(_indent(given[region], marker.group(1)).rstrip("\n"))
            elif marker:
                inside, region = False, region + 1
            elif not inside or keep:
                out.append(line)
        assert region == len(given), f"{grade_id}: the cell has {region} solution regions, {len(given)} given"
        return "\n".join(out) + "\n"
