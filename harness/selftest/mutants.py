"""Mutants of a module: ``reference/ops.py`` (or a harness module) with one small change each.

A mutant is the code with one operator, constant, call, argument order or name
changed, or one statement deleted: the kinds of slip a person makes. Each has a
stable id that does not depend on line numbers: ``function: source of the changed
node [change] #k`` (``#k`` counts equal changes in one function; a method is
``Class.method``). The mutants are made by walking the module's syntax tree; why
not mutmut or cosmic-ray is in ``docs/selftest.md``.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
import types
from dataclasses import dataclass

from optconform.reference import ops as reference_ops

#: Functions that are not the specification of an op (the defaults table the vectors use).
NOT_MUTATED = frozenset({"call_defaults"})

_SWAPPED_OPERATORS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
                      ast.Pow: ast.Mult, ast.FloorDiv: ast.Div, ast.Mod: ast.FloorDiv}
_SWAPPED_COMPARISONS = {ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE,
                        ast.GtE: ast.Gt, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}


@dataclass(frozen=True)
class Mutant:
    id: str
    function: str
    line: int
    change: str
    source: str  # the whole mutated module
    default: bool = False  # the change is to a default argument's value
    of: str = reference_ops.__name__  # the module mutated

    def module(self) -> types.ModuleType:
        """The mutated module, executed as a sibling of the original (its relative imports work)."""
        package = importlib.import_module(self.of).__package__
        module = types.ModuleType(f"{package}._mutant")
        module.__package__ = package
        sys.modules[module.__name__] = module  # a dataclass looks its module up while it is made
        try:
            exec(compile(self.source, f"<mutant {self.id}>", "exec"), module.__dict__)  # noqa: S102 - our own source
        finally:
            del sys.modules[module.__name__]
        return module


def _sites(node: ast.AST, twins: dict):
    """``(node, change, apply)`` for every mutation of one node; ``apply()`` changes the node in place and
    returns an ``undo()``."""
    if isinstance(node, ast.BinOp) and type(node.op) in _SWAPPED_OPERATORS:
        old, new = node.op, _SWAPPED_OPERATORS[type(node.op)]()
        yield f"{type(old).__name__} -> {type(new).__name__}", _setter(node, "op", new)
    elif isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _SWAPPED_COMPARISONS:
        new = _SWAPPED_COMPARISONS[type(node.ops[0])]()
        yield f"{type(node.ops[0]).__name__} -> {type(new).__name__}", _setter(node, "ops", [new])
    elif isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        yield f"{node.value!r} -> {node.value + 1!r}", _setter(node, "value", node.value + 1)
        if isinstance(node.value, int) and node.value != 1:
            yield f"{node.value!r} -> {node.value - 1!r}", _setter(node, "value", node.value - 1)
        if node.value not in (0, 1):
            yield f"{node.value!r} -> 0", _setter(node, "value", type(node.value)(0))
    elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in twins:
        for twin in twins[node.id]:
            yield f"{node.id} -> {twin}", _setter(node, "id", twin)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.Not)):
        yield f"drop {type(node.op).__name__}", _replacer(node, node.operand)
    elif isinstance(node, ast.Call):
        if len(node.args) == 1 and not node.keywords and isinstance(node.func, ast.Attribute):
            yield f"drop call {ast.unparse(node.func)}", _replacer(node, node.args[0])
        if not node.args and not node.keywords and isinstance(node.func, ast.Attribute):
            yield f"drop .{node.func.attr}()", _replacer(node, node.func.value)
        if len(node.args) >= 2:
            swapped = [node.args[1], node.args[0], *node.args[2:]]
            yield "swap first two arguments", _setter(node, "args", swapped)
    elif isinstance(node, ast.Return) and isinstance(node.value, ast.Tuple) and len(node.value.elts) >= 2:
        elts = node.value.elts
        yield "swap first two returned values", _setter(node.value, "elts", [elts[1], elts[0], *elts[2:]])
    if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr)) and _deletable(node):
        yield "delete statement", _replacer(node, ast.Pass())


def _deletable(statement) -> bool:
    """A statement whose deletion is a slip, not a syntax error: it sits in a block, and is not a docstring."""
    parent = getattr(statement, "_parent", None)
    return parent is not None and parent[2] is not None and not _is_docstring(getattr(statement, "value", None))


def _twins(function: ast.FunctionDef) -> dict[str, list[str]]:
    """``{name: names one character away}`` among the function's parameters and locals: ``beta1``/``beta2``,
    ``new_v``/``new_s``, the names a person swaps. One-letter names swap among the parameters only (``v``/``s``,
    ``X``/``Y``), not with every loop counter."""
    parameters = {a.arg for a in (*function.args.posonlyargs, *function.args.args, *function.args.kwonlyargs)}
    names = parameters | {n.id for n in ast.walk(function) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
                          and len(n.id) > 1}

    def near(a: str, b: str) -> bool:
        return a != b and len(a) == len(b) and sum(x != y for x, y in zip(a, b)) == 1

    return {name: sorted(other for other in names if near(name, other)) for name in names
            if any(near(name, other) for other in names)}


def _setter(node, field, value):
    def apply():
        old = getattr(node, field)
        setattr(node, field, value)
        return lambda: setattr(node, field, old)
    return apply


def _replacer(node, replacement):
    """Replace ``node`` by ``replacement`` where its parent holds it (found when applied)."""
    def apply():
        parent, field, index = node._parent
        if index is None:
            setattr(parent, field, replacement)
            return lambda: setattr(parent, field, node)
        getattr(parent, field)[index] = replacement
        return lambda: getattr(parent, field).__setitem__(index, node)
    return apply


def _link_parents(tree: ast.AST) -> None:
    for parent in ast.walk(tree):
        for field, value in ast.iter_fields(parent):
            if isinstance(value, ast.AST):
                value._parent = (parent, field, None)
            elif isinstance(value, list):
                for index, item in enumerate(value):
                    if isinstance(item, ast.AST):
                        item._parent = (parent, field, index)


def _is_docstring(node) -> bool:
    parent = getattr(node, "_parent", None)
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and parent is not None \
        and isinstance(parent[0], ast.Expr)


def functions_of(tree: ast.Module):
    """``(qualified name, node)`` of every top-level function and every method of a top-level class."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            yield node.name, node
        elif isinstance(node, ast.ClassDef):
            yield from ((f"{node.name}.{m.name}", m) for m in node.body if isinstance(m, ast.FunctionDef))


def mutants(module: types.ModuleType = reference_ops, only: frozenset | None = None) -> list[Mutant]:
    """Every mutant of ``module``'s functions and methods (those named in ``only``, else all but
    :data:`NOT_MUTATED`), in source order."""
    source = inspect.getsource(module)
    tree = ast.parse(source)
    _link_parents(tree)
    unchanged = ast.unparse(tree)
    found, seen = [], {}
    for name, function in functions_of(tree):
        if name in NOT_MUTATED or (only is not None and name not in only):
            continue
        twins = _twins(function)
        defaults = [d for d in (*function.args.defaults, *function.args.kw_defaults) if d is not None]
        for top in [*defaults, *function.body]:
            for node in ast.walk(top):
                if _is_docstring(node) or isinstance(node, ast.JoinedStr) or _inside_fstring(node):
                    continue
                for change, apply in _sites(node, twins):
                    text = ast.unparse(node).splitlines()[0]
                    key = f"{name}: {text} [{change}]"
                    seen[key] = seen.get(key, 0) + 1
                    undo = apply()
                    try:
                        mutated = ast.unparse(tree)
                    finally:
                        undo()
                    if mutated == unchanged:  # e.g. two equal returned values swapped: no change at all
                        continue
                    found.append(Mutant(f"{key} #{seen[key]}", name, node.lineno, change, mutated,
                                        default=any(top is d for d in defaults), of=module.__name__))
    return found


def _inside_fstring(node: ast.AST) -> bool:
    parent = getattr(node, "_parent", None)
    while parent is not None:
        if isinstance(parent[0], ast.JoinedStr):
            return True
        parent = getattr(parent[0], "_parent", None)
    return False
