"""Classify: paste text or upload files, see the labels per axis with their scores and evidence, and keep the
documents in the workspace."""

import streamlit as st

from nlp.app import common as c
from nlp.jobs import add_tagged_documents
from nlp.pipeline import MAX_EVIDENCE, DocumentTagger, text_for_tagging
from nlp.schema import ISSUER_TYPES
from nlp.text import TextProcessor

st.title("Classify documents")
st.caption(f"Paste a document or upload files (the formats `cdpd ingest` reads, up to "
           f"{c.MAX_UPLOAD_BYTES // 2**20} MB and {c.MAX_UPLOAD_DOCUMENTS} documents per file; bigger corpora go "
           "through `cdpd ingest`). Labels come from the codebook; highlighted sentences are the evidence for each "
           "label, one colour per label.")

cb = c.codebook()
refs = c.model_refs()
ref = st.selectbox("Model", refs, key="classify_model",
                   help="The active model is first; `lexicon` uses the codebook's seed phrases only.")
with st.form("classify_form"):
    title = st.text_input("Title (optional)", key="classify_title")
    text = st.text_area("Document text", height=220, key="classify_text",
                        placeholder="Paste a press release, resolution or speech ...")
    uploads = st.file_uploader(f"... or upload files (up to {c.MAX_UPLOAD_BYTES // 2**20} MB each)",
                               type=c.UPLOAD_TYPES, accept_multiple_files=True, key="classify_upload")
    any_language = st.checkbox("Tag non-English documents too", key="classify_any_language")
    submitted = st.form_submit_button("Classify", type="primary")

if submitted:
    docs, problems = c.documents_from_input(text, title, uploads)
    if not any_language:
        docs, more = c.language_problems(docs)
        problems += more
    for problem in problems:
        st.warning(c.md_text(problem))
    if not docs and not problems:
        st.warning("Nothing to classify: paste some text or upload a file.")
    st.session_state.pop("classified", None)
    if docs:
        try:
            tagger, info = c.model(ref)
            runner = DocumentTagger(tagger, TextProcessor(cb))
            with st.spinner(f"Tagging {len(docs)} document(s) with {info.ref} ..."):
                tagged = list(runner.tag(docs))
            # the picker's value, not info.ref: `lexicon` loads by name (it has no version folder)
            st.session_state["classified"] = {"ref": ref if ref == "lexicon" else info.ref, "items": tagged}
        except Exception as exc:  # a model that cannot load, a codebook mismatch: say it, keep the page
            st.error(f"Cannot classify: {c.md_text(c.friendly(exc))}")

result = st.session_state.get("classified")
if result:
    try:
        tagger, info = c.model(result["ref"])
    except Exception as exc:  # the model was removed or changed since: say so, keep the page
        st.error(f"Cannot show the results: {c.friendly(exc)}")
        st.stop()
    zero_shot = getattr(tagger, "zero_shot", None) or {}
    st.success(f"{len(result['items'])} document(s) tagged with {c.md_text(info.ref)}")
    st.caption("A score is the model's estimate (0 to 1) that the document carries the label; a label is tagged when "
               "its score reaches the label's threshold, tuned on annotated units to balance precision and recall. "
               f"The text shows at most {MAX_EVIDENCE} evidence sentences per tagged label (the highest-scoring).")
    axes = list(tagger.labels)
    colors = c.label_colors([label for axis in axes for label in tagger.labels[axis]])
    for i, item in enumerate(result["items"]):
        doc = item.doc
        with st.container(border=True):
            st.subheader(c.md_text(doc.title or doc.id))
            meta = " · ".join(x for x in (doc.id if doc.title else "", doc.date, doc.source, doc.issuer) if x)
            if meta:
                st.caption(c.md_text(meta))
            columns = st.columns(len(axes))
            for column, axis in zip(columns, axes):
                with column:
                    chosen = item.selected[axis]
                    st.markdown(f"**{c.md_text(axis)}**: " + (", ".join(map(c.md_text, chosen)) if chosen
                                                              else "_none_"))
                    c.score_table(tagger.labels[axis], item.scores[axis], chosen, tagger.thresholds_[axis],
                                  zero_shot.get(axis, ()))
            if zero_shot and any(zero_shot.values()):
                st.caption("zero-shot: labels without annotations, scored by similarity to their codebook "
                           "definition; treat them as suggestions.")
            evidence = {label: sentences[:MAX_EVIDENCE] for label, sentences in item.evidence.items()}
            if evidence:
                st.markdown(c.legend([lab for lab in colors if lab in evidence], colors), unsafe_allow_html=True)
            c.show_text(text_for_tagging(doc), evidence, colors=colors)
            with st.expander("Add to the workspace"):
                st.caption("Issuer, issuer type and date put the document in the trends and on a side of the "
                           "diagram; without a date it is left out of trends.")
                with st.form(f"add_form_{i}"):
                    left, right = st.columns(2)
                    values = {
                        "title": left.text_input("Title", value=doc.title, key=f"add_title_{i}"),
                        "issuer": right.text_input("Issuer", value=doc.issuer, key=f"add_issuer_{i}",
                                                   placeholder="e.g. City of Seoul"),
                        "issuer_type": left.selectbox(
                            "Issuer type", ["", *ISSUER_TYPES], key=f"add_issuer_type_{i}",
                            index=([""] + list(ISSUER_TYPES)).index(doc.issuer_type)
                            if doc.issuer_type in ISSUER_TYPES else 0,
                            help="city: a city government or council; national: a national government"),
                        "date": right.text_input("Date", value=doc.date, key=f"add_date_{i}",
                                                 placeholder="YYYY, YYYY-MM or YYYY-MM-DD"),
                        "source": left.text_input("Source", value=doc.source or "added in the app",
                                                  key=f"add_source_{i}"),
                        "country": right.text_input("Country", value=doc.country, key=f"add_country_{i}",
                                                    placeholder="ISO3, e.g. KOR"),
                        "city": left.text_input("City", value=doc.city, key=f"add_city_{i}"),
                    }
                    add = st.form_submit_button("Add to workspace", key=f"add_{i}")
                if add:
                    try:
                        with c.workspace(create=True) as ws:
                            report = add_tagged_documents(
                                ws, [item], model_ref=info.ref, model_name=info.name, model_version=info.version,
                                tagger_name=info.tagger, labels=tagger.labels, thresholds=tagger.thresholds_,
                                metadata={doc.id: values})
                        for doc_id, why in report.skipped:
                            st.info(f"{c.md_text(doc_id)}: {c.md_text(why)}; not added again")
                        for doc_id in report.added:
                            st.success(f"{c.md_text(doc_id)} added to the workspace with its tags "
                                       f"({c.md_text(info.ref)})")
                    except Exception as exc:
                        st.error(f"Cannot add {c.md_text(doc.id)}: {c.md_text(c.friendly(exc))}")
