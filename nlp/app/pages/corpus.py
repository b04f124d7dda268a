"""Corpus & trends: filter and search the workspace, follow label shares over time and by actor, see which
functions go with which domains, and open any document with its tags and evidence."""

import pandas as pd
import plotly.express as px
import streamlit as st

from nlp.analysis.tables import Filters, cooccurrence, group_totals, label_table, trends
from nlp.app import common as c
from nlp.browse import count_documents, document_table
from nlp.fileio import csv_text
from nlp.pipeline import text_for_tagging
from nlp.workspace import WorkspaceError

GROUPINGS = {"issuer_type": "Issuer type", "source": "Source", "issuer": "Issuer", "country": "Country",
             "city": "City"}
PLURALS = {"issuer_type": "issuer types", "source": "sources", "issuer": "issuers", "country": "countries",
           "city": "cities"}
MAX_GROUPS = 25
MAX_SERIES = 20  # lines in one trend chart
VIEWS = ("Trends over time", "By actor", "Function x domain", "Documents")

st.title("Corpus & trends")
if not c.workspace_exists():
    c.no_workspace_message()
    st.stop()


def csv_button(frame: pd.DataFrame, name: str, key: str) -> None:
    st.download_button(f"Download {name} (CSV)", csv_text(frame).encode("utf-8"), file_name=f"cdpd_{name}.csv",
                       mime="text/csv", key=key)


with c.workspace() as ws:
    cb = c.codebook()
    refs = c.workspace_models(ws)
    filters = c.sidebar_filters(ws, "corpus")
    with st.sidebar:
        model = c.model_picker(refs, "corpus_model", help="Whose tags to show (models that classified this "
                                                          "workspace; the active one first)")
        axis = st.radio("Axis", cb.axis_names, horizontal=True, key="corpus_axis")
        labels = ws._labels(model)[axis] if model else cb.labels(axis)
        label = st.selectbox("Label", ["(all labels)", *labels], key="corpus_label")
        label = None if label.startswith("(") else label

    query = st.text_input("Full-text search", key="corpus_query",
                          placeholder='e.g. sister city, "climate neutral", refugee* NOT ukraine',
                          help="SQLite FTS5 syntax: words, \"phrases\", prefix*, AND / OR / NOT, NEAR(a b)")
    n_docs = count_documents(ws, filters)
    st.caption(f"{n_docs:,} document(s) match the filters" + (f"; tags of {model}" if model else
                                                              "; no model has classified this workspace yet"))
    if model is None:
        st.info("Classify the workspace first (`cdpd run`, or `cdpd ingest PATH --classify`) to see trends.")

    # one view computed per run (tabs would compute all four on every interaction)
    view = st.radio("View", VIEWS, horizontal=True, key="corpus_view", label_visibility="collapsed")

    if model:
        if view == VIEWS[0]:
            left, middle, right = st.columns([1, 1, 1])
            period = left.radio("Period", ["year", "month"], horizontal=True, key="corpus_period")
            split = middle.selectbox("Compare", [None, *GROUPINGS], key="corpus_split",
                                     format_func=lambda k: "labels" if k is None else PLURALS[k],
                                     help="Labels against each other, or one label across issuers, countries, ...")
            top = right.slider("Groups", 2, MAX_SERIES, 8, key="corpus_top", disabled=split is None,
                               help="The groups with the most dated documents under the filters; filter the "
                                    "sidebar (e.g. some countries) to compare others")
            if split is not None and label is None:
                label = st.selectbox("Label", labels, key="corpus_split_label",
                                     help="One label, followed across the groups")
            data = trends(ws, model, axis=axis, period=period, by=split,
                          top=top if split is not None else None, filters=filters)
            if label:
                data = data[data["label"] == label]
            if data.empty:
                st.info("No classified document matches the filters.")
            else:
                data = data.assign(share_pct=100 * data["share"])
                series = "label" if split is None else "group"
                title = (f"Share of documents carrying each {axis} label, by {period}" if split is None else
                         f"Share of documents carrying “{label}”, by {period}: the {data['group'].nunique()} "
                         f"{PLURALS[split]} with the most documents")
                fig = px.line(data, x="period", y="share_pct", color=series, markers=True, title=title,
                              hover_data={"documents": True, "total": True},
                              labels={"share_pct": "% of documents", "period": period})
                fig.update_layout(template="plotly_white", height=480, legend_title_text="")
                st.plotly_chart(fig, key="trend_chart")
                wide = data.pivot_table(index="period", columns=series, values="share", aggfunc="first")
                csv_button(wide, f"trends_{axis}_{period}" + (f"_by_{split}" if split else ""), "dl_trends")

        if view == VIEWS[1]:
            by = st.selectbox("Group by", list(GROUPINGS), format_func=GROUPINGS.get, key="corpus_by")
            counts = label_table(ws, model, axis=axis, by=by, filters=filters)
            totals = group_totals(ws, model, by=by, filters=filters)
            if counts.empty or totals.empty:
                st.info("No classified document matches the filters.")
            else:
                top = totals.sort_values(ascending=False).index[:MAX_GROUPS]
                if len(totals) > MAX_GROUPS:
                    st.caption(f"The {MAX_GROUPS} largest of {len(totals)} groups.")
                shares = counts[top].div(totals[top], axis=1)
                if label:
                    shares = shares.loc[[label]]
                fig = px.imshow(100 * shares, aspect="auto", color_continuous_scale="Blues", text_auto=".0f",
                                labels={"color": "% of documents", "x": GROUPINGS[by], "y": axis})
                fig.update_layout(height=max(320, 28 * len(shares) + 160), template="plotly_white")
                st.plotly_chart(fig, key="actor_chart")
                table = (100 * shares).round(1)
                table.loc["documents"] = totals[top]
                st.dataframe(table, width="stretch")
                csv_button(table, f"shares_{axis}_by_{by}", "dl_actors")

        if view == VIEWS[2]:
            others = [a for a in cb.axis_names if a != axis]
            if not others:
                st.info("The codebook has one axis only.")
            else:
                co = cooccurrence(ws, model, rows=axis, cols=others[0], filters=filters)
                fig = px.imshow(co, aspect="auto", color_continuous_scale="Oranges", text_auto=True,
                                labels={"color": "documents"})
                fig.update_layout(height=max(320, 28 * len(co) + 160), template="plotly_white",
                                  title=f"Documents carrying both labels ({axis} x {others[0]})")
                st.plotly_chart(fig, key="heatmap")
                csv_button(co, f"cooccurrence_{axis}_{others[0]}", "dl_heat")

    if view == VIEWS[3]:
        try:
            docs = document_table(ws, model, filters=filters, label=label, query=query, limit=200)
        except WorkspaceError as exc:
            st.warning(f"That search cannot be run: {exc}. Check quotes and operators (FTS5 syntax).")
            docs = None
        if docs is not None:
            st.caption(f"{len(docs)} document(s) shown (newest first, at most 200)")
            st.dataframe(docs, hide_index=True, width="stretch")
            csv_button(docs.set_index("id"), "documents", "dl_docs")
            if len(docs):
                titles = dict(zip(docs["id"], docs["title"]))
                chosen = st.selectbox("Open a document", docs["id"].tolist(), key="corpus_open",
                                      format_func=lambda i: f"{i}: {titles[i][:90]}")
                doc = ws.get_document(chosen)
                if doc is not None:
                    st.markdown(f"#### {doc.title or doc.id}")
                    st.caption(" · ".join(x for x in (doc.date, doc.source, doc.issuer, doc.country, doc.city) if x)
                               + (f" · [{doc.url}]({doc.url})" if doc.url.startswith(("http://", "https://")) else ""))
                    preds = ws.predictions_for(doc.id, model) if model else {}
                    evidence = {}
                    for axis_name in cb.axis_names:
                        tagged = [lab for lab, p in preds.items() if p["axis"] == axis_name and p["selected"]]
                        st.markdown(f"**{axis_name}**: " + (", ".join(tagged) if tagged else "_none_"))
                        evidence.update({lab: preds[lab]["evidence"] for lab in tagged})
                    c.show_text(text_for_tagging(doc), evidence)
