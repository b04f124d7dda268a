"""The workspace: documents, passages, predictions and annotations in one SQLite file (WAL mode, FTS5 index).

Every write runs in a transaction of a bounded batch, so an interrupted import or classification leaves the
workspace consistent, and running it again carries on where it stopped: documents are deduplicated on their
normalised text, and a document counts as classified by a model only once its predictions are committed.

Label counts are also kept pre-aggregated (``label_counts``: documents carrying each label per model, axis, source,
issuer type, issuer, country, city and month; ``group_counts``: classified documents per model and group), so that
trends and tables need not scan the predictions. SQL triggers maintain them inside the transaction of every write
to ``predictions``, ``classified`` or a document's metadata: a re-saved document is never counted twice.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

from .errors import CdpdError
from .limits import MAX_SEARCH_LIMIT
from .normalise import detect_language, text_key
from .schema import METADATA_FIELDS, Annotation, Document, text_for_tagging

if TYPE_CHECKING:  # imported where a table is built: pandas costs ~0.4 s, which `cdpd classify` never needs
    import pandas as pd

SCHEMA_VERSION = 2  # v2: pre-aggregated label_counts and group_counts, kept by triggers
DB_FILE = "cdpd.sqlite"
#: Bounds of a full-text search (see :meth:`Workspace.search`); the number of documents is in ``limits``.
MAX_QUERY_TERMS = 100
MAX_QUERY_CHARS = 2_000
#: Groupings a user may ask summaries and tables by; also the only column names ever put into SQL text.
GROUP_FIELDS = ("issuer_type", "issuer", "source", "country", "city", "year")
TAGGABLE_LANGUAGES = ("en", "und")
#: Document fields the pre-aggregated counts keep (besides the month, ``substr(date, 1, 7)``).
COUNT_FIELDS = ("source", "issuer_type", "issuer", "country", "city")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    doc_id      INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    source      TEXT NOT NULL DEFAULT '',
    issuer      TEXT NOT NULL DEFAULT '',
    issuer_type TEXT NOT NULL DEFAULT '',
    country     TEXT NOT NULL DEFAULT '',
    city        TEXT NOT NULL DEFAULT '',
    date        TEXT NOT NULL DEFAULT '',
    title       TEXT NOT NULL DEFAULT '',
    url         TEXT NOT NULL DEFAULT '',
    text        TEXT NOT NULL,
    meta        TEXT NOT NULL DEFAULT '{}',
    text_key    TEXT NOT NULL UNIQUE,
    lang        TEXT NOT NULL DEFAULT 'und',
    n_words     INTEGER NOT NULL,
    added_at    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_source ON documents(source);
CREATE INDEX IF NOT EXISTS documents_issuer_type ON documents(issuer_type);
CREATE INDEX IF NOT EXISTS documents_date ON documents(date);
CREATE TABLE IF NOT EXISTS passages (
    passage_id INTEGER PRIMARY KEY,
    doc_id     INTEGER NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    idx        INTEGER NOT NULL,
    start      INTEGER NOT NULL,
    end        INTEGER NOT NULL,
    n_words    INTEGER NOT NULL,
    UNIQUE (doc_id, idx)
);
CREATE TABLE IF NOT EXISTS models (
    model         TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    version       TEXT NOT NULL,
    tagger        TEXT NOT NULL,
    labels        TEXT NOT NULL,
    registered_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS predictions (
    model    TEXT NOT NULL REFERENCES models(model),
    doc_id   INTEGER NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    axis     TEXT NOT NULL,
    label    TEXT NOT NULL,
    score    REAL NOT NULL,
    selected INTEGER NOT NULL,
    evidence TEXT,
    PRIMARY KEY (model, doc_id, label)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS predictions_selected ON predictions(model, selected, axis, label, doc_id);
CREATE TABLE IF NOT EXISTS passage_labels (
    model      TEXT NOT NULL,
    passage_id INTEGER NOT NULL REFERENCES passages(passage_id) ON DELETE CASCADE,
    label      TEXT NOT NULL,
    score      REAL NOT NULL,
    PRIMARY KEY (model, passage_id, label)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS classified (
    model         TEXT NOT NULL,
    doc_id        INTEGER NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    classified_at TEXT NOT NULL,
    PRIMARY KEY (model, doc_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS annotations (
    annotation_id INTEGER PRIMARY KEY,
    doc_id        INTEGER REFERENCES documents(doc_id) ON DELETE SET NULL,
    passage_id    INTEGER REFERENCES passages(passage_id) ON DELETE SET NULL,
    text          TEXT NOT NULL,
    labels        TEXT NOT NULL,
    annotator     TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    dedup_key     TEXT,
    sample        TEXT NOT NULL DEFAULT ''
);
CREATE VIRTUAL TABLE IF NOT EXISTS documents_fts USING fts5(
    title, text, content='documents', content_rowid='doc_id', tokenize='porter unicode61'
);
CREATE TRIGGER IF NOT EXISTS documents_ai AFTER INSERT ON documents BEGIN
    INSERT INTO documents_fts(rowid, title, text) VALUES (new.doc_id, new.title, new.text);
END;
CREATE TRIGGER IF NOT EXISTS documents_ad AFTER DELETE ON documents BEGIN
    INSERT INTO documents_fts(documents_fts, rowid, title, text) VALUES ('delete', old.doc_id, old.title, old.text);
END;
CREATE TRIGGER IF NOT EXISTS documents_au AFTER UPDATE OF title, text ON documents BEGIN
    INSERT INTO documents_fts(documents_fts, rowid, title, text) VALUES ('delete', old.doc_id, old.title, old.text);
    INSERT INTO documents_fts(rowid, title, text) VALUES (new.doc_id, new.title, new.text);
END;
"""

# -- pre-aggregated counts (schema v2) ---------------------------------------------------------------------------
# Writers must update predictions and classified in place (INSERT ... ON CONFLICT DO UPDATE), never with INSERT OR
# REPLACE: a REPLACE deletes the old row without firing delete triggers (unless recursive_triggers is on).
_KEY = "source, issuer_type, issuer, country, city, month"
_LABEL_KEY = f"model, axis, label, {_KEY}"
_GROUP_KEY = f"model, {_KEY}"
_MODELS = "(SELECT model FROM models)"  # every predictions row has a registered model: PRIMARY KEY lookups by doc


def _doc_key(doc: str) -> str:
    """The counts key of document ``doc`` (``new`` or ``old`` inside a documents trigger)."""
    return f"{doc}.source, {doc}.issuer_type, {doc}.issuer, {doc}.country, {doc}.city, substr({doc}.date, 1, 7)"


_DOC_KEY_OF = ("(SELECT d.source, d.issuer_type, d.issuer, d.country, d.city, substr(d.date, 1, 7) "
               "FROM documents d WHERE d.doc_id = {row}.doc_id)")


def _label_add(row: str) -> str:
    return (f"INSERT INTO label_counts ({_LABEL_KEY}, documents) SELECT {row}.model, {row}.axis, {row}.label, "
            f"{_doc_key('d')}, 1 FROM documents d WHERE d.doc_id = {row}.doc_id "
            f"ON CONFLICT ({_LABEL_KEY}) DO UPDATE SET documents = documents + 1;")


def _label_remove(row: str) -> str:
    where = (f"model = {row}.model AND axis = {row}.axis AND label = {row}.label "
             f"AND ({_KEY}) = {_DOC_KEY_OF.format(row=row)}")
    return (f"UPDATE label_counts SET documents = documents - 1 WHERE {where};"
            f"DELETE FROM label_counts WHERE {where} AND documents <= 0;")


def _group_add(row: str) -> str:
    return (f"INSERT INTO group_counts ({_GROUP_KEY}, documents) SELECT {row}.model, {_doc_key('d')}, 1 "
            f"FROM documents d WHERE d.doc_id = {row}.doc_id "
            f"ON CONFLICT ({_GROUP_KEY}) DO UPDATE SET documents = documents + 1;")


def _group_remove(row: str) -> str:
    where = f"model = {row}.model AND ({_KEY}) = {_DOC_KEY_OF.format(row=row)}"
    return (f"UPDATE group_counts SET documents = documents - 1 WHERE {where};"
            f"DELETE FROM group_counts WHERE {where} AND documents <= 0;")


_SAME_PREDICTION = ("new.model = old.model AND new.doc_id = old.doc_id AND new.axis = old.axis "
                    "AND new.label = old.label")
_OLD_KEY = ("source = old.source AND issuer_type = old.issuer_type AND issuer = old.issuer AND country = old.country "
            "AND city = old.city AND month = substr(old.date, 1, 7)")
_DOC_SELECTED = (f"SELECT p.model, p.axis, p.label FROM predictions p "
                 f"WHERE p.model IN {_MODELS} AND p.doc_id = {{doc}}.doc_id AND p.selected = 1")
_DOC_CLASSIFIED = f"SELECT c.model FROM classified c WHERE c.model IN {_MODELS} AND c.doc_id = {{doc}}.doc_id"

_COUNTS_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS label_counts (
    model       TEXT NOT NULL,
    axis        TEXT NOT NULL,
    label       TEXT NOT NULL,
    source      TEXT NOT NULL,
    issuer_type TEXT NOT NULL,
    issuer      TEXT NOT NULL,
    country     TEXT NOT NULL,
    city        TEXT NOT NULL,
    month       TEXT NOT NULL,
    documents   INTEGER NOT NULL,
    PRIMARY KEY ({_LABEL_KEY})
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS group_counts (
    model       TEXT NOT NULL,
    source      TEXT NOT NULL,
    issuer_type TEXT NOT NULL,
    issuer      TEXT NOT NULL,
    country     TEXT NOT NULL,
    city        TEXT NOT NULL,
    month       TEXT NOT NULL,
    documents   INTEGER NOT NULL,
    PRIMARY KEY ({_GROUP_KEY})
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS predictions_counts_ai AFTER INSERT ON predictions WHEN new.selected = 1 BEGIN
    {_label_add("new")}
END;
CREATE TRIGGER IF NOT EXISTS predictions_counts_ad AFTER DELETE ON predictions WHEN old.selected = 1 BEGIN
    {_label_remove("old")}
END;
CREATE TRIGGER IF NOT EXISTS predictions_counts_au_old AFTER UPDATE ON predictions
WHEN old.selected = 1 AND NOT (new.selected = 1 AND {_SAME_PREDICTION}) BEGIN
    {_label_remove("old")}
END;
CREATE TRIGGER IF NOT EXISTS predictions_counts_au_new AFTER UPDATE ON predictions
WHEN new.selected = 1 AND NOT (old.selected = 1 AND {_SAME_PREDICTION}) BEGIN
    {_label_add("new")}
END;
CREATE TRIGGER IF NOT EXISTS classified_counts_ai AFTER INSERT ON classified BEGIN
    {_group_add("new")}
END;
CREATE TRIGGER IF NOT EXISTS classified_counts_ad AFTER DELETE ON classified BEGIN
    {_group_remove("old")}
END;
CREATE TRIGGER IF NOT EXISTS classified_counts_au AFTER UPDATE OF model, doc_id ON classified
WHEN new.model IS NOT old.model OR new.doc_id IS NOT old.doc_id BEGIN
    {_group_remove("old")}
    {_group_add("new")}
END;
-- a deleted document's predictions go first, while its metadata can still be read (cascades run after the delete)
CREATE TRIGGER IF NOT EXISTS documents_counts_bd BEFORE DELETE ON documents BEGIN
    DELETE FROM predictions WHERE model IN {_MODELS} AND doc_id = old.doc_id;
    DELETE FROM classified WHERE model IN {_MODELS} AND doc_id = old.doc_id;
END;
CREATE TRIGGER IF NOT EXISTS documents_counts_au AFTER UPDATE OF {", ".join(COUNT_FIELDS)}, date ON documents
WHEN ({_doc_key("old")}) IS NOT ({_doc_key("new")}) BEGIN
    UPDATE label_counts SET documents = documents - 1
        WHERE (model, axis, label) IN ({_DOC_SELECTED.format(doc="old")}) AND {_OLD_KEY};
    DELETE FROM label_counts WHERE (model, axis, label) IN ({_DOC_SELECTED.format(doc="old")}) AND {_OLD_KEY}
        AND documents <= 0;
    INSERT INTO label_counts ({_LABEL_KEY}, documents) SELECT p.model, p.axis, p.label, {_doc_key("new")}, 1
        FROM ({_DOC_SELECTED.format(doc="new")}) p WHERE 1
        ON CONFLICT ({_LABEL_KEY}) DO UPDATE SET documents = documents + 1;
    UPDATE group_counts SET documents = documents - 1
        WHERE model IN ({_DOC_CLASSIFIED.format(doc="old")}) AND {_OLD_KEY};
    DELETE FROM group_counts WHERE model IN ({_DOC_CLASSIFIED.format(doc="old")}) AND {_OLD_KEY} AND documents <= 0;
    INSERT INTO group_counts ({_GROUP_KEY}, documents) SELECT c.model, {_doc_key("new")}, 1
        FROM ({_DOC_CLASSIFIED.format(doc="new")}) c WHERE 1
        ON CONFLICT ({_GROUP_KEY}) DO UPDATE SET documents = documents + 1;
END;
"""

# The same counts rolled up: labels_by_month and groups_by_month keep source, issuer type and month only; the
# by_country, by_issuer and by_city tables keep that field too. Corpora such as the UN General Debate have one
# speech per speaker (and country) per session, so label_counts holds about one row per selected prediction; a trend
# overall, by source or issuer type, or for some countries (issuers, cities) reads a rollup instead, whose primary
# key starts with the field it keeps. Triggers on the counts keep the rollups (a count changes by +-1, or a row
# comes or goes; its key never changes in place).
#: Rollups: name suffix -> the field kept besides source, issuer type and month ("" for none).
ROLLUPS = {"month": "", "country": "country", "issuer": "issuer", "city": "city"}


def _rollup(fine: str, coarse: str, key: list[str]) -> str:
    """The table ``coarse`` keyed by ``key`` (+ documents) and the triggers that keep it equal to ``fine``'s sums."""
    columns = ",\n    ".join(f"{c} TEXT NOT NULL" for c in key)
    match_new = " AND ".join(f"{c} = new.{c}" for c in key)
    match_old = " AND ".join(f"{c} = old.{c}" for c in key)
    values = ", ".join(f"new.{c}" for c in key)
    return f"""
CREATE TABLE IF NOT EXISTS {coarse} (
    {columns},
    documents INTEGER NOT NULL,
    PRIMARY KEY ({", ".join(key)})
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS {coarse}_ai AFTER INSERT ON {fine} BEGIN
    INSERT INTO {coarse} ({", ".join(key)}, documents) VALUES ({values}, new.documents)
        ON CONFLICT ({", ".join(key)}) DO UPDATE SET documents = documents + excluded.documents;
END;
CREATE TRIGGER IF NOT EXISTS {coarse}_au AFTER UPDATE OF documents ON {fine} BEGIN
    UPDATE {coarse} SET documents = documents + new.documents - old.documents WHERE {match_new};
    DELETE FROM {coarse} WHERE {match_new} AND documents <= 0;
END;
CREATE TRIGGER IF NOT EXISTS {coarse}_ad AFTER DELETE ON {fine} BEGIN
    UPDATE {coarse} SET documents = documents - old.documents WHERE {match_old};
    DELETE FROM {coarse} WHERE {match_old} AND documents <= 0;
END;
"""


def _rollup_key(kind: str, field: str) -> list[str]:
    head = ["model", "axis"] if kind == "labels" else ["model"]
    tail = ["label"] if kind == "labels" else []
    return head + ([field] if field else []) + tail + ["source", "issuer_type", "month"]


ROLLUP_TABLES = [f"{kind}_by_{name}" for name in ROLLUPS for kind in ("labels", "groups")]
_COUNTS_SCHEMA += "".join(
    _rollup("label_counts" if kind == "labels" else "group_counts", f"{kind}_by_{name}", _rollup_key(kind, field))
    for name, field in ROLLUPS.items() for kind in ("labels", "groups"))

#: Recount the pre-aggregated tables from predictions and classified (the v1 -> v2 migration; a repair). The
#: rollups are emptied first, then filled by their triggers as the counts are inserted.
_REBUILD_COUNTS = f"""
{"".join(f"DELETE FROM {t};" for t in ROLLUP_TABLES)}
DELETE FROM label_counts;
DELETE FROM group_counts;
{"".join(f"DELETE FROM {t};" for t in ROLLUP_TABLES)}
INSERT INTO label_counts ({_LABEL_KEY}, documents)
    SELECT p.model, p.axis, p.label, {_doc_key("d")}, count(*)
    FROM predictions p JOIN documents d ON d.doc_id = p.doc_id
    WHERE p.selected = 1 GROUP BY p.model, p.axis, p.label, {_doc_key("d")};
INSERT INTO group_counts ({_GROUP_KEY}, documents)
    SELECT c.model, {_doc_key("d")}, count(*) FROM classified c JOIN documents d ON d.doc_id = c.doc_id
    GROUP BY c.model, {_doc_key("d")};
"""
#: SQL run, after the schema, when a workspace older than the key's version is upgraded.
_UPGRADES = {2: _REBUILD_COUNTS}
#: Indexes for the sidebar's distinct-value queries (browse.filter_values), added to schema v2 without a version
#: bump (an older cdpd can still open the workspace): made on open wherever one is missing.
_FILTER_INDEXES = {name: f"CREATE INDEX IF NOT EXISTS documents_{name} ON documents({name});"
                   for name in ("issuer", "country", "city")}


class WorkspaceError(CdpdError, RuntimeError):
    """The workspace cannot be opened or used (newer schema, corrupt file, bad query)."""

    code = "workspace"


def default_home() -> Path:
    return Path(os.environ.get("CDPD_HOME", "workspace"))


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class ImportReport:
    added: int = 0
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (id, why)
    non_english: list[tuple[str, str]] = field(default_factory=list)  # (id, language)

    def merge(self, other: "ImportReport") -> None:
        self.added += other.added
        self.duplicates += other.duplicates
        self.non_english += other.non_english


class Workspace:
    """A cdpd workspace folder holding ``cdpd.sqlite``. Use as a context manager, or call :meth:`close`."""

    def __init__(self, home: str | Path | None = None, *, create: bool = True):
        self.home = Path(home) if home is not None else default_home()
        self.path = self.home / DB_FILE
        if not self.path.exists() and not create:
            raise WorkspaceError(f"no workspace at {self.home} (run `cdpd run` or `cdpd ingest` to create one)")
        self.home.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise WorkspaceError(f"{self.path}: not a usable cdpd workspace ({exc})") from None
        except WorkspaceError:
            self.conn.close()
            raise

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def __enter__(self) -> "Workspace":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def _annotation_keys(self) -> None:
        """The UNIQUE index on ``annotations.dedup_key`` (same normalised text, same labels, same annotator), added
        to schema v2 without a version bump: on a workspace made before it, the column is added, every row's key
        filled, exact duplicates removed (the earliest kept) and the index made, in one transaction, checked again
        inside it (two processes may open the workspace at once). An older cdpd still writes rows (key NULL)."""
        if self.conn.execute("SELECT 1 FROM sqlite_master WHERE type='index' AND name='annotations_dedup'").fetchone():
            return
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM sqlite_master WHERE type='index' AND name='annotations_dedup'").fetchone():
                return
            columns = {row[1] for row in conn.execute("PRAGMA table_info(annotations)")}
            if "dedup_key" not in columns:
                conn.execute("ALTER TABLE annotations ADD COLUMN dedup_key TEXT")
            rows = conn.execute("SELECT annotation_id, text, labels, annotator FROM annotations "
                                "WHERE dedup_key IS NULL ORDER BY annotation_id").fetchall()
            for annotation_id, text, labels, annotator in rows:
                key = annotation_key(text, json.loads(labels), annotator)
                earlier = conn.execute("SELECT 1 FROM annotations WHERE dedup_key = ?", (key,)).fetchone()
                if earlier:
                    conn.execute("DELETE FROM annotations WHERE annotation_id = ?", (annotation_id,))
                else:
                    conn.execute("UPDATE annotations SET dedup_key = ? WHERE annotation_id = ?", (key, annotation_id))
            conn.execute("CREATE UNIQUE INDEX annotations_dedup ON annotations(dedup_key)")

    def _annotation_samples(self) -> None:
        """The ``annotations.sample`` column (how the unit was drawn: ``random`` from a random queue, else the queue's
        strategy or nothing), added to schema v2 without a version bump, like ``dedup_key``: a workspace made
        before it gets the column, every old row ``''`` (drawn by no known rule, so never scored as random)."""
        if "sample" in {row[1] for row in self.conn.execute("PRAGMA table_info(annotations)")}:
            return
        with self.transaction() as conn:
            if "sample" not in {row[1] for row in conn.execute("PRAGMA table_info(annotations)")}:
                conn.execute("ALTER TABLE annotations ADD COLUMN sample TEXT NOT NULL DEFAULT ''")

    def _migrate(self) -> None:
        self._migrate_schema()
        self._annotation_keys()
        self._annotation_samples()

    def _migrate_schema(self) -> None:
        row = None
        has_meta = self.conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
        if has_meta:
            row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise WorkspaceError(
                f"{self.path}: workspace schema v{version} is newer than this cdpd supports (v{SCHEMA_VERSION}); "
                "upgrade cdpd"
            )
        if version < SCHEMA_VERSION:
            # one script, one transaction: a crash mid-way leaves no half-made schema (nor half-counted counts)
            upgrades = "".join(sql for v, sql in sorted(_UPGRADES.items()) if 0 < version < v)
            self.conn.executescript(
                "BEGIN IMMEDIATE;" + _SCHEMA + "".join(_FILTER_INDEXES.values()) + _COUNTS_SCHEMA + upgrades
                + f"INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', '{int(SCHEMA_VERSION)}');"
                + "COMMIT;")
            return
        present = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        missing = [sql for name, sql in _FILTER_INDEXES.items() if f"documents_{name}" not in present]
        if missing:  # a workspace made before these indexes: built once, on this open
            self.conn.executescript("BEGIN IMMEDIATE;" + "".join(missing) + "COMMIT;")

    def rebuild_counts(self) -> None:
        """Recount the pre-aggregated ``label_counts`` and ``group_counts`` from the predictions, in one
        transaction (the triggers keep them right; this is for repairs and the v1 -> v2 upgrade)."""
        with self.transaction() as conn:
            for statement in filter(str.strip, _REBUILD_COUNTS.split(";")):
                conn.execute(statement)

    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0])

    # -- documents ---------------------------------------------------------------------------------------------
    def add_documents(self, docs: Iterable[Document], *, batch_size: int = 500, progress=None) -> ImportReport:
        """Add documents, skipping those whose id or normalised text is already present. Committed per batch."""

        report = ImportReport()
        batch: list[tuple] = []

        def flush():
            if batch:
                report.merge(self._insert_batch(batch))
                if progress is not None:
                    progress.update(len(batch))
                batch.clear()

        for doc in docs:
            lang = detect_language(doc.text)
            batch.append((doc, text_key(doc.text), lang))
            if len(batch) >= batch_size:
                flush()
        flush()
        return report

    def _insert_batch(self, batch: list[tuple[Document, str, str]]) -> ImportReport:
        report = ImportReport()
        now = _now()
        with self.transaction() as conn:
            for doc, key, lang in batch:
                values = [doc.id, *(getattr(doc, f) or "" for f in METADATA_FIELDS), doc.text,
                          json.dumps(doc.meta, ensure_ascii=False, default=str), key, lang,
                          len(doc.text.split()), now]
                cur = conn.execute(
                    f"INSERT OR IGNORE INTO documents (id, {', '.join(METADATA_FIELDS)}, text, meta, text_key, lang, "
                    f"n_words, added_at) VALUES ({', '.join('?' * (len(METADATA_FIELDS) + 7))})",
                    values,
                )
                if cur.rowcount == 1:
                    report.added += 1
                    if lang not in TAGGABLE_LANGUAGES:
                        report.non_english.append((doc.id, lang))
                    continue
                same_text = conn.execute("SELECT id FROM documents WHERE text_key = ?", (key,)).fetchone()
                if same_text is not None:
                    why = "already in the workspace" if same_text[0] == doc.id else f"same text as {same_text[0]}"
                else:
                    why = "id already used by another document in the workspace"
                report.duplicates.append((doc.id, why))
        return report

    def count_documents(self) -> int:
        return self.conn.execute("SELECT count(*) FROM documents").fetchone()[0]

    def row_id(self, id: str) -> int:
        """The workspace's integer key (``doc_id``) of the document with this ``id``; KeyError if absent."""
        row = self.conn.execute("SELECT doc_id FROM documents WHERE id = ?", (id,)).fetchone()
        if row is None:
            raise KeyError(id)
        return int(row[0])

    def get_document(self, id: str) -> Document | None:
        row = self.conn.execute("SELECT * FROM documents WHERE id = ?", (id,)).fetchone()
        return _row_document(row) if row else None

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    # -- classification ----------------------------------------------------------------------------------------
    def register_model(self, ref: str, name: str, version: str, tagger: str, labels: dict[str, list[str]]) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO models (model, name, version, tagger, labels, registered_at) "
                "VALUES (?, ?, ?, ?, ?, ?)", (ref, name, version, tagger, json.dumps(labels), _now()))

    def unclassified(self, model: str, *, batch_size: int = 256) -> Iterator[list[tuple[int, Document]]]:
        """Batches of (doc_id, document) that ``model`` has not classified yet, English (or undetermined) only.

        Reads by increasing doc_id with a cursor on the last id seen, so memory stays flat and a batch committed
        meanwhile is never read twice.
        """
        for ids in self.unclassified_ids(model, batch_size=batch_size):
            yield self.documents_by_id(ids)

    def unclassified_ids(self, model: str, *, batch_size: int = 256) -> Iterator[list[int]]:
        """The doc_ids of :meth:`unclassified`, in the same batches (what a worker sharing this file needs)."""
        last = -1
        langs = ",".join("?" * len(TAGGABLE_LANGUAGES))
        while True:
            ids = [row[0] for row in self.conn.execute(
                f"SELECT d.doc_id FROM documents d WHERE d.doc_id > ? AND d.lang IN ({langs}) AND NOT EXISTS "
                "(SELECT 1 FROM classified c WHERE c.model = ? AND c.doc_id = d.doc_id) ORDER BY d.doc_id LIMIT ?",
                (last, *TAGGABLE_LANGUAGES, model, batch_size))]
            if not ids:
                return
            last = ids[-1]
            yield ids

    def documents_by_id(self, doc_ids: Sequence[int]) -> list[tuple[int, Document]]:
        """(doc_id, document) for those of ``doc_ids`` that exist, by increasing doc_id."""
        rows = self.conn.execute("SELECT d.* FROM documents d WHERE d.doc_id IN (SELECT value FROM json_each(?)) "
                                 "ORDER BY d.doc_id", (json.dumps([int(i) for i in doc_ids]),)).fetchall()
        return [(row["doc_id"], _row_document(row)) for row in rows]

    def count_unclassified(self, model: str) -> int:
        langs = ",".join("?" * len(TAGGABLE_LANGUAGES))
        return self.conn.execute(
            f"SELECT count(*) FROM documents d WHERE d.lang IN ({langs}) AND NOT EXISTS "
            "(SELECT 1 FROM classified c WHERE c.model = ? AND c.doc_id = d.doc_id)",
            (*TAGGABLE_LANGUAGES, model)).fetchone()[0]

    def save_predictions(self, model: str, items: Sequence[tuple[int, Any]], thresholds: dict[str, Any]) -> None:
        """Store tagged documents (``nlp.pipeline.TaggedDocument``) in one transaction, passages included.

        Passages depend on the text only, so a document classified by a second model reuses its passages. Saving a
        document again replaces its predictions (rows are updated in place, so the pre-aggregated counts move
        with them and nothing is counted twice).
        """
        now = _now()
        labels_by_axis = self._labels(model)
        with self.transaction() as conn:
            for doc_id, tagged in items:
                conn.executemany("INSERT OR IGNORE INTO passages (doc_id, idx, start, end, n_words) "
                                 "VALUES (?, ?, ?, ?, ?)",
                                 [(doc_id, p.index, p.start, p.end, p.n_words) for p in tagged.passages])
                stored = dict(conn.execute("SELECT idx, passage_id FROM passages WHERE doc_id = ?", (doc_id,)))
                passage_ids = [stored[p.index] for p in tagged.passages]
                rows, passage_rows = [], []
                for axis, scores in tagged.scores.items():
                    labels = labels_by_axis[axis]
                    chosen = set(tagged.selected[axis])
                    for j, (label, score) in enumerate(zip(labels, scores)):
                        ev = tagged.evidence.get(label) if label in chosen else None
                        rows.append((model, doc_id, axis, label, float(score), int(label in chosen),
                                     json.dumps(ev, ensure_ascii=False) if ev else None))
                        column = tagged.passage_scores[axis][:, j]
                        for pid, s in zip(passage_ids, column):
                            if s >= thresholds[axis][j]:
                                passage_rows.append((model, pid, label, float(s)))
                conn.executemany(
                    "INSERT INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (model, doc_id, label) DO UPDATE "
                    "SET axis = excluded.axis, score = excluded.score, selected = excluded.selected, "
                    "evidence = excluded.evidence", rows)
                conn.execute("DELETE FROM passage_labels WHERE model = ? AND passage_id IN "
                             "(SELECT passage_id FROM passages WHERE doc_id = ?)", (model, doc_id))
                conn.executemany("INSERT OR REPLACE INTO passage_labels VALUES (?, ?, ?, ?)", passage_rows)
                conn.execute("INSERT INTO classified VALUES (?, ?, ?) ON CONFLICT (model, doc_id) DO UPDATE "
                             "SET classified_at = excluded.classified_at", (model, doc_id, now))

    def _labels(self, model: str) -> dict[str, list[str]]:
        cache = self.__dict__.setdefault("_label_cache", {})
        if model not in cache:
            row = self.conn.execute("SELECT labels FROM models WHERE model = ?", (model,)).fetchone()
            if row is None:
                raise WorkspaceError(f"model {model!r} is not registered in the workspace")
            cache[model] = json.loads(row[0])
        return cache[model]

    def models(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT model FROM models ORDER BY registered_at, model")]

    def classifying_models(self) -> list[str]:
        """Models that classified documents here, the one that classified most recently first."""
        return [r[0] for r in self.conn.execute(
            "SELECT model FROM classified GROUP BY model ORDER BY max(classified_at) DESC, model")]

    def state_stamp(self, model: str | None = None) -> str:
        """A short string that changes whenever what a page computes from the workspace may change: documents,
        passages and annotations, and (with ``model``) that model's classifications. Pages key their caches on it,
        so a cached table is reused only while nothing it depends on moved."""
        row = self.conn.execute(
            "SELECT (SELECT count(*) FROM documents) || ':' || (SELECT count(*) FROM passages) || ':' || "
            "(SELECT count(*) FROM annotations) || ':' || "
            "(SELECT count(*) || ':' || coalesce(max(classified_at), '') FROM classified WHERE model = ?)",
            (model or "",)).fetchone()
        return row[0]

    def latest_model(self) -> str | None:
        row = self.conn.execute(
            "SELECT c.model FROM classified c GROUP BY c.model ORDER BY max(c.classified_at) DESC LIMIT 1").fetchone()
        return row[0] if row else None

    # -- reading ------------------------------------------------------------------------------------------------
    def documents_per_source(self) -> pd.DataFrame:
        import pandas as pd

        return pd.read_sql_query(
            "SELECT source, issuer_type, count(*) AS documents, "
            "sum(lang NOT IN ('en', 'und')) AS non_english FROM documents GROUP BY source, issuer_type "
            "ORDER BY source", self.conn).set_index("source")

    def label_shares(self, model: str, by: str = "issuer_type") -> pd.DataFrame:
        """Share of classified documents carrying each label (rows: axis, label; columns: the groups).

        Read from the pre-aggregated counts (the rollup that keeps ``by``): no scan of the predictions."""
        import pandas as pd

        column = _group_expr(by, "c", "month")
        rollup = by if by in ROLLUPS else "month"  # a fixed table name: labels_by_* / groups_by_*
        counts = pd.read_sql_query(
            f"SELECT {column} AS grp, c.axis, c.label, sum(c.documents) AS n FROM labels_by_{rollup} c "
            "WHERE c.model = ? GROUP BY grp, c.axis, c.label", self.conn, params=(model,))
        totals = pd.read_sql_query(
            f"SELECT {column} AS grp, sum(c.documents) AS total FROM groups_by_{rollup} c "
            "WHERE c.model = ? GROUP BY grp", self.conn, params=(model,)).set_index("grp")["total"].sort_index()
        if totals.empty:
            return pd.DataFrame()
        order = self._labels(model)
        index = pd.MultiIndex.from_tuples([(axis, label) for axis in order for label in order[axis]],
                                          names=["axis", "label"])
        if counts.empty:
            table = pd.DataFrame(0, index=index, columns=totals.index)
        else:
            table = (counts.pivot_table(index=["axis", "label"], columns="grp", values="n", aggfunc="sum",
                                        fill_value=0).reindex(index=index, columns=totals.index, fill_value=0))
        table = table / totals.to_numpy()
        table.columns.name = by
        return table

    def predictions_for(self, id: str, model: str) -> dict[str, Any]:
        rows = self.conn.execute(
            "SELECT p.axis, p.label, p.score, p.selected, p.evidence FROM predictions p "
            "JOIN documents d ON d.doc_id = p.doc_id WHERE d.id = ? AND p.model = ?", (id, model)).fetchall()
        return {r["label"]: {"axis": r["axis"], "score": r["score"], "selected": bool(r["selected"]),
                             "evidence": json.loads(r["evidence"]) if r["evidence"] else []} for r in rows}

    def search(self, query: str, limit: int = 20, sort: str = "relevance") -> pd.DataFrame:
        """Full-text search (FTS5 syntax); a malformed query raises WorkspaceError with the reason.

        Hits come best first by relevance (``sort="relevance"``: FTS5's BM25, in the ``relevance`` column as
        -bm25, higher is better), or newest first (``sort="date"``; undated documents last).

        Bounded: ``limit`` in 1..:data:`MAX_SEARCH_LIMIT`, and a query of at most :data:`MAX_QUERY_TERMS` terms and
        :data:`MAX_QUERY_CHARS` characters (thousands of OR'd terms or a NEAR over thousands take minutes)."""
        import pandas as pd

        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_SEARCH_LIMIT:
            raise WorkspaceError(f"search limit must be a whole number from 1 to {MAX_SEARCH_LIMIT}, got {limit!r}")
        orders = {"relevance": "relevance DESC, d.date DESC, d.doc_id", "date": "d.date DESC, relevance DESC, d.doc_id"}
        if sort not in orders:
            raise WorkspaceError(f"sort must be one of {', '.join(orders)}, not {sort!r}")
        check_query(query)
        try:
            return pd.read_sql_query(
                "SELECT d.id, d.source, d.issuer, d.date, d.title, snippet(documents_fts, 1, '[', ']', '…', 12) AS "
                "snippet, -bm25(documents_fts) AS relevance FROM documents_fts "
                "JOIN documents d ON d.doc_id = documents_fts.rowid "
                f"WHERE documents_fts MATCH ? ORDER BY {orders[sort]} LIMIT ?", self.conn, params=(query, limit))
        except (sqlite3.OperationalError, pd.errors.DatabaseError) as exc:
            raise search_error(query, exc) from None

    # -- annotations -------------------------------------------------------------------------------------------
    def add_annotation(self, text: str, labels: dict[str, list[str]], annotator: str, *,
                       doc_id: int | None = None, passage_id: int | None = None, sample: str = "") -> int:
        """Committed at once: an annotation is never lost to a crash after this returns."""
        annotation_id, _ = self.insert_annotation(text, labels, annotator, doc_id=doc_id, passage_id=passage_id,
                                                  sample=sample)
        return annotation_id

    def insert_annotation(self, text: str, labels: dict[str, list[str]], annotator: str, *,
                          doc_id: int | None = None, passage_id: int | None = None,
                          sample: str = "") -> tuple[int, bool]:
        """(id, whether it is new): an annotation with the same normalised text, labels and annotator is stored
        once, by a UNIQUE constraint, so two imports at once cannot both add it; the existing one's id otherwise.
        ``sample`` says how the unit was drawn (``random``: from a random queue, so it may be scored as a random
        unit, :data:`nlp.annotations.EVALUATION_SAMPLES`)."""
        if not annotator.strip():
            raise WorkspaceError("an annotation needs the annotator's name")
        key = annotation_key(text, labels, annotator.strip())
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO annotations (doc_id, passage_id, text, labels, annotator, created_at, dedup_key, "
                "sample) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(dedup_key) DO NOTHING",
                (doc_id, passage_id, text, json.dumps(labels, ensure_ascii=False), annotator.strip(), _now(), key,
                 str(sample or "")))
            if cur.rowcount == 1:
                return int(cur.lastrowid), True
            row = conn.execute("SELECT annotation_id FROM annotations WHERE dedup_key = ?", (key,)).fetchone()
            return int(row[0]), False

    def delete_annotation(self, annotation_id: int) -> bool:
        """Undo: remove one annotation (True if it existed)."""
        with self.transaction() as conn:
            return conn.execute("DELETE FROM annotations WHERE annotation_id = ?", (int(annotation_id),)).rowcount == 1

    def candidate_passages(self, limit: int = 2000, seed: int = 0,
                           source: str | None = None) -> list[tuple[int, str, int, int, str]]:
        """Up to ``limit`` passages of English documents (of ``source`` only, when given), none whose text is
        annotated already, drawn at random (seeded): (passage_id, document id, start, end, tagged text). Offsets
        refer to the tagged text (title and body, as :func:`nlp.schema.text_for_tagging` builds it)."""
        annotated = {text_key(r[0]) for r in self.conn.execute("SELECT text FROM annotations")}
        of_source = "" if source is None else (
            "JOIN documents sd ON sd.doc_id = passages.doc_id WHERE sd.source = ? ")
        rows = self.conn.execute(
            "SELECT p.passage_id, d.id, p.start, p.end, d.title, d.text FROM passages p "
            "JOIN documents d ON d.doc_id = p.doc_id "
            "WHERE d.lang IN ('en', 'und') AND p.passage_id IN "
            f"(SELECT passage_id FROM passages {of_source}"
            "ORDER BY (passage_id * 2654435761 + ?) % 4294967291 LIMIT ?)",
            (*(() if source is None else (source,)), seed, limit + len(annotated))).fetchall()
        out = []
        for pid, doc, start, end, title, body in rows:
            text = text_for_tagging(Document(id=doc, text=body, title=title))
            if text_key(text[start:end]) not in annotated:
                out.append((pid, doc, start, end, text))
        return out[:limit]

    def edit_annotation(self, annotation_id: int, labels: dict[str, list[str]]) -> int:
        """A new version of an annotation: a new row (same text, passage, document and annotator, new labels and
        time), committed at once; the old row stays, so every decision is kept and an undo is a delete of the new
        row. Plain INSERT: a version is never folded into an older identical one (an A -> B -> A edit must end on
        A), whatever deduplication imports apply. Raises KeyError for an unknown id."""
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO annotations (doc_id, passage_id, text, labels, annotator, created_at, sample) "
                "SELECT doc_id, passage_id, text, ?, annotator, ?, sample FROM annotations WHERE annotation_id = ?",
                (json.dumps(labels, ensure_ascii=False), _now(), int(annotation_id)))
            if cur.rowcount != 1:
                raise KeyError(f"no annotation {annotation_id}")
            return int(cur.lastrowid)

    def latest_annotation_id(self, annotator: str, text: str) -> int | None:
        """The id of this annotator's latest annotation of this unit (same normalised text), or None: a save of a
        unit the annotator has already annotated (in another tab, or by an import) is a new version of that
        decision, not a second, independent one. Reads the annotator's rows only."""
        key = unit_key(text)
        rows = self.conn.execute("SELECT annotation_id, text FROM annotations WHERE annotator = ? "
                                 "ORDER BY annotation_id DESC", (annotator.strip(),))
        return next((int(r[0]) for r in rows if unit_key(r[1]) == key), None)

    def annotation(self, annotation_id: int) -> dict[str, Any] | None:
        """One annotation row (labels decoded), with its document's id, or None."""
        row = self.conn.execute("SELECT a.*, d.id AS document FROM annotations a LEFT JOIN documents d "
                                "ON d.doc_id = a.doc_id WHERE a.annotation_id = ?", (int(annotation_id),)).fetchone()
        return {**dict(row), "labels": json.loads(row["labels"])} if row else None

    def document_info(self, id: str) -> dict[str, str] | None:
        """A document's metadata without its text (for a heading beside a passage), or None."""
        row = self.conn.execute("SELECT doc_id, id, title, source, issuer, issuer_type, country, city, date, url "
                                "FROM documents WHERE id = ?", (id,)).fetchone()
        return dict(row) if row else None

    def latest_annotations(self) -> list[dict[str, Any]]:
        """The annotations that count: per annotator and unit (normalised text), the latest row (highest
        ``annotation_id``: an edit is a new row), each with ``versions`` (how many rows it stands for); in the
        order of those latest rows."""
        return latest_per_annotator_and_unit(self.annotations())

    def annotation_history(self, annotator: str, limit: int = 500) -> list[dict[str, Any]]:
        """One annotator's annotations that count (:meth:`latest_annotations`), latest first, with the document's
        title, source, issuer and date: the Annotate page's history, to review and edit."""
        rows = self.conn.execute(
            "SELECT a.*, d.id AS document, d.title, d.source, d.issuer, d.date FROM annotations a "
            "LEFT JOIN documents d ON d.doc_id = a.doc_id WHERE a.annotator = ? ORDER BY a.annotation_id",
            (annotator.strip(),)).fetchall()
        latest = latest_per_annotator_and_unit([{**dict(r), "labels": json.loads(r["labels"])} for r in rows])
        return latest[::-1][:limit]

    def annotation_units(self, codebook) -> list:
        """Workspace annotations as :class:`nlp.schema.Annotation`, oldest first (a later one wins a merge):
        per annotator and unit only the latest version (:meth:`latest_annotations`), so an edit replaces the
        decision it corrects in exports and training, and two annotators of one text both stay. Each carries its
        document's source (``meta["source"]``) where the document is still in the workspace, so that training
        balances and reports it as the source it is (a city office's own releases are a source of their own), and
        its date (``meta["date"]``), so that evaluations report it per period."""
        out = []
        for row in self.latest_annotations():
            labels = {axis: list(row["labels"].get(axis, [])) for axis in codebook.axis_names}
            meta = {"annotator": row["annotator"], "document": row["document"]}
            for key in ("source", "date"):
                if row.get(key):
                    meta[key] = row[key]
            out.append(Annotation(f"workspace:{row['annotation_id']}", row["text"], labels,
                                  sample=row.get("sample") or "", meta=meta))
        return out

    def annotations(self) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT a.*, d.id AS document, d.source AS source, d.date AS date FROM annotations a "
                                 "LEFT JOIN documents d ON d.doc_id = a.doc_id ORDER BY annotation_id").fetchall()
        return [{**dict(r), "labels": json.loads(r["labels"])} for r in rows]


def annotation_key(text: str, labels: dict[str, list[str]], annotator: str) -> str:
    """The dedup key of an annotation: its normalised text (as imports deduplicate), its labels (order aside) and
    its annotator (two annotators agreeing are two annotations, for agreement figures)."""
    canonical = json.dumps([text_key(text), {axis: sorted(v) for axis, v in sorted(labels.items())}, annotator],
                           ensure_ascii=False, sort_keys=True)
    return hashlib.sha1(canonical.encode("utf-8")).hexdigest()


@lru_cache(maxsize=10_000)
def unit_key(text: str) -> str:
    """An annotated unit's key: its normalised text (:func:`nlp.normalise.text_key`, as merges and agreement match
    units), remembered: the Annotate page groups every annotation on every save, and normalising was most of
    that time (0.5 s a save with 2,000 annotations)."""
    return text_key(text)


def latest_per_annotator_and_unit(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Of annotation rows, per (annotator, normalised text) the one with the highest ``annotation_id``, with
    ``versions`` added (rows of that annotator and unit); ordered by ``annotation_id``. Order by id, not by
    ``created_at``: times have one-second resolution and imports may carry older ones."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (row["annotator"], unit_key(row["text"]))
        counts[key] = counts.get(key, 0) + 1
        if key not in latest or row["annotation_id"] > latest[key]["annotation_id"]:
            latest[key] = row
    out = [{**row, "versions": counts[key]} for key, row in latest.items()]
    return sorted(out, key=lambda r: r["annotation_id"])


def check_query(query: str) -> None:
    """Refuse a full-text query past :data:`MAX_QUERY_TERMS` terms or :data:`MAX_QUERY_CHARS` characters."""
    if len(query) > MAX_QUERY_CHARS or len(query.split()) > MAX_QUERY_TERMS:
        raise WorkspaceError(f"search query too long: at most {MAX_QUERY_TERMS} terms and {MAX_QUERY_CHARS} "
                             "characters")


def search_error(query: str, exc: Exception) -> WorkspaceError:
    """A failed full-text query as a one-line reason: pandas wraps SQLite's error in a message that quotes the whole
    SQL statement, which is no business of the user's; SQLite's own reason is kept."""
    reason = exc.__cause__ if isinstance(exc.__cause__, sqlite3.Error) else exc
    return WorkspaceError(f"cannot search for {query!r}: {reason}")


def _group_expr(by: str, alias: str = "d", date_column: str = "date") -> str:
    """SQL for a grouping: ``by`` must be one of GROUP_FIELDS; ``alias`` and ``date_column`` come from callers'
    fixed strings (``documents d`` and its ``date``, or a counts table and its ``month``)."""
    if by not in GROUP_FIELDS:
        raise WorkspaceError(f"cannot group by {by!r}; choose one of {', '.join(GROUP_FIELDS)}")
    if date_column not in ("date", "month") or not alias.isidentifier():
        raise ValueError(f"bad column reference {alias}.{date_column}")
    return f"substr({alias}.{date_column}, 1, 4)" if by == "year" else f"{alias}.{by}"


def _row_document(row: sqlite3.Row) -> Document:
    return Document(id=row["id"], text=row["text"], meta=json.loads(row["meta"] or "{}"),
                    **{f: row[f] for f in METADATA_FIELDS})
