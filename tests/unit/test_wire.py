"""Unit tests of the wire format: what may cross from the student's side to the tests.

Kernel-free and fast: they call :mod:`dlcourse.bridge.wire` directly. The security
claims of the wire are the point here -- only exact builtin types and plain
tensors come through as data, everything else becomes a handle, and ``loads``
unpickles nothing but plain data, so a student cannot smuggle an object whose
``__eq__`` always holds (or a pickle that runs code) into the checker.
"""

from __future__ import annotations

import collections
import io
import os
import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dlcourse.bridge import wire

SETTINGS = settings(max_examples=40, deadline=None, database=None)


def label(value) -> str:
    """A short test id for a parametrised value."""
    if isinstance(value, torch.Tensor):
        return f"tensor{tuple(value.shape)}-{str(value.dtype).removeprefix('torch.')}"
    text = repr(value)
    # No memory addresses in test ids: pytest-xdist's workers must collect the same ids.
    return (f"<{type(value).__name__} object>" if " at 0x" in text else text)[:40]


class Handles:
    """A ``make_handle`` that records what it was asked to name."""

    def __init__(self):
        self.objects: list = []

    def __call__(self, obj) -> dict:
        self.objects.append(obj)
        return {wire.HANDLE_KEY: len(self.objects)}


def assert_same(actual, expected, floats_by_repr: bool = False) -> None:
    """Equal values of exactly the same types, recursively (``True == 1`` does not count).

    ``floats_by_repr``: floats compared by their repr (NaN is NaN, -0.0 is not 0.0).
    """
    assert type(actual) is type(expected), (actual, expected)
    if isinstance(expected, torch.Tensor):
        assert actual.dtype == expected.dtype and actual.shape == expected.shape
        assert torch.equal(actual, expected)
    elif type(expected) in (list, tuple):
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected):
            assert_same(a, e, floats_by_repr)
    elif type(expected) is dict:
        assert list(actual) == list(expected)
        for key in expected:
            assert_same(actual[key], expected[key], floats_by_repr)
    elif floats_by_repr and type(expected) is float:
        assert repr(actual) == repr(expected)
    else:
        assert actual == expected


class AlwaysEqualInt(int):
    def __eq__(self, other):
        return True

    __hash__ = int.__hash__


class AlwaysEqualFloat(float):
    def __eq__(self, other):
        return True

    __hash__ = float.__hash__


class AlwaysEqualStr(str):
    def __eq__(self, other):
        return True

    __hash__ = str.__hash__


class AlwaysEqualBytes(bytes):
    def __eq__(self, other):
        return True

    __hash__ = bytes.__hash__


class AlwaysEqualList(list):
    def __eq__(self, other):
        return True


class AlwaysEqualTuple(tuple):
    def __eq__(self, other):
        return True

    __hash__ = tuple.__hash__


class AlwaysEqualDict(dict):
    def __eq__(self, other):
        return True


class AlwaysEqual:
    def __eq__(self, other):
        return True


class TensorSubclass(torch.Tensor):
    pass


# --------------------------------------------------------------------------
# to_data: builtins


@pytest.mark.parametrize("value", [None, True, False, 0, -7, 2**80, 2.5, float("inf"), 1 + 2j, "", "text", b"\x00b"],
                         ids=label)
def test_to_data_returns_exact_builtin_values_themselves(value):
    handles = Handles()
    assert wire.to_data(value, handles) is value
    assert handles.objects == []


@pytest.mark.parametrize("value", [
    AlwaysEqualInt(3), AlwaysEqualFloat(2.5), AlwaysEqualStr("a"), AlwaysEqualBytes(b"a"),
    AlwaysEqualList([1]), AlwaysEqualTuple((1,)), AlwaysEqualDict(a=1), AlwaysEqual(),
    collections.namedtuple("Point", "x y")(1, 2), collections.OrderedDict(a=1), {1, 2}, frozenset({1}),
    bytearray(b"a"), range(3), object(), len, type,
], ids=lambda value: type(value).__name__)
def test_to_data_turns_builtin_subclasses_and_other_objects_into_handles(value):
    handles = Handles()
    assert wire.to_data(value, handles) == {wire.HANDLE_KEY: 1}
    assert handles.objects == [value] and handles.objects[0] is value


def test_to_data_converts_nested_containers_item_by_item_keeping_their_types():
    handles = Handles()
    sneaky = AlwaysEqual()
    value = {"a": [1, (2.5, None, [b"x"])], 3: {"b": (sneaky, torch.ones(2))}, "c": ()}
    data = wire.to_data(value, handles)
    assert_same(data, {"a": [1, (2.5, None, [b"x"])], 3: {"b": ({wire.HANDLE_KEY: 1}, torch.ones(2))}, "c": ()})
    assert handles.objects == [sneaky]


def test_to_data_turns_a_container_holding_a_builtin_subclass_into_one_with_a_handle_there():
    handles = Handles()
    assert wire.to_data([1, AlwaysEqualInt(2), 3], handles) == [1, {wire.HANDLE_KEY: 1}, 3]


@pytest.mark.parametrize("value", [{(1, 2): 3}, {1.5: 2}, {True: 1}, {None: 1}, {AlwaysEqualStr("k"): 1},
                                   {AlwaysEqualInt(1): 1}, {"ok": 1, b"bytes": 2}], ids=label)
def test_to_data_turns_a_dict_with_keys_other_than_exact_str_or_int_into_a_handle(value):
    handles = Handles()
    assert wire.to_data(value, handles) == {wire.HANDLE_KEY: 1}
    assert handles.objects == [value]


def test_to_data_keeps_a_dict_with_str_and_int_keys_in_order():
    data = wire.to_data({"b": 1, 2: "two", "a": None}, Handles())
    assert list(data.items()) == [("b", 1), (2, "two"), ("a", None)]


# --------------------------------------------------------------------------
# to_data: tensors


def test_to_data_detaches_a_tensor_from_the_autograd_graph():
    leaf = torch.ones(3, requires_grad=True)
    tensor = leaf * 2
    data = wire.to_data(tensor, Handles())
    assert not data.requires_grad and data.grad_fn is None
    assert torch.equal(data, torch.full((3,), 2.0))


def test_to_data_copies_a_tensor_so_later_changes_on_either_side_do_not_show_on_the_other():
    tensor = torch.zeros(4)
    data = wire.to_data(tensor, Handles())
    assert data.data_ptr() != tensor.data_ptr()
    tensor += 1
    assert torch.equal(data, torch.zeros(4))
    data -= 5
    assert torch.equal(tensor, torch.ones(4))


@pytest.mark.parametrize("index", [(slice(None), 1), (1,)], ids=["column", "row"])
def test_to_data_copies_only_a_view_itself_not_the_storage_of_its_base(index):
    base = torch.arange(12.0).reshape(3, 4)
    view = base[index]
    data = wire.to_data(view, Handles())
    assert torch.equal(data, view)
    assert data.untyped_storage().nbytes() == view.numel() * 4
    assert data.untyped_storage().data_ptr() != base.untyped_storage().data_ptr()


def test_to_data_returns_tensors_on_the_cpu():
    assert wire.to_data(torch.ones(2), Handles()).device == torch.device("cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_to_data_moves_a_cuda_tensor_to_the_cpu():
    tensor = torch.arange(3.0, device="cuda")
    data = wire.to_data(tensor, Handles())
    assert data.device == torch.device("cpu") and torch.equal(data, torch.arange(3.0))


@pytest.mark.parametrize("make", [lambda t: t.as_subclass(TensorSubclass), lambda t: torch.nn.Parameter(t)],
                         ids=["subclass", "Parameter"])
def test_to_data_strips_tensor_subclasses_to_a_plain_tensor(make):
    tensor = make(torch.arange(3.0))
    data = wire.to_data(tensor, Handles())
    assert type(data) is torch.Tensor and not data.requires_grad
    assert torch.equal(data, torch.arange(3.0))


@pytest.mark.parametrize("dtype", [torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
                                   torch.float16, torch.bfloat16, torch.float32, torch.float64,
                                   torch.complex64, torch.complex128], ids=str)
def test_to_data_keeps_integer_bool_floating_and_complex_tensors_with_their_dtype(dtype):
    tensor = torch.tensor([0, 1, 1], dtype=dtype)
    data = wire.to_data(tensor, Handles())
    assert type(data) is torch.Tensor and data.dtype == dtype and torch.equal(data, tensor)


def test_to_data_keeps_float8_tensors_as_floating_point():
    tensor = torch.tensor([0.0, 1.0]).to(torch.float8_e4m3fn)
    data = wire.to_data(tensor, Handles())
    assert data.dtype == torch.float8_e4m3fn and torch.equal(data.float(), torch.tensor([0.0, 1.0]))


@pytest.mark.parametrize("dtype", [torch.uint16, torch.uint32, torch.uint64], ids=str)
def test_to_data_turns_tensors_of_unusual_unsigned_dtypes_into_handles(dtype):
    tensor = torch.zeros(2, dtype=dtype)
    handles = Handles()
    assert wire.to_data(tensor, handles) == {wire.HANDLE_KEY: 1}
    assert handles.objects == [tensor]


def test_to_data_turns_a_quantized_tensor_into_a_handle():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quantized tensors are deprecated; what matters is they are not data
        tensor = torch.quantize_per_tensor(torch.ones(2), 0.1, 0, torch.qint8)
    assert wire.to_data(tensor, Handles()) == {wire.HANDLE_KEY: 1}


def test_to_data_converts_torch_size_dtype_and_device_to_plain_values():
    handles = Handles()
    size = wire.to_data(torch.Size([2, 3]), handles)
    assert type(size) is tuple and size == (2, 3) and all(type(d) is int for d in size)
    assert wire.to_data(torch.float32, handles) == "torch.float32"
    assert wire.to_data(torch.device("cpu"), handles) == "cpu"
    assert wire.to_data([torch.int64, torch.Size([])], handles) == ["torch.int64", ()]
    assert handles.objects == []


# --------------------------------------------------------------------------
# to_data: NumPy


@pytest.mark.parametrize("array", [np.arange(6.0).reshape(2, 3), np.array([1, 2], dtype=np.int32),
                                   np.array([True, False]), np.array([1j, 2]), np.array([1, 2], dtype=np.uint8),
                                   np.zeros((0, 3), dtype=np.float32)], ids=lambda a: str(a.dtype))
def test_to_data_turns_numeric_numpy_arrays_into_tensors_of_the_same_dtype(array):
    data = wire.to_data(array, Handles())
    assert type(data) is torch.Tensor and data.shape == array.shape
    assert data.numpy().dtype == array.dtype and np.array_equal(data.numpy(), array)


def test_to_data_copies_a_numpy_array_and_accepts_negative_strides():
    array = np.arange(6.0)
    data = wire.to_data(array[::-1], Handles())
    array[:] = -1
    assert torch.equal(data, torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0, 0.0], dtype=torch.float64))


@pytest.mark.parametrize("array", [np.array(["a"]), np.array([object()]), np.array(["2020-01-01"], dtype="M8[D]"),
                                   np.array([b"x"])], ids=lambda a: a.dtype.kind)
def test_to_data_turns_non_numeric_numpy_arrays_into_handles(array):
    assert wire.to_data(array, Handles()) == {wire.HANDLE_KEY: 1}


@pytest.mark.parametrize(("scalar", "expected"), [(np.float32(1.5), 1.5), (np.float16(0.5), 0.5), (np.int64(3), 3),
                                                  (np.int8(-2), -2), (np.uint32(7), 7), (np.bool_(True), True),
                                                  (np.complex64(1j), 1j)], ids=lambda v: type(v).__name__)
def test_to_data_turns_numpy_scalars_into_python_numbers(scalar, expected):
    assert_same(wire.to_data(scalar, Handles()), expected)


@pytest.mark.parametrize(("scalar", "expected"), [(np.float64(1.5), 1.5), (np.complex128(1j), 1j)],
                         ids=["float64", "complex128"])
def test_to_data_turns_numpy_float64_and_complex128_scalars_into_python_numbers(scalar, expected):
    assert_same(wire.to_data(scalar, Handles()), expected)


@pytest.mark.parametrize("scalar", [np.str_("a"), np.datetime64("2020-01-01"), np.bytes_(b"x")],
                         ids=lambda v: type(v).__name__)
def test_to_data_turns_non_numeric_numpy_scalars_into_handles(scalar):
    assert wire.to_data(scalar, Handles()) == {wire.HANDLE_KEY: 1}


# --------------------------------------------------------------------------
# Property: plain data goes through unchanged, and survives dumps/loads.

plain_data = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.complex_numbers(allow_nan=False)
    | st.text(max_size=5) | st.binary(max_size=5),
    lambda children: (st.lists(children, max_size=3) | st.lists(children, max_size=3).map(tuple)
                      | st.dictionaries(st.text(max_size=3) | st.integers(), children, max_size=3)),
    max_leaves=10,
)


@SETTINGS
@given(value=plain_data)
def test_to_data_leaves_plain_data_unchanged_and_asks_for_no_handle(value):
    handles = Handles()
    assert_same(wire.to_data(value, handles), value)
    assert handles.objects == []


@SETTINGS
@given(value=plain_data)
def test_loads_of_dumps_gives_back_the_same_plain_data(value):
    assert_same(wire.loads(wire.dumps(value)), value)


@pytest.mark.parametrize("value", [b"", [b""], {"value": b""}, (b"", torch.ones(1)), [b"\x00" * 3, b"ab"]],
                         ids=["bytes", "in list", "in dict", "beside a tensor", "non-empty"])
def test_loads_of_dumps_gives_back_bytes_also_empty_ones(value):
    """torch.save's pickle protocol 2 writes b'' as a call of builtins.bytes, which weights_only refuses."""
    assert_same(wire.loads(wire.dumps(value)), value)


@SETTINGS
@given(bits=st.integers(2030, 20_000), sign=st.sampled_from([1, -1]), offset=st.integers(-3, 3))
def test_loads_of_dumps_gives_back_ints_of_any_size(bits, sign, offset):
    """Beyond 255 bytes pickle writes LONG4, which weights_only refuses; beyond 4,300 digits JSON cannot."""
    value = sign * 2**bits + offset
    assert_same(wire.loads(wire.dumps(value)), value)
    assert_same(wire.loads(wire.dumps([value, 1j])), [value, 1j])  # a blob that torch.save writes


@pytest.mark.parametrize("key", [wire.BYTES_KEY, wire.BIG_INT_KEY], ids=["bytes", "int"])
def test_no_students_dict_is_read_back_as_bytes_or_an_int(key):
    """The markers' keys are tuples: a student's dict with one is a handle, never data."""
    handles = Handles()
    forged = {key: torch.tensor([104, 105], dtype=torch.uint8)}
    assert wire.is_handle(wire.to_data(forged, handles)) and handles.objects[0] is forged
    reply = {"ok": True, "value": {str(wire.BYTES_KEY): torch.tensor([1], dtype=torch.uint8)}}
    assert_same(wire.loads(wire.dumps(reply)), reply)


@pytest.mark.parametrize("key", [wire.BYTES_KEY, wire.BIG_INT_KEY], ids=["bytes", "int"])
@pytest.mark.parametrize("inside", [torch.ones(2), torch.zeros(2, 2, dtype=torch.uint8), "text"],
                         ids=["floats", "2-D", "a string"])
def test_a_forged_marker_is_refused(inside, key):
    buffer = io.BytesIO()
    torch.save({"ok": True, "value": {key: inside}}, buffer)
    with pytest.raises(pickle.UnpicklingError):
        wire.loads(buffer.getvalue())


def test_loads_of_dumps_gives_back_tensors_handles_and_replies():
    reply = {"ok": True, "value": [torch.arange(6).reshape(2, 3), torch.tensor([True]), torch.ones(1, 2) * 0.5,
                                   torch.tensor([1j]), {wire.HANDLE_KEY: 4}], "called": ["torch.matmul"]}
    assert_same(wire.loads(wire.dumps(reply)), reply)


# JSON-exact data: what JSON gives back with the same types (tuples marked), floats of every kind.
json_data = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.sampled_from([-0.0, float("inf"), float("-inf")])
    | st.text(max_size=5),
    lambda children: (st.lists(children, max_size=3) | st.lists(children, max_size=3).map(tuple)
                      | st.dictionaries(st.text(max_size=3), children, max_size=3)),
    max_leaves=10,
)


@SETTINGS
@given(value=json_data)
def test_dumps_sends_json_exact_data_as_json_and_loads_gives_it_back_identical(value):
    blob = wire.dumps({"ok": True, "value": value})
    assert blob.startswith(wire.JSON_MAGIC)
    assert_same(wire.loads(blob), {"ok": True, "value": value}, floats_by_repr=True)


@pytest.mark.parametrize("value", [
    [torch.ones(2)], (1, b"x"), {"a": 1j}, {1: "int key"}, {wire.TUPLE_KEY: [1, 2]}, [{wire.TUPLE_KEY: []}],
    10 ** 5000, AlwaysEqualInt(3), [AlwaysEqualFloat(1.0)]],
    ids=["tensor", "bytes", "complex", "int key", "the tuple marker", "nested marker", "huge int", "int subclass",
         "float subclass"])
def test_dumps_leaves_what_json_would_change_to_torch_save(value):
    blob = wire.dumps(value)
    assert not blob.startswith(wire.JSON_MAGIC)
    if type(value) in (tuple, dict):  # (torch.save's ints end at 2**63 or so: weights_only refuses LONG4)
        assert_same(wire.loads(blob), value)


@pytest.mark.parametrize("text", [b"{", b'{"a": [1, 2', b"\xff\xfe", b"[" * 100_000 + b"]" * 100_000])
def test_loads_refuses_broken_json_as_an_unreadable_reply(text):
    with pytest.raises(pickle.UnpicklingError):
        wire.loads(wire.JSON_MAGIC + text)


def test_loads_of_forged_json_builds_only_plain_data():
    forged = wire.JSON_MAGIC + b'{"ok": true, "value": {"__dlcourse_tuple__": [1, {"__dlcourse_tuple__": 5}]}, ' \
                              b'"x": {"__class__": "os.system", "__reduce__": ["touch /tmp/x"]}}'
    assert_same(wire.loads(forged), {"ok": True, "value": (1, {"__dlcourse_tuple__": 5}),
                                     "x": {"__class__": "os.system", "__reduce__": ["touch /tmp/x"]}})


def test_dumps_writes_torch_save_bytes():
    blob = wire.dumps([1, torch.ones(1)])
    assert isinstance(blob, bytes)
    assert_same(torch.load(io.BytesIO(blob), weights_only=True), [1, torch.ones(1)])


# --------------------------------------------------------------------------
# loads refuses everything but plain data.


class RunsShell:
    """Unpickling this would run a shell command that creates ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class RunsPython:
    """Unpickling this would run Python code that creates ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').close()",)


def _torch_save(obj, zipfile: bool) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer, _use_new_zipfile_serialization=zipfile)
    return buffer.getvalue()


FORMATS = {
    "torch.save": lambda obj: _torch_save({"ok": True, "value": obj}, zipfile=True),
    "torch.save legacy": lambda obj: _torch_save({"ok": True, "value": obj}, zipfile=False),
    "raw pickle": lambda obj: pickle.dumps(obj),
    "raw pickle protocol 2": lambda obj: pickle.dumps(obj, protocol=2),
}


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("payload", [RunsShell, RunsPython])
@pytest.mark.parametrize("pack", FORMATS.values(), ids=FORMATS.keys())
def test_loads_refuses_a_pickle_that_would_run_code_and_does_not_run_it(tmp_path, payload, pack):
    marker = tmp_path / "payload-ran"
    blob = pack(payload(marker))
    with pytest.raises(pickle.UnpicklingError):
        wire.loads(blob)
    assert not marker.exists()


@pytest.mark.parametrize("name", FORMATS)
def test_the_code_running_payload_does_run_when_unpickled_without_restriction(tmp_path, name):
    """Proof that the payload above is live, so its refusal by ``loads`` means something."""
    marker = tmp_path / "payload-ran"
    blob = FORMATS[name](RunsPython(marker))
    if name.startswith("raw"):
        pickle.loads(blob)
    else:
        torch.load(io.BytesIO(blob), weights_only=False)
    assert marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("obj", [AlwaysEqual(), AlwaysEqualInt(1), AlwaysEqualList([1]), TensorSubclass()],
                         ids=lambda obj: type(obj).__name__)
@pytest.mark.parametrize("pack", FORMATS.values(), ids=FORMATS.keys())
def test_loads_refuses_a_pickle_of_any_other_class(obj, pack):
    with pytest.raises(pickle.UnpicklingError):
        wire.loads(pack(obj))


def test_loads_reads_the_legacy_torch_save_format_when_it_holds_plain_data():
    assert_same(wire.loads(_torch_save({"x": [1, torch.ones(1)]}, zipfile=False)), {"x": [1, torch.ones(1)]})


# --------------------------------------------------------------------------
# is_handle and describe


@pytest.mark.parametrize(("value", "expected"), [
    ({wire.HANDLE_KEY: 1}, True), ({wire.HANDLE_KEY: 1, "x": 2}, False), ({"x": 1}, False), ({}, False),
    ([wire.HANDLE_KEY], False), (wire.HANDLE_KEY, False), (None, False),
], ids=label)
def test_is_handle_recognises_only_a_dict_with_the_handle_key_alone(value, expected):
    assert wire.is_handle(value) is expected


@pytest.mark.parametrize(("value", "text"), [
    (torch.zeros(2, 3), "a tensor of shape (2, 3) and dtype torch.float32"),
    (torch.tensor(1, dtype=torch.int64), "a tensor of shape () and dtype torch.int64"),
    (3, "the number 3"),
    (2.5, "the number 2.5"),
    (True, "the number True"),
    (1j, "the number 1j"),
    (np.float64(1.0), f"the number {np.float64(1.0)!r}"),
    (float("nan"), "nan"),
    (float("inf"), "inf"),
    (float("-inf"), "-inf"),
    (complex(float("inf"), 0), "(inf+0j)"),
    ([1, 2, 3], "a list of length 3"),
    ((), "a tuple of length 0"),
    ({"b": 1, 2: 3, "a": 4}, "a dict with keys ['2', 'a', 'b']"),
    (None, "an object of type NoneType"),
    ("text", "an object of type str"),
    (AlwaysEqual(), "an object of type AlwaysEqual"),
], ids=label)
def test_describe_says_type_and_shape_in_words_a_student_reads(value, text):
    assert wire.describe(value) == text
