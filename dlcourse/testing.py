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
helpful messages, forbidden-shortcut checks, models and training loops compared
with a reference, random draws), in one long file (over 800 lines) because
notebooks import it by this one name (and the kit ships it); the
transport behind ``student`` is :mod:`dlcourse.bridge`.
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
# Models graded by what they compute: the student's and the reference on the same weights.

#: Runs on either side, the very same steps: builds ``model`` from MAKE, matches its layers with the reference's by
#: the shapes of their parameters, in order (the first left of each shape: layers declared in another order than
#: they are used still match when their shapes tell them apart; single parameters, and the floating buffers, the
#: same way when whole layers cannot be matched), draws the weights from ``seed``, and records
#: one forward and one backward pass. The weights are drawn on each side, not sent, and the gradients come back as
#: every k-th entry: a VGG16 has 15 M weights.
_MODEL_RUN = """
model = (MAKE).to(dtype)


def matched(items, wanted, shape_of):
    # the items in the reference's order: each takes the first one left of its shape (declaration order aside)
    left, found = list(items), []
    for shape in wanted:
        match = next((item for item in left if shape_of(item) == shape), None)
        if match is None:
            return None
        found.append(match)
        left = [item for item in left if item is not match]
    return None if left else found


def by_layer(model, wanted_layers):
    # whole layers first (a layer's parameters together, matched by their shapes), then single parameters
    layers = [list(m.parameters(recurse=False)) for m in model.modules()]
    layers = [layer for layer in layers if layer]
    shapes = [[list(p.shape) for p in layer] for layer in layers]
    found = matched(range(len(layers)), wanted_layers, lambda i: shapes[i])
    if found is not None:
        return [p for i in found for p in layers[i]]
    return matched(list(model.parameters()), want_parameters, lambda p: list(p.shape)) or list(model.parameters())


params = by_layer(model, want_layers)
buffers = [b for b in model.buffers() if b.is_floating_point()]
buffers = matched(buffers, want_buffers, lambda b: list(b.shape)) or buffers
result = {"parameters": [list(p.shape) for p in params], "buffers": [list(b.shape) for b in buffers]}
sample = lambda t: t.detach().flatten()[::max(1, t.numel() // 4096)].clone()
if result["parameters"] == want_parameters and result["buffers"] == want_buffers:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in params:  # variance 1 / fan-in for weights, [-0.5, 0.5] for biases and scales
            scale = (3.0 / max(1, param[0].numel())) ** 0.5 if param.dim() > 1 else 0.5
            param.copy_(scale * (2 * torch.rand(param.shape, generator=generator, dtype=dtype) - 1))
        for b in buffers:  # running means and variances in [0.5, 1.5]: eval mode differs from train mode
            b.copy_(0.5 + torch.rand(b.shape, generator=generator, dtype=dtype))
    model.zero_grad(set_to_none=True)
    model.train(training)
    leaves = [x.detach().to(dtype).clone().requires_grad_(True) if isinstance(x, torch.Tensor) and x.is_floating_point()
              else x for x in inputs]
    torch.manual_seed(seed)
    out = model(*leaves)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    result["outputs"] = [o.detach() if isinstance(o, torch.Tensor) else o for o in outs]
    result["buffers_after"] = [sample(b) for b in buffers]
    if callable(grad_outputs):  # the reference's side draws the random loss from its own outputs
        grad_outputs = grad_outputs(result["outputs"])
    if grad_outputs is not None and len(outs) == len(grad_outputs) and all(
            isinstance(o, torch.Tensor) and list(o.shape) == list(g.shape) for o, g in zip(outs, grad_outputs)):
        sum((o * g).sum() for o, g in zip(outs, grad_outputs)).backward()
        result["gradients"] = [None if p.grad is None else sample(p.grad) for p in params]
        result["input_gradients"] = [None if x.grad is None else sample(x.grad) for x in leaves
                                     if isinstance(x, torch.Tensor) and x.requires_grad]
"""


def _run_model_here(model: torch.nn.Module, **inputs) -> dict:
    names = {"torch": torch, "reference_model": model}
    names.update(inputs)
    exec(compile(_MODEL_RUN.replace("MAKE", "reference_model"), "<reference model>", "exec"), names)
    return names["result"]


def _shapes_message(name: str, got: dict, want: dict) -> str:
    show = lambda shapes: ", ".join(str(tuple(s)) for s in shapes) or "none"  # noqa: E731
    kind = "parameters" if got["parameters"] != want["parameters"] else "buffers"
    what = "parameters" if kind == "parameters" else "buffers (batch-norm running statistics)"
    return (f"{name}'s {what} cannot be matched with the reference's by shape: yours have the shapes "
            f"[{show(got[kind])}] (in the order of .{kind}()), the reference's [{show(want[kind])}]. "
            "Build the layers with the sizes the exercise gives (and the biases and batch norms it asks for).")


def assert_same_model(make: str, reference: torch.nn.Module, inputs: Sequence[tuple], *, name: str,
                      modes: Sequence[str] = ("eval", "train"), dtype: torch.dtype = torch.float64,
                      rtol: float = 1e-6, atol: float = 1e-8, hint: str = "") -> None:
    """The student's model computes what ``reference`` computes, on the reference's weights.

    ``make`` is the student's constructor call (``"VGG16(batch_norm=True)"``), run beside the student's code;
    ``reference`` is the test's own module. For each tuple of ``inputs`` (positional arguments of one call,
    its index the seed) and each mode in ``modes``, both models get the same weights (matched by shape, in order,
    over ``.parameters()`` and the floating ``.buffers()``), the same seed before the forward pass (so
    ``nn.Dropout`` draws the same masks), and the same random loss ``sum(output * g)``; their outputs, the
    running statistics after the pass, and the gradients of the loss (parameters and floating inputs) must agree.
    Attribute names, ``nn.Sequential`` or an explicit forward do not matter, nor the order in which layers of
    different shapes are declared; layers of one shape are matched in the order they are declared.
    """
    reference = reference.to(dtype)
    for seed, arguments in enumerate(inputs):
        for mode in modes:
            _compare_once(make, reference, list(arguments), name=name, mode=mode, seed=seed, dtype=dtype,
                          rtol=rtol, atol=atol, hint=hint)


def _compare_once(make: str, reference: torch.nn.Module, arguments: list, *, name: str, mode: str, seed: int,
                  dtype: torch.dtype, rtol: float, atol: float, hint: str) -> None:
    layers = [[list(p.shape) for p in m.parameters(recurse=False)] for m in reference.modules()]
    shapes = dict(want_parameters=[list(p.shape) for p in reference.parameters()],
                  want_layers=[layer for layer in layers if layer],
                  want_buffers=[list(b.shape) for b in reference.buffers() if b.is_floating_point()])
    setup = dict(shapes, training=mode == "train", seed=seed, dtype=dtype, inputs=arguments)
    drawn = []

    def draw_grad_outputs(outputs):
        generator = rng(1000 + seed)
        drawn.extend(torch.randn(o.shape, generator=generator, dtype=o.dtype) for o in outputs)
        return drawn

    want = _run_model_here(reference, grad_outputs=draw_grad_outputs, **setup)
    got = student.run(_MODEL_RUN.replace("MAKE", make), grad_outputs=drawn, **setup)
    if got["parameters"] != want["parameters"] or got["buffers"] != want["buffers"]:
        raise AssertionError(_shapes_message(name, got, want))
    what, where = f"{name} in {mode} mode", f"on the same weights as the reference (input {seed})"
    if len(got["outputs"]) != len(want["outputs"]):
        raise AssertionError(f"{what} returned {len(got['outputs'])} values, expected {len(want['outputs'])}. "
                             f"{hint}".strip())
    for k, (out, expected) in enumerate(zip(got["outputs"], want["outputs"])):
        output = "its output" if len(want["outputs"]) == 1 else f"its output {k}"
        _assert_close_model(out, expected, rtol, atol, f"{what}: {output} {where}", hint)
    for k, (after, expected) in enumerate(zip(got["buffers_after"], want["buffers_after"])):
        _assert_close_model(after, expected, rtol, atol, f"{what}: running statistic {k} after a forward pass",
                            "update the running statistics in training mode only, as nn.BatchNorm does")
    if "gradients" not in got:
        raise AssertionError(f"{what}: its output {where} could not be differentiated. {hint}".strip())
    parameter_names = [n for n, _ in reference.named_parameters()]
    for k, (grad, expected) in enumerate(zip(got["gradients"], want["gradients"])):
        parameter = f"parameter {k} (shape {tuple(want['parameters'][k])}, the reference's {parameter_names[k]})"
        if grad is None:
            raise AssertionError(f"{what}: {parameter} got no gradient: it is not used in the forward pass, "
                                 "or it is detached from it")
        _assert_close_model(grad, expected, rtol, atol, f"{what}: the gradient of {parameter} of a random loss",
                            "the outputs agree but this gradient does not: is part of the forward pass detached, "
                            "or a tensor changed in place?")
    for k, (grad, expected) in enumerate(zip(got["input_gradients"], want["input_gradients"])):
        if grad is None and expected is not None:
            raise AssertionError(f"{what}: no gradient reaches input {k}: the forward pass detaches it (or computes "
                                 "outside autograd), so nothing before this model could learn")
        if expected is not None:
            _assert_close_model(grad, expected, rtol, atol, f"{what}: the gradient of input {k} of a random loss",
                                hint)


def _assert_close_model(actual, expected, rtol: float, atol: float, name: str, hint: str) -> None:
    if not isinstance(actual, torch.Tensor):
        raise AssertionError(f"{name} should be a tensor, but it is {wire.describe(actual)}")
    _assert_close_tensors(_as_tensor(actual, name), _as_tensor(expected, name), rtol, atol, name, hint)


# --------------------------------------------------------------------------
# Training loops graded step for step, with feedback that names a mistake only when it is sure.


def _close(actual: torch.Tensor, expected: torch.Tensor, rtol: float, atol: float) -> bool:
    actual, expected = _as_tensor(actual, "a parameter"), _as_tensor(expected, "a parameter")
    return tuple(actual.shape) == tuple(expected.shape) and bool(
        ((actual - expected).abs() <= atol + rtol * expected.abs()).all())


def _first_parting(got: Sequence[Sequence[torch.Tensor]], expected: Sequence[Sequence[torch.Tensor]], rtol: float,
                   atol: float) -> tuple[int, int] | None:
    """(step, parameter) where two trajectories first part, or None when they agree throughout."""
    if len(got) != len(expected):
        return (min(len(got), len(expected)), -1)
    for step, (mine, theirs) in enumerate(zip(got, expected)):
        for index, (a, b) in enumerate(zip(mine, theirs)):
            if not _close(a, b, rtol, atol):
                return step, index
    return None


def assert_same_trajectory(got: Sequence[Sequence[torch.Tensor]], expected: Sequence[Sequence[torch.Tensor]], *,
                           what: str, names: Sequence[str], mistakes: dict | None = None, rtol: float = 1e-4,
                           atol: float = 1e-6) -> None:
    """The parameters after every step of the student's loop (``got[step][parameter]``) are the reference's.

    ``mistakes`` maps a description of a common mistake ("the optimiser is created again for every batch") to the
    trajectory the reference gives with that mistake, from the same start and on the same batches. When the
    student's trajectory is not the reference's, the message names the mistake whose trajectory it follows, step
    for step; when it follows none, it says only where the two first part (step, parameter, largest difference),
    never a guess.
    """
    parting = _first_parting(got, expected, rtol, atol)
    if parting is None:
        return
    for mistake, trajectory in (mistakes or {}).items():
        if _first_parting(got, trajectory, rtol, atol) is None:
            raise AssertionError(f"{what}: your parameters follow, step for step, those of a loop in which "
                                 f"{mistake}. Fix that and run the check again.")
    step, index = parting
    if index < 0:
        raise AssertionError(f"{what}: your loop took {len(got)} optimiser steps, expected {len(expected)} "
                             "(one per batch, every epoch)")
    difference = (_as_tensor(got[step][index], "") - _as_tensor(expected[step][index], "")).abs().max().item() \
        if tuple(got[step][index].shape) == tuple(expected[step][index].shape) else float("nan")
    agree = f"steps 1 to {step} agree; " if step else ""
    known = f" It follows none of the loops this test knows to be wrong ({'; '.join(mistakes)})." if mistakes else ""
    raise AssertionError(
        f"{what}: {agree}after step {step + 1} your {names[index]} differs from the reference's by up to "
        f"{difference:.3g}.{known} Print the loss and the parameters after the first steps and compare them with "
        "one step worked out by hand.")


#: Put before a ``student.run`` snippet: ``steps = record_steps(model, data)`` makes ``model`` record, before each
#: forward pass with gradients, which rows of ``data`` its batch holds (-1: none), the random state (its dropout
#: masks), its mode and its parameters; ``stop_recording(model)`` ends it. A test replays those batches with
#: :func:`replay_training`, so the student's own order and shuffling are followed, and checked by
#: :func:`check_epochs`.
STEP_RECORDER = """
import torch as _torch


def record_steps(model, data):
    flat, steps = data.detach().cpu().flatten(1), []

    def before_forward(module, inputs):
        if _torch.is_grad_enabled():
            rows = inputs[0].detach().cpu().flatten(1)
            found = [(flat == row).all(dim=1).nonzero() for row in rows]
            steps.append({"index": [int(f[0]) if len(f) else -1 for f in found], "rng": _torch.get_rng_state(),
                          "training": module.training, "before": [p.detach().clone() for p in model.parameters()]})

    model._recording = model.register_forward_pre_hook(before_forward)
    return steps


def stop_recording(model):
    model._recording.remove()
"""

#: The mistakes :func:`replay_training` can make, as the message names them.
TRAINING_MISTAKES = {
    "no_zero_grad": "the gradients are never cleared (optimiser.zero_grad() missing)",
    "optimiser_per_batch": "a new optimiser is created for every batch (Adam's running averages start again)",
    "optimiser_per_epoch": "a new optimiser is created every epoch (Adam's running averages start again)",
    "eval_mode": "the model is in eval mode (dropout off, batch norm on its running statistics)",
    "summed_loss": "the loss of a batch is summed over its entries instead of averaged (reduction='sum')",
}


def check_epochs(steps: Sequence[dict], n: int, batches_per_epoch: int, epochs: int, what: str) -> None:
    """The recorded steps go through all ``n`` rows once per epoch, in a new order each epoch, in training mode."""
    if len(steps) != epochs * batches_per_epoch:
        raise AssertionError(f"{what} took {len(steps)} optimiser steps, expected {epochs * batches_per_epoch} "
                             f"({batches_per_epoch} batches per epoch, {epochs} epochs)")
    if any(-1 in step["index"] for step in steps):
        raise AssertionError(f"{what} gave the model rows that are not among the given ones: pass the data "
                             "themselves, only moved to the model's device")
    orders = [sum((step["index"] for step in steps[epoch * batches_per_epoch:(epoch + 1) * batches_per_epoch]), [])
              for epoch in range(epochs)]
    if any(sorted(order) != list(range(n)) for order in orders):
        raise AssertionError(f"{what}: an epoch did not go through every sample exactly once")
    if epochs > 1 and all(order == orders[0] for order in orders):
        raise AssertionError(f"{what} went through the samples in the same order in every epoch: draw a new "
                             "random order (torch.randperm) at the start of every epoch")
    if not all(step["training"] for step in steps):
        raise AssertionError(f"{what}: the model was in eval mode during training steps; train in training mode "
                             "(model.train()), so that dropout and batch norm do their job")


def replay_training(model: torch.nn.Module, steps: Sequence[dict], batch_loss: Callable, make_optimiser: Callable,
                    batches_per_epoch: int, mistake: str | None = None) -> tuple[list, list[float]]:
    """The reference loop on the batches (and dropout masks) the student's loop used, from ``model``'s weights.

    ``batch_loss(model, index, reduction)`` is the loss of the rows ``index``; ``make_optimiser(parameters)``
    the exercise's optimiser; ``mistake`` one key of :data:`TRAINING_MISTAKES`, or None for the right loop.
    Returns the parameters after every step and the batch losses.
    """
    model.train(mistake != "eval_mode")
    optimiser = make_optimiser(model.parameters())
    trajectory, losses = [], []
    with torch.random.fork_rng():
        for k, step in enumerate(steps):
            if mistake == "optimiser_per_batch" or (mistake == "optimiser_per_epoch" and k % batches_per_epoch == 0):
                optimiser = make_optimiser(model.parameters())
            torch.set_rng_state(step["rng"])
            loss = batch_loss(model, step["index"], "sum" if mistake == "summed_loss" else "mean")
            if mistake != "no_zero_grad":
                optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            trajectory.append([p.detach().clone() for p in model.parameters()])
            losses.append(loss.item())
    return trajectory, losses


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
    "Remote", "Student", "StudentCodeError", "assert_close", "assert_equal", "assert_no_forbidden", "assert_same_model",
    "assert_same_trajectory",
    "STEP_RECORDER", "TRAINING_MISTAKES", "check_epochs", "replay_training",
    "assert_shape", "forbidden_names_in", "no_warnings", "numerical_gradient",
    "random_shapes", "random_tensor", "relative_error", "rng", "student",
]
