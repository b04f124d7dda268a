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
