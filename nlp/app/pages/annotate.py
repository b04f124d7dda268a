"""Annotate, as Prodigy and Argilla do it: one key per decision, every label visible as a toggle with its key and
its definition, the guidelines beside the text, the document's title, source, issuer and date above it, the
model's suggestions pre-selected and marked, and every past save reviewable and editable.

Every save is committed to the workspace at once (a killed server loses nothing). An edit is a new row, never an
update in place; exports and training take the latest row per annotator and unit. Undo deletes what the last
action wrote and shows the passage as it was saved, not as the model suggested it.

Actions run in button callbacks, before the script: a save and the next passage take one script run, not two.
Keys are Streamlit's own button shortcuts (``st.button(shortcut=...)``), ignored while typing in a text box.
"""

import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from nlp.agreement import agreement_table
from nlp.browse import filter_values
from nlp.annotations import export_annotations
from nlp.app import common as c
from nlp.app.annotating import (ACTION_KEYS, Action, closest_call, key_name, label_hotkeys, labels_summary,
                                normalized, snippet, undo_plan, why_chosen)
from nlp.queue import STRATEGIES, workspace_queue
from nlp.workspace import latest_per_annotator_and_unit, unit_key

#: The queue's choice of "draw from every source".
EVERY_SOURCE = "every source"

st.title("Annotate")
st.caption("Label workspace passages by the codebook. The queue puts first the passages the model is least sure "
           "about; its suggestions are pre-selected and marked. Saves go straight to the workspace.")
if not c.workspace_exists():
    c.no_workspace_message()
    st.stop()

cb = c.codebook()
axes = cb.axis_names
order = cb.label_sets()
hotkeys = label_hotkeys(cb)
state = st.session_state
with st.sidebar:
    annotator = st.text_input("Your name (annotator)", key="annotator").strip()
    strategy = st.radio("Queue", [s for s in ("uncertainty", "random", "diversity") if s in STRATEGIES],
                        key="annotate_strategy", help="uncertainty: closest to a label's threshold first; random: a "
                                                      "random sample (for unbiased evaluation); diversity: one per "
                                                      "cluster of uncertain passages")
    size = st.number_input("Queue size", 5, 200, 20, step=5, key="annotate_size")
    with c.workspace() as ws:
        sources = filter_values(ws, "source")
    source = st.selectbox(
        "Passages from", [EVERY_SOURCE, *sources], key="annotate_source",
        help="One source's documents only: the way to teach the model a source it never saw (your own releases). "
             "A model gains most on a new source from a hundred or two of its own annotated passages; chosen by "
             "uncertainty they did no better than at random (benchmarks/RESULTS.md, 'A new source').")
    source = None if source == EVERY_SOURCE else source
    ref = st.selectbox("Suggestions from", c.model_refs(), key="annotate_model")


@st.cache_data(show_spinner="Choosing passages ...", max_entries=8)
def build_queue(home: str, ref: str, strategy: str, size: int, stamp: str, source: str | None = None):
    """Scored once per model, strategy, size and workspace state, then shared by every session; also the model's
    thresholds per label (to say in words why a passage was chosen). The pool is sampled at random (seeded) and
    scaled to the queue size: scoring 2,000 passages took 4 s a view."""
    tagger, _info = c.model(ref)
    with c.workspace() as ws:
        queue = workspace_queue(ws, tagger, cb, size, strategy=strategy, pool=max(400, 20 * size), source=source)
    thresholds = {axis: {lab: float(t) for lab, t in zip(labs, tagger.thresholds_[axis])}
                  for axis, labs in tagger.labels.items()}
    return queue, thresholds


wanted = (ref, strategy, int(size), source)
if state.get("queue_key") != wanted:
    try:
        with c.workspace() as ws:
            stamp = ws.state_stamp()
        state["queue"], state["queue_thresholds"] = build_queue(str(c.default_home()), ref, strategy, int(size),
                                                                stamp, source)
        state["queue_key"], state["queue_pos"], state["queue_saved"] = wanted, 0, []
        state["annotate_sel"], state["annotate_done"], state["annotate_actions"] = {}, {}, []
        state["annotate_editing"] = None
    except Exception as exc:
        st.error(f"Cannot build the queue: {c.friendly(exc)}")
        st.stop()
for name, empty in (("annotate_sel", {}), ("annotate_done", {}), ("annotate_actions", []), ("annotate_editing", None)):
    state.setdefault(name, empty)

queue = state["queue"]


# -- actions (button callbacks: they run before the script, so the page drawn next shows their result) ----------
def _flash(message: str) -> None:
    state["flash"] = message


def _toggle(sel_key: str, axis: str, label: str) -> None:
    chosen = state["annotate_sel"].get(sel_key, {}).get(axis)
    if chosen is None:  # the queue was rebuilt since the page was drawn: nothing to toggle
        return
    if label in chosen:
        chosen.remove(label)
    else:
        chosen.append(label)


def _save() -> None:
    current = state.get("annotate_current")
    if not current or not annotator:
        return
    labels = normalized(state["annotate_sel"][current["sel_key"]], axes, order)
    done = state["annotate_done"]
    try:
        with c.workspace() as ws:
            if current["mode"] == "edit":
                previous = current["annotation_id"]
                row = ws.annotation(previous)
                if row is None:
                    _flash(f"Annotation {previous} is gone (undone elsewhere?); nothing saved.")
                elif normalized(row["labels"], axes, order) == labels:
                    _flash(f"Annotation {previous} unchanged; nothing saved.")
                else:
                    new = ws.edit_annotation(previous, labels)
                    state["annotate_actions"].append(Action("edit", None, new, previous, row["passage_id"], labels))
                    for pid, aid in list(done.items()):
                        if aid == previous:
                            done[pid] = new
                            state["annotate_sel"][f"q{pid}"] = {a: list(v) for a, v in labels.items()}
                    _flash(f"Saved annotation {new}, a new version of {previous}.")
                state["annotate_editing"] = None
                return
            pos = current["pos"]
            item = queue[pos]
            previous = done.get(item.passage_id)
            if previous is None:  # annotated meanwhile in another tab: that decision gets a new version
                previous = ws.latest_annotation_id(annotator, item.text)
            row = ws.annotation(previous) if previous is not None else None
            if row is not None and row["annotator"] == annotator:  # saved earlier, come back to: an edit
                if normalized(row["labels"], axes, order) == labels:
                    _flash(f"Annotation {previous} unchanged.")
                else:
                    new = ws.edit_annotation(previous, labels)
                    state["annotate_actions"].append(Action("edit", pos, new, previous, item.passage_id, labels))
                    done[item.passage_id] = new
                    _flash(f"Saved annotation {new}, a new version of {previous}.")
            else:
                info = ws.document_info(item.document)
                doc_id = info["doc_id"] if info else None
                # how the passage was drawn (the queue is rebuilt whenever the strategy changes): a random
                # queue's units may be scored as random ones
                new = ws.add_annotation(item.text, labels, annotator, doc_id=doc_id, passage_id=item.passage_id,
                                        sample=state["queue_key"][1])
                state["annotate_actions"].append(Action("save", pos, new, None, item.passage_id, labels))
                state["queue_saved"].append(new)
                done[item.passage_id] = new
                _flash(f"Saved annotation {new}.")
            state["queue_pos"] = pos + 1
    except Exception as exc:
        state["annotate_error"] = f"Not saved: {c.friendly(exc)}"


def _skip() -> None:
    current = state.get("annotate_current")
    if current and current["mode"] == "queue":
        state["annotate_actions"].append(Action("skip", current["pos"]))
        state["queue_pos"] = current["pos"] + 1


def _undo() -> None:
    stack = state["annotate_actions"]
    if not stack:
        return
    action = stack.pop()
    try:
        with c.workspace() as ws:
            previous = ws.annotation(action.previous_id) if action.previous_id is not None else None
            plan = undo_plan(action, previous["labels"] if previous else None)
            if plan["delete"] is not None:
                ws.delete_annotation(plan["delete"])
    except Exception as exc:
        stack.append(action)
        state["annotate_error"] = f"Cannot undo: {c.friendly(exc)}"
        return
    done, sel = state["annotate_done"], state["annotate_sel"]
    labels = normalized(plan["labels"] or {}, axes, order)  # every axis present, even if a row went missing
    if action.kind == "save":
        done.pop(action.passage_id, None)
        if action.new_id in state["queue_saved"]:
            state["queue_saved"].remove(action.new_id)
        sel[f"q{action.passage_id}"] = labels
        _flash(f"Removed annotation {action.new_id}; its passage is back with the labels you saved.")
    elif action.kind == "edit":
        if done.get(action.passage_id) == action.new_id:
            done[action.passage_id] = action.previous_id
            sel[f"q{action.passage_id}"] = {a: list(v) for a, v in labels.items()}
        if plan["open"] is not None:
            sel[f"a{plan['open']}"] = labels
        _flash(f"Removed annotation {action.new_id}; annotation {action.previous_id} counts again.")
    state["annotate_editing"] = plan["open"]
    if plan["pos"] is not None:
        state["queue_pos"] = plan["pos"]


def _move(step: int) -> None:
    state["annotate_editing"] = None
    state["queue_pos"] = min(max(state["queue_pos"] + step, 0), len(queue))


def _open(annotation_id: int | None) -> None:
    if annotation_id is not None:
        state["annotate_editing"] = int(annotation_id)
        state["annotate_sel"].pop(f"a{int(annotation_id)}", None)  # opened afresh: as saved
        state["annotate_to_top"] = True  # the editor is at the top; the history, where Open was clicked, below


def _close() -> None:
    state["annotate_editing"] = None


# -- what is shown ----------------------------------------------------------------------------------------------
if "flash" in state:
    st.toast(state.pop("flash"))
if state.pop("annotate_to_top", False):
    # a constant script, no data in it: scroll the page back up to the editor just opened
    st.html("<script>document.querySelector('[data-testid=\"stMain\"]')?.scrollTo({top: 0});</script>",
            unsafe_allow_javascript=True)
if "annotate_error" in state:
    st.error(state.pop("annotate_error"))

pos = state["queue_pos"]
saved = state["queue_saved"]
editing = state["annotate_editing"]
if not queue:
    st.info("No passage to annotate: the workspace has no unannotated passages (classify documents first).")
st.progress(min(pos, len(queue)) / max(len(queue), 1),
            text=f"{min(pos, len(queue))} of {len(queue)} passages done ({len(saved)} saved this session)")

with c.workspace() as ws:
    edited = ws.annotation(editing) if editing is not None else None
    if editing is not None and edited is None:
        state["annotate_editing"] = editing = None
    if edited is not None:
        current = {"mode": "edit", "annotation_id": edited["annotation_id"], "sel_key": f"a{editing}"}
        text, document, suggested = edited["text"], edited["document"], {}
        default = edited["labels"]
    elif pos < len(queue):
        item = queue[pos]
        current = {"mode": "queue", "pos": pos, "sel_key": f"q{item.passage_id}"}
        text, document = item.text, item.document
        suggested = {axis: [lab for lab in item.suggested.get(axis, []) if lab in order[axis]] for axis in axes}
        default = suggested
    else:
        current = None
    info = ws.document_info(document) if current and document else None
state["annotate_current"] = current

if current is not None:
    sel_key = current["sel_key"]
    chosen = state["annotate_sel"].setdefault(sel_key, normalized(default, axes, order))
    with st.container(border=True):
        # actions first: the same place on every passage
        b = st.columns([2, 1, 1, 1, 1, 2] if current["mode"] == "queue" else [2, 1, 2, 3])
        b[0].button("Save", type="primary", key="annotate_save", on_click=_save, shortcut=ACTION_KEYS["save"],
                    disabled=not annotator, width="stretch",
                    help="Save the selected labels (Enter)" if annotator else "Enter your name in the sidebar first")
        if current["mode"] == "queue":
            b[1].button("Skip", key="annotate_skip", on_click=_skip, shortcut=ACTION_KEYS["skip"], width="stretch",
                        help="Leave this passage unannotated (S)")
            b[2].button("Undo", key="annotate_undo", on_click=_undo, shortcut=ACTION_KEYS["undo"], width="stretch",
                        disabled=not state["annotate_actions"], help="Undo the last save, edit or skip (U)")
            b[3].button("Back", key="annotate_back", on_click=_move, args=(-1,), shortcut=ACTION_KEYS["back"],
                        width="stretch", disabled=pos == 0, help="Previous passage of the queue (←)")
            b[4].button("Next", key="annotate_forward", on_click=_move, args=(1,), shortcut=ACTION_KEYS["forward"],
                        width="stretch", help="Next passage of the queue, without saving (→)")
        else:
            b[1].button("Undo", key="annotate_undo", on_click=_undo, shortcut=ACTION_KEYS["undo"], width="stretch",
                        disabled=not state["annotate_actions"], help="Undo the last save, edit or skip (U)")
            b[2].button("Back to the queue", key="annotate_close", on_click=_close, shortcut=ACTION_KEYS["close"],
                        width="stretch", help="Close this annotation without saving (Esc)")
        st.caption(f"Keys: the key on a label toggles it; Enter saves; S skips; U undoes; {key_name('Left')} and "
                   f"{key_name('Right')} move back and forward in the queue. Keys are ignored while typing in a box."
                   if current["mode"] == "queue" else "Keys: the key on a label toggles it; Enter saves a new version; "
                   "U undoes; Esc goes back to the queue. Keys are ignored while typing in a box.")

        left, right = st.columns([3, 2], gap="medium")
        with left:
            if current["mode"] == "edit":
                when = edited["created_at"].replace("T", " ")[:19]
                st.info(c.md_text(f"Editing your annotation {edited['annotation_id']} saved {when} UTC (its labels "
                                  "are selected). Saving adds a new version; the old one is kept."))
            title = (info or {}).get("title") or ""
            st.markdown("**" + c.md_text(title or (document or "(no document)")) + "**")
            facts = [("source", (info or {}).get("source")), ("issuer", (info or {}).get("issuer")),
                     ("date", (info or {}).get("date")), ("document", document)]
            st.caption(" · ".join(f"{name}: {c.md_text(value)}" for name, value in facts if value))
            if current["mode"] == "queue":
                call = closest_call(queue[pos].scores, state.get("queue_thresholds") or {})
                st.caption(c.md_text(why_chosen(strategy, call)))
                st.caption(f"Passage {pos + 1} of {len(queue)}")
            c.show_reading_text(text, title)
        with right:
            for axis in axes:
                st.markdown(f"**{c.md_text(axis)}**")
                chips = st.container(horizontal=True, wrap=True, gap="small")  # labels flow, none cut or hidden
                for lab in cb.axes[axis]:
                    on = lab.id in chosen[axis]
                    marked = lab.id in suggested.get(axis, [])
                    tip = lab.definition + (f"\n\nInclude: {'; '.join(lab.include)}" if lab.include else "") + (
                        f"\n\nExclude: {'; '.join(lab.exclude)}" if lab.exclude else "")
                    chips.button(
                        lab.id + (" · suggested" if marked else ""), key=f"annotate_label_{axis}_{lab.id}",
                        on_click=_toggle, args=(sel_key, axis, lab.id), type="primary" if on else "secondary",
                        icon=":material/check_box:" if on else ":material/check_box_outline_blank:",
                        shortcut=hotkeys.get((axis, lab.id)), help=tip, width="content")
            st.caption("Selected labels are filled; \"suggested\" marks the model's suggestions "
                       "(pre-selected). " + c.md_text(labels_summary(chosen, axes)))
            with st.container(height=300, border=False):
                st.markdown("**Guidelines**")
                st.markdown("\n\n".join(
                    f"`{hotkeys.get((axis, lab.id), ' ')}` **{c.md_text(lab.id)}** ({c.md_text(axis)}): "
                    f"{c.md_text(lab.definition)}"
                    + (f"  \n*Include:* {c.md_text('; '.join(lab.include))}" if lab.include else "")
                    + (f"  \n*Exclude:* {c.md_text('; '.join(lab.exclude))}" if lab.exclude else "")
                    for axis in axes for lab in cb.axes[axis]))
    if not annotator:
        st.warning("Enter your name in the sidebar to save annotations.")
elif queue:
    st.success("Queue done. Change the queue size or strategy for more, or retrain on the Models page.")
    u, back, _ = st.columns([1, 1, 4])
    u.button("Undo", key="annotate_undo_end", on_click=_undo, shortcut=ACTION_KEYS["undo"],
             disabled=not state["annotate_actions"])
    back.button("Back", key="annotate_back_end", on_click=_move, args=(-1,), shortcut=ACTION_KEYS["back"])

# -- history: this annotator's saves, to review and edit ----------------------------------------------------------
st.subheader("Your saves")
if not annotator:
    st.caption("Enter your name in the sidebar to see your saves.")
else:
    with c.workspace() as ws:
        history = ws.annotation_history(annotator, limit=500)
    # the table is drawn even when empty: the browser loads the grid's code with the page, not on the first save
    # (that cost ~1.5 s, once, between the first Enter and the next passage)
    table = pd.DataFrame({
        "annotation": [r["annotation_id"] for r in history],
        "saved": [r["created_at"].replace("T", " ")[:19] for r in history],
        "labels": [labels_summary(r["labels"], axes) for r in history],
        "passage": [snippet(r["text"]) for r in history],
        "document": [r["title"] or r["document"] or "" for r in history],
        "versions": [r["versions"] for r in history],
    })
    st.dataframe(table, hide_index=True, width="stretch", height=min(35 * (max(len(table), 1) + 1) + 3, 320))
    if not history:
        st.caption("None yet: each save appears here, latest first, to review and edit.")
    else:
        st.caption("Latest first; an edited save shows its latest version (\"versions\" counts them). Exports "
                   "and training take the latest version.")
        options = {r["annotation_id"]: f"{r['annotation_id']} · {labels_summary(r['labels'], axes)} · "
                                       f"{snippet(r['text'], 60)}" for r in history}
        pick, go = st.columns([4, 1], vertical_alignment="bottom")
        pick.selectbox("Open a save to review or edit", list(options), key="annotate_history_pick",
                       format_func=options.get)
        go.button("Open", key="annotate_open", on_click=lambda: _open(state.get("annotate_history_pick")),
                  width="stretch")



def export_payload() -> bytes:
    """The workspace's annotations as JSONL, made when the button is clicked (on Streamlit's thread for it, with
    its own connection), not on every save: per annotator and unit the latest version."""
    with c.workspace() as ws:
        units = ws.annotation_units(cb)
    with tempfile.TemporaryDirectory() as tmp:
        return export_annotations(units, Path(tmp) / "annotations.jsonl", cb, "jsonl").read_bytes()


with c.workspace() as ws:
    rows = ws.annotations()
counted = latest_per_annotator_and_unit(rows)
st.subheader("Workspace annotations")
st.caption(f"{len(rows)} annotation row(s) by {len({r['annotator'] for r in rows})} annotator(s); "
           f"{len(counted)} count (the latest per annotator and passage).")
if counted:
    st.download_button("Export annotations (JSONL)", export_payload, file_name="cdpd_annotations.jsonl",
                       mime="application/jsonl", key="annotate_export")
# only units with two or more annotators can agree or not: the others are left out before the (slower) table
coders: dict[str, set] = {}
for row in rows:
    coders.setdefault(unit_key(row["text"]), set()).add(row["annotator"])
agreement = agreement_table([r for r in rows if len(coders[unit_key(r["text"])]) >= 2], cb)
st.subheader("Agreement between annotators")
if agreement.empty:
    st.caption("Shown once a passage has been annotated by two or more people.")
else:
    st.dataframe(agreement.round(3), width="stretch")
    st.caption("Per label: Cohen's kappa averaged over pairs of annotators (weighted by shared units) and "
               "Krippendorff's alpha (nominal); NaN where a label was never (or always) used.")
