"""Workflows shared by the command line and the app (nlp.jobs)."""

import pytest

from nlp.jobs import add_tagged_documents, check_metadata
from nlp.pipeline import DocumentTagger
from nlp.schema import Document
from nlp.text import TextProcessor
from nlp.workspace import Workspace, WorkspaceError


@pytest.mark.parametrize("values, message", [
    ({"date": "17/05/2024"}, "date must be ISO"),
    ({"date": "2024-13"}, "date must be ISO"),
    ({"issuer_type": "municipal"}, "issuer_type must be one of"),
    ({"title": "a\nb"}, "control characters"),
    ({"issuer": "\x1b[31mred"}, "control characters"),
    ({"text": "replaced"}, "not a document field"),
    ({"url": "x" * 2001}, "at most 2,000 characters"),
])
def test_check_metadata_refuses_with_the_field_named(values, message):
    with pytest.raises(WorkspaceError, match=message):
        check_metadata(values)


def test_check_metadata_accepts_partial_dates_and_strips():
    assert check_metadata({"date": " 2024 ", "issuer_type": "city", "country": None}) == {
        "date": "2024", "issuer_type": "city", "country": ""}
    assert check_metadata({"date": "2024-05"})["date"] == "2024-05"
    assert check_metadata({"date": "2024-05-31"})["date"] == "2024-05-31"


def test_add_tagged_documents_sets_metadata_and_tags_and_skips_duplicates(tmp_path, linear_model, codebook):
    tagger, _info = linear_model
    runner = DocumentTagger(tagger, TextProcessor(codebook))
    doc = Document(id="pasted-1", text="The mayor signed a sister city agreement with Kyoto and a student exchange.")
    items = list(runner.tag([doc]))
    kwargs = dict(model_ref="linear@test", model_name="linear", model_version="test", tagger_name="linear",
                  labels=tagger.labels, thresholds=tagger.thresholds_)
    with Workspace(tmp_path) as ws:
        report = add_tagged_documents(ws, items, metadata={"pasted-1": {"issuer": "City of Kyoto",
                                                                        "issuer_type": "city", "date": "2024-05"}},
                                      **kwargs)
        assert report.added == ["pasted-1"] and not report.skipped
        stored = ws.get_document("pasted-1")
        assert (stored.issuer, stored.issuer_type, stored.date) == ("City of Kyoto", "city", "2024-05")
        tags = ws.predictions_for("pasted-1", "linear@test")
        assert {k for k, v in tags.items() if v["selected"]} == set(items[0].selected["functions"]
                                                                      + items[0].selected["domains"])
        again = add_tagged_documents(ws, items, **kwargs)
        assert again.added == [] and again.skipped[0][0] == "pasted-1"
        with pytest.raises(WorkspaceError, match="date must be ISO"):
            add_tagged_documents(ws, items, metadata={"pasted-1": {"date": "May 2024"}}, **kwargs)
        assert ws.count_documents() == 1


# -- importing, classifying, annotations: the layer the CLI, the app and Dask share -----------------------------------
def test_import_documents_keeps_the_good_around_the_rejected(tmp_path):
    from nlp.ingest import Rejected
    from nlp.jobs import import_documents

    seen = []
    items = [Document(id="a", text="The mayor met the ambassador of Japan."), Rejected("bad.pdf", "not a PDF"),
             Document(id="b", text="The council adopted the climate plan."),
             Document(id="c", text="the  mayor met the AMBASSADOR of Japan.")]  # the text of "a" again
    with Workspace(tmp_path) as ws:
        report = import_documents(ws, items, on_rejected=seen.append)
        stored = {row[0] for row in ws.conn.execute("SELECT id FROM documents")}
    assert report.read == 3 and report.added == 2 and stored == {"a", "b"}
    assert report.rejected == [("bad.pdf", "not a PDF")] and [r.id for r in seen] == ["bad.pdf"]
    assert [d for d, _ in report.duplicates] == ["c"]


def test_import_folder_of_tables_imports_each_file_once(tmp_path):
    import pandas as pd

    from nlp.jobs import import_folder_of_tables

    folder = tmp_path / "corpora"
    folder.mkdir()
    pd.DataFrame({"id": ["x1", "x2"], "text": ["Sister cities Seattle and Kobe renewed their agreement.", ""],
                  "source": ["test", "test"]}).to_parquet(folder / "t.parquet", index=False)
    rejected = []
    with Workspace(tmp_path / "ws") as ws:
        first = import_folder_of_tables(ws, folder, on_rejected=rejected.append)
        again = import_folder_of_tables(ws, folder)
        n = ws.conn.execute("SELECT count(*) FROM documents").fetchone()[0]
    assert first["t.parquet"].added == 1 and [r.id for r in rejected] == ["x2"]  # the empty row, with its reason
    assert again == {} and n == 1  # the same file's content is not read twice
    with Workspace(tmp_path / "ws2") as ws, pytest.raises(WorkspaceError, match="no shipped corpus"):
        import_folder_of_tables(ws, tmp_path / "empty")


def test_classify_workspace_in_batches_then_nothing_left(tmp_path, linear_model, codebook):
    from nlp.jobs import classify_workspace

    tagger, info = linear_model
    docs = [Document(id=f"d{i}", text=f"Delegation {i} from Kyoto visited our sister city for a cultural exchange.")
            for i in range(5)]
    updates, started = [], []

    class Bar:
        def update(self, n):
            updates.append(n)

    with Workspace(tmp_path) as ws:
        ws.add_documents(docs)
        report = classify_workspace(ws, tagger, info, codebook, batch_size=2, progress=Bar(), before=started.append)
        assert (report.todo, report.saved, report.on_dask) == (5, 5, False) and updates == [2, 2, 1]
        assert [r.todo for r in started] == [5]
        assert ws.count_unclassified(info.ref) == 0
        again = classify_workspace(ws, tagger, info, codebook)
    assert (again.todo, again.saved) == (0, 0)


def test_import_annotations_stores_each_unit_once(tmp_path, codebook):
    from nlp.jobs import import_annotations
    from nlp.schema import Annotation

    units = [Annotation("u1", "Seattle and Kobe renewed their sister-city agreement.", {"functions": ["twinning"]}),
             Annotation("u2", "Seattle and Kobe renewed their sister-city agreement.", {"functions": ["twinning"]}),
             Annotation("u3", "The council adopted the budget.", {"functions": []}, meta={"annotator": "ana"})]
    with Workspace(tmp_path) as ws:
        first = import_annotations(ws, units, codebook)
        second = import_annotations(ws, units, codebook)
        rows = ws.annotations()
    assert (first.added, first.present) == (2, 1)  # u2 repeats u1
    assert (second.added, second.present) == (0, 3)
    assert sorted(r["annotator"] for r in rows) == ["ana", "import"]
