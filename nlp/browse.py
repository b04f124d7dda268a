"""Reading the workspace a page at a time: document lists under filters, a label and a full-text query, and the
values a filter can take. Bounded queries only (LIMIT), so pages stay fast on large workspaces."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

import pandas as pd

from .analysis.tables import FILTER_FIELDS, Filters
from .workspace import Workspace, WorkspaceError, check_query, search_error

#: Columns of the document table, in order (a search adds ``relevance`` first).
DOCUMENT_COLUMNS = ("id", "date", "source", "issuer", "issuer_type", "country", "city", "title", "labels")
#: Orders of a searched document list: by relevance (FTS5 BM25, best first) or by date (newest first).
SORTS = ("relevance", "date")


def filter_values(ws: Workspace, name: str, limit: int = 500) -> list[str]:
    """The most frequent values of a filter field (``year`` included), most frequent first."""
    if name not in FILTER_FIELDS:
        raise WorkspaceError(f"cannot filter on {name!r}; filter fields are {', '.join(FILTER_FIELDS)}")
    column = "substr(date, 1, 4)" if name == "year" else name
    rows = ws.conn.execute(f"SELECT {column} AS v, count(*) AS n FROM documents WHERE {column} != '' "
                           "GROUP BY v ORDER BY n DESC, v LIMIT ?", (limit,)).fetchall()
    return [r[0] for r in rows]


def date_range(ws: Workspace) -> tuple[str, str] | None:
    row = ws.conn.execute("SELECT min(date), max(date) FROM documents WHERE date != ''").fetchone()
    return (row[0], row[1]) if row and row[0] else None


def document_table(ws: Workspace, model: str | None, *, filters: Filters | None = None, label: str | None = None,
                   query: str | None = None, sort: str = "relevance", limit: int = 200) -> pd.DataFrame:
    """Documents matching the filters, with the labels ``model`` gave them (comma-separated).

    ``label`` keeps documents carrying that label; ``query`` is an FTS5 full-text query (a malformed one raises
    WorkspaceError with the reason, never a traceback from SQLite); without one, ``filters.search`` is the query.
    Searched documents come best first by relevance, FTS5's BM25 (more matches of rarer terms in a shorter text
    rank higher), shown as a ``relevance`` column (-bm25: higher is better); ``sort="date"`` lists them newest
    first instead. Without a query the list is newest first, as it always was."""
    if sort not in SORTS:
        raise WorkspaceError(f"sort must be one of {', '.join(SORTS)}, not {sort!r}")
    filters = filters or Filters()
    query = (query.strip() if query else "") or filters.query
    where, params = replace(filters, search=None).sql()  # the query is joined below, once, for its BM25 score
    joins, args = [], []  # args: the joins' parameters, which come before the WHERE clause's
    score, order = "", "d.date DESC, d.doc_id"
    if query:
        check_query(query)
        # FTS5's auxiliary functions (bm25) need the full-text table to drive the query: it comes first
        joins.append("FROM documents_fts JOIN documents d ON d.doc_id = documents_fts.rowid")
        score = ", -bm25(documents_fts) AS relevance"
        where, params = f"documents_fts MATCH ? AND {where}", [query, *params]
        if sort == "relevance":
            order = "relevance DESC, d.date DESC, d.doc_id"
    else:
        joins.append("FROM documents d")
    if label:
        if model is None:
            raise WorkspaceError("filtering by label needs a model that has classified the workspace")
        joins.append("JOIN predictions pl ON pl.doc_id = d.doc_id AND pl.model = ? AND pl.label = ? "
                     "AND pl.selected = 1")
        args.extend([model, label])
    sql = (f"SELECT d.doc_id, d.id, d.date, d.source, d.issuer, d.issuer_type, d.country, d.city, d.title{score} "
           f"{' '.join(joins)} WHERE {where} ORDER BY {order} LIMIT ?")
    try:
        docs = pd.read_sql_query(sql, ws.conn, params=[*args, *params, int(limit)])
    except (sqlite3.OperationalError, pd.errors.DatabaseError) as exc:
        raise search_error(query, exc) from None
    docs["labels"] = ""
    if model is not None and not docs.empty:
        ids = docs["doc_id"].tolist()
        tags = pd.read_sql_query(
            f"SELECT doc_id, label FROM predictions WHERE model = ? AND selected = 1 "
            f"AND doc_id IN ({', '.join('?' * len(ids))})", ws.conn, params=[model, *ids])
        joined = tags.groupby("doc_id")["label"].agg(", ".join)
        docs["labels"] = docs["doc_id"].map(joined).fillna("")
    return docs[(["relevance"] if query else []) + list(DOCUMENT_COLUMNS)]


def count_documents(ws: Workspace, filters: Filters | None = None) -> int:
    """Documents matching the filters (their full-text search included; a malformed one raises WorkspaceError)."""
    filters = filters or Filters()
    where, params = filters.sql()
    try:
        return ws.conn.execute(f"SELECT count(*) FROM documents d WHERE {where}", params).fetchone()[0]
    except sqlite3.OperationalError as exc:
        if filters.query is None:
            raise
        raise search_error(filters.query, exc) from None
