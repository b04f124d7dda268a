"""cdpd's Streamlit front end (placeholder until the app issue): shows the workspace summary.

    streamlit run app.py
"""

import html

import streamlit as st

from nlp.workspace import Workspace, WorkspaceError

st.set_page_config(page_title="cdpd", layout="wide")
st.title("cdpd: City Diplomacy - Public Diplomacy")
st.write("Tag documents with diplomacy functions and security domains, and map where cities and states converge.")
try:
    with Workspace(create=False) as ws:
        st.subheader("Documents per source")
        st.dataframe(ws.documents_per_source())
        model = ws.latest_model()
        if model:
            st.subheader(f"Share of documents per label by issuer type ({html.escape(model)})")
            st.dataframe((ws.label_shares(model) * 100).round(1))
except WorkspaceError as exc:
    st.info(f"{exc}. Build the default workspace with `make run`.")
