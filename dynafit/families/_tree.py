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
    if keys == {"var"}:
        i = node["var"]
        if not _is_int(i) or not 0 <= i < len(symbols):
            raise ValueError(f"{where}: variable index {i!r} out of range 0..{len(symbols) - 1}")
        return symbols[i]
    if keys == {"int"}:
        if not _is_int(node["int"]):
            raise ValueError(f"{where}: 'int' must be an integer, got {node['int']!r}")
        return sympy.Integer(node["int"])
    if keys == {"rational"}:
        pq = node["rational"]
        if not (isinstance(pq, list) and len(pq) == 2 and all(_is_int(v) for v in pq) and pq[1]):
            raise ValueError(f"{where}: 'rational' must be [p, q] integers, q != 0, got {pq!r}")
        return sympy.Rational(pq[0], pq[1])
    if keys == {"float"}:
        v = node["float"]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{where}: 'float' must be a finite number, got {v!r}")
        return sympy.Float(float(v))
    if keys == {"const"}:
        if node["const"] not in _CONSTANTS:
            raise ValueError(f"{where}: unknown constant {node['const']!r}")
        return _CONSTANTS[node["const"]]
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
