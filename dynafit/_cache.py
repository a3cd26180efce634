"""JAX's persistent compilation cache, on by default for dynafit's programs.

Most of the wait of a short fit is XLA compiling the same small programs (diffrax solves,
the trajectory-matching step) that every process compiles again. With the persistent
cache a second process loads them from disk instead. At ``import dynafit``:

- ``DYNAFIT_CACHE_DIR=off`` (or set but empty): nothing is changed;
- a cache directory the user already chose (``JAX_COMPILATION_CACHE_DIR`` or
  ``jax.config.jax_compilation_cache_dir``) is kept as it is;
- otherwise the cache goes to ``DYNAFIT_CACHE_DIR`` when set, else to the user's cache
  directory (platformdirs: ``~/.cache/dynafit/jax`` on Linux).

The minimum compile time for an entry to be written is lowered to ``MIN_COMPILE_SECS``
(unless the user set ``JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS``), so that the many
small programs of a fit are cached too. :func:`cache_dir` says where it is, or None.

JAX never writes a program with host callbacks to the cache, and equinox's runtime checks
(``eqx.error_if``, inside diffrax and optimistix) are host callbacks unless
``EQX_ON_ERROR=nan``. dynafit's own compiled programs are therefore traced under
:func:`cacheable`, which turns those checks into NaN results (a failed solve is already
a result in dynafit, ``ok = False``), unless the user set ``EQX_ON_ERROR`` themselves.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import equinox._errors as _eqx_errors  # where equinox reads EQX_ON_ERROR at trace time
import jax
import platformdirs

F = TypeVar("F", bound=Callable[..., Any])

ENV = "DYNAFIT_CACHE_DIR"
#: programs that compile faster than this are not written to the cache
MIN_COMPILE_SECS = 0.05
_OFF = ("", "off", "0", "false", "no", "none")


def default_dir() -> Path:
    """``<user cache dir>/dynafit/jax`` (platformdirs)."""
    return Path(platformdirs.user_cache_dir("dynafit", appauthor=False)) / "jax"


def configure() -> str | None:
    """Turn the persistent cache on as the module docstring says; returns the directory
    in use (None when disabled)."""
    value = os.environ.get(ENV)
    if value is not None and value.strip().lower() in _OFF:
        return cache_dir()
    current = cache_dir()
    if current is None:
        path = Path(value).expanduser() if value is not None else default_dir()
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError:  # a read-only home: run without the cache rather than fail
            return None
        jax.config.update("jax_compilation_cache_dir", str(path))
        current = str(path)
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECS)
    return current


def cache_dir() -> str | None:
    """The persistent compilation cache's directory in this process, or None (off)."""
    return jax.config.jax_compilation_cache_dir or None


@contextlib.contextmanager
def checks_as_nan() -> Iterator[None]:
    """Within: equinox's runtime checks trace as NaN results, not host callbacks (unless
    the user chose ``EQX_ON_ERROR``)."""
    if "EQX_ON_ERROR" in os.environ or not hasattr(_eqx_errors, "EQX_ON_ERROR"):
        yield
        return
    old = _eqx_errors.EQX_ON_ERROR
    _eqx_errors.EQX_ON_ERROR = "nan"
    try:
        yield
    finally:
        _eqx_errors.EQX_ON_ERROR = old


def cacheable(fn: F) -> F:
    """``fn`` (a jitted function) called under :func:`checks_as_nan`, so that what it
    compiles can be written to the persistent cache."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        with checks_as_nan():
            return fn(*args, **kwargs)

    return call  # type: ignore[return-value]
