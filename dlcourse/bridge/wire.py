"""What crosses between a student's code and the tests: plain data only.

Tests never hold a student's object. A value that comes back from the student
side is converted to *data* -- tensors, numbers, strings, bytes, ``None`` and
lists, tuples and dicts of those -- and everything else is replaced by a
*handle*, a small dict naming an object that stays on the student side.
Bytes are read back with ``torch.load(weights_only=True)``, an unpickler that
refuses every class but tensors and builtin containers, so a student cannot
send back an object whose ``__eq__`` always holds. Data that JSON gives back
exactly (``None``, booleans, ints, floats, strings, lists, tuples as
``{TUPLE_KEY: [...]}``, and dicts with string keys: no tensor, bytes or complex
number) is sent as JSON instead, :data:`JSON_MAGIC` and the text, and read back
with ``json.loads``, which builds nothing else either; it is several times
cheaper both ways.
"""

from __future__ import annotations

import io
import json
import math
import numbers
import pickle
import sys

import torch

HANDLE_KEY = "__dlcourse_handle__"
#: A NumPy array or scalar sent as such (``np.save`` bytes, read back with ``allow_pickle=False``).
NUMPY_KEY = "__dlcourse_numpy__"
#: The MIME type of a reply that a kernel displays to answer a test's request.
REPLY_MIME_TYPE = "application/x-dlcourse-reply"
#: A tuple in a JSON blob: ``{TUPLE_KEY: [items]}`` (a dict with this key itself goes by torch.save).
TUPLE_KEY = "__dlcourse_tuple__"
#: The start of a :func:`dumps` blob that is JSON (torch.save's start with a zip header, ``PK``).
JSON_MAGIC = b"DLJSON\n"
#: How deep :func:`dumps` looks for JSON-exact data before it leaves a value to torch.save.
_JSON_DEPTH = 64
#: Bytes in a torch.save blob: ``{BYTES_KEY: uint8 tensor}``. torch.save's pickle protocol 2 writes ``b""``
#: as a call of ``builtins.bytes``, which the weights_only unpickler refuses. The key is a tuple, which no
#: dict of plain data has (:func:`to_data` keeps only str and int keys), so no value is mistaken for bytes.
BYTES_KEY = ("__dlcourse__", "bytes")
#: An int of more than 255 bytes in a torch.save blob (pickle's LONG4, which weights_only refuses), as
#: ``{BIG_INT_KEY: uint8 tensor}`` of its two's complement, little-endian.
BIG_INT_KEY = ("__dlcourse__", "int")


def is_handle(obj) -> bool:
    return isinstance(obj, dict) and len(obj) == 1 and HANDLE_KEY in obj


def is_numpy(obj) -> bool:
    return isinstance(obj, dict) and len(obj) == 1 and NUMPY_KEY in obj and type(obj[NUMPY_KEY]) is bytes


def encode_numpy(obj):
    """A numeric NumPy array or scalar as ``{NUMPY_KEY: bytes}``; anything else unchanged."""
    numpy = sys.modules.get("numpy")
    if numpy is None or type(obj) is not numpy.ndarray and not (isinstance(obj, numpy.generic)
                                                                 and type(obj).__module__ == "numpy"):
        return obj
    if obj.dtype.kind not in "biufcmM":
        return obj
    buffer = io.BytesIO()
    numpy.save(buffer, numpy.asarray(obj), allow_pickle=False)
    return {NUMPY_KEY: buffer.getvalue() + (b"S" if isinstance(obj, numpy.generic) else b"A")}


def decode_numpy(obj):
    """The array (or scalar) that :func:`encode_numpy` sent: numeric data only, never pickles."""
    import numpy

    blob = obj[NUMPY_KEY]
    array = numpy.load(io.BytesIO(blob[:-1]), allow_pickle=False)
    return array[()] if blob[-1:] == b"S" else array


def to_data(obj, make_handle, numpy: bool = False):
    """Convert ``obj`` to plain data; ``make_handle(x)`` names what is not data.

    Tensors are detached, moved to the CPU and stripped of any subclass.
    NumPy arrays become tensors and NumPy scalars Python numbers; with
    ``numpy`` (plain nbgrader test cells) they stay NumPy's, sent by
    :func:`encode_numpy`.
    """
    if numpy:
        encoded = encode_numpy(obj)
        if encoded is not obj:
            return encoded
    numpy_scalar = _from_numpy(obj) if _is_numpy_scalar(obj) else _NOT_NUMPY
    if numpy_scalar is not _NOT_NUMPY:  # before the builtins: np.float64 subclasses float
        return numpy_scalar
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)):
        # Exact builtin types only: an int subclass may override __eq__.
        if type(obj) in (bool, int, float, complex, str, bytes) or obj is None:
            return obj
        return make_handle(obj)
    if isinstance(obj, torch.Tensor):
        tensor = obj.detach()
        if tensor.is_complex() or tensor.dtype.is_floating_point or tensor.dtype in _PLAIN_DTYPES:
            return tensor.to("cpu", copy=True).as_subclass(torch.Tensor)
        return make_handle(obj)
    if isinstance(obj, torch.Size):
        return tuple(int(d) for d in obj)
    if isinstance(obj, (torch.dtype, torch.device)):
        return str(obj)
    if type(obj) in (list, tuple):
        return type(obj)(to_data(item, make_handle, numpy) for item in obj)
    if type(obj) is dict:
        if all(type(k) in (str, int) for k in obj):
            return {k: to_data(v, make_handle, numpy) for k, v in obj.items()}
        return make_handle(obj)
    numpy_value = _from_numpy(obj)
    if numpy_value is not _NOT_NUMPY:
        return numpy_value
    return make_handle(obj)


_PLAIN_DTYPES = (torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)
_NOT_NUMPY = object()
_NOT_JSON = object()


def _is_numpy_scalar(obj) -> bool:
    numpy = sys.modules.get("numpy")  # numpy comes with torch; if nothing imported it, obj is no numpy scalar
    return numpy is not None and isinstance(obj, numpy.generic)


def _from_numpy(obj):
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy comes with torch here
        return _NOT_NUMPY
    if isinstance(obj, np.ndarray) and obj.dtype.kind in "biufc":
        return torch.from_numpy(np.array(obj, copy=True))
    if isinstance(obj, np.generic) and obj.dtype.kind in "biufc":
        value = obj.item()
        return value
    return _NOT_NUMPY


def dumps(obj) -> bytes:
    """Plain data as bytes for :func:`loads`: JSON when JSON gives it back exactly, else ``torch.save``'s."""
    form = _json_form(obj, 0)
    if form is not _NOT_JSON:
        try:
            return JSON_MAGIC + json.dumps(form, separators=(",", ":")).encode("ascii")
        except (ValueError, RecursionError):  # an int of more digits than Python converts: torch.save's
            pass
    buffer = io.BytesIO()
    torch.save(_bytes_as_tensors(obj), buffer)
    return buffer.getvalue()


def _bytes_as_tensors(obj):
    """``obj`` with every bytes value and every int too big for weights_only as a marked uint8 tensor."""
    kind = type(obj)
    if kind is bytes:
        return {BYTES_KEY: _uint8(obj)}
    if kind is int and not -2**2039 <= obj < 2**2039:  # pickle's LONG1 holds up to 255 bytes
        return {BIG_INT_KEY: _uint8(obj.to_bytes((obj.bit_length() + 8) // 8, "little", signed=True))}
    if kind is list or kind is tuple:
        return kind(_bytes_as_tensors(item) for item in obj)
    if kind is dict:
        return {key: _bytes_as_tensors(value) for key, value in obj.items()}
    return obj


def _uint8(data: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(data), dtype=torch.uint8) if data else torch.empty(0, dtype=torch.uint8)


def _tensors_as_bytes(obj):
    """What :func:`_bytes_as_tensors` was given back: markers become bytes and ints again."""
    kind = type(obj)
    if kind is list or kind is tuple:
        return kind(_tensors_as_bytes(item) for item in obj)
    if kind is dict:
        if len(obj) == 1 and (BYTES_KEY in obj or BIG_INT_KEY in obj):
            (key, tensor), = obj.items()
            if not isinstance(tensor, torch.Tensor) or tensor.dtype != torch.uint8 or tensor.dim() != 1:
                raise pickle.UnpicklingError("a marker of bytes or of an int that holds no 1-D uint8 tensor")
            data = tensor.numpy().tobytes()
            return data if key == BYTES_KEY else int.from_bytes(data, "little", signed=True)
        return {key: _tensors_as_bytes(value) for key, value in obj.items()}
    return obj


def _json_form(obj, depth: int):
    """``obj`` as JSON gives it back exactly, types included (tuples as ``{TUPLE_KEY: [...]}``), else _NOT_JSON.

    Exact types only; a dict with a key other than a str, or with the key TUPLE_KEY itself, is not JSON's.
    """
    kind = type(obj)
    if obj is None or kind is bool or kind is int or kind is float or kind is str:
        return obj
    if depth >= _JSON_DEPTH:
        return _NOT_JSON
    if kind is list or kind is tuple:
        items = [_json_form(item, depth + 1) for item in obj]
        if any(item is _NOT_JSON for item in items):
            return _NOT_JSON
        return items if kind is list else {TUPLE_KEY: items}
    if kind is dict:
        if any(type(key) is not str or key == TUPLE_KEY for key in obj):
            return _NOT_JSON
        values = {key: _json_form(value, depth + 1) for key, value in obj.items()}
        return _NOT_JSON if any(value is _NOT_JSON for value in values.values()) else values
    return _NOT_JSON


def _tuple_hook(pairs: dict):
    if len(pairs) == 1 and type(pairs.get(TUPLE_KEY)) is list:
        return tuple(pairs[TUPLE_KEY])
    return pairs


def loads(blob: bytes):
    """Read what the other side sent, refusing anything but plain data."""
    if blob[:len(JSON_MAGIC)] == JSON_MAGIC:
        try:
            return json.loads(blob[len(JSON_MAGIC):], object_hook=_tuple_hook)
        except (ValueError, RecursionError) as error:  # broken or forged: as an unreadable pickle
            raise pickle.UnpicklingError(f"not JSON: {error}") from error
    return _tensors_as_bytes(torch.load(io.BytesIO(blob), weights_only=True, map_location="cpu"))


def dumps_request(obj) -> bytes:
    """A test's request, for the student's side: a pickle (a third of ``dumps``' cost).

    Only for what the grader sends to the student's side, which trusts the
    grader anyway; what comes back is still read with :func:`loads`.
    """
    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def loads_request(blob: bytes):
    """The student's side reading :func:`dumps_request` (the grader is its only writer)."""
    return pickle.loads(blob)


def describe(obj) -> str:
    """A short, student-readable description of a value's type and shape."""
    if isinstance(obj, torch.Tensor):
        return f"a tensor of shape {tuple(obj.shape)} and dtype {obj.dtype}"
    if isinstance(obj, numbers.Number):
        return f"the number {obj!r}" if math.isfinite(abs(obj)) else f"{obj!r}"
    if isinstance(obj, (list, tuple)):
        return f"a {type(obj).__name__} of length {len(obj)}"
    if isinstance(obj, dict):
        return f"a dict with keys {sorted(map(str, obj))}"
    return f"an object of type {type(obj).__name__}"
