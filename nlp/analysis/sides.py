"""The two sides a convergence reading compares, stated as data: which documents are "city" and which "state".

A reading that says "city-led" means nothing until it says what the cities' documents were; so a comparison is
a pair of named :class:`Side` definitions over document metadata, and :func:`describe` reports what each side
holds in the workspace (sources and their sizes, documents, passages, diplomatic documents, dates). Every view,
export and report of the convergence names this description.

A side keeps a document when, for every field it names, the document's value is one of the listed values (values
OR'ed within a field, fields AND'ed). The two sides must not share a document: that is checked against the
workspace at analysis time (:func:`side_sql` is the one place where a side becomes SQL, with parameters).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import pandas as pd

from ..workspace import Workspace, WorkspaceError

#: Metadata a side can select on (documents columns; never user text put into SQL).
SIDE_FIELDS = ("source", "issuer", "issuer_type", "country", "city")
#: The label axis whose labels make a document or a passage diplomatic.
DIPLOMATIC_AXIS = "functions"


class SideError(WorkspaceError):
    """A bad comparison: the message starts with a short code (``side-spec``, ``side-field``, ``side-name``,
    ``side-overlap``, ``side-empty``) and fits on one line, so the CLI prints it as is."""

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(f"{code}: {message}")


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a name (used in column names and readings) and its metadata conditions."""

    name: str
    where: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def __post_init__(self):
        name = str(self.name).strip()
        if not name or not all(ch.isalnum() or ch in "_-" for ch in name):
            raise SideError("side-name", f"side name {self.name!r} must be letters, digits, _ or - (it names columns)")
        if not self.where:
            raise SideError("side-spec", f"side {name!r} selects no field; give FIELD=VALUE, e.g. issuer_type=city")
        clean = {}
        for key, values in self.where.items():
            if key not in SIDE_FIELDS:
                raise SideError("side-field", f"side {name!r}: cannot select on {key!r}; fields are "
                                              f"{', '.join(SIDE_FIELDS)}")
            values = [values] if isinstance(values, str) else list(values)
            values = [str(v).strip() for v in values if str(v).strip()]
            if not values:
                raise SideError("side-spec", f"side {name!r}: field {key!r} has no value")
            clean[key] = tuple(dict.fromkeys(values))
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "where", clean)

    @property
    def definition(self) -> str:
        """In words, e.g. ``issuer_type = city`` or ``source in (a, b) and country = US``."""
        parts = []
        for key, values in self.where.items():
            parts.append(f"{key} = {values[0]}" if len(values) == 1 else f"{key} in ({', '.join(values)})")
        return " and ".join(parts)

    @property
    def spec(self) -> str:
        """The CLI form, ``NAME:FIELD=V1,V2;FIELD=V`` (what :meth:`Comparison.parse` reads)."""
        def escaped(value: str) -> str:
            return value.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;")

        return f"{self.name}:" + ";".join(f"{k}={','.join(map(escaped, v))}" for k, v in self.where.items())


@dataclass(frozen=True)
class Comparison:
    """Two sides, compared as A against B (differences are A - B; readings say "{A}-led" or "{B}-led")."""

    sides: tuple[Side, Side]

    def __post_init__(self):
        sides = tuple(self.sides)
        if len(sides) != 2:
            raise SideError("side-spec", f"a comparison has exactly two sides, not {len(sides)}")
        if sides[0].name == sides[1].name:
            raise SideError("side-name", f"both sides are named {sides[0].name!r}; give them different names")
        if sides[0].where == sides[1].where:
            raise SideError("side-overlap", f"sides {sides[0].name!r} and {sides[1].name!r} select the same "
                                            "documents")
        object.__setattr__(self, "sides", sides)

    @classmethod
    def default(cls) -> "Comparison":
        """City documents against national ones, in Amiri's terms: city-led or state-led."""
        return cls((Side("city", {"issuer_type": ["city"]}), Side("state", {"issuer_type": ["national"]})))

    @classmethod
    def parse(cls, specs: Iterable[str] | None) -> "Comparison":
        """From two ``NAME:FIELD=V1,V2[;FIELD=V]`` strings; none at all is :meth:`default`."""
        specs = list(specs or [])
        if not specs:
            return cls.default()
        if len(specs) != 2:
            raise SideError("side-spec", f"give --side exactly twice (side A, then side B), not {len(specs)} time(s)")
        return cls(tuple(parse_side(s) for s in specs))

    @property
    def names(self) -> tuple[str, str]:
        return self.sides[0].name, self.sides[1].name


def _split(text: str, sep: str) -> list[str]:
    """``text`` split at ``sep`` except where it is escaped with a backslash (``\\,`` keeps a comma in a value:
    source names such as "UN General Debate Corpus (Jankin, Baturo, Dasandi)" have them)."""
    parts, current, chars = [], [], iter(text)
    for ch in chars:
        if ch == "\\":
            current.append(next(chars, "\\"))
        elif ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def parse_side(spec: str) -> Side:
    """``NAME:FIELD=V1,V2[;FIELD=V]`` -> :class:`Side` (a repeated field adds values; ``\\,`` and ``\\;`` put a
    comma or a semicolon into a value)."""
    name, sep, rest = str(spec).partition(":")
    if not sep or not name.strip() or not rest.strip():
        raise SideError("side-spec", f"side {spec!r} is not NAME:FIELD=V1,V2[;FIELD=V] "
                                     "(e.g. city:issuer_type=city)")
    where: dict[str, list[str]] = {}
    for item in _split(rest.replace("\\,", "\0"), ";"):
        item = item.replace("\0", "\\,")
        if not item.strip():
            continue
        key, eq, values = item.partition("=")
        if not eq or not key.strip():
            raise SideError("side-spec", f"side {spec!r}: {item!r} is not FIELD=V1,V2")
        where.setdefault(key.strip(), []).extend(_split(values, ","))
    return Side(name.strip(), where)


def side_sql(side: Side, alias: str = "d") -> tuple[str, list[str]]:
    """A SQL condition on ``documents`` (as ``alias``) and its parameters; field names come from
    :data:`SIDE_FIELDS` only."""
    if not alias.isidentifier():
        raise ValueError(f"bad table alias {alias!r}")
    clauses, params = [], []
    for key, values in side.where.items():
        if key not in SIDE_FIELDS:  # Side checks this already; SQL text is built from the allow-list only
            raise SideError("side-field", f"cannot select on {key!r}")
        clauses.append(f"{alias}.{key} IN ({', '.join('?' * len(values))})")
        params.extend(values)
    return "(" + " AND ".join(clauses) + ")", params


def _side_documents_sql(comparison: Comparison, model: str, filters) -> tuple[str, list]:
    """``SELECT doc_id, in_a, in_b`` over the classified documents of ``model`` that fall on at least one side and
    pass ``filters``."""
    (a_sql, a_params), (b_sql, b_params) = (side_sql(s) for s in comparison.sides)
    where, f_params = filters.sql()
    sql = (f"SELECT d.doc_id AS doc_id, {a_sql} AS in_a, {b_sql} AS in_b FROM classified c "
           f"JOIN documents d ON d.doc_id = c.doc_id WHERE c.model = ? AND ({a_sql} OR {b_sql}) AND {where} "
           f"ORDER BY d.doc_id")
    return sql, [*a_params, *b_params, model, *a_params, *b_params, *f_params]


def side_documents(ws: Workspace, model: str, comparison: Comparison, filters=None):
    """The classified documents on each side: ``(doc_ids, side)`` as numpy arrays sorted by doc_id (side 0 for
    A, 1 for B). A document on both sides is an error (:class:`SideError` ``side-overlap``, with the count)."""
    import numpy as np

    from .tables import Filters

    sql, params = _side_documents_sql(comparison, model, filters or Filters())
    rows = ws.conn.execute(sql, params).fetchall()
    arr = np.array([(r[0], r[1], r[2]) for r in rows], dtype=np.int64).reshape(-1, 3)
    both = int((arr[:, 1].astype(bool) & arr[:, 2].astype(bool)).sum())
    if both:
        a, b = comparison.names
        raise SideError("side-overlap", f"{both:,} document(s) fall on both sides {a!r} and {b!r}; make the side "
                                        "definitions exclusive")
    return arr[:, 0], np.where(arr[:, 1].astype(bool), 0, 1).astype(np.int8)


def describe(ws: Workspace, model: str, comparison: Comparison | None = None, filters=None) -> pd.DataFrame:
    """What each side holds among ``model``'s classified documents (under ``filters``), one row per side:
    ``definition``, ``sources`` ("name documents; ..." largest first), ``documents``, ``passages``,
    ``diplomatic_documents`` (at least one function tagged), ``dated_from``, ``dated_to``, ``undated``.

    Why: a reading is only as meaningful as the two sets it compares; this is the table every view prints
    beside it."""
    from .tables import Filters

    comparison = comparison or Comparison.default()
    filters = filters or Filters()
    where, f_params = filters.sql()
    out = []
    for side in comparison.sides:
        s_sql, s_params = side_sql(side)
        base = (f"FROM classified c JOIN documents d ON d.doc_id = c.doc_id "
                f"WHERE c.model = ? AND {s_sql} AND {where}")
        params = [model, *s_params, *f_params]
        docs, dated_from, dated_to, undated = ws.conn.execute(
            f"SELECT count(*), min(nullif(d.date, '')), max(nullif(d.date, '')), sum(d.date = '') {base}",
            params).fetchone()
        sources = ws.conn.execute(f"SELECT d.source, count(*) AS n {base} GROUP BY d.source ORDER BY n DESC, "
                                  f"d.source", params).fetchall()
        passages = ws.conn.execute(f"SELECT count(*) FROM passages ps WHERE ps.doc_id IN (SELECT d.doc_id {base})",
                                   params).fetchone()[0]
        diplomatic = ws.conn.execute(
            # a list subquery, built once: a correlated EXISTS walks the selected-labels index per document
            f"SELECT count(*) {base} AND d.doc_id IN (SELECT p.doc_id FROM predictions p WHERE p.model = ? "
            f"AND p.selected = 1 AND p.axis = ?)", [*params, model, DIPLOMATIC_AXIS]).fetchone()[0]
        out.append({"side": side.name, "definition": side.definition,
                    "sources": "; ".join(f"{s} {n:,}" for s, n in sources),
                    "documents": int(docs), "passages": int(passages), "diplomatic_documents": int(diplomatic),
                    "dated_from": dated_from or "", "dated_to": dated_to or "", "undated": int(undated or 0)})
    return pd.DataFrame(out).set_index("side")
