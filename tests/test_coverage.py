"""What the trends stand on (issue 14, item 5): documents per source per period, the undated documents left out,
warnings where the mix of sources changes, a full-text search restricting the aggregates, and BM25 ranking of
searched documents, on a planted workspace whose sources change across years."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nlp.analysis.tables import (Filters, composition_changes, cooccurrence, coverage, group_totals, label_table,
                                 trends, undated, undated_note)
from nlp.browse import count_documents, document_table
from nlp.cli import main
from nlp.pipeline import TaggedDocument
from nlp.schema import Document
from nlp.text import Passage, Sentence
from nlp.workspace import Workspace, WorkspaceError

MODEL = "plant@00000000"
FILLER = "The council met and discussed the budget, the schools and the parks of the district."
# (id, source, issuer_type, date, text, functions selected). The UN speeches come alone in 2000-2001; the council
# enters in 2002 (3 of 4 documents); the UN leaves after 2003; the plans carry no date; one UN speech is dated to
# the year only. "zephyrine" (a rare word) is three times in u3 and once in c5, whose texts are equally long.
PLANT = [
    ("u1", "un", "national", "2000-09-20", f"Sister city ties and peace. {FILLER}", ["twinning", "advocacy"]),
    ("u2", "un", "national", "2000-09-21", f"Peace and security. {FILLER}", ["advocacy"]),
    ("u3", "un", "national", "2001-09-20", "zephyrine zephyrine zephyrine word word word word word word word",
     ["advocacy"]),
    ("u4", "un", "national", "2001-09-22", f"Sister city exchanges. {FILLER}", ["twinning"]),
    ("u5", "un", "national", "2002-09-20", f"Sanctions and peace. {FILLER}", ["coercive_measures"]),
    ("u6", "un", "national", "2003", f"Sister city support, once more. {FILLER}", ["twinning", "advocacy"]),
    ("c1", "council", "city", "2002-03-01", f"A sister city resolution. {FILLER}", ["twinning"]),
    ("c2", "council", "city", "2002-04-01", f"Parks and schools. {FILLER}", []),
    ("c3", "council", "city", "2002-05-01", f"Sister city with Kyoto. {FILLER}", ["twinning", "advocacy"]),
    ("c4", "council", "city", "2003-05-01", f"Budget hearing. {FILLER}", ["advocacy"]),
    ("c5", "council", "city", "2004-01-10", "zephyrine word word word word word word word word word word",
     ["advocacy"]),
    ("c6", "council", "city", "2004-02-10", f"Sister city festival. {FILLER}", ["twinning"]),
    ("p1", "plans", "city", "", f"Climate plan with a sister city. {FILLER}", ["twinning"]),
    ("p2", "plans", "city", "", f"Climate plan for buildings. {FILLER}", []),
    ("p3", "plans", "city", "", f"Climate plan for transport. {FILLER}", ["advocacy"]),
]


def _tagged(doc: Document, labels: dict[str, list[str]], functions: list[str]) -> TaggedDocument:
    sent = Sentence(0, len(doc.text), doc.text.split())
    passages = [Passage(0, 0, len(doc.text), [sent])]
    selected = {axis: (functions if axis == "functions" else []) for axis in labels}
    scores = {axis: np.array([0.9 if lab in selected[axis] else 0.1 for lab in labs]) for axis, labs in labels.items()}
    passage_scores = {axis: s[None, :] for axis, s in scores.items()}
    evidence = {lab: [doc.text] for lab in functions}
    return TaggedDocument(doc, passages, scores, passage_scores, selected, evidence)


@pytest.fixture()
def planted(tmp_path, codebook):
    labels = codebook.label_sets()
    home = tmp_path / "ws"
    ws = Workspace(home)
    docs = [Document(id=i, text=text, title=f"Document {i}", source=s, issuer_type=t, date=d)
            for i, s, t, d, text, _f in PLANT]
    ws.add_documents(docs)
    ws.register_model(MODEL, "plant", "00000000", "lexicon", labels)
    rows = dict(ws.conn.execute("SELECT id, doc_id FROM documents").fetchall())
    items = [(rows[doc.id], _tagged(doc, labels, f)) for doc, (*_rest, f) in zip(docs, PLANT)]
    ws.save_predictions(MODEL, items, {axis: np.full(len(labs), 0.5) for axis, labs in labels.items()})
    yield ws
    ws.close()


def _hand(pred) -> list[tuple]:
    return [row for row in PLANT if pred(row)]


# -- coverage and undated documents ----------------------------------------------------------------------------
def test_coverage_counts_documents_per_source_and_year(planted):
    table = coverage(planted, MODEL)
    assert table.index.name == "source" and table.columns.name == "year"
    assert list(table.columns) == ["2000", "2001", "2002", "2003", "2004"]  # the plans have no year
    assert table.loc["un"].tolist() == [2, 2, 1, 1, 0]
    assert table.loc["council"].tolist() == [0, 0, 3, 1, 2]
    assert "plans" not in table.index
    # the column sums are the trends' denominators
    totals = trends(planted, MODEL).groupby("period")["total"].first()
    assert totals.to_dict() == table.sum(axis=0).to_dict()
    by_month = coverage(planted, MODEL, period="month")
    assert by_month.columns.name == "month" and "2003" not in by_month.columns  # u6 is dated to the year only
    assert int(by_month.loc["un"].sum()) == 5 and by_month.loc["council", "2002-03"] == 1
    # a scan (a filter on the day) answers the same as the counts
    scanned = coverage(planted, MODEL, filters=Filters(date_from="2000-01-01"))
    assert scanned.equals(table)
    assert coverage(planted, MODEL, filters=Filters.parse(["source=council"])).index.tolist() == ["council"]


def test_undated_documents_are_counted_and_named_per_source(planted):
    missing = undated(planted, MODEL)
    assert missing.to_dict("records") == [
        {"source": "plans", "issuer_type": "city", "reason": "no date", "documents": 3}]
    by_month = undated(planted, MODEL, period="month")
    assert by_month[["source", "reason", "documents"]].values.tolist() == [
        ["plans", "no date", 3], ["un", "year only (no month)", 1]]
    note = undated_note(by_month)
    assert note.startswith("4 classified document(s) are not in the trends: 3 have no date (“plans” 3, city)")
    assert "1 are dated to the year only, not the month (“un” 1, national)" in note
    assert undated_note(undated(planted, MODEL, filters=Filters(date_from="2000"))) is None  # bounds drop them


def test_composition_warnings_name_the_entering_and_leaving_sources(planted):
    lines = composition_changes(coverage(planted, MODEL))
    assert lines[0].startswith("2002: “council” enters (75% of 2002's documents) — before 2002 every document is "
                               "from “un”")
    assert "the share of “un” falls from 100% (2001) to 25% (2002)" in lines[0]
    assert lines[1] == ("2004: the share of “council” rises from 50% (2003) to 100% (2004); “un” leaves (it had "
                        "50% of 2003's documents)")  # one line per period, its sources' events joined
    assert not any(line.startswith("2003") for line in lines)  # 75% -> 50% is within the 25-point threshold
    assert any(line.startswith("2003") for line in composition_changes(coverage(planted, MODEL), threshold=0.2))
    # a steady mix gives no warning; one period, nothing to compare
    steady = pd.DataFrame({"2000": [2, 2], "2001": [3, 3]}, index=["a", "b"]).rename_axis(columns="year")
    assert composition_changes(steady) == []
    assert composition_changes(coverage(planted, MODEL, filters=Filters.parse(["source=un"]))) == []  # one source
    assert composition_changes(steady.iloc[:, :1]) == []


def test_composition_warnings_group_runs_and_summarise_busy_sources():
    # b's share rises two periods running: one event naming the first and last
    table = pd.DataFrame({"1": [9, 1], "2": [5, 5], "3": [1, 9]}, index=["a", "b"]).rename_axis(columns="year")
    lines = composition_changes(table)
    assert lines == ["2–3: the share of “a” falls from 90% (1) to 10% (3); the share of “b” rises from 10% (1) "
                     "to 90% (3)"]
    # a source that comes and goes month by month: one summary line, not one per month
    months = [f"2020-{m:02d}" for m in range(1, 13)]
    busy = pd.DataFrame([[5] * 12, [3 if m % 2 else 0 for m in range(12)]], index=["a", "b"],
                        columns=pd.Index(months, name="month"))
    lines = composition_changes(busy)
    assert len(lines) == 3 and lines[0].startswith("2020-02: “b” enters (38% of 2020-02's documents)")
    assert lines[1].startswith("2020-02–2020-12: “a” comes and goes, or its share moves by over 25 points, 11 times "
                               "(between 62% and 100% of a month's documents)")
    assert lines[2].startswith("2020-03–2020-12: “b” comes and goes") and "none in 5 of these 11 months" in lines[2]
    with pytest.raises(ValueError):
        composition_changes(busy, threshold=0)


# -- search restricts the aggregates ------------------------------------------------------------------------------
def test_search_restricts_trends_and_actor_tables(planted):
    sister = Filters(search="sister")
    assert not sister.aggregable and Filters(search="  ").aggregable  # a blank search is no search
    hits = _hand(lambda r: "sister" in r[4].lower())
    assert count_documents(planted, sister) == len(hits) == 7
    got = trends(planted, MODEL, filters=sister)
    dated = [r for r in hits if len(r[3]) >= 4]
    for year in ("2000", "2001", "2002", "2003"):
        rows = got[got["period"] == year].set_index("label")
        in_year = [r for r in dated if r[3][:4] == year]
        assert rows["total"].iloc[0] == len(in_year)
        assert rows.loc["twinning", "documents"] == sum("twinning" in r[5] for r in in_year)
        assert rows.loc["advocacy", "documents"] == sum("advocacy" in r[5] for r in in_year)
    assert set(got["period"]) == {"2000", "2001", "2002", "2003", "2004"}
    assert coverage(planted, MODEL, filters=sister).loc["council"].tolist() == [0, 0, 2, 0, 1]
    assert undated(planted, MODEL, filters=sister)["documents"].tolist() == [1]  # p1
    # actor tables and co-occurrence count the matching documents, dated or not
    table = label_table(planted, MODEL, axis="functions", by="source", filters=sister)
    assert table.loc["twinning"].to_dict() == {"council": 3, "plans": 1, "un": 3}
    assert group_totals(planted, MODEL, by="source", filters=sister).to_dict() == {"council": 3, "plans": 1, "un": 3}
    assert int(cooccurrence(planted, MODEL, filters=sister).to_numpy().sum()) == 0  # no domain selected
    # with other filters, and through top (which rebuilds the filters): the search is kept
    both = Filters(where={"source": ["un"]}, search="sister")
    assert group_totals(planted, MODEL, by="source", filters=both).to_dict() == {"un": 3}
    assert set(trends(planted, MODEL, by="source", top=1)["group"]) == {"council"}  # 6 dated each; by name
    top = trends(planted, MODEL, by="source", top=1, filters=Filters(search="peace"))  # u1, u2, u5
    assert set(top["group"]) == {"un"} and top.groupby("period")["total"].first().sum() == 3
    # a bad query: the clean error, no SQL
    for bad in ('"unclosed', "AND OR"):
        for call in (lambda f: trends(planted, MODEL, filters=f), lambda f: coverage(planted, MODEL, filters=f),
                     lambda f: label_table(planted, MODEL, filters=f), lambda f: count_documents(planted, f)):
            with pytest.raises(WorkspaceError, match="cannot search for") as err:
                call(Filters(search=bad))
            assert "SELECT" not in str(err.value) and "documents_fts" not in str(err.value)


# -- relevance ranking --------------------------------------------------------------------------------------------
def test_document_table_ranks_by_bm25_or_by_date(planted):
    ranked = document_table(planted, MODEL, query="zephyrine")
    assert ranked["id"].tolist() == ["u3", "c5"]  # three matches above one, though c5 is newer
    assert list(ranked.columns[:2]) == ["relevance", "id"] and ranked["relevance"].is_monotonic_decreasing
    assert document_table(planted, MODEL, query="zephyrine", sort="date")["id"].tolist() == ["c5", "u3"]
    assert document_table(planted, MODEL, filters=Filters(search="zephyrine"))["id"].tolist() == ["u3", "c5"]
    # with a label join and a filter: parameters in their places
    assert document_table(planted, MODEL, query="zephyrine", label="advocacy",
                          filters=Filters.parse(["source=council"]))["id"].tolist() == ["c5"]
    plain = document_table(planted, MODEL)  # no query: newest first, no relevance column, as before
    assert "relevance" not in plain.columns and plain["id"].iloc[0] == "c6"
    with pytest.raises(WorkspaceError, match="cannot search for") as err:
        document_table(planted, MODEL, query='"unclosed')
    assert "SELECT" not in str(err.value)
    with pytest.raises(WorkspaceError, match="sort must be"):
        document_table(planted, MODEL, query="zephyrine", sort="size")


def test_cdpd_search_ranks_by_bm25_or_by_date(planted, capsys):
    home = str(planted.home)
    capsys.readouterr()
    assert main(["search", "zephyrine", "--workspace", home]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith("u3\tun\t2001-09-20\t") and lines[2].startswith("c5\tcouncil\t")
    assert float(lines[0].split("\t")[4]) > float(lines[2].split("\t")[4]) > 0
    assert "ranked by relevance (BM25" in err
    assert main(["search", "zephyrine", "--sort", "date", "--workspace", home]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0].startswith("c5\t") and "newest first" in err
    assert main(["search", '"unclosed', "--workspace", home]) == 2
    out, err = capsys.readouterr()
    assert "cannot search for" in err and "SELECT" not in err
