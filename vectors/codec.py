"""Arrays as JSON, the one encoding the vectors and the wire protocol share.

An array is ``{"dtype": "float64", "shape": [2, 3], "data": [...]}``: ``data`` is the
row-major flat list. Floats are written with Python's shortest repr, which parses
back to the identical float64; non-finite values are the strings ``"nan"``,
``"inf"`` and ``"-inf"``. A tree is a dict of arrays (``parameters``, ``grads``, ...).
"""

from __future__ import annotations

import math

import numpy as np

DTYPES = ("float64", "float32")
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class CodecError(ValueError):
    """A JSON value that is not a well-formed array or tree."""


def _encode_float(x: float):
    if math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def encode_array(array) -> dict:
    """A NumPy array (float32 or float64) -> its JSON object."""
    array = np.asarray(array)
    dtype = array.dtype.name if array.dtype.name in DTYPES else "float64"
    flat = array.astype(dtype, copy=False).ravel()
    data = flat.tolist()
    if not np.isfinite(flat).all():
        data = [_encode_float(x) for x in data]
    return {"dtype": dtype, "shape": list(array.shape), "data": data}


def decode_array(obj, where: str = "array", dtype: str | None = None) -> np.ndarray:
    """A JSON array object -> a NumPy array (cast to ``dtype`` if given); CodecError names ``where``."""
    if not isinstance(obj, dict) or set(obj) != {"dtype", "shape", "data"}:
        raise CodecError(f"{where}: expected an object with exactly dtype, shape and data")
    if obj["dtype"] not in DTYPES:
        raise CodecError(f"{where}: dtype must be float64 or float32, not {obj['dtype']!r}")
    shape, data = obj["shape"], obj["data"]
    if not isinstance(shape, list) or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise CodecError(f"{where}: shape must be a list of non-negative integers")
    if not isinstance(data, list) or len(data) != math.prod(shape):
        raise CodecError(f"{where}: data must be a list of {math.prod(shape)} numbers for shape {shape}")
    if all(type(x) is float or type(x) is int for x in data):  # the common case, checked fast
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


def _build(values: list, wire_dtype: str, shape: list, where: str, dtype: str | None) -> np.ndarray:
    try:
        array = np.array(values, dtype=wire_dtype).reshape(shape)
    except OverflowError:
        raise CodecError(f"{where}: a value does not fit in {wire_dtype}") from None
    except ValueError as error:  # NumPy refusing the shape: over 64 dimensions, a dimension >= 2**63
        raise CodecError(f"{where}: shape {shape} is impossible ({error})") from None
    return array.astype(dtype) if dtype else array


def encode_tree(tree: dict) -> dict:
    """``{"W1": array, ...}`` -> ``{"W1": {...array json...}, ...}``."""
    return {key: encode_array(value) for key, value in tree.items()}


def decode_tree(obj, where: str = "tree", dtype: str | None = None) -> dict:
    """The inverse of :func:`encode_tree`; CodecError names the key that is wrong."""
    if not isinstance(obj, dict):
        raise CodecError(f"{where}: expected an object of named arrays")
    return {key: decode_array(value, f"{where}.{key}", dtype) for key, value in obj.items()}
