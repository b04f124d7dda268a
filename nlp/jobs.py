"""Workflows that the command line, the app and the Dask backend share, written once.

A workflow here takes an open :class:`~nlp.workspace.Workspace` and plain objects, does one user-visible job, and
returns a report; it prints nothing and knows nothing of argparse or Streamlit. Callers present the report, and
pass a ``progress`` object (anything with ``update(n)``, such as a tqdm bar) and an ``on_rejected`` callback where
they want to show work as it happens.

- :func:`import_documents`, :func:`import_folder_of_tables`: documents into the workspace.
- :func:`tag_and_save`, :func:`classify_workspace`: tag what a model has not classified yet, one transaction per
  batch (the in-process path and every Dask worker that sees the workspace run :func:`tag_and_save`).
- :func:`add_tagged_documents`: documents tagged in memory (the app's Classify page) added with their tags.
- :func:`import_annotations`: annotation files into the workspace, each unit stored once.
"""

from __future__ import annotations

import re
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from .schema import ISSUER_TYPES, Annotation, Document
from .workspace import ImportReport, Workspace, WorkspaceError

if TYPE_CHECKING:  # pragma: no cover - types only
    from .codebook import Codebook
    from .ingest import Rejected
    from .models import ModelInfo

#: Documents tagged and saved per transaction when a workspace is classified in this process.
CLASSIFY_BATCH = 256

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


# -- importing ----------------------------------------------------------------------------------------------------
@dataclass
class DocumentImport(ImportReport):
    """What an import did: :class:`~nlp.workspace.ImportReport` (added, duplicates, non-English) plus the items
    read and those rejected before reaching the workspace (a bad file in a folder, a bad row in a table)."""

    read: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (id, reason)


def import_documents(ws: Workspace, items: Iterable["Document | Rejected"], *, progress=None,
                     on_rejected: Callable[["Rejected"], None] | None = None) -> DocumentImport:
    """Add ``items`` (documents, and ``Rejected`` records as :func:`nlp.ingest.iter_documents` yields them) to
    the workspace, committed per batch: a rejected item is counted and passed to ``on_rejected`` as it comes, and
    never costs the documents around it."""
    from .ingest import Rejected

    report = DocumentImport()

    def documents() -> Iterable[Document]:
        for item in items:
            if isinstance(item, Rejected):
                report.rejected.append((item.id, item.reason))
                if on_rejected is not None:
                    on_rejected(item)
                continue
            report.read += 1
            yield item

    report.merge(ws.add_documents(documents(), progress=progress))
    return report


def import_folder_of_tables(ws: Workspace, folder: str | Path, pattern: str = "*.parquet", *,
                            progress: Callable[[str], Any] | None = None,
                            on_file: Callable[[str, DocumentImport], None] | None = None,
                            on_rejected: Callable[["Rejected"], None] | None = None) -> dict[str, DocumentImport]:
    """Import every table of ``folder`` matching ``pattern`` (the shipped corpus), each file once: a file whose
    content was imported before (same SHA-256, recorded in the workspace) is skipped, and an interrupted import is
    simply redone (its documents already stored are skipped as duplicates). Rows get the checks ``cdpd ingest``
    gives a table (:func:`nlp.ingest.iter_documents`: an empty or binary text is rejected with its reason).
    ``progress(name)`` gives a progress object per file. Returns a report per file imported now.

    Raises :class:`~nlp.workspace.WorkspaceError` when the folder holds no such table."""
    from .ingest import iter_documents
    from .models import file_sha256

    files = sorted(Path(folder).glob(pattern))
    if not files:
        raise WorkspaceError(f"no shipped corpus in {folder} ({pattern})")
    reports: dict[str, DocumentImport] = {}
    for path in files:
        key, digest = f"imported:{path.name}", file_sha256(path)
        if ws.get_meta(key) == digest:
            continue
        bar = progress(path.name) if progress is not None else None
        try:
            report = import_documents(ws, iter_documents([path], skip_bad_inputs=True), progress=bar,
                                      on_rejected=on_rejected)
        finally:
            if bar is not None and hasattr(bar, "close"):
                bar.close()
        ws.set_meta(key, digest)
        reports[path.name] = report
        if on_file is not None:
            on_file(path.name, report)
    return reports


# -- classifying --------------------------------------------------------------------------------------------------
def tag_and_save(ws: Workspace, runner, model_ref: str, doc_ids: Sequence[int] | None = None, *,
                 batch: Sequence[tuple[int, Document]] | None = None, lock=None) -> tuple[int, int]:
    """Tag one batch of workspace documents with ``runner`` (a :class:`~nlp.pipeline.DocumentTagger`) and save
    the results in one transaction. The batch is ``batch`` (row ids with their documents) or is read by
    ``doc_ids``. Saving is idempotent (a document saved again replaces its rows), so a retried batch leaves no
    duplicates. ``lock`` (a context manager) is held while tagging only, not while saving (a Dask worker's
    threads share one spaCy pipeline). Returns (documents, passages) saved."""
    if batch is None:
        batch = ws.documents_by_id(list(doc_ids or []))
    with lock if lock is not None else nullcontext():
        tagged = list(runner.tag((doc for _, doc in batch), batch_size=max(len(batch), 1)))
    ws.save_predictions(model_ref, [(doc_id, t) for (doc_id, _), t in zip(batch, tagged)],
                        runner.tagger.thresholds_)
    return len(batch), sum(len(t.passages) for t in tagged)


@dataclass
class ClassifyReport:
    """What :func:`classify_workspace` did: documents the model had still to classify, and those saved now."""

    model: str
    todo: int = 0
    saved: int = 0
    on_dask: bool = False
    shared: bool = False  # on Dask: the workers read and write the workspace themselves


def classify_workspace(ws: Workspace, tagger, info: "ModelInfo", codebook: "Codebook", *, dask=None,
                       progress=None, batch_size: int = CLASSIFY_BATCH,
                       before: Callable[[ClassifyReport], None] | None = None) -> ClassifyReport:
    """Tag every document of the workspace that the model ``info`` has not classified, and save the results.

    In this process (default) each batch of ``batch_size`` documents is one transaction (:func:`tag_and_save`);
    with ``dask`` (a :class:`~nlp.distributed.DaskTagger`) the cluster tags, and its workers save themselves when
    they all see this workspace file. Either way a run cut short keeps what it finished and a re-run tags only
    what is missing. ``before(report)`` is called once the work is known (``todo``, where it runs), before any."""
    ws.register_model(info.ref, info.name, info.version, info.tagger, tagger.labels)
    report = ClassifyReport(info.ref, todo=ws.count_unclassified(info.ref), on_dask=dask is not None)
    if not report.todo:
        return report
    if dask is not None:
        report.shared = dask.shares_workspace(ws.home)
    if before is not None:
        before(report)
    if dask is not None:
        from .distributed import classify_workspace as on_cluster

        report.saved = on_cluster(ws, dask, progress=progress, shared=report.shared)
        return report
    from .pipeline import DocumentTagger
    from .text import TextProcessor

    runner = DocumentTagger(tagger, TextProcessor(codebook))
    for batch in ws.unclassified(info.ref, batch_size=batch_size):
        n_docs, _ = tag_and_save(ws, runner, info.ref, batch=batch)
        report.saved += n_docs
        if progress is not None:
            progress.update(n_docs)
    return report


# -- annotations --------------------------------------------------------------------------------------------------
@dataclass
class AnnotationImport:
    """What :func:`import_annotations` did: units added, units already in the workspace (same text and labels,
    by this file or an earlier import), and conflicts (a text given other labels than before, both kept)."""

    added: int = 0
    present: int = 0
    conflicts: list[tuple[str, str, dict[str, list[str]], dict[str, list[str]]]] = field(default_factory=list)


def import_annotations(ws: Workspace, annotations: Sequence[Annotation], codebook: "Codebook", *,
                       annotator: str | None = None) -> AnnotationImport:
    """Store annotations in the workspace, each (text, labels, annotator) once: the workspace's UNIQUE key makes
    two imports running at once add it once. The annotator is ``annotator``, else the unit's own, else
    ``"import"``. A unit relabelling a text already annotated is stored and reported as a conflict. A unit that
    names a workspace document (``document``, as `cdpd queue` writes it) is linked to it, so it trains as that
    document's source; its ``sample`` (a random queue's ``random``) is kept."""
    from .annotations import merge_annotations, meta_value

    merged = merge_annotations(ws.annotation_units(codebook), annotations)
    report = AnnotationImport(conflicts=list(merged.conflicts))
    known = {dropped for dropped, _ in merged.duplicates}
    report.present = len(merged.duplicates)
    for ann in annotations:
        if ann.id in known:
            continue
        document = meta_value(ann, "document")
        info = ws.document_info(str(document)) if isinstance(document, str) and document else None
        _, new = ws.insert_annotation(ann.text, ann.labels, annotator or ann.meta.get("annotator") or "import",
                                      doc_id=info["doc_id"] if info else None, sample=ann.sample)
        report.added += new
        report.present += not new
    return report
