"""Terms as data: a sympy expression <-> a JSON tree of operators and arguments.

A saved model stores every library term that is not a monomial (sin, exp, log, ratios,
user expressions) as a tree::

    {"op": "mul", "args": [{"float": -1.0}, {"op": "sin", "args": [{"var": 0}]}]}

Leaves are ``{"var": i}`` (the i-th variable), ``{"int": n}``, ``{"rational": [p, q]}``,
``{"float": x}`` and ``{"const": "pi" | "E"}``; every other node is ``{"op": name,
"args": [...]}`` with ``name`` from :data:`OPERATORS`. Reading a tree builds the
expression with sympy's constructors only: nothing is ``eval``-ed or ``sympify``-ed,
and an unknown operator, a wrong arity or a malformed node is a ``ValueError``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import sympy

#: operator name -> (sympy constructor, arity; None for any number >= 2)
OPERATORS: dict[str, tuple[Any, int | None]] = {
    "add": (sympy.Add, None),
    "mul": (sympy.Mul, None),
    "pow": (sympy.Pow, 2),
    "sin": (sympy.sin, 1),
    "cos": (sympy.cos, 1),
    "tan": (sympy.tan, 1),
    "exp": (sympy.exp, 1),
    "log": (sympy.log, 1),
    "sinh": (sympy.sinh, 1),
    "cosh": (sympy.cosh, 1),
    "tanh": (sympy.tanh, 1),
    "asin": (sympy.asin, 1),
    "acos": (sympy.acos, 1),
    "atan": (sympy.atan, 1),
    "abs": (sympy.Abs, 1),
}
_NAMES = {cls: name for name, (cls, _) in OPERATORS.items()}
_CONSTANTS = {"pi": sympy.pi, "E": sympy.E}
#: deepest tree accepted on load (a guard against hostile files)
MAX_DEPTH = 64


def to_tree(expr: Any, symbols: Sequence[sympy.Symbol]) -> dict[str, Any]:
    """``expr`` as a JSON tree over ``symbols`` (variables by position); an operator the
    format does not know is a ``ValueError`` naming it."""
    expr = sympy.sympify(expr)
    index = {s: i for i, s in enumerate(symbols)}
    return _to(expr, index)


def _to(e: Any, index: dict) -> dict[str, Any]:
    if e.is_Symbol:
        if e not in index:
            raise ValueError(f"symbol {e} is not one of the variables {list(index)}")
        return {"var": index[e]}
    if e.is_Integer:
        return {"int": int(e)}
    if e.is_Rational:
        return {"rational": [int(e.p), int(e.q)]}
    if e.is_Float:
        return {"float": float(e)}
    if e is sympy.pi:
        return {"const": "pi"}
    if e is sympy.E:
        return {"const": "E"}
    name = _NAMES.get(e.func)
    if name is None:
        raise ValueError(
            f"cannot save the term {e}: operator {e.func.__name__} is not one of {sorted(OPERATORS)}"
        )
    return {"op": name, "args": [_to(a, index) for a in e.args]}


def from_tree(tree: Any, symbols: Sequence[sympy.Symbol], where: str = "term") -> sympy.Expr:
    """The sympy expression of a tree written by :func:`to_tree`; anything else is a
    ``ValueError`` saying what is wrong (``where`` names the place in the file)."""
    return _from(tree, tuple(symbols), where, 0)


def _from(node: Any, symbols: tuple, where: str, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise ValueError(f"{where}: term tree deeper than {MAX_DEPTH} levels")
    if not isinstance(node, dict) or len(node) == 0:
        raise ValueError(f"{where}: a term tree node must be a non-empty object, got {node!r}")
    keys = set(node)
    if len(keys) == 1 and next(iter(keys)) in _LEAVES:
        ((key, value),) = node.items()
        valid, build, must = _LEAVES[key]
        if not valid(value, symbols):
            raise ValueError(f"{where}: {key!r} must be {must(symbols)}, got {value!r}")
        return build(value, symbols)
    if keys == {"op", "args"}:
        op, args = node["op"], node["args"]
        if not isinstance(op, str) or op not in OPERATORS:
            raise ValueError(
                f"{where}: unknown operator {op!r}; a saved term may use {sorted(OPERATORS)}"
            )
        if not isinstance(args, list):
            raise ValueError(f"{where}: 'args' of {op!r} must be a list")
        cls, arity = OPERATORS[op]
        if (arity is None and len(args) < 2) or (arity is not None and len(args) != arity):
            want = "at least 2" if arity is None else str(arity)
            raise ValueError(f"{where}: {op!r} takes {want} arguments, got {len(args)}")
        return cls(*(_from(a, symbols, where, depth + 1) for a in args))
    raise ValueError(f"{where}: malformed term tree node with keys {sorted(keys)}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_finite(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)


#: leaf key -> (is the value valid for these symbols, the sympy leaf, what it must be);
#: one rule reads every leaf, so each kind of leaf is one line
_LEAVES: dict[str, tuple[Any, Any, Any]] = {
    "var": (
        lambda v, s: _is_int(v) and 0 <= v < len(s),
        lambda v, s: s[v],
        lambda s: f"a variable index in 0..{len(s) - 1}",
    ),
    "int": (lambda v, s: _is_int(v), lambda v, s: sympy.Integer(v), lambda s: "an integer"),
    "rational": (
        lambda v, s: isinstance(v, list) and len(v) == 2 and all(map(_is_int, v)) and v[1] != 0,
        lambda v, s: sympy.Rational(v[0], v[1]),
        lambda s: "[p, q] integers, q != 0",
    ),
    "float": (
        lambda v, s: _is_finite(v),
        lambda v, s: sympy.Float(float(v)),
        lambda s: "a finite number",
    ),
    "const": (
        lambda v, s: isinstance(v, str) and v in _CONSTANTS,
        lambda v, s: _CONSTANTS[v],
        lambda s: f"one of the constants {sorted(_CONSTANTS)}",
    ),
}
