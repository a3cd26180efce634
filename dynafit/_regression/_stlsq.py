"""The STLSQ path: pysindy's sequentially thresholded least squares for every threshold
and target at once, its small solves shared and batched by support size."""

from __future__ import annotations

import functools

import numpy as np
import scipy.linalg
from threadpoolctl import ThreadpoolController

#: below this many entries (rows x columns) a regression runs on one BLAS thread: small
#: solves are faster so and do not fight the other work of the process
ONE_THREAD_SIZE = 4_000_000
#: a coefficient the ridge step left below this is round-off (a threshold of 0 keeps every
#: term, also those exactly absent from clean data) and is not unbiased back in
ROUNDOFF = 1e-14
#: a Cholesky pivot below this fraction of the largest diagonal entry marks a support as
#: numerically singular (collinear columns, fewer rows than columns): solved by lstsq
PIVOT_TOL = 1e-12
#: the normal equations' one refinement step moving the solution by more than this
#: (relative to its largest entry) means cond(x_S)^2 eps is not small: solved by lstsq
REFINE_TOL = 1e-8
#: Householder QR is used where R's smallest diagonal entry exceeds this fraction of its
#: largest (the columns well conditioned); lstsq's minimum-norm solution otherwise
QR_COND = 1e-10

_CONTROLLER: list[ThreadpoolController] = []


def threadpools() -> ThreadpoolController:
    """One threadpoolctl controller per process (finding the BLAS libraries costs ~ms)."""
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


def stlsq_path(
    X: np.ndarray,
    Y: np.ndarray,
    thresholds,
    alpha: float,
    max_iter: int = 20,
    memo: dict | None = None,
) -> np.ndarray:
    """pysindy's STLSQ, unbiased, for every threshold and every target at once.

    The algorithm is ``pysindy.STLSQ``'s, step for step: from the full support, ridge
    regression (strength ``alpha``) of each target on its support, drop the coefficients
    below the threshold, repeat until no support changes or ``max_iter`` iterations;
    then the unbias step, least squares of each target on its final support. pysindy
    iterates one threshold at a time and, inside, one target at a time, re-solving
    targets whose support has settled; here each iteration is one pass over the
    problems (threshold x target) still changing, a (target, support) pair shared by
    several of them (every threshold's first iteration; neighbouring thresholds) is
    solved once, and the distinct systems are solved together, batched by support size
    (:func:`_masked_solve`). ``memo`` keeps those solutions across calls on the same
    ``X`` and ``Y`` (a sweep, its refits and the final fit). ``tests/test_fit.py`` checks
    the coefficients against ``pysindy.STLSQ`` threshold by threshold.

    ``X`` (N, n), ``Y`` (N, k); returns coefficients (n_thresholds, k, n).
    """
    thresholds = np.asarray(thresholds, dtype=np.float64).ravel()
    memo = {} if memo is None else memo
    n, k, T = X.shape[1], Y.shape[1], thresholds.size
    thr = np.repeat(thresholds, k)[:, None]  # problem p = threshold p // k, target p % k
    target = np.tile(np.arange(k), T)
    support = np.ones((T * k, n), dtype=bool)
    active = np.ones(T * k, dtype=bool)
    last = np.zeros((T * k, n))  # each problem's latest thresholded ridge coefficients

    @functools.cache
    def gram() -> tuple[np.ndarray, np.ndarray]:  # formed when the memo cannot answer
        return X.T @ X, X.T @ Y

    def ridge(sup: np.ndarray, tgt: np.ndarray) -> np.ndarray:
        return _ridge(X, Y, sup, tgt, alpha, *gram())

    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        # pysindy skips a target with no terms left (its coefficients are zeros)
        w = _solved(memo, "ridge", support[idx], target[idx], ridge)
        new = (np.abs(w) >= thr[idx]) & support[idx].any(axis=1, keepdims=True)
        settled = np.all(new == support[idx], axis=1)
        support[idx] = new
        last[idx] = np.where(new, w, 0.0)
        active[idx[settled]] = False
    # unbiased on the terms STLSQ kept, less those its ridge step left at round-off level
    # (a threshold of 0 keeps every term, also the exactly absent ones of clean data)
    support &= np.abs(last) > ROUNDOFF

    def lstsq(sup: np.ndarray, tgt: np.ndarray) -> np.ndarray:
        return _unbiased(X, Y, sup, tgt, *gram())

    return _solved(memo, "lstsq", support, target, lstsq).reshape(T, k, n)


def settle(X: np.ndarray, Y: np.ndarray, coef: np.ndarray, thresholds) -> np.ndarray:
    """The path ``coef`` (n_thresholds, k, n) of :func:`stlsq_path` with no coefficient
    below its own threshold: STLSQ thresholds the ridge coefficients, then unbiases, and
    on an ill-conditioned library (one trajectory settling to an equilibrium: cond ~1e6)
    the ridge step spreads weight over collinear columns that the unbiased fit returns to
    ~1e-8. Such a term contributes nothing the threshold counts, so it is dropped and the
    support refitted (pysindy's unbias step again), until every kept coefficient is at
    least the threshold; a well-conditioned path is returned unchanged."""
    thr = np.asarray(thresholds, dtype=np.float64).ravel()[:, None, None]
    out = np.array(coef, dtype=np.float64)
    _, k, n = np.shape(coef)
    gram = (X.T @ X, X.T @ Y)
    for _ in range(n):
        small = (out != 0) & (np.abs(out) < thr)
        rows = np.flatnonzero(small.any(axis=2).ravel())  # problems p = (threshold, target)
        if rows.size == 0:
            break
        flat = out.reshape(-1, n)
        support = (flat[rows] != 0) & ~small.reshape(-1, n)[rows]
        some = support.any(axis=1)
        flat[rows[~some]] = 0.0
        if some.any():
            flat[rows[some]] = _unbiased(X, Y, support[some], rows[some] % k, *gram)
        out = flat.reshape(out.shape)
    return out


def _solved(memo: dict, kind: str, support: np.ndarray, target: np.ndarray, solve) -> np.ndarray:
    """Solutions (P, n) of P problems (a target and its support each; zeros off the
    support and for an empty support), from ``memo`` where known; the distinct others by
    one call ``solve(supports, targets)``."""
    tag = np.broadcast_to(np.frombuffer(kind.encode(), np.uint8), (len(target), len(kind)))
    rows = np.concatenate(
        [tag, target.astype("<u4")[:, None].view(np.uint8), np.packbits(support, axis=1)], axis=1
    )
    rows = np.ascontiguousarray(rows).view(np.dtype((np.void, rows.shape[1]))).ravel()
    keys: list[bytes] = list(rows.tolist())
    first: dict[bytes, int] = {}
    for p, (key, some) in enumerate(zip(keys, list(np.atleast_1d(support.any(axis=1))))):
        if some and key not in memo and key not in first:
            first[key] = p
    if first:
        p = np.fromiter(first.values(), dtype=np.intp, count=len(first))
        memo.update(zip(first, solve(support[p], target[p])))
    zero = np.zeros(support.shape[1])
    return np.array([memo.get(key, zero) for key in keys])


def _ridge(
    x: np.ndarray,
    y: np.ndarray,
    support: np.ndarray,
    targets: np.ndarray,
    alpha: float,
    xtx: np.ndarray,
    xty: np.ndarray,
) -> np.ndarray:
    """Ridge regressions, one per row of ``support`` (P, n): column ``targets[p]`` of ``y``
    on the columns ``support[p]`` of ``x``; (P, n) with zeros off each support.

    The solve scikit-learn's ``ridge_regression`` (pysindy's ridge step) makes with its
    "cholesky" solver, ``(x_S^T x_S + alpha I) w = x_S^T y``, for all P at once from the
    precomputed ``xtx`` and ``xty`` (:func:`_masked_solve`). Where a system is singular
    (``alpha = 0`` on a rank-deficient support) every problem takes scikit-learn's own
    fall-back, least squares.
    """
    try:
        return _masked_solve(xtx, xty[:, targets].T, support, alpha)[0]
    except np.linalg.LinAlgError:
        out = np.zeros(support.shape)
        _lstsq_rows(x, y, support, targets, np.arange(len(support)), out)
        return out


def _masked_solve(
    xtx: np.ndarray,
    rhs: np.ndarray,
    support: np.ndarray,
    alpha: float = 0.0,
    pivot_tol: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``(xtx[S, S] + alpha I) w_S = rhs[p, S]`` for every row p of ``support`` (P, n),
    S its support: one batched solve per support size, on the gathered s x s systems.

    Returns ``(w, ill)``: w (P, n), zeros off each support and for an empty one; ill (P,)
    marks the systems left unsolved (zeros) because their Cholesky factorisation failed
    or has a pivot below ``pivot_tol`` times the largest diagonal entry (numerically
    singular: collinear columns, fewer rows than columns). Without ``pivot_tol`` nothing
    is checked, and an exactly singular system raises ``LinAlgError``.
    """
    out = np.zeros(support.shape)
    ill = np.zeros(len(support), dtype=bool)
    sizes = support.sum(axis=1)
    for s in np.unique(sizes[sizes > 0]).tolist():
        rows = np.flatnonzero(sizes == s)
        cols = np.nonzero(support[rows])[1].reshape(rows.size, s)
        a = xtx[cols[:, :, None], cols[:, None, :]]
        a[:, np.arange(s), np.arange(s)] += alpha
        b = np.take_along_axis(rhs[rows], cols, axis=1)
        if pivot_tol is not None:
            try:
                pivots = np.diagonal(np.linalg.cholesky(a), axis1=1, axis2=2) ** 2
                bad = pivots.min(axis=1) < pivot_tol * np.diagonal(a, axis1=1, axis2=2).max(axis=1)
            except np.linalg.LinAlgError:  # not positive definite: somewhere in the group
                bad = np.ones(rows.size, dtype=bool)
            ill[rows[bad]] = True
            rows, cols, a, b = rows[~bad], cols[~bad], a[~bad], b[~bad]
            if rows.size == 0:
                continue
        out[rows[:, None], cols] = np.linalg.solve(a, b[..., None])[..., 0]
    return out, ill


def _unbiased(
    x: np.ndarray,
    y: np.ndarray,
    support: np.ndarray,
    targets: np.ndarray,
    xtx: np.ndarray,
    xty: np.ndarray,
) -> np.ndarray:
    """Least squares, one per row of ``support`` (P, n): column ``targets[p]`` of ``y`` on
    the columns ``support[p]`` of ``x`` (pysindy's unbias step); (P, n), zeros off each
    support.

    All at once by the normal equations with one step of iterative refinement against
    the residual of ``x`` itself (which makes their error that of a QR solution while
    cond(x_S)^2 eps << 1). A numerically singular support (collinear columns, fewer rows
    than columns), or one where the refinement still moved the solution, is solved by
    :func:`_lstsq` instead: its minimum-norm solution, as pysindy's.
    """
    with np.errstate(all="ignore"):
        w, ill = _masked_solve(xtx, xty[:, targets].T, support, pivot_tol=PIVOT_TOL)
        resid = y[:, targets].T - w @ x.T
        step, _ = _masked_solve(xtx, resid @ x, support & ~ill[:, None])
        out = w + step
        moved = np.abs(step).max(axis=1) > REFINE_TOL * np.abs(out).max(axis=1)
        bad = ill | moved | ~np.all(np.isfinite(out), axis=1)
    _lstsq_rows(x, y, support, targets, np.flatnonzero(bad), out)
    return out


def _lstsq_rows(
    x: np.ndarray,
    y: np.ndarray,
    support: np.ndarray,
    targets: np.ndarray,
    rows: np.ndarray,
    out: np.ndarray,
) -> None:
    """``out[p]`` = :func:`_lstsq` of column ``targets[p]`` of ``y`` on the columns
    ``support[p]`` of ``x`` (zeros elsewhere), problem by problem, for every p in ``rows``."""
    for p in rows:
        cols = support[p]
        out[p] = 0.0
        out[p, cols] = _lstsq(x[:, cols], y[:, [targets[p]]])[:, 0]


def _lstsq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Least squares of every column of ``b`` on ``a`` (pysindy's unbias step): Householder
    QR (LAPACK gels, ~5x faster than the SVD-based ``lstsq`` on these small problems)
    where R shows the columns well conditioned; otherwise ``lstsq``'s minimum-norm
    solution."""
    if a.shape[0] >= a.shape[1]:
        qr, out, info = scipy.linalg.lapack.dgels(a, b)
        r = np.abs(np.diag(qr[: a.shape[1]]))
        if info == 0 and r.min() > QR_COND * r.max():
            return out[: a.shape[1]]
    return np.linalg.lstsq(a, b, rcond=None)[0]
