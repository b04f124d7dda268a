"""The Streamlit app, page by page, with streamlit's AppTest on a workspace of real documents."""

import json
import re
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest
from streamlit.testing.v1 import AppTest

from nlp.app.common import MAX_UPLOAD_BYTES, documents_from_input, highlight, label_colors, legend
from nlp.workspace import Workspace

APP = str(Path(__file__).resolve().parents[1] / "app.py")
PAGES = {name: f"nlp/app/pages/{name}.py" for name in ("classify", "corpus", "diagram", "annotate", "models")}
HOSTILE = ('Sister city agreement with Kyoto: the mayor signed a twinning accord and a student exchange. '
           '<script>alert("x")</script> <img src=x onerror="alert(1)">')


@pytest.fixture(scope="module")
def app_home(tmp_path_factory, shipped_documents, classify_workspace):
    """CDPD_HOME pointed at a classified workspace of 600 real documents for this module, and CDPD_MODELS at a
    copy of the session's registry (the Models page trains and activates versions: other tests must not see them)."""
    import os
    import shutil

    home = tmp_path_factory.mktemp("app_ws")
    with Workspace(home) as ws:
        ws.add_documents(shipped_documents)
    classify_workspace(home)
    models = tmp_path_factory.mktemp("app_models") / "models"
    shutil.copytree(os.environ["CDPD_MODELS"], models)
    mp = pytest.MonkeyPatch()
    mp.setenv("CDPD_HOME", str(home))
    mp.setenv("CDPD_MODELS", str(models))
    yield home
    mp.undo()


def page(name: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    if name != "classify":
        at.switch_page(PAGES[name]).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def all_text(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [m.value for m in at.caption] + [m.value for m in at.info]
    parts += [m.value for m in at.warning] + [m.value for m in at.error] + [m.value for m in at.success]
    return "\n".join(str(p) for p in parts)


# -- rendering ------------------------------------------------------------------------------------------------
def test_highlight_escapes_markup_and_marks_evidence():
    out = highlight(HOSTILE, {"twinning": ["the mayor signed a twinning accord and a student exchange."],
                              "<b>evil</b>": ['<script>alert("x")</script>']})
    assert "<script>" not in out and "<img" not in out
    assert "&lt;script&gt;" in out and "&lt;img src=x onerror=" in out
    assert '<mark title="twinning">the mayor signed a twinning accord' in out
    assert 'title="&lt;b&gt;evil&lt;/b&gt;"' in out  # a label name cannot inject markup either
    assert out.count("<mark") == 2


def test_legend_escapes_label_names_and_uses_only_its_own_colours():
    """The evidence legend (rendered with unsafe_allow_html on Classify): a label name is codebook data and cannot
    become markup; a colour that is not one of ours (here one that would close the style) is never written."""
    hostile = '<script>alert("x")</script>'
    colors = label_colors(["twinning", hostile])
    out = legend(["twinning", hostile, "advocacy"], {**colors, "advocacy": 'red"><script>alert(1)</script>'})
    assert "<script>" not in out
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in out
    assert out.count("<span") == 2 and "advocacy" not in out


def test_highlight_keeps_document_text_out_of_markdown():
    """st.markdown ends an HTML block at a blank line: text after one would be parsed as Markdown (a link, a
    heading). No line break of the document may reach it; they come as character references instead."""
    text = "Sister cities.\r\n\r\n# Not a heading\n\n[click](https://evil.example) *not emphasis*\rend"
    out = highlight(text, ["Sister cities."])
    assert "\n" not in out and "\r" not in out
    assert out.count("&#10;") == 5  # \r\n counts as one break
    assert "# Not a heading&#10;&#10;[click](https://evil.example) *not emphasis*&#10;end" in out


def test_highlight_finds_clipped_sentences_and_limits_length():
    text = "A. " + "word " * 400 + "end."
    clipped = ("word " * 200)[:599].strip() + "…"
    assert "<mark" in highlight(text, [clipped])
    assert "more characters not shown" in highlight("x" * 50, [], limit=10)


# -- uploads -------------------------------------------------------------------------------------------------
def upload(name: str, data: bytes, size: int | None = None):
    return SimpleNamespace(name=name, size=len(data) if size is None else size, getvalue=lambda: data)


def test_uploads_bad_input_gets_clear_messages(tmp_path):
    from reportlab.pdfgen import canvas

    pdf = tmp_path / "note.pdf"
    c = canvas.Canvas(str(pdf))
    c.drawString(72, 720, "The city council welcomed the consul general of Japan.")
    c.save()
    docs, problems = documents_from_input("", "", [
        upload("empty.txt", b""),
        upload("image.txt", bytes(range(256)) * 40),
        upload("huge.txt", b"x", size=50 * 2**20),
        upload("note.pdf", pdf.read_bytes()),
        upload("../../etc/passwd.md", "Sister cities. <script>x</script>".encode()),
    ])
    reasons = "\n".join(problems)
    assert "empty.txt: the file is empty" in reasons
    assert "image.txt:" in reasons and "binary" in reasons.lower()
    assert f"huge.txt: 50.0 MB is over the {MAX_UPLOAD_BYTES // 2**20} MB limit" in reasons
    assert [d.id for d in docs] == ["note.pdf", "passwd.md"]  # no path from the browser reaches the disk
    assert "consul general" in docs[0].text and "<script>" in docs[1].text  # kept as text, escaped when shown


def test_uploaded_table_gives_one_document_per_row():
    rows = "\n".join(json.dumps({"id": f"r{i}", "text": f"Press release {i} on trade missions abroad."})
                     for i in range(3))
    docs, problems = documents_from_input("", "", [upload("batch.jsonl", rows.encode())])
    assert not problems and [d.id for d in docs] == ["batch.jsonl:r0", "batch.jsonl:r1", "batch.jsonl:r2"]


# -- resources ------------------------------------------------------------------------------------------------
def test_app_models_use_the_workspace_embedding_cache(monkeypatch, tmp_path):
    """As `cdpd classify` does: the Classify page's embedding tagger reuses (and fills) the workspace's cache; with
    no workspace it embeds in memory and the app creates no folder for it."""
    from nlp.app import common
    from nlp.embeddings import CACHE_FILE

    seen = []
    monkeypatch.setattr(common, "load_model", lambda ref, cb, folder, cache=None: seen.append(cache) or (ref, cache))
    home = tmp_path / "ws"
    monkeypatch.setenv("CDPD_HOME", str(home))
    common._model.clear()
    try:
        common.model("linear")
        assert not home.exists()
        Workspace(home).close()
        assert common.model("linear") == ("linear", str(home / CACHE_FILE))
        common.model("linear")  # cached: not loaded again
    finally:
        common._model.clear()
    assert seen == [None, str(home / CACHE_FILE)]


# -- pages ----------------------------------------------------------------------------------------------------
def test_every_page_renders(app_home):
    titles = {}
    for name in PAGES:
        at = page(name)
        titles[name] = at.title[0].value
    assert titles == {"classify": "Classify documents", "corpus": "Corpus & trends",
                      "diagram": "City Diplomacy - Public Diplomacy diagram", "annotate": "Annotate",
                      "models": "Models"}


def test_classify_pasted_text_renders_inert_and_is_added_to_the_workspace(app_home):
    at = page("classify")
    at.text_area(key="classify_text").input(HOSTILE)
    at.button[0].click().run()
    assert not at.exception
    shown = "\n".join(m.value for m in at.markdown)
    assert "<script>" not in shown and "<img" not in shown and "&lt;script&gt;" in shown
    assert "twinning" in shown  # the label, in the per-axis summary
    assert len(at.dataframe) == 2  # one score table per axis
    before = Workspace(app_home).count_documents()
    # a bad date is refused with the reason, and nothing is added
    at.text_input(key="add_date_0").input("17/05/2024")
    at.button(key="add_0").click().run()
    assert "date must be ISO" in all_text(at) and Workspace(app_home).count_documents() == before
    at.text_input(key="add_issuer_0").input("City of Kyoto")
    at.selectbox(key="add_issuer_type_0").select("city")
    at.text_input(key="add_date_0").input("2024-05-17")
    at.text_input(key="add_country_0").input("JPN")
    at.button(key="add_0").click().run()
    assert "added to the workspace" in all_text(at)
    conn = sqlite3.connect(app_home / "cdpd.sqlite")  # a fresh connection: what any later reader sees
    row = conn.execute("SELECT id, issuer, issuer_type, date, country, source FROM documents "
                       "WHERE id LIKE 'pasted-%'").fetchone()
    conn.close()
    assert row[1:] == ("City of Kyoto", "city", "2024-05-17", "JPN", "added in the app")
    with Workspace(app_home) as ws:
        assert ws.count_documents() == before + 1
        assert "twinning" in {k for k, v in ws.predictions_for(row[0], ws.latest_model()).items() if v["selected"]}
    at.button(key="add_0").click().run()
    assert "not added again" in all_text(at)


def test_classify_page_renders_metadata_as_text_and_evidence_by_label(app_home):
    """Audit defect 3: a title with Markdown (a remote image, a link) shows as written; evidence marks take one
    colour per label, with a legend; the explanation of scores is on the page."""
    at = page("classify")
    at.text_input(key="classify_title").input("![pixel](http://evil.example/p.png) [click](http://evil.example)")
    at.text_area(key="classify_text").input(
        "The mayor signed a sister city agreement with Kyoto. The council funds a student exchange with Kyoto "
        "universities. The city joined C40 to cooperate with other cities on climate.")
    at.button[0].click().run()
    assert not at.exception
    heading = at.subheader[0].value
    assert heading.startswith("\\!\\[pixel\\]\\(http\\:") and "](" not in heading
    shown = "\n".join(m.value for m in at.markdown)
    assert 'class="cdpd-legend"' in shown and 'style="background:#' in shown
    assert "threshold" in all_text(at)


def test_classify_page_with_the_lexicon(app_home):
    """Audit defect 6: choosing `lexicon` (no files, no training) classifies instead of raising."""
    at = page("classify")
    at.selectbox(key="classify_model").select("lexicon")
    at.text_area(key="classify_text").input("The mayor signed a sister city agreement with Kyoto.")
    at.button[0].click().run()
    assert not at.exception and not at.error and "tagged with lexicon" in all_text(at)


def test_classify_nothing_and_non_english(app_home):
    at = page("classify")
    at.button[0].click().run()
    assert "Nothing to classify" in all_text(at)
    at.text_area(key="classify_text").input(
        "Le conseil municipal a adopté une résolution sur le jumelage avec la ville de Kyoto et les échanges "
        "culturels entre les deux villes.")
    at.button[0].click().run()
    assert "not English" in all_text(at) and not at.dataframe


def test_corpus_filters_search_and_document(app_home):
    at = page("corpus")
    assert len(at.get("plotly_chart")) >= 1
    assert "document(s) match the filters" in all_text(at)
    # under the trend chart: documents per source and year (the shares' denominators), the undated documents left
    # out (the climate-city contract sections carry no date), the change of sources over time, distinct colours
    coverage_table = at.dataframe[0].value
    assert coverage_table.index.name == "source" and coverage_table.columns.name == "year"
    with Workspace(app_home) as ws:
        dated = ws.conn.execute("SELECT count(*) FROM classified c JOIN documents d ON d.doc_id = c.doc_id "
                                "WHERE length(d.date) >= 4").fetchone()[0]
        undated_ccc = ws.conn.execute("SELECT count(*) FROM classified c JOIN documents d ON d.doc_id = c.doc_id "
                                      "WHERE d.date = '' AND d.source LIKE 'EU Mission Climate City%'").fetchone()[0]
        classified = ws.conn.execute("SELECT count(*) FROM classified").fetchone()[0]
    assert int(coverage_table.loc["all sources"].sum()) == dated and undated_ccc > 0
    note = "\n".join(str(i.value) for i in at.info)  # pasted documents (the Classify test's) are undated too
    assert f"{classified - dated:,} classified document\\(s\\) are not in the trends" in note
    assert f"“EU Mission Climate City Contracts \\(city climate\\-neutrality plans\\)” {undated_ccc:,}" in note
    assert any("The mix of sources changes over time" in w.value and " enters " in w.value for w in at.warning)
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    colours = [trace["line"]["color"] for trace in figure["data"]]
    assert len(colours) == 14 and len(set(colours)) == 14  # one colour per function
    # per-source panels; a search restricts the trends and the coverage table to the matching documents
    at.checkbox(key="corpus_per_source").check().run()
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert not at.exception and "per source" in figure["layout"]["title"]["text"]
    assert len({trace["xaxis"] for trace in figure["data"]}) >= 2  # one panel per source
    at.checkbox(key="corpus_per_source").uncheck()
    at.text_input(key="corpus_query").input("sister").run()
    with Workspace(app_home) as ws:
        sister_dated = ws.conn.execute(
            "SELECT count(*) FROM classified c JOIN documents d ON d.doc_id = c.doc_id WHERE length(d.date) >= 4 "
            "AND d.doc_id IN (SELECT rowid FROM documents_fts WHERE documents_fts MATCH 'sister')").fetchone()[0]
    assert "match “sister” and the filters; the charts and tables below count only them" in all_text(at)
    assert int(at.dataframe[0].value.loc["all sources"].sum()) == sister_dated < dated
    at.text_input(key="corpus_query").input("").run()
    # one label followed across the largest groups: one line per group
    at.selectbox(key="corpus_split").select("source").run()
    at.slider(key="corpus_top").set_value(2).run()
    assert not at.exception
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert len(figure["data"]) == 2 and "the 2 sources with the most documents" in figure["layout"]["title"]["text"]
    at.selectbox(key="corpus_split").select(None).run()
    for view in ("By actor", "Function x domain"):
        at.radio(key="corpus_view").set_value(view).run()
        assert not at.exception and len(at.get("plotly_chart")) == 1
    at.radio(key="corpus_view").set_value("Documents").run()
    at.text_input(key="corpus_query").input('"unbalanced').run()  # malformed FTS5 query
    assert not at.exception and "cannot be run" in all_text(at)
    at.text_input(key="corpus_query").input("climate").run()
    assert not at.exception
    table = at.dataframe[-1].value
    assert len(table) > 0 and set(table.columns) >= {"id", "title", "labels", "relevance"}
    assert table["relevance"].is_monotonic_decreasing and "ranked by relevance (BM25" in all_text(at)
    at.radio(key="corpus_sort").set_value("date").run()
    assert at.dataframe[-1].value["date"].is_monotonic_decreasing and "newest first" in all_text(at)
    at.multiselect(key="corpus_issuer_type").select("city").run()
    assert set(at.dataframe[-1].value["issuer_type"]) == {"city"}
    at.text_input(key="corpus_query").input("").run()
    at.selectbox(key="corpus_label").select("advocacy").run()
    shown = at.dataframe[-1].value
    assert len(shown) > 0 and all("advocacy" in labels for labels in shown["labels"])
    assert "functions" in all_text(at)  # the opened document lists its tags per axis


def convergence_shown(at: AppTest):
    """The convergence table on the diagram page: the one table with a ``reading`` column."""
    return next(frame.value for frame in at.dataframe if "reading" in frame.value.columns)


def test_diagram_page_controls(app_home):
    at = page("diagram")
    assert len(at.get("plotly_chart")) >= 3  # the two sides' dumbbell, the map and the scree plot
    dumbbell = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert {"city", "state"} <= {trace.get("name", "").split(":")[0] for trace in dumbbell["data"]}
    text = all_text(at)
    assert "Reading rule" in text and "Total inertia" in text and "Policy intervention space" in text
    assert "documents counted" in text  # the caption: what was counted
    conv = convergence_shown(at)
    assert {"city_share", "city_low", "city_high", "state_share", "reading", "zone"} <= set(conv.columns)
    assert ((conv["city_low"] <= conv["city_share"]) & (conv["city_share"] <= conv["city_high"])).all()
    assert {b.proto.label for b in at.get("download_button")} >= {
        "Report (HTML)", "Report (PDF)", "Map (SVG)", "Map (PDF)", "Map (PNG)", "Two sides (SVG)"}
    # two sides of one's own: the climate-plan sections against the council's resolutions
    at.toggle(key="diagram_custom").set_value(True).run()
    at.selectbox(key="diagram_side_a_field").select("source").run()
    sources = at.multiselect(key="diagram_side_a_values").options
    at.multiselect(key="diagram_side_a_values").select(sources[0])
    at.text_input(key="diagram_side_a_name").input("first")
    at.selectbox(key="diagram_side_b_field").select("source").run()
    at.multiselect(key="diagram_side_b_values").select(sources[1])
    at.text_input(key="diagram_side_b_name").input("second").run()
    assert not at.exception, [e.value for e in at.exception]
    conv = convergence_shown(at)
    assert "first_share" in conv.columns and "second_share" in conv.columns
    at.toggle(key="diagram_custom").set_value(False).run()
    at.selectbox(key="diagram_by").select("issuer_type").run()
    assert "single dimension" not in all_text(at)  # ellipses are off: nothing to warn about
    at.multiselect(key="diagram_issuer_type").select("city").select("national")  # pasted documents have none
    at.checkbox(key="diagram_ellipses").check().run()
    assert "no ellipses" in all_text(at)  # two groups: one dimension
    at.selectbox(key="diagram_by").select("source").run()
    assert not at.exception and "no ellipses" not in all_text(at)


def annotations_in(home: Path, annotator: str | None = None) -> list[tuple]:
    """(annotation_id, text, labels, annotator) as a fresh connection sees them: what any other process reads."""
    conn = sqlite3.connect(home / "cdpd.sqlite")
    try:
        sql = "SELECT annotation_id, text, labels, annotator FROM annotations"
        rows = conn.execute(sql + (" WHERE annotator = ?" if annotator else "") + " ORDER BY annotation_id",
                            (annotator,) if annotator else ()).fetchall()
    finally:
        conn.close()
    return [(i, t, json.loads(labels), a) for i, t, labels, a in rows]


def label_button(at: AppTest, axis: str, label: str):
    return at.button(key=f"annotate_label_{axis}_{label}")


def is_on(at: AppTest, axis: str, label: str) -> bool:
    """A label's toggle state as drawn: selected labels are primary buttons with a ticked box."""
    proto = label_button(at, axis, label).proto
    return proto.type == "primary" and "check_box" in proto.icon and "blank" not in proto.icon


def test_annotate_labels_toggle_save_undo_skip(app_home, codebook):
    """Every label is a toggle with its key; the suggestions are pre-selected and marked; Save commits the toggled
    labels at once; Undo deletes the row and brings the passage back with the labels that were saved (not the
    suggestions); Skip moves on."""
    at = page("annotate")
    assert "Enter your name" in all_text(at)
    at.text_input(key="annotator").input("ana").run()
    first = at.session_state["queue"][0]
    every = [(axis, lab) for axis in codebook.axis_names for lab in codebook.labels(axis)]
    shortcuts = [label_button(at, axis, lab).proto.shortcut.upper() for axis, lab in every]
    assert shortcuts[:9] == list("123456789") and len(set(shortcuts)) == len(every)
    assert not {"C", "R", "S", "U"} & set(shortcuts)
    for axis, lab in every:
        suggested = lab in first.suggested.get(axis, [])
        assert is_on(at, axis, lab) == suggested
        assert ("suggested" in label_button(at, axis, lab).proto.label) == suggested
        assert codebook.label(lab).definition[:40] in label_button(at, axis, lab).proto.help
    assert at.button(key="annotate_save").proto.shortcut.lower() == "enter"
    assert at.button(key="annotate_skip").proto.shortcut.upper() == "S"
    assert at.button(key="annotate_undo").proto.shortcut.upper() == "U"
    # remove a suggestion (if any) and add a label the model did not suggest: the saved labels are exactly these
    added = next((axis, lab) for axis, lab in every if lab not in first.suggested.get(axis, []))
    removed = next(((axis, lab) for axis, lab in every if lab in first.suggested.get(axis, [])), None)
    label_button(at, *added).click().run()
    if removed:
        label_button(at, *removed).click().run()
    assert is_on(at, *added) and (removed is None or not is_on(at, *removed))
    expected = {axis: [lab for lab in codebook.labels(axis) if (lab in first.suggested.get(axis, []) or
                                                                (axis, lab) == added) and (axis, lab) != removed]
                for axis in codebook.axis_names}
    at.button(key="annotate_save").click().run()
    assert not at.exception
    rows = annotations_in(app_home)  # committed: a fresh connection sees it at once
    assert [(r[1], r[2], r[3]) for r in rows] == [(first.text, expected, "ana")]
    assert at.session_state["queue_pos"] == 1 and "1 saved this session" in at.get("progress")[0].proto.text
    second = at.session_state["queue"][1]
    assert all(is_on(at, axis, lab) == (lab in second.suggested.get(axis, [])) for axis, lab in every)
    at.button(key="annotate_undo").click().run()
    assert at.session_state["queue_pos"] == 0 and annotations_in(app_home) == []
    # back with the labels that were saved, not the model's suggestions
    assert all(is_on(at, axis, lab) == (lab in expected[axis]) for axis, lab in every)
    at.button(key="annotate_skip").click().run()
    assert at.session_state["queue_pos"] == 1 and annotations_in(app_home) == []
    at.button(key="annotate_back").click().run()
    assert at.session_state["queue_pos"] == 0
    assert all(is_on(at, axis, lab) == (lab in expected[axis]) for axis, lab in every)  # still as chosen
    # saved, then come back to with Back and changed: the change is a new version (a new row), undone as one
    at.button(key="annotate_save").click().run()
    (saved_id, _, saved_labels, _), = annotations_in(app_home)
    at.button(key="annotate_back").click().run()
    assert at.session_state["queue_pos"] == 0
    label_button(at, *added).click().run()
    at.button(key="annotate_save").click().run()
    rows = annotations_in(app_home)
    assert [r[0] for r in rows][:1] == [saved_id] and len(rows) == 2 and rows[0][2] == saved_labels
    assert added[1] not in rows[1][2][added[0]] and at.session_state["queue_pos"] == 1
    at.button(key="annotate_undo").click().run()
    assert annotations_in(app_home) == [(saved_id, first.text, saved_labels, "ana")]
    assert at.session_state["queue_pos"] == 0 and is_on(at, *added)  # the version before, as it was saved
    at.button(key="annotate_undo").click().run()  # the save
    assert annotations_in(app_home) == [] and at.session_state["queue_pos"] == 0
    at.button(key="annotate_undo").click().run()  # the skip before it
    assert at.session_state["queue_pos"] == 0 and at.button(key="annotate_undo").proto.disabled


def test_annotate_queue_from_one_source(app_home):
    """"Passages from" a source: the queue holds that source's passages only, rebuilt when the choice changes."""
    at = page("annotate")
    box = at.selectbox(key="annotate_source")
    assert box.value == "every source" and len(box.options) >= 3
    with Workspace(app_home) as ws:
        source_of_doc = dict(ws.conn.execute("SELECT id, source FROM documents").fetchall())
    mixed = {source_of_doc[cand.document] for cand in at.session_state["queue"]}
    city = box.options[1]
    box.select(city).run()
    assert not at.exception, [e.value for e in at.exception]
    queue = at.session_state["queue"]
    assert queue and {source_of_doc[cand.document] for cand in queue} == {city}
    assert len(mixed) > 1  # the default draws from every source
    # a unit saved from a random queue is recorded as drawn at random (so it can be scored as one)
    at.radio(key="annotate_strategy").set_value("random").run()
    at.text_input(key="annotator").input("rosa").run()
    first = at.session_state["queue"][0]
    assert source_of_doc[first.document] == city
    at.button(key="annotate_save").click().run()
    assert not at.exception, [e.value for e in at.exception]
    with Workspace(app_home) as ws:
        saved = ws.conn.execute("SELECT sample FROM annotations WHERE annotator = 'rosa' AND passage_id = ?",
                                (first.passage_id,)).fetchall()
    assert [tuple(r) for r in saved] == [("random",)]


def test_annotate_history_edit_is_a_new_row_and_export_takes_the_latest(app_home, codebook):
    from nlp.annotations import export_annotations

    at = page("annotate")
    at.text_input(key="annotator").input("edi").run()
    first = at.session_state["queue"][0]
    at.button(key="annotate_save").click().run()
    (saved_id, text, labels, _), = annotations_in(app_home, "edi")
    history = at.dataframe[0].value
    assert list(history["annotation"]) == [saved_id] and history["passage"][0].split()[:5] == text.split()[:5]
    # open the save from the history: its labels are selected; toggle one and save: a new row, the old one kept
    at.selectbox(key="annotate_history_pick").select(saved_id)
    at.button(key="annotate_open").click().run()
    assert at.session_state["annotate_editing"] == saved_id and "Editing your annotation" in all_text(at)
    every = [(axis, lab) for axis in codebook.axis_names for lab in codebook.labels(axis)]
    assert all(is_on(at, axis, lab) == (lab in labels[axis]) for axis, lab in every)
    flip = ("domains", codebook.labels("domains")[0])
    label_button(at, *flip).click().run()
    at.button(key="annotate_save").click().run()
    assert not at.exception
    rows = annotations_in(app_home, "edi")
    assert len(rows) == 2 and rows[0] == (saved_id, text, labels, "edi")  # never updated in place
    edited = rows[1][2]
    assert rows[1][1] == text and (flip[1] in edited["domains"]) != (flip[1] in labels["domains"])
    assert at.session_state["annotate_editing"] is None
    history = at.dataframe[0].value
    assert list(history["annotation"]) == [rows[1][0]] and list(history["versions"]) == [2]
    # the export holds the latest version only
    with Workspace(app_home) as ws:
        units = [u for u in ws.annotation_units(codebook) if u.meta["annotator"] == "edi"]
    assert [u.id for u in units] == [f"workspace:{rows[1][0]}"] and units[0].labels == edited
    path = export_annotations(units, app_home / "edi.jsonl", codebook, "jsonl")
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(records) == 1 and records[0]["domains"] == edited["domains"]
    # undo of the edit: the new row is gone and the previous version is shown with its labels
    at.button(key="annotate_undo").click().run()
    assert annotations_in(app_home, "edi") == [(saved_id, text, labels, "edi")]
    assert at.session_state["annotate_editing"] == saved_id
    assert all(is_on(at, axis, lab) == (lab in labels[axis]) for axis, lab in every)
    at.button(key="annotate_close").click().run()
    with Workspace(app_home) as ws:  # leave the workspace as the other tests expect it
        ws.delete_annotation(saved_id)


def test_annotate_same_passage_in_two_tabs_is_one_decision_in_two_versions(app_home, codebook):
    """Two tabs of one annotator show the same queue: the second save of a passage is a new version of the first
    (the export has one unit), and undoing it in that tab leaves the first tab's save alone."""
    one, two = page("annotate"), page("annotate")
    for at in (one, two):
        at.text_input(key="annotator").input("tabs").run()
    assert one.session_state["queue"][0].text == two.session_state["queue"][0].text
    one.button(key="annotate_save").click().run()
    label_button(two, "domains", codebook.labels("domains")[-1]).click().run()
    two.button(key="annotate_save").click().run()
    rows = annotations_in(app_home, "tabs")
    assert len(rows) == 2 and rows[0][1] == rows[1][1] and rows[0][2] != rows[1][2]
    with Workspace(app_home) as ws:
        assert [u.id for u in ws.annotation_units(codebook) if u.meta["annotator"] == "tabs"] == [
            f"workspace:{rows[1][0]}"]
    two.button(key="annotate_undo").click().run()
    assert annotations_in(app_home, "tabs") == rows[:1]
    with Workspace(app_home) as ws:
        ws.delete_annotation(rows[0][0])


def test_annotate_shows_document_metadata_as_text(app_home):
    """Audit defect 3 on the Annotate page: the passage's title, source, issuer and date are shown, and a title or
    id with Markdown (a remote image, a link) shows as written; the reason the passage was chosen is plain words."""
    at = page("annotate")
    item = at.session_state["queue"][0]
    conn = sqlite3.connect(app_home / "cdpd.sqlite")
    old = conn.execute("SELECT title, issuer, source, date FROM documents WHERE id = ?", (item.document,)).fetchone()
    hostile = ("![pixel](http://evil.example/p.png) [click](http://evil.example)", "<b>Mayor</b> [x](http://e.x)",
               "*press* _release_", "2024-05-17")
    with conn:
        conn.execute("UPDATE documents SET title = ?, issuer = ?, source = ? , date = ? WHERE id = ?",
                     (*hostile, item.document))
    conn.close()
    try:
        at.run()
        assert not at.exception
        shown = "\n".join(m.value for m in at.markdown) + "\n".join(m.value for m in at.caption)
        assert "\\!\\[pixel\\]\\(http\\:" in shown and "](http" not in shown
        assert "\\<b\\>Mayor" in shown and "<b>" not in shown and "\\*press\\*" in shown
        assert "date: 2024\\-05\\-17" in shown
        assert "margin" not in all_text(at).lower()
        plain = all_text(at).replace("\\", "")  # Markdown escapes aside
        assert re.search(r"The model is unsure about this passage: its closest label is \w+, scored 0\.\d\d against "
                         r"a threshold of 0\.\d\d", plain)
    finally:
        conn = sqlite3.connect(app_home / "cdpd.sqlite")
        with conn:
            conn.execute("UPDATE documents SET title = ?, issuer = ?, source = ?, date = ? WHERE id = ?",
                         (*old, item.document))
        conn.close()


def test_annotate_agreement_between_two_annotators(app_home):
    at = page("annotate")
    item = at.session_state["queue"][0]
    with Workspace(app_home) as ws:
        for name in ("ben", "cem"):
            ws.add_annotation(item.text, {"functions": ["advocacy"], "domains": []}, name)
    at = page("annotate")
    frames = [d.value for d in at.dataframe]
    assert frames and {"units", "kappa", "alpha"} <= set(frames[-1].columns)
    assert at.get("download_button")


def test_models_page_lists_and_retrains(app_home, small_seed_rows, codebook):
    at = page("models")
    listing = at.dataframe[0].value
    assert len(listing) >= 1 and {"model", "active", "tagger", "units"} <= set(listing.columns)
    at.selectbox(key="retrain_tier").select("linear")
    at.text_input(key="retrain_name").input("apptest")
    at.button[0].click().run(timeout=300)
    assert not at.exception, [e.value for e in at.exception]
    assert any("apptest@" in s.value for s in at.success)
    from nlp.models import list_models

    assert any(m["name"] == "apptest" for m in list_models())
    listing = at.dataframe[0].value.set_index("model")
    new = next(ref for ref in listing.index if ref.startswith("apptest@"))
    assert 0.5 < listing.at[new, "F micro"] <= 1  # held-out score of the retrained version
    # the listing fits the page: no training path, short score columns
    assert "data" not in listing.columns and len(listing.columns) <= 11
    assert at.selectbox(key="models_chosen").value == new  # the comparison opens on the new version
    assert "it is now the active model" in all_text(at)  # the first version trained with no active one
    assert at.selectbox(key="models_baseline").value == new  # "Against" follows the active model, not its last value
    # a second version with held-out scores (trained on ~120 units): compared per label, then activated
    from nlp.annotations import Annotation
    from nlp.training import train

    small = [Annotation(r["id"], r["text"], {a: r[a] for a in codebook.axis_names}, r["title"], r["sample"])
             for r in small_seed_rows]
    other, _ = train(small, codebook, name="small")
    at.run()
    at.selectbox(key="models_chosen").select(other.ref)
    at.selectbox(key="models_baseline").select(new).run()
    frame = at.dataframe[1].value  # the listing, the comparison, then the chosen version per source
    assert ("functions", "(micro)") in frame.index and frame.shape[0] == 2 * 2 + sum(
        len(codebook.labels(a)) for a in codebook.axis_names)
    per_source = at.dataframe[2].value  # one table per axis, functions first
    assert "all" in per_source.index and "false on empty" in per_source.columns
    assert per_source.at["all", "units"] == other.meta["metrics"]["heldout_units"]
    at.button(key="models_activate").click().run()
    assert not at.exception, [e.value for e in at.exception]
    from nlp.models import active_ref

    assert active_ref() == other.ref
    assert any(f"{other.ref} is now the active model" in s.value for s in at.success)
    assert at.dataframe[0].value.set_index("model").at[other.ref, "active"]  # the listing shows it at once
    assert at.selectbox(key="models_baseline").value == other.ref  # "Against" was `new`: it follows the activation


def test_cdpd_app_serves_app_py_on_localhost(monkeypatch, tmp_path):
    import subprocess

    from nlp.cli import main

    seen = {}
    monkeypatch.setattr(subprocess, "call", lambda cmd, env, cwd: seen.update(cmd=cmd, env=env, cwd=cwd) or 0)
    assert main(["app", "--workspace", str(tmp_path), "--port", "8765"]) == 0
    cmd = seen["cmd"]
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4] == APP
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1" and cmd[cmd.index("--server.port") + 1] == "8765"
    assert seen["env"]["CDPD_HOME"] == str(tmp_path.resolve())


def test_plot_text_keeps_markup_in_names_inert():
    """Audit defect 3: group names reach plotly legends and axes, which render <b>, <a href> and <br>."""
    import plotly.express as px

    from nlp.app.common import plot_text

    hostile = '<b>Bold</b> <a href="http://evil.example">x</a>'
    assert plot_text(hostile) == '&lt;b&gt;Bold&lt;/b&gt; &lt;a href="http://evil.example"&gt;x&lt;/a&gt;'
    fig = px.line({"period": ["2020", "2021"], "share": [1, 2], "group": [plot_text(hostile)] * 2},
                  x="period", y="share", color="group")
    assert "<b>" not in fig.to_json() and "&lt;b&gt;Bold" in fig.to_json()
