"""The Streamlit front end: ``app.py`` (at the repository root) navigates between the scripts in ``pages/``;
``common`` holds what they share. Run it with ``make app`` or ``cdpd app``."""
