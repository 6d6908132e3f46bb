"""Which of a student's files is graded: the one that defines the most of the assignment's functions.

A file is read, never run: a ``.py`` through ``ast``, a notebook's code cells through the
notebook reader the child uses (:func:`optconform.harness.target.sources.notebook_cells`),
and the top-level definitions counted whose names are the course's functions or their
aliases. On a tie, a file named like the assignment comes first, then a notebook, then
the shorter path. A file that does not parse is read line by line for ``def NAME(``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from optconform.harness.target.adapter import FUNCTION_NAMES
from optconform.harness.target.sources import LoadError, notebook_cells, python_text

#: The files a submission is made of.
SUFFIXES = (".py", ".ipynb")
#: Folders that never hold a submission (editor, notebook and archive leftovers).
IGNORED_DIRS = {"__pycache__", ".ipynb_checkpoints", "__MACOSX"}
#: Every name a graded function may have.
GRADED_NAMES = frozenset(name for names in FUNCTION_NAMES.values() for name in names)
#: Words of a file name that say it is the assignment (the course's notebook is Optimization_methods.ipynb).
ASSIGNMENT_WORDS = ("optim",)
#: A larger file is not read to be counted (it is still a candidate, counting no function).
MAX_BYTES = 16 << 20
_DEF = re.compile(r"^\s*def\s+(\w+)\s*\(", re.MULTILINE)


def _sources(path: Path) -> list[str]:
    if path.suffix == ".ipynb":
        return notebook_cells(path)
    return [python_text(path, [])]


def defined_functions(path: Path) -> set[str]:
    """The graded functions ``path`` defines at its top level (for a notebook, any code cell's top level)."""
    try:
        if path.stat().st_size > MAX_BYTES:
            return set()
        sources = _sources(path)
    except (OSError, LoadError, ValueError):
        return set()
    found = set()
    for source in sources:
        try:
            tree = ast.parse(re.sub(r"(?m)^\s*[%!].*$", "", source))
            found |= {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            found |= set(_DEF.findall(source))
    return found & GRADED_NAMES


def _named_like_the_assignment(path: Path) -> bool:
    return any(word in path.stem.lower() for word in ASSIGNMENT_WORDS)


def choose(files: list[Path]) -> Path:
    """The file to grade among ``files`` (see the module's docstring)."""
    return min(files, key=lambda p: (-len(defined_functions(p)), not _named_like_the_assignment(p),
                                     p.suffix != ".ipynb", len(str(p)), str(p)))


def set_aside(chosen: Path, files: list[Path], root: Path | None = None) -> str:
    """One sentence for the student: which file was graded and why, and every other one set aside."""
    def name(path: Path) -> str:
        try:
            return str(path.relative_to(root)) if root else path.name
        except ValueError:
            return path.name

    others = [f for f in files if f != chosen]
    if not others:
        return ""
    counted = len(defined_functions(chosen))
    return (f"Graded {name(chosen)}, which defines {counted} of the assignment's functions; set aside: "
            + ", ".join(f"{name(f)} ({len(defined_functions(f))})" for f in others) + ".")
