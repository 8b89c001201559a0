"""The student side of a test: runs requests against the notebook's namespace.

Everything here runs where the student's code runs, so nothing here is
trusted: it only computes. It answers requests (look up a name, call, get or
set an attribute, run a snippet) and replies with plain data (see
:mod:`dlcourse.wire`). Under ``dlcourse grade`` the requests come from the
checker process, which makes every comparison itself.
"""

from __future__ import annotations

import base64
import builtins
import functools
import itertools
import operator
import sys
import traceback
import types

import torch

from . import wire

_objects: dict[int, object] = {}
_ids = itertools.count(1)


def namespace() -> dict:
    """The notebook's namespace: IPython's user namespace, else ``__main__``'s."""
    try:
        return get_ipython().user_ns  # type: ignore[name-defined]  # noqa: F821
    except NameError:
        return sys.modules["__main__"].__dict__


def _handle(obj) -> dict:
    key = next(_ids)
    _objects[key] = obj
    return {wire.HANDLE_KEY: key}


def _resolve(obj):
    """Replace handles in a request by the objects they name (and NumPy data by NumPy's objects)."""
    if wire.is_handle(obj):
        return _objects[obj[wire.HANDLE_KEY]]
    if wire.is_numpy(obj):
        return wire.decode_numpy(obj)
    if type(obj) in (list, tuple):
        return type(obj)(_resolve(item) for item in obj)
    if type(obj) is dict:
        return {k: _resolve(v) for k, v in obj.items()}
    return obj


class _CallRecorder(torch.overrides.TorchFunctionMode):
    """Records the torch functions called, to spot forbidden shortcuts."""

    def __init__(self):
        super().__init__()
        self.names: set[str] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        try:
            self.names.add(torch.overrides.resolve_name(func) or getattr(func, "__name__", repr(func)))
        except Exception:  # a name is a hint only; never break the call for it
            pass
        return func(*args, **(kwargs or {}))


@functools.lru_cache(maxsize=256)
def _compiled(code: str):
    """A test's snippet, compiled once per process: a test sends the same few snippets in its loops."""
    return compile(code, "<test snippet>", "exec")


def _run(code: str, inputs: dict):
    names = dict(namespace())
    names.update(inputs)
    names.pop("result", None)
    exec(_compiled(code), names)
    return names.get("result")


def _perform(request: dict):
    op = request["op"]
    if op == "get":
        names = namespace()
        name = request["name"]
        if name not in names:
            raise NameError(f"name {name!r} is not defined: run the cell that defines it first")
        return names[name]
    if op == "getattr":
        return getattr(_resolve(request["target"]), request["name"])
    if op == "setattr":
        setattr(_resolve(request["target"]), request["name"], _resolve(request["value"]))
        return None
    if op == "call":
        return _resolve(request["target"])(*_resolve(request["args"]), **_resolve(request["kwargs"]))
    if op == "operator":
        return getattr(operator, request["name"])(*_resolve(request["args"]))
    if op == "run":
        return _run(request["code"], _resolve(request["inputs"]))
    # The ops of plain nbgrader test cells (see dlcourse.grading.plain).
    if op == "names":
        return _defined(request["names"])
    if op == "assign":
        namespace()[request["name"]] = _resolve(request["value"])
        return None
    if op == "delete":
        names = namespace()
        if request["name"] not in names:
            raise NameError(f"name {request['name']!r} is not defined")
        del names[request["name"]]
        return None
    if op == "instancecheck":
        return bool(isinstance(_resolve(request["value"]), _resolve(request["target"])))
    if op == "text":
        target = _resolve(request["target"])
        kind = request["kind"]
        text = repr(target) if kind == "repr" else str(target) if kind == "str" else format(target, request["spec"])
        return str(text)[:100_000]
    raise ValueError(f"unknown request {op!r}")


def _defined(names: list) -> dict:
    """Which of ``names`` the notebook defines: name -> the module's name for a module, else ``""``."""
    found = {}
    space = namespace()
    for name in names:
        if type(name) is str and name in space:
            value = space[name]
            module = getattr(value, "__name__", "") if isinstance(value, types.ModuleType) else ""
            found[name] = module if type(module) is str else ""
    return found


def _builtin_bases(kind: type) -> list[str]:
    """The builtin exception types in the MRO of ``kind``, nearest first (names only)."""
    return [k.__name__ for k in kind.__mro__ if getattr(builtins, k.__name__, None) is k
            and isinstance(k, type) and issubclass(k, BaseException)]


def serve(blob: bytes) -> bytes:
    """Answer one request (``wire.dumps_request``, from the grader); the reply is always plain data."""
    request = wire.loads_request(blob)
    reply: dict = {"ok": True}
    recorder = _CallRecorder() if request.get("trace") else None
    try:
        if recorder is not None:
            with recorder:
                value = _perform(request)
        else:
            value = _perform(request)
        reply["value"] = wire.to_data(value, _handle, numpy=bool(request.get("numpy")))
    except BaseException as error:  # the student's code may raise anything
        if isinstance(error, KeyboardInterrupt):
            raise
        reply = {
            "ok": False,
            "error_type": type(error).__name__,
            "message": _text(error)[:2000],
            "traceback": _student_traceback(error),
            "builtins": _builtin_bases(type(error)),
            "where": _where(error),
        }
    if recorder is not None:
        reply["called"] = sorted(recorder.names)
    return wire.dumps(reply)


def _text(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:  # a student's exception whose __str__ raises
        return f"<{type(error).__name__} that cannot be printed>"


def _student_frames(error: BaseException) -> list:
    return [frame for frame in traceback.extract_tb(error.__traceback__)
            if not frame.filename.startswith(("<test snippet>", __file__, wire.__file__))]


def _student_traceback(error: BaseException) -> str:
    """The frames of the student's own cells (not ours, not the test's)."""
    try:
        lines = traceback.format_list(_student_frames(error)) + traceback.format_exception_only(type(error), error)
    except Exception:
        lines = [f"{type(error).__name__}\n"]
    return "".join(lines)[-4000:]


def _cell_numbers() -> dict:
    """IPython's cell file name -> the cell's number (``In [12]``), when there is an IPython."""
    try:
        return dict(get_ipython().compile._filename_map)  # type: ignore[name-defined]  # noqa: F821
    except Exception:
        return {}


def _library(filename: str) -> bool:
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    return filename.startswith("<frozen") or any(filename.startswith(p + "/lib") for p in prefixes) \
        or "site-packages" in filename


def _where(error: BaseException) -> str:
    """Where in the student's code it went wrong: their last frame, as a student reads it."""
    try:
        frames = _student_frames(error)
        cells = _cell_numbers()
        own = [f for f in frames if f.filename in cells] or [f for f in frames if not _library(f.filename)]
        if not own:
            return ""
        frame = own[-1]
        place = f"in your cell [{cells[frame.filename]}]" if frame.filename in cells else f"in {frame.filename}"
        line = (frame.line or "").strip()
        return f"{place}, line {frame.lineno}" + (f": `{line[:200]}`" if line else "")
    except Exception:
        return ""


def serve_b64(request_b64: str) -> None:
    """Entry point used by the checker: reply as a display message."""
    from IPython.display import display

    reply = serve(base64.b64decode(request_b64))
    display({wire.REPLY_MIME_TYPE: base64.b64encode(reply).decode("ascii")}, raw=True)
