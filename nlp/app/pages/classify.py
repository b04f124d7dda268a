"""Classify: paste text or upload files, see the labels per axis with their scores and evidence, and keep the
documents in the workspace."""

import streamlit as st

from nlp.app import common as c
from nlp.pipeline import DocumentTagger, text_for_tagging
from nlp.text import TextProcessor

st.title("Classify documents")
st.caption("Paste a document or upload files (the formats `cdpd ingest` reads). Labels come from the codebook; "
           "highlighted sentences are the evidence for each label.")

cb = c.codebook()
refs = c.model_refs()
ref = st.selectbox("Model", refs, key="classify_model",
                   help="The active model is first; `lexicon` uses the codebook's seed phrases only.")
with st.form("classify_form"):
    title = st.text_input("Title (optional)", key="classify_title")
    text = st.text_area("Document text", height=220, key="classify_text",
                        placeholder="Paste a press release, resolution or speech ...")
    uploads = st.file_uploader("... or upload files", type=c.UPLOAD_TYPES, accept_multiple_files=True,
                               key="classify_upload")
    any_language = st.checkbox("Tag non-English documents too", key="classify_any_language")
    submitted = st.form_submit_button("Classify", type="primary")

if submitted:
    docs, problems = c.documents_from_input(text, title, uploads)
    if not any_language:
        docs, more = c.language_problems(docs)
        problems += more
    for problem in problems:
        st.warning(problem)
    if not docs and not problems:
        st.warning("Nothing to classify: paste some text or upload a file.")
    st.session_state.pop("classified", None)
    if docs:
        try:
            tagger, info = c.model(ref)
            runner = DocumentTagger(tagger, TextProcessor(cb))
            with st.spinner(f"Tagging {len(docs)} document(s) with {info.ref} ..."):
                tagged = list(runner.tag(docs))
            st.session_state["classified"] = {"ref": info.ref, "items": tagged}
        except Exception as exc:  # a model that cannot load, a codebook mismatch: say it, keep the page
            st.error(f"Cannot classify: {c.friendly(exc)}")

result = st.session_state.get("classified")
if result:
    tagger, info = c.model(result["ref"])
    zero_shot = getattr(tagger, "zero_shot", None) or {}
    st.success(f"{len(result['items'])} document(s) tagged with {info.ref}")
    for i, item in enumerate(result["items"]):
        doc = item.doc
        heading = doc.title or doc.id
        with st.container(border=True):
            st.subheader(heading)
            axes = list(tagger.labels)
            columns = st.columns(len(axes))
            for column, axis in zip(columns, axes):
                with column:
                    chosen = item.selected[axis]
                    st.markdown(f"**{axis}**: "
                                + (", ".join(chosen) if chosen else "_none_"))
                    c.score_table(tagger.labels[axis], item.scores[axis], chosen, tagger.thresholds_[axis],
                                  zero_shot.get(axis, ()))
            if zero_shot and any(zero_shot.values()):
                st.caption("zero-shot: labels without annotations, scored by similarity to their codebook "
                           "definition; treat them as suggestions.")
            c.show_text(text_for_tagging(doc), item.evidence)
            if st.button("Add to workspace", key=f"add_{i}"):
                try:
                    with c.workspace(create=True) as ws:
                        report = ws.add_documents([doc])
                        if report.duplicates:
                            st.info(f"{doc.id}: {report.duplicates[0][1]}; not added again")
                        else:
                            row = ws.conn.execute("SELECT doc_id FROM documents WHERE id = ?", (doc.id,)).fetchone()
                            ws.register_model(info.ref, info.name, info.version, info.tagger, tagger.labels)
                            ws.save_predictions(info.ref, [(row[0], item)], tagger.thresholds_)
                            st.success(f"{doc.id} added to the workspace with its tags ({info.ref})")
                except Exception as exc:
                    st.error(f"Cannot add {doc.id}: {c.friendly(exc)}")
