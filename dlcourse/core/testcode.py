"""What kind of test cell this is, read from its code alone (the grader's; no kernel needed).

Two kinds of test cell are graded:

* **dlcourse-style**: the cell imports from the ``dlcourse`` package
  (``from dlcourse.testing import student, assert_close``). It reaches the
  student only through ``dlcourse.testing.student``.
* **plain** (stock nbgrader's style): every other test cell
  (``assert squares(10) == [1, 4, ...]``). Its free names that the student's
  notebook defines resolve to the student's objects by handle
  (:mod:`dlcourse.grading.plain`).

A plain cell that handles cannot serve (:func:`kernel_reason` says why: it
inspects frames, uses magics, hands a function of its own to the student's
code, ...) runs in the student's kernel as stock nbgrader runs it: not
tamper-proof, listed in ``WARNINGS.txt``; ``c.Dlcourse.strict_tests`` in
``nbgrader_config.py`` makes ``dlcourse release`` refuse such cells.

The course's nbgrader settings that grading honours are read by
:func:`dlcourse.core.config.course_settings`. Imports :mod:`.notebook` only.
"""

from __future__ import annotations

import ast
import builtins
import functools
from dataclasses import dataclass
from pathlib import Path

from .notebook import grade_id, is_test_cell, read_notebook, strip_magics

#: Names a plain test never takes from the student's namespace: IPython's own, and the builtins (a
#: student's top-level ``len = ...`` must not change the test's ``len``).
NEVER_STUDENT_NAMES = frozenset(dir(builtins)) | {
    "In", "Out", "_", "__", "___", "_i", "_ii", "_iii", "_ih", "_oh", "_dh", "get_ipython", "exit", "quit"}

#: Calls that may take a test's own function (they run it in the test's process).
_LOCAL_CALLS = frozenset({"sorted", "min", "max", "map", "filter", "any", "all", "sum", "list", "tuple", "set",
                          "dict", "print", "len", "enumerate", "zip", "iter", "next", "callable", "isinstance"})
_FRAME_NAMES = {"inspect": "inspects frames (inspect)", "_getframe": "inspects frames (sys._getframe)",
                "globals": "reads the namespace (globals())", "locals": "reads the namespace (locals())",
                "vars": "reads the namespace (vars())", "get_ipython": "uses IPython (get_ipython)",
                "__main__": "reads the notebook's module (__main__)", "eval": "runs code from a string (eval)",
                "exec": "runs code from a string (exec)", "__builtins__": "reads __builtins__",
                "_getframemodulename": "inspects frames", "currentframe": "inspects frames",
                "__import__": "imports by a computed name (__import__)"}

_FRAME_MODULES = {"inspect": "inspects frames (inspect)", "__main__": "reads the notebook's module (__main__)",
                  "IPython": "uses IPython (IPython)"}


@functools.lru_cache(maxsize=1024)  # asked for each test cell of every submission
def is_plain(source: str) -> bool:
    """A plain nbgrader test cell: one that imports nothing from the ``dlcourse`` package."""
    try:
        tree = ast.parse(strip_magics(source))
    except SyntaxError:
        return "dlcourse" not in source
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "dlcourse" for a in node.names):
            return False
        if isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] == "dlcourse":
            return False
    return True


@functools.lru_cache(maxsize=1024)
def kernel_reason(source: str) -> str | None:
    """Why a plain test cell must run in the student's kernel, or None when handles serve it."""
    if strip_magics(source) != "\n".join(source.splitlines()):  # (a final newline is no magic)
        return "uses IPython magics or shell commands"
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None  # it fails here as it would in the kernel
    own_callables = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            own_callables.add(node.name)
        elif isinstance(node, ast.ClassDef):
            return f"defines a class ({node.name}) that the student's code could be given"
    callee_ids = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    decorators = {id(d) for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                  for d in n.decorator_list}
    local_args = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _LOCAL_CALLS:
            local_args.update(id(a) for a in node.args)
            local_args.update(id(k.value) for k in node.keywords)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in _FRAME_NAMES:
            return _FRAME_NAMES[node.id]
        if isinstance(node, ast.Attribute) and node.attr in _FRAME_NAMES:
            return _FRAME_NAMES[node.attr]
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom)
                                                       and node.module else [])
            for module in modules:
                if module.split(".")[0] in _FRAME_MODULES:
                    return _FRAME_MODULES[module.split(".")[0]]
        if isinstance(node, (ast.Await, ast.AsyncFor, ast.AsyncWith)) and _at_top_level(tree, node):
            return "awaits at the top level"
        if isinstance(node, ast.Global):
            return f"declares global {', '.join(node.names)} inside a function"
        if isinstance(node, ast.Lambda) and id(node) not in local_args:
            return "hands a lambda of its own to other code"
        if isinstance(node, ast.Name) and node.id in own_callables and isinstance(node.ctx, ast.Load) \
                and id(node) not in callee_ids and id(node) not in decorators and id(node) not in local_args:
            return f"hands its own function {node.id} to other code"
    return None


def _at_top_level(tree: ast.Module, target: ast.AST) -> bool:
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))]
    return not any(target in ast.walk(f) for f in functions)


@dataclass(frozen=True)
class CellNames:
    """The names of a plain test cell that may be the student's, and those its imports bind (the test's)."""

    candidates: frozenset[str]
    imported: frozenset[str]


def cell_names(source: str) -> CellNames:
    """Every identifier the cell reads, writes or deletes, less builtins, dunders and its own imports."""
    try:
        tree = ast.parse(strip_magics(source))
    except SyntaxError:
        return CellNames(frozenset(), frozenset())
    names, imported = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name != "*":
                    imported.add(alias.asname or alias.name.split(".")[0])
    candidates = {n for n in names - imported if n not in NEVER_STUDENT_NAMES and not n.startswith("__")}
    return CellNames(frozenset(candidates), frozenset(imported))


# --------------------------------------------------------------------------
# The cells of an assignment that must run in the kernel.


def kernel_cells(notebook_paths) -> list[tuple[str, str, str]]:
    """(notebook, grade_id, reason) of every plain test cell of these masters that runs in the kernel."""
    found = []
    for path in sorted(Path(p) for p in notebook_paths):
        for cell in read_notebook(path).cells:
            if cell.cell_type == "code" and is_test_cell(cell) and is_plain(cell.source):
                reason = kernel_reason(cell.source)
                if reason:
                    found.append((path.stem, grade_id(cell), reason))
    return found


def kernel_warning(notebook: str, cell: str, reason: str) -> str:
    """The line ``WARNINGS.txt`` and ``dlcourse grade`` give such a cell."""
    return f"{notebook} {cell}: runs in the student's kernel: not tamper-proof ({reason})"
