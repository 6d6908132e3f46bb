"""Arrays as JSON, the one encoding the vectors and the wire protocol share.

An array is ``{"dtype": "float64", "shape": [2, 3], "data": [...]}``: ``data`` is the
row-major flat list. Floats are written with Python's shortest repr, which parses
back to the identical float64; non-finite values are the strings ``"nan"``,
``"inf"`` and ``"-inf"``. A tree is a dict of arrays (``parameters``, ``grads``, ...).

The wire protocol's version 2 also carries an array as
``{"dtype": "float64", "shape": [2, 3], "b64": "..."}``: the base64 of its row-major
little-endian bytes. It is exact like the text form, and costs a copy instead of a
number-by-number parse; :func:`decode_array` reads either form.
"""

from __future__ import annotations

import base64
import binascii
import math
import weakref

import numpy as np

DTYPES = ("float64", "float32")
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_FLOAT64, _FLOAT32 = np.dtype(np.float64), np.dtype(np.float32)
_LITTLE = {"float64": np.dtype("<f8"), "float32": np.dtype("<f4")}
_PLAIN_NUMBERS = frozenset((float, int))


class CodecError(ValueError):
    """A JSON value that is not a well-formed array or tree."""


def _encode_float(x: float):
    if math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


#: The binary encodings of read-only arrays (a case's inputs, sent to every submission), by id; an entry
#: goes when its array does.
_ENCODED: dict[int, tuple] = {}


def _forget(key: int):
    return lambda _: _ENCODED.pop(key, None)


def encode_array(array, binary: bool = False) -> dict:
    """A NumPy array (float32 or float64) -> its JSON object (``binary``: the ``b64`` form)."""
    array = np.asarray(array)
    if binary and not array.flags.writeable and array.base is None:  # cannot change: its encoding can be kept
        kept = _ENCODED.get(id(array))
        if kept is not None and kept[0]() is array:
            return kept[1]
        encoded = _encode_binary(array)
        _ENCODED[id(array)] = (weakref.ref(array, _forget(id(array))), encoded)
        return encoded
    if binary:
        return _encode_binary(array)
    dtype = array.dtype.name if array.dtype.name in DTYPES else "float64"
    flat = array.astype(dtype, copy=False).ravel()
    data = flat.tolist()
    if not np.isfinite(flat).all():
        data = [_encode_float(x) for x in data]
    return {"dtype": dtype, "shape": list(array.shape), "data": data}


#: The wire's name and little-endian dtype of an array's dtype (any other is sent as float64).
_WIRE = {_FLOAT64: ("float64", _LITTLE["float64"]), _FLOAT32: ("float32", _LITTLE["float32"])}


def _encode_binary(array: np.ndarray) -> dict:
    name, wire = _WIRE.get(array.dtype, _WIRE[_FLOAT64])
    raw = np.ascontiguousarray(array, dtype=wire)  # its buffer is read as it is: no bytes object in between
    return {"dtype": name, "shape": list(array.shape), "b64": binascii.b2a_base64(raw, newline=False).decode("ascii")}


def decode_array(obj, where: str = "array", dtype: str | None = None) -> np.ndarray:
    """A JSON array object (either form) -> a NumPy array (cast to ``dtype`` if given); CodecError names ``where``."""
    if type(obj) is dict and len(obj) == 3 and "b64" in obj:  # the wire's form, taken the short way when sound
        array = _well_formed_b64(obj)
        if array is not None:
            return array.astype(dtype) if dtype else array
    if not isinstance(obj, dict) or set(obj) not in ({"dtype", "shape", "data"}, {"dtype", "shape", "b64"}):
        raise CodecError(f"{where}: expected an object with exactly dtype, shape and data (or b64)")
    if obj["dtype"] not in DTYPES:
        raise CodecError(f"{where}: dtype must be float64 or float32, not {obj['dtype']!r}")
    shape = obj["shape"]
    if not isinstance(shape, list) or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise CodecError(f"{where}: shape must be a list of non-negative integers")
    if "b64" in obj:
        return _from_bytes(obj["b64"], obj["dtype"], shape, where, dtype)
    data = obj["data"]
    if not isinstance(data, list) or len(data) != math.prod(shape):
        raise CodecError(f"{where}: data must be a list of {math.prod(shape)} numbers for shape {shape}")
    if set(map(type, data)) <= _PLAIN_NUMBERS:  # the common case (floats and ints, not bools), checked fast
        return _build(data, obj["dtype"], shape, where, dtype)
    values = []
    for x in data:
        if isinstance(x, bool) or not isinstance(x, (int, float, str)):
            raise CodecError(f"{where}: data holds {x!r}, not a number")
        if isinstance(x, str):
            if x not in _NON_FINITE:
                raise CodecError(f"{where}: data holds the string {x!r}; only 'nan', 'inf', '-inf' are allowed")
            x = _NON_FINITE[x]
        values.append(x)
    return _build(values, obj["dtype"], shape, where, dtype)


def _well_formed_b64(obj: dict) -> np.ndarray | None:
    """The array of a ``b64`` object whose every part is right, or None to let the long way name what is wrong.

    Tens of thousands of arrays cross the wire per submission; this is the same
    check as the long way (dtype, shape, strict base64, byte count), made once."""
    name, shape, text = obj.get("dtype"), obj.get("shape"), obj.get("b64")
    wire = _LITTLE.get(name) if type(name) is str else None
    if wire is None or type(shape) is not list or type(text) is not str or not 0 < len(shape) <= 32:
        return None
    count = 1
    for n in shape:
        if type(n) is not int or n < 0:
            return None
        count *= n
    try:
        raw = binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError, TypeError):  # TypeError: a Python before 3.11, without strict_mode
        return None
    if len(raw) != count * wire.itemsize or not wire.isnative:
        return None
    return np.frombuffer(raw, dtype=wire).reshape(shape).copy()  # native and writable


def _from_bytes(text, wire_dtype: str, shape: list, where: str, dtype: str | None) -> np.ndarray:
    wire = _LITTLE[wire_dtype]
    if not isinstance(text, str):
        raise CodecError(f"{where}: b64 must be a base64 string")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise CodecError(f"{where}: b64 is not valid base64") from None
    if len(raw) != math.prod(shape) * wire.itemsize:
        raise CodecError(f"{where}: b64 holds {len(raw)} bytes; shape {shape} of {wire_dtype} needs "
                         f"{math.prod(shape) * wire.itemsize}")
    try:
        array = np.frombuffer(raw, dtype=wire).reshape(shape)
        array = array.copy() if wire.isnative else array.astype(wire.newbyteorder("="))  # native and writable
    except ValueError as error:  # NumPy refusing the shape: over 64 dimensions
        raise CodecError(f"{where}: shape {shape} is impossible ({error})") from None
    return array.astype(dtype) if dtype else array


def _build(values: list, wire_dtype: str, shape: list, where: str, dtype: str | None) -> np.ndarray:
    try:
        if wire_dtype == "float64":  # a JSON number is a float64 already: nothing can overflow
            array = np.array(values, dtype=np.float64).reshape(shape)
        else:
            with np.errstate(over="raise"):  # 1e308 written as float32 is an error, not a silent inf
                array = np.array(values, dtype=wire_dtype).reshape(shape)
    except (OverflowError, FloatingPointError):
        raise CodecError(f"{where}: a value does not fit in {wire_dtype}") from None
    except ValueError as error:  # NumPy refusing the shape: over 64 dimensions, a dimension >= 2**63
        raise CodecError(f"{where}: shape {shape} is impossible ({error})") from None
    return array.astype(dtype) if dtype else array


def encode_tree(tree: dict, binary: bool = False) -> dict:
    """``{"W1": array, ...}`` -> ``{"W1": {...array json...}, ...}``."""
    return {key: encode_array(value, binary) for key, value in tree.items()}


def decode_tree(obj, where: str = "tree", dtype: str | None = None) -> dict:
    """The inverse of :func:`encode_tree`; CodecError names the key that is wrong."""
    if not isinstance(obj, dict):
        raise CodecError(f"{where}: expected an object of named arrays")
    return {key: decode_array(value, f"{where}.{key}", dtype) for key, value in obj.items()}
