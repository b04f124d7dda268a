"""Aggregation tables, the convergence table and the CD-PD diagram, on hand-checkable and on real workspaces."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nlp.analysis.tables import Filters, cooccurrence, group_totals, label_table, resolve_model
from nlp.cli import main
from nlp.analysis.convergence import convergence, standardised_residuals
from nlp.analysis.units import unit_matrix
from nlp.analysis.report import export
from nlp.pipeline import TaggedDocument
from nlp.schema import Document
from nlp.text import Passage, Sentence
from nlp.workspace import Workspace, WorkspaceError

REFERENCE = Path(__file__).parent / "data" / "ca_reference"
MODEL = "hand@00000000"

# (id, issuer_type, source, date, functions selected, domains selected, passages carrying "twinning")
HAND = [
    ("c1", "city", "nyc", "2021-03-01", ["twinning", "advocacy"], ["peace"], 2),
    ("c2", "city", "nyc", "2022-05-01", ["twinning"], ["culture"], 1),
    ("c3", "city", "kc", "2021-07-01", [], [], 0),
    ("n1", "national", "state", "2021-03-09", ["advocacy"], ["peace", "health"], 0),
    ("n2", "national", "state", "2021-11-20", ["advocacy", "coercive_measures"], ["peace"], 0),
    ("n3", "national", "wh", "2022-01-15", ["advocacy"], ["human_rights"], 0),
]


def _tagged(doc: Document, labels: dict[str, list[str]], selected: dict[str, list[str]], twin_passages: int):
    """A TaggedDocument with two passages; ``twin_passages`` of them score over the twinning threshold."""
    sent = Sentence(0, len(doc.text), doc.text.split())
    passages = [Passage(0, 0, len(doc.text), [sent]), Passage(1, 0, len(doc.text), [sent])]
    scores, passage_scores = {}, {}
    for axis, labs in labels.items():
        s = np.array([0.9 if lab in selected[axis] else 0.1 for lab in labs])
        scores[axis] = s
        ps = np.tile(s, (2, 1))
        if axis == "functions":
            j = labs.index("twinning")
            ps[:, j] = [0.9 if k < twin_passages else 0.1 for k in range(2)]
        passage_scores[axis] = ps
    evidence = {lab: [doc.text] for axis in selected for lab in selected[axis]}
    return TaggedDocument(doc, passages, scores, passage_scores, selected, evidence)


@pytest.fixture()
def hand_workspace(tmp_path, codebook):
    labels = codebook.label_sets()
    ws = Workspace(tmp_path / "ws")
    docs = [Document(id=i, text=f"Document {i} text about things number {k}.", issuer_type=t, source=s, date=d)
            for k, (i, t, s, d, *_rest) in enumerate(HAND)]
    ws.add_documents(docs)
    ws.register_model(MODEL, "hand", "00000000", "lexicon", labels)
    rows = {r[0]: r for r in ws.conn.execute("SELECT id, doc_id FROM documents")}
    items = [(rows[i][1], _tagged(doc, labels, {"functions": f, "domains": dm}, tp))
             for doc, (i, _t, _s, _d, f, dm, tp) in zip(docs, HAND)]
    ws.save_predictions(MODEL, items, {axis: np.full(len(l), 0.5) for axis, l in labels.items()})
    yield ws
    ws.close()


def test_label_table_counts_documents_by_hand(hand_workspace):
    table = label_table(hand_workspace, MODEL, axis="functions", by="issuer_type")
    assert table.index.name == "functions" and table.columns.name == "issuer_type"
    assert list(table.columns) == ["city", "national"]
    assert table.loc["twinning"].tolist() == [2, 0]
    assert table.loc["advocacy"].tolist() == [1, 3]
    assert table.loc["coercive_measures"].tolist() == [0, 1]
    assert table.loc["listening"].tolist() == [0, 0]  # every codebook label is a row, in codebook order
    assert table.index[0] == "listening"


def test_label_table_counts_passages_by_hand(hand_workspace):
    table = label_table(hand_workspace, MODEL, axis="functions", by="issuer_type", unit="passages")
    assert table.loc["twinning"].tolist() == [3, 0]  # c1 has two twinning passages, c2 one
    assert table.loc["advocacy"].tolist() == [2, 6]  # both passages of each selected document


def test_filters_years_and_date_range(hand_workspace):
    by_year = label_table(hand_workspace, MODEL, axis="domains", by="year")
    assert by_year.loc["peace"].to_dict() == {"2021": 3, "2022": 0}
    only_state = label_table(hand_workspace, MODEL, axis="functions", by="source",
                             filters=Filters.parse(["source=state"]))
    assert list(only_state.columns) == ["state"] and only_state.loc["advocacy", "state"] == 2
    in_2021 = label_table(hand_workspace, MODEL, axis="functions", by="issuer_type",
                          filters=Filters(date_from="2021-01", date_to="2021-12"))
    assert in_2021.loc["advocacy"].tolist() == [1, 2]
    two = Filters.parse(["source=state,wh", "issuer_type=national"])
    assert group_totals(hand_workspace, MODEL, by="source", filters=two).to_dict() == {"state": 2, "wh": 1}


def test_cooccurrence_by_hand(hand_workspace):
    co = cooccurrence(hand_workspace, MODEL, rows="functions", cols="domains")
    assert co.loc["advocacy", "peace"] == 3  # c1, n1, n2
    assert co.loc["advocacy", "health"] == 1
    assert co.loc["twinning", "culture"] == 1
    assert co.shape == (14, 6)


def test_bad_grouping_and_filters_are_refused(hand_workspace):
    with pytest.raises(WorkspaceError, match="cannot group by 'text'"):
        label_table(hand_workspace, MODEL, by="text")
    with pytest.raises(WorkspaceError, match="cannot filter on 'text'"):
        label_table(hand_workspace, MODEL, filters=Filters.parse(["text=x"]))
    with pytest.raises(WorkspaceError, match="FIELD=VALUE"):
        Filters.parse(["source"])
    with pytest.raises(WorkspaceError, match="has classified nothing"):
        resolve_model(hand_workspace, "nope")
    assert resolve_model(hand_workspace, "hand") == MODEL


def test_convergence_reading_by_hand(hand_workspace, codebook):
    """Shares of the hand workspace in each unit; c3 has no function, so it leaves the diplomatic reading."""
    docs = convergence(unit_matrix(hand_workspace, MODEL, unit="documents", diplomatic_only=False), codebook,
                       replicates=50)
    assert docs.table.loc["twinning", "city_share"] == pytest.approx(2 / 3)
    assert docs.table.loc["advocacy", "state_share"] == pytest.approx(1.0)
    assert docs.n == {"city": 3, "state": 3}
    dip = convergence(unit_matrix(hand_workspace, MODEL, unit="documents"), codebook, replicates=50)
    assert dip.table.loc["twinning", "city_share"] == pytest.approx(1.0) and dip.n == {"city": 2, "state": 3}
    # passages: c1 carries twinning on both its passages, c2 on one of two, c3 on none: 3 of the cities' 6
    passages = convergence(unit_matrix(hand_workspace, MODEL, unit="passages", diplomatic_only=False), codebook,
                           replicates=50)
    assert passages.table.loc["twinning", "city_share"] == pytest.approx(3 / 6)
    assert passages.table.loc["twinning", "city_n"] == 6
    intensity = convergence(unit_matrix(hand_workspace, MODEL, unit="intensity", diplomatic_only=False), codebook,
                            replicates=50)
    assert intensity.table.loc["twinning", "city_share"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert intensity.table.loc["twinning", "practice"] == "city"
    for conv in (docs, dip, passages, intensity):
        shares = conv.table[[c for c in conv.table if c.endswith(("_share", "_low", "_high"))
                             and not c.startswith("difference")]]
        assert ((shares >= 0) & (shares <= 1)).all().all()


def test_standardised_residuals_square_to_chi_square():
    table = pd.read_csv(REFERENCE / "smoke_table.csv", index_col=0)
    ref = json.loads((REFERENCE / "ca_reference_R.json").read_text())["smoke"]
    assert (standardised_residuals(table) ** 2).to_numpy().sum() == pytest.approx(ref["chisq"][0], abs=1e-5)


def test_cli_ca_json_matches_r(capsys):
    ref = json.loads((REFERENCE / "ca_reference_R.json").read_text())
    assert main(["ca", "--table", str(REFERENCE / "smoke_with_supplementary_table.csv"), "--sup-rows", "sup_avg",
                 "--sup-cols", "sup_noalc,sup_alc", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["total_inertia"] == pytest.approx(0.085190, abs=1e-6)
    assert out["eigenvalues"][:2] == pytest.approx([0.074759, 0.010017], abs=1e-6)
    assert set(out["rows"]) == {"SM", "JM", "SE", "JE", "SC", "sup_avg"}
    assert set(out["cols"]) == {"none", "light", "medium", "heavy", "sup_noalc", "sup_alc"}
    # supplementary points from the README, up to each axis's sign
    for name, side, expected in [("sup_avg", "rows", (-0.258368, 0.117648)),
                                 ("sup_noalc", "cols", (-0.114829, 0.361956)),
                                 ("sup_alc", "cols", (0.015536, -0.048971))]:
        got = out[side][name]
        assert [abs(v) for v in got] == pytest.approx([abs(v) for v in expected], abs=1e-6)
    assert ref["smoke"]["chisq_df"][0] == 12


def test_cli_ca_bad_tables(tmp_path, capsys):
    bad = tmp_path / "neg.csv"
    bad.write_text(",a,b\nx,1,-2\ny,3,4\n")
    assert main(["ca", "--table", str(bad)]) == 2
    assert "negative" in capsys.readouterr().err
    assert main(["ca", "--table", str(tmp_path / "missing.csv")]) == 2
    assert "file not found" in capsys.readouterr().err
    one = tmp_path / "one.csv"
    one.write_text(",a,b\nx,1,2\n")
    assert main(["ca", "--table", str(one)]) == 2
    assert "cdpd ca: error" in capsys.readouterr().err


@pytest.fixture(scope="module")
def real_workspace(tmp_path_factory, shipped_documents, classify_workspace):
    """A workspace of 600 real documents from the shipped corpus, classified with the default model."""
    home = tmp_path_factory.mktemp("real_ws")
    with Workspace(home) as ws:
        ws.add_documents(shipped_documents)
    classify_workspace(home)
    return home


def test_diagram_on_shipped_corpus(real_workspace, tmp_path, capsys):
    out = tmp_path / "cdpd.html"
    assert main(["diagram", "--workspace", str(real_workspace), "--by", "source", "--ellipses", "50",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Reading rule" in printed and "twinning" in printed and "Sides compared" in printed
    assert "Method:" in printed and "issuer_type = city" in printed
    html = out.read_text(encoding="utf-8")
    assert "plotly" in html and "% of inertia" in html
    conv = pd.read_csv(tmp_path / "cdpd_convergence.csv", index_col=0, keep_default_na=False)
    assert set(conv["reading"]) <= {"convergent", "city-led", "state-led", "city only", "state only", "rare on both"}
    assert len(conv) == 14
    assert {"city_share", "city_low", "city_high", "state_share", "state_low", "state_high", "p_adjusted",
            "zone"} <= set(conv.columns)
    sides = pd.read_csv(tmp_path / "cdpd_sides.csv", index_col=0)
    assert list(sides.index) == ["city", "state"] and sides.loc["city", "definition"] == "issuer_type = city"
    rows = pd.read_csv(tmp_path / "cdpd_ca_rows.csv", index_col=0)
    assert {"coord_1", "coord_2", "contrib_1", "cos2_1", "mass"} <= set(rows.columns)
    eig = pd.read_csv(tmp_path / "cdpd_eigenvalues.csv", index_col=0)
    assert eig["cum_pct"].iloc[-1] == pytest.approx(100.0)
    # a city source projected as a supplementary column, and static formats
    png = tmp_path / "map.png"
    assert main(["diagram", "--workspace", str(real_workspace), "--sup-cols",
                 "King County (WA) city news posts", "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cols = pd.read_csv(tmp_path / "map_ca_cols.csv", index_col=0)
    assert bool(cols.loc["King County (WA) city news posts", "supplementary"])
    svg = tmp_path / "map.svg"
    assert main(["diagram", "--workspace", str(real_workspace), "--rows", "domains", "--by", "issuer_type",
                 "--out", str(svg)]) == 0
    assert "<svg" in svg.read_text(encoding="utf-8")[:500]


def test_diagram_bad_requests(real_workspace, tmp_path, capsys):
    assert main(["diagram", "--workspace", str(real_workspace), "--out", str(tmp_path / "x.jpg")]) == 2
    assert ".html, .svg, .pdf, .png" in capsys.readouterr().err
    assert main(["diagram", "--workspace", str(real_workspace), "--by", "text"]) == 2
    assert "cannot group by" in capsys.readouterr().err
    assert main(["diagram", "--workspace", str(tmp_path / "none")]) == 2
    assert "no workspace" in capsys.readouterr().err


def test_export_escapes_names(tmp_path, codebook):
    from nlp.analysis.ca import correspondence_analysis

    table = pd.DataFrame([[5, 1, 2], [1, 6, 2], [2, 2, 7]], index=["a", "b", "c"],
                         columns=["<script>alert(1)</script>", "y", "z"])
    result = correspondence_analysis(table)
    path = export(tmp_path / "t.html", result, {"counts": table}, codebook).figure
    text = path.read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;" in text  # plotly also JSON-escapes the slash
    assert "<script>alert(1)</script>" not in text


def test_csv_exports_neutralise_cells_a_spreadsheet_would_run(tmp_path, codebook):
    """Group names, titles and issuers come from documents: a text cell starting with = + - @ (or a tab or carriage
    return) is written with a leading ' so that a spreadsheet shows it as text (OWASP); numbers stay numbers."""
    import pandas as pd

    from nlp.analysis.ca import correspondence_analysis
    from nlp.analysis.report import export
    from nlp.fileio import csv_text

    frame = pd.DataFrame({"title": ["=HYPERLINK(\"http://x\",\"y\")", "+1", "plain", "@SUM(A1)", "-2+3"],
                          "share": [0.5, -0.25, 1.0, 0.0, 2.0]},
                         index=pd.Index(["=cmd|' /C calc'!A0", "b", "c", "d", "\tx"], name="group"))
    back = pd.read_csv(__import__("io").StringIO(csv_text(frame)), index_col=0)
    assert back["title"].tolist() == ["'=HYPERLINK(\"http://x\",\"y\")", "'+1", "plain", "'@SUM(A1)", "'-2+3"]
    assert back["share"].tolist() == [0.5, -0.25, 1.0, 0.0, 2.0]  # numbers untouched, negative ones included
    assert back.index.tolist()[0] == "'=cmd|' /C calc'!A0" and back.index.tolist()[-1] == "'\tx"
    counts = pd.DataFrame([[10, 2, 3], [2, 9, 4], [3, 3, 8]], index=["=evil()", "b", "c"], columns=["x", "+y", "z"])
    result = correspondence_analysis(counts)
    written = export(tmp_path / "d.svg", result, {"counts": counts}, codebook).tables
    text = written[0].read_text(encoding="utf-8")
    assert "'=evil()" in text and "'+y" in text and "\n=evil()" not in text


RELEASES = {
    "sister-city.html": ("Springfield and Kumamoto renew their sister city agreement",
                         "Mayor Ruiz signed a renewed sister city agreement with the Mayor of Kumamoto, Japan, at City "
                         "Hall on Monday. The twinning partnership, founded in 1988, will add a student exchange "
                         "between the two cities' high schools and a joint cultural festival next spring."),
    "trade.html": ("Mayor leads trade mission to Monterrey",
                   "The Mayor will lead a delegation of 20 Springfield companies on a trade mission to Monterrey, "
                   "Mexico, to attract foreign investment and promote local exporters at an international fair."),
    "refugees.html": ("City welcomes Ukrainian refugees",
                      "The City Council approved funds to welcome refugee families from Ukraine and partnered with "
                      "the city of Lviv to send humanitarian aid, medical supplies and generators."),
}


def test_bring_your_own_press_releases_then_compare_them_with_the_state(real_workspace, tmp_path, capsys):
    """README's first path: a folder of a city office's HTML releases imported with its issuer and side, tagged,
    then one side of the diagram against the national documents."""
    import shutil

    home = tmp_path / "ws"
    shutil.copytree(real_workspace, home)
    folder = tmp_path / "releases"
    folder.mkdir()
    for name, (title, body) in RELEASES.items():
        (folder / name).write_text(f"<html><head><title>{title}</title></head><body><nav>Home | News</nav>"
                                   f"<article><h1>{title}</h1><p>{body}</p></article></body></html>",
                                   encoding="utf-8")
    assert main(["ingest", str(folder), "--workspace", str(home), "--source", "Springfield press releases",
                 "--issuer", "City of Springfield", "--issuer-type", "city", "--country", "USA", "--city",
                 "Springfield", "--classify", "--quiet"]) == 0
    capsys.readouterr()
    out = tmp_path / "springfield.html"
    assert main(["diagram", "--workspace", str(home), "--side", "Springfield:issuer=City of Springfield",
                 "--side", "state:issuer_type=national", "--replicates", "50", "--out", str(out)]) == 0
    sides = pd.read_csv(tmp_path / "springfield_sides.csv", index_col=0)
    assert sides.at["Springfield", "documents"] == 3
    assert "Springfield press releases" in sides.at["Springfield", "sources"]
    conv = pd.read_csv(tmp_path / "springfield_convergence.csv", index_col=0, keep_default_na=False)
    assert {"Springfield_share", "Springfield_low", "Springfield_high", "state_share"} <= set(conv.columns)
    assert conv.at["twinning", "Springfield_share"] > 0  # the sister-city release carries it
    assert "Springfield" in capsys.readouterr().out
