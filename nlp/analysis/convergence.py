"""The convergence reading of the CD-PD diagram: for each function, how the city and national sides use it.

Statistics only (no plotting): tables in, DataFrames out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..codebook import Codebook

#: The reading rule of the convergence table (also printed under it).
READING_RULE = (
    "city-led: the city standardised residual is >= 1.96 and the city share is at least 1.5 times the national "
    "share; state-led: the residual is <= -1.96 and the national share is at least 1.5 times the city share; "
    "convergent otherwise (both practices use the function in comparable measure)."
)
RESIDUAL_CUT = 1.96
SHARE_RATIO = 1.5


def standardised_residuals(table: pd.DataFrame) -> pd.DataFrame:
    """(observed - expected) / sqrt(expected) under independence, the cells whose squares sum to chi-square."""
    values = table.to_numpy(float)
    n = values.sum()
    expected = np.outer(values.sum(1), values.sum(0)) / n
    with np.errstate(divide="ignore", invalid="ignore"):
        res = np.where(expected > 0, (values - expected) / np.sqrt(expected), 0.0)
    return pd.DataFrame(res, index=table.index, columns=table.columns)


def convergence_table(counts: pd.DataFrame, totals: pd.Series, codebook: Codebook | None = None,
                      city: str = "city", national: str = "national") -> pd.DataFrame:
    """Per label: share of city and of national documents carrying it, the standardised residual of its city
    count (against the count expected from the cities' share of all documents), its contribution (%) to the
    inertia of the labels x issuer-type table, and a reading by :data:`READING_RULE`.

    ``counts`` is labels x issuer types (documents carrying each label); ``totals`` the documents per issuer type.
    """
    for column in (city, national):
        if column not in counts.columns:
            raise ValueError(f"the convergence table needs a {column!r} column; the table has "
                             f"{', '.join(map(str, counts.columns))} (group by issuer_type)")
    table = counts[[city, national]].astype(float)
    n_city, n_national = max(int(totals.get(city, 0)), 1), max(int(totals.get(national, 0)), 1)
    # residual of the city cell of each label's 2x2 table (city/national x with/without the label): positive when
    # cities carry the label more often than their share of the documents predicts
    expected = table.sum(axis=1) * n_city / (n_city + n_national)
    with np.errstate(divide="ignore", invalid="ignore"):
        residual = np.where(expected > 0, (table[city] - expected) / np.sqrt(expected), 0.0)
    sq = standardised_residuals(table).to_numpy() ** 2
    inertia_share = 100 * sq.sum(1) / sq.sum() if sq.sum() > 0 else np.zeros(len(table))
    out = pd.DataFrame(index=table.index)
    out["practice"] = [_practice(codebook, label) for label in table.index]
    out["city_share"] = table[city] / n_city
    out["national_share"] = table[national] / n_national
    out["city_documents"] = table[city].astype(int)
    out["national_documents"] = table[national].astype(int)
    out["std_residual_city"] = residual
    out["contribution_pct"] = inertia_share
    out["reading"] = [_reading(r.std_residual_city, r.city_share, r.national_share) for r in out.itertuples()]
    out.index.name = table.index.name
    return out


def _reading(residual: float, city_share: float, national_share: float) -> str:
    if residual >= RESIDUAL_CUT and city_share >= SHARE_RATIO * national_share:
        return "city-led"
    if residual <= -RESIDUAL_CUT and national_share >= SHARE_RATIO * city_share:
        return "state-led"
    return "convergent"


def _practice(codebook: Codebook | None, label: str) -> str:
    if codebook is None:
        return ""
    try:
        return str(codebook.label(label).practice or "")
    except KeyError:
        return ""


