"""The CD-PD diagram: correspondence analysis of labels x actor groups, the convergence table that reads it,
the scree plot, contributions and the MDS view, with HTML, PNG and CSV downloads."""

import io
import zipfile

import pandas as pd
import plotly.express as px
import streamlit as st

from nlp.analysis.tables import Filters, group_totals
from nlp.analysis.diagram import build_diagram
from nlp.app import common as c
from nlp.analysis.ca import CAError
from nlp.analysis.figures import biplot, mds_figure, static_biplot
from nlp.analysis.report import html_report
from nlp.fileio import csv_text
from nlp.workspace import Workspace, WorkspaceError, default_home

GROUPINGS = {"source": "Source", "issuer_type": "Issuer type", "issuer": "Issuer", "country": "Country",
             "city": "City", "year": "Year"}

st.title("City Diplomacy - Public Diplomacy diagram")
st.caption("Correspondence analysis of how often each label is used by each group of documents: labels close to "
           "a group are used by it more than on average; the convergence table reads city vs national use.")
if not c.workspace_exists():
    c.no_workspace_message()
    st.stop()


@st.cache_data(show_spinner="Computing the correspondence analysis ...", max_entries=16)
def compute(home: str, model: str, rows: str, by: str, unit: str, where: tuple, date_from, date_to,
            sup_cols: tuple, ellipses: int, diplomatic_only: bool, stamp: str):
    """Cached per parameters and workspace state (``stamp`` changes whenever documents are classified)."""
    filters = Filters({k: list(v) for k, v in where}, date_from, date_to)
    with Workspace(home, create=False) as ws:
        return build_diagram(ws, c.codebook(), model, rows=rows, by=by, unit=unit, filters=filters,
                             sup_cols=list(sup_cols), ellipses=ellipses, seed=0, diplomatic_only=diplomatic_only)


with c.workspace() as ws:
    cb = c.codebook()
    refs = c.workspace_models(ws)
    if not refs:
        st.info("No document in the workspace is classified yet: run `cdpd run`.")
        st.stop()
    filters = c.sidebar_filters(ws, "diagram")
    with st.sidebar:
        model = c.model_picker(refs, "diagram_model")
    stamp = ws.conn.execute("SELECT count(*) || ':' || coalesce(max(classified_at), '') FROM classified "
                            "WHERE model = ?", (model,)).fetchone()[0]
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

args = (str(default_home()), model, rows, by, unit, tuple(sorted((k, tuple(v)) for k, v in filters.where.items())),
        filters.date_from, filters.date_to, tuple(sup), int(replicates) if show_ellipses else 0, not all_units,
        stamp)
try:
    d = compute(*args)
except (CAError, WorkspaceError, ValueError) as exc:
    st.warning(f"No diagram for this selection: {c.friendly(exc)}")
    st.stop()

for note in d.notes:
    st.info(note)
st.plotly_chart(biplot(d.result, cb, ellipses=d.ellipses, title=d.title), key="biplot")
st.caption(d.caption)

tab_conv, tab_scree, tab_contrib, tab_mds, tab_counts = st.tabs(
    ["Convergence table", "Scree plot", "Contributions", "MDS view", "Counts"])
with tab_conv:
    if d.sides is not None:
        st.markdown("**Sides compared**")
        st.dataframe(d.sides, width="stretch")
    if d.convergence is None:
        st.info("No convergence reading: a side has no unit to count in this selection.")
    else:
        conv = d.convergence
        st.markdown(f"**Convergence ({conv.label})**: {conv.unit_label}, in % with "
                    f"{100 * (1 - conv.alpha):g}% intervals")
        shown = conv.table.copy()
        for column in shown.columns:
            if column.endswith(("_share", "_low", "_high")) or column.startswith("difference"):
                shown[column] = 100 * shown[column]
        st.dataframe(shown.round(3), width="stretch")
        st.caption(f"Reading rule: {conv.rule}")
        st.caption(f"Method: {conv.method}")
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


def report_html() -> bytes:
    return html_report(d.result, cb, ellipses=d.ellipses, title=d.title, convergence=d.convergence,
                       mds=d.mds, sides=d.sides, caption=d.caption).encode("utf-8")


def figure_png() -> bytes:
    import matplotlib.pyplot as plt

    fig = static_biplot(d.result, cb, ellipses=d.ellipses, title=d.title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=150)
    plt.close(fig)
    return buf.getvalue()


def tables_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, table in d.tables.items():
            zf.writestr(f"cdpd_diagram_{name}.csv", csv_text(table))
    return buf.getvalue()


# built when clicked, not on every view (the PNG alone takes about a second)
a, b, z = st.columns(3)
a.download_button("Report (HTML)", report_html, file_name="cdpd_diagram.html", mime="text/html", key="dl_html")
b.download_button("Diagram (PNG)", figure_png, file_name="cdpd_diagram.png", mime="image/png", key="dl_png")
z.download_button("Tables (CSV, zip)", tables_zip, file_name="cdpd_diagram_tables.zip", mime="application/zip",
                  key="dl_csv")
