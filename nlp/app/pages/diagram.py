"""The CD-PD diagram: the two sides' profiles (dumbbell chart with intervals, the convergence reading and Amiri's
zones), the correspondence analysis map of labels x actor groups, the scree plot, contributions and the MDS view;
the report (HTML, PDF), the figures (SVG, PDF, 300-dpi PNG, captioned) and the tables (CSV) as downloads."""

import datetime
import io
import tempfile
import zipfile
from pathlib import Path

import plotly.express as px
import streamlit as st

from nlp.analysis.tables import Filters, cooccurrence, group_totals
from nlp.analysis.diagram import build_diagram
from nlp.app import common as c
from nlp.analysis.figures import biplot, dumbbell, mds_figure, static_biplot, static_dumbbell
from nlp.analysis.report import export_figure, research_report, research_report_pdf
from nlp.analysis.sides import SIDE_FIELDS, Comparison, Side
from nlp.browse import filter_values
from nlp.errors import CdpdError
from nlp.fileio import csv_text
from nlp.workspace import Workspace, default_home

GROUPINGS = {"source": "Source", "issuer_type": "Issuer type", "issuer": "Issuer", "country": "Country",
             "city": "City", "year": "Year"}

st.title("City Diplomacy - Public Diplomacy diagram")
st.caption("Two sides compared (by default city against national issuers): how each uses every diplomacy function, "
           "with intervals, and where one side is weak (the policy intervention space). Below, the correspondence "
           "analysis map of labels and groups of documents: labels close to a group are used by it more than on "
           "average.")
if not c.workspace_exists():
    c.no_workspace_message()
    st.stop()


@st.cache_data(show_spinner="Computing the correspondence analysis ...", max_entries=16)
def compute(home: str, model: str, rows: str, by: str, unit: str, where: tuple, date_from, date_to,
            sup_cols: tuple, ellipses: int, diplomatic_only: bool, sides: tuple, top: int, stamp: str):
    """Cached per parameters and workspace state (``stamp`` changes whenever documents are classified); ``sides``
    is ((name, ((field, (values...)), ...)), ...) or () for the default comparison."""
    filters = Filters({k: list(v) for k, v in where}, date_from, date_to)
    comparison = (Comparison(tuple(Side(name, {f: list(v) for f, v in where_}) for name, where_ in sides))
                  if sides else None)
    with Workspace(home, create=False) as ws:
        return build_diagram(ws, c.codebook(), model, rows=rows, by=by, unit=unit, filters=filters,
                             sup_cols=list(sup_cols), ellipses=ellipses, seed=0, diplomatic_only=diplomatic_only,
                             comparison=comparison, top=top or None, with_cooccurrence=False)


@st.cache_data(show_spinner=False, max_entries=4)
def cooccurrence_table(home: str, model: str, rows: str, where: tuple, date_from, date_to, stamp: str):
    """The function x domain table of the CSV download, read only when it is asked for."""
    other = next((a for a in c.codebook().axis_names if a != rows), None)
    if other is None:
        return None
    with Workspace(home, create=False) as ws:
        return cooccurrence(ws, model, rows=rows, cols=other,
                            filters=Filters({k: list(v) for k, v in where}, date_from, date_to))


def side_picker(ws, key: str, default_name: str, default_value: str) -> tuple:
    """One side of a custom comparison: a name, a field and the values it takes."""
    name = st.text_input("Name", value=default_name, key=f"{key}_name", max_chars=40)
    field = st.selectbox("Documents whose", SIDE_FIELDS, index=SIDE_FIELDS.index("issuer_type"), key=f"{key}_field")
    options = filter_values(ws, field)
    values = st.multiselect("is one of", options, default=[default_value] if default_value in options else [],
                            key=f"{key}_values")
    return name.strip(), ((field, tuple(values)),)


with c.workspace() as ws:
    cb = c.codebook()
    refs = c.workspace_models(ws)
    if not refs:
        st.info("No document in the workspace is classified yet: run `cdpd run`.")
        st.stop()
    filters = c.sidebar_filters(ws, "diagram")
    with st.sidebar:
        model = c.model_picker(refs, "diagram_model")
    stamp = ws.state_stamp(model)
    left, mid, right = st.columns(3)
    rows = left.selectbox("Rows", cb.axis_names, key="diagram_rows")
    by = mid.selectbox("Columns: group documents by", list(GROUPINGS), format_func=GROUPINGS.get,
                       key="diagram_by")
    unit = right.radio("Count", ["intensity", "documents", "passages"], horizontal=True, key="diagram_unit",
                       help="intensity: each document weighs 1 and counts the share of its passages carrying a "
                            "label; documents: tagged or not; passages: passages carrying the label")
    groups = list(group_totals(ws, model, by=by, filters=filters).index)
    left, right = st.columns([2, 1])
    sup = left.multiselect("Supplementary groups (projected, not used to build the axes; e.g. one city)", groups,
                           key="diagram_sup")
    with right:
        show_ellipses = st.checkbox("Bootstrap confidence ellipses", key="diagram_ellipses")
        replicates = st.number_input("Replicates", 50, 1000, 200, step=50, key="diagram_replicates",
                                     disabled=not show_ellipses)
        all_units = st.checkbox("Convergence over all units (not only diplomatic ones)", key="diagram_all_units")
        top = st.number_input("Groups on the map (the largest; the rest projected)", 0, 200, 15, step=1,
                              key="diagram_top", help="0 keeps every group active")
    custom = st.toggle("Choose the two sides (default: city against national issuers)", key="diagram_custom")
    sides: tuple = ()
    if custom:
        a_col, b_col = st.columns(2)
        with a_col:
            st.markdown("**Side A**")
            side_a = side_picker(ws, "diagram_side_a", "city", "city")
        with b_col:
            st.markdown("**Side B**")
            side_b = side_picker(ws, "diagram_side_b", "state", "national")
        if all(s[0] and s[1][0][1] for s in (side_a, side_b)):
            sides = (side_a, side_b)
        else:
            st.info("Give each side a name and at least one value; until then the default sides are used.")

args = (str(default_home()), model, rows, by, unit, tuple(sorted((k, tuple(v)) for k, v in filters.where.items())),
        filters.date_from, filters.date_to, tuple(sup), int(replicates) if show_ellipses else 0, not all_units,
        sides, int(top), stamp)
try:
    d = compute(*args)
except CdpdError as exc:  # the user's selection cannot be drawn: say why
    st.warning(f"No diagram for this selection: {c.friendly(exc)}")
    st.stop()

for note in d.notes:
    st.info(c.md_text(note))
st.caption(c.md_text(d.caption))

tab_sides, tab_map, tab_scree, tab_contrib, tab_mds, tab_counts = st.tabs(
    ["Two sides", "Map (correspondence analysis)", "Scree plot", "Contributions", "MDS view", "Counts"])
with tab_sides:
    if d.sides is not None:
        st.markdown("**What each side contains** (classified documents under the filters)")
        st.dataframe(d.sides, width="stretch", key="diagram_sides_table")
    if d.convergence is None:
        st.info("No convergence reading: a side has no unit to count in this selection.")
    else:
        conv = d.convergence
        st.plotly_chart(dumbbell(conv), key="dumbbell")
        space = [f"{label} ({zone.split(': ', 1)[-1]} weak)" for label, zone in conv.table["zone"].items()
                 if str(zone).startswith("intervention space")]
        overlap = [label for label, zone in conv.table["zone"].items() if zone == "expected overlap"]
        missed = [label for label, zone in conv.table["zone"].items() if zone == "expected overlap, not observed"]
        st.markdown("**Policy intervention space** (crossover functions, after Amiri, that one side uses "
                    "significantly less than the other): " + (c.md_text(", ".join(space)) or "_none_"))
        st.markdown("**Expected overlaps** observed: " + (c.md_text(", ".join(overlap)) or "_none_")
                    + "; named by Amiri but not observed: " + (c.md_text(", ".join(missed)) or "_none_"))
        st.markdown(f"**Convergence ({c.md_text(conv.label)})**: {c.md_text(conv.unit_label)}, in % with "
                    f"{100 * (1 - conv.alpha):g}% intervals")
        shown = conv.table.copy()
        for column in shown.columns:
            if column.endswith(("_share", "_low", "_high")) or column.startswith("difference"):
                shown[column] = 100 * shown[column]
        st.dataframe(shown.round(3), width="stretch", key="diagram_convergence_table")
        st.caption(c.md_text(f"Reading rule: {conv.rule}"))
        st.caption(c.md_text(f"Method: {conv.method}"))
with tab_map:
    # at the size its labels were placed for (not stretched): see figures.biplot
    st.plotly_chart(biplot(d.result, cb, ellipses=d.ellipses, title=d.title), key="biplot", width="content")
    st.caption("Labels of a crowded map show on hover; the downloads below place every label apart (full names "
               "or codes with a key).")
with tab_scree:
    eig = d.result.eigenvalues.reset_index(names="dimension")
    fig = px.bar(eig, x="dimension", y="pct", text=eig["pct"].round(1), labels={"pct": "% of inertia"},
                 title="Share of inertia per dimension")
    fig.update_layout(template="plotly_white", height=360)
    st.plotly_chart(fig, key="scree")
with tab_contrib:
    k = d.result.n_components
    wanted = [col for j in range(1, k + 1) for col in (f"coord_{j}", f"contrib_{j}", f"cos2_{j}")]
    st.markdown("**Rows** (contributions in %; cos2 = quality of representation)")
    st.dataframe(d.result.rows[["mass", "inertia", *wanted, "supplementary"]].round(3), width="stretch")
    st.markdown("**Columns**")
    st.dataframe(d.result.cols[["mass", "inertia", *wanted, "supplementary"]].round(3), width="stretch")
with tab_mds:
    if d.mds is None:
        st.info("MDS needs at least three labels and three groups with data.")
    else:
        st.plotly_chart(mds_figure(*d.mds), key="mds")
with tab_counts:
    st.dataframe(d.counts, width="stretch")

st.subheader("Downloads")
st.caption("Figures carry the caption above (model, held-out F1, unit, sides, N). SVG and PDF are vector; PNG is "
           "300 dpi. The report holds the figures, the sides, the convergence table with intervals, the method and "
           "the model's quality per source.")


def model_quality():
    from nlp.models import model_quality

    return model_quality(d.model)


def generated() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def report_html() -> bytes:
    return research_report(d, quality=model_quality(), codebook=cb, generated=generated()).encode("utf-8")


def report_pdf() -> bytes:
    with tempfile.TemporaryDirectory(prefix="cdpd-report-") as tmp:
        path = research_report_pdf(d, Path(tmp) / "report.pdf", quality=model_quality(), codebook=cb,
                                   generated=generated())
        return path.read_bytes()


def figure_bytes(which: str, suffix: str) -> bytes:
    """The map or the dumbbell as SVG, PDF or 300-dpi PNG, captioned, written as `cdpd diagram --out` does."""
    import matplotlib.pyplot as plt

    if which == "map":
        fig = static_biplot(d.result, cb, ellipses=d.ellipses, title=d.title)
    else:
        fig = static_dumbbell(d.convergence)
    try:
        with tempfile.TemporaryDirectory(prefix="cdpd-figure-") as tmp:
            return export_figure(fig, Path(tmp) / f"figure{suffix}", caption=d.caption).read_bytes()
    finally:
        plt.close(fig)


def tables_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        co = cooccurrence_table(args[0], args[1], args[2], args[5], args[6], args[7], args[-1])
        for name, table in {**d.tables, **({"cooccurrence": co} if co is not None else {})}.items():
            zf.writestr(f"cdpd_diagram_{name}.csv", csv_text(table))
    return buf.getvalue()


MIME = {".svg": "image/svg+xml", ".pdf": "application/pdf", ".png": "image/png"}
# built when clicked, not on every view (a figure takes about a second)
r1, r2, t = st.columns(3)
r1.download_button("Report (HTML)", report_html, file_name="cdpd_report.html", mime="text/html", key="dl_html")
r2.download_button("Report (PDF)", report_pdf, file_name="cdpd_report.pdf", mime="application/pdf", key="dl_pdf")
t.download_button("Tables (CSV, zip)", tables_zip, file_name="cdpd_diagram_tables.zip", mime="application/zip",
                  key="dl_csv")
figures = [("map", "Map")] + ([("dumbbell", "Two sides")] if d.convergence is not None else [])
for which, name in figures:
    columns = st.columns(3)
    for column, suffix in zip(columns, (".svg", ".pdf", ".png")):
        column.download_button(f"{name} ({suffix[1:].upper()})", lambda w=which, x=suffix: figure_bytes(w, x),
                               file_name=f"cdpd_{which}{suffix}", mime=MIME[suffix], key=f"dl_{which}_{suffix[1:]}")
