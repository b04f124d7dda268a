"""Corpus & trends: filter and search the workspace, follow label shares over time and by actor, see which
functions go with which domains, and open any document with its tags and evidence.

A search restricts every view (trends, actors, function x domain, documents). Under each trend chart: the
documents per source per period it stands on, the undated documents it leaves out, and a warning wherever the mix
of sources changes (a share can move because the documents come from elsewhere, not because anyone changed)."""

import re
from dataclasses import replace

import pandas as pd
import plotly.express as px
import streamlit as st

from nlp.analysis.figures import PALETTE, series_colors
from nlp.analysis.tables import (Filters, composition_changes, cooccurrence, coverage, group_totals, label_table,
                                 trends, undated, undated_note)
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
MAX_PANELS = 8  # sources, one panel each, in per-source trends
VIEWS = ("Trends over time", "By actor", "Function x domain", "Documents")
#: A source's share of a period's documents moving by more than this between adjacent periods is worth a warning.
COMPOSITION_THRESHOLD = 0.25

st.title("Corpus & trends")
if not c.workspace_exists():
    c.no_workspace_message()
    st.stop()


md = c.md_text  # data (a source name, a title, a query) as inert Markdown text


def series_styles(n: int) -> list[tuple[str, str, str]]:
    """(colour, dash, marker) for ``n`` series, from the analysis' one palette (:func:`series_colors`): distinct
    colours up to its size, then the colours again with another dash and marker, so that no two lines look alike."""
    return [(style.color, style.dash, style.symbol) for style in series_colors(n)]


def style_lines(fig, names: list[str]) -> None:
    """Dashes and markers by series name, once the colours run out (facets repeat a name: the same style in every
    panel). The colours themselves go to plotly express as the colour sequence, in the order of ``names``."""
    if len(names) <= len(PALETTE):  # colours alone tell them apart
        return
    styles = dict(zip(names, series_styles(len(names))))
    for trace in fig.data:
        if trace.name in styles:
            _colour, dash, symbol = styles[trace.name]
            trace.update(line_dash=dash, marker_symbol=symbol)


def csv_button(frame: pd.DataFrame, name: str, key: str) -> None:
    st.download_button(f"Download {name} (CSV)", csv_text(frame).encode("utf-8"), file_name=f"cdpd_{name}.csv",
                       mime="text/csv", key=key)


def coverage_section(ws, model: str, period: str, filters: Filters, scope: str) -> None:
    """Under a trend chart, what it stands on: a warning where the mix of sources changes, the undated documents
    it leaves out, and the classified documents per source and period (the shares' denominators, by source)."""
    table = coverage(ws, model, period, filters)
    missing = undated(ws, model, period, filters)
    changes = composition_changes(table, COMPOSITION_THRESHOLD)
    if changes:
        st.warning(f"**The mix of sources changes over time** (a source enters or leaves, or its share of a "
                   f"{period}'s documents moves by over {100 * COMPOSITION_THRESHOLD:.0f} points): a line can move "
                   "because the documents come from elsewhere, not because anyone changed. Tick *Per source* to "
                   "tell the two apart.\n\n" + "\n".join(f"- {md(line)}" for line in changes))
    note = undated_note(missing)
    if note:
        st.info(md(note) + ". They are counted in the other views (by actor, function x domain).")
    st.markdown(f"**Documents per source and {period}**")
    if table.empty:
        st.caption(f"No dated classified document under {scope}.")
        return
    shown = table.copy()
    shown.loc["all sources"] = table.sum(axis=0)
    st.dataframe(shown, width="stretch")
    st.caption(f"Classified documents per source and {period}, under {scope}; the last row, all sources, is what "
               f"each {period}'s shares divide by (dated documents only"
               + ("; by month, those dated to the month)." if period == "month" else ")."))
    csv_button(table, f"coverage_{period}", "dl_coverage")


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
    search = query.strip() or None
    searched = replace(filters, search=search)  # every view counts only the documents the search finds
    search_ok = True
    try:
        n_docs = count_documents(ws, searched)
    except WorkspaceError as exc:
        st.warning(f"That search cannot be run: {md(exc)}. Check quotes and operators (FTS5 syntax). Nothing below "
                   "is shown until it can.")
        n_docs, search_ok = 0, False
    tags = f"; tags of {md(model)}" if model else "; no model has classified this workspace yet"
    if search and search_ok:
        st.caption(f"{n_docs:,} document(s) match “{md(search)}” and the filters; the charts and tables below "
                   f"count only them{tags}")
    elif search_ok:
        st.caption(f"{n_docs:,} document(s) match the filters{tags}")
    scope = f"the filters and the search “{md(search)}”" if search else "the filters"
    if model is None:
        st.info("Classify the workspace first (`cdpd run`, or `cdpd ingest PATH --classify`) to see trends.")

    # one view computed per run (tabs would compute all four on every interaction)
    view = st.radio("View", VIEWS, horizontal=True, key="corpus_view", label_visibility="collapsed")

    if model and search_ok:
        if view == VIEWS[0]:
            left, middle, right = st.columns([1, 1, 1])
            period = left.radio("Period", ["year", "month"], horizontal=True, key="corpus_period")
            split = middle.selectbox("Compare", [None, *GROUPINGS], key="corpus_split",
                                     format_func=lambda k: "labels" if k is None else PLURALS[k],
                                     help="Labels against each other, or one label across issuers, countries, ...")
            top = right.slider("Groups", 2, MAX_SERIES, 8, key="corpus_top", disabled=split is None,
                               help="The groups with the most dated documents under the filters; filter the "
                                    "sidebar (e.g. some countries) to compare others")
            per_source = left.checkbox(
                "Per source", key="corpus_per_source", disabled=split is not None,
                help="One panel per source (the largest ones): a line moving within a source is change; a jump "
                     "in the overall chart that no source shows comes from the mix of sources")
            if split is not None and label is None:
                label = st.selectbox("Label", labels, key="corpus_split_label",
                                     help="One label, followed across the groups")
            by_source = per_source and split is None
            data = trends(ws, model, axis=axis, period=period, by="source" if by_source else split,
                          top=MAX_PANELS if by_source else top if split is not None else None, filters=searched)
            if label:
                data = data[data["label"] == label]
            if data.empty:
                st.info("No dated classified document matches " + scope + ".")
            else:
                data = data.assign(share_pct=100 * data["share"])
                if "group" in data:  # names from the data: plotly renders <b>, <a>, <br> in legends and axes
                    data["group"] = data["group"].map(c.plot_text)
                # one label per source: a line per source; all labels per source: a panel per source
                series = "group" if split is not None or (by_source and label) else "label"
                facet = "group" if by_source and not label else None
                if split is not None:
                    title = (f"Share of documents carrying “{label}”, by {period}: the {data['group'].nunique()} "
                             f"{PLURALS[split]} with the most documents")
                elif by_source:
                    title = (f"Share of documents carrying {f'“{label}”' if label else f'each {axis} label'}, by "
                             f"{period}, per source: the {data['group'].nunique()} largest")
                else:
                    title = f"Share of documents carrying each {axis} label, by {period}"
                names = list(dict.fromkeys(data[series]))
                panels = data["group"].nunique() if facet else 1
                fig = px.line(data, x="period", y="share_pct", color=series, markers=True, title=title,
                              facet_col=facet, facet_col_wrap=2 if facet else 0, category_orders={series: names},
                              color_discrete_sequence=[colour for colour, _, _ in series_styles(len(names))],
                              hover_data={"documents": True, "total": True},
                              labels={"share_pct": "% of documents", "period": period, "group": ""})
                style_lines(fig, names)
                if facet:  # panel titles are source names: data, shown as text
                    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=", 1)[-1][:80]))  # escaped above
                fig.update_layout(template="plotly_white", legend_title_text="",
                                  height=480 if not facet else 120 + 260 * ((panels + 1) // 2))
                st.plotly_chart(fig, key="trend_chart")
                unit = "source" if by_source else GROUPINGS[split].lower() if split else ""
                also = f" and {unit}" if unit else ""
                st.caption(f"Each point: classified documents of that {period}{also} carrying the label, as a % of "
                           f"all classified documents of that {period}{also} (hover: documents, total), under "
                           f"{scope}. Undated documents are left out"
                           + (", and by month those dated to the year only." if period == "month" else "."))
                column = data["group"] + " / " + data["label"] if facet else data[series]  # one header row
                wide = data.assign(column=column).pivot_table(index="period", columns="column", values="share",
                                                              aggfunc="first")
                csv_button(wide, f"trends_{axis}_{period}" + (f"_by_{split}" if split else
                                                              "_by_source" if by_source else ""), "dl_trends")
            coverage_section(ws, model, period, searched, scope)

        if view == VIEWS[1]:
            by = st.selectbox("Group by", list(GROUPINGS), format_func=GROUPINGS.get, key="corpus_by")
            counts = label_table(ws, model, axis=axis, by=by, filters=searched)
            totals = group_totals(ws, model, by=by, filters=searched)
            if counts.empty or totals.empty:
                st.info("No classified document matches " + scope + ".")
            else:
                top = totals.sort_values(ascending=False).index[:MAX_GROUPS]
                if len(totals) > MAX_GROUPS:
                    st.caption(f"The {MAX_GROUPS} largest of {len(totals)} groups.")
                shares = counts[top].div(totals[top], axis=1)
                if label:
                    shares = shares.loc[[label]]
                fig = px.imshow((100 * shares).rename(columns=c.plot_text), aspect="auto",
                                color_continuous_scale="Blues", text_auto=".0f",
                                labels={"color": "% of documents", "x": GROUPINGS[by], "y": axis})
                fig.update_layout(height=max(320, 28 * len(shares) + 160), template="plotly_white")
                st.plotly_chart(fig, key="actor_chart")
                table = (100 * shares).round(1)
                table.loc["documents"] = totals[top]
                st.dataframe(table, width="stretch")
                st.caption(f"% of the group's classified documents carrying the label; the row “documents” is the "
                           f"group's classified documents (dated or not), under {scope}.")
                csv_button(table, f"shares_{axis}_by_{by}", "dl_actors")

        if view == VIEWS[2]:
            others = [a for a in cb.axis_names if a != axis]
            if not others:
                st.info("The codebook has one axis only.")
            else:
                co = cooccurrence(ws, model, rows=axis, cols=others[0], filters=searched)
                fig = px.imshow(co, aspect="auto", color_continuous_scale="Oranges", text_auto=True,
                                labels={"color": "documents"})
                fig.update_layout(height=max(320, 28 * len(co) + 160), template="plotly_white",
                                  title=f"Documents carrying both labels ({axis} x {others[0]})")
                st.plotly_chart(fig, key="heatmap")
                st.caption(f"Classified documents carrying both labels, under {scope}.")
                csv_button(co, f"cooccurrence_{axis}_{others[0]}", "dl_heat")

    if view == VIEWS[3] and search_ok:
        sort = "relevance"
        if search:
            sort = st.radio("Order", ["relevance", "date"], horizontal=True, key="corpus_sort",
                            format_func=lambda s: "most relevant first (BM25)" if s == "relevance" else
                            "newest first")
        try:
            docs = document_table(ws, model, filters=filters, label=label, query=search, sort=sort, limit=200)
        except WorkspaceError as exc:
            st.warning(f"That search cannot be run: {md(exc)}. Check quotes and operators (FTS5 syntax).")
            docs = None
        if docs is not None:
            order = ("ranked by relevance (BM25: the relevance column, higher is better)" if search and
                     sort == "relevance" else "newest first")
            st.caption(f"{len(docs)} document(s) shown ({order}, at most 200)")
            st.dataframe(docs, hide_index=True, width="stretch")
            csv_button(docs.set_index("id"), "documents", "dl_docs")
            if len(docs):
                titles = dict(zip(docs["id"], docs["title"]))
                chosen = st.selectbox("Open a document", docs["id"].tolist(), key="corpus_open",
                                      format_func=lambda i: f"{i}: {titles[i][:90]}")
                doc = ws.get_document(chosen)
                if doc is not None:
                    st.markdown(f"#### {md(doc.title or doc.id)}")
                    st.caption(" · ".join(md(x) for x in (doc.date, doc.source, doc.issuer, doc.country, doc.city)
                                          if x)
                               + (f" · [{md(doc.url)}](<{doc.url}>)" if doc.url.startswith(("http://", "https://"))
                                  and not re.search(r"[\s<>]", doc.url) else ""))
                    preds = ws.predictions_for(doc.id, model) if model else {}
                    evidence = {}
                    for axis_name in cb.axis_names:
                        tagged = [lab for lab, p in preds.items() if p["axis"] == axis_name and p["selected"]]
                        st.markdown(f"**{axis_name}**: " + (", ".join(tagged) if tagged else "_none_"))
                        evidence.update({lab: preds[lab]["evidence"] for lab in tagged})
                    c.show_text(text_for_tagging(doc), evidence)
