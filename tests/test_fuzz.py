"""Fuzzing the readers of untrusted input with hypothesis.

(a) The wire-protocol reader: ``parse_line``, ``validate_response`` and
    ``decode_result`` on random and mutated messages: only ProtocolError (or
    CodecError) may escape.
(b) A ProcessSession against a program that answers random bytes and mutated JSON
    lines: a call returns or raises CallFailed, and never hangs.
(c) The vector loader: ``vectors.read_file`` on random and mutated vector files
    raises VectorError and nothing else.
"""

from __future__ import annotations

import atexit
import copy
import json
import math
import os
import shutil
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from optconform.harness.target import protocol
from optconform.harness.target.session import CallFailed, ProcessSession
from optconform.vectors import VectorError, read_file, shipped_dir
from optconform.vectors.codec import CodecError

OPS = protocol.OPS
#: Examples per test; raise it for a longer campaign (OPTCONFORM_FUZZ_SCALE=20 runs twenty times as many).
SCALE = float(os.environ.get("OPTCONFORM_FUZZ_SCALE", "1"))


def budget(examples: int) -> settings:
    return settings(max_examples=max(1, int(examples * SCALE)), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


FAST = budget(150)

# ---------------------------------------------------------------- strategies

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10 ** 30), max_value=10 ** 30),
    st.sampled_from([0, -1, 2 ** 63, 10 ** 400, -(10 ** 400)]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e308, -1e308, 5e-324, 3.5e38, -0.0]),
    st.text(max_size=20), st.sampled_from(["nan", "inf", "-inf", "NaN", "Infinity", "float64", "float32", ""]))
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=25)


def _arrays(draw, count=1):
    """Small float arrays, some with non-finite values, of a random dtype."""
    dtype = draw(st.sampled_from(["float64", "float32"]))
    shape = tuple(draw(st.lists(st.integers(0, 3), min_size=0, max_size=3)))
    values = draw(st.lists(st.floats(width=32) | st.sampled_from([math.nan, math.inf, -math.inf]),
                           min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    return np.array(values, dtype=dtype).reshape(shape)


@st.composite
def trees(draw):
    keys = draw(st.lists(st.sampled_from(["dW1", "db1", "dW2", "db2", "W1", "b1"]), min_size=1, max_size=4,
                         unique=True))
    return {key: _arrays(draw) for key in keys}


@st.composite
def valid_results(draw, op):
    """A valid encoded result of ``op``, as a program would send it."""
    if op == "mini_batches":
        batches = [(_arrays(draw), _arrays(draw)) for _ in range(draw(st.integers(0, 3)))]
        return protocol.encode_result(op, {"batches": batches})
    if op in protocol.SCALAR_OPS:
        return protocol.encode_result(op, {"learning_rate": draw(st.floats(allow_nan=True, allow_infinity=True))})
    keys = {"momentum.init": ("v",), "adam.init": ("v", "s"), "momentum.update": ("parameters", "v"),
            "adam.update": ("parameters", "v", "s"), "gd.update": ("parameters",), "rmsprop.init": ("s",),
            "rmsprop.update": ("parameters", "s")}[op]
    return protocol.encode_result(op, {key: draw(trees()) for key in keys})


def _paths(value, prefix=()):
    """Every path into a JSON value (keys and indices), the root included."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, prefix + (index,))


MUTATIONS = ("drop", "replace", "wrong_type", "bad_shape", "huge", "string_in_data", "duplicate", "extra_key")


def mutate(draw, document, steps=3):
    """Apply up to ``steps`` random mutations at random places of a JSON document (a copy)."""
    document = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, steps))):
        paths = list(_paths(document))
        path = draw(st.sampled_from(paths))
        kind = draw(st.sampled_from(MUTATIONS))
        if not path:
            if kind in ("replace", "wrong_type"):
                document = draw(json_values)
            continue
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        key, target = path[-1], parent[path[-1]]
        if kind == "drop":
            del parent[key]
        elif kind == "replace":
            parent[key] = draw(json_values)
        elif kind == "wrong_type":
            parent[key] = draw(st.sampled_from([None, True, 0, 1.5, "text", [], {}, [target], {"x": target}]))
        elif kind == "bad_shape" and isinstance(target, dict) and "shape" in target:
            target["shape"] = draw(st.sampled_from([[], [-1], [1.0], ["2"], [10 ** 30, 10 ** 30], None,
                                                    [len(target.get("data") or []) + 1], [0, 5]]))
        elif kind == "huge":
            parent[key] = draw(st.sampled_from([10 ** 400, -(10 ** 400), 1e308, 2 ** 64, [1e308] * 3]))
        elif kind == "string_in_data" and isinstance(target, dict) and isinstance(target.get("data"), list):
            target["data"] = list(target["data"]) + [draw(st.sampled_from(["nan", "NaN", "1.0", "", "inf "]))]
        elif kind == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(target))
        elif kind == "extra_key" and isinstance(target, dict):
            target[draw(st.text(max_size=6))] = draw(json_values)
    return document


@st.composite
def mutated_results(draw):
    op = draw(st.sampled_from(OPS))
    return op, mutate(draw, draw(valid_results(op)))


# ---------------------------------------------------------------- (a) the protocol reader


def _read_message(line, op):
    """The harness's reading of one answer: parse, validate the envelope, decode the result."""
    message = protocol.parse_line(line, "answer")
    protocol.validate_response(message)
    if message["ok"]:
        return protocol.decode_result(op, message["result"])
    return message["error"]


@FAST
@given(st.binary(max_size=200) | st.text(max_size=200), st.sampled_from(OPS))
@example(b"1" * 5000, "adam.init")
@example(b"[" * 100000, "adam.init")
@example(b'{"id": 1, "ok": true, "result": ' + b'{"v": ' * 500 + b"{}" + b"}" * 501, "momentum.init")
@example(b'{"id": 1, "ok": true, "result": {"v": {"dW1": {"dtype": "float64", "shape": [1], "data": [1e999]}}}}',
         "momentum.init")
@example(b'{"id": 1, "ok": true, "result": {"v": {"dW1": {"dtype": "float32", "shape": [1], "data": [NaN]}}}}',
         "momentum.init")
@example(b"\xff\xfe{}\n", "mini_batches")
def test_random_lines_raise_protocol_error_only(line, op):
    try:
        _read_message(line, op)
    except (protocol.ProtocolError, CodecError):
        pass


@FAST
@given(json_values)
def test_random_json_values_raise_protocol_error_only(value):
    for op in OPS:
        for call in (protocol.validate_response, lambda v: protocol.decode_result(op, v),
                     lambda v: protocol.decode_result(op, {"result": v}),
                     lambda v: _read_message(json.dumps({"id": 1, "ok": True, "result": v}), op)):
            try:
                call(value)
            except (protocol.ProtocolError, CodecError):
                pass


@FAST
@given(mutated_results())
@example(("adam.init", {"v": {"dW1": {"dtype": "float64", "shape": [10 ** 400, 0], "data": []}}, "s": {}}))
@example(("momentum.init", {"v": {"dW1": {"dtype": "float64", "shape": [1] * 70, "data": [1.0]}}}))
@example(("mini_batches", {"batches": [[{"dtype": "float32", "shape": [2 ** 63, 0], "data": []}] * 2]}))
def test_mutated_results_raise_protocol_error_only(mutated):
    op, result = mutated
    try:
        decoded = protocol.decode_result(op, result)
    except (protocol.ProtocolError, CodecError):
        decoded = None
    if decoded is not None:
        for value in decoded.values():  # trees and batch lists, or the one number of a decay op
            assert isinstance(value, (dict, list)) or (isinstance(value, np.ndarray) and value.shape == ())
    line = json.dumps({"id": 7, "ok": True, "result": result})
    try:
        _read_message(line, op)
    except (protocol.ProtocolError, CodecError):
        pass


@FAST
@given(st.data())
def test_mutated_envelopes_raise_protocol_error_only(data):
    op = data.draw(st.sampled_from(OPS))
    envelope = data.draw(st.sampled_from([
        {"id": 3, "ok": True, "result": data.draw(valid_results(op))},
        {"id": 3, "ok": False, "error": "ValueError: bad"},
        {"id": 3, "ok": True, "result": {"name": "x", "ops": list(OPS)}, "problems": ["changed its input grads"]},
    ]))
    message = mutate(data.draw, envelope)
    try:
        _read_message(json.dumps(message), op)
    except (protocol.ProtocolError, CodecError):
        pass
    try:
        protocol.validate_hello(message.get("result") if isinstance(message, dict) else message)
    except protocol.ProtocolError:
        pass


def test_a_valid_result_still_decodes():
    """The mutations start from messages the reader accepts."""
    result = protocol.encode_result("adam.init", {"v": {"dW1": np.ones((2, 3))}, "s": {"dW1": np.zeros((2, 3))}})
    decoded = _read_message(json.dumps({"id": 1, "ok": True, "result": result}), "adam.init")
    assert decoded["v"]["dW1"].shape == (2, 3)


# ---------------------------------------------------------------- (b) a session against a program that babbles

FAKE_PROGRAM = textwrap.dedent('''\
    """Answers hello properly, then every request with the bytes of the payload file (id placeholder filled)."""
    import json, sys
    payload_file = sys.argv[1]
    for line in sys.stdin.buffer:
        request = json.loads(line)
        if request["op"] == "hello":
            ops = ["mini_batches", "momentum.init", "momentum.update", "adam.init", "adam.update"]
            print(json.dumps({"id": request["id"], "ok": True, "result": {"name": "fake", "ops": ops}}), flush=True)
            continue
        if request["op"] == "shutdown":
            break
        with open(payload_file, "rb") as source:
            payload = source.read().replace(b"987654321", str(request["id"]).encode())
        sys.stdout.buffer.write(payload)
        sys.stdout.buffer.flush()
    ''')
PLACEHOLDER_ID = 987654321
WORKDIR = Path(tempfile.mkdtemp(prefix="optconform-fuzz-"))
atexit.register(shutil.rmtree, WORKDIR, True)
(WORKDIR / "fake.py").write_text(FAKE_PROGRAM, encoding="utf-8")
CALL_ARGS = {
    "momentum.init": {"parameters": {"W1": np.ones((2, 3)), "b1": np.zeros((2, 1))}},
    "adam.init": {"parameters": {"W1": np.ones((2, 3)), "b1": np.zeros((2, 1))}},
    "mini_batches": {"X": np.arange(12.0).reshape(2, 6), "Y": np.arange(6.0).reshape(1, 6),
                     "mini_batch_size": 4, "seed": 1},
}
SESSION_TIMEOUT = 0.5


@st.composite
def babble(draw):
    """What the program writes back for a call: random bytes, or mutated JSON answers, usually one line."""
    op = draw(st.sampled_from(sorted(CALL_ARGS)))
    kind = draw(st.sampled_from(["bytes", "bytes", "json", "json", "json", "lines", "no newline"]))
    if kind in ("bytes", "no newline"):
        payload = draw(st.binary(max_size=120)).replace(b"\n", b" ")
        return op, payload + (b"" if kind == "no newline" else b"\n")
    answers = []
    for _ in range(1 if kind == "json" else draw(st.integers(2, 3))):
        answer = {"id": PLACEHOLDER_ID, "ok": True, "result": draw(valid_results(op))}
        answers.append(json.dumps(mutate(draw, answer)).encode() + b"\n")
    return op, b"".join(answers)


@budget(40)
@given(babble())
@example(("adam.init", b"\n\n\n"))
@example(("adam.init", b'{"id": 987654321, "ok": false, "error": ""}\n'))
@example(("adam.init", b'{"id": 987654321, "ok": false, "error": "\\n\\n"}\n'))
@example(("momentum.init", b'{"id": 987654321, "ok": true, "result": {"v": {}}}\n{"id": 1}\n'))
def test_a_session_against_a_babbling_program_only_raises_call_failed(answer):
    op, payload = answer
    payload_file = WORKDIR / "payload.bin"
    payload_file.write_bytes(payload)
    session = ProcessSession([sys.executable, str(WORKDIR / "fake.py"), str(payload_file)], "fake",
                             timeout=SESSION_TIMEOUT, sandbox=False, start_timeout=10)
    try:
        for _ in range(2):  # the second call meets whatever the first left behind
            started = time.monotonic()
            try:
                result, problems = session.call(op, CALL_ARGS[op])
                assert isinstance(result, dict) and isinstance(problems, list)
            except CallFailed as failure:
                assert "\n" not in str(failure)
            # one call: at most a timeout, plus a restart (a fresh interpreter and its hello)
            assert time.monotonic() - started < SESSION_TIMEOUT + 10
    finally:
        session.close()


# ---------------------------------------------------------------- (c) the vector loader


def _real_document(name: str, cases: int = 1) -> dict:
    document = json.loads((shipped_dir() / name).read_text(encoding="utf-8"))
    document["cases"] = document["cases"][:cases]
    return document


REAL_DOCUMENTS = [_real_document(name) for name in ("momentum.init.json", "adam.update.json", "mini_batches.json")]


def _read(content: bytes, validate: bool):
    path = WORKDIR / "vectors.json"
    path.write_bytes(content)
    try:
        cases = read_file(path, validate=validate)
    except VectorError as error:
        assert "\n" not in str(error) and "vectors.json" in str(error)
        return None
    assert isinstance(cases, list)
    return cases


def test_the_real_documents_load():
    for document in REAL_DOCUMENTS:
        assert len(_read(json.dumps(document).encode(), validate=True)) == 1


@FAST
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode), st.booleans())
@example(b"1" * 5000, True)
@example(b"[" * 100000, False)
@example(b"[1, 2, 3]", False)
@example(b'{"cases": [1, "two", null]}', False)
@example(b'{"cases": 5}', False)
def test_random_vector_files_raise_vector_error_only(content, validate):
    _read(content, validate)


@budget(120)
@given(st.data(), st.booleans())
def test_mutated_vector_files_raise_vector_error_only(data, validate):
    document = data.draw(st.sampled_from(REAL_DOCUMENTS))
    mutated = mutate(data.draw, document, steps=4)
    _read(json.dumps(mutated).encode(), validate)


@pytest.mark.parametrize("depth", [50, 400, 900])
def test_deeply_nested_vector_files(depth):
    document = copy.deepcopy(REAL_DOCUMENTS[0])
    document["cases"][0]["inputs"] = json.loads('{"a": ' * depth + "1" + "}" * depth)
    for validate in (True, False):
        _read(json.dumps(document).encode(), validate)


def _verdict(check, value) -> bool:
    try:
        check(value)
    except protocol.ProtocolError:
        return False
    return True


@FAST
@given(mutated_results())
@example(("lr_decay.scheduled", {"learning_rate": True}))
@example(("mini_batches", {"batches": [[{}, {}, {}]]}))
@example(("adam.init", {"v": {"dW1": []}, "s": {}}))
def test_the_hand_check_of_results_agrees_with_the_schema(mutated):
    op, result = mutated
    assert _verdict(lambda v: protocol.validate_result(op, v), result) == (
        not protocol.schema_errors("results", result, op))


@FAST
@given(json_values, st.sampled_from(["id", "ok", "result", "error", "problems", None]))
@example({"id": 1.0, "ok": True, "result": {}}, None)
@example({"id": True, "ok": True, "result": {}}, None)
@example({"id": 1, "ok": False, "result": {}}, None)
def test_the_hand_check_of_responses_and_requests_agrees_with_the_schema(value, key):
    responses = [value, {"id": 1, "ok": True, "result": {}}, {"id": 2, "ok": False, "error": "x"}]
    requests = [value, {"id": 1, "op": "adam.update", "args": {}}, {"id": 1, "op": "hello"}]
    if key is not None:
        responses = [{**r, key: value} for r in responses[1:]] + responses
        requests = [{**r, key if key != "result" else "args": value} for r in requests[1:]] + requests
    for message in responses:
        assert _verdict(protocol.validate_response, message) == (not protocol.schema_errors("response", message))
    for message in requests:
        assert _verdict(protocol.validate_request, message) == (not protocol.schema_errors("request", message))


@FAST
@given(json_values, st.sampled_from(["name", "ops", "protocol", "conventions", "warnings", "accepts", None]))
@example({"a": 1}, "conventions")
@example(["adam.update", "gd.update"], "ops")
@example(["adam.update", "adam.step"], "ops")
@example(1.0, "name")
def test_the_hand_check_of_a_hello_agrees_with_the_schema(value, key):
    hellos = [value, {"name": "x", "ops": ["adam.update"]},
              {"name": "x", "ops": [], "protocol": "optconform/1", "accepts": ["optconform/2"],
               "conventions": {"bias_correction": "outside_sqrt"}, "warnings": ["w"]}]
    if key is not None:
        hellos = [{**h, key: value} for h in hellos[1:]] + hellos
    for hello in hellos:
        assert _verdict(protocol.validate_hello, hello) == (not protocol.schema_errors("hello_result", hello))


# ---------------------------------------------------------------- the codec's short way for b64 arrays

_B64_TEXT = st.one_of(
    st.binary(max_size=40).map(lambda raw: __import__("base64").b64encode(raw).decode("ascii")),
    st.text(alphabet="AQgw+/=-_ \n\u00e9", max_size=24),
    st.just("AAAAAAAA8D8="), st.just("AAAAAAAA8D8"), st.just("AAAAAAAA8D8=="), st.just("AAAAAAAA8D8=AAAA"))


@settings(max_examples=600, deadline=None)
@given(dtype=st.one_of(st.sampled_from(["float64", "float32", "float16", "<f8"]), st.just(["float64"]),
                       st.integers()),
       shape=st.one_of(st.lists(st.one_of(st.integers(-1, 5), st.booleans(), st.just(1.0)), max_size=4),
                       st.just("2")),
       text=st.one_of(_B64_TEXT, st.integers(), st.none()), cast=st.sampled_from([None, "float32"]))
@example(dtype="float64", shape=[1], text="AAAAAAAA8D8=", cast=None)
@example(dtype="float32", shape=[2, 0], text="", cast="float32")
def test_the_short_way_for_b64_arrays_decodes_exactly_as_the_long_way(dtype, shape, text, cast):
    """Whatever the object, the short way the wire's arrays take returns what the full check returns,
    or leaves the refusal (a CodecError naming the fault) to it."""
    from optconform.vectors import codec

    obj = {"dtype": dtype, "shape": shape, "b64": text}

    def outcome():
        try:
            array = codec.decode_array(obj, "x", cast)
        except CodecError as error:
            return "refused", str(error)
        return array.dtype.str, array.shape, array.tobytes(), array.flags.writeable

    short = outcome()
    original = codec._well_formed_b64
    codec._well_formed_b64 = lambda obj: None
    try:
        long = outcome()
    finally:
        codec._well_formed_b64 = original
    assert short == long


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=0, max_size=24),
       dtype=st.sampled_from(["<f8", ">f8", "<f4", ">f4", "<f2", "<i8", "|b1"]),
       columns=st.integers(1, 4), step=st.integers(1, 2), transpose=st.booleans())
def test_an_array_sent_in_base64_arrives_bit_for_bit_whatever_its_layout(values, dtype, columns, step, transpose):
    """The wire's binary form of any array (either byte order, strided, transposed, of another dtype) decodes
    to the same values in native order: native float32 stays float32, any other dtype travels as float64."""
    from optconform.vectors import codec

    with np.errstate(all="ignore"):
        array = np.asarray(values, dtype=np.float64).astype(dtype)
    array = array[: len(array) // columns * columns].reshape(-1, columns)[::step]
    array = array.T if transpose else array
    encoded = codec.encode_array(array, binary=True)
    expected = array.astype(np.float32 if array.dtype == np.dtype(np.float32) else np.float64)
    assert encoded["dtype"] == expected.dtype.name and encoded["shape"] == list(array.shape)
    decoded = codec.decode_array(json.loads(json.dumps(encoded)))
    assert decoded.dtype == expected.dtype.newbyteorder("=") and decoded.shape == array.shape
    assert decoded.tobytes() == np.ascontiguousarray(expected, dtype=expected.dtype.newbyteorder("=")).tobytes()
