"""The CD-PD analysis of a workspace in one call: contingency tables, correspondence analysis, bootstrap ellipses,
the convergence table and the MDS view. The CLI (`cdpd diagram`) and the app's diagram page both use it, so they
always show the same numbers.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import pandas as pd

from .tables import Filters, cooccurrence, group_totals, label_table
from .ca import CAResult, bootstrap_ellipses, correspondence_analysis, mds_profiles
from ..codebook import Codebook
from .convergence import convergence_table
from ..workspace import Workspace


@dataclass
class Diagram:
    """What the diagram shows. ``tables`` holds every table worth downloading, by name; ``notes`` says what
    could not be drawn and why (one dimension only, no city documents, ...)."""

    title: str
    model: str
    counts: pd.DataFrame
    result: CAResult
    tables: dict[str, pd.DataFrame]
    ellipses: pd.DataFrame | None = None
    convergence: pd.DataFrame | None = None
    mds: tuple[pd.DataFrame, float] | None = None
    notes: list[str] = field(default_factory=list)


def build_diagram(ws: Workspace, codebook: Codebook, model: str, *, rows: str = "functions", by: str = "source",
                  unit: str = "documents", filters: Filters | None = None, sup_cols: list[str] | None = None,
                  sup_rows: list[str] | None = None, ellipses: int = 0, seed: int = 0) -> Diagram:
    """Labels of axis ``rows`` x groups ``by`` for ``model``'s tags, analysed. Raises ``nlp.analysis.ca.CAError`` when the
    filtered table cannot be analysed (too few labels or groups with data)."""
    filters = filters or Filters()
    sup_cols, sup_rows = list(sup_cols or []), list(sup_rows or [])
    if rows not in codebook.axis_names:
        raise ValueError(f"rows must be a codebook axis ({', '.join(codebook.axis_names)}), not {rows!r}")
    table = label_table(ws, model, axis=rows, by=by, unit=unit, filters=filters)
    by_type = label_table(ws, model, axis=rows, by="issuer_type", unit=unit, filters=filters)
    totals = group_totals(ws, model, by="issuer_type", filters=filters)
    other = next((a for a in codebook.axis_names if a != rows), None)
    co = cooccurrence(ws, model, rows=rows, cols=other, filters=filters) if other else None

    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:  # dropped empty rows/columns: tell the reader
        warnings.simplefilter("always")
        result = correspondence_analysis(table, n_components=2, sup_cols=sup_cols, sup_rows=sup_rows)
    notes.extend(str(w.message) for w in caught)
    ell = None
    if ellipses:
        if result.n_components >= 2:
            ell = bootstrap_ellipses(table, result, n_replicates=ellipses, seed=seed)
        else:
            notes.append("no ellipses: the map has a single dimension (two groups); group by source or issuer "
                         "for a 2-D map")
    tables = {"ca_rows": result.rows, "ca_cols": result.cols, "eigenvalues": result.eigenvalues, "counts": table}
    conv = None
    if {"city", "national"} <= set(by_type.columns):
        conv = convergence_table(by_type, totals, codebook)
        tables["convergence"] = conv
    else:
        notes.append("no convergence table: the filtered documents do not include both city and national issuers")
    if co is not None:
        tables["cooccurrence"] = co
    active = table.drop(columns=[c for c in sup_cols if c in table.columns])
    active = active.loc[active.sum(axis=1) > 0, active.sum(axis=0) > 0]
    mds = None
    if min(active.shape) >= 3:
        mds = mds_profiles(active, axis="rows")
        tables["mds_rows"] = mds[0].assign(stress=mds[1])
    title = f"CD-PD diagram: {rows} by {by} ({model})"
    return Diagram(title, model, table, result, tables, ell, conv, mds, notes)
