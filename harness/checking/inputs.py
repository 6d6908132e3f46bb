"""What a case sends: its inputs in the working dtype, made once per case and dtype, read-only and shared."""

from __future__ import annotations

import numpy as np

from optconform.harness.target.readonly import FrozenArgs, frozen_args

from .per_case import kept


def cast_inputs(value, dtype: str):
    """Inputs in the working dtype: arrays (also inside dicts and lists) cast, scalars kept."""
    if isinstance(value, np.ndarray):
        return value.astype(dtype)
    if isinstance(value, dict):
        return {key: cast_inputs(item, dtype) for key, item in value.items()}
    if isinstance(value, list):
        return [cast_inputs(item, dtype) for item in value]
    return value


def case_inputs(case, dtype: str) -> FrozenArgs:
    """The case's inputs in ``dtype``, made once per case and dtype and shared by every target checked in
    this process: read-only (a session copies before a target may touch them), so that their wire
    encoding can be kept too (``codec.encode_array``, ``request_lines``)."""
    return kept(case, "_inputs", dtype, lambda: frozen_args(cast_inputs(case.inputs, dtype)))
