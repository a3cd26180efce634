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


def describe(part: Any) -> str:
    fields = ", ".join(
        f"{f.name}={_value(getattr(part, f.name))}" for f in dataclasses.fields(part)
    )
    return f"{type(part).__name__}({fields})"
