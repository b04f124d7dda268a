"""cdpd's Streamlit front end: classify documents, browse corpus-wide trends, read the CD-PD diagram, annotate,
and retrain.

    make app        # or: streamlit run app.py

The workspace is ``$CDPD_HOME`` (default ``./workspace``) and models come from ``$CDPD_MODELS`` (default
``./models``), as for the command line.
"""

from pathlib import Path

import streamlit as st

PAGES = Path(__file__).resolve().parent / "nlp" / "app" / "pages"

st.set_page_config(page_title="cdpd: City Diplomacy - Public Diplomacy", page_icon=":material/public:",
                   layout="wide")
navigation = st.navigation([
    st.Page(PAGES / "classify.py", title="Classify", icon=":material/label:", default=True),
    st.Page(PAGES / "corpus.py", title="Corpus & trends", icon=":material/trending_up:"),
    st.Page(PAGES / "diagram.py", title="CD-PD diagram", icon=":material/scatter_plot:"),
    st.Page(PAGES / "annotate.py", title="Annotate", icon=":material/edit_note:"),
    st.Page(PAGES / "models.py", title="Models", icon=":material/model_training:"),
])
st.sidebar.caption("cdpd: where cities and the national government converge and diverge in diplomacy.")
navigation.run()
