"""The two sides a convergence reading compares, stated as data: which documents are "city" and which "state".

A reading that says "city-led" means nothing until it says what the cities' documents were; so a comparison is
a pair of named :class:`Side` definitions over document metadata, and :func:`describe` reports what each side
holds in the workspace (sources and their sizes, documents, passages, diplomatic documents, dates). Every view,
export and report of the convergence names this description.

A side keeps a document when, for every field it names, the document's value is one of the listed values (values
OR'ed within a field, fields AND'ed). The two sides must not share a document: that is checked against the
workspace at analysis time. Sides select rows of one read of the classified documents' metadata
(:func:`classified_documents`), so no side value ever becomes SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import pandas as pd

from ..workspace import Workspace, WorkspaceError

#: Metadata a side can select on (documents columns).
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


#: The metadata of a classified document that sides, groups and descriptions read (:func:`classified_documents`).
DOCUMENT_COLUMNS = ("source", "issuer", "issuer_type", "country", "city", "date")


def classified_documents(ws: Workspace, model: str, filters=None) -> pd.DataFrame:
    """``model``'s classified documents under ``filters``: ``doc_id`` (sorted) and :data:`DOCUMENT_COLUMNS`, in one
    read. Why one: each read of these columns looks up every document's row, and a row holds its whole text, so
    the sides, their description and the groups of the map are computed from this frame rather than read again
    (at 100,000 documents each read took ~0.2-0.3 s)."""
    from .tables import Filters

    where, params = (filters or Filters()).sql()
    rows = ws.conn.execute(
        f"SELECT d.doc_id, {', '.join('d.' + c for c in DOCUMENT_COLUMNS)} FROM classified c "
        f"JOIN documents d ON d.doc_id = c.doc_id WHERE c.model = ? AND {where} ORDER BY d.doc_id",
        [model, *params]).fetchall()
    frame = pd.DataFrame.from_records(rows, columns=["doc_id", *DOCUMENT_COLUMNS])
    frame["doc_id"] = frame["doc_id"].astype("int64")
    for column in DOCUMENT_COLUMNS:
        frame[column] = frame[column].fillna("").astype(str)
    return frame


def _on_side(frame: pd.DataFrame, side: Side):
    """Which rows of a :func:`classified_documents` frame fall on ``side`` (every condition holds), as SQL's
    ``field IN (...)`` would say."""
    import numpy as np

    mask = np.ones(len(frame), dtype=bool)
    for key, values in side.where.items():
        if key not in SIDE_FIELDS:
            raise SideError("side-field", f"cannot select on {key!r}")
        mask &= frame[key].isin(list(values)).to_numpy()
    return mask


def _frame(ws: Workspace, model: str, filters, reads):
    return reads.documents(model, filters) if reads is not None else classified_documents(ws, model, filters)


def side_documents(ws: Workspace, model: str, comparison: Comparison, filters=None, reads=None):
    """The classified documents on each side: ``(doc_ids, side)`` as numpy arrays sorted by doc_id (side 0 for
    A, 1 for B). A document on both sides is an error (:class:`SideError` ``side-overlap``, with the count).
    ``reads`` (:class:`~nlp.analysis.units.Reads`) shares one read of the documents within an analysis."""
    import numpy as np

    frame = _frame(ws, model, filters, reads)
    in_a, in_b = (_on_side(frame, s) for s in comparison.sides)
    both = int((in_a & in_b).sum())
    if both:
        a, b = comparison.names
        raise SideError("side-overlap", f"{both:,} document(s) fall on both sides {a!r} and {b!r}; make the side "
                                        "definitions exclusive")
    keep = in_a | in_b
    return frame["doc_id"].to_numpy()[keep], np.where(in_a[keep], 0, 1).astype(np.int8)


def describe(ws: Workspace, model: str, comparison: Comparison | None = None, filters=None,
             reads=None) -> pd.DataFrame:
    """What each side holds among ``model``'s classified documents (under ``filters``), one row per side:
    ``definition``, ``sources`` ("name documents; ..." largest first), ``documents``, ``passages``,
    ``diplomatic_documents`` (at least one function tagged), ``dated_from``, ``dated_to``, ``undated``.

    Why: a reading is only as meaningful as the two sets it compares; this is the table every view prints
    beside it. ``reads`` shares the analysis' reads (documents, passages, labels)."""
    import numpy as np

    from .units import Reads

    comparison = comparison or Comparison.default()
    reads = reads or Reads(ws)
    frame = reads.documents(model, filters)
    doc_ids = frame["doc_id"].to_numpy()
    passages = reads.passages_of(doc_ids)
    tagged = np.unique(np.fromiter((r[0] for r in reads.document_labels(model, DIPLOMATIC_AXIS)), dtype=np.int64))
    diplomatic = np.isin(doc_ids, tagged)
    out = []
    for side in comparison.sides:
        mask = _on_side(frame, side)
        dates = frame["date"].to_numpy()[mask]
        dated = dates[dates != ""]
        counts = frame.loc[mask, "source"].value_counts()
        sources = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        out.append({"side": side.name, "definition": side.definition,
                    "sources": "; ".join(f"{s} {n:,}" for s, n in sources),
                    "documents": int(mask.sum()), "passages": int(passages[mask].sum()),
                    "diplomatic_documents": int(diplomatic[mask].sum()),
                    "dated_from": str(dated.min()) if len(dated) else "",
                    "dated_to": str(dated.max()) if len(dated) else "", "undated": int(len(dates) - len(dated))})
    return pd.DataFrame(out).set_index("side")
