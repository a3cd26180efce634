"""The derivative stage: how dx/dt is estimated from the samples.

Each part is frozen, checks its parameters when built and resolves, on a given
trajectory, to the concrete estimate used (``Auto`` picks ``Centered`` or ``Smoothed``
from the data's noise level; the others are what they say).
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import numpy as np

from .._derivatives import resolve
from .._trajectory import Trajectory
from ._repr import describe

#: shorthand names of the derivative parts (``fit(traj, derivative="centered")``)
DERIVATIVE_NAMES = ("auto", "forward", "centered", "finite_difference", "smoothed")


def _check_order(order: Any) -> None:
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
        raise ValueError(f"derivative order must be a positive int, got {order!r}")


def _check_window(window: Any) -> None:
    if window is None:
        return
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 5:
        raise ValueError(f"window must be an int >= 5 (Savitzky-Golay length), got {window!r}")


class AbstractDerivative(eqx.Module):
    """A derivative estimate. ``resolve(traj)`` gives the concrete part used on ``traj``;
    a concrete part says ``method`` (what :mod:`dynafit._derivatives` computes),
    ``order`` and ``window``."""

    __repr__ = describe

    def resolve(self, traj: Trajectory) -> AbstractDerivative:
        del traj
        return self

    @property
    def method(self) -> Any:
        raise NotImplementedError

    @property
    def derivative_order(self) -> int:
        return 2

    @property
    def derivative_window(self) -> int | None:
        return None

    @property
    def label(self) -> str:
        """How the estimate is recorded in ``model.options["derivative"]``."""
        return str(self.method)


class Centered(AbstractDerivative):
    """Centred finite differences (pysindy's ``FiniteDifference``) of ``order``."""

    order: int = 2

    def __check_init__(self):
        _check_order(self.order)

    @property
    def method(self) -> str:
        return "centered"

    @property
    def derivative_order(self) -> int:
        return int(self.order)


class Forward(AbstractDerivative):
    """The paper's forward difference (x[t+1] - x[t]) / dt; the last row is left out of
    the regression."""

    @property
    def method(self) -> str:
        return "forward"


class Smoothed(AbstractDerivative):
    """Savitzky-Golay smoothing (``window`` samples, cubic; None: 11 or the series'
    length), then centred differences of ``order`` (pysindy's
    ``SmoothedFiniteDifference``)."""

    window: int | None = None
    order: int = 2

    def __check_init__(self):
        _check_window(self.window)
        _check_order(self.order)

    @property
    def method(self) -> str:
        return "smoothed"

    @property
    def derivative_order(self) -> int:
        return int(self.order)

    @property
    def derivative_window(self) -> int | None:
        return self.window


class Auto(AbstractDerivative):
    """``Smoothed`` where measurement noise explains more than a thousandth of the
    centred derivative's variance, else ``Centered`` (of order 4 on series of at least
    11 samples, whose truncation error is too small to buy spurious terms). ``order`` and
    ``window``, when given, go to the part chosen."""

    order: int | None = None
    window: int | None = None

    def __check_init__(self):
        if self.order is not None:
            _check_order(self.order)
        _check_window(self.window)

    def resolve(self, traj: Trajectory) -> AbstractDerivative:
        if resolve("auto", traj.x, traj.t) == "smoothed":
            return Smoothed(window=self.window, order=self.order or 2)
        order = self.order if self.order is not None else (4 if traj.n_times >= 11 else 2)
        return Centered(order=order)

    @property
    def method(self) -> str:
        return "auto"


class PySINDy(AbstractDerivative):
    """Any pysindy differentiation object, used as it is: ``PySINDy(ps.SpectralDerivative())``.

    It is called on each run as ``obj(x, t)``; the error statistics of the selection
    compare it with a fourth-order centred difference."""

    differentiation: Any

    def __check_init__(self):
        obj = self.differentiation
        if isinstance(obj, (str, AbstractDerivative)) or not callable(obj):
            raise ValueError(
                "PySINDy needs a pysindy differentiation object (for example "
                f"ps.SmoothedFiniteDifference()), got {type(obj).__name__}"
            )

    def __call__(self, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        steps = np.diff(t)
        spacing = float(steps[0]) if steps.size and np.all(steps == steps[0]) else t
        return np.asarray(self.differentiation(x, t=spacing), dtype=np.float64)

    @property
    def method(self) -> Any:
        return self

    @property
    def label(self) -> str:
        return f"pysindy:{type(self.differentiation).__name__}"


def derivative_part(
    derivative: str | AbstractDerivative, order: int | None = None, window: int | None = None
) -> AbstractDerivative:
    """The part a shorthand stands for (``order`` and ``window`` from the legacy options);
    a part is returned as it is (then ``order`` and ``window`` must not be given)."""
    if isinstance(derivative, AbstractDerivative):
        if order is not None or window is not None:
            raise ValueError(
                f"give order and window in the derivative part, not beside it: {derivative!r}"
            )
        return derivative
    if not isinstance(derivative, str):
        if callable(derivative):  # a pysindy differentiation object as it is
            return PySINDy(derivative)
        raise ValueError(
            f"derivative must be a name or a dynafit.parts derivative, got {derivative!r}"
        )
    if derivative == "auto":
        return Auto(order=order, window=window)
    if derivative in ("centered", "finite_difference"):
        return Centered(order=2 if order is None else order)
    if derivative == "forward":
        return Forward()
    if derivative == "smoothed":
        return Smoothed(window=window, order=2 if order is None else order)
    raise ValueError(
        f"unknown derivative method {derivative!r}; choose one of {list(DERIVATIVE_NAMES)} "
        "or pass a dynafit.parts derivative"
    )
