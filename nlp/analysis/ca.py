"""Correspondence analysis (CA) of contingency tables, built on :class:`prince.CA`.

The fit itself (SVD of the standardised residuals, principal coordinates, contributions, cos2, projection of
supplementary points) is done by ``prince``; this module adds what ``prince`` lacks for reporting:

* input checks with clear errors (:class:`CAError`) and dropping of all-zero rows/columns with a warning;
* supplementary rows and columns, taken out of the table before the fit and projected onto the solution;
* masses, chi-square distances to the centroid, inertias, standard coordinates, the chi-square test of
  independence, and one tidy table per side (:class:`CAResult`);
* deterministic axis signs (below);
* bootstrap confidence ellipses in the manner of FactoMineR's ``ellipseCA`` (:func:`bootstrap_ellipses`);
* metric MDS of the chi-square distances between profiles (:func:`mds_profiles`).

Definitions follow R's ``ca`` package and FactoMineR (checked against both in ``tests/test_ca.py``):
``mass`` is the row (column) total divided by the grand total ``n``; ``dist`` is the chi-square distance of the
row (column) profile to the average profile; ``inertia`` is ``mass * dist**2`` (so the inertias add up to the
total inertia ``chi2 / n``); ``coord_k`` are principal coordinates, ``std_k = coord_k / singular_value_k``
standard coordinates; ``contrib_k`` is ``100 * mass * coord_k**2 / eigenvalue_k`` (percent, as FactoMineR);
``cos2_k`` is ``coord_k**2 / dist**2``.

Axis-sign rule
--------------
The sign of a CA axis is arbitrary (``ca`` and FactoMineR disagree on dimension 2 of the reference tables).
Here it is fixed, for each dimension ``k`` separately, as follows: among the *active rows*, take the row with
the largest contribution to dimension ``k`` (ties, up to a relative 1e-9, broken by the smallest ``str`` of the
row label); that row gets a **positive** principal coordinate on dimension ``k``. The resulting sign flip is
applied once, before anything else is derived, to the row and column principal and standard coordinates and
to the supplementary points, so every output is consistent. The rule depends only on the data and the labels,
not on the order of rows or columns, so permuting the table leaves every coordinate unchanged (except when two
eigenvalues coincide, where the axes themselves are not unique).
"""

from __future__ import annotations

import inspect
import numbers
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import CdpdError, ConfigError

__all__ = ["CAError", "CAResult", "correspondence_analysis", "bootstrap_ellipses", "mds_profiles"]

#: Relative tolerance under which two contributions count as tied in the sign rule.
_TIE_RTOL = 1e-9
#: A dimension is kept when its singular value exceeds this fraction of the first one (rank-deficient tables).
_SV_RTOL = 1e-9


class CAError(CdpdError, ValueError):
    """A table that correspondence analysis cannot use; the message names the offending row or column."""

    code = "ca"


def _dim_names(k: int) -> list[str]:
    return [f"dim {i}" for i in range(1, k + 1)]


@dataclass(frozen=True, eq=False)
class CAResult:
    """Everything a correspondence analysis reports.

    ``eigenvalues`` has one row per non-trivial dimension (``"dim 1"`` .. ``"dim K"``, K = rank of the
    standardised residuals, at most ``min(I, J) - 1``) and columns ``eigenvalue``, ``pct``, ``cum_pct``,
    ``singular_value``. ``rows`` / ``cols`` are indexed by name (table order, supplementary points included)
    with columns ``mass, inertia, dist``, then for each dimension ``k = 1 .. n_components``:
    ``coord_k`` (principal), ``std_k`` (standard), ``contrib_k`` (percent), ``cos2_k``; and a boolean
    ``supplementary``. Supplementary points have NaN ``mass``, ``inertia`` and ``contrib_k``.
    """

    eigenvalues: pd.DataFrame
    total_inertia: float
    chi2: float
    dof: int
    p_value: float
    n: float
    rows: pd.DataFrame
    cols: pd.DataFrame
    n_components: int

    def _coords(self, side: pd.DataFrame, kind: str) -> pd.DataFrame:
        out = side[[f"{kind}_{k}" for k in range(1, self.n_components + 1)]].copy()
        out.columns = _dim_names(self.n_components)
        return out

    @property
    def row_coords(self) -> pd.DataFrame:
        """Row principal coordinates, columns ``"dim 1"`` .. ``"dim n_components"`` (supplementary rows too)."""
        return self._coords(self.rows, "coord")

    @property
    def col_coords(self) -> pd.DataFrame:
        """Column principal coordinates, columns ``"dim 1"`` .. ``"dim n_components"``."""
        return self._coords(self.cols, "coord")

    @property
    def row_std_coords(self) -> pd.DataFrame:
        """Row standard coordinates (principal / singular value)."""
        return self._coords(self.rows, "std")

    @property
    def col_std_coords(self) -> pd.DataFrame:
        """Column standard coordinates (principal / singular value)."""
        return self._coords(self.cols, "std")


# --------------------------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------------------------


def _is_number(value: object) -> bool:
    return isinstance(value, (numbers.Real, np.number)) and not isinstance(value, (bool, np.bool_))


def _validate_table(table: pd.DataFrame) -> pd.DataFrame:
    """Return ``table`` as a float DataFrame, or raise :class:`CAError` naming the first bad cell."""
    if not isinstance(table, pd.DataFrame):
        try:
            table = pd.DataFrame(table)
        except Exception as error:  # pragma: no cover - depends on what was passed
            raise CAError(f"cannot read the table as a DataFrame: {error}") from error
    if table.shape[0] == 0 or table.shape[1] == 0:
        raise CAError(f"the table is empty (shape {table.shape})")
    for axis_name, labels in (("row", table.index), ("column", table.columns)):
        dup = labels[labels.duplicated()].unique().tolist()
        if dup:
            raise CAError(f"duplicate {axis_name} name(s) {dup}: every {axis_name} needs a unique name")
    for col in table.columns:
        series = table[col]
        if pd.api.types.is_bool_dtype(series.dtype) or not pd.api.types.is_numeric_dtype(series.dtype):
            for row, value in series.items():
                if not _is_number(value) and not (value is None or value is pd.NA):
                    raise CAError(
                        f"non-numeric cell at row {row!r}, column {col!r}: {value!r} "
                        "(a contingency table holds counts)"
                    )
    values = table.astype(float)
    arr = values.to_numpy()
    checks = (
        (np.isnan(arr), "missing (NaN) cell"),
        (np.isinf(arr), "infinite cell"),
        (arr < 0, "negative cell"),
    )
    for mask, what in checks:
        if mask.any():
            i, j = map(int, np.argwhere(mask)[0])
            raise CAError(
                f"{what} at row {table.index[i]!r}, column {table.columns[j]!r}: {arr[i, j]!r} "
                f"({int(mask.sum())} such cell(s) in all)"
            )
    return values


def _check_names(requested: Sequence[str], labels: pd.Index, what: str) -> list:
    if isinstance(requested, str):
        requested = [requested]
    requested = list(requested)
    missing = [name for name in requested if name not in labels]
    if missing:
        raise CAError(f"supplementary {what}(s) {missing} not in the table")
    if len(set(requested)) != len(requested):
        raise CAError(f"supplementary {what}s listed twice: {requested}")
    return requested


def _drop_empty(values: pd.DataFrame, empty_rows: list, empty_cols: list, drop_empty: bool) -> pd.DataFrame:
    if not (empty_rows or empty_cols):
        return values
    parts = []
    if empty_rows:
        parts.append(f"row(s) {empty_rows}")
    if empty_cols:
        parts.append(f"column(s) {empty_cols}")
    what = " and ".join(parts)
    if not drop_empty:
        raise CAError(f"empty (all-zero) {what}; pass drop_empty=True to drop them")
    warnings.warn(f"dropping empty (all-zero) {what} from the correspondence analysis", UserWarning, stacklevel=3)
    return values.drop(index=empty_rows, columns=empty_cols)


def _require_two(values: pd.DataFrame, context: str = "") -> None:
    n_rows, n_cols = values.shape
    if n_rows < 2 or n_cols < 2:
        raise CAError(
            f"correspondence analysis needs at least two non-empty rows and two non-empty columns{context}; "
            f"got {n_rows} row(s) {list(values.index)} and {n_cols} column(s) {list(values.columns)}"
        )


def _clean_table(table: pd.DataFrame, drop_empty: bool) -> pd.DataFrame:
    """Validate, drop empty rows/columns (warning), require a 2x2 table at least; no supplementary points."""
    values = _validate_table(table)
    empty_rows = values.index[values.sum(axis=1) == 0].tolist()
    empty_cols = values.columns[values.sum(axis=0) == 0].tolist()
    values = _drop_empty(values, empty_rows, empty_cols, drop_empty)
    _require_two(values)
    return values


# --------------------------------------------------------------------------------------------------------------
# Correspondence analysis
# --------------------------------------------------------------------------------------------------------------


def _chi2_dist(counts: np.ndarray, centroid: np.ndarray) -> np.ndarray:
    """Chi-square distance of each row profile of ``counts`` to ``centroid`` (the other side's masses)."""
    profiles = counts / counts.sum(axis=1, keepdims=True)
    return np.sqrt((((profiles - centroid) ** 2) / centroid).sum(axis=1))


def _sign_flips(row_contrib: np.ndarray, row_coord: np.ndarray, labels: Sequence) -> np.ndarray:
    """+1/-1 per dimension: the active row with the largest contribution gets a positive coordinate."""
    keys = [str(label) for label in labels]
    flips = np.ones(row_coord.shape[1])
    for k in range(row_coord.shape[1]):
        contrib = row_contrib[:, k]
        candidates = np.flatnonzero(contrib >= contrib.max() * (1 - _TIE_RTOL))
        chosen = min(candidates, key=lambda i: keys[i])
        if row_coord[chosen, k] < 0:
            flips[k] = -1.0
    return flips


def _side_frame(
    names: pd.Index,
    active: np.ndarray,
    mass: np.ndarray,
    dist: np.ndarray,
    coord: np.ndarray,
    sv: np.ndarray,
    contrib: np.ndarray,
    cos2: np.ndarray,
    n_components: int,
) -> pd.DataFrame:
    data: dict[str, np.ndarray] = {"mass": mass, "inertia": mass * dist**2, "dist": dist}
    for k in range(n_components):
        data[f"coord_{k + 1}"] = coord[:, k]
        data[f"std_{k + 1}"] = coord[:, k] / sv[k]
        data[f"contrib_{k + 1}"] = contrib[:, k]
        data[f"cos2_{k + 1}"] = cos2[:, k]
    data["supplementary"] = ~active
    return pd.DataFrame(data, index=names)


def correspondence_analysis(
    table: pd.DataFrame,
    *,
    n_components: int | None = 2,
    sup_rows: Sequence[str] = (),
    sup_cols: Sequence[str] = (),
    drop_empty: bool = True,
) -> CAResult:
    """Correspondence analysis of a contingency table (rows x columns of non-negative counts).

    ``n_components`` dimensions are reported per point (``None``: all; capped at the number of non-trivial
    dimensions K, which all appear in ``eigenvalues``). ``sup_rows`` / ``sup_cols`` name rows / columns that are
    taken out of the table before the fit and projected onto the solution as supplementary points; a
    supplementary row uses only the active columns' cells and a supplementary column only the active rows'
    (as in ``ca`` and FactoMineR). All-zero rows/columns (active, or supplementary with nothing on the active
    part) are dropped with a ``UserWarning`` naming them, or raise :class:`CAError` if ``drop_empty`` is false.

    Raises :class:`CAError` for non-numeric, NaN, infinite or negative cells, duplicate names, unknown
    supplementary names, fewer than two non-empty active rows or columns, or a table without any inertia.
    Axis signs follow the rule in the module docstring.
    """
    import prince  # imported lazily: it pulls in altair, slow to import

    if n_components is not None and (not isinstance(n_components, numbers.Integral) or n_components < 1):
        raise ConfigError(f"n_components must be a positive integer or None, got {n_components!r}")
    values = _validate_table(table)
    sup_rows = _check_names(sup_rows, values.index, "row")
    sup_cols = _check_names(sup_cols, values.columns, "column")
    act_rows = [r for r in values.index if r not in set(sup_rows)]
    act_cols = [c for c in values.columns if c not in set(sup_cols)]

    # Emptiness is judged on the part each point is analysed on: active rows/columns and supplementary rows on
    # the active columns, supplementary columns on the active rows.
    on_act_cols = values[act_cols].sum(axis=1)
    on_act_rows = values.loc[act_rows].sum(axis=0)
    empty_rows = values.index[on_act_cols.to_numpy() == 0].tolist()
    empty_cols = values.columns[on_act_rows.to_numpy() == 0].tolist()
    # A column empty only because of supplementary rows, or vice versa, is still empty for the analysis.
    values = _drop_empty(values, empty_rows, empty_cols, drop_empty)
    act_rows = [r for r in act_rows if r not in set(empty_rows)]
    act_cols = [c for c in act_cols if c not in set(empty_cols)]
    sup_rows = [r for r in sup_rows if r not in set(empty_rows)]
    sup_cols = [c for c in sup_cols if c not in set(empty_cols)]
    active = values.loc[act_rows, act_cols]
    _require_two(active, " (supplementary points excluded)")

    n = float(active.to_numpy().sum())
    n_rows, n_cols = active.shape
    k_max = min(n_rows, n_cols) - 1
    model = prince.CA(n_components=k_max, engine="scipy").fit(active)

    sv_all = np.asarray(model.svd_.s, dtype=float)
    total_inertia = float(model.total_inertia_)
    if total_inertia <= 0 or sv_all[0] <= 0:
        raise CAError("the table has no inertia (all rows are proportional): nothing to analyse")
    keep = int(np.sum(sv_all > sv_all[0] * _SV_RTOL))
    sv = sv_all[:keep]
    eig = np.asarray(model.eigenvalues_, dtype=float)[:keep]
    pct = np.asarray(model.percentage_of_variance_, dtype=float)[:keep]
    eigenvalues = pd.DataFrame(
        {"eigenvalue": eig, "pct": pct, "cum_pct": np.cumsum(pct), "singular_value": sv},
        index=pd.Index(_dim_names(keep)),
    )
    ndim = keep if n_components is None else min(int(n_components), keep)

    # Active points, straight from prince.
    row_coord = model.row_coordinates(active).to_numpy()[:, :keep]
    col_coord = model.column_coordinates(active).to_numpy()[:, :keep]
    row_contrib = 100 * model.row_contributions_.to_numpy()[:, :keep]
    col_contrib = 100 * model.column_contributions_.to_numpy()[:, :keep]
    row_cos2 = model.row_cosine_similarities(active).to_numpy()[:, :keep]
    col_cos2 = model.column_cosine_similarities(active).to_numpy()[:, :keep]

    # The sign rule, decided once, applied to every coordinate below.
    flips = _sign_flips(row_contrib, row_coord, act_rows)
    row_coord = row_coord * flips
    col_coord = col_coord * flips

    r = model.row_masses_.to_numpy()
    c = model.col_masses_.to_numpy()
    act_arr = active.to_numpy()
    row_dist = _chi2_dist(act_arr, c)
    col_dist = _chi2_dist(act_arr.T, r)

    # Supplementary points, projected by prince (transition formulas) onto the active solution.
    nan_block = lambda m: np.full((m, keep), np.nan)  # noqa: E731
    if sup_rows:
        sup_r_tab = values.loc[sup_rows, act_cols]
        sup_r_coord = model.row_coordinates(sup_r_tab).to_numpy()[:, :keep] * flips
        sup_r_cos2 = model.row_cosine_similarities(sup_r_tab).to_numpy()[:, :keep]
        sup_r_dist = _chi2_dist(sup_r_tab.to_numpy(), c)
    else:
        sup_r_coord = sup_r_cos2 = nan_block(0)
        sup_r_dist = np.zeros(0)
    if sup_cols:
        with_sup = values.loc[act_rows, act_cols + sup_cols]
        sup_c_coord = model.column_coordinates(with_sup).loc[sup_cols].to_numpy()[:, :keep] * flips
        sup_c_cos2 = model.column_cosine_similarities(with_sup).loc[sup_cols].to_numpy()[:, :keep]
        sup_c_dist = _chi2_dist(values.loc[act_rows, sup_cols].to_numpy().T, r)
    else:
        sup_c_coord = sup_c_cos2 = nan_block(0)
        sup_c_dist = np.zeros(0)

    def side(act_names, sup_names, order, mass, dist, coord, contrib, cos2, s_dist, s_coord, s_cos2):
        n_sup = len(sup_names)
        frame = _side_frame(
            pd.Index(list(act_names) + list(sup_names)),
            np.r_[np.ones(len(act_names), bool), np.zeros(n_sup, bool)],
            np.r_[mass, np.full(n_sup, np.nan)],
            np.r_[dist, s_dist],
            np.vstack([coord, s_coord]),
            sv,
            np.vstack([contrib, nan_block(n_sup)]),
            np.vstack([cos2, s_cos2]),
            ndim,
        )
        frame = frame.loc[[name for name in order if name in set(frame.index)]]
        frame.index.name = order.name
        return frame

    rows = side(act_rows, sup_rows, values.index, r, row_dist, row_coord, row_contrib, row_cos2,
                sup_r_dist, sup_r_coord, sup_r_cos2)
    cols = side(act_cols, sup_cols, values.columns, c, col_dist, col_coord, col_contrib, col_cos2,
                sup_c_dist, sup_c_coord, sup_c_cos2)

    dof = (n_rows - 1) * (n_cols - 1)
    chi2 = n * total_inertia
    return CAResult(
        eigenvalues=eigenvalues,
        total_inertia=total_inertia,
        chi2=float(chi2),
        dof=int(dof),
        p_value=float(stats.chi2.sf(chi2, dof)),
        n=n,
        rows=rows,
        cols=cols,
        n_components=ndim,
    )


# --------------------------------------------------------------------------------------------------------------
# Bootstrap ellipses
# --------------------------------------------------------------------------------------------------------------


def _ellipses(coords: np.ndarray, q: float, n_points: int) -> np.ndarray:
    """coords: (replicates, points, 2), NaN for undefined replicates -> (points, n_points, 2) ellipse outlines."""
    valid = ~np.isnan(coords).any(axis=2)  # (R, P)
    count = valid.sum(axis=0)  # (P,)
    filled = np.where(valid[..., None], coords, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = filled.sum(axis=0) / count[:, None]  # (P, 2)
        dev = np.where(valid[..., None], coords - mean, 0.0)
        cov = np.einsum("rpi,rpj->pij", dev, dev) / (count - 1)[:, None, None]  # (P, 2, 2)
    bad = count < 3
    cov[bad] = 0.0
    evals, evecs = np.linalg.eigh(cov)
    radii = np.sqrt(np.clip(evals, 0.0, None) * q)  # (P, 2)
    t = np.linspace(0.0, 2.0 * np.pi, n_points)
    circle = np.stack([np.cos(t), np.sin(t)], axis=1)  # (n_points, 2)
    outline = mean[:, None, :] + np.einsum("tk,pk,pik->pti", circle, radii, evecs)
    outline[bad] = np.nan
    return outline


def bootstrap_ellipses(
    table: pd.DataFrame,
    result: CAResult,
    *,
    n_replicates: int = 200,
    seed: int = 0,
    level: float = 0.95,
    n_points: int = 60,
) -> pd.DataFrame:
    """Bootstrap confidence ellipses on dimensions 1-2 for the active rows and columns, as FactoMineR ``ellipseCA``.

    Partial bootstrap: the active part of ``table`` (the rows/columns that are active in ``result``; the table
    may still hold the supplementary ones) is resampled ``n_replicates`` times by a multinomial draw with the
    same total ``n`` (rounded to an integer) and cell probabilities ``count / n``, using
    ``numpy.random.default_rng(seed)``. Each replicate's row profiles are projected onto the original solution
    as supplementary rows (profile @ column standard coordinates), its column profiles likewise. For each point
    the ellipse is centred on the mean of its replicate coordinates, shaped by their covariance and scaled by
    the ``level`` quantile of the chi-square distribution with 2 df; replicates in which the point is empty are
    ignored (fewer than 3 usable replicates: NaN outline).

    Returns a DataFrame with columns ``kind`` (``"row"`` / ``"col"``), ``name``, ``x``, ``y``: ``n_points``
    points per ellipse, the first and last equal (a closed outline, ready to plot).
    """
    if result.n_components < 2:
        raise ConfigError("bootstrap_ellipses needs a result with n_components >= 2")
    if not 0 < level < 1:
        raise ConfigError(f"level must lie in (0, 1), got {level!r}")
    if n_replicates < 3 or n_points < 3:
        raise ConfigError("n_replicates and n_points must be at least 3")
    row_names = result.rows.index[~result.rows["supplementary"].to_numpy(bool)]
    col_names = result.cols.index[~result.cols["supplementary"].to_numpy(bool)]
    values = _validate_table(table)
    missing = [r for r in row_names if r not in values.index] + [c for c in col_names if c not in values.columns]
    if missing:
        raise CAError(f"the table lacks active row(s)/column(s) {missing} of the result")
    counts = values.loc[row_names, col_names].to_numpy()
    n = int(round(counts.sum()))
    if n < 1:
        raise CAError("the table's total is below 1: nothing to resample")

    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, (counts / counts.sum()).ravel(), size=n_replicates)
    draws = draws.reshape(n_replicates, *counts.shape).astype(float)  # (R, I, J)

    col_std = result.cols.loc[col_names, ["std_1", "std_2"]].to_numpy()  # (J, 2)
    row_std = result.rows.loc[row_names, ["std_1", "std_2"]].to_numpy()  # (I, 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        row_prof = draws / draws.sum(axis=2, keepdims=True)  # (R, I, J)
        col_prof = draws / draws.sum(axis=1, keepdims=True)  # (R, I, J)
    row_coords = row_prof @ col_std  # (R, I, 2)
    col_coords = np.einsum("rij,ik->rjk", col_prof, row_std)  # (R, J, 2)

    q = float(stats.chi2.ppf(level, 2))
    frames = []
    for kind, names, coords in (("row", row_names, row_coords), ("col", col_names, col_coords)):
        outline = _ellipses(coords, q, n_points)  # (P, n_points, 2)
        frames.append(
            pd.DataFrame(
                {
                    "kind": kind,
                    "name": np.repeat(np.asarray(names, dtype=object), n_points),
                    "x": outline[:, :, 0].ravel(),
                    "y": outline[:, :, 1].ravel(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------------------------------------------
# MDS of profiles
# --------------------------------------------------------------------------------------------------------------


def _profile_distances(values: np.ndarray) -> np.ndarray:
    """Chi-square distances between the row profiles of ``values`` (weights: inverse column masses)."""
    profiles = values / values.sum(axis=1, keepdims=True)
    col_mass = values.sum(axis=0) / values.sum()
    scaled = profiles / np.sqrt(col_mass)
    diff = scaled[:, None, :] - scaled[None, :, :]
    return np.sqrt((diff**2).sum(axis=2))


def _mds(n_components: int, seed: int):
    from sklearn.manifold import MDS

    params = inspect.signature(MDS).parameters
    if "metric_mds" in params:  # scikit-learn >= 1.8
        return MDS(
            n_components=n_components,
            metric_mds=True,
            metric="precomputed",
            init="classical_mds",
            random_state=seed,
            normalized_stress=False,
        )
    return MDS(  # scikit-learn < 1.8
        n_components=n_components,
        metric=True,
        dissimilarity="precomputed",
        n_init=4,
        random_state=seed,
        normalized_stress=False,
    )


def mds_profiles(
    table: pd.DataFrame, *, axis: str = "rows", n_components: int = 2, seed: int = 0
) -> tuple[pd.DataFrame, float]:
    """Metric MDS (``sklearn.manifold.MDS`` on precomputed dissimilarities) of chi-square distances between profiles.

    ``axis="rows"`` places the row profiles (distance weights: inverse column masses), ``axis="cols"`` the
    column profiles. The table is checked like :func:`correspondence_analysis` (empty rows/columns dropped with
    a warning). Returns the configuration (index = names, columns ``"dim 1"`` .. ``"dim n_components"``) and
    **Kruskal's stress-1** of it, computed here from the configuration rather than taken from scikit-learn
    (whose ``stress_`` definition has changed between versions)::

        stress1 = sqrt( sum_{i<j} (delta_ij - d_ij)**2 / sum_{i<j} d_ij**2 )

    with ``delta`` the chi-square distances and ``d`` the Euclidean distances of the configuration (metric MDS:
    the disparities are the dissimilarities themselves). 0 is a perfect fit; about 0.05 is good, 0.2 poor.
    """
    if axis in ("rows", "row", "index", 0):
        values = _clean_table(table, drop_empty=True)
    elif axis in ("cols", "col", "columns", 1):
        values = _clean_table(table, drop_empty=True).T
    else:
        raise ConfigError(f"axis must be 'rows' or 'cols', got {axis!r}")
    if n_components < 1:
        raise ConfigError(f"n_components must be >= 1, got {n_components!r}")
    delta = _profile_distances(values.to_numpy())
    embedding = _mds(n_components, seed).fit_transform(delta)
    d = np.sqrt(((embedding[:, None, :] - embedding[None, :, :]) ** 2).sum(axis=2))
    upper = np.triu_indices(len(delta), k=1)
    denom = float((d[upper] ** 2).sum())
    stress = float(np.sqrt(((delta[upper] - d[upper]) ** 2).sum() / denom)) if denom > 0 else float("nan")
    coords = pd.DataFrame(embedding, index=values.index, columns=_dim_names(n_components))
    return coords, stress
