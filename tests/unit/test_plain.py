"""Plain nbgrader test cells run against the notebook in this process (the in-process backend, no kernel).

The student's notebook is ``__main__`` (see the ``notebook`` fixture); a plain cell runs with a
:class:`PlainNamespace` and is scored by stock nbgrader's rules, checked against nbgrader's own
``determine_grade`` on generated outputs.
"""

from __future__ import annotations

import builtins
import linecache
import random

import nbformat
import numpy as np
import pytest

from dlcourse import testing
from dlcourse.bridge import agent, backends
from dlcourse.grading.plain import PlainNamespace, partial_grade, run_plain_cell, score_outputs
from dlcourse.grading.run import failure_message

STUDENT = '''
import numpy as np

def squares(n):
    if n < 1:
        raise ValueError("n must be at least 1")
    return [i * i for i in range(1, n + 1)]

def sum_of_squares(n):
    return sum(squares(n))

class AlwaysEqual(list):
    def __eq__(self, other):
        return True
    __hash__ = None

class Sneaky(int):
    def __eq__(self, other):
        return True
    __hash__ = int.__hash__

def cheat_list(n):
    return AlwaysEqual(range(n))

def cheat_int(n):
    return Sneaky(n)

class BadInput(ValueError):
    pass

def raise_own(x):
    raise BadInput(f"no {x}")

def raise_builtin(kind, text):
    import builtins
    raise getattr(builtins, kind)(text)

threshold = 1

def above(x):
    return x > threshold

class Account:
    def __init__(self):
        self.balance = 0

    def deposit(self, k):
        self.balance += k
        return self.balance

    def __repr__(self):
        return f"Account({self.balance})"

def identity(x):
    return x
'''


def run(source: str, namespace: PlainNamespace | None = None, pattern: str = "") -> tuple[float, str, list]:
    namespace = namespace if namespace is not None else PlainNamespace({"__name__": "tests"})
    outputs = run_plain_cell(source, namespace, backends.InProcessBackend(), pattern, describe_error=failure_message)
    score, message = score_outputs(outputs, 1.0)
    return score, message, outputs


def test_the_user_guide_idiom_of_deleting_squares_checks_that_sum_of_squares_calls_it(notebook):
    space = notebook(STUDENT)
    original = space["squares"]
    source = ("saved = squares\ndel squares\ntry:\n    sum_of_squares(1)\nexcept NameError:\n    pass\n"
              "else:\n    raise AssertionError('does not call squares')\nfinally:\n    squares = saved\n"
              "assert sum_of_squares(3) == 14")
    assert run(source)[0] == 1.0
    assert space["squares"] is original  # put back in the student's namespace, as itself


def test_a_sum_of_squares_that_does_not_call_squares_fails_the_idiom(notebook):
    notebook(STUDENT + "\ndef sum_of_squares(n):\n    return sum(i * i for i in range(1, n + 1))")
    score, message, _ = run("saved = squares\ndel squares\ntry:\n    sum_of_squares(1)\nexcept NameError:\n"
                            "    pass\nelse:\n    raise AssertionError('does not call squares')\n"
                            "finally:\n    squares = saved")
    assert score == 0.0 and message == "AssertionError: does not call squares"


@pytest.mark.parametrize("seed", range(8))
def test_results_that_are_exact_plain_data_compare_as_data(notebook, seed):
    notebook(STUDENT)
    n = random.Random(seed).randint(1, 30)
    assert run(f"assert squares({n}) == {[i * i for i in range(1, n + 1)]}\nassert sum_of_squares({n}) == "
               f"{sum(i * i for i in range(1, n + 1))}")[0] == 1.0


@pytest.mark.parametrize("seed", range(8))
def test_an_always_equal_list_or_int_of_the_student_never_compares_equal(notebook, seed):
    notebook(STUDENT)
    rng = random.Random(seed)
    expected = [rng.randint(-9, 9) for _ in range(rng.randint(0, 5))]
    assert run(f"assert cheat_list(3) == {expected}")[0] == 0.0
    assert run(f"assert cheat_int(3) == {rng.randint(0, 9)}")[0] == 0.0
    assert run(f"assert {expected} == cheat_list(2)")[0] == 0.0
    assert run("assert cheat_list(2) != [0, 1]")[0] == 1.0  # identity only: never equal to data


BUILTIN_ERRORS = [ValueError, TypeError, KeyError, IndexError, ZeroDivisionError, FileNotFoundError, OSError,
                  NotImplementedError, RuntimeError, AttributeError, ArithmeticError, LookupError, RecursionError,
                  AssertionError, NameError, StopIteration]


@pytest.mark.parametrize("kind", BUILTIN_ERRORS, ids=lambda k: k.__name__)
def test_a_builtin_exception_of_the_students_code_is_that_type_in_the_test(notebook, kind):
    notebook(STUDENT)
    text = f"bad {kind.__name__.lower()}"
    with pytest.raises(kind) as raised:
        testing.student.raise_builtin(kind.__name__, text)
    error = raised.value
    assert isinstance(error, testing.StudentCodeError) and error.error_type == kind.__name__
    assert str(error).startswith(f"your code raised {kind.__name__}: {kind(text)} (in ")
    for base in kind.__mro__:
        if base is not kind and base is not object:
            assert isinstance(error, base)
    assert score_of(f"try:\n    raise_builtin('{kind.__name__}', 'x')\nexcept {kind.__name__}:\n    pass") == 1.0


def score_of(source: str) -> float:
    return run(source)[0]


def test_a_students_exit_is_no_systemexit_in_the_test_and_fails_it(notebook):
    notebook(STUDENT)
    with pytest.raises(testing.StudentCodeError) as raised:
        testing.student.raise_builtin("SystemExit", "0")
    assert not isinstance(raised.value, SystemExit) and raised.value.error_type == "SystemExit"
    assert score_of("raise_builtin('SystemExit', 3)") == 0.0


def test_a_student_defined_exception_is_a_named_stand_in_that_is_still_its_builtin_base(notebook):
    notebook(STUDENT)
    with pytest.raises(ValueError) as raised:
        testing.student.raise_own(4)
    error = raised.value
    assert type(error).__name__ == "StudentException" and isinstance(error, testing.StudentCodeError)
    assert str(error).startswith("your code raised BadInput (an exception class of your notebook, a ValueError): "
                                 "no 4")
    assert score_of("try:\n    raise_own(1)\nexcept ValueError:\n    pass") == 1.0


def test_the_message_names_the_students_cell_and_line(notebook, monkeypatch):
    filename = "/tmp/ipykernel_9/4242.py"
    source = "def bad(x, w):\n    y = x + 1\n    return x @ w\n"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    monkeypatch.setattr(agent, "_cell_numbers", lambda: {filename: 12})
    try:
        notebook(source, filename=filename)
        with pytest.raises(TypeError) as raised:
            testing.student.bad(3, "w")
    finally:
        linecache.cache.pop(filename, None)
    assert raised.value.where == "in your cell [12], line 3: `return x @ w`"
    assert str(raised.value).endswith("(in your cell [12], line 3: `return x @ w`)")


def test_a_store_to_a_students_name_reaches_the_students_code_and_the_tests_own_names_stay_here(notebook):
    space = notebook(STUDENT)
    namespace = PlainNamespace({"__name__": "tests"})
    assert run("threshold = 5\nassert not above(4)\nassert above(6)\nmine = 7", namespace)[0] == 1.0
    assert space["threshold"] == 5 and "mine" not in space and dict.__getitem__(namespace, "mine") == 7
    assert run("assert mine == 7\nthreshold = 1", namespace)[0] == 1.0


def test_data_a_test_stored_reads_back_as_stored_even_if_the_students_code_changes_it(notebook):
    notebook(STUDENT + "\ndef meddle():\n    global threshold\n    threshold = [0, 1]\n")
    assert score_of("threshold = [1, 2]\nmeddle()\nassert threshold == [1, 2]") == 1.0


def test_a_test_cannot_give_the_student_a_function_of_its_own(notebook):
    notebook(STUDENT)
    score, message, _ = run("def fake(n):\n    return []\nsquares = fake")
    assert score == 0.0 and "cannot give squares an object of its own (function)" in message


def test_names_the_cells_imports_bind_are_the_tests_even_where_the_student_has_them(notebook):
    space = notebook(STUDENT + "\nmath = 'not the module'\n")
    assert score_of("import math\nassert math.isclose(math.sqrt(2) ** 2, 2.0)") == 1.0
    assert space["math"] == "not the module"


def test_a_students_module_is_the_graders_import_of_it(notebook):
    notebook(STUDENT)
    namespace = PlainNamespace({"__name__": "tests"})
    assert run("grader_np = np", namespace)[0] == 1.0
    assert dict.__getitem__(namespace, "grader_np") is np


def test_builtins_are_the_tests_even_where_the_student_shadows_them(notebook):
    notebook(STUDENT + "\ndef len(x):\n    return 99\n")
    assert score_of("assert len([1, 2]) == 2") == 1.0


@pytest.mark.parametrize("seed", range(6))
def test_numpy_arrays_and_scalars_come_back_as_numpy_with_dtype_and_shape(notebook, seed):
    rng = np.random.default_rng(seed)
    dtype = [np.float32, np.float64, np.int64, np.int32, np.uint8, np.bool_, np.complex128, np.float16][seed]
    shape = tuple(int(d) for d in rng.integers(0, 4, size=int(rng.integers(0, 3))))
    value = rng.normal(size=shape).astype(dtype) if shape else dtype(rng.normal())
    notebook(STUDENT, value=value)
    namespace = PlainNamespace({"__name__": "tests"})
    assert run("got = identity(value)", namespace)[0] == 1.0
    got = dict.__getitem__(namespace, "got")
    assert type(got) is type(value) and got.dtype == value.dtype and np.shape(got) == np.shape(value)
    assert np.array_equal(got, value)


def test_numpy_arrays_a_test_passes_reach_the_student_as_numpy(notebook):
    notebook(STUDENT)
    assert score_of("import numpy as np\nr = identity(np.arange(3, dtype=np.int16))\n"
                    "assert r.dtype == np.int16\nnp.testing.assert_array_equal(r, [0, 1, 2])") == 1.0


def test_dlcourse_style_requests_still_get_tensors_for_numpy_arrays(notebook):
    import torch

    notebook(STUDENT, value=np.arange(3.0))
    assert isinstance(testing.student.identity(np.arange(3.0)), torch.Tensor)


def test_a_students_object_prints_isinstance_indexing_and_attributes_as_in_the_kernel(notebook):
    notebook(STUDENT)
    score, _, outputs = run("acct = Account()\nacct.deposit(3)\nprint(acct, f'{acct}', repr(acct))\n"
                            "assert isinstance(acct, Account) and not isinstance(3, Account)\n"
                            "acct.balance = 10\nassert acct.deposit(1) == 11")
    assert score == 1.0 and outputs[0]["text"] == "Account(3) Account(3) Account(3)\n"


def test_printed_output_is_kept_and_stderr_scores_zero_unless_the_ignore_pattern_matches(notebook):
    notebook(STUDENT)
    score, _, outputs = run("print('hello')")
    assert score == 1.0 and outputs == [nbformat.v4.new_output("stream", name="stdout", text="hello\n")]
    assert run("import sys\nn = sys.stderr.write('oops')")[0] == 0.0
    assert run("import sys\nn = sys.stderr.write('UserWarning: old API')", pattern=r"Warning\b")[0] == 1.0
    assert run("import sys\nn = sys.stderr.write('UserWarning: old API')", pattern=r"^nothing")[0] == 0.0


@pytest.mark.parametrize("seed", range(6))
def test_a_final_number_is_partial_credit(notebook, seed):
    notebook(STUDENT)
    value = round(random.Random(seed).uniform(0, 1), 3)
    assert run(f"x = {value}\nx")[0] == pytest.approx(value)


def _nbgrader_grade(outputs: list, points: float):
    from nbgrader.utils import determine_grade

    cell = nbformat.v4.new_code_cell("pass")
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "points": points, "grade_id": "t"}
    cell.outputs = outputs
    try:
        return determine_grade(cell)[0]
    except ValueError:
        return "refused"


def _random_output(rng: random.Random):
    kind = rng.choice(["stdout", "stderr", "error", "result", "result", "display"])
    if kind in ("stdout", "stderr"):
        return nbformat.v4.new_output("stream", name=kind, text=rng.choice(["x\n", "Warning: y", ""]))
    if kind == "error":
        return nbformat.v4.new_output("error", ename="ValueError", evalue="bad", traceback=[])
    if kind == "display":
        return nbformat.v4.new_output("display_data", data={"text/plain": "0.5"})
    text = rng.choice([str(round(rng.uniform(-1, 4), 2)), "'text'", "True", "[0.5]", "nan", "inf", "1e3", "3"])
    return nbformat.v4.new_output("execute_result", data={"text/plain": text}, execution_count=1)


@pytest.mark.parametrize("seed", range(200))
def test_scores_agree_with_nbgraders_determine_grade_on_generated_outputs(seed):
    rng = random.Random(seed)
    outputs = [_random_output(rng) for _ in range(rng.randint(0, 3))]
    points = rng.choice([1.0, 2.0, 0.5, 3.0])
    stock = _nbgrader_grade(outputs, points)
    ours, _ = score_outputs(outputs, points)
    texts = [o.get("data", {}).get("text/plain") for o in outputs if o["output_type"] == "execute_result"]
    if stock == "refused" or (texts and texts[0] == "nan"):
        assert ours == 0.0  # nbgrader fails the notebook, or (NaN) gives full marks: we give nothing
    else:
        assert ours == stock


def test_partial_grade_refuses_more_than_the_cells_points_and_takes_non_numbers_as_full_marks():
    with pytest.raises(ValueError):
        partial_grade("2.5", 2.0)
    assert partial_grade("'done'", 2.0) == 2.0 and partial_grade("-1", 2.0) == 2.0 and partial_grade("1", 2.0) == 1


def test_the_plain_mode_ends_with_the_cell(notebook):
    notebook(STUDENT)
    run("x = identity(1)")
    assert testing.plain_cell.get() is False
    assert not hasattr(builtins, "get_ipython")


def test_a_helper_an_earlier_test_cell_defined_reaches_the_students_names_it_uses(notebook):
    notebook(STUDENT)
    namespace = PlainNamespace({"__name__": "tests"})
    assert run("def check(n):\n    assert sum_of_squares(n) == sum(squares(n))", namespace)[0] == 1.0
    assert run("check(4)", namespace)[0] == 1.0
    assert run("def missing():\n    return no_such_name_anywhere\n", namespace)[0] == 1.0
    score, message, _ = run("missing()", namespace)
    assert score == 0.0 and "NameError" in message


@pytest.mark.parametrize("seed", range(5))
def test_feedback_renames_your_cell_n_from_the_kernels_count_to_the_feedbacks_cell_number(seed):
    from dlcourse.insight.feedback import kernel_cell_names, name_cells

    rng = random.Random(seed)
    cells, count, kernel_numbers = [], 0, {}
    for number in range(1, rng.randint(3, 8)):
        cell = nbformat.v4.new_code_cell(f"x{number} = {number}")
        if rng.random() < 0.6:  # a student's cell: the kernel ran it (a test cell run by the grader has no count)
            count += 1
            cell.execution_count = count
            kernel_numbers[count] = number
        cells.append(cell)
    graded = nbformat.v4.new_notebook(cells=cells)
    names = kernel_cell_names(graded)
    for count, number in kernel_numbers.items():
        text = f"your code raised TypeError: no (in your cell [{count}], line 1: `x = 1`)"
        assert name_cells(text, names) == f"your code raised TypeError: no (in your cell {number}, line 1: `x = 1`)"
    assert name_cells("in your cell [99], line 1", names) == "in your cell [99], line 1"
