"""Any report value as JSON: non-finite floats as the strings "nan", "inf" and "-inf", as in the vectors."""

from __future__ import annotations

import json
import math


def to_json_safe(value):
    """``value`` with every non-finite float replaced by ``"nan"``, ``"inf"`` or ``"-inf"``.

    NumPy scalars and arrays become plain Python values; tuples become lists;
    dict keys become strings. Anything else JSON cannot hold becomes its ``str``.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, dict):
        return {str(k): to_json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_json_safe(v) for v in value]
    tolist = getattr(value, "tolist", None)  # NumPy scalars and arrays, without importing NumPy
    if callable(tolist):
        try:
            return to_json_safe(tolist())
        except Exception:  # pragma: no cover - an odd object with a tolist attribute
            pass
    return str(value)


def dumps(obj) -> str:
    return json.dumps(to_json_safe(obj), indent=2, allow_nan=False)
