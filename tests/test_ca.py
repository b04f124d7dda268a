"""Correspondence analysis (nlp.analysis.ca) against R's ``ca`` 0.71.1 and FactoMineR 2.7.

Reference values (tests/data/ca_reference, a copy of the shared reference folder) are rounded to 6 decimals, so
numbers are compared with an absolute tolerance of 1e-6, after aligning each axis's sign with the reference
(signs are arbitrary; ``ca`` and FactoMineR themselves disagree on dimension 2).
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nlp.analysis.ca import CAError, CAResult, bootstrap_ellipses, correspondence_analysis, mds_profiles

REF = Path(__file__).resolve().parent / "data" / "ca_reference"
ATOL = 1e-6
DATASETS = ("smoke", "housetasks")


# ----------------------------------------------------------------------------------------------------------------
# Fixtures and helpers
# ----------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ref_json() -> dict:
    return json.loads((REF / "ca_reference_R.json").read_text())


def load_table(name: str) -> pd.DataFrame:
    return pd.read_csv(REF / f"{name}_table.csv", index_col=0)


def load_ref(name: str, what: str) -> pd.DataFrame:
    return pd.read_csv(REF / f"{name}_{what}.csv", index_col=0)


@pytest.fixture(scope="module")
def fits() -> dict[str, CAResult]:
    return {name: correspondence_analysis(load_table(name), n_components=2) for name in DATASETS}


def axis_signs(ours: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Per-column sign (+1/-1) that best aligns ``ours`` with ``ref``."""
    signs = np.sign((ours * ref).sum(axis=0))
    assert np.all(signs != 0)
    return signs


def coords(frame: pd.DataFrame, kind: str, ndim: int = 2) -> np.ndarray:
    return frame[[f"{kind}_{k}" for k in range(1, ndim + 1)]].to_numpy()


def close(actual, expected, atol=ATOL):
    np.testing.assert_allclose(np.asarray(actual, float), np.asarray(expected, float), rtol=0, atol=atol)


def shoelace_area(x: np.ndarray, y: np.ndarray) -> float:
    return 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def inside_convex(x: np.ndarray, y: np.ndarray, px: float, py: float) -> bool:
    """Whether (px, py) lies strictly inside the convex polygon (x, y) (closed or open outline)."""
    ex, ey = np.roll(x, -1) - x, np.roll(y, -1) - y
    keep = np.hypot(ex, ey) > 0  # the closing duplicate vertex gives a zero-length edge
    cross = ex[keep] * (py - y[keep]) - ey[keep] * (px - x[keep])
    return bool(np.all(cross > 0) or np.all(cross < 0))


# ----------------------------------------------------------------------------------------------------------------
# Global quantities
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DATASETS)
def test_eigenvalues_match_ca_and_factominer(fits, name):
    res, ref = fits[name], load_ref(name, "eigen")
    eig = res.eigenvalues
    assert list(eig.index) == [f"dim {k}" for k in range(1, len(ref) + 1)]
    assert list(eig.columns) == ["eigenvalue", "pct", "cum_pct", "singular_value"]
    close(eig["eigenvalue"], ref["eigenvalue"])
    close(eig["pct"], ref["pct"])
    close(eig["cum_pct"], ref["cum_pct"])
    close(eig["singular_value"], ref["sv"])
    close(eig["eigenvalue"], ref["factominer_eigenvalue"])
    close(eig["pct"], ref["factominer_pct"])
    close(eig["cum_pct"].iloc[-1], 100.0, atol=1e-9)


@pytest.mark.parametrize("name", DATASETS)
def test_total_inertia_chi2_dof_n(fits, ref_json, name):
    res, ref = fits[name], ref_json[name]
    close(res.total_inertia, ref["total_inertia"][0])
    close(res.eigenvalues["eigenvalue"].sum(), res.total_inertia, atol=1e-12)
    close(res.chi2, ref["chisq"][0])
    assert res.dof == ref["chisq_df"][0]
    assert res.n == ref["n"][0]
    chi2, p, dof, _ = stats.chi2_contingency(load_table(name).to_numpy(), correction=False)
    close(res.chi2, chi2, atol=1e-9)
    assert res.dof == dof
    close(res.p_value, p, atol=1e-12)
    assert res.n_components == 2


# ----------------------------------------------------------------------------------------------------------------
# Per-point quantities
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("side", ["rows", "cols"])
@pytest.mark.parametrize("name", DATASETS)
def test_masses_distances_inertias(fits, name, side):
    ours, ref = getattr(fits[name], side), load_ref(name, side)
    assert list(ours.index) == list(ref.index)
    close(ours["mass"], ref["mass"])
    close(ours["dist"], ref["chidist"])
    close(ours["inertia"], ref["inertia"])
    close(ours["inertia"].sum(), fits[name].total_inertia, atol=1e-12)
    assert not ours["supplementary"].any()
    assert ours["supplementary"].dtype == bool


@pytest.mark.parametrize("side", ["rows", "cols"])
@pytest.mark.parametrize("name", DATASETS)
def test_coordinates_contributions_cos2(fits, name, side):
    res = fits[name]
    ours, ref = getattr(res, side), load_ref(name, side)
    other_side = "cols" if side == "rows" else "rows"
    ref_other = load_ref(name, other_side)
    pc, std = coords(ours, "coord"), coords(ours, "std")
    for prefix in ("ca_pc", "fmr_coord"):
        expected = ref[[f"{prefix}_dim1", f"{prefix}_dim2"]].to_numpy()
        signs = axis_signs(pc, expected)
        close(pc * signs, expected)
        # The same per-axis signs must align the other side too: signs are consistent across rows and columns.
        other = coords(getattr(res, other_side), "coord")
        close(other * signs, ref_other[[f"{prefix}_dim1", f"{prefix}_dim2"]].to_numpy())
        if prefix == "ca_pc":
            close(std * signs, ref[["ca_std_dim1", "ca_std_dim2"]].to_numpy())
    close(coords(ours, "contrib"), ref[["fmr_contrib_pct_dim1", "fmr_contrib_pct_dim2"]].to_numpy())
    close(coords(ours, "cos2"), ref[["fmr_cos2_dim1", "fmr_cos2_dim2"]].to_numpy())
    # Structure: the documented column order and the convenience accessors.
    expected_cols = ["mass", "inertia", "dist"]
    for k in (1, 2):
        expected_cols += [f"coord_{k}", f"std_{k}", f"contrib_{k}", f"cos2_{k}"]
    assert list(ours.columns) == expected_cols + ["supplementary"]
    accessor = res.row_coords if side == "rows" else res.col_coords
    assert list(accessor.columns) == ["dim 1", "dim 2"]
    close(accessor.to_numpy(), pc, atol=0)
    close(ours["contrib_1"].sum(), 100.0, atol=1e-9)


def test_all_dimensions_when_n_components_none():
    res = correspondence_analysis(load_table("housetasks"), n_components=None)
    assert res.n_components == 3 == len(res.eigenvalues)
    for side in (res.rows, res.cols):
        close(coords(side, "cos2", 3).sum(axis=1), 1.0, atol=1e-9)
        close((coords(side, "coord", 3) ** 2).sum(axis=1), side["dist"] ** 2, atol=1e-12)
    # Asking for more dimensions than exist is capped.
    assert correspondence_analysis(load_table("smoke"), n_components=10).n_components == 3


# ----------------------------------------------------------------------------------------------------------------
# Supplementary points
# ----------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smoke_sup() -> CAResult:
    table = pd.read_csv(REF / "smoke_with_supplementary_table.csv", index_col=0)
    return correspondence_analysis(table, sup_rows=["sup_avg"], sup_cols=["sup_noalc", "sup_alc"])


def test_supplementary_points_match_r(smoke_sup, fits, ref_json):
    sup = ref_json["smoke_supplementary"]
    res = smoke_sup
    # The active solution is untouched by the supplementary points.
    close(res.eigenvalues["eigenvalue"], sup["active_eig_unchanged"])
    active = fits["smoke"]
    pd.testing.assert_frame_equal(res.eigenvalues, active.eigenvalues)
    for side in ("rows", "cols"):
        mine = getattr(res, side)
        pd.testing.assert_frame_equal(mine[~mine["supplementary"]], getattr(active, side), check_exact=False,
                                      rtol=0, atol=1e-12)
    assert res.chi2 == pytest.approx(active.chi2) and res.dof == active.dof and res.n == active.n

    rows, cols = res.rows, res.cols
    assert list(rows.index[rows["supplementary"]]) == ["sup_avg"]
    assert list(cols.index[cols["supplementary"]]) == ["sup_noalc", "sup_alc"]
    # Signs come from the active rows and must align the supplementary points exactly as the active ones.
    ref_rows = load_ref("smoke", "rows")
    for prefix, row_key, col_key in (
        ("ca_pc", "ca_suprow_pc", "ca_supcol_pc"),
        ("fmr_coord", "fmr_row_sup_coord", "fmr_col_sup_coord"),
    ):
        signs = axis_signs(coords(rows.loc[ref_rows.index], "coord"),
                           ref_rows[[f"{prefix}_dim1", f"{prefix}_dim2"]].to_numpy())
        close(coords(rows.loc[["sup_avg"]], "coord") * signs, sup[row_key])
        close(coords(cols.loc[["sup_noalc", "sup_alc"]], "coord") * signs, sup[col_key])
    close(coords(rows.loc[["sup_avg"]], "cos2"), sup["fmr_row_sup_cos2"])
    close(coords(cols.loc[["sup_noalc", "sup_alc"]], "cos2"), sup["fmr_col_sup_cos2"])
    # Standard coordinates of supplementary points: principal / singular value, like the active ones.
    sv = res.eigenvalues["singular_value"].to_numpy()[:2]
    close(coords(cols.loc[["sup_noalc"]], "std"), coords(cols.loc[["sup_noalc"]], "coord") / sv, atol=1e-12)
    # Supplementary points carry no mass, inertia or contribution, but a chi-square distance.
    sup_points = pd.concat([rows[rows["supplementary"]], cols[cols["supplementary"]]])
    assert sup_points[["mass", "inertia", "contrib_1", "contrib_2"]].isna().all().all()
    assert sup_points["dist"].notna().all()
    # README headline numbers (ca principal coordinates, the ca sign convention).
    assert res.row_coords.loc["sup_avg"].abs().to_numpy() == pytest.approx([0.258368, 0.117648], abs=ATOL)


def test_supplementary_names_must_exist():
    with pytest.raises(CAError, match="nope"):
        correspondence_analysis(load_table("smoke"), sup_rows=["nope"])
    with pytest.raises(CAError, match="nope"):
        correspondence_analysis(load_table("smoke"), sup_cols=["nope"])


# ----------------------------------------------------------------------------------------------------------------
# Deterministic signs
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DATASETS)
def test_sign_rule_largest_row_contribution_is_positive(name):
    res = correspondence_analysis(load_table(name), n_components=None)
    for k in range(1, res.n_components + 1):
        top = res.rows[f"contrib_{k}"].idxmax()
        assert res.rows.loc[top, f"coord_{k}"] > 0
        assert res.rows.loc[top, f"std_{k}"] > 0


@pytest.mark.parametrize("name", DATASETS)
def test_signs_do_not_depend_on_row_or_column_order(name):
    table = load_table(name)
    base = correspondence_analysis(table, n_components=None)
    rng = np.random.default_rng(7)
    for _ in range(3):
        permuted = table.iloc[rng.permutation(table.shape[0]), rng.permutation(table.shape[1])]
        for variant in (permuted, table.iloc[::-1], table.iloc[:, ::-1]):
            res = correspondence_analysis(variant, n_components=None)
            assert list(res.rows.index) == list(variant.index)
            for side in ("rows", "cols"):
                pd.testing.assert_frame_equal(
                    getattr(res, side).loc[getattr(base, side).index], getattr(base, side),
                    check_exact=False, rtol=0, atol=1e-10,
                )


def test_sign_rule_tie_broken_by_label():
    # "a" and "b" are mirror images with equal mass: equal contributions, opposite coordinates.
    table = pd.DataFrame([[5, 1], [1, 5], [3, 3]], index=["b", "a", "c"], columns=["x", "y"])
    for variant in (table, table.iloc[[1, 0, 2]], table.iloc[[2, 1, 0], ::-1]):
        res = correspondence_analysis(variant, n_components=1)
        assert res.rows.loc["a", "contrib_1"] == pytest.approx(res.rows.loc["b", "contrib_1"])
        assert res.rows.loc["a", "coord_1"] > 0 > res.rows.loc["b", "coord_1"]


def test_supplementary_signs_stable_under_permutation(smoke_sup):
    table = pd.read_csv(REF / "smoke_with_supplementary_table.csv", index_col=0)
    permuted = table.iloc[[5, 3, 0, 4, 2, 1], [5, 2, 4, 0, 3, 1]]
    res = correspondence_analysis(permuted, sup_rows=["sup_avg"], sup_cols=["sup_noalc", "sup_alc"])
    close(res.row_coords.loc[smoke_sup.rows.index], smoke_sup.row_coords, atol=1e-10)
    close(res.col_coords.loc[smoke_sup.cols.index], smoke_sup.col_coords, atol=1e-10)


# ----------------------------------------------------------------------------------------------------------------
# Bad tables
# ----------------------------------------------------------------------------------------------------------------


def _smoke_with(row, col, value) -> pd.DataFrame:
    table = load_table("smoke").astype(object)
    table.loc[row, col] = value
    return table


def _smoke_keeping(row=None, col=None) -> pd.DataFrame:
    """smoke with every row but ``row`` (or every column but ``col``) set to zero."""
    table = load_table("smoke").astype(float)
    if row is not None:
        table.loc[table.index != row, :] = 0.0
    if col is not None:
        table.loc[:, table.columns != col] = 0.0
    return table


@pytest.mark.parametrize(
    "table, pattern",
    [
        pytest.param(_smoke_with("JM", "light", -1), r"negative.*'JM'.*'light'", id="negative"),
        pytest.param(_smoke_with("SE", "heavy", "four"), r"non-numeric.*'SE'.*'heavy'", id="string"),
        pytest.param(_smoke_with("SC", "none", np.nan), r"NaN.*'SC'.*'none'", id="nan"),
        pytest.param(_smoke_with("SM", "medium", np.inf), r"infinite.*'SM'.*'medium'", id="inf"),
        pytest.param(_smoke_keeping(row="JE"), r"two non-empty rows", id="one-non-empty-row"),
        pytest.param(_smoke_keeping(col="light"), r"two non-empty rows and two non-empty columns",
                     id="one-non-empty-column"),
        pytest.param(load_table("smoke").iloc[:, :1], r"two non-empty", id="single-column"),
        pytest.param(pd.DataFrame([[1, 2]], index=["a"], columns=["x", "y"]), r"two non-empty", id="single-row"),
        pytest.param(pd.DataFrame(np.ones((3, 3)), index=list("abc"), columns=list("xyz")), r"no inertia",
                     id="zero-inertia"),
        pytest.param(pd.DataFrame(np.ones((2, 2)), index=["a", "a"], columns=["x", "y"]), r"duplicate row",
                     id="duplicate-names"),
    ],
)
def test_bad_tables_raise(table, pattern):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the one-non-empty cases drop empties first
        with pytest.raises(CAError, match=pattern):
            correspondence_analysis(table)


def test_caerror_is_a_valueerror():
    assert issubclass(CAError, ValueError)


def test_one_non_empty_row_and_column_tables_warn_then_raise():
    with pytest.warns(UserWarning, match="SM"), pytest.raises(CAError, match=r"1 row\(s\) \['JE'\]"):
        correspondence_analysis(_smoke_keeping(row="JE"))
    with pytest.warns(UserWarning, match="heavy"), pytest.raises(CAError, match=r"1 column\(s\) \['light'\]"):
        correspondence_analysis(_smoke_keeping(col="light"))


@pytest.mark.parametrize("name", DATASETS)
def test_empty_row_and_column_are_dropped_with_warning(name):
    table = load_table(name)
    padded = table.copy()
    padded.loc["empty_row"] = 0
    padded.insert(1, "empty_col", 0)
    with pytest.warns(UserWarning, match=r"empty_row.*empty_col"):
        res = correspondence_analysis(padded, n_components=None)
    base = correspondence_analysis(table, n_components=None)
    pd.testing.assert_frame_equal(res.eigenvalues, base.eigenvalues, check_exact=False, rtol=0, atol=1e-12)
    pd.testing.assert_frame_equal(res.rows, base.rows, check_exact=False, rtol=0, atol=1e-12)
    pd.testing.assert_frame_equal(res.cols, base.cols, check_exact=False, rtol=0, atol=1e-12)
    assert (res.chi2, res.dof, res.n) == pytest.approx((base.chi2, base.dof, base.n))
    with pytest.raises(CAError, match="empty_row"):
        correspondence_analysis(padded, drop_empty=False)


# ----------------------------------------------------------------------------------------------------------------
# Bootstrap ellipses
# ----------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def housetasks_ellipses(fits):
    return bootstrap_ellipses(load_table("housetasks"), fits["housetasks"], seed=3)


def test_ellipses_shape_and_seed(fits, housetasks_ellipses):
    table, res = load_table("housetasks"), fits["housetasks"]
    ell = housetasks_ellipses
    assert list(ell.columns) == ["kind", "name", "x", "y"]
    assert len(ell) == 60 * (table.shape[0] + table.shape[1])
    assert set(ell.loc[ell["kind"] == "row", "name"]) == set(table.index)
    assert set(ell.loc[ell["kind"] == "col", "name"]) == set(table.columns)
    assert ell[["x", "y"]].notna().all().all()
    pd.testing.assert_frame_equal(ell, bootstrap_ellipses(table, res, seed=3))
    other = bootstrap_ellipses(table, res, seed=4)
    assert not np.allclose(ell[["x", "y"]].to_numpy(), other[["x", "y"]].to_numpy())
    fewer = bootstrap_ellipses(table, res, seed=3, n_points=12)
    assert len(fewer) == 12 * (table.shape[0] + table.shape[1])


@pytest.mark.parametrize("name", DATASETS)
def test_ellipses_enclose_their_points(fits, name, housetasks_ellipses):
    res = fits[name]
    ell = housetasks_ellipses if name == "housetasks" else bootstrap_ellipses(load_table(name), res)
    for kind, points in (("row", res.row_coords), ("col", res.col_coords)):
        for point, (px, py) in points.iterrows():
            outline = ell[(ell["kind"] == kind) & (ell["name"] == point)]
            assert inside_convex(outline["x"].to_numpy(), outline["y"].to_numpy(), px, py), (kind, point)


@pytest.mark.parametrize("name", DATASETS)
def test_ellipses_shrink_with_more_data(fits, name):
    table = load_table(name)
    small = bootstrap_ellipses(table, fits[name], seed=1)
    big_table = table * 100
    big_res = correspondence_analysis(big_table)
    close(big_res.row_coords, fits[name].row_coords, atol=1e-12)  # CA is invariant to the table's scale
    big = bootstrap_ellipses(big_table, big_res, seed=1)
    for (key, s_part), (_, b_part) in zip(small.groupby(["kind", "name"]), big.groupby(["kind", "name"])):
        area_small = shoelace_area(s_part["x"].to_numpy(), s_part["y"].to_numpy())
        area_big = shoelace_area(b_part["x"].to_numpy(), b_part["y"].to_numpy())
        # Variances fall like 1/n, so the area should fall about 100-fold.
        assert area_big < area_small / 20, key


def test_ellipses_ignore_supplementary_points_and_are_fast(smoke_sup):
    table = pd.read_csv(REF / "smoke_with_supplementary_table.csv", index_col=0)
    ell = bootstrap_ellipses(table, smoke_sup)
    assert set(ell["name"]) == {"SM", "JM", "SE", "JE", "SC", "none", "light", "medium", "heavy"}

    rng = np.random.default_rng(0)
    big = pd.DataFrame(rng.integers(0, 60, size=(14, 10)),
                       index=[f"r{i}" for i in range(14)], columns=[f"c{j}" for j in range(10)])
    res = correspondence_analysis(big)
    start = time.perf_counter()
    ell = bootstrap_ellipses(big, res, n_replicates=200)
    assert time.perf_counter() - start < 1.0
    assert len(ell) == 60 * 24


def test_ellipses_level_scales_size(fits):
    table, res = load_table("smoke"), fits["smoke"]
    e50 = bootstrap_ellipses(table, res, level=0.5)
    e95 = bootstrap_ellipses(table, res, level=0.95)
    a50 = shoelace_area(*e50.query("name == 'SE'")[["x", "y"]].to_numpy().T)
    a95 = shoelace_area(*e95.query("name == 'SE'")[["x", "y"]].to_numpy().T)
    ratio = stats.chi2.ppf(0.95, 2) / stats.chi2.ppf(0.5, 2)
    assert a95 / a50 == pytest.approx(ratio, rel=1e-9)


# ----------------------------------------------------------------------------------------------------------------
# MDS of profiles
# ----------------------------------------------------------------------------------------------------------------


def chi2_profile_distances(table: pd.DataFrame) -> np.ndarray:
    counts = table.to_numpy(float)
    profiles = counts / counts.sum(axis=1, keepdims=True)
    col_mass = counts.sum(axis=0) / counts.sum()
    n = len(counts)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            out[i, j] = np.sqrt((((profiles[i] - profiles[j]) ** 2) / col_mass).sum())
    return out


@pytest.mark.parametrize("axis", ["rows", "cols"])
def test_mds_profiles_smoke(axis):
    table = load_table("smoke")
    config, stress = mds_profiles(table, axis=axis, seed=0)
    names = table.index if axis == "rows" else table.columns
    assert list(config.index) == list(names) and list(config.columns) == ["dim 1", "dim 2"]
    delta = chi2_profile_distances(table if axis == "rows" else table.T)
    emb = config.to_numpy()
    d = np.sqrt(((emb[:, None] - emb[None]) ** 2).sum(axis=2))
    upper = np.triu_indices(len(names), k=1)
    assert np.corrcoef(d[upper], delta[upper])[0, 1] > 0.99
    assert isinstance(stress, float) and np.isfinite(stress) and 0 <= stress < 1
    # The documented stress-1, recomputed.
    expected = np.sqrt(((delta[upper] - d[upper]) ** 2).sum() / (d[upper] ** 2).sum())
    assert stress == pytest.approx(expected, rel=1e-9)
    # Same seed, same result.
    again, stress_again = mds_profiles(table, axis=axis, seed=0)
    pd.testing.assert_frame_equal(config, again)
    assert stress == stress_again


def test_mds_profiles_checks_table():
    with pytest.raises(CAError):
        mds_profiles(_smoke_with("JM", "light", -1))
    with pytest.raises(ValueError, match="axis"):
        mds_profiles(load_table("smoke"), axis="diagonal")
    table = load_table("housetasks")
    padded = table.copy()
    padded.loc["nothing"] = 0
    with pytest.warns(UserWarning, match="nothing"):
        config, _ = mds_profiles(padded)
    assert "nothing" not in config.index and len(config) == len(table)
