"""Contingency tables from workspace predictions: labels x document groups, and label x label co-occurrence.

Functions here only read; they return pandas DataFrames with named axes (rows: labels in codebook order;
columns: groups, sorted). Filters are parameterised SQL; the only names put into SQL text come from allow-lists.

Document counts are read from the workspace's pre-aggregated ``label_counts`` and ``group_counts`` whenever the
filters allow it (filters on metadata, years, and date bounds given to the month, ``2021`` or ``2021-09``); other
filters (a date, a language, a bound to the day) and passage counts fall back to a scan of the predictions, with
the same results. A full-text search (:attr:`Filters.search`) always scans: the counts know nothing of words.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field, replace
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..schema import METADATA_FIELDS
from ..workspace import COUNT_FIELDS, GROUP_FIELDS, ROLLUPS, Workspace, WorkspaceError, check_query, search_error

FILTER_FIELDS = tuple(f for f in METADATA_FIELDS if f not in ("title", "url")) + ("year", "lang")
UNITS = ("documents", "passages")
#: Trend periods and the length of the ``date`` prefix that names one ("2021", "2021-09").
PERIODS = {"year": 4, "month": 7}
#: What a trend can be split by (besides nothing).
TREND_GROUPS = COUNT_FIELDS


@dataclass(frozen=True)
class Filters:
    """Which documents count: metadata equal to one of the given values, an ISO date range (inclusive) and,
    optionally, an FTS5 full-text query (``search``: only documents matching it count, so that charts and tables
    can follow a search the way the document list does)."""

    where: Mapping[str, Sequence[str]] = field(default_factory=dict)
    date_from: str | None = None
    date_to: str | None = None
    search: str | None = None

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

    def sql(self, alias: str = "d", date_column: str = "date") -> tuple[str, list[str]]:
        """A WHERE clause and its parameters. ``date_column="month"`` reads a counts table (``substr(date, 1, 7)``),
        which answers the same as ``date`` when :attr:`aggregable` holds."""
        if date_column not in ("date", "month") or not alias.isidentifier():
            raise ValueError(f"bad column reference {alias}.{date_column}")
        clauses, params = [], []
        for name, values in self.where.items():
            if name not in FILTER_FIELDS:
                raise WorkspaceError(f"cannot filter on {name!r}; filter fields are {', '.join(FILTER_FIELDS)}")
            if date_column == "month" and name not in (*COUNT_FIELDS, "year"):
                raise WorkspaceError(f"the pre-aggregated counts cannot filter on {name!r}")
            column = f"substr({alias}.{date_column}, 1, 4)" if name == "year" else f"{alias}.{name}"
            values = list(values)
            clauses.append(f"{column} IN ({', '.join('?' * len(values))})")
            params.extend(values)
        # partial dates ("2021-09") compare as prefixes: pad the bounds so that a month or year is included whole
        if self.date_from:
            clauses.append(f"{alias}.{date_column} != '' AND {alias}.{date_column} >= ?")
            params.append(self.date_from)
        if self.date_to:
            clauses.append(f"{alias}.{date_column} != '' AND {alias}.{date_column} <= ?")
            params.append(self.date_to + "\uffff")
        if self.query:
            # the documents table's own rowid: only a scan (alias d on documents) can ask the full-text index
            if date_column != "date":
                raise WorkspaceError("the pre-aggregated counts cannot answer a full-text search")
            check_query(self.query)
            clauses.append(f"{alias}.doc_id IN (SELECT rowid FROM documents_fts WHERE documents_fts MATCH ?)")
            params.append(self.query)
        return (" AND ".join(clauses) or "1"), params

    @property
    def query(self) -> str | None:
        """The full-text query, stripped; None when there is none (a blank search box searches nothing)."""
        return (self.search.strip() or None) if isinstance(self.search, str) else None

    @property
    def aggregable(self) -> bool:
        """Whether the pre-aggregated counts can answer these filters: metadata kept there (source, issuer type,
        issuer, country, city, year) and date bounds no finer than a month. A string compares with a bound of at
        most 7 characters as its first 7 characters do, so such bounds select the same documents by month."""
        return (self.query is None and all(name in (*COUNT_FIELDS, "year") for name in self.where)
                and all(bound is None or len(bound) <= PERIODS["month"] for bound in (self.date_from, self.date_to)))


def _read_sql(sql: str, ws: Workspace, params: Sequence, filters: Filters) -> pd.DataFrame:
    """``pd.read_sql_query``, where a malformed full-text query in ``filters`` becomes a WorkspaceError with
    SQLite's reason (the same message as a search of the document list), never pandas' message quoting our SQL."""
    try:
        return pd.read_sql_query(sql, ws.conn, params=list(params))
    except (sqlite3.OperationalError, pd.errors.DatabaseError) as exc:
        if filters.query is None:
            raise
        raise search_error(filters.query, exc) from None


def _group_column(by: str, alias: str = "d", date_column: str = "date") -> str:
    if by not in GROUP_FIELDS:
        raise WorkspaceError(f"cannot group by {by!r}; choose one of {', '.join(GROUP_FIELDS)}")
    return f"substr({alias}.{date_column}, 1, 4)" if by == "year" else f"{alias}.{by}"


@dataclass(frozen=True)
class _Source:
    """Where document counts come from: the pre-aggregated tables (``alias`` c/g, dates as ``month``) or a scan of
    predictions/classified joined with documents (``alias`` d). Every string is fixed here, never user input."""

    labels_from: str  # FROM ... for label counts, restricted by `labels_where` (model, axis)
    labels_where: str
    totals_from: str  # FROM ... for classified documents, restricted by `totals_where` (model)
    totals_where: str
    count: str  # the aggregate that counts documents
    label: str  # the label column
    labels_alias: str
    totals_alias: str
    date_column: str


_COUNTS = _Source("label_counts c", "c.model = ? AND c.axis = ?", "group_counts g", "g.model = ?",
                  "sum({a}.documents)", "c.label", "c", "g", "month")
#: What every rollup keeps (``labels_by_*``, ``groups_by_*``): enough for trends overall, by source or issuer type.
ROLLUP_FIELDS = ("source", "issuer_type", "year")
#: The rollups by the one further field they keep (None: labels_by_month and groups_by_month).
_ROLLUPS = {field or None: _Source(f"labels_by_{name} c", "c.model = ? AND c.axis = ?", f"groups_by_{name} g",
                                   "g.model = ?", "sum({a}.documents)", "c.label", "c", "g", "month")
            for name, field in ROLLUPS.items()}
_SCAN = _Source("predictions p JOIN documents d ON d.doc_id = p.doc_id",
                "p.model = ? AND p.axis = ? AND p.selected = 1",
                "classified c JOIN documents d ON d.doc_id = c.doc_id", "c.model = ?", "count(*)", "p.label", "d", "d",
                "date")


def _source(filters: Filters, by: str | None = None) -> _Source:
    """The smallest table that answers: a rollup (by month; by country, issuer or city), the full counts, or a
    scan of the predictions (filters on a day, a date or a language)."""
    if not filters.aggregable:
        return _SCAN
    extra = (set(filters.where) | ({by} if by else set())) - set(ROLLUP_FIELDS)
    if not extra:
        return _ROLLUPS[None]
    if len(extra) == 1 and next(iter(extra)) in _ROLLUPS:
        return _ROLLUPS[next(iter(extra))]
    return _COUNTS


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
    filters = filters or Filters()
    if unit == "documents":
        src = _source(filters, by)
        a = src.labels_alias
        where, params = filters.sql(a, src.date_column)
        group = _group_column(by, a, src.date_column)
        sql = (f"SELECT {src.label} AS label, {group} AS grp, {src.count.format(a=a)} AS n FROM {src.labels_from} "
               f"WHERE {src.labels_where} AND {where} GROUP BY label, grp")
    else:
        where, params = filters.sql()
        group = _group_column(by)
        sql = (f"SELECT pl.label AS label, {group} AS grp, count(*) AS n FROM passage_labels pl "
               f"JOIN passages ps ON ps.passage_id = pl.passage_id JOIN documents d ON d.doc_id = ps.doc_id "
               f"WHERE pl.model = ? AND pl.label IN ({', '.join('?' * len(labels))}) AND {where} "
               f"GROUP BY label, grp")
    args = [model, axis, *params] if unit == "documents" else [model, *labels, *params]
    counts = _read_sql(sql, ws, args, filters)
    groups = sorted(_groups(ws, model, by, filters))
    table = (counts.pivot_table(index="label", columns="grp", values="n", aggfunc="sum", fill_value=0)
             .reindex(index=labels, columns=groups, fill_value=0).astype(int))
    table.index.name = axis
    table.columns.name = by
    return table


def _groups(ws: Workspace, model: str, by: str, filters: Filters) -> list[str]:
    """Every group with at least one classified document, so that groups with no label still show as zeros."""
    return list(group_totals(ws, model, by=by, filters=filters).index)


def group_totals(ws: Workspace, model: str, *, by: str = "issuer_type", filters: Filters | None = None) -> pd.Series:
    """Classified documents per group: the denominators of label shares."""
    filters = filters or Filters()
    src = _source(filters, by)
    a = src.totals_alias
    where, params = filters.sql(a, src.date_column)
    group = _group_column(by, a, src.date_column)
    df = _read_sql(
        f"SELECT {group} AS grp, {src.count.format(a=a)} AS n FROM {src.totals_from} "
        f"WHERE {src.totals_where} AND {where} GROUP BY grp", ws, [model, *params], filters)
    series = df.set_index("grp")["n"].astype(int).sort_index()
    series.index.name = by
    return series


def cooccurrence(ws: Workspace, model: str, *, rows: str = "functions", cols: str = "domains",
                 filters: Filters | None = None) -> pd.DataFrame:
    """Documents carrying both a ``rows`` label and a ``cols`` label (e.g. function x domain)."""
    row_labels, col_labels = _axis_labels(ws, model, rows), _axis_labels(ws, model, cols)
    filters = filters or Filters()
    where, params = filters.sql()
    # documents are joined only to filter on their metadata: the unfiltered table reads the covering index alone
    join = "" if where == "1" else " JOIN documents d ON d.doc_id = p.doc_id"

    def selected(axis: str) -> pd.DataFrame:
        # two scans of the covering index, joined in pandas: a self-join in SQL degrades to a quadratic plan
        return _read_sql(
            f"SELECT p.doc_id, p.label FROM predictions p{join} "
            f"WHERE p.model = ? AND p.selected = 1 AND p.axis = ? AND {where}", ws, [model, axis, *params], filters)

    pairs = selected(rows).merge(selected(cols), on="doc_id", suffixes=("_r", "_c"))
    counts = pairs.groupby(["label_r", "label_c"]).size().rename("n").reset_index()
    counts.columns = ["r", "c", "n"]
    table = (counts.pivot_table(index="r", columns="c", values="n", aggfunc="sum", fill_value=0)
             .reindex(index=row_labels, columns=col_labels, fill_value=0).astype(int))
    table.index.name = rows
    table.columns.name = cols
    return table


def trends(ws: Workspace, model: str, *, axis: str = "functions", period: str = "year", by: str | None = None,
           top: int | None = None, filters: Filters | None = None) -> pd.DataFrame:
    """Label shares over time, in long form: columns ``period`` ("2021" or "2021-09"), ``group`` (the value of
    ``by``; only when ``by`` is given), ``label``, ``documents`` (classified documents of that period and group
    carrying the label), ``total`` (classified documents of that period and group) and ``share``
    (documents / total).

    Every label of ``axis`` (codebook order) appears for every period and group with a classified document, zeros
    included; rows are sorted by period, then group. Documents without a date are left out (and, by month, those
    dated to the year only). ``by`` is one of source, issuer_type, issuer, country or city; ``top`` keeps the
    ``top`` groups with the most dated classified documents under the filters (ties by name): a chart compares a handful
    of countries or speakers, while all of them at once (200 countries, or one issuer per UN speech) is a table of
    hundreds of thousands of rows. Read from the pre-aggregated counts unless the filters need a scan (see
    :attr:`Filters.aggregable`).
    """
    if period not in PERIODS:
        raise WorkspaceError(f"period must be one of {', '.join(PERIODS)}, not {period!r}")
    if by is not None and by not in TREND_GROUPS:
        raise WorkspaceError(f"cannot split trends by {by!r}; choose one of {', '.join(TREND_GROUPS)}")
    labels = _axis_labels(ws, model, axis)
    filters = filters or Filters()
    if top is not None:
        if by is None:
            raise WorkspaceError("top needs by: the groups to keep the largest of")
        if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
            raise WorkspaceError(f"top must be a whole number >= 1, not {top!r}")
    src = _source(filters, by)
    size = int(PERIODS[period])
    keys = ["period"] + (["group"] if by else [])

    def query(alias: str, relation: str, restriction: str, value: str, params: list) -> pd.DataFrame:
        where, extra = filters.sql(alias, src.date_column)
        date = f"{alias}.{src.date_column}"
        group = f", {alias}.{by} AS grp" if by else ""
        label = f", {src.label} AS label" if value == "documents" else ""
        sql = (f"SELECT substr({date}, 1, {size}) AS period{group}{label}, {src.count.format(a=alias)} AS {value} "
               f"FROM {relation} WHERE {restriction} AND length({date}) >= {size} AND {where} "
               f"GROUP BY period{', grp' if by else ''}{', label' if label else ''} "
               f"ORDER BY period{', grp' if by else ''}")
        return _read_sql(sql, ws, [*params, *extra], filters).rename(columns={"grp": "group"})

    if top is not None:
        # ranked by the documents the trend counts (dated ones), in SQL, so that only those groups are read
        a = src.totals_alias
        where, extra = filters.sql(a, src.date_column)
        keep = _read_sql(
            f"SELECT {a}.{by} AS grp FROM {src.totals_from} WHERE {src.totals_where} "
            f"AND length({a}.{src.date_column}) >= {size} AND {where} GROUP BY grp "
            f"ORDER BY {src.count.format(a=a)} DESC, grp LIMIT ?", ws, [model, *extra, int(top)], filters)
        keep = keep["grp"].tolist()
        filters = replace(filters, where={**filters.where, by: keep})  # the search, if any, kept
    totals = query(src.totals_alias, src.totals_from, src.totals_where, "total", [model])
    columns = [*keys, "label", "documents", "total", "share"]
    if totals.empty:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c in ("documents", "total") else
                                          "float64" if c == "share" else "object") for c in columns})
    counts = query(src.labels_alias, src.labels_from, src.labels_where, "documents", [model, axis])
    # one row per (period, group) and label: laid out with numpy, the counts dropped into place by row number
    n, width = len(totals), len(labels)
    placed = counts.merge(totals[keys].assign(_row=np.arange(n)), on=keys, how="inner")
    column = placed["label"].map({label: j for j, label in enumerate(labels)})
    placed = placed[column.notna()]
    documents = np.zeros(n * width, dtype=np.int64)
    documents[placed["_row"].to_numpy() * width + column[column.notna()].to_numpy(dtype=np.int64)] = \
        placed["documents"].to_numpy(dtype=np.int64)
    out = pd.DataFrame({k: np.repeat(totals[k].to_numpy(), width) for k in keys})
    out["label"] = np.tile(np.array(labels, dtype=object), n)
    out["documents"] = documents
    out["total"] = np.repeat(totals["total"].to_numpy(dtype=np.int64), width)
    out["share"] = out["documents"] / out["total"]
    return out[columns]


# -- coverage: which documents the trends stand on ---------------------------------------------------------------
#: Why a classified document is missing from a trend: its date is shorter than the period needs.
MISSING = {"date": "no date", "month": "year only (no month)"}


def coverage(ws: Workspace, model: str, period: str = "year", filters: Filters | None = None) -> pd.DataFrame:
    """Classified documents per source (rows, sorted) and period (columns, sorted): the denominators of
    :func:`trends`, split by where the documents come from.

    A share over time is only comparable across periods whose documents come from the same sources: this table
    says which sources each period stands on (its column sums equal ``trends``' totals under the same filters).
    Documents without a date fine enough for ``period`` are left out, as in the trends (see :func:`undated`).
    Read from the pre-aggregated counts unless the filters need a scan."""
    if period not in PERIODS:
        raise WorkspaceError(f"period must be one of {', '.join(PERIODS)}, not {period!r}")
    filters = filters or Filters()
    src = _source(filters, "source")
    a, size = src.totals_alias, int(PERIODS[period])
    where, params = filters.sql(a, src.date_column)
    date = f"{a}.{src.date_column}"
    counts = _read_sql(
        f"SELECT {a}.source AS source, substr({date}, 1, {size}) AS period, {src.count.format(a=a)} AS n "
        f"FROM {src.totals_from} WHERE {src.totals_where} AND length({date}) >= {size} AND {where} "
        f"GROUP BY source, period", ws, [model, *params], filters)
    table = (counts.pivot_table(index="source", columns="period", values="n", aggfunc="sum", fill_value=0)
             .sort_index().sort_index(axis=1).astype(int))
    table.index.name = "source"
    table.columns.name = period
    return table


def undated(ws: Workspace, model: str, period: str = "year", filters: Filters | None = None) -> pd.DataFrame:
    """Classified documents that :func:`trends` and :func:`coverage` leave out for want of a date, per source:
    columns ``source``, ``issuer_type`` (the issuer types among them, comma-separated), ``reason`` (``no date``;
    by month also ``year only (no month)``) and ``documents``; largest first.

    A corpus without dates (e.g. the climate-city contract sections) is invisible in a trend chart; this names it
    so that a page can say what the lines do not count. A date bound in the filters already excludes undated
    documents, and then nothing is missing."""
    if period not in PERIODS:
        raise WorkspaceError(f"period must be one of {', '.join(PERIODS)}, not {period!r}")
    filters = filters or Filters()
    src = _source(filters, "source")
    a, size = src.totals_alias, int(PERIODS[period])
    where, params = filters.sql(a, src.date_column)
    date = f"{a}.{src.date_column}"
    year = int(PERIODS["year"])
    rows = _read_sql(
        f"SELECT {a}.source AS source, {a}.issuer_type AS issuer_type, "
        f"CASE WHEN length({date}) < {year} THEN 'date' ELSE 'month' END AS missing, "
        f"{src.count.format(a=a)} AS documents FROM {src.totals_from} "
        f"WHERE {src.totals_where} AND length({date}) < {size} AND {where} "
        f"GROUP BY source, issuer_type, missing", ws, [model, *params], filters)
    columns = ["source", "issuer_type", "reason", "documents"]
    if rows.empty:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c == "documents" else "object") for c in columns})
    out = (rows.groupby(["source", "missing"], as_index=False)
           .agg(issuer_type=("issuer_type", lambda v: ", ".join(sorted({t for t in v if t}))),
                documents=("documents", "sum")))
    out["reason"] = out["missing"].map(MISSING)
    out["documents"] = out["documents"].astype("int64")
    return out.sort_values(["documents", "source"], ascending=[False, True], ignore_index=True)[columns]


def undated_note(missing: pd.DataFrame) -> str | None:
    """One plain sentence for :func:`undated`'s table (None when nothing is left out), e.g. "11,864 classified
    document(s) are not in the trends: 11,864 have no date (“EU Mission Climate City Contracts ...” 11,864, city)".
    Plain text: a page escapes it before rendering Markdown."""
    if missing is None or missing.empty:
        return None
    parts = []
    for reason, phrase in ((MISSING["date"], "have no date"), (MISSING["month"], "are dated to the year only, "
                                                                                 "not the month")):
        rows = missing[missing["reason"] == reason]
        if rows.empty:
            continue
        named = "; ".join(f"“{r.source or '(no source)'}” {r.documents:,}" + (f", {r.issuer_type}" if r.issuer_type
                                                                              else "")
                          for r in rows.itertuples())
        parts.append(f"{int(rows['documents'].sum()):,} {phrase} ({named})")
    total = int(missing["documents"].sum())
    return f"{total:,} classified document(s) are not in the trends: " + "; ".join(parts)


def composition_changes(table: pd.DataFrame, threshold: float = 0.25, *, max_per_source: int = 6) -> list[str]:
    """Plain-language warnings wherever the mix of sources in :func:`coverage`'s ``table`` changes between
    adjacent periods: a source enters (or returns), leaves (or pauses), or its share of the period's documents
    moves by more than ``threshold`` (0.25: 25 percentage points). Empty when the mix is steady.

    A label's share can jump only because documents start coming from a source that writes differently (long UN
    speeches carry nearly every label; council resolutions few): these say where a chart shows composition rather
    than change. Kept short: one line per period that changes (its sources' events joined); a run of moves of one
    source in the same direction over consecutive periods is one event naming its first and last period; a source
    with more than ``max_per_source`` events (one that comes and goes month by month) gets one summary line, after
    its first entry if it enters. Source names are quoted (“...”): they are data and may hold commas."""
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be between 0 and 1, not {threshold!r}")
    counts = table.loc[:, table.sum(axis=0) > 0].sort_index(axis=1)
    counts = counts.loc[counts.sum(axis=1) > 0]
    periods = [str(p) for p in counts.columns]
    if len(periods) < 2:
        return []
    unit = str(table.columns.name or "period")
    shares = (counts / counts.sum(axis=0)).to_numpy(dtype=float)
    present = counts.to_numpy() > 0
    sources = [str(s) for s in counts.index]
    lines: dict[tuple[int, int], list[str]] = {}  # (first, last) period index -> clauses

    def span(i: int, j: int) -> str:
        return periods[i] if i == j else f"{periods[i]}–{periods[j]}"

    for k, source in enumerate(sources):
        name = f"“{source}”"
        events: list[list] = []  # [kind, first, last]
        for i in range(1, len(periods)):
            was, now = present[k, i - 1], present[k, i]
            if now and not was:
                events.append(["enters", i, i])
            elif was and not now:
                events.append(["leaves", i, i])
            elif now and abs(shares[k, i] - shares[k, i - 1]) > threshold:
                kind = "rises" if shares[k, i] > shares[k, i - 1] else "falls"
                if events and events[-1][0] == kind and events[-1][2] == i - 1:
                    events[-1][2] = i
                else:
                    events.append([kind, i, i])
        if not events:
            continue
        busy = len(events) > max_per_source
        if busy:
            head = events[:1] if events[0][0] == "enters" and not present[k, :events[0][1]].any() else []
            rest = events[len(head):]
            first, last = rest[0][1], rest[-1][2]
            held = shares[k, first - 1:last + 1][present[k, first - 1:last + 1]]
            absent = int((~present[k, first - 1:last + 1]).sum())
            lines.setdefault((first, last), []).append(
                f"{name} comes and goes, or its share moves by over {100 * threshold:.0f} points, {len(rest)} times "
                f"(between {held.min():.0%} and {held.max():.0%} of a {unit}'s documents"
                + (f"; none in {absent} of these {last - first + 2} {unit}s)" if absent else ")"))
            events = head
        for kind, i, j in events:
            p = periods[i]
            if kind == "enters":
                before = {sources[m] for m in range(len(sources)) if present[m, :i].any()}
                returns = source in before
                clause = f"{name} {'returns' if returns else 'enters'} ({shares[k, i]:.0%} of {p}'s documents)"
                if len(before) == 1 and not returns:
                    clause += f" — before {p} every document is from “{next(iter(before))}”"
            elif kind == "leaves":
                final = not present[k, i:].any()
                clause = (f"{name} {'leaves' if final else 'has no documents'} (it had {shares[k, i - 1]:.0%} of "
                          f"{periods[i - 1]}'s documents)")
            else:
                clause = (f"the share of {name} {kind} from {shares[k, i - 1]:.0%} ({periods[i - 1]}) to "
                          f"{shares[k, j]:.0%} ({periods[j]})")
            lines.setdefault((i, j), []).append(clause)
    return [f"{span(i, j)}: " + "; ".join(clauses) for (i, j), clauses in sorted(lines.items())]
