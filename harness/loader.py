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
import importlib
import math
import types
from pathlib import Path

import numpy as np

#: Statements taken from a submission: imports and definitions.
DEFINITIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


class LoadError(Exception):
    """A target that cannot be loaded; the message is one line naming file and line."""


def is_file_target(target: str) -> bool:
    return target.endswith((".py", ".ipynb")) or Path(target).exists()


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


def _is_literal_assignment(node: ast.stmt) -> bool:
    """``NAME = <literal>`` (e.g. a constant or OPTCONFORM_CONVENTIONS = {...}): safe to take."""
    if not isinstance(node, (ast.Assign, ast.AnnAssign)) or node.value is None:
        return False
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    if not all(isinstance(t, ast.Name) for t in targets):
        return False
    try:
        ast.literal_eval(node.value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _taken(node: ast.stmt) -> bool:
    if isinstance(node, DEFINITIONS) or _is_literal_assignment(node):
        return True
    # try: import x / except ImportError: ...  (only imports inside)
    if isinstance(node, ast.Try):
        body = node.body + [s for h in node.handlers for s in h.body] + node.orelse + node.finalbody
        return all(isinstance(s, (ast.Import, ast.ImportFrom, ast.Pass)) or _is_literal_assignment(s) for s in body)
    return False


def _strip_magics(source: str) -> str:
    """Blank out IPython magics and shell escapes (``%matplotlib``, ``!pip``), keeping line numbers."""
    lines = source.split("\n")
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in lines)


def notebook_cells(path: Path) -> list[str]:
    """The code cells of a notebook, read with nbformat."""
    import json

    import nbformat

    try:
        text = path.read_text(encoding="utf-8")
        document = json.loads(text)
    except OSError as error:
        raise LoadError(f"{path}: cannot read ({error.strerror or error})") from None
    except (ValueError, RecursionError) as error:  # bad JSON, bad UTF-8, nesting too deep
        raise LoadError(f"{path}: not a notebook: not valid JSON ({str(error).splitlines()[0][:120]})") from None
    if not isinstance(document, dict) or "cells" not in document or "nbformat" not in document:
        raise LoadError(f"{path}: not a notebook: JSON without the notebook keys 'nbformat' and 'cells'")
    try:
        notebook = nbformat.reads(text, as_version=4)
    except Exception as error:  # noqa: BLE001 - nbformat raises many kinds for a broken file
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise LoadError(f"{path}: not a readable notebook ({reason[:160]})") from None
    cells = getattr(notebook, "cells", None)
    if not isinstance(cells, list):
        raise LoadError(f"{path}: not a notebook (no cells)")
    return [cell.get("source", "") for cell in cells if cell.get("cell_type") == "code"]


def _execute(tree: ast.Module, filename: str, namespace: dict, warnings: list[str], where: str) -> None:
    for node in tree.body:
        if not _taken(node):
            continue
        code = compile(ast.Module(body=[node], type_ignores=[]), filename, "exec")
        try:
            exec(code, namespace)  # noqa: S102 - definitions only, in the sandboxed child
        except BaseException as error:  # noqa: BLE001 - a failing import or decorator is the submission's
            if isinstance(error, KeyboardInterrupt):
                raise
            warnings.append(f"{where}line {node.lineno}: skipped ({type(error).__name__}: {error})"[:240])


def load_source(path: Path) -> tuple[types.ModuleType, list[str]]:
    """A ``.py`` file or ``.ipynb`` notebook -> (namespace of its definitions, warnings)."""
    if not path.exists():
        raise LoadError(f"{path}: no such file")
    if not path.is_file():
        raise LoadError(f"{path}: not a file")
    module = types.ModuleType("optconform_submission")
    module.__file__ = str(path)
    module.__dict__.update({"np": np, "numpy": np, "math": math})
    warnings: list[str] = []
    if path.suffix == ".ipynb":
        for number, source in enumerate(notebook_cells(path), start=1):
            try:
                tree = ast.parse(_strip_magics(source), filename=f"{path.name} cell {number}")
            except SyntaxError as error:
                warnings.append(f"{path.name} cell {number} line {error.lineno}: syntax error ({error.msg}); cell skipped")
                continue
            _execute(tree, f"{path.name} cell {number}", module.__dict__, warnings, f"{path.name} cell {number} ")
        return module, warnings
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise LoadError(f"{path}: cannot read ({error})") from None
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as error:
        raise LoadError(f"{path}:{error.lineno}: syntax error: {error.msg}") from None
    _execute(tree, str(path), module.__dict__, warnings, f"{path.name} ")
    return module, warnings
