"""The golden vectors: the files in this package, their schema, and the loader.

``load_suite()`` reads the shipped set; ``load_suite(path)`` reads another (a
private set from ``optconform generate --seed N --out DIR``) and validates it
against ``schema/vectors.schema.json`` first. Every problem is a
:class:`VectorError` whose message is one line naming the file and the case.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from .codec import CodecError, decode_array

SCHEMA_FILE = "schema/vectors.schema.json"


class VectorError(ValueError):
    """A vector directory or file that cannot be used; the message is one line."""


@dataclass(frozen=True)
class Case:
    """One golden case, its arrays decoded to NumPy."""

    id: str
    op: str
    description: str
    why: str
    tags: tuple[str, ...]
    conventions: dict
    inputs: dict
    expected: dict
    tolerance: dict
    float64_only: str | None = None
    #: A hidden case's feedback names the op, pass or fail and the mistake, never a value.
    hidden: bool = False

    def runs_at(self, dtype: str) -> bool:
        return dtype in self.tolerance

    @property
    def full_inputs(self) -> dict:
        """The inputs with every argument the case leaves out set to the course function's default."""
        from optconform.reference.ops import call_defaults

        return {**call_defaults(self.op), **self.inputs}


def shipped_dir() -> Path:
    """The directory of the vectors installed with the package."""
    return Path(str(resources.files(__name__)))


@lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads((shipped_dir() / SCHEMA_FILE).read_text(encoding="utf-8"))


def decode_value(value, where: str):
    """JSON -> Python: array objects become NumPy arrays, the rest keeps its structure."""
    if isinstance(value, dict):
        if set(value) == {"dtype", "shape", "data"}:
            return decode_array(value, where)
        return {key: decode_value(item, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, list):
        return [decode_value(item, f"{where}[{index}]") for index, item in enumerate(value)]
    return value


class _Doubt(Exception):
    """A value the trusted decoding does not take as it is: the checked one reads it, and names what is wrong."""


def _decoded_trusted(value):
    """:func:`decode_value` of a set validated when it was generated (the shipped one, or one that matches its
    manifest): the same arrays without a check per number, in some 60% of the time (the grader loads every case
    before it grades anything). Anything but a float64 array of the shape its numbers fill is :class:`_Doubt`."""
    if type(value) is dict:
        if len(value) == 3 and "dtype" in value and "shape" in value and "data" in value:
            shape, data = value["shape"], value["data"]
            if value["dtype"] != "float64" or type(shape) is not list or type(data) is not list or None in data:
                raise _Doubt  # (None would read as NaN)
            try:  # NumPy refuses a shape of other than counts; -1, which it would fill in, fails the count
                if len(data) != math.prod(shape):
                    raise _Doubt
                return np.array(data, dtype=np.float64).reshape(shape)  # "nan", "inf" and "-inf" parse too
            except (ValueError, TypeError, OverflowError):
                raise _Doubt from None
        return {key: _decoded_trusted(item) for key, item in value.items()}
    if type(value) is list:
        return [_decoded_trusted(item) for item in value]
    return value


def _decoded(value, where: str, trusted: bool):
    """A case's inputs, expected outputs or tolerance decoded: quickly from a trusted set, where nothing is in
    doubt; else (or then) with every check, an error naming where."""
    if trusted:
        try:
            return _decoded_trusted(value)
        except _Doubt:
            pass
    return decode_value(value, where)


def _validator():
    import jsonschema  # here: importing it costs 60 ms that a child server never needs

    return jsonschema.Draft202012Validator(schema())


def read_file(path: Path, validate: bool = True, hidden: bool = False) -> list[Case]:
    """The cases of one vector file."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except OSError as error:
        raise VectorError(f"{path}: cannot read ({error.strerror or error})") from None
    except (ValueError, RecursionError) as error:  # bad JSON or UTF-8, a 4300-digit integer, nesting too deep
        raise VectorError(f"{path}: not valid JSON ({str(error)[:200] or type(error).__name__})") from None
    if validate:
        try:
            import jsonschema

            error = jsonschema.exceptions.best_match(_validator().iter_errors(document))
        except RecursionError:
            raise VectorError(f"{path}: nested too deeply to validate") from None
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
            case = _case_id_at(document, error.absolute_path)
            raise VectorError(f"{path}: {case}at {where}: {error.message[:200]}")
    if not isinstance(document, dict) or not isinstance(document.get("cases", []), list):
        raise VectorError(f"{path}: not a vector file (an object with a list of cases)")
    cases = []
    for raw in document.get("cases", []):
        where = f"{path.name}: case {raw.get('id') if isinstance(raw, dict) else raw!r:.80}"
        try:
            cases.append(Case(
                id=raw["id"], op=raw["op"], description=raw["description"], why=raw["why"],
                tags=tuple(raw["tags"]), conventions=dict(raw["conventions"]),
                inputs=_decoded(raw["inputs"], "inputs", not validate),
                expected=_decoded(raw["expected"], "expected", not validate),
                tolerance=_decoded(raw["tolerance"], "tolerance", not validate), float64_only=raw.get("float64_only"),
                hidden=hidden))
        except (CodecError, KeyError, TypeError, AttributeError, ValueError, RecursionError) as error:
            raise VectorError(f"{where}: {error}") from None
        problem = _tolerance_problem(cases[-1].tolerance)
        if problem:
            raise VectorError(f"{where}: tolerance {problem}: a case must never pass by its tolerance alone")
        problem = _scale_problem(cases[-1].expected, cases[-1].tolerance.get("scale")) if validate else None
        if problem:  # the shipped and verified sets were made by the generator, whose scales mirror their outputs
            raise VectorError(f"{where}: tolerance {problem}")
    return cases


def _scale_problem(expected, scale, where: str = "scale") -> str | None:
    """Where a case's error scale does not mirror its expected output: every array of the scale must stand for an
    array of the output of the same shape (a key it leaves out is scaled by the output itself)."""
    import numpy as np

    if scale is None:
        return None
    if isinstance(scale, dict):
        if not isinstance(expected, dict):
            return f"{where} is an object where the output has no keys"
        for key, item in scale.items():
            if key not in expected:
                return f"{where}.{key}: the output has no {key!r}"
            problem = _scale_problem(expected[key], item, f"{where}.{key}")
            if problem:
                return problem
        return None
    if isinstance(scale, list):
        if not isinstance(expected, list) or len(expected) != len(scale):
            return f"{where} is a list of {len(scale)} where the output is not a list of as many"
        return next((problem for index, (e, item) in enumerate(zip(expected, scale))
                     if (problem := _scale_problem(e, item, f"{where}[{index}]"))), None)
    if not isinstance(expected, np.ndarray) or np.shape(scale) != expected.shape:
        return f"{where} has shape {np.shape(scale)}, its output {np.shape(expected)}"
    return None


def _no_constant(name: str):
    """JSON's non-standard ``NaN``/``Infinity``: refused (non-finite values are the strings the codec knows)."""
    raise ValueError(f"{name} is not JSON (non-finite numbers are written \"nan\", \"inf\", \"-inf\" in arrays)")


def _tolerance_problem(tolerance: dict) -> str | None:
    """What makes a tolerance vacuous or meaningless: NaN, infinite or negative rtol, atol or scale."""
    import math

    import numpy as np

    if not isinstance(tolerance, dict):
        return f"is {type(tolerance).__name__}, not an object"
    for dtype, bounds in tolerance.items():
        if dtype == "scale":
            continue
        for key in ("rtol", "atol"):
            value = bounds.get(key) if isinstance(bounds, dict) else None
            try:
                sound = isinstance(value, (int, float)) and math.isfinite(value) and value >= 0
            except OverflowError:  # an integer too large for a float
                sound = False
            if not sound:
                return f"{dtype}.{key} is {str(value)[:40]}"
    stack, arrays = [tolerance.get("scale")], []
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif item is not None:
            try:
                arrays.append(np.asarray(item, dtype=np.float64).ravel())
            except (TypeError, ValueError):
                return "scale holds something that is not a number"
    values = np.concatenate(arrays) if arrays else np.zeros(0)  # one check of every number, not one per array
    if not (np.isfinite(values).all() and (values >= 0).all()):
        return "scale holds a NaN, infinite or negative value"
    return None


def _case_id_at(document, path) -> str:
    path = list(path)
    if len(path) >= 2 and path[0] == "cases" and isinstance(document, dict):
        try:
            return f"case {document['cases'][path[1]]['id']!r} "
        except (KeyError, IndexError, TypeError):
            return f"case #{path[1]} "
    return ""


def visibility_of(directory: Path) -> str:
    """``visible`` or ``hidden``, as the set's manifest says; a set without one is hidden (fail closed)."""
    try:
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
        return manifest["visibility"] if manifest.get("visibility") in ("visible", "hidden") else "hidden"
    except (OSError, ValueError, AttributeError, KeyError):
        return "hidden"


def suite_identity(directory: Path | str | None = None) -> dict:
    """What identifies a vector set in a report: its directory, seed, visibility, and its manifest's sha256."""
    import hashlib

    directory = Path(directory) if directory is not None else shipped_dir()
    try:
        text = (directory / "manifest.json").read_bytes()
        manifest = json.loads(text)
    except (OSError, ValueError):
        return {"directory": str(directory), "manifest_sha256": None}
    return {"directory": "shipped" if directory == shipped_dir() else str(directory),
            "seed": manifest.get("seed") if isinstance(manifest, dict) else None,
            "visibility": visibility_of(directory), "manifest_sha256": hashlib.sha256(text).hexdigest()}


def verify_manifest(directory: Path) -> str | None:
    """Why ``directory``'s files do not match its manifest (one line naming the file), or None when they do."""
    import hashlib

    try:
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
        listed = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"{directory}: no readable manifest.json to verify the set against"
    present = {p.name for p in directory.glob("*.json") if p.name != "manifest.json"}
    for name in sorted(present - set(listed)):
        return f"{directory / name}: not in the set's manifest"
    for name, entry in sorted(listed.items()):
        path = directory / name
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            return f"{path}: listed in the manifest but missing"
        if not isinstance(entry, dict) or digest != entry.get("sha256"):
            return f"{path}: edited since it was generated (its sha256 differs from the manifest's)"
    return None


def load_suite(directory: Path | str | None = None, validate: bool | None = None,
               visibility: str | None = None, allow_modified: bool = False) -> list[Case]:
    """Every case of a vector directory (default: the shipped one), in file order.

    A set other than the shipped one must match its manifest (each file's sha256):
    an edited set is a VectorError naming the file, unless ``allow_modified``, and
    then every file is validated against the schema. The shipped set and a verified
    set were validated when generated (the shipped set's tests validate it again).
    ``visibility`` overrides the set's own (its manifest's; a private set from
    ``generate --seed`` is hidden).
    """
    directory = Path(directory) if directory is not None else shipped_dir()
    if not directory.is_dir():
        raise VectorError(f"{directory}: no such vector directory")
    files = sorted(p for p in directory.glob("*.json") if p.name != "manifest.json")
    if not files:
        raise VectorError(f"{directory}: holds no vector files (*.json)")
    shipped = directory == shipped_dir()
    if not shipped and not allow_modified:
        problem = verify_manifest(directory)
        if problem:
            raise VectorError(f"{problem} (--allow-modified uses it anyway, validating every file)")
    if validate is None:  # a set that matches its manifest was validated when it was generated
        validate = not shipped and allow_modified
    hidden = (visibility or visibility_of(directory)) == "hidden"
    cases, seen = [], {}
    for path in files:
        for case in read_file(path, validate, hidden):
            if case.id in seen:
                raise VectorError(f"{path.name}: case id {case.id!r} also in {seen[case.id]}")
            seen[case.id] = path.name
            cases.append(case)
    return cases
