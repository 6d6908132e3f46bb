"""The wire protocol: JSON lines between the harness and a target program.

Specified by ``schema/wire.schema.json`` (version ``optconform/1``). This module
encodes requests and results, and validates what programs send, with errors
that name the field that is wrong.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache

import numpy as np

from optconform.vectors.codec import CodecError, decode_array, decode_tree, encode_array, encode_tree

PROTOCOL_VERSION = "optconform/1"
#: The negotiated version: a program whose hello lists it in ``accepts`` gets requests that say
#: ``"protocol": "optconform/2"`` and carry arrays as base64 bytes, and answers the same way.
PROTOCOL_V2 = "optconform/2"
OPS = ("mini_batches", "momentum.init", "momentum.update", "adam.init", "adam.update", "gd.update", "rmsprop.init",
       "rmsprop.update", "lr_decay.inverse_time", "lr_decay.scheduled")
#: Ops whose result is one number, ``{"learning_rate": x}`` (a JSON number, or "nan"/"inf"/"-inf").
SCALAR_OPS = ("lr_decay.inverse_time", "lr_decay.scheduled")
#: Longest answer the harness reads from a program before calling it garbage: this, or a few times the
#: request's size (an answer holds about as many numbers as its request), whichever is larger.
MAX_LINE_BYTES = 64 * 1024 * 1024
ANSWER_TO_REQUEST = 4


class ProtocolError(ValueError):
    """A message that breaks the protocol; the text names what is wrong."""


@lru_cache(maxsize=1)
def wire_schema() -> dict:
    from importlib import resources  # here: the sandboxed child never reads the schema

    text = (resources.files(__package__) / "schema" / "wire.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


@lru_cache(maxsize=1)
def _runtime_defs() -> dict:
    """The schema's definitions, less the check of each array.

    Validating every number of every array through the schema costs more than
    all the rest of a run; the codec checks each array whole anyway (its keys, dtype,
    shape, and every element, naming the one that is wrong), so at run time the
    schema checks the envelope and the codec the arrays.
    """
    import copy  # here: the child never validates against the schema

    defs = copy.deepcopy(wire_schema()["$defs"])
    defs["array"] = {"type": "object"}
    return defs


@lru_cache(maxsize=None)
def _validator(definition: str, op: str | None = None):
    ref = f"#/$defs/results/{op}" if op else f"#/$defs/{definition}"
    import jsonschema  # here: only the tests walk the schema itself; importing it costs 30-60 ms

    return jsonschema.Draft202012Validator({"$ref": ref, "$defs": _runtime_defs()})


# The checks below apply the schema's rules by hand: each message is checked in a few dictionary
# lookups instead of a walk of the schema (which cost a fifth of a whole check). ``schema_errors``
# keeps the schema itself at hand, and the tests hold the two to the same verdict on every message.

_NON_FINITE_NAMES = ("nan", "inf", "-inf")
#: The keys an op's result must have, and the kind of each: a tree of arrays, batches, or a number.
RESULT_KEYS = {"mini_batches": {"batches": "batches"}, "momentum.init": {"v": "tree"},
               "adam.init": {"v": "tree", "s": "tree"}, "momentum.update": {"parameters": "tree", "v": "tree"},
               "adam.update": {"parameters": "tree", "v": "tree", "s": "tree"}, "gd.update": {"parameters": "tree"},
               "rmsprop.init": {"s": "tree"}, "rmsprop.update": {"parameters": "tree", "s": "tree"},
               "lr_decay.inverse_time": {"learning_rate": "number"}, "lr_decay.scheduled": {"learning_rate": "number"}}
_REQUEST_KEYS = {"id", "op", "args", "conventions", "protocol", "calls", "init", "start", "carry"}
_CALL_KEYS = {"op", "args"}


def _wrong(what: str, field: str, text: str):
    raise ProtocolError(f"{what}: field {field or '(top level)'}: {text[:160]}")


def _is_integer(value) -> bool:  # JSON Schema's integer: 3 and 3.0, never true
    return (type(value) is int) or (type(value) is float and value.is_integer())


def _is_number(value) -> bool:
    return type(value) in (int, float)


def _check_strings(what: str, field: str, value, mapping: bool = False) -> None:
    items = value.values() if mapping and isinstance(value, dict) else value
    if not isinstance(value, dict if mapping else list) or not all(type(item) is str for item in items):
        _wrong(what, field, f"must be {'an object' if mapping else 'a list'} of strings")


def _envelope(what: str, message, required: tuple[str, ...], allowed: set | None = None) -> None:
    """The rules requests and responses share: an object, the required keys, an integer id."""
    if type(message) is not dict:
        _wrong(what, "", "not an object")
    for key in required:
        if key not in message:
            _wrong(what, "", f"{key!r} is a required property")
    extra = set(message) - allowed if allowed is not None else set()
    if extra:
        _wrong(what, "", f"additional properties are not allowed ({sorted(extra)[0]!r} was unexpected)")
    if not _is_integer(message["id"]):
        _wrong(what, "id", f"{message['id']!r} is not of type 'integer'")


def validate_request(message) -> None:
    what = "request"
    _envelope(what, message, ("id", "op"), _REQUEST_KEYS)
    if message["op"] not in OPS and message["op"] not in ("hello", "shutdown", "batch", "chain"):
        _wrong(what, "op", f"{message['op']!r} is not a known op")
    if message["op"] == "chain":
        for key in ("calls", "carry", "start"):
            if key not in message:
                _wrong(what, "", f"{key!r} is a required property")
        if type(message["start"]) is not dict:
            _wrong(what, "start", "must be an object")
        _check_strings(what, "carry", message["carry"])
        if "init" in message and message["init"] not in OPS:
            _wrong(what, "init", f"{message['init']!r} is not a known op")
    if "args" in message and type(message["args"]) is not dict:
        _wrong(what, "args", "must be an object")
    if message["op"] == "batch" and "calls" not in message:
        _wrong(what, "", "'calls' is a required property")
    if "calls" in message:
        if type(message["calls"]) is not list:
            _wrong(what, "calls", "must be a list of calls")
        for index, call in enumerate(message["calls"]):
            if type(call) is not dict or "op" not in call or set(call) - _CALL_KEYS:
                _wrong(what, f"calls/{index}", "must be an object with op and args only")
            if call["op"] not in OPS:
                _wrong(what, f"calls/{index}/op", f"{call['op']!r} is not a known op")
            if "args" in call and type(call["args"]) is not dict:
                _wrong(what, f"calls/{index}/args", "must be an object")
    if "conventions" in message:
        _check_strings(what, "conventions", message["conventions"], mapping=True)
    if "protocol" in message and message["protocol"] not in (PROTOCOL_VERSION, PROTOCOL_V2):
        _wrong(what, "protocol", f"{message['protocol']!r} is not one of {[PROTOCOL_VERSION, PROTOCOL_V2]}")


def validate_response(message) -> None:
    what = "response"
    _envelope(what, message, ("id", "ok"))
    if type(message["ok"]) is not bool:
        _wrong(what, "ok", f"{message['ok']!r} is not of type 'boolean'")
    needed = "result" if message["ok"] else "error"
    if needed not in message:
        _wrong(what, "", f"{needed!r} is a required property")
    if "result" in message and type(message["result"]) is not dict:
        _wrong(what, "result", "must be an object")
    if "error" in message and type(message["error"]) is not str:
        _wrong(what, "error", "must be a string")
    if "problems" in message:
        _check_strings(what, "problems", message["problems"])
    if "index" in message and not _is_integer(message["index"]):
        _wrong(what, "index", f"{message['index']!r} is not of type 'integer'")
    if "last" in message and type(message["last"]) is not bool:
        _wrong(what, "last", f"{message['last']!r} is not of type 'boolean'")


def validate_hello(result) -> None:
    what = "hello result"
    if type(result) is not dict:
        _wrong(what, "", "not an object")
    for key in ("name", "ops"):
        if key not in result:
            _wrong(what, "", f"{key!r} is a required property")
    for key in ("name", "protocol"):
        if key in result and type(result[key]) is not str:
            _wrong(what, key, f"{result[key]!r} is not of type 'string'")
    for key in ("ops", "warnings", "accepts"):
        if key in result:
            _check_strings(what, key, result[key])
    for index, op in enumerate(result["ops"]):
        if op not in OPS:
            _wrong(what, f"ops/{index}", f"{op!r} is not a known op")
    if "conventions" in result:
        _check_strings(what, "conventions", result["conventions"], mapping=True)


def validate_result(op: str, result) -> None:
    what = f"{op} result"
    if type(result) is not dict:
        _wrong(what, "", "not an object")
    for key, kind in RESULT_KEYS[op].items():
        if key not in result:
            _wrong(what, "", f"{key!r} is a required property")
        value = result[key]
        if kind == "tree":
            if type(value) is not dict:
                _wrong(what, key, "must be an object of named arrays")
            for name, array in value.items():
                if type(array) is not dict:
                    _wrong(what, f"{key}/{name}", "must be an array object")
        elif kind == "batches":
            if type(value) is not list:
                _wrong(what, key, "must be a list of [X, Y] pairs")
            for index, pair in enumerate(value):
                if type(pair) is not list or len(pair) != 2 or type(pair[0]) is not dict or type(pair[1]) is not dict:
                    _wrong(what, f"{key}/{index}", "must be a pair [X, Y] of array objects")
        elif not _is_number(value) and value not in _NON_FINITE_NAMES:
            _wrong(what, key, f"{value!r} is not a number (or 'nan', 'inf', '-inf')")


def schema_errors(definition: str, value, op: str | None = None) -> list[str]:
    """What the schema itself (with arrays left to the codec) says is wrong with ``value``: for the tests."""
    return [error.message for error in _validator(definition, op).iter_errors(value)]


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


#: One encoder for every message (``json.dumps`` with options builds a new one per call).
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def dumps(message: dict) -> str:
    """One line of JSON (no NaN literals: arrays carry non-finite values as strings)."""
    return _ENCODER.encode(message) + "\n"


# ---------------------------------------------------------------- values


def encode_args(args: dict, binary: bool = False) -> dict:
    """Python call arguments -> JSON: arrays and trees encoded (``binary``: version 2's base64), scalars kept."""
    encoded = {}
    for key, value in args.items():
        if isinstance(value, np.ndarray):
            encoded[key] = encode_array(value, binary)
        elif isinstance(value, dict):
            encoded[key] = encode_tree(value, binary)
        elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            encoded[key] = int(value)
        else:
            encoded[key] = float(value) if math.isfinite(float(value)) else str(float(value))
    return encoded


def decode_args(op: str, args: dict) -> dict:
    """JSON -> Python call arguments for ``op`` (arrays keep their wire dtype)."""
    decoded = {}
    for key, value in args.items():
        if isinstance(value, dict) and "dtype" in value and "shape" in value:
            decoded[key] = decode_array(value, f"args.{key}")
        elif isinstance(value, dict):
            decoded[key] = decode_tree(value, f"args.{key}")
        else:
            decoded[key] = value
    return decoded


def encode_result(op: str, result: dict, binary: bool = False) -> dict:
    """An op's Python result (see ``harness.adapter``) -> JSON (``binary``: version 2's base64 arrays)."""
    if op == "mini_batches":
        return {"batches": [[encode_array(x, binary), encode_array(y, binary)] for x, y in result["batches"]]}
    if op in SCALAR_OPS:
        value = float(result["learning_rate"])
        return {"learning_rate": value if math.isfinite(value) else str(value)}
    return {key: encode_tree(tree, binary) for key, tree in result.items()}


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
