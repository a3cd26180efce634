"""Leaderboards: the table of models and scores that ``compare`` and ``fit_many`` return,
and its ranking rule.

Ranking rule (docs/guide/comparing.md): best first by BIC; rows within ``tolerance`` (10) of the
best BIC are equally good, and among them the smaller library wins (linear =
lotka_volterra = m + 1 columns < polynomial), then fewer terms. A model with no terms
(dx/dt = 0) whose rollout is further from the data than some model with terms ranks
after every other finite row: it neither wins nor sets the band of the tie rule.
Diverged rows rank after every finite one; a family that cannot apply to the data is a
row with status ``"not applicable: <why>"``, ranked last. With the generalisation check
(``compare``'s default), :func:`rank_generalizing` applies that rule within groups: the
rows that generalise with a stable support first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ._choice import CLOSE
from ._score_names import (
    FORECAST_KEYS,
    INFORMATION_CRITERIA,
    ROLLOUT_AICC,
    SCORE_KEYS,
    Better,
    orientation,
)
from .families import get_family

#: the polynomial families ``fit_many`` fits run by run by default (``compare``'s default
#: is the automatic choice, ``_compare.auto_families``)
DEFAULT_FAMILIES = ("linear", "lotka_volterra", "polynomial")
#: The score columns of a leaderboard: the names and their direction are defined once,
#: in ``_score_names``.
SCORE_COLUMNS = SCORE_KEYS
FORECAST_COLUMNS = FORECAST_KEYS
DEFAULT_TOLERANCE = 10.0
#: the band for the rollout AICc: Burnham & Anderson's "substantial support" (delta < 2),
#: the same as ``dynafit._choice.CLOSE``
AICC_TOLERANCE = CLOSE
#: the rollout R^2 a model needs to be shown as the most readable one
READABLE_R2 = 0.9

BOARD_COLUMNS = (
    "rank",
    "family",
    "variant",
    "status",
    "n_library",
    *SCORE_COLUMNS,
    "equations",
    "model",
)


# --------------------------------------------------------------------------- helpers
def family_name(family: Any) -> str:
    """The name of a family given by name (aliases resolved) or as an instance.

    An unknown name is a ``ValueError`` (from ``families.get_family``).
    """
    fam = get_family(family)
    return str(fam.name) if fam.name else type(fam).__name__


def equations_text(model: Any) -> str:
    """The model's equations as one line of text (``"dx/dt = ...; dy/dt = ..."``)."""
    return "; ".join(line.strip() for line in str(model).splitlines() if line.strip())


def library_size(model: Any) -> int:
    """Candidate terms per equation (the library's column count)."""
    return int(np.shape(model.coefficients)[-1])


def _as_float(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def _scores_row(scores: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _as_float(v) for k, v in dict(scores).items()}


def _unavailable_row(family: str, variant: str, status: str) -> dict[str, Any]:
    row: dict[str, Any] = {"family": family, "variant": variant, "status": status}
    for key in SCORE_COLUMNS:
        row[key] = np.nan
    row["diverged"] = False
    row["n_library"] = np.nan
    row["equations"] = ""
    row["model"] = None
    return row


def _model_row(
    family: str,
    variant: str,
    model: Any,
    scores: Mapping[str, Any],
    equations: str | None = None,
) -> dict:
    """A table row for ``model``; ``equations``: its text when already rendered."""
    row: dict[str, Any] = {"family": family, "variant": variant, "status": "ok"}
    row["n_library"] = library_size(model)
    row.update(_scores_row(scores))
    row["diverged"] = bool(row.get("diverged", False))
    row["equations"] = equations_text(model) if equations is None else equations
    row["model"] = model
    return row


# --------------------------------------------------------------------------- ranking
def rank(board: pd.DataFrame, by: str = "bic", *, tolerance: float | None = None) -> pd.DataFrame:
    """Sort a leaderboard best first and number it (``rank`` column, 1 = best).

    For ``by`` in {"aic", "bic", "rollout_aicc"}, rows within ``tolerance`` (default 10;
    2 for ``rollout_aicc``, Burnham & Anderson's delta) of the best value are equally good and ordered by library size, then number of terms, then ``by``. Other
    criteria are sorted alone (R^2 and skill descending, the rest ascending). A 0-term
    row whose rollout R^2 is below that of a row with terms comes after every other
    finite row. Diverged rows come after every finite one, rows whose status is not "ok"
    after those.
    """
    if board.empty:
        out = board.copy()
        out.insert(0, "rank", pd.Series(dtype=int))
        return out
    if by not in board.columns:
        raise ValueError(
            f"cannot rank by {by!r}: no such score; choose one of "
            f"{[c for c in (*SCORE_COLUMNS, *FORECAST_COLUMNS) if c in board.columns]}"
        )
    if tolerance is None:
        tolerance = 0.0
        if by in INFORMATION_CRITERIA:
            tolerance = AICC_TOLERANCE if by == ROLLOUT_AICC else DEFAULT_TOLERANCE
    df = board.drop(columns=["rank"], errors="ignore").reset_index(drop=True)
    # smaller is better after this sign (a flag such as "diverged" sorts ascending)
    sign = -orientation(by, default=Better.LOWER)
    value = sign * pd.to_numeric(df[by], errors="coerce").astype(float)
    ok = df["status"].eq("ok")
    diverged = df["diverged"].fillna(False).astype(bool)
    finite = ok & ~diverged & np.isfinite(value)
    empty = _explains_nothing(df, ok & ~diverged)
    # tier 0: equally good; 1: other finite; 1.5: finite but a 0-term model that rolls out
    # further from the data than a model with terms; 2: ok but diverged or non-finite;
    # 3: not ok
    tier = np.where(~ok, 3.0, np.where(~finite, 2.0, np.where(empty, 1.5, 1.0)))
    if (finite & ~empty).any():
        best = value[finite & ~empty].min()
        tier = np.where(finite & ~empty & (value <= best + tolerance), 0.0, tier)
    n_library = pd.to_numeric(df["n_library"], errors="coerce").fillna(np.inf)
    n_terms = pd.to_numeric(df["n_terms"], errors="coerce").fillna(np.inf)
    in_tie = (tier == 0) & (tolerance > 0)
    keys = pd.DataFrame(
        {
            "tier": tier,
            "lib": np.where(in_tie, n_library, 0.0),
            "terms": np.where(in_tie, n_terms, 0.0),
            "value": value.fillna(np.inf).where(finite, np.inf),
            "order": np.arange(len(df)),
        }
    )
    order = keys.sort_values(["tier", "lib", "terms", "value", "order"]).index
    out = df.loc[order].reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out


def _explains_nothing(df: pd.DataFrame, usable: pd.Series) -> np.ndarray:
    """Rows with no terms (dx/dt = 0) whose rollout R^2 is below that of some usable row
    with terms: a model that explains nothing never wins over one that rolls out closer
    to the data, whatever the criterion or the family tie rule say."""
    if "rollout_r2" not in df or "n_terms" not in df:
        return np.zeros(len(df), dtype=bool)
    r2 = pd.to_numeric(df["rollout_r2"], errors="coerce").astype(float).to_numpy()
    terms = pd.to_numeric(df["n_terms"], errors="coerce").to_numpy()
    usable_rows = np.asarray(usable, dtype=bool) & np.isfinite(r2)
    with_terms = usable_rows & (terms > 0)
    if not with_terms.any():
        return np.zeros(len(df), dtype=bool)
    return (terms == 0) & (np.nan_to_num(r2, nan=-np.inf) < r2[with_terms].max())


def _columns(board: pd.DataFrame) -> pd.DataFrame:
    """Known columns first in a fixed order, then any extra score the core reports."""
    front = [c for c in BOARD_COLUMNS if c in board.columns]
    forecast = [c for c in FORECAST_COLUMNS if c in board.columns]
    extra = [c for c in board.columns if c not in front and c not in forecast]
    tail = ["equations", "model"]
    middle = [c for c in front if c not in tail] + forecast
    middle += [c for c in extra if c not in tail]
    return board[middle + [c for c in tail if c in board.columns]]


def most_readable(board: pd.DataFrame, min_r2: float = READABLE_R2) -> pd.Series | None:
    """The row a reader can use first: the fewest terms among the fitted models whose
    rollout R^2 is at least ``min_r2`` and did not diverge (the first such row in the
    board's order on a tie), or None when no model rolls out that well."""
    if board.empty or "model" not in board.columns:
        return None
    fitted = board[board["model"].notna()]
    ok = fitted[
        (pd.to_numeric(fitted["rollout_r2"], errors="coerce") >= min_r2)
        & ~fitted["diverged"].fillna(False).astype(bool)
    ]
    if not len(ok):
        return None
    return ok.iloc[int(np.argmin(pd.to_numeric(ok["n_terms"]).to_numpy()))]


# ------------------------------------------------ issue 21: ranking with generalisation
#: rows whose generalisation R^2 is more than this below the best row's are ranked after
#: every row that generalises (the law, not the trajectory)
GENERAL_SLACK = 0.05
#: rows whose support overlaps the fold models' by less than this (the Jaccard index of
#: ``support_stability``: fewer than half of the terms kept from one window to the next)
#: fit the window, not a law; set by that meaning, not tuned on data
STABLE_SUPPORT = 0.5


def rank_generalizing(
    board: pd.DataFrame, by: str = "bic", *, tolerance: float | None = None
) -> pd.DataFrame:
    """:func:`rank` within three groups, in this order (columns ``general_r2`` and
    ``support_stability``, from ``dynafit._generalize``):

    0. rows that generalise (within :data:`GENERAL_SLACK` of the best ``general_r2``, or
       with no check possible: NaN) and whose support is stable (``support_stability`` at
       least :data:`STABLE_SUPPORT`, or NaN);
    1. rows that generalise but whose support changes with the window (a large library
       fitting noise: on one trajectory the family whose terms are stable across
       sub-windows is preferred);
    2. the others (and rows not fitted or diverged).

    Each group is ranked by the usual rule (BIC band, then the smaller library)."""
    if "general_r2" not in board or board.empty:
        return rank(board, by, tolerance=tolerance)
    df = board.drop(columns=["rank"], errors="ignore").reset_index(drop=True)
    group = _generalization_group(df)
    parts = [rank(df[group == g], by, tolerance=tolerance) for g in (0, 1, 2)]
    out = pd.concat([p.drop(columns="rank") for p in parts if len(p)], ignore_index=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out


def _generalization_group(df: pd.DataFrame) -> np.ndarray:
    """Each row's group of :func:`rank_generalizing` (0, 1 or 2)."""
    gen = pd.to_numeric(df["general_r2"], errors="coerce").astype(float).to_numpy()
    ok = df["status"].eq("ok").to_numpy() & ~df["diverged"].fillna(False).astype(bool).to_numpy()
    checked = ok & ~np.isnan(gen)
    good = np.ones(len(df), dtype=bool)
    if checked.any() and np.isfinite(gen[checked]).any():
        best = np.max(gen[checked & np.isfinite(gen)])
        good = ok & (np.isnan(gen) | (gen >= best - GENERAL_SLACK))
    stability = (
        df["support_stability"] if "support_stability" in df else pd.Series(np.nan, df.index)
    )
    unstable = pd.to_numeric(stability, errors="coerce").astype(float).to_numpy() < STABLE_SUPPORT
    return np.where(good, np.where(unstable, 1, 0), 2)
