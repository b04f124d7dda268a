"""Workflows that the command line, the app and the Dask backend share, written once.

A workflow here takes an open :class:`~nlp.workspace.Workspace` and plain objects, does one user-visible job, and
returns a report; it prints nothing and knows nothing of argparse or Streamlit. Callers present the report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

from .schema import ISSUER_TYPES, Document
from .workspace import Workspace, WorkspaceError

#: Metadata a person may set on a document before adding it (the fields trends and the diagram group by).
EDITABLE_FIELDS = ("title", "source", "issuer", "issuer_type", "country", "city", "date", "url")
#: Longest value of one metadata field (a title; a url).
MAX_FIELD_CHARS = 2_000
_DATE = re.compile(r"^\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?$")


def check_metadata(values: Mapping[str, Any]) -> dict[str, str]:
    """Metadata typed by a person, cleaned: strings stripped, control characters refused, ``issuer_type`` one of
    :data:`~nlp.schema.ISSUER_TYPES` (or empty), ``date`` ISO (``2024``, ``2024-05`` or ``2024-05-17``) or empty.

    Raises :class:`~nlp.workspace.WorkspaceError` naming the field and what it accepts.
    """
    out: dict[str, str] = {}
    for name, value in values.items():
        if name not in EDITABLE_FIELDS:
            raise WorkspaceError(f"{name!r} is not a document field; fields are {', '.join(EDITABLE_FIELDS)}")
        text = "" if value is None else str(value).strip()
        if len(text) > MAX_FIELD_CHARS:
            raise WorkspaceError(f"{name}: at most {MAX_FIELD_CHARS:,} characters, got {len(text):,}")
        if any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in text):
            raise WorkspaceError(f"{name}: control characters (line breaks, tabs, escapes) are not allowed")
        if name == "issuer_type" and text and text not in ISSUER_TYPES:
            raise WorkspaceError(f"issuer_type must be one of {', '.join(ISSUER_TYPES)} (or empty), not {text!r}")
        if name == "date" and text and not _DATE.match(text):
            raise WorkspaceError(f"date must be ISO: YYYY, YYYY-MM or YYYY-MM-DD, not {text!r}")
        out[name] = text
    return out


@dataclass
class AddReport:
    """What :func:`add_tagged_documents` did: ids added with their tags, and the ids not added with why."""

    added: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def add_tagged_documents(ws: Workspace, items: Sequence[Any], *, model_ref: str, model_name: str,
                         model_version: str, tagger_name: str, labels: dict[str, list[str]],
                         thresholds: dict[str, Any], metadata: Mapping[str, Mapping[str, Any]] | None = None,
                         ) -> AddReport:
    """Add documents tagged in memory (``nlp.pipeline.TaggedDocument``) to the workspace with their tags.

    ``metadata`` maps a document id to fields to set on it first (checked by :func:`check_metadata`), so that a
    document classified in the app reaches the trends and the diagram with its issuer, issuer type and date. A
    document whose id or text is already in the workspace is skipped with the reason; the rest are added and
    their predictions saved in one transaction per document set.
    """
    metadata = metadata or {}
    report = AddReport()
    ws.register_model(model_ref, model_name, model_version, tagger_name, labels)
    for item in items:
        fields = check_metadata(metadata.get(item.doc.id, {}))
        doc: Document = replace(item.doc, **fields) if fields else item.doc
        imported = ws.add_documents([doc])
        if imported.duplicates:
            report.skipped.append((doc.id, imported.duplicates[0][1]))
            continue
        stored = ws.row_id(doc.id)
        ws.save_predictions(model_ref, [(stored, replace(item, doc=doc))], thresholds)
        report.added.append(doc.id)
    return report
