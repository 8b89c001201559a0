"""Notebook cells as nbgrader marks them, and notebooks read and written safely.

The one home of "is this a test cell / an answer cell / a manual cell /
locked": every step of the course (release checks, grading, feedback,
hand-in, the demo and the tests) asks these predicates rather than reading
``metadata.nbgrader`` itself.

nbgrader's cell kinds, by their ``metadata.nbgrader`` flags:

=============  =========  ========  ======================================
kind           ``grade``  ``solution``  what it is
=============  =========  ========  ======================================
answer         no         yes       code the student writes (autograded by test cells)
manual         yes        yes       a written answer graded by hand
test           yes        no        autograded checks (code cells only)
locked         no         no        read-only text or set-up with a ``grade_id``
=============  =========  ========  ======================================
"""

from __future__ import annotations

import functools
import io
import os
import re
import tempfile
import tokenize
from pathlib import Path

import nbformat

_SOLUTION_LINE = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$")
#: IPython's ``name = !command`` and ``name = %magic``.
_MAGIC_ASSIGNMENT = re.compile(r"^(\s*[A-Za-z_][\w.]*(?:\s*,\s*[A-Za-z_][\w.]*)*\s*=\s*)[!%]")


def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def grade_id(cell) -> str | None:
    return nbgrader_meta(cell).get("grade_id") or None


def is_test_cell(cell) -> bool:
    meta = nbgrader_meta(cell)
    return bool(meta.get("grade")) and not meta.get("solution") and cell.get("cell_type") == "code"


def is_manual_cell(cell) -> bool:
    meta = nbgrader_meta(cell)
    return bool(meta.get("grade")) and bool(meta.get("solution"))


def is_answer_cell(cell) -> bool:
    """A cell the student fills in that test cells grade (not a written answer)."""
    meta = nbgrader_meta(cell)
    return bool(meta.get("solution")) and not meta.get("grade")


def is_graded_cell(cell) -> bool:
    """A cell that carries points: a test cell or a manual cell."""
    return is_test_cell(cell) or is_manual_cell(cell)


def is_locked_cell(cell) -> bool:
    """A marked cell the student may not change: neither an answer nor a test."""
    meta = nbgrader_meta(cell)
    return bool(meta.get("grade_id")) and not meta.get("solution") and not is_test_cell(cell)


def cell_points(cell) -> float:
    return float(nbgrader_meta(cell).get("points", 0) or 0)


def cell_source(cell) -> str:
    """A cell's source as one string (nbformat allows a list of lines)."""
    source = cell.get("source", "") if isinstance(cell, dict) else ""
    return "".join(source) if isinstance(source, list) else str(source)


def solution_source(cell) -> str:
    """A master answer cell with its ``### BEGIN/END SOLUTION`` lines removed."""
    return "\n".join(line for line in cell_source(cell).splitlines() if not _SOLUTION_LINE.match(line))


@functools.lru_cache(maxsize=4096)  # tests ask about the same cells many times
def strip_magics(source: str) -> str:
    """Python source with IPython's line magics and shell escapes made inert.

    A line that starts a statement with ``%`` or ``!`` (``%matplotlib inline``,
    ``%%time``, ``!pip install``) becomes ``pass`` at the same indentation
    (and ``files = !ls`` becomes ``files = None``), so
    the source still parses (also where the magic is a block's only statement)
    and keeps its line numbers. A line inside brackets that merely begins
    with ``%`` (the modulo operator of a continued expression) is left alone,
    as IPython leaves it.
    """
    lines = source.splitlines()
    starts = _statement_starts(source)
    out = []
    for number, line in enumerate(lines, start=1):
        stripped = line.lstrip()
        starts_statement = starts is None or number in starts
        if stripped.startswith(("%", "!")) and starts_statement:
            line = line[:len(line) - len(stripped)] + "pass"
        elif starts_statement and _MAGIC_ASSIGNMENT.match(line):
            line = _MAGIC_ASSIGNMENT.match(line).group(1) + "None"  # files = !ls
        out.append(line)
    return "\n".join(out)


def _statement_starts(source: str) -> set[int] | None:
    """Numbers of the lines on which a statement starts; None if the source cannot be tokenized."""
    starts, at_start = set(), True
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.NEWLINE:
                at_start = True
            elif token.type not in (tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT,
                                    tokenize.ENDMARKER):
                if at_start:
                    starts.add(token.start[0])
                at_start = False
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None
    return starts


# nbformat.v4's new_output/new_code_cell/new_markdown_cell check each node against the JSON schema
# (about 3 ms each, a tenth of grading a notebook); these build the same nodes unchecked. A graded
# notebook is still checked whole, once, when it is written.
_OUTPUT_DEFAULTS = {"stream": {"name": "stdout", "text": ""},
                    "display_data": {"metadata": {}, "data": {}},
                    "execute_result": {"metadata": {}, "data": {}, "execution_count": None},
                    "error": {"ename": "NotImplementedError", "evalue": "", "traceback": []}}


def new_output(output_type: str, **fields):
    """``nbformat.v4.new_output`` without its schema check (for the grader's own, well-formed outputs)."""
    node = nbformat.NotebookNode(output_type=output_type)
    node.update(_OUTPUT_DEFAULTS[output_type])
    node.update(fields)
    return node


def new_cell(cell_type: str, source: str):
    """``nbformat.v4.new_code_cell``/``new_markdown_cell``/``new_raw_cell`` without the schema check."""
    from nbformat.corpus.words import generate_corpus_id

    node = nbformat.NotebookNode(id=generate_corpus_id(), cell_type=cell_type, metadata={}, source=source)
    if cell_type == "code":
        node.update(execution_count=None, outputs=[])
    return node


def read_notebook(path: Path):
    """The notebook at ``path``, or raise ValueError saying why it is unreadable."""
    try:
        notebook = nbformat.read(str(path), as_version=4)
    except Exception as error:  # JSON errors, wrong types, binary junk
        raise ValueError(f"the notebook file cannot be read: {type(error).__name__}: {error}"[:500]) from error
    if not isinstance(notebook.get("cells"), list):
        raise ValueError("the notebook file has no list of cells")
    return notebook


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write ``path`` so that a reader sees the old file or the new one, never half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data.encode() if isinstance(data, str) else data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
