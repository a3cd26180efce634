"""The ``repr`` of every part: its class and every field, defaults included, so that a
printed part says exactly what it does (``Centered(order=2)``)."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any


def _value(v: Any) -> str:
    if isinstance(v, enum.Enum):
        return repr(v.value)
    return repr(v)


def describe(self: Any) -> str:
    # named self: it is assigned as the parts' __repr__
    fields = ", ".join(
        f"{f.name}={_value(getattr(self, f.name))}" for f in dataclasses.fields(self)
    )
    return f"{type(self).__name__}({fields})"
