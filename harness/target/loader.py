"""Turning a target's name into a namespace of Python functions.

- ``pkg.mod`` or ``pkg.mod:obj``: imported as it is (trusted code, a port's own CI).
- ``file.py`` or ``notebook.ipynb`` (a student's): only imports and definitions are
  taken, chosen from the syntax tree, so top-level training loops, plots and
  ``input()`` calls never run. A statement that fails (an import of a package
  that is not installed, say) is skipped with a warning, not fatal.

Submissions run with a small course prelude already imported: ``np``,
``numpy`` and ``math`` (the seed notebook uses ``math`` without importing it).
"""

from __future__ import annotations

import ast
import functools
import importlib
import math
import os
import re
import types

import numpy as np

from .adapter import FUNCTION_NAMES
from .sources import LoadError, notebook_cells, python_text

#: Statements taken from a submission: imports and definitions.
DEFINITIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def is_file_target(target: str) -> bool:
    return target.endswith((".py", ".ipynb")) or os.path.exists(target)


def file_for(target: str) -> str | None:
    """The file a command-line target names: itself, or ``NAME.py`` (``NAME.ipynb``) when ``NAME`` is none."""
    if is_file_target(target):
        return target
    return next((target + suffix for suffix in (".py", ".ipynb") if os.path.isfile(target + suffix)), None)


def load_module_target(target: str):
    """``pkg.mod`` or ``pkg.mod:obj`` -> the module or object."""
    module_name, _, attribute = target.partition(":")
    try:
        namespace = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and module_name.startswith(error.name):
            raise LoadError(f"no module named {module_name!r} (is it installed, or is it a file path?)") from None
        raise LoadError(f"importing {module_name} failed: {error}") from None
    except Exception as error:  # noqa: BLE001 - any import failure is the target's
        raise LoadError(f"importing {module_name} failed: {type(error).__name__}: {error}") from None
    for part in filter(None, attribute.split(".")):
        if not hasattr(namespace, part):
            raise LoadError(f"{module_name} has no attribute {part!r}")
        namespace = getattr(namespace, part)
    return namespace


def _assigned_names(node: ast.stmt) -> list[str] | None:
    """The names a top-level ``NAME = ...`` / ``A, B = ...`` / ``NAME: T = ...`` binds; None for other statements."""
    if isinstance(node, ast.AnnAssign):
        return [node.target.id] if node.value is not None and isinstance(node.target, ast.Name) else None
    if not isinstance(node, ast.Assign):
        return None
    names = []
    for target in node.targets:
        parts = target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]
        if not all(isinstance(part, ast.Name) for part in parts):
            return None
        names += [part.id for part in parts]
    return names


def _loaded(tree: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


@functools.lru_cache(maxsize=1024)  # asked of every definition twice: for what to take, and for the warnings
def _free_names(node: ast.stmt) -> frozenset[str]:
    """Names a definition reads from the module: loaded, and bound nowhere inside it (an over-approximation)."""
    bound = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, (ast.Store, ast.Del)):
            bound.add(sub.id)
        elif isinstance(sub, ast.arg):
            bound.add(sub.arg)
        elif isinstance(sub, (ast.Import, ast.ImportFrom)):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in sub.names)
        elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and sub is not node:
            bound.add(sub.name)
    inner = node.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else [node]
    reads = set().union(*(_loaded(statement) for statement in inner)) - bound
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):  # evaluated at definition time
        for outer in [*node.decorator_list, *getattr(node, "bases", []),
                      *(getattr(node.args, "defaults", []) if hasattr(node, "args") else []),
                      *(getattr(node.args, "kw_defaults", []) if hasattr(node, "args") else [])]:
            if outer is not None:
                reads |= _loaded(outer)
    return frozenset(reads)


def _is_definition(node: ast.stmt) -> bool:
    return isinstance(node, DEFINITIONS)


def _guarded_names(node: ast.stmt) -> list[str] | None:
    """The names a top-level ``try:`` of imports and assignments only binds (``try: import x / except
    ImportError: x = None``); None for any other statement."""
    if not isinstance(node, ast.Try):
        return None
    body = node.body + [s for h in node.handlers for s in h.body] + node.orelse + node.finalbody
    names = []
    for statement in body:
        if isinstance(statement, (ast.Import, ast.ImportFrom)):
            names += _bound_by(statement)
        elif _assigned_names(statement) is not None:
            names += _assigned_names(statement)
        elif not isinstance(statement, ast.Pass):
            return None
    return names


def _taken_statements(body: list[ast.stmt]) -> list[ast.stmt]:
    """Definitions, and the assignments and imports the graded functions reach.

    Every function and class is defined; an assignment, an import or a guarded ``try:``
    of them runs only when a name it binds is read by a graded function, by a definition
    one of those reads (a helper it calls), or by another statement so taken, to the
    closure. ``EPS = 10**-8`` or ``sqrt = np.sqrt`` read by ``update_parameters_with_adam``
    is taken; ``parameters = model(X, Y)`` that nothing reads is not; nor is ``import
    matplotlib.pyplot as plt`` that only an ungraded ``model()`` uses (importing it costs a
    quarter of a second and grades nothing). A star import is always taken. ``body`` is
    every top-level statement of the submission (all of a notebook's cells), so a constant
    in one cell serves a function in another.
    """
    imports = [node for node in body if isinstance(node, (ast.Import, ast.ImportFrom))]
    definitions = [node for node in body if _is_definition(node) and node not in imports]
    by_name = {node.name: node for node in definitions}
    binders = [(node, _assigned_names(node) or _guarded_names(node)) for node in body
               if _assigned_names(node) or _guarded_names(node)]
    needed = {CONVENTIONS_NAME} | GRADED_NAMES  # a graded name may also be bound by an assignment
    read_defs: set[str] = set()
    taken: set[int] = set()
    grew = True
    while grew:
        grew = False
        for name in sorted((needed & set(by_name)) - read_defs):  # a helper a graded function calls, and so on
            read_defs.add(name)
            needed |= _free_names(by_name[name])
            grew = True
        for node, names in binders:
            if id(node) not in taken and (needed & set(names) or "*" in names):
                taken.add(id(node))
                needed |= _loaded(node.value) if isinstance(node, (ast.Assign, ast.AnnAssign)) else _loaded(node)
                grew = True
    taken |= {id(node) for node in imports if "*" in _bound_by(node) or needed & set(_bound_by(node))}
    return [node for node in body if id(node) in taken or node in definitions]


#: Every name a graded function may have: what the loader starts its closure of needed names from.
GRADED_NAMES = frozenset(name for names in FUNCTION_NAMES.values() for name in names)
#: A submission's own convention declaration: read (a port's), though grading may ignore it.
CONVENTIONS_NAME = "OPTCONFORM_CONVENTIONS"
#: Seconds an assignment a definition reads may take to evaluate at load time.
ASSIGNMENT_SECONDS = 2.0
#: Names a submission gets without importing them, as the seed notebook expects.
PRELUDE = {"np": np, "numpy": np, "math": math}


def _strip_magics(source: str) -> str:
    """Blank out IPython magics and shell escapes (``%matplotlib``, ``!pip``), keeping line numbers."""
    lines = source.split("\n")
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in lines)


def _parse_blocks(source: str, label: str, warnings: list[str]) -> ast.Module:
    """Parse ``source``; a syntax error costs only the top-level block it is in (a warning names its line)."""
    lines = source.split("\n")
    for _ in range(200):
        try:
            return ast.parse("\n".join(lines), filename=label)
        except SyntaxError as error:
            where = max(1, min(error.lineno or 1, len(lines)))
            first, last = _block_around(lines, where - 1)
            defined = re.findall(r"^\s*(?:async\s+)?def\s+(\w+)", "\n".join(lines[first:last + 1]), re.MULTILINE)
            warnings.append(f"{label} line {where}: syntax error ({error.msg}); lines {first + 1}-{last + 1} skipped"
                            + (f" [defines {', '.join(defined)}]" if defined else ""))
            lines[first:last + 1] = [""] * (last + 1 - first)
    return ast.parse("", filename=label)


def _block_around(lines: list[str], index: int) -> tuple[int, int]:
    """The top-level block holding line ``index``: from its unindented first line to before the next one."""
    def starts_block(line: str) -> bool:
        return bool(line) and not line[0].isspace() and not line.startswith(("#", ")", "]", "}"))

    first = index
    while first > 0 and not starts_block(lines[first]):
        first -= 1
    last = index
    while last + 1 < len(lines) and not starts_block(lines[last + 1]):
        last += 1
    return first, last


class _SlowAssignment(Exception):
    pass


def _with_time_limit(seconds: float, run) -> None:
    """``run()``, interrupted after ``seconds`` where a timer signal can do it (the main thread on POSIX)."""
    import signal
    import threading

    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        run()
        return

    def expire(signum, frame):
        raise _SlowAssignment

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        run()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _execute(tree: ast.Module, filename: str, namespace: dict, warnings: list[str], where: str,
             taken: set[int]) -> None:
    for node in (node for node in tree.body if id(node) in taken):
        code = compile(ast.Module(body=[node], type_ignores=[]), filename, "exec")
        try:
            if _assigned_names(node) is not None:
                _with_time_limit(ASSIGNMENT_SECONDS, lambda: exec(code, namespace))  # noqa: S102
            else:
                exec(code, namespace)  # noqa: S102 - definitions only, in the sandboxed child
        except _SlowAssignment:
            warnings.append(f"{where}line {node.lineno}: skipped (took longer than {ASSIGNMENT_SECONDS:g} s)")
        except BaseException as error:  # noqa: BLE001 - a failing import or decorator is the submission's
            if isinstance(error, KeyboardInterrupt):
                raise
            names = _bound_by(node)
            needed_by = f" [binds {', '.join(names)}]" if names else ""
            warnings.append(f"{where}line {node.lineno}: skipped ({type(error).__name__}: {error}){needed_by}"[:300])


def _bound_by(node: ast.stmt) -> list[str]:
    """The names an import or assignment would have bound (for matching a later NameError to it)."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):  # "*" stands for whatever a star import binds
        return [(alias.asname or alias.name).split(".")[0] for alias in node.names]
    return _assigned_names(node) or []


def _prelude_warnings(trees: list[ast.Module], label: str) -> list[str]:
    """A warning per prelude name (np, math) that definitions use but the submission never binds."""
    bound, used = set(), set()
    for tree in trees:
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                bound.update(_bound_by(node))
            elif _assigned_names(node):
                bound.update(_assigned_names(node))
            elif _is_definition(node):
                used |= _free_names(node)
    missing = sorted((used & set(PRELUDE)) - bound)
    hints = {"np": "import numpy as np", "numpy": "import numpy", "math": "import math"}
    return [f"{label}: uses {name} without importing it; optconform provided it (add `{hints[name]}`)"
            for name in missing]


def load_source(path: str | os.PathLike[str]) -> tuple[types.ModuleType, list[str]]:
    """A ``.py`` file or ``.ipynb`` notebook -> (namespace of its definitions, warnings)."""
    filename, name = os.fspath(path), os.path.basename(path)
    if not os.path.exists(filename):
        raise LoadError(f"{name}: no such file")
    if not os.path.isfile(filename):
        raise LoadError(f"{name}: not a file")
    module = types.ModuleType("optconform_submission")
    module.__file__ = filename
    module.__dict__.update(PRELUDE)
    warnings: list[str] = []
    notebook = os.path.splitext(filename)[1] == ".ipynb"  # as pathlib's suffix: ".ipynb" alone is no notebook
    if notebook:
        sources = [(f"{name} cell {number}", source) for number, source in enumerate(notebook_cells(filename), 1)]
    else:
        try:
            sources = [(name, python_text(filename, warnings))]
        except OSError as error:
            raise LoadError(f"{name}: cannot read ({error.strerror or error})") from None
    trees = [(label, _parse_blocks(_strip_magics(source), label, warnings)) for label, source in sources]
    warnings += _prelude_warnings([tree for _, tree in trees], name)
    taken = {id(node) for node in _taken_statements([node for _, tree in trees for node in tree.body])}
    for label, tree in trees:
        _execute(tree, label if notebook else filename, module.__dict__, warnings, f"{label} ",
                 taken)
    return module, warnings
