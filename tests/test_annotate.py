"""The Annotate page's pieces that need no browser: passages shown as paragraphs without page furniture (on real UN
General Debate records), label hotkeys, the plain-words reason a passage was chosen, the undo rules, and the
workspace's rule that an edit is a new row and the latest row per annotator and unit is what counts."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from nlp.app.annotating import (LABEL_KEYS, RESERVED_KEYS, Action, closest_call, label_hotkeys, labels_summary,
                                snippet, undo_plan, why_chosen)
from nlp.display import display_text, ends_sentence, is_furniture
from nlp.pipeline import text_for_tagging
from nlp.schema import Document
from nlp.workspace import Workspace

UNGDC = Path(__file__).resolve().parents[1] / "corpora" / "ungdc_sample.parquet"


@pytest.fixture(scope="module")
def ungdc() -> pd.DataFrame:
    return pd.read_parquet(UNGDC).set_index("id")


def passage(frame: pd.DataFrame, doc_id: str, start: str, chars: int = 2500) -> tuple[str, str]:
    """A stretch of a real record as the workspace holds it (title and body, as tagged), from the first occurrence
    of ``start``; and the title."""
    row = frame.loc[doc_id]
    text = text_for_tagging(Document(id=doc_id, text=row["text"], title=row["title"]))
    at = text.index(start)
    return text[at: at + chars], row["title"]


# -- display_text on real UN records -------------------------------------------------------------------------------
def test_double_spaced_record_becomes_paragraphs(ungdc):
    """Andorra 2000: every printed line is followed by a blank line. Shown, the lines of a paragraph are one line
    again, paragraphs stay apart, and the title stays a paragraph of its own."""
    text, title = passage(ungdc, "ungdc-AND-2000", "Andorra statement")
    assert "Andorra will\n\nbecome, through" in text  # as stored
    shown = display_text(text, title)
    paragraphs = shown.split("\n\n")
    assert paragraphs[0] == title
    assert paragraphs[1].startswith("Andorra will become, through the Western European and Others Group (WEOG) "
                                    "rotation scheme, a member of the Economic and Social Council")
    assert paragraphs[1].endswith("Member of the United Nations since 1993.")
    assert paragraphs[2].startswith("My Minister of External Relations, Mr. Albert Pintat, would have loved")
    assert "\n" not in "".join(paragraphs)  # no hard line break inside a paragraph
    assert len(paragraphs) < text.count("\n\n") / 5
    # nothing of the speech is lost: the same words in the same order
    assert shown.split() == text.split()


def test_page_numbers_in_mid_sentence_are_dropped_and_the_sentence_joined(ungdc):
    text, title = passage(ungdc, "ungdc-AND-2000", "In the photograph, she is dressed", 600)
    assert "stones of the\n\n16\n\nfamily farm" in text
    shown = display_text(text, title)
    assert "the stones of the family farm, high up in the mountains above Saint Julia" in shown
    assert "16" not in shown.split()


def test_symbols_and_job_numbers_are_dropped(ungdc):
    """Algeria 2008 and Niger 2008: running heads "A/63/PV.13" and "25 08-53122" in mid-sentence; UAE 2015: a
    page footer "2/29 15-29822" and head "02/10/2015 A/70/PV.26" between paragraphs that continue a sentence."""
    text, _ = passage(ungdc, "ungdc-DZA-2008", "The African continent has been experiencing", 800)
    assert "achievements\n\nA/63/PV.13\n\n25 08-53122\n\nhave been" in text
    shown = display_text(text)
    assert "the continent’s achievements have been the most remarkable." in shown
    assert "A/63/PV.13" not in shown and "08-53122" not in shown
    text, _ = passage(ungdc, "ungdc-ARE-2015", "We are fully aware of the consequences", 1200)
    assert "share their\n\n2/29 15-29822\n\n02/10/2015 A/70/PV.26\n\nviews." in text
    shown = display_text(text)
    assert "who do not share their views. We commend" in shown
    assert "15-29822" not in shown and "A/70/PV.26" not in shown


def test_paragraph_text_keeps_its_paragraphs(ungdc):
    """Austria 2015 is stored one paragraph per line: nothing to join, a head in mid-sentence dropped."""
    text, _ = passage(ungdc, "ungdc-AUT-2015", "Secondly, we have to look at the functioning", 2500)
    shown = display_text(text)
    assert "Treaty on the Non-Proliferation of Nuclear Weapons last May failed" in shown
    assert "A/70/PV.22" not in shown
    paragraphs = shown.split("\n\n")
    assert paragraphs[0].startswith("Secondly,") and paragraphs[1].startswith("We highly value the fact")
    assert len(paragraphs) == text.count("\n\n") - 1  # one break gone with the head, the others kept


def test_citations_and_stage_directions(ungdc):
    assert ends_sentence("in dignity and peace.” (A/55/PV.3)")
    assert ends_sentence("they will receive broad support.") and ends_sentence("“Why?”")
    assert not ends_sentence("report (A/55/305) prepared by the") and not ends_sentence("the stones of the")
    shown = display_text("We stand ready.\n(spoke in French)\nNous sommes prêts.")
    assert shown.split("\n\n") == ["We stand ready.", "(spoke in French)", "Nous sommes prêts."]
    assert display_text("Secretary-\n\nGeneral Ban and the great-\ngrandmother") == \
        "Secretary-General Ban and the great-grandmother"


def test_press_releases_and_resolutions_keep_their_breaks():
    """Text that is not hard-wrapped keeps its lines: a schedule's headings over paragraphs (blank lines, no
    sentence end) stay apart, and a resolution's one-clause lines ("Whereas, ...; and") are not run together."""
    state = pd.read_parquet(UNGDC.parent / "state_department.parquet")
    schedule = next(t for t in state.text if t.startswith("***THE DAILY PUBLIC SCHEDULE"))
    assert display_text(schedule).split("\n\n") == [p.strip() for p in schedule.split("\n\n") if p.strip()]
    council = pd.read_parquet(UNGDC.parent / "nyc_council.parquet")
    resolution = next(t for t in council.text if "; and\nWhereas, " in t)
    shown = display_text(resolution)
    assert shown.count("; and\nWhereas, ") == resolution.count("; and\nWhereas, ")


@pytest.mark.parametrize("line", ["16", "A/64/PV.3", "09-52285", "25 08-53122", "2/29 15-29822",
                                  "02/10/2015 A/70/PV.26", "A/70/PV.22 01/10/2015", "---", "*****", "______"])
def test_furniture(line):
    assert is_furniture(line) and display_text(f"The Assembly met\n{line}\nin New York.") == \
        "The Assembly met in New York."


@pytest.mark.parametrize("line", ["1999.", "(A/55/305) on peacekeeping.", "Peace.", "A/64 is a resolution",
                                  "25 member States"])
def test_not_furniture(line):
    assert not is_furniture(line)


def test_plain_text_unchanged():
    text = "First paragraph, one sentence.\n\nSecond paragraph.\nA line after a full stop stays a line."
    assert display_text(text) == text
    assert display_text("") == "" and display_text("\n16\n\n") == ""


# -- hotkeys and words ----------------------------------------------------------------------------------------------
def test_every_label_has_its_own_key_in_codebook_order(codebook):
    keys = label_hotkeys(codebook)
    labels = [(axis, lab) for axis in codebook.axis_names for lab in codebook.labels(axis)]
    assert list(keys) == labels and len(set(keys.values())) == len(labels)
    assert [keys[p] for p in labels[:9]] == list("123456789")
    assert not set(keys.values()) & (set(RESERVED_KEYS) | {"S", "U"})
    assert len(LABEL_KEYS) >= len(labels)


def test_why_chosen_in_plain_words():
    scores = {"functions": {"advocacy": 0.49, "twinning": 0.9}, "domains": {"peace": 0.1}}
    thresholds = {"functions": {"advocacy": 0.5, "twinning": 0.5}, "domains": {"peace": 0.4}}
    call = closest_call(scores, thresholds)
    assert call == ("functions", "advocacy", 0.49, 0.5)
    assert why_chosen("uncertainty", call) == (
        "The model is unsure about this passage: its closest label is advocacy, scored 0.49 against a threshold of "
        "0.50 (just below: not suggested).")
    assert why_chosen("random", call).startswith("Drawn at random")
    assert labels_summary({"functions": ["advocacy"]}, ["functions", "domains"]) == \
        "functions: advocacy · domains: none"
    assert snippet("word " * 100, 20) == "word word word word …"


def test_undo_plans():
    saved = {"functions": ["advocacy"], "domains": []}
    assert undo_plan(Action("save", 3, 17, None, 5, saved)) == {"delete": 17, "pos": 3, "labels": saved,
                                                                 "open": None}
    before = {"functions": [], "domains": ["peace"]}
    assert undo_plan(Action("edit", None, 18, 17, 5, saved), before) == {"delete": 18, "pos": None,
                                                                         "labels": before, "open": 17}
    assert undo_plan(Action("skip", 4))["delete"] is None


# -- the workspace: edits are rows, the latest counts -----------------------------------------------------------
def test_edits_are_new_rows_and_the_latest_per_annotator_and_unit_counts(tmp_path, codebook, ungdc):
    from nlp.annotations import export_annotations

    home = tmp_path / "ws"
    row = ungdc.iloc[0]
    doc = Document(id=row.name, text=row["text"], title=row["title"], source=row["source"], date=row["date"])
    A = {"functions": ["advocacy"], "domains": []}
    B = {"functions": ["advocacy"], "domains": ["peace"]}
    with Workspace(home) as ws:
        ws.add_documents([doc])
        doc_id = ws.row_id(doc.id)
        text = doc.text[:400]
        first = ws.add_annotation(text, A, "ana", doc_id=doc_id)
        other = ws.add_annotation(" ".join(text.split()), B, "bo")  # the same unit (normalised text), another person
        second = ws.edit_annotation(first, B)
        third = ws.edit_annotation(second, A)  # back to A: a version of its own, it must win
        with pytest.raises(KeyError):
            ws.edit_annotation(10_000, A)
        assert first < other < second < third
        assert ws.document_info(doc.id)["title"] == doc.title and ws.document_info("nope") is None
        assert ws.latest_annotation_id("ana", text) == third
        assert ws.latest_annotation_id("bo", text) == other  # found by normalised text
        assert ws.latest_annotation_id("ana", text + " More.") is None and ws.latest_annotation_id("cy", text) is None
    conn = sqlite3.connect(home / "cdpd.sqlite")  # every version is a row, committed
    rows = conn.execute("SELECT annotation_id, labels, annotator, doc_id FROM annotations ORDER BY 1").fetchall()
    conn.close()
    assert [(r[0], json.loads(r[1]), r[2]) for r in rows] == [(first, A, "ana"), (other, B, "bo"),
                                                              (second, B, "ana"), (third, A, "ana")]
    assert rows[2][3] == rows[3][3] == doc_id  # a version keeps its document
    with Workspace(home, create=False) as ws:
        latest = ws.latest_annotations()
        assert [(r["annotation_id"], r["versions"]) for r in latest] == [(other, 1), (third, 3)]
        history = ws.annotation_history("ana")
        assert [(h["annotation_id"], h["labels"], h["title"]) for h in history] == [(third, A, doc.title)]
        units = ws.annotation_units(codebook)
        assert [(u.id, u.labels["domains"], u.meta["annotator"]) for u in units] == [
            (f"workspace:{other}", ["peace"], "bo"), (f"workspace:{third}", [], "ana")]
        path = export_annotations(units, tmp_path / "out.jsonl", codebook, "jsonl")
        assert [json.loads(line)["annotator"] for line in path.read_text().splitlines()] == ["bo", "ana"]
        # undo of the last edit: the version before it counts again
        assert ws.delete_annotation(third)
        assert [(u.id, u.labels["domains"]) for u in ws.annotation_units(codebook)
                if u.meta["annotator"] == "ana"] == [(f"workspace:{second}", ["peace"])]
