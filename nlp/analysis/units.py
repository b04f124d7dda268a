"""Per-document data for the convergence reading, in a unit that does not let long documents dominate.

Three units (:data:`UNITS`), each a share in [0, 1]:

- ``documents``: whether a document is tagged with the label (document-level predictions); a side's share is the
  share of its documents carrying the label.
- ``passages``: how many of a document's passages carry the label (``passage_labels``), over its passages; a
  side's share is the share of its passages carrying the label. A 12-passage speech weighs 12 press releases.
- ``intensity`` (the default): the share of a document's passages carrying the label, each document weighing 1;
  a side's share is the mean, over its documents, of that share. A 5,000-word speech of 12 passages weighs as
  one press release, and a label mentioned once in it counts 1/12.

With ``diplomatic_only`` only diplomatic units count: documents with at least one function (``documents``),
passages with at least one function (``passages``: a document contributes only its diplomatic passages), and
documents with at least one diplomatic passage, their shares taken over their diplomatic passages
(``intensity``). Why: most city documents are domestic administration, so a share of *all* city documents says
how often cities do diplomacy at all, not how their diplomacy is made up.

:class:`UnitMatrix` holds one row per document: its side, a numerator per label and a denominator, so that a
side's share is ``counts[side].sum(0) / weights[side].sum()`` and a bootstrap that resamples documents is one
matrix product (:mod:`nlp.analysis.convergence`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..workspace import Workspace, WorkspaceError
from .sides import DIPLOMATIC_AXIS, Comparison, classified_documents, side_documents
from .tables import Filters, _axis_labels, _group_column, label_table

UNITS = ("documents", "passages", "intensity")
DEFAULT_UNIT = "intensity"
#: What a share counts, in words, per unit and per ``diplomatic_only``.
UNIT_LABELS = {
    ("documents", False): "share of documents carrying the label",
    ("documents", True): "share of diplomatic documents (at least one function) carrying the label",
    ("passages", False): "share of passages carrying the label",
    ("passages", True): "share of diplomatic passages (at least one function) carrying the label",
    ("intensity", False): "mean share of a document's passages carrying the label",
    ("intensity", True): "mean share of a diplomatic document's diplomatic passages carrying the label",
}
#: What the CA table's cells count, per unit.
TABLE_UNIT_LABELS = {"documents": "documents carrying the label",
                     "passages": "passages carrying the label",
                     "intensity": "sum over documents of the share of their passages carrying the label"}


def check_unit(unit: str) -> str:
    if unit not in UNITS:
        raise WorkspaceError(f"unit must be one of {', '.join(UNITS)}, not {unit!r}")
    return unit


@dataclass(frozen=True)
class UnitMatrix:
    """One row per counted document: ``side`` (0 = side A, 1 = side B), ``counts`` (documents x labels, the
    numerators), ``weights`` (the denominators: 1 per document, or its passages counted for the passages unit),
    ``passages`` (its passages counted: all, or its diplomatic ones). Shares are ratio estimates
    ``sum(counts) / sum(weights)`` per side."""

    unit: str
    axis: str
    labels: tuple[str, ...]
    sides: tuple[str, str]
    diplomatic_only: bool
    doc_ids: np.ndarray
    side: np.ndarray
    counts: np.ndarray
    weights: np.ndarray
    passages: np.ndarray

    @property
    def unit_label(self) -> str:
        return UNIT_LABELS[(self.unit, self.diplomatic_only)]

    def documents(self) -> dict[str, int]:
        """Documents counted per side."""
        return {name: int((self.side == k).sum()) for k, name in enumerate(self.sides)}

    def n(self) -> dict[str, int]:
        """Units counted per side: documents, or passages for the passages unit."""
        if self.unit == "passages":
            return {name: int(self.weights[self.side == k].sum()) for k, name in enumerate(self.sides)}
        return self.documents()

    def shares(self) -> pd.DataFrame:
        """Each side's share per label (labels x sides), in [0, 1]; NaN for a side with no unit."""
        out = {}
        for k, name in enumerate(self.sides):
            mask = self.side == k
            total = self.weights[mask].sum()
            out[name] = self.counts[mask].sum(0) / total if total > 0 else np.full(len(self.labels), np.nan)
        frame = pd.DataFrame(out, index=pd.Index(self.labels, name=self.axis))
        frame.columns.name = "side"
        return frame


class Reads:
    """The raw per-document reads of one workspace, each run once and kept: :func:`unit_matrices` and
    :func:`unit_table` share them within one analysis (``build_diagram`` reads the passages and their labels once
    for the biplot and both readings). Valid while the workspace does not change: make one per analysis."""

    def __init__(self, ws: Workspace):
        self.ws = ws
        self._memo: dict[tuple, object] = {}

    def _once(self, key: tuple, read):
        if key not in self._memo:
            self._memo[key] = read()
        return self._memo[key]

    def documents(self, model: str, filters: Filters | None = None) -> pd.DataFrame:
        """:func:`~nlp.analysis.sides.classified_documents`: the metadata of ``model``'s classified documents."""
        where, params = (filters or Filters()).sql()
        return self._once(("documents", model, where, tuple(params)),
                          lambda: classified_documents(self.ws, model, filters))

    def passages(self) -> np.ndarray:
        """(doc_id, passages) rows sorted by doc_id, over the passages index."""
        return self._once(("passages",), lambda: np.array(
            self.ws.conn.execute("SELECT doc_id, count(*) FROM passages GROUP BY doc_id ORDER BY doc_id").fetchall(),
            dtype=np.int64).reshape(-1, 2))

    def passages_of(self, doc_ids: np.ndarray) -> np.ndarray:
        rows = self.passages()
        return _lookup(doc_ids, rows[:, 0], rows[:, 1])

    def document_labels(self, model: str, axis: str) -> list[tuple]:
        return self._once(("document_labels", model, axis), lambda: _document_labels(self.ws, model, axis))

    def passage_label_counts(self, model: str, labels, diplomatic) -> list[tuple]:
        key = ("passage_label_counts", model, tuple(labels), tuple(diplomatic) if diplomatic is not None else None)
        return self._once(key, lambda: _passage_label_counts(self.ws, model, labels, diplomatic))

    def diplomatic_passages(self, model: str, functions) -> np.ndarray:
        return self._once(("diplomatic_passages", model, tuple(functions)),
                          lambda: _diplomatic_passages(self.ws, model, functions))


def _lookup(doc_ids: np.ndarray, keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` at ``keys`` for each of ``doc_ids`` (0 where absent); ``keys`` sorted."""
    out = np.zeros(len(doc_ids), dtype=np.int64)
    if len(keys) == 0 or len(doc_ids) == 0:
        return out
    pos = np.searchsorted(keys, doc_ids)
    pos_c = np.minimum(pos, len(keys) - 1)
    hit = keys[pos_c] == doc_ids
    out[hit] = values[pos_c[hit]]
    return out


def _rows_of(doc_ids: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Row of each key in ``doc_ids`` (sorted), -1 where the key is not there."""
    if len(doc_ids) == 0:
        return np.full(len(keys), -1, dtype=np.int64)
    pos = np.minimum(np.searchsorted(doc_ids, keys), len(doc_ids) - 1)
    return np.where(doc_ids[pos] == keys, pos, -1)


def _label_index(labels: tuple[str, ...] | list[str], values) -> np.ndarray:
    index = {label: j for j, label in enumerate(labels)}
    return np.fromiter((index.get(v, -1) for v in values), dtype=np.int64, count=len(values))


def _fill(doc_ids: np.ndarray, labels, rows: list[tuple], dtype=np.float64) -> np.ndarray:
    """A documents x labels matrix from (doc_id, label, value) rows; rows of other documents are skipped."""
    out = np.zeros((len(doc_ids), len(labels)), dtype=dtype)
    if not rows:
        return out
    keys = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    cols = _label_index(labels, [r[1] for r in rows])
    vals = np.fromiter((r[2] for r in rows), dtype=np.float64, count=len(rows))
    at = _rows_of(doc_ids, keys)
    ok = (at >= 0) & (cols >= 0)
    np.add.at(out, (at[ok], cols[ok]), vals[ok])
    return out


def _document_labels(ws: Workspace, model: str, axis: str) -> list[tuple]:
    """(doc_id, label, 1) for every label ``model`` selected on ``axis`` (the covering predictions index)."""
    return ws.conn.execute("SELECT doc_id, label, 1 FROM predictions WHERE model = ? AND selected = 1 AND axis = ?",
                           (model, axis)).fetchall()


def _passage_label_counts(ws: Workspace, model: str, labels, diplomatic: list[str] | None) -> list[tuple]:
    """(doc_id, label, passages of the document carrying it), only diplomatic passages when ``diplomatic``
    (the function labels) is given."""
    sql = (f"SELECT ps.doc_id, pl.label, count(*) FROM passage_labels pl "
           f"JOIN passages ps ON ps.passage_id = pl.passage_id "
           f"WHERE pl.model = ? AND pl.label IN ({', '.join('?' * len(labels))})")
    params: list = [model, *labels]
    if diplomatic is not None:
        sql += (f" AND EXISTS (SELECT 1 FROM passage_labels f WHERE f.model = pl.model AND "
                f"f.passage_id = pl.passage_id AND f.label IN ({', '.join('?' * len(diplomatic))}))")
        params += list(diplomatic)
    return ws.conn.execute(sql + " GROUP BY ps.doc_id, pl.label", params).fetchall()


def _diplomatic_passages(ws: Workspace, model: str, functions: list[str]) -> np.ndarray:
    """(doc_id, passages carrying at least one function) rows, sorted by doc_id."""
    rows = ws.conn.execute(
        f"SELECT ps.doc_id, count(DISTINCT pl.passage_id) FROM passage_labels pl "
        f"JOIN passages ps ON ps.passage_id = pl.passage_id WHERE pl.model = ? "
        f"AND pl.label IN ({', '.join('?' * len(functions))}) GROUP BY ps.doc_id ORDER BY ps.doc_id",
        [model, *functions]).fetchall()
    return np.array(rows, dtype=np.int64).reshape(-1, 2)


def unit_matrix(ws: Workspace, model: str, axis: str = "functions", comparison: Comparison | None = None,
                filters: Filters | None = None, unit: str = DEFAULT_UNIT, diplomatic_only: bool = True) -> UnitMatrix:
    """Every classified document of ``model`` on a side of ``comparison`` (under ``filters``), with its numerators
    per label of ``axis`` and its denominator in ``unit`` (see the module docstring). Documents that count for
    nothing are left out: with ``diplomatic_only``, those with no diplomatic unit; for intensity, those with no
    passage."""
    return unit_matrices(ws, model, axis, comparison, filters, unit, (bool(diplomatic_only),))[bool(diplomatic_only)]


def unit_matrices(ws: Workspace, model: str, axis: str = "functions", comparison: Comparison | None = None,
                  filters: Filters | None = None, unit: str = DEFAULT_UNIT,
                  readings: tuple[bool, ...] = (True, False), reads: Reads | None = None) -> dict[bool, UnitMatrix]:
    """:func:`unit_matrix` for each ``diplomatic_only`` in ``readings`` (both by default), from one pass of reads:
    the diagram shows the diplomatic reading and writes the other beside it."""
    check_unit(unit)
    reads = reads or Reads(ws)
    comparison = comparison or Comparison.default()
    labels = tuple(_axis_labels(ws, model, axis))
    functions = _axis_labels(ws, model, DIPLOMATIC_AXIS) if any(readings) else None
    # on the functions axis every passage (document) carrying a label is diplomatic: no separate read for that
    on_functions = axis == DIPLOMATIC_AXIS
    doc_ids, side = side_documents(ws, model, comparison, filters, reads=reads)
    all_passages = reads.passages_of(doc_ids)
    out = {}
    if unit == "documents":
        counts = _fill(doc_ids, labels, reads.document_labels(model, axis))
        for dip in readings:
            keep = np.ones(len(doc_ids), dtype=bool)
            if dip:
                if on_functions:
                    keep = counts.any(axis=1)
                else:
                    tagged = np.unique(np.fromiter((r[0] for r in reads.document_labels(model, DIPLOMATIC_AXIS)),
                                                   dtype=np.int64))
                    keep = np.isin(doc_ids, tagged)
            out[dip] = UnitMatrix(unit, axis, labels, comparison.names, dip, doc_ids[keep], side[keep], counts[keep],
                                  np.ones(int(keep.sum())), all_passages[keep])
        return out
    carried = {}
    if False in readings or on_functions:
        carried[False] = _fill(doc_ids, labels, reads.passage_label_counts(model, labels, None))
    if True in readings:
        carried[True] = carried[False] if on_functions else \
            _fill(doc_ids, labels, reads.passage_label_counts(model, labels, functions))
        dip_rows = reads.diplomatic_passages(model, functions)
        dip_passages = _lookup(doc_ids, dip_rows[:, 0], dip_rows[:, 1])
    for dip in readings:
        counts, passages = carried[dip], dip_passages if dip else all_passages
        keep = passages > 0
        if unit == "passages":
            weights = passages.astype(np.float64)
        else:
            counts = counts / np.maximum(passages, 1)[:, None]
            weights = np.ones(len(doc_ids))
        out[dip] = UnitMatrix(unit, axis, labels, comparison.names, dip, doc_ids[keep], side[keep], counts[keep],
                              weights[keep], passages[keep])
    return out


def unit_table(ws: Workspace, model: str, *, axis: str = "functions", by: str = "source", unit: str = "documents",
               filters: Filters | None = None, reads: Reads | None = None) -> pd.DataFrame:
    """The CA contingency table (labels x groups of ``by``) in ``unit``: documents or passages carrying each label
    (:func:`~nlp.analysis.tables.label_table`), or for ``intensity`` the sum over each group's documents of the
    share of their passages carrying the label (a document adds at most 1 to a cell, whatever its length)."""
    check_unit(unit)
    filters = filters or Filters()
    if unit != "intensity":
        return label_table(ws, model, axis=axis, by=by, unit=unit, filters=filters)
    labels = _axis_labels(ws, model, axis)
    _group_column(by)  # checks the grouping
    reads = reads or Reads(ws)
    frame = reads.documents(model, filters)
    doc_ids = frame["doc_id"].to_numpy()
    groups_of = (frame["date"].str[:4] if by == "year" else frame[by]).to_numpy(dtype=object)
    groups = sorted(set(groups_of.tolist()))
    passages = reads.passages_of(doc_ids)
    counts = _fill(doc_ids, labels, reads.passage_label_counts(model, labels, None))
    intensity = counts / np.maximum(passages, 1)[:, None]
    position = {name: j for j, name in enumerate(groups)}
    g = np.fromiter((position[v] for v in groups_of), dtype=np.int64, count=len(groups_of))
    out = np.zeros((len(groups), len(labels)))
    np.add.at(out, g, intensity)
    return pd.DataFrame(out.T, index=pd.Index(labels, name=axis), columns=pd.Index(groups, name=by))
