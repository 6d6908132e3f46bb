"""The assignment file: ``optconform.toml`` (or ``[tool.optconform]`` in ``pyproject.toml``).

It pins what a grading run uses (ops, conventions, dtype, vector set and its
visibility, skip and xfail lists, time limit) and what each part is worth. ``check``
and ``grade`` read it from ``--config FILE``, else from ``optconform.toml`` or
``pyproject.toml`` in the current directory; an option given on the command line wins.

Points: ``[points.ops]`` gives an op or a family (``adam`` = ``adam.init``,
``adam.update`` and ``adam.trajectory``) its points, ``[points.tags]`` gives extra
points to the cases carrying a tag; ``partial_credit`` says how a group's points are
earned: ``proportional`` (the share of its cases that pass) or ``all_or_nothing``.
Without ``[points]``, every case is worth one point.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from optconform.harness.checking.points import PARTIAL_CREDIT, Points
from optconform.harness.checking.selection import COURSE_VERSIONS, parse_ops
from optconform.harness.checking.settings import DEFAULTS, Settings
from optconform.reference.mistakes import MISTAKES

#: Settings and their types; each is also a command-line option of check and grade.
SETTINGS = {"course": (str, int), "ops": (str, list), "conventions": (dict,), "dtype": (str,), "vectors": (str,),
            "visibility": (str,), "skip": (str,), "xfail": (str,), "timeout": (int, float), "memory": (int,)}


class AssignmentError(ValueError):
    """A malformed assignment file; the text names the file and the key."""


@dataclass
class Assignment:
    path: Path | None = None
    settings: dict = field(default_factory=dict)
    points: Points | None = None
    name: str = "optconform"


def _read_toml(path: Path) -> dict:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as error:
        raise AssignmentError(f"{path}: cannot read ({error.strerror or error})") from None
    except tomllib.TOMLDecodeError as error:
        raise AssignmentError(f"{path}: not valid TOML ({error})") from None


def find(explicit: str | None) -> Path | None:
    """The assignment file in use: ``--config``, else ``optconform.toml`` or a ``pyproject.toml`` with
    ``[tool.optconform]`` in the current directory, else none."""
    if explicit:
        return Path(explicit)
    if Path("optconform.toml").is_file():
        return Path("optconform.toml")
    if Path("pyproject.toml").is_file() and "optconform" in _read_toml(Path("pyproject.toml")).get("tool", {}):
        return Path("pyproject.toml")
    return None


def load(path: Path) -> Assignment:
    document = _read_toml(path)
    table = document.get("tool", {}).get("optconform", {}) if path.name == "pyproject.toml" else document
    unknown = set(table) - set(SETTINGS) - {"points", "name"}
    if unknown:
        raise AssignmentError(f"{path}: unknown key {sorted(unknown)[0]!r} (known: name, points, "
                              f"{', '.join(SETTINGS)})")
    settings = {}
    for key, kinds in SETTINGS.items():
        if key in table:
            value = table[key]
            if not isinstance(value, kinds) or isinstance(value, bool):
                raise AssignmentError(f"{path}: {key} must be {' or '.join(k.__name__ for k in kinds)}")
            settings[key] = value
    points = _points(path, table["points"]) if "points" in table else None
    name = table.get("name", "optconform")
    if not isinstance(name, str) or not name.strip():
        raise AssignmentError(f"{path}: name must be the assignment's name, as text")
    return Assignment(path, settings, points, name.strip())


def _points(path: Path, table) -> Points:
    if not isinstance(table, dict) or set(table) - {"ops", "tags", "partial_credit", "mistakes"}:
        raise AssignmentError(f"{path}: [points] holds ops, tags, partial_credit and mistakes only")
    points = Points(dict(table.get("ops", {})), dict(table.get("tags", {})),
                    table.get("partial_credit", "proportional"), dict(table.get("mistakes", {})))
    known = {mistake.name for mistake in MISTAKES}
    for name, share in points.mistakes.items():
        if name not in known:
            raise AssignmentError(f"{path}: points.mistakes: no known mistake is named {name!r} "
                                  "(optconform list --format json names them)")
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
            raise AssignmentError(f"{path}: points.mistakes.{name} must be a share of the points, 0 to 1")
    if points.partial_credit not in PARTIAL_CREDIT:
        raise AssignmentError(f"{path}: points.partial_credit must be one of {', '.join(PARTIAL_CREDIT)}")
    for kind, group in (("ops", points.ops), ("tags", points.tags)):
        for name, worth in group.items():
            if isinstance(worth, bool) or not isinstance(worth, (int, float)) or worth < 0:
                raise AssignmentError(f"{path}: points.{kind}.{name} must be a number of points >= 0")
    try:
        parse_ops(",".join(points.ops)) if points.ops else None
    except ValueError as error:
        raise AssignmentError(f"{path}: points.ops: {error}") from None
    return points


def build_settings(given: dict, config: str | None = None, **fixed) -> Settings:
    """The settings of a run: each setting of :data:`SETTINGS` from ``given`` (the command line's values;
    None where an option was not given) where set, else from the assignment file (``config``, or the one
    found here), else its default; ``fixed`` sets the rest of :class:`Settings` as they are."""
    path = find(config)
    assignment = load(path) if path else Assignment()
    file = assignment.settings
    chosen = {key: given.get(key) if given.get(key) is not None else file.get(key, DEFAULTS.get(key))
              for key in ("dtype", "vectors", "visibility", "skip", "xfail", "timeout", "memory")}
    if "ops" in file and "course" in file:
        raise AssignmentError(f"{path}: give course or ops, not both (course names the ops of a version)")
    course = given.get("course") or (str(file["course"]) if "course" in file else None)
    if course is not None and course not in COURSE_VERSIONS:
        raise AssignmentError(f"{path or '--course'}: course must be one of {', '.join(COURSE_VERSIONS)} "
                              f"(2021 for 2021 and later), not {course!r}")
    ops = given.get("ops")
    if ops is None and "ops" in file and not given.get("course"):
        ops = ",".join(file["ops"]) if isinstance(file["ops"], list) else file["ops"]
    if ops is None and course is not None:
        ops = ",".join(COURSE_VERSIONS[course])
    elif given.get("ops") is not None:
        course = None  # the command line's ops name no version
    # the file's conventions first: a command-line --convention overrides one
    conventions = tuple(f"{k}={v}" for k, v in file.get("conventions", {}).items()) + tuple(
        given.get("conventions") or ())
    if chosen["dtype"] not in ("float64", "float32"):
        raise AssignmentError(f"{path}: dtype must be float64 or float32, not {chosen['dtype']!r}")
    return Settings(ops=ops, course=course, conventions=conventions, points=assignment.points,
                    assignment_file=str(path) if path else None, assignment_name=assignment.name, **chosen, **fixed)


INIT_TEXT = '''# optconform.toml: what a grading run of this assignment uses.
# `optconform check` and `optconform grade` read it from the current directory (or --config FILE);
# an option given on the command line wins over the file.

name = "Optimization methods"

# The version of the course assignment the class did: it names the functions every student must write.
#   "2021" (2021 and later): random_mini_batches, initialize_velocity, update_parameters_with_momentum,
#          initialize_adam, update_parameters_with_adam, update_parameters_with_gd, update_lr, schedule_lr_decay
#   "2017" or "2018": the first five only (mini-batches, momentum and Adam)
course = "2021"
# Or list the ops yourself instead of a course (not both): families or ops of `optconform list`.
# ops = ["mini_batches", "momentum", "adam"]

# The precision students compute in (float64, or float32 with its own tolerances).
dtype = "float64"

# Per-call time limit for a submission, in seconds, and the memory (MB) its process may use.
timeout = 10
memory = 2048

# A private vector set (optconform generate --seed N --out DIR) and whether its values may be shown.
# vectors = "private-vectors"
# visibility = "hidden"

# Conventions every submission is held to (a submission's own declaration is ignored when grading).
# adam.epsilon = "inside_sqrt" accepts epsilon under the square root, as some course graders did;
# RMSprop follows it unless "rmsprop.epsilon" is set too (optconform list shows every convention).
[conventions]
"adam.epsilon" = "outside_sqrt"
"momentum.form" = "ema"

# What each part is worth. Without a [points] table every case is worth one point.
[points]
partial_credit = "proportional"   # or "all_or_nothing": an op's points only when all its cases pass

[points.ops]
mini_batches = 20
momentum = 20
adam = 40
gd = 5
lr_decay = 15

# Credit by mistake: a part whose every failing check is this one known mistake earns this share of its
# points instead of the share of its checks that pass (which for epsilon inside the root is about 12%).
# [points.mistakes]
# "epsilon-inside-sqrt" = 0.9

# Extra points for the cases that carry a tag (optconform list shows the tags).
[points.tags]
# edge = 5
'''
