"""The CD-PD analysis of a workspace in one call: contingency tables, correspondence analysis, bootstrap ellipses,
the convergence reading of two stated sides (with its description and intervals) and the MDS view. The CLI
(`cdpd diagram`) and the app's diagram page both use it, so they always show the same numbers.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import pandas as pd

from ..codebook import Codebook
from ..errors import ConfigError, DataError
from ..workspace import Workspace
from .ca import CAResult, bootstrap_ellipses, correspondence_analysis, mds_profiles
from .convergence import DEFAULT_ALPHA, DEFAULT_REPLICATES, Convergence, convergence
from .sides import Comparison, describe
from .tables import Filters, cooccurrence
from .units import DEFAULT_UNIT, TABLE_UNIT_LABELS, Reads, check_unit, unit_matrices, unit_table

#: Groups kept active in the biplot by default (the largest by mass); the others are projected as supplementary.
DEFAULT_TOP = 15


@dataclass
class Diagram:
    """What the diagram shows. ``tables`` holds every table worth downloading, by name; ``notes`` says what
    could not be drawn and why (one dimension only, a side with no document, ...). ``convergence`` is the reading
    asked for (``diplomatic_only`` as given), ``other_reading`` the same with the other choice of units (all
    units vs diplomatic units only), each labelled by its ``diplomatic_only``. ``sides`` describes the two sides
    (:func:`nlp.analysis.sides.describe`); ``caption`` states model, unit, sides and counts in one paragraph."""

    title: str
    model: str
    counts: pd.DataFrame
    result: CAResult
    tables: dict[str, pd.DataFrame]
    ellipses: pd.DataFrame | None = None
    convergence: Convergence | None = None
    mds: tuple[pd.DataFrame, float] | None = None
    notes: list[str] = field(default_factory=list)
    comparison: Comparison = field(default_factory=Comparison.default)
    sides: pd.DataFrame | None = None
    caption: str = ""
    unit: str = DEFAULT_UNIT
    other_reading: Convergence | None = None


def format_p(p: float) -> str:
    """``p < 0.001`` below a thousandth (never ``p = 0``), else ``p = 0.012``."""
    if p != p:  # NaN
        return "p not tested"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def heldout_f1(model: str, axis: str = "functions") -> float | None:
    """The model's held-out micro-F1 on ``axis`` from the model registry, or None when unknown (a model trained
    elsewhere, the lexicon, no held-out metrics)."""
    try:
        from ..models import read_meta

        return float(read_meta(model)["metrics"]["heldout"][axis]["micro"]["f1"])
    except (ValueError, OSError, KeyError, TypeError):  # ModelError is a ValueError
        return None


def _units_words(conv: Convergence, side: str) -> str:
    docs = conv.documents[side]
    if conv.unit == "passages":
        return f"{conv.n[side]:,} passages in {docs:,} documents"
    return f"{docs:,} documents"


def caption(model: str, conv: Convergence | None, sides: pd.DataFrame | None, result: CAResult | None = None,
            table_unit: str | None = None, f1: float | None = None) -> str:
    """One paragraph that states what the diagram counts: the model (and its held-out functions micro-F1 when
    known), the unit, each side's definition with its documents, and N. Its counts are the convergence
    table's (``{side}_n``), so the two always agree."""
    parts = [f"Model {model}" + (f" (held-out functions micro-F1 {f1:.3f})." if f1 is not None else
                                 " (no held-out score recorded).")]
    if conv is not None:
        a, b = conv.sides
        described = []
        for name in (a, b):
            definition = sides.loc[name, "definition"] if sides is not None and name in sides.index else ""
            total = f" of {int(sides.loc[name, 'documents']):,} classified" if sides is not None and \
                name in sides.index else ""
            described.append(f"{name} ({definition}): {_units_words(conv, name)} counted{total}")
        n_units = sum(conv.n.values())
        n_docs = sum(conv.documents.values())
        counted = (f"{n_units:,} passages in {n_docs:,} documents" if conv.unit == "passages"
                   else f"{n_docs:,} documents")
        parts.append(f"Convergence ({conv.label}): unit {conv.unit}, the {conv.unit_label}; "
                     + "; ".join(described) + f"; N = {counted} counted. {conv.replicates} bootstrap replicates, "
                     f"{100 * (1 - conv.alpha):g}% intervals, Holm-adjusted Wald tests.")
    if result is not None:
        cells = TABLE_UNIT_LABELS.get(table_unit or "", "counts")
        parts.append(f"Total inertia {result.total_inertia:.4f}; chi-square {result.chi2:,.1f} on {result.dof} df "
                     f"({format_p(result.p_value)}); biplot cells: {cells} (table total {result.n:,.1f}, a sum of "
                     f"label assignments, not a count of documents).")
    return " ".join(parts)


def _top_groups(table: pd.DataFrame, top: int | None, sup_cols: list[str]) -> tuple[list[str], list[str]]:
    """The groups beyond the ``top`` largest by mass (among those not already supplementary and not empty): they
    are projected as supplementary, so a long tail of small groups does not steer the axes."""
    if top is None:
        return sup_cols, []
    mass = table.drop(columns=[c for c in sup_cols if c in table.columns]).sum(axis=0)
    mass = mass[mass > 0].sort_values(ascending=False, kind="stable")
    extra = [str(c) for c in mass.index[int(top):]]
    return sup_cols + extra, extra


def build_diagram(ws: Workspace, codebook: Codebook, model: str, *, rows: str = "functions", by: str = "source",
                  unit: str = DEFAULT_UNIT, filters: Filters | None = None, sup_cols: list[str] | None = None,
                  sup_rows: list[str] | None = None, ellipses: int = 0, seed: int = 0,
                  comparison: Comparison | None = None, diplomatic_only: bool = True,
                  replicates: int = DEFAULT_REPLICATES, top: int | None = DEFAULT_TOP,
                  alpha: float = DEFAULT_ALPHA, with_cooccurrence: bool = True) -> Diagram:
    """Labels of axis ``rows`` x groups ``by`` for ``model``'s tags in ``unit``, analysed, and the convergence
    reading of ``comparison`` (default: city vs state) on the same axis. Raises ``nlp.analysis.ca.CAError`` when
    the filtered table cannot be analysed, :class:`~nlp.analysis.sides.SideError` when the sides overlap.
    ``with_cooccurrence=False`` leaves out the function x domain table (a quarter of the time on a large workspace:
    the app reads it only when its CSVs are downloaded)."""
    filters = filters or Filters()
    comparison = comparison or Comparison.default()
    check_unit(unit)
    sup_cols, sup_rows = list(sup_cols or []), list(sup_rows or [])
    if rows not in codebook.axis_names:
        raise ConfigError(f"rows must be a codebook axis ({', '.join(codebook.axis_names)}), not {rows!r}")
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 2):
        raise ConfigError(f"top must be a whole number >= 2 (groups kept active), not {top!r}")
    reads = Reads(ws)  # the biplot's table and both readings share the per-document reads
    table = unit_table(ws, model, axis=rows, by=by, unit=unit, filters=filters, reads=reads)
    other = next((a for a in codebook.axis_names if a != rows), None)
    co = cooccurrence(ws, model, rows=rows, cols=other, filters=filters) if other and with_cooccurrence else None

    notes: list[str] = []
    sup_cols, passive = _top_groups(table, top, sup_cols)
    if passive:
        notes.append(f"the {top} largest groups by mass are active; {len(passive)} smaller one(s) are projected as "
                     f"supplementary points (top={top})")
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

    sides = describe(ws, model, comparison, filters, reads=reads)
    tables["sides"] = sides
    readings: dict[bool, Convergence | None] = {}
    matrices = unit_matrices(ws, model, rows, comparison, filters, unit, reads=reads)
    for dip in (bool(diplomatic_only), not diplomatic_only):
        matrix = matrices[dip]
        try:
            readings[dip] = convergence(matrix, codebook, replicates=replicates, seed=seed, alpha=alpha)
        except DataError as exc:  # a side with no unit in this selection
            readings[dip] = None
            if dip == bool(diplomatic_only):
                notes.append(f"no convergence reading: {exc}")
    conv, other_reading = readings[bool(diplomatic_only)], readings[not diplomatic_only]
    if conv is not None:
        tables["convergence"] = conv.table
    if other_reading is not None:
        tables["convergence_all_units" if diplomatic_only else "convergence_diplomatic"] = other_reading.table
    if co is not None:
        tables["cooccurrence"] = co
    active = table.drop(columns=[c for c in sup_cols if c in table.columns])
    active = active.loc[active.sum(axis=1) > 0, active.sum(axis=0) > 0]
    mds = None
    if min(active.shape) >= 3:
        mds = mds_profiles(active, axis="rows")
        tables["mds_rows"] = mds[0].assign(stress=mds[1])
    title = f"CD-PD diagram: {rows} by {by} ({model}, {unit})"
    text = caption(model, conv, sides, result, unit, heldout_f1(model))
    return Diagram(title, model, table, result, tables, ell, conv, mds, notes, comparison, sides, text, unit,
                   other_reading)
