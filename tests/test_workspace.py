"""The workspace: SQLite settings and schema, deduplicated imports, full-text search, refusal of files it cannot
use, resumable classification, annotations, language flags, and label shares checked by hand."""

from __future__ import annotations

import sqlite3
from typing import Sequence

import numpy as np
import pytest

from nlp.models import ModelInfo
from nlp.schema import Document
from nlp.taggers.base import Tagger
from nlp.text import Passage
from nlp.workspace import DB_FILE, SCHEMA_VERSION, Workspace, WorkspaceError

FRENCH = (
    "Le conseil municipal de Lyon a approuvé hier soir un accord de coopération avec la ville de Montréal. "
    "Les deux villes veulent partager leurs expériences en matière de transports publics et de logement social. "
    "La maire a rappelé que ce partenariat existe depuis plus de trente ans."
)
GERMAN = (
    "Die Stadt Zürich hat am Montag ein neues Partnerschaftsabkommen mit einer Stadt in Ostafrika unterzeichnet. "
    "Der Stadtpräsident betonte, dass der Austausch von Fachwissen bei der Wasserversorgung im Mittelpunkt stehe. "
    "Im nächsten Frühjahr soll eine Delegation aus Daressalam die Kläranlagen der Stadt besuchen."
)


def real_docs(frame, n, **meta) -> list[Document]:
    return [Document(id=r.id, text=r.text, title=r.title, source=r.source, issuer=r.issuer,
                     issuer_type=r.issuer_type, date=r.date, **meta) for r in frame.head(n).itertuples()]


def count(ws: Workspace, sql: str, *params) -> int:
    return ws.conn.execute(sql, params).fetchone()[0]


class KeywordTagger(Tagger):
    """A fake tagger: a label scores 1 in a passage that contains one of its keywords (lemmas), else 0."""

    name = "keywords"
    trainable = False
    KEYWORDS = {"advocacy": "advocacy", "sanction": "coercive_measures", "peace": "peace", "vaccine": "health"}

    def __init__(self, codebook, fail_on_call: int | None = None, exc: type[BaseException] = RuntimeError):
        super().__init__(codebook)
        self.thresholds_ = {axis: np.full(len(labs), 0.5) for axis, labs in self.labels.items()}  # born fitted
        self.calls = 0
        self.seen_passages = 0
        self.fail_on_call = fail_on_call
        self.exc = exc

    def _row(self, tokens, axis):
        hits = {self.KEYWORDS[t] for t in tokens if t in self.KEYWORDS}
        return [1.0 if lab in hits else 0.0 for lab in self.labels[axis]]

    def passage_proba(self, passages: Sequence[Passage]):
        self.calls += 1
        if self.fail_on_call is not None and self.calls == self.fail_on_call:
            raise self.exc("simulated crash while tagging")
        self.seen_passages += len(passages)
        return {axis: np.array([self._row(p.tokens, axis) for p in passages]).reshape(len(passages), len(labs))
                for axis, labs in self.labels.items()}

    def sentence_contributions(self, passages, axis):
        return [np.array([self._row(s.tokens, axis) for s in p.sentences]) for p in passages]


def classify(monkeypatch, home, tagger, ref="keywords@00000000", batch_size=None):
    """Classify the workspace at ``home`` with ``tagger`` as ``cdpd run`` and ``ingest --classify`` do
    (:func:`nlp.jobs.classify_workspace`), in batches of ``batch_size`` documents (default 256)."""
    from nlp.jobs import CLASSIFY_BATCH, classify_workspace

    name, version = ref.split("@")
    with Workspace(home) as ws:
        classify_workspace(ws, tagger, ModelInfo(name, version, tagger.name, {}), tagger.codebook,
                           batch_size=batch_size or CLASSIFY_BATCH)
    return 0


@pytest.fixture
def ws(tmp_path):
    with Workspace(tmp_path / "ws") as workspace:
        yield workspace


# -------------------------------------------------------------------------------------------- opening, schema


def test_wal_mode_and_schema_version(tmp_path):
    home = tmp_path / "ws"
    with Workspace(home) as ws:
        assert ws.path == home / DB_FILE and ws.path.exists()
        assert ws.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert ws.schema_version == SCHEMA_VERSION == 2
        assert ws.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        tables = {r[0] for r in ws.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"documents", "passages", "predictions", "classified", "annotations", "documents_fts",
                "label_counts", "group_counts"} <= tables
    raw = sqlite3.connect(home / DB_FILE)
    try:  # WAL is a property of the file: another connection sees it too
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "2"
    finally:
        raw.close()
    with Workspace(home, create=False) as again:  # reopening migrates nothing and keeps the version
        assert again.schema_version == 2


def test_missing_workspace_without_create(tmp_path):
    with pytest.raises(WorkspaceError, match="no workspace at"):
        Workspace(tmp_path / "absent", create=False)
    assert not (tmp_path / "absent").exists()


def test_newer_schema_is_refused(tmp_path):
    home = tmp_path / "ws"
    Workspace(home).close()
    raw = sqlite3.connect(home / DB_FILE)
    raw.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    raw.commit()
    raw.close()
    with pytest.raises(WorkspaceError) as info:
        Workspace(home)
    assert "v3" in str(info.value) and "v2" in str(info.value) and "upgrade" in str(info.value)


def test_not_a_database_is_refused(tmp_path):
    home = tmp_path / "ws"
    home.mkdir()
    (home / DB_FILE).write_text("these are my notes, not a database\n" * 200)
    with pytest.raises(WorkspaceError) as info:
        Workspace(home)
    assert str(home / DB_FILE) in str(info.value) and "not a usable cdpd workspace" in str(info.value)


def test_sidebar_filter_values_read_an_index_also_in_a_workspace_made_before_it(tmp_path):
    """The sidebar asks for every filter's values on each page: a scan of the documents (their text included)
    took ~0.45 s at 100k documents; a covering index on the column is read instead, and opening adds it."""
    from nlp.browse import filter_values

    home = tmp_path / "ws"
    Workspace(home).close()
    raw = sqlite3.connect(home / DB_FILE)  # as a workspace made before the indexes
    for name in ("issuer", "country", "city"):
        raw.execute(f"DROP INDEX IF EXISTS documents_{name}")
    raw.commit()
    raw.close()
    with Workspace(home, create=False) as ws:
        assert ws.schema_version == SCHEMA_VERSION
        for name in ("issuer", "country", "city"):
            statements: list[str] = []
            ws.conn.set_trace_callback(statements.append)
            filter_values(ws, name)
            ws.conn.set_trace_callback(None)
            query = next(s for s in statements if "GROUP BY" in s)
            plan = " ".join(row[3] for row in ws.conn.execute(f"EXPLAIN QUERY PLAN {query}"))
            assert f"INDEX documents_{name}" in plan, plan


# ------------------------------------------------------------------------------------------------- documents


def test_adding_documents_twice_adds_nothing(ws, state_department):
    docs = real_docs(state_department, 6)
    first = ws.add_documents(docs)
    assert first.added == 6 and first.duplicates == [] and first.non_english == []
    assert ws.count_documents() == 6
    second = ws.add_documents(docs)
    assert second.added == 0
    assert second.duplicates == [(d.id, "already in the workspace") for d in docs]
    assert ws.count_documents() == 6
    stored = ws.get_document(docs[2].id)
    assert stored.text == docs[2].text and stored.title == docs[2].title and stored.issuer_type == "national"
    assert ws.get_document("nope") is None


def test_duplicates_by_id_and_by_normalised_text(ws, state_department):
    a, b = real_docs(state_department, 2)
    ws.add_documents([a])
    reposted = Document(id="repost", text="  " + a.text.upper().replace(" ", "  \n") + "\u200b ")
    same_id = Document(id=a.id, text=b.text)
    inside_batch = Document(id="copy-of-b", text=b.text.lower())
    report = ws.add_documents([reposted, same_id, b, inside_batch])
    assert report.added == 1  # b
    assert report.duplicates == [("repost", f"same text as {a.id}"),
                                 (a.id, "id already used by another document in the workspace"),
                                 ("copy-of-b", f"same text as {b.id}")]
    assert ws.count_documents() == 2


def test_full_text_search(ws, state_department):
    sanctions = state_department[state_department.title.str.contains("Sanction")].head(3)
    ws.add_documents(real_docs(state_department, 10) + real_docs(sanctions, 3))
    hits = ws.search("Ortega")
    assert hits.id.tolist() == ["state-d7ac595c1ec0"]
    assert "[Ortega]" in hits.snippet.iloc[0]
    stemmed = ws.search("sanctioning")  # porter stemming: finds "sanctions", "sanctioned"
    assert set(sanctions.id) <= set(stemmed.id)
    assert len(ws.search("sanctioning", limit=2)) == 2
    assert ws.search("xyzzyplugh").empty
    for bad in ('"unclosed', "AND OR", "title:"):
        with pytest.raises(WorkspaceError, match="cannot search for"):
            ws.search(bad)


def test_non_english_documents_are_flagged_and_not_tagged(ws, state_department):
    english = real_docs(state_department, 2)
    report = ws.add_documents([english[0], Document(id="lyon", text=FRENCH, source="ccc"),
                               Document(id="zurich", text=GERMAN, source="ccc"), english[1],
                               Document(id="short", text="OK 12 34")])
    assert report.added == 5
    assert report.non_english == [("lyon", "fr"), ("zurich", "de")]
    model = "keywords@00000000"
    batches = list(ws.unclassified(model))
    assert [doc.id for batch in batches for _, doc in batch] == [english[0].id, english[1].id, "short"]
    assert ws.count_unclassified(model) == 3
    per_source = ws.documents_per_source()
    assert per_source.loc["ccc", "non_english"] == 2 and per_source.loc["ccc", "documents"] == 2


def test_unclassified_reads_in_batches_by_id(ws, king_county):
    ws.add_documents(real_docs(king_county, 7))
    batches = list(ws.unclassified("m@1", batch_size=3))
    assert [len(b) for b in batches] == [3, 3, 1]
    ids = [doc_id for b in batches for doc_id, _ in b]
    assert ids == sorted(ids) and len(set(ids)) == 7


# ------------------------------------------------------------------------------------------ classification


def test_interrupted_classification_resumes_without_duplicates(tmp_path, monkeypatch, codebook, state_department,
                                                              king_county):
    home = tmp_path / "ws"
    with Workspace(home) as ws:
        ws.add_documents(real_docs(state_department, 5) + real_docs(king_county, 5))
    crashing = KeywordTagger(codebook, fail_on_call=2, exc=KeyboardInterrupt)  # the second batch never finishes
    with pytest.raises(KeyboardInterrupt):
        classify(monkeypatch, home, crashing, batch_size=4)
    ref = "keywords@00000000"
    with Workspace(home) as ws:
        assert count(ws, "SELECT count(*) FROM classified WHERE model = ?", ref) == 4
        assert count(ws, "SELECT count(*) FROM predictions WHERE model = ?", ref) == 4 * 20
        assert count(ws, "SELECT count(DISTINCT doc_id) FROM passages") == 4
        assert ws.count_unclassified(ref) == 6
        first_batch = {r[0] for r in ws.conn.execute("SELECT doc_id FROM classified")}
        stamp = dict(ws.conn.execute("SELECT doc_id, classified_at FROM classified").fetchall())
    finishing = KeywordTagger(codebook)
    assert classify(monkeypatch, home, finishing, batch_size=4) == 0
    assert finishing.calls == 2  # only the 6 remaining documents, in batches of 4 and 2
    with Workspace(home) as ws:
        assert count(ws, "SELECT count(*) FROM classified WHERE model = ?", ref) == 10
        assert count(ws, "SELECT count(*) FROM predictions WHERE model = ?", ref) == 10 * 20
        assert count(ws, "SELECT count(*) FROM (SELECT DISTINCT model, doc_id, label FROM predictions)") == 200
        n_passages = count(ws, "SELECT count(*) FROM passages")
        assert n_passages == count(ws, "SELECT count(*) FROM (SELECT DISTINCT doc_id, idx FROM passages)")
        assert ws.count_unclassified(ref) == 0
        again = dict(ws.conn.execute("SELECT doc_id, classified_at FROM classified").fetchall())
        assert {k: again[k] for k in first_batch} == stamp  # the first batch was not redone
    # a third run has nothing to do
    idle = KeywordTagger(codebook)
    assert classify(monkeypatch, home, idle) == 0 and idle.calls == 0


def test_a_failing_batch_is_rolled_back_whole(tmp_path, codebook, processor, state_department):
    from nlp.pipeline import DocumentTagger

    ref = "keywords@00000000"
    tagger = KeywordTagger(codebook)
    with Workspace(tmp_path / "ws") as ws:
        ws.add_documents(real_docs(state_department, 4))
        ws.register_model(ref, "keywords", "00000000", "keywords", tagger.labels)
        (batch,) = list(ws.unclassified(ref))
        tagged = list(DocumentTagger(tagger, processor).tag(doc for _, doc in batch))

        class Broken:
            passages = tagged[2].passages

            @property
            def scores(self):
                raise RuntimeError("disk full")

        items = [(doc_id, t) for (doc_id, _), t in zip(batch, tagged)]
        items[2] = (items[2][0], Broken())
        with pytest.raises(RuntimeError, match="disk full"):
            ws.save_predictions(ref, items, tagger.thresholds_)
        for table in ("classified", "predictions", "passages", "passage_labels"):
            assert count(ws, f"SELECT count(*) FROM {table}") == 0, table
        ws.save_predictions(ref, [(doc_id, t) for (doc_id, _), t in zip(batch, tagged)], tagger.thresholds_)
        assert count(ws, "SELECT count(*) FROM classified") == 4


def test_predictions_are_stored_with_evidence(tmp_path, monkeypatch, codebook):
    home = tmp_path / "ws"
    text = "The minister spoke of peace. Sanctions follow. Advocacy for peace continues."
    with Workspace(home) as ws:
        ws.add_documents([Document(id="d1", text=text, issuer_type="national")])
    classify(monkeypatch, home, KeywordTagger(codebook))
    with Workspace(home) as ws:
        preds = ws.predictions_for("d1", "keywords@00000000")
        assert len(preds) == 20
        assert {lab for lab, p in preds.items() if p["selected"]} == {"peace", "coercive_measures", "advocacy"}
        assert preds["peace"]["evidence"] == ["The minister spoke of peace.", "Advocacy for peace continues."]
        assert preds["coercive_measures"]["evidence"] == ["Sanctions follow."]
        assert preds["health"] == {"axis": "domains", "score": 0.0, "selected": False, "evidence": []}
        assert ws.models() == ["keywords@00000000"] and ws.latest_model() == "keywords@00000000"
        assert ws.classifying_models() == ["keywords@00000000"]


def test_state_stamp_moves_with_what_pages_compute_from(tmp_path, monkeypatch, codebook):
    """Pages key their caches on ``state_stamp``: it must change with documents, annotations and the model's
    classifications, and stay put otherwise."""
    home = tmp_path / "ws"
    with Workspace(home) as ws:
        ws.add_documents([Document(id="d1", text="The mayor met the ambassador of Japan.")])
        empty, again = ws.state_stamp("keywords@00000000"), ws.state_stamp("keywords@00000000")
    assert empty == again
    classify(monkeypatch, home, KeywordTagger(codebook))
    with Workspace(home) as ws:
        classified = ws.state_stamp("keywords@00000000")
        assert classified != empty and ws.state_stamp("other@1") != classified
        ws.insert_annotation("The mayor met the ambassador of Japan.", {"functions": ["representation_protocol"]},
                             "ana")
        assert ws.state_stamp("keywords@00000000") != classified
        ws.add_documents([Document(id="d2", text="The council adopted the budget.")])
        assert len({classified, ws.state_stamp("keywords@00000000")}) == 2


# -------------------------------------------------------------------------------------------- label shares

SHARES_DOCS = [
    # (id, issuer_type, issuer, text): the fake tagger's labels are in the comments
    ("c1", "city", "Lyon", "The city council voted for peace advocacy in the region this week."),  # adv, peace
    ("c2", "city", "Lyon", "The mayor spoke about advocacy with the partners of the city."),  # adv
    ("c3", "city", "Kyoto", "The council approved the budget for the parks and the roads."),  # -
    ("n1", "national", "US", "The sanctions are a path to peace, said the minister."),  # coercive, peace
    ("n2", "national", "US", "New sanctions and advocacy for the people of the country."),  # coercive, adv
    ("n3", "national", "FR", "A lasting peace is what the government wants for the region."),  # peace
]


def test_label_shares_by_hand(tmp_path, monkeypatch, codebook):
    home = tmp_path / "ws"
    with Workspace(home) as ws:
        ws.add_documents([Document(id=i, text=t, issuer_type=it, issuer=iss) for i, it, iss, t in SHARES_DOCS]
                         + [Document(id="fr", text=FRENCH, issuer_type="city")])  # flagged: never counted
    classify(monkeypatch, home, KeywordTagger(codebook))
    ref = "keywords@00000000"
    with Workspace(home) as ws:
        # added after classification: not classified, so not in any denominator
        ws.add_documents([Document(id="late", text="Peace advocacy came late to the city that year.",
                                   issuer_type="city")])
        shares = ws.label_shares(ref)
        assert list(shares.columns) == ["city", "national"] and shares.columns.name == "issuer_type"
        assert list(shares.index) == [(a, lab) for a in ("functions", "domains") for lab in codebook.labels(a)]
        expected = {("functions", "advocacy"): (2 / 3, 1 / 3), ("functions", "coercive_measures"): (0, 2 / 3),
                    ("domains", "peace"): (1 / 3, 2 / 3)}
        for key, row in shares.iterrows():
            assert tuple(row) == pytest.approx(expected.get(key, (0.0, 0.0))), key
        by_issuer = ws.label_shares(ref, by="issuer")
        assert list(by_issuer.columns) == ["FR", "Kyoto", "Lyon", "US"]
        assert tuple(by_issuer.loc[("functions", "advocacy")]) == pytest.approx((0, 0, 1, 0.5))
        assert tuple(by_issuer.loc[("domains", "peace")]) == pytest.approx((1, 0, 0.5, 0.5))
        with pytest.raises(WorkspaceError, match="cannot group by 'text'"):
            ws.label_shares(ref, by="text")
        assert ws.label_shares("other@11111111").empty


# ------------------------------------------------------------------------------------------------ annotations


def test_annotations_survive_reopening(tmp_path, state_department):
    home = tmp_path / "ws"
    doc = real_docs(state_department, 1)[0]
    with Workspace(home) as ws:
        ws.add_documents([doc])
        doc_id = count(ws, "SELECT doc_id FROM documents WHERE id = ?", doc.id)
        first = ws.add_annotation(doc.text[:300], {"functions": ["advocacy"], "domains": []}, " Ana ", doc_id=doc_id)
        second = ws.add_annotation("Un texte libre.", {"functions": [], "domains": ["culture"]}, "Bo")
        assert second == first + 1
        with pytest.raises(WorkspaceError, match="annotator"):
            ws.add_annotation("x", {}, "   ")
    with Workspace(home, create=False) as ws:  # a new connection: what was committed is there
        rows = ws.annotations()
    assert [(r["annotation_id"], r["document"], r["annotator"], r["labels"]) for r in rows] == [
        (first, doc.id, "Ana", {"functions": ["advocacy"], "domains": []}),
        (second, None, "Bo", {"functions": [], "domains": ["culture"]}),
    ]
    assert rows[0]["text"] == doc.text[:300] and rows[1]["text"] == "Un texte libre."
