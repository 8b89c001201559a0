"""Plain nbgrader test cells, graded in the grader's process (or, where they must, in the student's kernel).

A plain test cell (see :func:`dlcourse.core.testcode.is_plain`) uses the
student's names directly: ``assert squares(10) == [1, 4, ...]``. It runs
here with a :class:`PlainNamespace` as its globals, a ``dict`` whose item
access CPython uses for the cell's top-level names (``LOAD_NAME``,
``STORE_NAME``, ``DELETE_NAME``) and for the free names of its functions
(``LOAD_GLOBAL``):

* a name the student's notebook defines (asked once per cell, op ``names``)
  is fetched live (op ``get``): plain data, or a handle
  (:class:`dlcourse.testing.Remote`) to an object that stays in the kernel;
  a student's module is the grader's own import of that module;
* storing to such a name sets it in the student's namespace (``assign``),
  ``del`` deletes it there (``delete``): nbgrader's "does ``sum_of_squares``
  call ``squares``" idiom works;
* every other name, and every name the cell's imports bind, is the test's.

An exception of the student's code arrives as a
:class:`dlcourse.testing.StudentCodeError` that is also the builtin type
(``except ValueError:`` works). The cell is scored by stock nbgrader's rules
(:func:`score_outputs`): an error or output on stderr (after the course's
ignore pattern) scores 0; a final expression's number is partial credit.

A cell that :func:`dlcourse.core.testcode.kernel_reason` sends to the kernel
runs there as stock nbgrader runs it (:func:`run_in_kernel`).

While a plain cell runs here it sees what it would see in stock nbgrader's
kernel (:class:`CellFolder`): ``NBGRADER_EXECUTION=autograde`` and the
notebook's folder as its working directory. That folder is a grader-private
copy of the student's (regular files only, refreshed before each cell and after
each request that may run the student's code), never
the folder the student's code can write to while the test runs: a symlink,
a FIFO or a file swapped in mid-test cannot reach the grader's files or hang it.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import io
import os
import re
import shutil
import stat
import sys
from pathlib import Path

from .. import testing
from ..bridge import backends, wire
from ..core.notebook import new_output, strip_magics
from ..core.testcode import NEVER_STUDENT_NAMES, cell_names
from ..sandbox.scratch import make_dir

#: Modules a student's name may stand for that the grader never imports for it (side effects on import).
_NEVER_IMPORT = frozenset({"antigravity", "this", "__main__", "__hello__", "__phello__", "idlelib", "turtle",
                           "tkinter", "webbrowser"})


class PlainNamespace(dict):
    """The test cells' globals: the student's names by handle, the test's own names here."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._student: dict[str, str] = {}  # this cell's names the student defines -> module name or ""
        self._shadow: dict[str, object] = {}  # data this cell stored to a student's name (read back as stored)
        self._absent: set[str] = set()  # names asked for in this cell that the student does not define
        self._active = False  # a plain cell is running (a dlcourse-style cell never asks the student)

    def begin(self, source: str) -> None:
        """Ask the student's side which of the cell's names it defines."""
        names = cell_names(source)
        self._shadow, self._student, self._absent = {}, {}, set(names.candidates)
        self._active = True
        if names.candidates:
            found = testing._request(op="names", names=sorted(names.candidates))[0]
            if type(found) is dict:
                self._student = {str(k): v if type(v) is str else "" for k, v in found.items()
                                 if k in names.candidates}
        self._absent -= set(self._student)

    def end(self) -> None:
        self._student, self._shadow, self._absent, self._active = {}, {}, set(), False

    def _ask(self, name: str) -> bool:
        """Whether the student defines ``name``, a free name of a function an earlier test cell defined."""
        if not self._active or name in self._absent or name in NEVER_STUDENT_NAMES or name.startswith("__") \
                or dict.__contains__(self, name):
            return False
        found = testing._request(op="names", names=[name])[0]
        if type(found) is dict and name in found:
            self._student[name] = found[name] if type(found[name]) is str else ""
            return True
        self._absent.add(name)
        return False

    # -- the item access CPython uses for the cell's names ------------------

    def __getitem__(self, name):
        if name in self._shadow:
            return self._shadow[name]
        if name in self._student or self._ask(name):
            module = self._student[name]
            if module:
                imported = _grader_module(module)
                if imported is not None:
                    return imported
            return testing._request(op="get", name=name)[0]
        return dict.__getitem__(self, name)

    def __setitem__(self, name, value) -> None:
        if name in self._student:
            testing._request(op="assign", name=name, value=_sendable(name, value))
            self._student[name] = ""
            if isinstance(value, testing.Remote):
                self._shadow.pop(name, None)
            else:
                self._shadow[name] = value
            return
        dict.__setitem__(self, name, value)

    def __delitem__(self, name) -> None:
        if name in self._student:
            self._shadow.pop(name, None)
            testing._request(op="delete", name=name)
            return
        dict.__delitem__(self, name)


def _sendable(name: str, value):
    """``value`` as it can cross to the student's namespace, or a TypeError saying why not."""
    if _is_data(value):
        return testing._unwrap(value)
    raise TypeError(f"the test cannot give {name} an object of its own ({type(value).__name__}) "
                    f"outside the student's kernel")


def _is_data(value) -> bool:
    import torch

    if isinstance(value, testing.Remote) or value is None or type(value) in (bool, int, float, complex, str, bytes):
        return True
    if wire.encode_numpy(value) is not value or type(value) is torch.Tensor:
        return True
    if type(value) in (list, tuple):
        return all(_is_data(v) for v in value)
    if type(value) is dict:
        return all(type(k) in (str, int) and _is_data(v) for k, v in value.items())
    return False


def _grader_module(name: str):
    """The grader's own import of module ``name`` (never a file of the submission), or None."""
    if not name or name.split(".")[0] in _NEVER_IMPORT:
        return None
    if name in sys.modules:
        return sys.modules[name]
    try:
        spec = importlib.util.find_spec(name.split(".")[0])
    except (ImportError, ValueError):
        return None
    origin = getattr(spec, "origin", None) or ""
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    if spec is None or not (origin in ("built-in", "frozen") or any(origin.startswith(p) for p in prefixes)):
        return None
    try:
        return importlib.import_module(name)
    except Exception:
        return None


# --------------------------------------------------------------------------
# Running a plain cell here, and scoring it as stock nbgrader does.


class _Failure(Exception):
    pass


def run_plain_cell(source: str, namespace: PlainNamespace, backend: backends.Backend, ignore_pattern: str = "",
                   describe_error=None, folder: CellFolder | None = None) -> list:
    """Run a plain test cell here; its outputs as nbformat outputs (as the kernel would have shown them).

    ``describe_error(error) -> (ename, text)`` words an exception for the student. ``folder``: the
    notebook's folder and environment as stock nbgrader's kernel has them (:class:`CellFolder`).
    """
    out, err = io.StringIO(), io.StringIO()
    outputs: list = []
    token = testing.plain_cell.set(True)
    surroundings = folder.entered() if folder is not None else contextlib.nullcontext()
    backend = _Refreshing(backend, folder) if folder is not None else backend
    try:
        with surroundings, backends.using(backend), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                namespace.begin(source)
                value = _execute(strip_magics(source), namespace)
                result = None if value is None else _display_text(value)
            except KeyboardInterrupt:
                raise
            except BaseException as error:  # noqa: B036 - sys.exit in a test is the test's failure
                ename, text = describe_error(error) if describe_error else (type(error).__name__, str(error))
                result, failure = None, (ename, text)
            else:
                failure = None
            finally:
                namespace.end()
    finally:
        testing.plain_cell.reset(token)
    if out.getvalue():
        outputs.append(new_output("stream", name="stdout", text=out.getvalue()))
    if err.getvalue():
        outputs.append(new_output("stream", name="stderr", text=err.getvalue()))
    if failure is not None:
        outputs.append(new_output("error", ename=failure[0], evalue=failure[1][:2000],
                                  traceback=[f"{failure[0]}: {failure[1][:2000]}"]))
    elif result is not None:
        outputs.append(new_output("execute_result", data={"text/plain": result}, execution_count=None))
    return apply_ignore_pattern(outputs, ignore_pattern)


def _execute(source: str, namespace: dict):
    """Run ``source``; the value of its last statement when that is an expression (IPython's display)."""
    tree = ast.parse(source)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, "<test cell>", "exec"), namespace)
    if last is None:
        return None
    return eval(compile(ast.Expression(last.value), "<test cell>", "eval"), namespace)


def _display_text(value) -> str:
    if isinstance(value, testing.Remote):
        return "<student object>"  # a student's repr never decides a grade
    try:
        return repr(value)
    except Exception:
        return f"<{type(value).__name__}>"


def apply_ignore_pattern(outputs: list, pattern: str) -> list:
    """nbgrader's IgnorePattern: drop stderr outputs that match ``pattern``."""
    if not pattern:
        return outputs
    return [o for o in outputs if not (o.get("output_type") == "stream" and o.get("name") == "stderr"
                                       and re.search(pattern, _text(o.get("text", ""))))]


def _text(text) -> str:
    return text if isinstance(text, str) else "".join(text)


def partial_grade(text: str, max_points: float) -> float:
    """nbgrader's get_partial_grade: a number in ``[0, max_points]`` is the score, anything else full marks."""
    try:
        grade = float(text)
    except (TypeError, ValueError):
        return max_points
    if grade != grade:  # NaN: nbgrader's comparisons fall through to "greater than max"
        raise ValueError("partial credit cannot be greater than maximum points for cell")
    if grade >= 0.0:
        if grade > max_points:
            raise ValueError("partial credit cannot be greater than maximum points for cell")
        return grade
    return max_points


def score_outputs(outputs: list, max_points: float) -> tuple[float, str]:
    """nbgrader's determine_grade for a test cell's outputs: (score, message for the student)."""
    for output in outputs:
        kind = output.get("output_type")
        if kind == "error":
            ename, evalue = output.get("ename", "Error"), output.get("evalue", "")
            ours = evalue.startswith(("your code", "the test", "the notebook", "a check"))
            return 0.0, evalue if ours else f"{ename}: {evalue}" if evalue else ename
        if kind == "stream" and output.get("name") == "stderr":
            return 0.0, "the test wrote to stderr (stock nbgrader scores that 0): " + _text(output.get("text", ""))[:500]
        if kind == "execute_result":
            text = _text(output.get("data", {}).get("text/plain", ""))
            try:
                score = partial_grade(text, max_points)
            except ValueError as error:
                return 0.0, f"the test's result {text[:100]} is not a valid partial grade: {error}"
            return score, "" if score == max_points else f"partial credit: {score:g} of {max_points:g}"
    return max_points, ""


def run_in_kernel(session, source: str, timeout: float, ignore_pattern: str = ""):
    """Run a test cell in the student's kernel, as stock nbgrader runs it: (outputs, CellRun)."""
    run = session.execute(source, timeout=timeout)
    return apply_ignore_pattern(list(run.outputs), ignore_pattern), run


# --------------------------------------------------------------------------
# What a plain cell sees around it: stock nbgrader's environment and the notebook's folder.


#: What stock ``nbgrader autograde`` sets while it runs a notebook (``utils.setenv`` in its converter).
STOCK_ENVIRONMENT = {"NBGRADER_EXECUTION": "autograde"}
#: The most the test's copy of the notebook's folder holds (files, and bytes); the rest is not copied.
FOLDER_FILE_LIMIT = 10_000
FOLDER_BYTE_LIMIT = 200 * 2**20


class _Refreshing:
    """A backend whose every request that may run the student's code is followed by a refresh of the test's
    copy of the folder: a file the student's code writes (``save(model, "m.pt")``) is there when the test opens
    it, as in stock's kernel."""

    _NO_CODE = frozenset({"names"})  # asks which names exist: runs none of the student's code

    def __init__(self, backend, folder: CellFolder):
        self._backend, self._folder = backend, folder

    def request(self, request: dict) -> dict:
        reply = self._backend.request(request)
        if request.get("op") not in self._NO_CODE:
            self._folder.refresh()
        return reply

    def __getattr__(self, name):
        return getattr(self._backend, name)


class CellFolder:
    """The notebook's folder as a plain test cell in the grader's process sees it.

    ``workdir`` is the folder the student's kernel runs in (and may write to at any moment). The test
    gets a private copy of its regular files, brought up to date before each cell by
    :meth:`refresh`: read through directory descriptors without following a link
    (:func:`os.fwalk`, ``O_NOFOLLOW``), FIFOs, sockets and devices skipped, at most
    :data:`FOLDER_FILE_LIMIT` files and :data:`FOLDER_BYTE_LIMIT` bytes. While a cell runs it is
    brought up to date again after each request that may run the student's code (:class:`_Refreshing`).
    """

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.copy: Path | None = None
        self._copied: dict[str, tuple[int, int]] = {}  # relative path -> (size, mtime_ns) when copied

    def refresh(self) -> None:
        """Bring the private copy up to date with the student's folder."""
        if self.copy is None:
            self.copy = Path(make_dir("dlcourse-work-"))  # a copy of a submission's folder, as the workdir is
        seen: set[str] = set()
        budget = [FOLDER_FILE_LIMIT, FOLDER_BYTE_LIMIT]
        for folder, _, files, folder_fd in os.fwalk(self.workdir, follow_symlinks=False):
            relative_folder = os.path.relpath(folder, self.workdir)
            for name in sorted(files):
                if budget[0] <= 0:
                    return self._forget(seen, complete=False)
                budget[0] -= 1
                relative = os.path.normpath(os.path.join(relative_folder, name))
                if self._copy_file(name, folder_fd, relative, budget):
                    seen.add(relative)
        self._forget(seen, complete=True)

    def _copy_file(self, name: str, folder_fd: int, relative: str, budget: list[int]) -> bool:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder_fd)
        except OSError:  # a link, or gone
            return False
        with os.fdopen(fd, "rb") as source:
            info = os.fstat(source.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_size > budget[1]:
                return False
            budget[1] -= info.st_size
            stamp = (info.st_size, info.st_mtime_ns)
            target = self.copy / relative
            if self._copied.get(relative) == stamp and target.is_file():
                return True
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as copied:
                shutil.copyfileobj(source, copied)
            self._copied[relative] = stamp
        return True

    def _forget(self, seen: set[str], complete: bool) -> None:
        """Remove from the copy the files the student's folder no longer has (after a complete walk)."""
        if not complete:
            return
        for relative in set(self._copied) - seen:
            (self.copy / relative).unlink(missing_ok=True)
            del self._copied[relative]

    @contextlib.contextmanager
    def entered(self):
        """Stock's environment and the folder's copy as the working directory, for one cell."""
        self.refresh()
        previous_dir, previous_env = os.getcwd(), {k: os.environ.get(k) for k in STOCK_ENVIRONMENT}
        # the folder's modules are the student's: never importable by the grader's own imports
        previous_path = list(sys.path)
        sys.path[:] = [p for p in sys.path if p not in ("", ".") and Path(p).resolve() != self.copy.resolve()]
        os.environ.update(STOCK_ENVIRONMENT)
        os.chdir(self.copy)
        try:
            yield self.copy
        finally:
            os.chdir(previous_dir)
            sys.path[:] = previous_path
            for key, value in previous_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def close(self) -> None:
        if self.copy is not None:
            shutil.rmtree(self.copy, ignore_errors=True)
            self.copy = None
