"""The regression problem of one fit: library rows theta(x), prefactors g(x) and
derivatives for all / training / held-out rows, scaled to unit RMS; regression of every
threshold at once, held-out errors and information criteria of the candidates."""

from __future__ import annotations

import numpy as np

from .._derivatives import (
    derivative_error_floor,
    derivative_error_variance,
    differentiate,
    reference_derivative,
)
from .._field import VectorField, vector_field
from .._trajectory import Trajectory
from ..families._base import AbstractFamily
from ._criteria import _criteria
from ._pysindy import pysindy_fit
from ._stlsq import ONE_THREAD_SIZE, settle, stlsq_path, threadpools
from ._weak import test_function_width, weak_system


class _Rows:
    """Library rows, targets and derivatives of one part (all / train / test) of the data.

    ``features`` (N, m, n), when given, are equation i's regression columns (the weak
    formulation's integrals of g_i theta, :mod:`dynafit._regression._weak`); otherwise
    they are g_i(x) theta(x) row by row.
    """

    def __init__(
        self,
        theta: np.ndarray,
        g: np.ndarray,
        dxdt: np.ndarray,
        blocks: np.ndarray,
        features: np.ndarray | None = None,
    ):
        self.theta, self.g, self.dxdt, self.blocks = theta, g, dxdt, blocks
        self.features = features
        with np.errstate(divide="ignore", invalid="ignore"):
            # per-capita targets; 0 where g_i(x) = 0 (those rows have weight 0)
            self.y = np.where(g != 0, dxdt / np.where(g != 0, g, 1.0), 0.0)
        self.n_rows = theta.shape[0]

    def column(self, i: int) -> np.ndarray:
        """Equation i's regression columns (N, n): g_i(x) theta(x), or its weak integrals."""
        if self.features is not None:
            return self.features[:, i, :]
        return self.theta * self.g[:, [i]]


class _Data:
    def __init__(
        self, field: VectorField, all_: _Rows, train: _Rows, test: _Rows, per_equation: bool
    ):
        self._qr: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        # STLSQ's small solves per part of the data (and ridge strength), by equation and
        # support: neighbouring thresholds share most of them (every threshold starts
        # from the full support), and the final fit on all the data repeats the refits'
        self._solves: dict[tuple, dict] = {}
        self.weak: dict | None = None  # the weak formulation's settings, if used
        self.floor = 0.0  # systematic derivative error, fraction of variance (selection)
        self.noise_var = 0.0  # derivative error variance (information criteria's floor)
        self.field = field
        self.all, self.train, self.test = all_, train, test
        self.n_lib = field.n_terms
        self.per_equation = per_equation
        m = all_.dxdt.shape[1]
        # scales from all the data, so sweep and final fit share one meaning of threshold:
        # Xi_scaled[i, k] = Xi[i, k] * col_scale[i, k] / y_scale[i]
        if per_equation:  # equation i regresses dx_i/dt on g_i(x) theta(x)
            self.col_scale = np.stack([_rms(all_.column(i)) for i in range(m)])
            self.y_scale = _rms(all_.dxdt)
        else:  # all equations regress (dx_i/dt) / g_i(x) on theta(x)
            self.col_scale = np.broadcast_to(_rms(all_.theta), (m, self.n_lib))
            self.y_scale = _rms(all_.y)

    @classmethod
    def build(cls, traj: Trajectory, fam: AbstractFamily, derivative: str, opts: dict) -> _Data:
        x = traj.x if traj.is_batch else traj.x[None]
        R, T, m = x.shape
        if opts.get("order") is None:
            opts = {**opts, "order": 2}
        field = vector_field(fam, m)
        dxdt = differentiate(x, traj.t, derivative, order=opts["order"], window=opts["window"])
        theta = field.theta_np(x)
        g = field.g_np(x)
        if np.any(g == 0):
            if field.g_is_one or opts["weighting"] == "per_capita":
                raise ValueError(
                    f"family {fam.name!r}: a prefactor g_i(x) is zero in {int(np.sum(g == 0))} "
                    "samples, where the per-capita rate (dx_i/dt) / g_i(x) is undefined; "
                    "use weighting='derivative' (those rows then get weight 0)"
                )
            # rows where g_i(x) = 0 (a species at 0): equation i's columns g_i theta vanish
            # there, and a zero target gives them weight 0 (the derivative estimate next to
            # an extinction is a difference across it, not a rate of the law)
            dxdt = np.where(g == 0, 0.0, dxdt)
        keep = np.arange(T - 1) if derivative == "forward" else np.arange(T)
        n = keep.size
        n_lib = field.n_terms
        if R * n < n_lib:
            raise ValueError(
                f"fewer points than terms: {R * n} data points for {n_lib} library terms of the "
                f"{fam.name!r} family on {m} variables; give more data or a smaller family"
            )
        # held out: contiguous blocks spread over each run (not only its tail, which for
        # decaying dynamics holds little signal); 20 blocks, every k-th one
        n_blocks = min(20, n)
        block = (np.arange(n) * n_blocks) // n
        is_test = _held_out(block, n_blocks, opts["holdout"], n)

        def part(idx: np.ndarray) -> _Rows:
            return _Rows(
                theta[:, keep[idx]].reshape(-1, n_lib),
                g[:, keep[idx]].reshape(-1, m),
                dxdt[:, keep[idx]].reshape(-1, m),
                (block[idx][None, :] + n_blocks * np.arange(R)[:, None]).reshape(-1),
            )

        all_ = part(np.arange(n))
        train = part(np.flatnonzero(~is_test))
        test = part(np.flatnonzero(is_test))
        per_equation = not field.g_is_one and opts["weighting"] == "derivative"
        data = cls(field, all_, train, test, per_equation)
        idx = keep[np.flatnonzero(is_test)]
        ref = reference_derivative(x, traj.t, derivative, opts["order"], opts["window"])
        data.floor = derivative_error_floor(x, traj.t, dxdt, derivative, opts, idx, ref)
        data.noise_var = float(
            np.mean(
                derivative_error_variance(
                    x, traj.t, derivative, opts["order"], opts["window"], dxdt=dxdt, ref=ref
                )
            )
        )
        return data

    @classmethod
    def build_weak(cls, traj: Trajectory, fam: AbstractFamily, opts: dict) -> _Data:
        """The weak formulation's rows (:mod:`dynafit._regression._weak`): one per test
        function, the held-out blocks those whose test function is centred in them."""
        x = np.asarray(traj.x if traj.is_batch else traj.x[None], dtype=np.float64)
        R, T, m = x.shape
        field = vector_field(fam, m)
        theta, g = field.theta_np(x), field.g_np(x)
        n_lib = field.n_terms
        per_equation = not field.g_is_one
        columns = (
            (g[..., :, None] * theta[..., None, :]).reshape(R, T, -1) if per_equation else theta
        )
        width = test_function_width(traj.t, x)
        F, Y, centres = weak_system(traj.t, x, columns, width, int(opts["seed"]))
        N = F.shape[0]
        features = F.reshape(N, m, n_lib) if per_equation else None
        n_blocks = 20
        block = np.minimum((centres * n_blocks).astype(int), n_blocks - 1)
        runs = np.repeat(np.arange(R), N // R)
        is_test = _held_out(block, n_blocks, opts["holdout"], T)

        def part(idx: np.ndarray) -> _Rows:
            return _Rows(
                np.zeros((idx.size, n_lib)) if per_equation else F[idx],
                np.ones((idx.size, m)),
                Y[idx],
                block[idx] + n_blocks * runs[idx],
                None if features is None else features[idx],
            )

        data = cls(
            field,
            part(np.arange(N)),
            part(np.flatnonzero(~is_test)),
            part(np.flatnonzero(is_test)),
            per_equation,
        )
        data.weak = {"test_function_width": width, "n_test_functions": N // R}
        return data

    def regress(
        self,
        rows: _Rows,
        threshold: float,
        optimizer: str,
        opts: dict,
        scaled: bool = False,
    ) -> np.ndarray:
        """Coefficients (m, n_lib) for one threshold (in scaled units when ``scaled``)."""
        return self.regress_path(rows, [threshold], optimizer, opts, scaled)[0]

    def regress_path(
        self,
        rows: _Rows,
        thresholds,
        optimizer: str,
        opts: dict,
        scaled: bool = False,
    ) -> np.ndarray:
        """Coefficients (n_thresholds, m, n_lib), one matrix per threshold (scaled units
        when ``scaled``). STLSQ fits every threshold at once (:func:`stlsq_path`); the
        other optimisers fit threshold by threshold."""
        thresholds = np.asarray(thresholds, dtype=np.float64).ravel()
        # the data's own parts keep their factorisation and solves across calls
        problems = self._problems(rows)
        coef = np.concatenate(
            [self._solve(X, Y, thresholds, optimizer, opts, key) for X, Y, key in problems],
            axis=1,
        )
        if scaled:
            return coef
        return coef * self.y_scale[:, None] / self.col_scale

    def _problems(self, rows: _Rows) -> list[tuple[np.ndarray, np.ndarray, tuple | None]]:
        """The scaled regression problems (X, Y, cache key) of ``rows``: one per equation
        (per-equation libraries) or one for all."""
        # the data's own parts keep their factorisation and solves across calls
        part = next((n for n in ("all", "train", "test") if getattr(self, n) is rows), None)
        if self.per_equation:
            return [
                (
                    rows.column(i) / self.col_scale[i],
                    rows.dxdt[:, [i]] / self.y_scale[i],
                    (part, i) if part else None,
                )
                for i in range(rows.dxdt.shape[1])
            ]
        return [
            (rows.theta / self.col_scale[0], rows.y / self.y_scale, (part, None) if part else None)
        ]

    def ridge_top(self, rows: _Rows, opts: dict) -> float:
        """The largest |coefficient| of STLSQ's first step, the ridge regression on every
        term (scaled units): any threshold above it leaves no term."""
        top = 0.0
        for X, Y, key in self._problems(rows):
            if not (np.all(np.isfinite(X)) and np.all(np.isfinite(Y))):
                return float("nan")
            alpha = opts["alpha"] * X.shape[0]  # as _solve scales it, before any reduction
            if X.shape[0] > 2 * X.shape[1]:  # the sweep's cached factorisation, as in _solve
                X, Y = self._reduced(X, Y, key)
            gram = X.T @ X + alpha * np.eye(X.shape[1])
            w = np.linalg.lstsq(gram, X.T @ Y, rcond=None)[0]
            top = max(top, float(np.abs(w).max(initial=0.0)))
        return top

    def _reduced(self, X: np.ndarray, Y: np.ndarray, key: tuple | None):
        """(R, Q^T Y) of the thin QR factorisation X = Q R (cached for the data's own parts).

        ||Y - X W||^2 = ||Q^T Y - R W||^2 + const, so every least-squares, ridge and
        thresholding step of STLSQ gives the same coefficients on the n x n problem as on
        the N x n one; the sweep factorises each library once instead of regressing on
        all its rows at every threshold and iteration.
        """
        hit = self._qr.get(key) if key is not None else None
        if hit is None:
            Q, R = np.linalg.qr(X)
            hit = (np.ascontiguousarray(R), np.ascontiguousarray(Q.T @ Y))
            if key is not None:
                self._qr[key] = hit
        return hit

    def _solve(
        self,
        X: np.ndarray,
        Y: np.ndarray,
        thresholds: np.ndarray,
        optimizer: str,
        opts: dict,
        key: tuple | None = None,
    ) -> np.ndarray:
        """Fits of Y (N, k) on X (N, n) for every threshold; coefficients (n_thr, k, n)."""
        alpha = opts["alpha"] * X.shape[0]
        finite = bool(np.all(np.isfinite(X)) and np.all(np.isfinite(Y)))
        if optimizer == "stlsq" and finite:
            if X.shape[0] > 2 * X.shape[1]:
                # one BLAS thread below ONE_THREAD_SIZE, as for the solves: on 2 busy
                # cores a multi-threaded QR of 1001 x 465 took 17 s against 0.4 s
                with threadpools().limit(limits=1 if X.size < ONE_THREAD_SIZE else None):
                    X, Y = self._reduced(X, Y, key)
            memo = None if key is None else self._solves.setdefault((key, alpha), {})
            with threadpools().limit(limits=1 if X.size < ONE_THREAD_SIZE else None):
                coef = stlsq_path(X, Y, thresholds, alpha, int(opts["max_iter"]), memo)
                coef = settle(X, Y, coef, thresholds)
            return np.where(np.isfinite(coef), coef, 0.0)
        return np.stack([pysindy_fit(X, Y, float(thr), optimizer, opts) for thr in thresholds])

    def predict(self, xis: np.ndarray, rows: _Rows) -> np.ndarray:
        """dx/dt of every coefficient matrix in ``xis`` (K, m, n) on ``rows``: (K, rows, m)."""
        if rows.features is not None:
            return np.einsum("rmn,kmn->krm", rows.features, xis)
        return rows.g * (rows.theta @ xis.transpose(0, 2, 1))

    def heldout_error(self, xi: np.ndarray) -> tuple[float, float]:
        """Mean over variables of MSE / variance on the held-out rows, and its standard error."""
        err, se = self.heldout_errors(xi[None])
        return float(err[0]), float(se[0])

    def heldout_errors(self, xis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`heldout_error` of every coefficient matrix in ``xis`` (K, m, n) at once."""
        rows = self.test
        var = rows.dxdt.var(axis=0)
        var = np.where(var > 0, var, 1.0)
        e = ((rows.dxdt - self.predict(xis, rows)) ** 2 / var).mean(axis=2)  # (K, rows)
        blocks, which = np.unique(rows.blocks, return_inverse=True)
        counts = np.bincount(which, minlength=blocks.size)
        means = np.stack([np.bincount(which, ek, minlength=blocks.size) for ek in e]) / counts
        se = (
            means.std(axis=1, ddof=1) / np.sqrt(blocks.size)
            if blocks.size > 1
            else np.zeros(len(xis))
        )
        return e.mean(axis=1), se

    def information(self, xis: np.ndarray, rows: _Rows) -> tuple[np.ndarray, np.ndarray]:
        """AIC and BIC (:func:`information_criteria`) of every matrix in ``xis`` (K, m, n)."""
        resid = rows.dxdt - self.predict(xis, rows)
        rss = np.einsum("krm,krm->k", resid, resid)
        k = np.count_nonzero(xis, axis=(1, 2))
        out = [_criteria(r, resid[0].size, int(j), self.noise_var) for r, j in zip(rss, k)]
        return np.array([a for a, _ in out]), np.array([b for _, b in out])


def _held_out(block: np.ndarray, n_blocks: int, holdout: float, n: int) -> np.ndarray:
    """Which rows are held out: every k-th of ``n_blocks`` contiguous blocks (a fraction
    ``holdout`` of them), spread over each run rather than only its tail, which for
    decaying dynamics holds little signal."""
    k_out = max(1, int(round(n_blocks * holdout)))
    held = np.round((np.arange(k_out) + 0.5) * n_blocks / k_out).astype(int) % n_blocks
    is_test = np.isin(block, held)
    if is_test.all() or not is_test.any():
        raise ValueError(f"too few points ({n} per run) for a held-out sweep; give threshold=")
    return is_test


def _rms(a: np.ndarray) -> np.ndarray:
    s = np.sqrt(np.mean(np.asarray(a, dtype=np.float64) ** 2, axis=0))
    return np.where(s > 0, s, 1.0)
