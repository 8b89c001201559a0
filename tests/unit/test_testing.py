"""Unit tests of what the notebooks' test cells use: comparisons, shortcut checks, ``student``.

Kernel-free and fast. ``student`` and ``Remote`` run on the in-process
backend: requests are served by the agent in this process against
``sys.modules["__main__"].__dict__`` (the namespace it uses when no IPython
shell is running); the ``notebook`` fixture defines the "notebook's" names
there and removes them afterwards. The backend is chosen by
``dlcourse.bridge.backends.using`` (a context variable that always resets);
the fixture checks that the in-process one is in force.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from dlcourse import testing
from dlcourse.bridge import backends, wire

SETTINGS = settings(max_examples=30, deadline=None, database=None)
shapes = st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple)
seeds = st.integers(0, 2**31 - 1)


def label(value) -> str:
    """A short test id for a parametrised value."""
    if isinstance(value, torch.Tensor):
        return f"tensor{tuple(value.shape)}-{str(value.dtype).removeprefix('torch.')}"
    text = repr(value)
    # No memory addresses in test ids: pytest-xdist's workers must collect the same ids.
    return (f"<{type(value).__name__} object>" if " at 0x" in text else text)[:40]


def failure(check, *args, **kwargs) -> str:
    """The message of the AssertionError that ``check(*args, **kwargs)`` raises."""
    with pytest.raises(AssertionError) as raised:
        check(*args, **kwargs)
    return str(raised.value)


class AlwaysEqualInt(int):
    def __eq__(self, other):
        return True

    __hash__ = int.__hash__


# --------------------------------------------------------------------------
# assert_close


@pytest.mark.parametrize(("actual", "expected"), [
    (1.0, 1.0), (1.0 + 5e-6, 1.0), (0.0, 5e-7), (3, 3.0), (True, 1), ([1, 2], (1.0, 2.0)),
    (torch.tensor([1, 2]), [1.0, 2.0]), (torch.tensor([1.0, 2.0], dtype=torch.float32), torch.tensor([1.0, 2.0])),
    (torch.tensor([[True, False]]), [[1, 0]]), (torch.tensor(2.0), 2),
], ids=label)
def test_assert_close_passes_equal_values_of_any_numeric_kind(actual, expected):
    testing.assert_close(actual, expected)


def test_assert_close_uses_atol_plus_rtol_times_the_expected_magnitude():
    testing.assert_close(1000.0 + 0.9, 1000.0, rtol=1e-3, atol=0.0)
    testing.assert_close(0.09, 0.0, rtol=1.0, atol=0.1)
    assert "is wrong" in failure(testing.assert_close, 1000.0 + 1.1, 1000.0, rtol=1e-3, atol=0.0)
    assert "is wrong" in failure(testing.assert_close, 0.0, 1000.0, rtol=0.5, atol=0.0)


def test_assert_close_names_the_first_wrong_index_got_expected_and_how_many_entries_differ():
    message = failure(testing.assert_close, torch.tensor([[1.0, 2.5], [3.0, 9.0]]), [[1, 2], [3, 4]])
    assert message == ("the result is wrong at index (0, 1): got 2.5, expected 2 "
                       "(2 of 4 entries differ; largest error 5).")


def test_assert_close_on_a_scalar_names_no_index():
    assert failure(testing.assert_close, 1.0, 2) == (
        "the result is wrong: got 1, expected 2 (1 of 1 entries differ; largest error 1).")


def test_assert_close_puts_name_and_hint_into_its_message():
    message = failure(testing.assert_close, [1.0], [2.0], name="the loss", hint="Did you average?")
    assert message.startswith("the loss is wrong at index (0,):") and message.endswith(". Did you average?")


@pytest.mark.parametrize(("actual", "expected"), [
    (torch.zeros(3), torch.zeros(3, 1)), (torch.zeros(3, 1), torch.zeros(3)), (torch.zeros(1), 0.0),
    (torch.zeros(2, 3), torch.zeros(3, 2)), (torch.zeros(0, 3), torch.zeros(0)), ([1, 2], [[1, 2]]),
], ids=label)
def test_assert_close_fails_on_a_shape_mismatch_without_broadcasting(actual, expected):
    message = failure(testing.assert_close, actual, expected, hint="Check the shape.")
    assert message == (f"the result has shape {tuple(torch.as_tensor(actual).shape)}, "
                       f"expected {tuple(torch.as_tensor(expected).shape)}. Check the shape.")


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_assert_close_reports_nan_or_infinity_where_finite_values_are_expected(bad):
    actual = torch.tensor([1.0, bad, 3.0])
    assert failure(testing.assert_close, actual, [1.0, 2.0, 3.0], hint="Overflow?") == (
        "the result contains NaN or infinity. Overflow?")
    assert failure(testing.assert_close, bad, 0.0) == "the result contains NaN or infinity."


_SPECIAL = [math.nan, math.inf, -math.inf, 0.0, -0.0, 1e-300, 1e300, 5e-7]
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(_SPECIAL),
                    st.integers(-10**6, 10**6), st.booleans())
scalar_kinds = st.sampled_from(["python", "float64", "float32", "float16", "int64", "bool"])


def _as_kind(value, kind: str):
    if kind == "python":
        return value
    if kind == "bool":
        return torch.tensor(bool(value) if not math.isnan(value) else True)
    if kind == "int64":
        return torch.tensor(int(value) if math.isfinite(value) and abs(value) < 2**62 else 7)
    return torch.tensor(float(value), dtype=getattr(torch, kind))


def _outcome(check, *args, **kwargs) -> str:
    try:
        check(*args, **kwargs)
    except AssertionError as error:
        return str(error)
    return "passed"


@SETTINGS
@given(numbers, numbers, scalar_kinds, scalar_kinds, st.sampled_from([(1e-5, 1e-6), (0.0, 0.0), (1e-3, 0.5)]))
@example(math.nan, math.inf, "python", "python", (1e-5, 1e-6))  # the non-finite corners, each one once
@example(math.inf, math.nan, "float32", "python", (1e-5, 1e-6))
@example(math.nan, math.nan, "python", "float64", (0.0, 0.0))
@example(math.inf, math.inf, "python", "python", (0.0, 0.0))
@example(-math.inf, math.inf, "float16", "python", (1e-3, 0.5))
@example(1.0, 1.0, "python", "python", (0.0, 0.0))
def test_assert_close_on_two_numbers_agrees_with_the_tensor_rule(actual, expected, actual_kind, expected_kind, tol):
    """Numbers take a path without tensors: the verdict and the message are those of 0-d float64 tensors."""
    actual, expected = _as_kind(actual, actual_kind), _as_kind(expected, expected_kind)
    rtol, atol = tol
    as_tensors = _outcome(testing._assert_close_tensors, testing._as_tensor(actual, "the x"),
                          testing._as_tensor(expected, "the expected value"), rtol, atol, "the x", "Hint.")
    assert _outcome(testing.assert_close, actual, expected, rtol=rtol, atol=atol, name="the x", hint="Hint.") \
        == as_tensors


def test_assert_close_fails_on_nan_where_a_finite_value_is_expected_beside_an_expected_infinity():
    failure(testing.assert_close, torch.tensor([math.nan, math.inf]), torch.tensor([1.0, math.inf]))


@pytest.mark.parametrize("shape", [(0,), (0, 3), (2, 0, 4)], ids=label)
def test_assert_close_passes_empty_tensors_of_the_same_shape(shape):
    testing.assert_close(torch.empty(shape), torch.empty(shape))


def test_assert_close_passes_an_empty_list_against_an_empty_tensor():
    testing.assert_close([], torch.empty(0))


REFUSED = [None, "1.0", b"1", {"a": 1}, [[1], [1, 2]], ["a"], 1j, np.float64(1.0), np.array([1.0]),
           AlwaysEqualInt(1), object()]


@pytest.mark.parametrize("value", REFUSED, ids=label)
def test_assert_close_refuses_an_actual_value_that_is_not_a_number_or_tensor_describing_it(value):
    message = failure(testing.assert_close, value, 1.0, name="the output")
    assert message == f"the output should be a number or a tensor, but it is {wire.describe(value)}"


@pytest.mark.parametrize("value", REFUSED, ids=label)
def test_assert_close_refuses_an_expected_value_that_is_not_a_number_or_tensor(value):
    message = failure(testing.assert_close, 1.0, value)
    assert message == f"the expected value should be a number or a tensor, but it is {wire.describe(value)}"


def test_assert_close_refusal_reads_like_a_sentence():
    assert failure(testing.assert_close, [[1], [1, 2]], [1]) == (
        "the result should be a number or a tensor, but it is a list of length 2")


@SETTINGS
@given(shape=shapes, seed=seeds, scale=st.sampled_from([1e-3, 1.0, 1e4]))
def test_assert_close_passes_every_perturbation_within_half_the_bound(shape, seed, scale):
    expected = testing.random_tensor(shape, seed, -scale, scale)
    signs = torch.randint(0, 2, shape, generator=testing.rng(seed + 1)).to(torch.float64) * 2 - 1
    bound = 1e-6 + 1e-5 * expected.abs()
    testing.assert_close(expected + 0.5 * bound * signs, expected)
    testing.assert_close(expected, expected, rtol=0.0, atol=0.0)


@SETTINGS
@given(shape=shapes, seed=seeds, scale=st.sampled_from([1e-3, 1.0, 1e4]))
def test_assert_close_fails_perturbations_beyond_twice_the_bound_counting_and_locating_them(shape, seed, scale):
    expected = testing.random_tensor(shape, seed, -scale, scale)
    wrong = torch.rand(shape, generator=testing.rng(seed + 1)) < 0.5
    assume(bool(wrong.any()))
    bound = 1e-6 + 1e-5 * expected.abs()
    actual = torch.where(wrong, expected + 2 * bound, expected)
    message = failure(testing.assert_close, actual, expected)
    assert f"({int(wrong.sum())} of {max(1, expected.numel())} entries differ;" in message
    if shape:
        first = tuple(int(i) for i in wrong.nonzero()[0])
        assert f" at index {first}: got {actual[first].item():.6g}, expected {expected[first].item():.6g} " in message
    else:
        assert message.startswith(f"the result is wrong: got {actual.item():.6g}, ")


@SETTINGS
@given(actual_shape=shapes, expected_shape=shapes)
def test_assert_close_fails_whenever_the_shapes_differ(actual_shape, expected_shape):
    assume(actual_shape != expected_shape)
    message = failure(testing.assert_close, torch.zeros(actual_shape), torch.zeros(expected_shape))
    assert message == f"the result has shape {actual_shape}, expected {expected_shape}."


# --------------------------------------------------------------------------
# assert_equal and assert_shape


@pytest.mark.parametrize("value", [3, 2.5, "text", (1, 2), [1, [2]], None, True], ids=label)
def test_assert_equal_passes_equal_plain_values(value):
    testing.assert_equal(value, value)


@pytest.mark.parametrize(("actual", "expected", "message"), [
    (3, 4, "the result is 3, expected 4."),
    ("a", "b", "the result is 'a', expected 'b'."),
    ((2, 3), (3, 2), "the result is (2, 3), expected (3, 2)."),
    ([1], (1,), "the result is [1], expected (1,)."),
], ids=label)
def test_assert_equal_fails_unequal_values_showing_both(actual, expected, message):
    assert failure(testing.assert_equal, actual, expected) == message


@pytest.mark.parametrize("value", [torch.tensor(3), AlwaysEqualInt(3), {"a": 3}, b"3", np.int64(3), object()],
                         ids=lambda value: type(value).__name__)
def test_assert_equal_refuses_values_that_are_not_plain_describing_them(value):
    assert failure(testing.assert_equal, value, 3) == f"the result should be 3, but it is {wire.describe(value)}."


def test_assert_equal_puts_name_and_hint_into_its_message():
    assert failure(testing.assert_equal, 3, 4, name="the count", hint="Off by one?") == (
        "the count is 3, expected 4. Off by one?")
    assert failure(testing.assert_equal, torch.tensor(3), 4, name="the count", hint="Use .item().") == (
        "the count should be 4, but it is a tensor of shape () and dtype torch.int64. Use .item().")


@pytest.mark.parametrize("shape", [(2, 3), [2, 3], torch.Size([2, 3])], ids=label)
def test_assert_shape_passes_the_tensors_shape_given_as_any_sequence(shape):
    testing.assert_shape(torch.zeros(2, 3), shape)


@pytest.mark.parametrize(("actual", "shape"), [((3,), (3, 1)), ((3, 1), (3,)), ((2, 3), (3, 2)), ((), (1,))],
                         ids=label)
def test_assert_shape_fails_a_different_shape(actual, shape):
    assert failure(testing.assert_shape, torch.zeros(actual), shape, name="x") == (
        f"x has shape {actual}, expected {shape}")


@pytest.mark.parametrize("value", [[[0, 0, 0]], 0.0, np.zeros(3), None], ids=lambda value: type(value).__name__)
def test_assert_shape_refuses_a_value_that_is_not_a_tensor(value):
    assert failure(testing.assert_shape, value, (1, 3)) == (
        f"the result should be a tensor, but it is {wire.describe(value)}")


# --------------------------------------------------------------------------
# relative_error and numerical_gradient


@pytest.mark.parametrize(("actual", "expected", "error"), [
    (torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0]), 0.0),
    (torch.zeros(3), torch.zeros(3), 0.0),
    (1.0, 3.0, 0.5),
    (torch.tensor([1.0, -2.0]), torch.tensor([-1.0, 2.0]), 1.0),
    (torch.tensor([0.0, 10.0]), torch.tensor([1.0, 10.0]), 1.0 / 20.0),
], ids=label)
def test_relative_error_is_the_largest_difference_over_the_largest_magnitude_sum(actual, expected, error):
    result = testing.relative_error(actual, expected)
    assert type(result) is float and result == pytest.approx(error, abs=1e-15)


@SETTINGS
@given(shape=shapes, seed=seeds, scale=st.floats(1e-3, 1e3))
def test_relative_error_is_symmetric_bounded_by_one_and_scale_free(shape, seed, scale):
    a = testing.random_tensor(shape, seed)
    b = testing.random_tensor(shape, seed + 1)
    error = testing.relative_error(a, b)
    assert 0.0 <= error <= 1.0
    assert error == testing.relative_error(b, a)
    assert testing.relative_error(a * scale, b * scale) == pytest.approx(error, rel=1e-9)
    assert testing.relative_error(a, a) == 0.0


@SETTINGS
@given(shape=shapes, seed=seeds)
def test_numerical_gradient_matches_the_analytic_gradient_of_a_random_cubic(shape, seed):
    c = testing.random_tensor((4,), seed, -2.0, 2.0)
    x = testing.random_tensor(shape, seed + 1, -2.0, 2.0)

    def f(x):
        return (c[0] + c[1] * x + c[2] * x**2 + c[3] * x**3).sum()

    gradient = testing.numerical_gradient(f, x)
    testing.assert_close(gradient, c[1] + 2 * c[2] * x + 3 * c[3] * x**2, rtol=1e-6, atol=1e-6)


@SETTINGS
@given(shape=shapes, seed=seeds, frequency=st.floats(0.1, 5.0))
def test_numerical_gradient_matches_the_analytic_gradient_of_sin(shape, seed, frequency):
    x = testing.random_tensor(shape, seed, -3.0, 3.0)
    gradient = testing.numerical_gradient(lambda x: torch.sin(frequency * x).sum(), x)
    testing.assert_close(gradient, frequency * torch.cos(frequency * x), rtol=1e-6, atol=1e-6)


@SETTINGS
@given(shape=shapes, seed=seeds)
def test_numerical_gradient_matches_the_analytic_gradient_of_a_function_coupling_all_entries(shape, seed):
    w = testing.random_tensor(shape, seed)
    x = testing.random_tensor(shape, seed + 1)
    gradient = testing.numerical_gradient(lambda x: (w * x).sum() ** 2, x)
    testing.assert_close(gradient, 2 * (w * x).sum() * w, rtol=1e-6, atol=1e-6)


def test_numerical_gradient_leaves_x_alone_and_returns_float64_of_its_shape():
    x = torch.tensor([[1.0, 2.0]], dtype=torch.float32, requires_grad=True)
    seen = []

    def f(z):
        seen.append(z.dtype)
        return (z**2).sum()

    gradient = testing.numerical_gradient(f, x)
    assert gradient.dtype == torch.float64 and gradient.shape == (1, 2) and set(seen) == {torch.float64}
    testing.assert_close(gradient, [[2.0, 4.0]], rtol=1e-6, atol=1e-6)
    assert torch.equal(x.detach(), torch.tensor([[1.0, 2.0]])) and x.grad is None


# --------------------------------------------------------------------------
# Random draws and no_warnings


def test_random_tensor_is_reproducible_from_its_seed_and_within_its_bounds():
    a = testing.random_tensor((50, 3), seed=7, low=-2.0, high=5.0)
    assert torch.equal(a, testing.random_tensor((50, 3), seed=7, low=-2.0, high=5.0))
    assert not torch.equal(a, testing.random_tensor((50, 3), seed=8, low=-2.0, high=5.0))
    assert a.dtype == torch.float64 and a.shape == (50, 3) and a.min() >= -2.0 and a.max() < 5.0
    assert testing.random_tensor([2], seed=0, dtype=torch.float32).dtype == torch.float32


def test_random_shapes_are_reproducible_and_within_their_bounds():
    shapes_drawn = testing.random_shapes(seed=3, count=20, dims=3, low=2, high=4)
    assert shapes_drawn == testing.random_shapes(seed=3, count=20, dims=3, low=2, high=4)
    assert len(shapes_drawn) == 20 and all(len(s) == 3 and all(2 <= d <= 4 for d in s) for s in shapes_drawn)


def test_rng_is_a_seeded_torch_generator():
    assert torch.equal(torch.rand(3, generator=testing.rng(5)), torch.rand(3, generator=testing.rng(5)))


def test_no_warnings_silences_warnings_inside_only():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with testing.no_warnings():
            warnings.warn("inside", UserWarning)
        warnings.warn("outside", UserWarning)
    assert [str(w.message) for w in caught] == ["outside"]


# --------------------------------------------------------------------------
# forbidden_names_in

CAUGHT = {
    "direct name": ("y = conv2d(x, w)", ["conv2d"], ["conv2d"]),
    "attribute chain, leaf": ("y = torch.nn.functional.conv2d(x, w)", ["conv2d"], ["conv2d"]),
    "attribute chain, middle": ("y = torch.nn.functional.conv2d(x, w)", ["functional"], ["functional"]),
    "short alias": ("y = F.conv2d(x, w)", ["conv2d", "F"], ["F", "conv2d"]),
    "method": ("p = x.unfold(1, 3, 1)", ["unfold"], ["unfold"]),
    "method on an expression": ("p = (x + 1).as_strided((2,), (1,))", ["as_strided"], ["as_strided"]),
    "import as alias": ("import torch.nn.functional as F", ["functional"], ["functional"]),
    "alias used later": ("import torch.nn.functional as G\ny = G.conv2d(x, w)", ["conv2d"], ["conv2d"]),
    "from-import renamed": ("from torch.nn.functional import conv2d as c\ny = c(x, w)", ["conv2d"], ["conv2d"]),
    "from-import of a module": ("from torch.nn import functional", ["functional"], ["functional"]),
    "from-import star then name": ("from torch.nn.functional import *\ny = unfold(x, 3)", ["unfold"], ["unfold"]),
    "computed getattr": ("op = getattr(torch, name)", ["conv2d"], ["getattr(...)"]),
    "getattr with a built string": ("op = getattr(torch, 'conv' + '2d')", ["conv2d"], ["getattr(...)"]),
    "getattr with the name as constant": ("op = getattr(torch, 'conv2d')", ["conv2d"], ["conv2d"]),
    "computed getattr on a submodule": ("op = getattr(torch.nn.functional, name)", ["conv2d"], ["getattr(...)"]),
    "computed getattr on an imported alias": ("import torch as t\nop = getattr(t, name)", ["conv2d"], ["getattr(...)"]),
    "computed getattr on vars()": ("op = getattr(vars()['t'], name)", ["conv2d"], ["getattr(...)"]),
    "getattr with unpacked arguments": ("op = getattr(*where)", ["conv2d"], ["getattr(...)"]),
    "__import__": ("m = __import__('torch')", ["conv2d"], ["__import__(...)"]),
    "eval": ("y = eval('x')", ["conv2d"], ["eval(...)"]),
    "exec": ("exec('y = x')", ["conv2d"], ["exec(...)"]),
    "string constant": ("name = 'unfold'", ["unfold"], ["unfold"]),
    "inside a function body": ("def f(x):\n    def g():\n        return x.unfold(0, 1, 1)\n    return g",
                               ["unfold"], ["unfold"]),
    "several, sorted and once each": ("a = x.unfold(0, 1, 1)\nb = F.conv2d(x, w)\nc = x.unfold(1, 1, 1)",
                                      ["unfold", "conv2d", "F"], ["F", "conv2d", "unfold"]),
}


@pytest.mark.parametrize(("source", "forbidden", "found"), CAUGHT.values(), ids=CAUGHT.keys())
def test_forbidden_names_in_finds_the_forbidden_names_a_cell_refers_to(source, forbidden, found):
    assert testing.forbidden_names_in(source, forbidden) == found


NOT_CAUGHT = {
    "comment": "# do not use conv2d or x.unfold here\ny = x + 1",
    "docstring sentence": 'def f(x):\n    """Like conv2d, but written with loops, not unfold."""\n    return x',
    "string sentence": "message = 'never call conv2d'",
    "longer names": "conv2d_by_hand = 1\nmy_unfold = x.unfolded\ny = conv2d_by_hand + my_unfold",
    "unrelated calls": "y = torch.matmul(x, w).sum()\nz = getattr(x, 'shape')",
    "keyword argument": "y = f(x, unfold=3)",
    "getattr/setattr by name on the student's own layers": (
        "for layer in (self.fc1, self.fc2):\n    for name, grad in (('weight', 'dW'), ('bias', 'db')):\n"
        "        setattr(layer, name, getattr(layer, name) - lr * getattr(layer, grad))"),
    "empty cell": "",
}


@pytest.mark.parametrize("source", NOT_CAUGHT.values(), ids=NOT_CAUGHT.keys())
def test_forbidden_names_in_ignores_comments_prose_and_unrelated_names(source):
    assert testing.forbidden_names_in(source, ["conv2d", "unfold", "F"]) == []


def test_forbidden_names_in_reads_a_cell_with_magics_and_shell_lines():
    # An indented magic where IPython accepts one: inside a block (at top level it is an IndentationError there too).
    source = "%%capture\n%matplotlib inline\n!ls -l\nimport torch\nif True:\n    %time 1\ny = torch.conv2d(x, w)"
    assert testing.forbidden_names_in(source, ["conv2d"]) == ["conv2d"]


def test_forbidden_names_in_reports_nothing_for_a_cell_that_is_not_python():
    assert testing.forbidden_names_in("def f(:\n    return conv2d(x)", ["conv2d"]) == []


@pytest.mark.parametrize(("source", "forbidden"), [("from torch.nn.functional import relu", ["functional"]),
                                                   ("from torch.nn import Linear", ["nn"])],
                         ids=["functional", "nn"])
def test_forbidden_names_in_finds_a_forbidden_module_in_a_from_import_path(source, forbidden):
    assert testing.forbidden_names_in(source, forbidden) == forbidden


@pytest.mark.parametrize("source", [
    "import importlib\nF = importlib.import_module('torch.nn.functional')\ny = F.relu(x)",
    "from importlib import import_module\nm = import_module(name)",
], ids=["constant path", "computed name"])
def test_forbidden_names_in_catches_importlib_import_module(source):
    assert testing.forbidden_names_in(source, ["functional"])


# --------------------------------------------------------------------------
# StudentCodeError


def test_student_code_error_says_your_code_raised_type_and_message():
    error = testing.StudentCodeError("ValueError", "bad shape", "File ...\nValueError: bad shape\n")
    assert isinstance(error, Exception) and str(error) == "your code raised ValueError: bad shape"
    assert (error.error_type, error.message, error.traceback_text) == (
        "ValueError", "bad shape", "File ...\nValueError: bad shape\n")
    assert testing.StudentCodeError("KeyError", "'x'").traceback_text == ""


@pytest.mark.parametrize("error_type, message", [
    ("ReplyTooLarge", "the value your code returned is larger than 64 MiB"),
    ("InvalidReply", "the test could not read what your code returned: not JSON"),
    ("NoReply", "the notebook's process did not answer the test")])
def test_a_reply_the_grader_made_says_what_went_wrong_not_that_the_students_code_raised_it(error_type, message):
    error = testing.student_error({"ok": False, "error_type": error_type, "message": message})
    assert isinstance(error, testing.StudentCodeError) and str(error) == message
    # A class of the student's own of that name, raised by their code, is still said to be raised.
    own = testing.student_error({"ok": False, "error_type": error_type, "message": "x", "builtins": ["Exception"]})
    assert str(own).startswith(f"your code raised {error_type} (an exception class of your notebook")


# --------------------------------------------------------------------------
# student and Remote, on the in-process backend

PROBE_CELL = '''
class Probe:
    """Answers every operator with the name of the dunder that ran, and always claims True."""

    def __init__(self):
        self.value = 1

    def __bool__(self):
        return True

    def __eq__(self, other):
        return True

    __hash__ = object.__hash__

    def __len__(self):
        return 7

    def __getitem__(self, key):
        return ("item", key)

    def __iter__(self):
        return iter([1, 2, 3])


def _dunder(name):
    return lambda self, *other: (name,) + other


for _name in ("add", "sub", "mul", "truediv", "pow", "matmul", "floordiv", "mod", "lt", "le", "gt", "ge"):
    setattr(Probe, f"__{_name}__", _dunder(_name))
    setattr(Probe, f"__r{_name}__", _dunder("r" + _name))
for _name in ("neg", "pos", "abs"):
    setattr(Probe, f"__{_name}__", _dunder(_name))

probe = Probe()


def helper(x):
    raise ValueError(f"bad x: {x}")


def buggy(x):
    return helper(x)
'''

BINARY = ("add", "sub", "mul", "truediv", "pow", "matmul", "floordiv", "mod")
APPLY = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
         "truediv": lambda a, b: a / b, "pow": lambda a, b: a**b, "matmul": lambda a, b: a @ b,
         "floordiv": lambda a, b: a // b, "mod": lambda a, b: a % b}


@pytest.mark.parametrize("name", BINARY)
def test_remote_arithmetic_runs_the_students_operator_with_the_operands_in_order(notebook, name):
    notebook(PROBE_CELL)
    probe = testing.student.probe
    assert APPLY[name](probe, 2) == (name, 2)
    assert APPLY[name](2, probe) == ("r" + name, 2)


@pytest.mark.parametrize(("name", "apply"), [("neg", lambda r: -r), ("pos", lambda r: +r), ("abs", abs)])
def test_remote_unary_operators_run_the_students_operator(notebook, name, apply):
    notebook(PROBE_CELL)
    assert apply(testing.student.probe) == (name,)


def test_remote_arithmetic_between_two_remotes_sends_both_as_handles(notebook):
    notebook(PROBE_CELL)
    name, other = testing.student.probe + testing.student.Probe()
    assert name == "add" and isinstance(other, testing.Remote)


def test_remote_has_no_truth_value(notebook):
    notebook(PROBE_CELL)
    with pytest.raises(TypeError, match="has no truth value in a test: compare data, not objects"):
        bool(testing.student.probe)
    with pytest.raises(TypeError):
        assert testing.student.probe


@pytest.mark.parametrize("compare", [
    lambda r: r < 1, lambda r: r <= 1, lambda r: r > 1, lambda r: r >= 1,
    lambda r: 1 < r, lambda r: 1 <= r, lambda r: 1 > r, lambda r: 1 >= r, lambda r: r < r,
], ids=["<", "<=", ">", ">=", "reflected <", "reflected <=", "reflected >", "reflected >=", "remote < remote"])
def test_remote_refuses_ordering_comparisons(notebook, compare):
    notebook(PROBE_CELL)
    with pytest.raises(TypeError, match="cannot be compared in a test: compare data, not objects"):
        compare(testing.student.probe)


def test_remote_equality_is_never_the_students_eq(notebook):
    notebook(PROBE_CELL)
    probe = testing.student.probe
    assert (probe == 3) is False and (probe != 3) is True and (probe == probe) is True
    assert (probe == testing.student.probe) is False  # two handles, compared by identity only


def test_remote_attributes_calls_len_items_and_iteration_go_to_the_students_object(notebook):
    namespace = notebook(PROBE_CELL)
    probe = testing.student.probe
    assert probe.value == 1
    probe.value = 5
    assert namespace["probe"].value == 5 and probe.value == 5
    assert len(probe) == 7 and probe[3] == ("item", 3) and list(probe) == [1, 2, 3]
    assert repr(probe) == repr(namespace["probe"]) and str(probe) == str(namespace["probe"])  # printed as in the kernel
    assert isinstance(testing.student.Probe(), testing.Remote)


def test_assert_close_refuses_a_remote_as_an_object_of_type_remote(notebook):
    notebook(PROBE_CELL)
    assert failure(testing.assert_close, testing.student.probe, 1.0) == (
        "the result should be a number or a tensor, but it is an object of type Remote")


def test_student_gets_the_notebooks_names_as_data(notebook):
    notebook("import torch\nweights = torch.arange(3.0)\ncount = 4")
    assert torch.equal(testing.student.weights, torch.arange(3.0)) and testing.student.count == 4


def test_student_of_an_undefined_name_raises_student_code_error_saying_run_the_cell(notebook):
    with pytest.raises(testing.StudentCodeError) as raised:
        testing.student.not_defined_anywhere_42
    assert raised.value.error_type == "NameError"
    assert str(raised.value) == ("your code raised NameError: name 'not_defined_anywhere_42' is not defined: "
                                 "run the cell that defines it first")


def test_student_dunder_names_are_attribute_errors_not_requests(notebook):
    with pytest.raises(AttributeError):
        testing.student.__wrapped__


def test_student_has_says_whether_the_notebook_defines_a_name(notebook):
    notebook(PROBE_CELL)
    assert testing.student.has("probe") is True and testing.student.has("Probe") is True
    assert testing.student.has("not_defined_anywhere_42") is False


def test_an_exception_in_the_students_code_is_a_student_code_error_with_their_frames(notebook):
    notebook(PROBE_CELL, filename="/tmp/ipykernel_1/cell_3.py")
    with pytest.raises(testing.StudentCodeError) as raised:
        testing.student.buggy(7)
    error = raised.value
    line = PROBE_CELL.splitlines().index('    raise ValueError(f"bad x: {x}")') + 1
    assert str(error) == f"your code raised ValueError: bad x: 7 (in /tmp/ipykernel_1/cell_3.py, line {line})"
    assert 'File "/tmp/ipykernel_1/cell_3.py"' in error.traceback_text and "in helper" in error.traceback_text


def test_student_run_returns_result_and_run_traced_also_the_torch_functions_called(notebook):
    notebook(PROBE_CELL)
    assert testing.student.run("result = probe.value + n", n=2) == 3
    assert testing.student.run("result = p.value", p=testing.student.probe) == 1
    value, called = testing.student.run_traced("import torch\nresult = torch.ones(2).sum()")
    assert value == 2.0 and "torch.Tensor.sum" in called


CELLS = [
    "",
    "%matplotlib inline\nimport torch",
    "def f(x):\n    return 1",
    "x, (y, z) = 1, (2, 3)\nw: int = 4",
    "def f(x):\n    return 2",
    "print(f(1))\nf(2)",
    "def g():\n    def f(x):\n        return 3\n    return f",
    "class C:\n    pass\nasync def h():\n    pass",
    "def broken(:\n    f = 1",
]


@pytest.mark.parametrize(("name", "cell"), [("f", 4), ("x", 3), ("y", 3), ("z", 3), ("w", 3), ("g", 6), ("C", 7),
                                            ("h", 7), ("torch", None), ("broken", None), ("missing", None)])
def test_student_source_is_the_last_cell_defining_the_name_at_top_level(notebook, name, cell):
    notebook(In=CELLS)
    assert testing.student.source(name) == ("" if cell is None else CELLS[cell])


def test_student_source_finds_a_definition_in_a_cell_with_magics(notebook):
    cell = "%load_ext autoreload\n!pip list\ndef f(x):\n    %time x\n    return x"
    notebook(In=["def f(x):\n    return 0", cell])
    assert testing.student.source("f") == cell


def test_student_source_finds_a_redefinition_in_a_cell_with_a_magic_assignment(notebook):
    cheat = "import torch.nn.functional as F\ndef f(x):\n    return F.conv2d(x, x)\nfiles = !ls"
    notebook(In=["def f(x):\n    return x * 2", cheat])
    assert testing.student.source("f") == cheat


def test_assert_no_forbidden_passes_clean_code_and_names_what_a_cell_used_or_ran(notebook):
    notebook(In=["import torch.nn.functional as F\ndef conv(x, w):\n    return F.conv2d(x, w)",
                 "def clean(x):\n    return x * 2"])
    testing.assert_no_forbidden("clean", ["conv2d"], ["torch.conv2d"], called=["torch.mul"])
    assert failure(testing.assert_no_forbidden, "conv", ["conv2d", "F"]) == (
        "conv must be written with elementary tensor operations only, but it uses F, conv2d. "
        "Replace these by your own loops and arithmetic.")
    assert failure(testing.assert_no_forbidden, "clean", ["conv2d"], ["torch.conv2d", "torch.unfold"],
                   called=["torch.unfold", "torch.mul"]).endswith("but it uses torch.unfold. "
                                                                  "Replace these by your own loops and arithmetic.")


def test_assert_no_forbidden_fails_when_no_cell_defines_the_name_at_top_level(notebook):
    notebook(In=["def g():\n    def nested():\n        pass"])
    assert failure(testing.assert_no_forbidden, "nested", ["conv2d"]) == (
        "could not find the cell that defines nested: keep it at the top level of its cell")
