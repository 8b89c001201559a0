"""Unit tests of the student side of a test: ``agent.serve`` answering requests.

Kernel-free and fast: requests are served in this process against
``sys.modules["__main__"].__dict__``, which is the namespace the agent uses
when no IPython shell is running (a fixture defines the "notebook's" names
there and removes them afterwards). Handles live in the agent's module-global
table, so these tests assert only on handles they made themselves.
"""

from __future__ import annotations

import base64
import pickle

import pytest
import torch

from dlcourse.bridge import agent
from dlcourse.bridge import wire


def serve(**request) -> dict:
    """One request through the agent, as bytes both ways, like the checker sends it."""
    return wire.loads(agent.serve(wire.dumps_request(request)))


def handle(name: str) -> dict:
    """A handle to the notebook's ``name`` (which must not be data)."""
    reply = serve(op="get", name=name)
    assert reply["ok"] and wire.is_handle(reply["value"]), reply
    return reply["value"]


STUDENT_CELL = '''
import torch

class Box:
    def __init__(self, value):
        self.value = value

    def double(self, times=1):
        return self.value * 2 * times

def helper(x):
    raise ValueError("student bug: " + str(x))

def boom(x):
    return helper(x)

def stop():
    raise KeyboardInterrupt

def leave():
    raise SystemExit(3)

def shout():
    raise RuntimeError("x" * 5000)

def unwrap(items):
    return [item.value for item in items["boxes"]]

box = Box(21)
weights = torch.arange(4.0)
'''


# --------------------------------------------------------------------------
# The requests


def test_get_returns_the_notebooks_value_as_data(notebook):
    notebook(STUDENT_CELL)
    reply = serve(op="get", name="weights")
    assert reply["ok"] is True and set(reply) == {"ok", "value"}
    assert torch.equal(reply["value"], torch.arange(4.0))


def test_get_returns_a_handle_for_an_object_that_is_not_data(notebook):
    notebook(STUDENT_CELL)
    first, second = handle("box"), handle("box")
    assert first != second  # every reply names a fresh handle


def test_get_of_an_undefined_name_says_to_run_the_cell_that_defines_it(notebook):
    reply = serve(op="get", name="not_defined_anywhere_42")
    assert reply["ok"] is False and reply["error_type"] == "NameError"
    assert reply["message"] == "name 'not_defined_anywhere_42' is not defined: run the cell that defines it first"


def test_getattr_and_setattr_act_on_the_object_a_handle_names(notebook):
    namespace = notebook(STUDENT_CELL)
    box = handle("box")
    assert serve(op="getattr", target=box, name="value") == {"ok": True, "value": 21}
    assert serve(op="setattr", target=box, name="value", value=5) == {"ok": True, "value": None}
    assert namespace["box"].value == 5
    assert serve(op="getattr", target=box, name="missing")["error_type"] == "AttributeError"


def test_setattr_resolves_a_handle_given_as_the_value(notebook):
    namespace = notebook(STUDENT_CELL)
    serve(op="setattr", target=handle("box"), name="other", value=handle("box"))
    assert namespace["box"].other is namespace["box"]


def test_call_passes_args_and_kwargs_and_resolves_handles_nested_in_them(notebook):
    notebook(STUDENT_CELL)
    double = serve(op="getattr", target=handle("box"), name="double")["value"]
    assert serve(op="call", target=double, args=[], kwargs={"times": 3}) == {"ok": True, "value": 126}
    boxes = {"boxes": [handle("box"), handle("box")]}
    assert serve(op="call", target=handle("unwrap"), args=[boxes], kwargs={})["value"] == [21, 21]


@pytest.mark.parametrize(("name", "args", "expected"), [
    ("add", [2, 3], 5), ("sub", [2, 3], -1), ("mul", [2, 3], 6), ("truediv", [3, 2], 1.5), ("pow", [2, 3], 8),
    ("floordiv", [7, 2], 3), ("mod", [7, 2], 1), ("neg", [4], -4), ("pos", [-4], -4), ("abs", [-4], 4),
])
def test_operator_applies_the_named_function_of_the_operator_module(name, args, expected):
    assert serve(op="operator", name=name, args=args) == {"ok": True, "value": expected}


def test_operator_resolves_handles_and_applies_the_students_dunder(notebook):
    notebook("class Adds:\n    def __add__(self, other):\n        return ('added', other)\nadds = Adds()\n")
    assert serve(op="operator", name="add", args=[handle("adds"), 1])["value"] == ("added", 1)
    matmul = serve(op="operator", name="matmul", args=[torch.eye(2), torch.ones(2)])
    assert torch.equal(matmul["value"], torch.ones(2))


def test_an_unknown_request_is_an_error_reply():
    reply = serve(op="frobnicate")
    assert reply["ok"] is False and reply["error_type"] == "ValueError"
    assert reply["message"] == "unknown request 'frobnicate'"


def test_a_request_that_is_not_plain_data_is_refused_before_anything_runs(tmp_path):
    class RunsPython:
        def __reduce__(self):
            return exec, (f"open({str(tmp_path / 'ran')!r}, 'w').close()",)

    with pytest.raises(pickle.UnpicklingError):
        agent.serve(wire.dumps({"op": "get", "name": RunsPython()}))
    assert not (tmp_path / "ran").exists()


# --------------------------------------------------------------------------
# run


def test_run_sees_the_notebooks_names_and_the_inputs_and_returns_result(notebook):
    notebook(STUDENT_CELL)
    reply = serve(op="run", code="result = (box.value, weights.sum().item(), n * 2)", inputs={"n": 4})
    assert reply == {"ok": True, "value": (21, 6.0, 8)}


def test_run_resolves_handles_in_its_inputs(notebook):
    notebook(STUDENT_CELL)
    reply = serve(op="run", code="result = [b.value for b in boxes]", inputs={"boxes": [handle("box")]})
    assert reply["value"] == [21]


def test_run_without_result_returns_none_even_after_a_run_that_set_it(notebook):
    notebook(STUDENT_CELL)
    assert serve(op="run", code="result = 41", inputs={})["value"] == 41
    assert serve(op="run", code="x = 1", inputs={}) == {"ok": True, "value": None}


def test_run_does_not_see_a_result_defined_by_the_notebook(notebook):
    notebook(result="the notebook's own")
    assert serve(op="run", code="seen = 'result' in globals()\nresult = seen", inputs={})["value"] is False
    assert serve(op="run", code="pass", inputs={})["value"] is None


def test_run_does_not_add_to_or_change_the_notebooks_names(notebook):
    namespace = notebook(STUDENT_CELL)
    names = dict(namespace)
    code = "new_name_from_snippet = 1\nbox = None\nimport fractions\nresult = 2"
    assert serve(op="run", code=code, inputs={"weights": 0})["value"] == 2
    assert dict(namespace) == names and "new_name_from_snippet" not in namespace and "result" not in namespace


def test_run_inputs_shadow_the_notebooks_names_only_inside_the_snippet(notebook):
    namespace = notebook(STUDENT_CELL)
    assert serve(op="run", code="result = box", inputs={"box": 7})["value"] == 7
    assert namespace["box"].value == 21


# --------------------------------------------------------------------------
# Errors in the student's code


@pytest.mark.parametrize("via", ["run", "call"])
def test_a_student_exception_is_a_reply_with_type_message_and_the_students_frames_only(notebook, via):
    notebook(STUDENT_CELL, filename="/tmp/ipykernel_1/cell_7.py")
    if via == "run":
        reply = serve(op="run", code="x = 0\nresult = boom(3)", inputs={})
    else:
        reply = serve(op="call", target=handle("boom"), args=[3], kwargs={})
    assert reply["ok"] is False and set(reply) == {"ok", "error_type", "message", "traceback", "builtins", "where"}
    assert reply["error_type"] == "ValueError" and reply["message"] == "student bug: 3"
    assert reply["builtins"] == ["ValueError", "Exception", "BaseException"]
    assert reply["where"].startswith("in /tmp/ipykernel_1/cell_7.py, line ")  # the deepest frame: helper's
    trace = reply["traceback"]
    assert 'File "/tmp/ipykernel_1/cell_7.py"' in trace
    assert "in boom" in trace and "in helper" in trace and trace.index("in boom") < trace.index("in helper")
    assert trace.endswith("ValueError: student bug: 3\n")
    assert "<test snippet>" not in trace and agent.__file__ not in trace and "agent.py" not in trace


def test_an_error_in_the_snippet_itself_leaves_no_frames_but_the_exception_line():
    reply = serve(op="run", code="result = 1 / 0", inputs={})
    assert reply["error_type"] == "ZeroDivisionError"
    assert reply["traceback"] == "ZeroDivisionError: division by zero\n"


def test_a_long_message_and_traceback_are_cut_keeping_the_traceback_end(notebook):
    notebook(STUDENT_CELL)
    reply = serve(op="call", target=handle("shout"), args=[], kwargs={})
    assert reply["message"] == "x" * 2000
    assert len(reply["traceback"]) == 4000 and reply["traceback"].endswith("x" * 100 + "\n")


def test_system_exit_from_the_students_code_is_an_error_reply(notebook):
    notebook(STUDENT_CELL)
    reply = serve(op="call", target=handle("leave"), args=[], kwargs={})
    assert reply["ok"] is False and reply["error_type"] == "SystemExit" and reply["message"] == "3"


def test_keyboard_interrupt_from_the_students_code_propagates(notebook):
    notebook(STUDENT_CELL)
    with pytest.raises(KeyboardInterrupt):
        agent.serve(wire.dumps_request({"op": "call", "target": handle("stop"), "args": [], "kwargs": {}}))


# --------------------------------------------------------------------------
# Tracing


def test_trace_records_the_torch_functions_and_methods_the_code_called():
    reply = serve(op="run", code="import torch\nresult = torch.matmul(a, b).sum()", inputs={
        "a": torch.ones(2, 3), "b": torch.ones(3, 2)}, trace=True)
    assert reply["ok"] and reply["value"] == torch.tensor(12.0)
    assert {"torch.matmul", "torch.Tensor.sum"} <= set(reply["called"])
    assert reply["called"] == sorted(set(reply["called"]))


def test_trace_records_factory_functions_too():
    reply = serve(op="run", code="import torch\nresult = torch.zeros(2)", inputs={}, trace=True)
    assert "torch.zeros" in reply["called"]


def test_trace_does_not_count_the_agents_own_conversion_of_the_reply():
    reply = serve(op="run", code="result = a", inputs={"a": torch.ones(2, requires_grad=True)}, trace=True)
    assert reply["called"] == []


def test_trace_is_reported_when_the_code_raises_too():
    reply = serve(op="run", code="import torch\ntorch.ones(1).exp()\nraise ValueError('late')", inputs={}, trace=True)
    assert reply["ok"] is False and reply["error_type"] == "ValueError"
    assert "torch.Tensor.exp" in reply["called"]


def test_without_trace_the_reply_has_no_called_list():
    reply = serve(op="run", code="import torch\nresult = torch.zeros(1)", inputs={})
    assert "called" not in reply


# --------------------------------------------------------------------------
# serve_b64, the entry point the checker's kernel code calls


def test_serve_b64_displays_the_base64_reply_under_the_agents_mime_type(monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda data, raw=False: shown.append((data, raw)))
    agent.serve_b64(base64.b64encode(wire.dumps_request({"op": "operator", "name": "add", "args": [1, 2]})).decode())
    [(data, raw)] = shown
    assert raw is True and list(data) == [wire.REPLY_MIME_TYPE]
    assert wire.loads(base64.b64decode(data[wire.REPLY_MIME_TYPE])) == {"ok": True, "value": 3}
