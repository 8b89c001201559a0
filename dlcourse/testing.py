"""What the notebooks' test cells use.

Test cells never touch the student's objects: they go through ``student``.

    from dlcourse.testing import student, assert_close
    out = student.forward_trace(3.0, 5.0)          # calls the student's function
    layer = student.Linear(4, 3)                   # a handle to the student's object
    y = layer.forward(torch.randn(2, 4))           # data: a plain tensor
    n = student.run("result = sum(p.numel() for p in m.parameters())", m=model)

Whatever comes back is plain data (tensors, numbers, strings, lists, tuples,
dicts) or a handle to an object that stays with the student's code. In a
student's own notebook, and under plain ``nbgrader autograde``, ``student``
works on the notebook's own namespace. Under ``dlcourse grade`` the test cells
run in a separate, clean process and every request goes to the student's
kernel: the student's code can compute wrong answers, but it cannot change
how they are compared.

This module is the whole API of a test cell (handles, comparisons with
helpful messages, forbidden-shortcut checks, random draws), in one file of
about 550 lines because notebooks import it by this one name (and the kit
ships it); the transport behind ``student`` is :mod:`dlcourse.bridge`. What
only hidden tests use to compare models and training loops with the reference
lives in :mod:`dlcourse.grading.model_checks`, which a kit never ships (its
reference training loop is an answer).
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import contextvars
import functools
import math
import random
from typing import Callable, Iterable, Sequence

import torch

from .bridge import backends, wire
from .bridge.errors import GRADER_REPLIES
from .core.notebook import strip_magics


class StudentCodeError(Exception):
    """The student's code raised an exception while a test ran it.

    ``where`` is the student's own line that raised ("in your cell [12],
    line 4: `return x @ w`"), part of the message a student reads. The error
    a test catches is also an instance of the nearest builtin exception type
    of what the student's code raised (see :func:`student_error`), so a plain
    test's ``except ValueError:`` works.
    """

    def __init__(self, error_type: str, message: str, traceback_text: str = "", where: str = ""):
        self.error_type = error_type
        self.message = message
        self.traceback_text = traceback_text
        self.where = where
        text = f"your code raised {error_type}: {message}"
        text = f"{text} ({where})" if where else text
        super().__init__(text)
        self.args = (text,)  # OSError and friends keep no args of their own here

    def __str__(self) -> str:  # KeyError and friends would quote the message
        return str(self.args[0]) if self.args else ""


#: Builtin exception types a student's error may also be, in a test (not the BaseException-only ones:
#: ``except Exception`` in a test must not change meaning).
_MAPPABLE = {name for name in dir(builtins) if isinstance(getattr(builtins, name), type)
             and issubclass(getattr(builtins, name), Exception)}
_ERROR_CLASSES: dict[tuple[str, bool], type] = {}


def student_error(reply: dict) -> StudentCodeError:
    """The exception a test sees for a failed request: a StudentCodeError that is also the builtin type.

    The kernel names the builtin types in the MRO of what it raised (names
    only; the test's own builtins are used). A class the student defined
    becomes a stand-in named ``StudentException_<name>``, whose message names it.
    """
    args = (str(reply.get("error_type", "Error")), str(reply.get("message", "")), str(reply.get("traceback", "")),
            str(reply.get("where", "")))
    names = [b for b in reply.get("builtins", []) if type(b) is str]
    if args[0] in GRADER_REPLIES and not names:  # the student's code raised nothing: say what went wrong
        error = StudentCodeError(*args)
        error.args = (args[1],)
        return error
    student_class = not names or names[0] != args[0]
    for base in [b for b in names if b in _MAPPABLE] + [""]:
        key = (base, student_class)
        if key not in _ERROR_CLASSES:
            builtin = getattr(builtins, base) if base else Exception
            bases = (StudentCodeError, builtin) if base else (StudentCodeError,)
            name = "StudentException" if student_class else f"StudentCodeError_{base or 'Error'}"
            # OSError and friends read their arguments in __new__ (errno, filename): give them none
            body = {"__module__": __name__, "__new__": lambda cls, *a, _b=builtin, **k: _b.__new__(cls)}
            try:
                _ERROR_CLASSES[key] = type(name, bases, body)
            except TypeError:  # a layout that cannot be combined
                continue
        try:
            error = _ERROR_CLASSES[key](*args)
        except Exception:  # e.g. UnicodeDecodeError needs five arguments
            continue
        if student_class:
            error.args = (f"your code raised {args[0]} (an exception class of your notebook"
                          f"{', a ' + base if base and base != 'Exception' else ''}): {args[1]}"
                          + (f" ({args[3]})" if args[3] else ""),)
        return error
    return StudentCodeError(*args)  # pragma: no cover - the empty base always works


#: True while a plain nbgrader test cell runs: NumPy values cross as NumPy's (not as tensors).
plain_cell: contextvars.ContextVar[bool] = contextvars.ContextVar("dlcourse_plain_cell", default=False)


def _request(**request):
    if plain_cell.get():
        request["numpy"] = True
    reply = backends.current().request(request)
    if not reply["ok"]:
        raise student_error(reply)
    return _wrap(reply["value"]), reply.get("called", [])


def _wrap(value):
    if wire.is_handle(value):
        return Remote(value)
    if wire.is_numpy(value):
        return wire.decode_numpy(value)
    if type(value) in (list, tuple):
        return type(value)(_wrap(item) for item in value)
    if type(value) is dict:
        return {k: _wrap(v) for k, v in value.items()}
    return value


def _unwrap(value):
    if isinstance(value, Remote):
        return object.__getattribute__(value, "_ref")
    encoded = wire.encode_numpy(value)
    if encoded is not value:
        return encoded
    if type(value) in (list, tuple):
        return type(value)(_unwrap(item) for item in value)
    if type(value) is dict:
        return {k: _unwrap(v) for k, v in value.items()}
    return value


# --------------------------------------------------------------------------
# Handles and the `student` namespace.


class Remote:
    """A handle to an object that lives with the student's code."""

    __slots__ = ("_ref",)

    def __init__(self, ref: dict):
        object.__setattr__(self, "_ref", ref)

    def __getattr__(self, name: str):
        return _request(op="getattr", target=_unwrap(self), name=name)[0]

    def __setattr__(self, name: str, value) -> None:
        _request(op="setattr", target=_unwrap(self), name=name, value=_unwrap(value))

    def __call__(self, *args, **kwargs):
        return _request(op="call", target=_unwrap(self), args=_unwrap(list(args)), kwargs=_unwrap(kwargs))[0]

    def __text(self, kind: str, spec: str = "") -> str:
        try:
            text = _request(op="text", target=_unwrap(self), kind=kind, spec=spec)[0]
        except Exception:  # a dead or slow kernel: printing must not fail the test
            text = None
        return text if type(text) is str else "<student object>"

    def __repr__(self) -> str:
        return self.__text("repr")

    def __str__(self) -> str:
        return self.__text("str")

    def __format__(self, spec: str) -> str:
        return self.__text("format", spec)

    def __instancecheck__(self, value) -> bool:
        """``isinstance(x, StudentClass)``, answered by the student's kernel (a bool, nothing else)."""
        answer = _request(op="instancecheck", target=_unwrap(self), value=_unwrap(value))[0]
        return answer is True

    def __contains__(self, item) -> bool:
        answer = _operator("contains", self, item)
        if type(answer) is not bool:
            raise TypeError("a student's object answered `in` with something other than True or False")
        return answer

    def __setitem__(self, key, value) -> None:
        _operator("setitem", self, key, value)

    def __delitem__(self, key) -> None:
        _operator("delitem", self, key)

    def __bool__(self) -> bool:
        raise TypeError("a student's object has no truth value in a test: compare data, not objects")

    def __len__(self) -> int:
        return int(self.__len__method())

    def __len__method(self):
        return Remote.__getattr__(self, "__len__")()

    def __getitem__(self, key):
        return Remote.__getattr__(self, "__getitem__")(key)

    def __iter__(self):
        items = student.run("result = list(obj)", obj=self)
        return iter(items)


def _operator(name: str, *args):
    return _request(op="operator", name=name, args=_unwrap(list(args)))[0]


def _forward(name: str, reflected: bool = False):
    if reflected:
        return lambda self, other: _operator(name, other, self)
    return lambda self, *other: _operator(name, self, *other)


for _name in ("add", "sub", "mul", "truediv", "pow", "matmul", "floordiv", "mod"):
    setattr(Remote, f"__{_name}__", _forward(_name))
    setattr(Remote, f"__r{_name}__", _forward(_name, reflected=True))
for _name in ("neg", "pos", "abs"):
    setattr(Remote, f"__{_name}__", _forward(_name))


def _refuse_comparison(self, other):
    # A student's object could answer any comparison with True: tests compare data only.
    raise TypeError("a student's object cannot be compared in a test: compare data, not objects")


for _name in ("lt", "le", "gt", "ge"):
    setattr(Remote, f"__{_name}__", _refuse_comparison)


class Student:
    """The student's notebook, seen from a test: ``student.NAME`` is its NAME."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return _request(op="get", name=name)[0]

    def has(self, name: str) -> bool:
        """Whether the notebook defines ``name``."""
        try:
            self.__getattr__(name)
        except StudentCodeError:
            return False
        return True

    def run(self, code: str, **inputs):
        """Run ``code`` beside the student's code and return its ``result``.

        ``inputs`` become variables of the snippet; the snippet sees the
        notebook's names too. Use it for work that takes many steps (building
        a graph, a training loop): one request instead of hundreds.
        """
        return _request(op="run", code=code, inputs=_unwrap(inputs))[0]

    def run_traced(self, code: str, **inputs) -> tuple[object, list[str]]:
        """Like :meth:`run`, and also the names of the torch functions called."""
        return _request(op="run", code=code, inputs=_unwrap(inputs), trace=True)

    def source(self, name: str) -> str:
        """The source of the last cell that defines ``name`` at top level."""
        found = ""
        for source in backends.current().cell_sources():
            if name in _top_level_names(source):
                found = source
        return found


student = Student()


@functools.lru_cache(maxsize=4096)  # student.source() scans every cell, once per call
def _top_level_names(source: str) -> frozenset[str]:
    try:
        tree = ast.parse(strip_magics(source))
    except SyntaxError:
        return frozenset()
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return frozenset(names)


# --------------------------------------------------------------------------
# Comparisons with messages that help a student find the bug.


def _as_tensor(value, what: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().to(torch.float64) if value.is_floating_point() or not value.is_complex() else value
    if isinstance(value, (bool, int, float)) and type(value) in (bool, int, float):
        return torch.tensor(float(value), dtype=torch.float64)
    if type(value) in (list, tuple):
        try:
            return torch.tensor(value, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            pass
    raise AssertionError(f"{what} should be a number or a tensor, but it is {wire.describe(value)}")


def _real_scalar(value) -> float | None:
    """A plain number or a real 0-d tensor as a float64, else None (the value ``_as_tensor`` gives, as a float)."""
    if type(value) in (bool, int, float):
        return float(value)
    if type(value) is torch.Tensor and value.dim() == 0 and not value.is_complex():
        return value.item() if value.dtype == torch.float64 else float(value.detach().to(torch.float64))
    return None


def _assert_close_scalars(actual: float, expected: float, rtol: float, atol: float, name: str, hint: str) -> None:
    """``assert_close`` of two numbers: the same rule and message as for tensors, in plain float64 arithmetic."""
    if (not math.isfinite(actual) and math.isfinite(expected)) or (math.isnan(actual) and not math.isnan(expected)):
        raise AssertionError(f"{name} contains NaN or infinity. {hint}".strip())
    difference = abs(actual - expected)
    if difference > atol + rtol * abs(expected):
        raise AssertionError(
            f"{name} is wrong: got {actual:.6g}, expected {expected:.6g} "
            f"(1 of 1 entries differ; largest error {difference:.3g}). {hint}".strip())


def assert_close(actual, expected, *, rtol: float = 1e-5, atol: float = 1e-6, name: str = "the result",
                 hint: str = "") -> None:
    """Check ``actual`` against ``expected`` elementwise, with a helpful message.

    Shapes must agree exactly (no broadcasting): a (3,) vector where a (3, 1)
    column is expected is a bug worth reporting.
    """
    expected_number, actual_number = _real_scalar(expected), _real_scalar(actual)
    if expected_number is not None and actual_number is not None:  # most of A1's checks: no tensor needed
        _assert_close_scalars(actual_number, expected_number, rtol, atol, name, hint)
        return
    expected_t = _as_tensor(expected, "the expected value")
    _assert_close_tensors(_as_tensor(actual, name), expected_t, rtol, atol, name, hint)


def _assert_close_tensors(actual_t: torch.Tensor, expected_t: torch.Tensor, rtol: float, atol: float, name: str,
                          hint: str) -> None:
    if tuple(actual_t.shape) != tuple(expected_t.shape):
        raise AssertionError(
            f"{name} has shape {tuple(actual_t.shape)}, expected {tuple(expected_t.shape)}. {hint}".strip()
        )
    if expected_t.numel() == 0:
        return
    # NaN or infinity where the expected entry is finite, or NaN where it is not NaN (NaN compares as no error)
    if ((~torch.isfinite(actual_t) & torch.isfinite(expected_t)) | (actual_t.isnan() & ~expected_t.isnan())).any():
        raise AssertionError(f"{name} contains NaN or infinity. {hint}".strip())
    difference = (actual_t - expected_t).abs()
    bound = atol + rtol * expected_t.abs()
    bad = difference > bound
    if bad.any():
        index = tuple(int(i) for i in (bad.nonzero()[0] if bad.dim() else ()))
        where = f" at index {index}" if index else ""
        got = actual_t[index].item() if index else actual_t.item()
        want = expected_t[index].item() if index else expected_t.item()
        count = int(bad.sum())
        raise AssertionError(
            f"{name} is wrong{where}: got {got:.6g}, expected {want:.6g} "
            f"({count} of {bad.numel()} entries differ; largest error {difference.max().item():.3g}). {hint}".strip()
        )


def assert_equal(actual, expected, *, name: str = "the result", hint: str = "") -> None:
    """Exact equality for plain values (ints, strings, shapes, tuples)."""
    if type(actual) not in (bool, int, float, str, tuple, list, type(None)):
        raise AssertionError(f"{name} should be {expected!r}, but it is {wire.describe(actual)}. {hint}".strip())
    if actual != expected:
        raise AssertionError(f"{name} is {actual!r}, expected {expected!r}. {hint}".strip())


def assert_shape(actual, shape: Sequence[int], *, name: str = "the result") -> None:
    if not isinstance(actual, torch.Tensor):
        raise AssertionError(f"{name} should be a tensor, but it is {wire.describe(actual)}")
    if tuple(actual.shape) != tuple(shape):
        raise AssertionError(f"{name} has shape {tuple(actual.shape)}, expected {tuple(shape)}")


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """max |a - e| / max(|a| + |e|), the CS231n-style check of a gradient."""
    actual = _as_tensor(actual, "the value")
    expected = _as_tensor(expected, "the expected value")
    scale = (actual.abs() + expected.abs()).max().clamp_min(1e-12)
    return float((actual - expected).abs().max() / scale)


def numerical_gradient(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Central differences of the scalar function ``f`` at ``x`` (float64)."""
    x = x.detach().to(torch.float64).clone()
    grad = torch.zeros_like(x)
    flat, grad_flat = x.view(-1), grad.view(-1)
    for i in range(flat.numel()):
        old = flat[i].item()
        flat[i] = old + eps
        plus = float(f(x))
        flat[i] = old - eps
        minus = float(f(x))
        flat[i] = old
        grad_flat[i] = (plus - minus) / (2 * eps)
    return grad


# --------------------------------------------------------------------------
# Forbidden shortcuts: where an exercise says "elementary operations only".


def forbidden_names_in(source: str, forbidden: Iterable[str]) -> list[str]:
    """Forbidden names referred to in ``source``, by its syntax tree.

    Comments and strings do not count; attribute chains do
    (``torch.nn.functional.conv2d``, ``F.conv2d``, ``x.unfold``), and so do
    ``__import__``, ``eval``, ``exec`` and ``getattr`` with a computed name on
    a module (``getattr(torch, name)``), which would otherwise hide a call.
    ``getattr``/``setattr`` with computed names on the student's own objects
    (``setattr(layer, name, getattr(layer, name) - lr * getattr(layer, g))``)
    is ordinary Python, not a forbidden use: what it reaches at run time is
    for :meth:`Student.run_traced` to see.
    """
    return list(_forbidden_names_in(source, frozenset(forbidden)))


@functools.lru_cache(maxsize=1024)  # each student's cell is checked by several tests
def _forbidden_names_in(source: str, forbidden: frozenset[str]) -> tuple[str, ...]:
    try:
        tree = ast.parse(strip_magics(source))
    except SyntaxError:
        return ()
    found = set()
    imported = _MODULE_ROOTS | _imported_names(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in forbidden:
            found.add(node.attr)
        elif isinstance(node, ast.Name) and node.id in forbidden:
            found.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            module = node.module.split(".") if isinstance(node, ast.ImportFrom) and node.module else []
            for alias in node.names:
                for part in alias.name.split(".") + module:
                    if part in forbidden:
                        found.add(part)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            computed_getattr = node.func.id == "getattr" and (
                len(node.args) < 2 or any(isinstance(a, ast.Starred) for a in node.args)  # getattr(*where)
                or not isinstance(node.args[1], ast.Constant) and _may_be_a_module(node.args[0], imported))
            if computed_getattr or node.func.id in ("__import__", "eval", "exec", "import_module"):
                found.add(f"{node.func.id}(...)")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "import_module":
            found.add("import_module(...)")  # importlib.import_module("torch.nn.functional") hides the import
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in forbidden:
            found.add(node.value)
    return tuple(sorted(found))


#: Names that hold a module in every notebook of the course (a set-up cell imports them), or reach one.
_MODULE_ROOTS = frozenset({"torch", "nn", "F", "np", "sys", "builtins", "__builtins__", "importlib", "operator"})


def _imported_names(tree: ast.AST) -> frozenset[str]:
    """The names that ``import`` statements of ``tree`` bind (``import a.b as c`` binds c, ``import a.b`` a)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return frozenset(names)


def _may_be_a_module(target: ast.expr, modules: frozenset[str]) -> bool:
    """Whether ``getattr(target, computed)`` may fetch a forbidden function from a module.

    True when the chain ``target`` starts at a module's name or at a call
    (``vars(torch)``, ``globals()[...]``); a computed name on the student's own
    objects (``getattr(layer, name)``, ``getattr(self.fc1, grad_name)``) is
    plain Python, and what it finally calls is checked at run time
    (:meth:`Student.run_traced`).
    """
    while isinstance(target, (ast.Attribute, ast.Subscript)):
        target = target.value
    if isinstance(target, ast.Name):
        return target.id in modules
    return isinstance(target, ast.Call)


def assert_no_forbidden(name: str, forbidden_source: Iterable[str], forbidden_calls: Iterable[str] = (),
                        called: Iterable[str] = ()) -> None:
    """Fail if the cell defining ``name`` uses a forbidden shortcut.

    ``forbidden_source``: names that must not appear in the code (by syntax,
    not text). ``forbidden_calls``: torch functions (as
    ``torch.overrides.resolve_name`` gives them) that must not have run,
    checked against ``called`` from :meth:`Student.run_traced`.
    """
    source = student.source(name)
    if not source:
        raise AssertionError(f"could not find the cell that defines {name}: keep it at the top level of its cell")
    used = forbidden_names_in(source, forbidden_source)
    ran = sorted(set(called) & set(forbidden_calls))
    if used or ran:
        raise AssertionError(
            f"{name} must be written with elementary tensor operations only, but it uses "
            f"{', '.join(used + ran)}. Replace these by your own loops and arithmetic."
        )


# --------------------------------------------------------------------------
# Random draws for property tests.


def rng(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_tensor(shape: Sequence[int], seed: int, low: float = -1.0, high: float = 1.0,
                  dtype: torch.dtype = torch.float64) -> torch.Tensor:
    generator = rng(seed)
    return low + (high - low) * torch.rand(tuple(shape), generator=generator, dtype=dtype)


def random_shapes(seed: int, count: int, dims: int, low: int = 1, high: int = 6) -> list[tuple[int, ...]]:
    shapes = random.Random(seed)
    return [tuple(shapes.randint(low, high) for _ in range(dims)) for _ in range(count)]


@contextlib.contextmanager
def no_warnings():
    """Silence warnings inside a test: nbgrader scores 0 any cell writing to stderr."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


__all__ = [
    "Remote", "Student", "StudentCodeError", "assert_close", "assert_equal", "assert_no_forbidden",
    "assert_shape", "forbidden_names_in", "no_warnings", "numerical_gradient",
    "random_shapes", "random_tensor", "relative_error", "rng", "student",
]
