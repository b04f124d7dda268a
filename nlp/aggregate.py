"""Contingency tables from workspace predictions: labels x document groups, and label x label co-occurrence.

Functions here only read; they return pandas DataFrames with named axes (rows: labels in codebook order;
columns: groups, sorted). Filters are parameterised SQL; the only names put into SQL text come from allow-lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import pandas as pd

from .schema import METADATA_FIELDS
from .workspace import GROUP_FIELDS, Workspace, WorkspaceError

FILTER_FIELDS = tuple(f for f in METADATA_FIELDS if f not in ("title", "url")) + ("year", "lang")
UNITS = ("documents", "passages")


@dataclass(frozen=True)
class Filters:
    """Which documents count: metadata equal to one of the given values, and an ISO date range (inclusive)."""

    where: Mapping[str, Sequence[str]] = field(default_factory=dict)
    date_from: str | None = None
    date_to: str | None = None

    @classmethod
    def parse(cls, items: Iterable[str] = (), date_from: str | None = None, date_to: str | None = None) -> "Filters":
        """From ``FIELD=VALUE`` strings (repeat a field, or use ``FIELD=A,B``, to allow several values)."""
        where: dict[str, list[str]] = {}
        for item in items:
            name, sep, value = item.partition("=")
            if not sep or not name.strip():
                raise WorkspaceError(f"filter {item!r} is not FIELD=VALUE")
            where.setdefault(name.strip(), []).extend(v.strip() for v in value.split(","))
        return cls(where, date_from, date_to)

    def sql(self, alias: str = "d") -> tuple[str, list[str]]:
        clauses, params = [], []
        for name, values in self.where.items():
            if name not in FILTER_FIELDS:
                raise WorkspaceError(f"cannot filter on {name!r}; filter fields are {', '.join(FILTER_FIELDS)}")
            column = f"substr({alias}.date, 1, 4)" if name == "year" else f"{alias}.{name}"
            values = list(values)
            clauses.append(f"{column} IN ({', '.join('?' * len(values))})")
            params.extend(values)
        # partial dates ("2021-09") compare as prefixes: pad the bounds so that a month or year is included whole
        if self.date_from:
            clauses.append(f"{alias}.date != '' AND {alias}.date >= ?")
            params.append(self.date_from)
        if self.date_to:
            clauses.append(f"{alias}.date != '' AND {alias}.date <= ?")
            params.append(self.date_to + "\uffff")
        return (" AND ".join(clauses) or "1"), params


def _group_column(by: str, alias: str = "d") -> str:
    if by not in GROUP_FIELDS:
        raise WorkspaceError(f"cannot group by {by!r}; choose one of {', '.join(GROUP_FIELDS)}")
    return f"substr({alias}.date, 1, 4)" if by == "year" else f"{alias}.{by}"


def _axis_labels(ws: Workspace, model: str, axis: str) -> list[str]:
    labels = ws._labels(model)
    if axis not in labels:
        raise WorkspaceError(f"model {model} has no axis {axis!r}; its axes are {', '.join(labels)}")
    return labels[axis]


def resolve_model(ws: Workspace, model: str | None) -> str:
    """``NAME@VERSION`` as stored; a bare name picks that name's latest version; None the latest used."""
    known = ws.models()
    if model is None:
        latest = ws.latest_model()
        if latest is None:
            raise WorkspaceError("no document in the workspace is classified yet: run `cdpd run`")
        return latest
    if model in known:
        return model
    matches = [m for m in known if m.split("@")[0] == model]
    if not matches:
        raise WorkspaceError(f"model {model!r} has classified nothing in this workspace; known: {', '.join(known)}")
    return matches[-1]


def label_table(ws: Workspace, model: str, *, axis: str = "functions", by: str = "issuer_type",
                unit: str = "documents", filters: Filters | None = None) -> pd.DataFrame:
    """Counts of documents (or passages) carrying each label of ``axis``, per group of ``by``."""
    if unit not in UNITS:
        raise WorkspaceError(f"unit must be one of {', '.join(UNITS)}, not {unit!r}")
    labels = _axis_labels(ws, model, axis)
    where, params = (filters or Filters()).sql()
    group = _group_column(by)
    if unit == "documents":
        sql = (f"SELECT p.label AS label, {group} AS grp, count(*) AS n FROM predictions p "
               f"JOIN documents d ON d.doc_id = p.doc_id WHERE p.model = ? AND p.axis = ? AND p.selected = 1 "
               f"AND {where} GROUP BY label, grp")
    else:
        sql = (f"SELECT pl.label AS label, {group} AS grp, count(*) AS n FROM passage_labels pl "
               f"JOIN passages ps ON ps.passage_id = pl.passage_id JOIN documents d ON d.doc_id = ps.doc_id "
               f"WHERE pl.model = ? AND pl.label IN ({', '.join('?' * len(labels))}) AND {where} "
               f"GROUP BY label, grp")
    args = [model, axis, *params] if unit == "documents" else [model, *labels, *params]
    counts = pd.read_sql_query(sql, ws.conn, params=args)
    groups = sorted(_groups(ws, model, by, filters or Filters()))
    table = (counts.pivot_table(index="label", columns="grp", values="n", aggfunc="sum", fill_value=0)
             .reindex(index=labels, columns=groups, fill_value=0).astype(int))
    table.index.name = axis
    table.columns.name = by
    return table


def _groups(ws: Workspace, model: str, by: str, filters: Filters) -> list[str]:
    """Every group with at least one classified document, so that groups with no label still show as zeros."""
    where, params = filters.sql()
    rows = ws.conn.execute(
        f"SELECT DISTINCT {_group_column(by)} FROM classified c JOIN documents d ON d.doc_id = c.doc_id "
        f"WHERE c.model = ? AND {where}", [model, *params]).fetchall()
    return [r[0] for r in rows]


def group_totals(ws: Workspace, model: str, *, by: str = "issuer_type", filters: Filters | None = None) -> pd.Series:
    """Classified documents per group: the denominators of label shares."""
    where, params = (filters or Filters()).sql()
    group = _group_column(by)
    df = pd.read_sql_query(
        f"SELECT {group} AS grp, count(*) AS n FROM classified c JOIN documents d ON d.doc_id = c.doc_id "
        f"WHERE c.model = ? AND {where} GROUP BY grp", ws.conn, params=[model, *params])
    series = df.set_index("grp")["n"].sort_index()
    series.index.name = by
    return series


def cooccurrence(ws: Workspace, model: str, *, rows: str = "functions", cols: str = "domains",
                 filters: Filters | None = None) -> pd.DataFrame:
    """Documents carrying both a ``rows`` label and a ``cols`` label (e.g. function x domain)."""
    row_labels, col_labels = _axis_labels(ws, model, rows), _axis_labels(ws, model, cols)
    where, params = (filters or Filters()).sql()

    def selected(axis: str) -> pd.DataFrame:
        # two scans of the covering index, joined in pandas: a self-join in SQL degrades to a quadratic plan
        return pd.read_sql_query(
            "SELECT p.doc_id, p.label FROM predictions p JOIN documents d ON d.doc_id = p.doc_id "
            f"WHERE p.model = ? AND p.selected = 1 AND p.axis = ? AND {where}", ws.conn, params=[model, axis, *params])

    pairs = selected(rows).merge(selected(cols), on="doc_id", suffixes=("_r", "_c"))
    counts = pairs.groupby(["label_r", "label_c"]).size().rename("n").reset_index()
    counts.columns = ["r", "c", "n"]
    table = (counts.pivot_table(index="r", columns="c", values="n", aggfunc="sum", fill_value=0)
             .reindex(index=row_labels, columns=col_labels, fill_value=0).astype(int))
    table.index.name = rows
    table.columns.name = cols
    return table
