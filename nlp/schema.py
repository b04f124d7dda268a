"""The document schema shared by corpora, ingest, the workspace and the CLI."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: Metadata fields every corpus row carries (see ``corpora/SOURCES.md``); anything else goes to ``meta``.
METADATA_FIELDS = ("source", "issuer", "issuer_type", "country", "city", "date", "title", "url")
ISSUER_TYPES = ("city", "national", "other")


@dataclass
class Document:
    id: str
    text: str
    source: str = ""
    issuer: str = ""
    issuer_type: str = ""
    country: str = ""
    city: str = ""
    date: str = ""
    title: str = ""
    url: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any], *, default_id: str = "") -> "Document":
        """Build from a corpus row: known fields map to attributes, the rest to ``meta``; None becomes ''."""
        known = {"id", "text", *METADATA_FIELDS}
        values = {k: ("" if record.get(k) is None else str(record.get(k))) for k in known if k in record}
        meta = {k: v for k, v in record.items() if k not in known and k != "meta" and v is not None}
        if isinstance(record.get("meta"), dict):
            meta.update(record["meta"])
        values.setdefault("id", default_id)
        if not values["id"]:
            values["id"] = default_id
        values.setdefault("text", "")
        return cls(meta=meta, **values)


def text_for_tagging(doc: Document) -> str:
    """Title and body: the annotated units were judged with their titles."""
    if doc.title and not doc.text.startswith(doc.title):
        return f"{doc.title}\n\n{doc.text}"
    return doc.text


@dataclass
class Annotation:
    """An annotated unit: its text and, per codebook axis, the label ids a person gave it."""

    id: str
    text: str
    labels: dict[str, list[str]]  # axis -> label ids
    title: str = ""
    sample: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
