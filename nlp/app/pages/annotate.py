"""Annotate: passages chosen by the model's uncertainty (or at random), its suggestions pre-selected; every save
is committed to the workspace at once, so a killed server loses nothing."""

import tempfile
from pathlib import Path

import streamlit as st

from nlp.agreement import agreement_table
from nlp.annotations import export_annotations
from nlp.app import common as c
from nlp.queue import STRATEGIES, workspace_queue

st.title("Annotate")
st.caption("Label workspace passages by the codebook. The queue puts first the passages the model is least sure "
           "about; its suggestions are pre-selected. Saves go straight to the workspace.")
if not c.workspace_exists():
    c.no_workspace_message()
    st.stop()

cb = c.codebook()
state = st.session_state
with st.sidebar:
    annotator = st.text_input("Your name (annotator)", key="annotator").strip()
    strategy = st.radio("Queue", [s for s in ("uncertainty", "random", "diversity") if s in STRATEGIES],
                        key="annotate_strategy", help="uncertainty: closest to a label's threshold first; random: a "
                                                      "random sample (for unbiased evaluation); diversity: one per "
                                                      "cluster of uncertain passages")
    size = st.number_input("Queue size", 5, 200, 20, step=5, key="annotate_size")
    ref = st.selectbox("Suggestions from", c.model_refs(), key="annotate_model")

@st.cache_data(show_spinner="Choosing passages ...", max_entries=8)
def build_queue(home: str, ref: str, strategy: str, size: int, stamp: str):
    """Scored once per model, strategy, size and workspace state, then shared by every session. The pool is
    sampled at random (seeded) and scaled to the queue size: scoring 2,000 passages took 4 s a view."""
    tagger, _info = c.model(ref)
    with c.workspace() as ws:
        return workspace_queue(ws, tagger, cb, size, strategy=strategy, pool=max(400, 20 * size))


wanted = (ref, strategy, int(size))
if state.get("queue_key") != wanted:
    try:
        with c.workspace() as ws:
            stamp = ws.conn.execute("SELECT (SELECT count(*) FROM annotations) || ':' || (SELECT count(*) FROM "
                                    "passages)").fetchone()[0]
        state["queue"] = build_queue(str(c.default_home()), ref, strategy, int(size), stamp)
        state["queue_key"], state["queue_pos"], state["queue_saved"] = wanted, 0, []
    except Exception as exc:
        st.error(f"Cannot build the queue: {c.friendly(exc)}")
        st.stop()

queue, pos, saved = state["queue"], state["queue_pos"], state["queue_saved"]
if not queue:
    st.info("No passage to annotate: the workspace has no unannotated passages (classify documents first).")
st.progress(min(pos, len(queue)) / max(len(queue), 1),
            text=f"{pos} of {len(queue)} passages done ({len(saved)} saved this session)")


def save(item, labels):
    with c.workspace() as ws:
        doc = ws.conn.execute("SELECT doc_id FROM documents WHERE id = ?", (item.document,)).fetchone()
        annotation_id = ws.add_annotation(item.text, labels, annotator, doc_id=doc[0] if doc else None,
                                          passage_id=item.passage_id)
    saved.append((annotation_id, pos))
    state["queue_pos"] = pos + 1
    state["flash"] = f"Saved annotation {annotation_id}."


def undo():
    if not saved:
        return
    annotation_id, at = saved.pop()
    with c.workspace() as ws:
        ws.delete_annotation(annotation_id)
    state["queue_pos"] = at
    state["flash"] = f"Removed annotation {annotation_id}; back to its passage."


if "flash" in state:
    st.toast(state.pop("flash"))

if pos < len(queue):
    item = queue[pos]
    with st.container(border=True):
        st.caption(f"Passage {pos + 1} of {len(queue)} · from document `{item.document}` · margin {item.margin:.3f} "
                   "(0 = on a threshold)")
        c.show_text(item.text)
        choices = {}
        columns = st.columns(len(cb.axis_names))
        for column, axis in zip(columns, cb.axis_names):
            with column:
                choices[axis] = st.multiselect(
                    axis, cb.labels(axis), default=[lab for lab in item.suggested.get(axis, []) if lab in
                                                    cb.labels(axis)],
                    key=f"annotate_{axis}_{pos}_{item.passage_id}",
                    help="; ".join(f"{lab.id}: {lab.definition}" for lab in cb.axes[axis])[:2000])
        b_save, b_skip, b_undo, _ = st.columns([1, 1, 1, 4])
        if b_save.button("Save", type="primary", key="annotate_save", disabled=not annotator,
                         help=None if annotator else "Enter your name in the sidebar first"):
            save(item, choices)
            st.rerun()
        if b_skip.button("Skip", key="annotate_skip"):
            state["queue_pos"] = pos + 1
            st.rerun()
        if b_undo.button("Undo", key="annotate_undo", disabled=not saved):
            undo()
            st.rerun()
    if not annotator:
        st.warning("Enter your name in the sidebar to save annotations.")
elif queue:
    st.success("Queue done. Change the queue size or strategy for more, or retrain on the Models page.")
    if st.button("Undo last save", key="annotate_undo_end", disabled=not saved):
        undo()
        st.rerun()

with c.workspace() as ws:
    rows = ws.annotations()
    units = ws.annotation_units(cb)
st.subheader("Workspace annotations")
st.caption(f"{len(rows)} annotation(s) by {len({r['annotator'] for r in rows})} annotator(s).")
if units:
    with tempfile.TemporaryDirectory() as tmp:
        path = export_annotations(units, Path(tmp) / "annotations.jsonl", cb, "jsonl")
        payload = path.read_bytes()
    st.download_button("Export annotations (JSONL)", payload, file_name="cdpd_annotations.jsonl",
                       mime="application/jsonl", key="annotate_export")
agreement = agreement_table(rows, cb)
st.subheader("Agreement between annotators")
if agreement.empty:
    st.caption("Shown once a passage has been annotated by two or more people.")
else:
    st.dataframe(agreement.round(3), width="stretch")
    st.caption("Per label: Cohen's kappa averaged over pairs of annotators (weighted by shared units) and "
               "Krippendorff's alpha (nominal); NaN where a label was never (or always) used.")
