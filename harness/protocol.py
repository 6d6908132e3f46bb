"""The wire protocol: JSON lines between the harness and a target program.

Specified by ``schema/wire.schema.json`` (version ``optconform/1``). This module
encodes requests and results, and validates what programs send, with errors
that name the field that is wrong.
"""

from __future__ import annotations

import copy
import json
import math
from functools import lru_cache
from importlib import resources

import jsonschema
import numpy as np

from ..vectors.codec import CodecError, decode_array, decode_tree, encode_array, encode_tree

PROTOCOL_VERSION = "optconform/1"
OPS = ("mini_batches", "momentum.init", "momentum.update", "adam.init", "adam.update", "gd.update", "rmsprop.init",
       "rmsprop.update", "lr_decay.inverse_time", "lr_decay.scheduled")
#: Ops whose result is one number, ``{"learning_rate": x}`` (a JSON number, or "nan"/"inf"/"-inf").
SCALAR_OPS = ("lr_decay.inverse_time", "lr_decay.scheduled")
#: Longest line the harness reads from a program before calling it garbage.
MAX_LINE_BYTES = 64 * 1024 * 1024


class ProtocolError(ValueError):
    """A message that breaks the protocol; the text names what is wrong."""


@lru_cache(maxsize=1)
def wire_schema() -> dict:
    text = (resources.files(__package__) / "schema" / "wire.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


@lru_cache(maxsize=1)
def _runtime_defs() -> dict:
    """The schema's definitions, less the per-element check of array ``data``.

    Validating every number of every array through the schema costs more than
    all the rest of a run; the codec checks each element anyway (and names it),
    so at run time the schema checks the envelope and the codec the numbers.
    """
    defs = copy.deepcopy(wire_schema()["$defs"])
    defs["array"]["properties"]["data"] = {"type": "array"}
    return defs


@lru_cache(maxsize=None)
def _validator(definition: str, op: str | None = None):
    ref = f"#/$defs/results/{op}" if op else f"#/$defs/{definition}"
    return jsonschema.Draft202012Validator({"$ref": ref, "$defs": _runtime_defs()})


def _check(validator, message, what: str) -> None:
    error = jsonschema.exceptions.best_match(validator.iter_errors(message))
    if error is not None:
        field = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ProtocolError(f"{what}: field {field}: {error.message[:160]}")


def validate_request(message) -> None:
    _check(_validator("request"), message, "request")


def validate_response(message) -> None:
    _check(_validator("response"), message, "response")


def validate_hello(result) -> None:
    _check(_validator("hello_result"), result, "hello result")


def validate_result(op: str, result) -> None:
    _check(_validator("results", op), result, f"{op} result")


def parse_line(line: bytes | str, what: str = "line") -> dict:
    """One JSON object from one line, or ProtocolError quoting the start of the line."""
    text = line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):  # also an integer of over 4300 digits, or nesting too deep
        raise ProtocolError(f"{what} is not JSON: {text.strip()[:80]!r}") from None
    if not isinstance(message, dict):
        raise ProtocolError(f"{what} is not a JSON object: {text.strip()[:80]!r}")
    return message


def dumps(message: dict) -> str:
    """One line of JSON (no NaN literals: arrays carry non-finite values as strings)."""
    return json.dumps(message, separators=(",", ":"), allow_nan=False) + "\n"


# ---------------------------------------------------------------- values


def encode_args(args: dict) -> dict:
    """Python call arguments -> JSON: arrays and trees encoded, scalars kept."""
    encoded = {}
    for key, value in args.items():
        if isinstance(value, np.ndarray):
            encoded[key] = encode_array(value)
        elif isinstance(value, dict):
            encoded[key] = encode_tree(value)
        elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            encoded[key] = int(value)
        else:
            encoded[key] = float(value) if math.isfinite(float(value)) else str(float(value))
    return encoded


def decode_args(op: str, args: dict) -> dict:
    """JSON -> Python call arguments for ``op`` (arrays keep their wire dtype)."""
    decoded = {}
    for key, value in args.items():
        if isinstance(value, dict) and set(value) == {"dtype", "shape", "data"}:
            decoded[key] = decode_array(value, f"args.{key}")
        elif isinstance(value, dict):
            decoded[key] = decode_tree(value, f"args.{key}")
        else:
            decoded[key] = value
    return decoded


def encode_result(op: str, result: dict) -> dict:
    """An op's Python result (see ``harness.adapter``) -> JSON."""
    if op == "mini_batches":
        return {"batches": [[encode_array(x), encode_array(y)] for x, y in result["batches"]]}
    if op in SCALAR_OPS:
        value = float(result["learning_rate"])
        return {"learning_rate": value if math.isfinite(value) else str(value)}
    return {key: encode_tree(tree) for key, tree in result.items()}


def decode_result(op: str, result: dict) -> dict:
    """JSON -> Python result, after checking it against the op's result schema."""
    validate_result(op, result)
    try:
        if op == "mini_batches":
            return {"batches": [[decode_array(x, f"batches[{i}][0]"), decode_array(y, f"batches[{i}][1]")]
                                for i, (x, y) in enumerate(result["batches"])]}
        if op in SCALAR_OPS:
            try:
                return {"learning_rate": np.asarray(float(result["learning_rate"]))}
            except (OverflowError, ValueError, TypeError):
                raise ProtocolError(f"{op} result: learning_rate is not a float64 number") from None
        return {key: decode_tree(tree, key) for key, tree in result.items()
                if key in ("parameters", "v", "s")}
    except CodecError as error:
        raise ProtocolError(f"{op} result: {error}") from None
