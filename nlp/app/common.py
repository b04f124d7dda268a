"""What the app's pages share: cached codebook and models, the workspace, sidebar filters, upload handling and
HTML rendering of document text with evidence highlighted.

Rendering rule: document text is always passed through :func:`html.escape` before any markup is added, so a
document containing ``<script>`` or ``<img onerror=...>`` shows as inert text.
"""

from __future__ import annotations

import html
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import streamlit as st

from ..analysis.tables import Filters
from ..codebook import Codebook, load_codebook
from ..embeddings import CACHE_FILE
from ..errors import CdpdError
from ..ingest import (MAX_FILE_BYTES, SUPPORTED_SUFFIXES, IngestError, Rejected, detect_language, iter_documents,
                      text_key)
from ..models import ModelInfo, active_ref, list_models, load_model, models_dir
from ..schema import Document
from ..workspace import DB_FILE, Workspace, default_home

#: Uploads over this size are refused with a message: classifying in the browser is for a few documents at a
#: time; corpora go through `cdpd ingest`.
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
#: Documents taken from one uploaded table.
MAX_UPLOAD_DOCUMENTS = 200
#: Characters of a document shown in full on a page (the rest is summarised).
MAX_SHOWN_CHARS = 30_000
#: File types the uploader accepts (without the dot, as Streamlit wants them).
UPLOAD_TYPES = sorted({s.rsplit(".", 1)[-1] for s in SUPPORTED_SUFFIXES} | {"gz"})


# -- resources ----------------------------------------------------------------------------------------------
@st.cache_resource(show_spinner=False)
def _codebook(path: str | None) -> Codebook:
    return load_codebook(path)


def codebook() -> Codebook:
    return _codebook(os.environ.get("CDPD_CODEBOOK"))


@st.cache_resource(show_spinner="Loading the model ...", max_entries=4)
def _model(ref: str, folder: str, fingerprint: str, cache: str | None):
    return load_model(ref, codebook(), Path(folder), cache=cache)


def embedding_cache() -> str | None:
    """The workspace's embedding cache file, as `cdpd classify` uses it, or None without a workspace (taggers that
    embed then embed in memory: the app creates no workspace folder just to load a model)."""
    return str(default_home() / CACHE_FILE) if workspace_exists() else None


def model(ref: str | None) -> tuple[Any, ModelInfo]:
    """The tagger and its registry entry (cached per model version, models folder and embedding cache path)."""
    return _model(ref or active_ref() or "linear", str(models_dir()), codebook().fingerprint(), embedding_cache())


def model_refs() -> list[str]:
    """Registered models, the active one first; `lexicon` (no training needed) always last."""
    refs = [f"{m['name']}@{m['version']}" for m in reversed(list_models())]
    active = active_ref()
    if active in refs:
        refs.remove(active)
        refs.insert(0, active)
    return refs + ["lexicon"]


def workspace_exists() -> bool:
    return (default_home() / DB_FILE).exists()


@contextmanager
def workspace(create: bool = False) -> Iterator[Workspace]:
    """The workspace, opened for one script run (SQLite connections stay on their thread)."""
    with Workspace(create=create) as ws:
        yield ws


def no_workspace_message() -> None:
    st.info(f"No workspace at `{default_home()}` yet. Build the default one with `make run` (or `cdpd run`), "
            "or add documents on the Classify page.")


def workspace_models(ws: Workspace) -> list[str]:
    """Models that classified documents in this workspace, the active one first if among them."""
    refs = ws.classifying_models()
    active = active_ref()
    if active in refs:
        refs.remove(active)
        refs.insert(0, active)
    return refs


# -- rendering ---------------------------------------------------------------------------------------------
def _needle(sentence: str) -> str:
    return sentence.strip().rstrip("…").strip()


#: Light, distinct backgrounds for evidence marks, one per label (cycled past 20 labels; the legend names each).
EVIDENCE_COLORS = ("#ffe082", "#a5d6a7", "#90caf9", "#f48fb1", "#ce93d8", "#ffab91", "#80deea", "#c5e1a5",
                   "#b39ddb", "#ffcc80", "#9fa8da", "#e6ee9c", "#80cbc4", "#ef9a9a", "#bcaaa4", "#f8bbd0",
                   "#b0bec5", "#fff59d", "#81d4fa", "#dce775")


def label_colors(labels: Sequence[str]) -> dict[str, str]:
    """One background colour per label, in the given (codebook) order, so a label keeps its colour across
    documents on a page."""
    return {label: EVIDENCE_COLORS[i % len(EVIDENCE_COLORS)] for i, label in enumerate(labels)}


def legend(labels: Sequence[str], colors: dict[str, str]) -> str:
    """Safe HTML: a swatch per label in its evidence colour, with the label's name as text (escaped: label names
    are codebook data); as in :func:`highlight`, a colour that is not one of :data:`EVIDENCE_COLORS` is not used."""
    items = [f'<span style="background:{colors[label]};padding:0.1em 0.45em;border-radius:3px;margin-right:0.4em;'
             f'white-space:nowrap">{html.escape(str(label))}</span>' for label in labels
             if colors.get(label) in EVIDENCE_COLORS]
    return '<div class="cdpd-legend" style="line-height:2">' + "".join(items) + "</div>"


def highlight(text: str, sentences: dict[str, Sequence[str]] | Sequence[str], limit: int = MAX_SHOWN_CHARS,
              colors: dict[str, str] | None = None) -> str:
    """The text as safe HTML, each evidence sentence wrapped in ``<mark>`` (titled with its labels).

    ``sentences`` is ``{label: [sentence, ...]}`` (as in classify output) or a plain list. With ``colors`` a mark
    takes the colour of its first label (a sentence that is evidence for several labels names them all in its
    tooltip). Escaping happens on the pieces between marks, never on markup we add, so nothing in the text can
    become HTML; colours come from :data:`EVIDENCE_COLORS`, never from data.
    """
    by_sentence: dict[str, list[str]] = {}
    items = sentences.items() if isinstance(sentences, dict) else [("", sentences)]
    for label, group in items:
        for s in group:
            needle = _needle(s)
            if needle:
                by_sentence.setdefault(needle, [])
                if label:
                    by_sentence[needle].append(label)
    shown = text[:limit]
    spans: list[tuple[int, int, list[str]]] = []
    for needle, labels in by_sentence.items():
        start = shown.find(needle)
        if start >= 0 and not any(a < start + len(needle) and start < b for a, b, _ in spans):
            spans.append((start, start + len(needle), labels))
    out, pos = [], 0
    for start, end, labels in sorted(spans):
        out.append(html.escape(shown[pos:start]))
        title = html.escape(", ".join(labels), quote=True)
        color = (colors or {}).get(labels[0]) if labels else None
        style = f' style="background:{color}"' if color in EVIDENCE_COLORS else ""
        out.append(f'<mark title="{title}"{style}>{html.escape(shown[start:end])}</mark>')
        pos = end
    out.append(html.escape(shown[pos:]))
    # No line break may reach Markdown: st.markdown ends an HTML block at a blank line and would parse the rest of
    # the document as Markdown (links, emphasis, headings). As character references the breaks stay inside the
    # block and still show, the div keeping white space.
    body = re.sub(r"\r\n?|\n", "&#10;", "".join(out))
    if len(text) > limit:
        body += f"<p><em>... {len(text) - limit:,} more characters not shown.</em></p>"
    return ('<div class="cdpd-doc" style="white-space:pre-wrap;line-height:1.5;max-height:32em;overflow-y:auto;'
            'border:1px solid #ddd;padding:0.8em;border-radius:4px">' + body + "</div>")


def show_text(text: str, evidence: dict[str, Sequence[str]] | Sequence[str] = (),
              colors: dict[str, str] | None = None) -> None:
    st.markdown(highlight(text, evidence, colors=colors), unsafe_allow_html=True)


def plot_text(value: Any) -> str:
    """A name from the data (a source, an issuer, a country) for a plotly legend, axis or hover: plotly renders a
    subset of HTML there (``<b>``, ``<i>``, ``<a href>``, ``<br>``), so the name is HTML-escaped and shows as written."""
    return html.escape(str(value), quote=False)


def show_reading_text(text: str, title: str = "") -> None:
    """A passage for reading (Annotate): hard-wrapped lines joined into paragraphs and page furniture dropped
    (:func:`nlp.display.display_text`), then escaped and shown as :func:`show_text` does. Display only: what is
    saved and scored stays the passage text as stored."""
    from ..display import display_text

    show_text(display_text(text, title))


def md_text(value: Any) -> str:
    """Text that came from data (a title, an id, an issuer, a url) for a Markdown element (``st.subheader``,
    ``st.caption``, ``st.info``): Markdown and HTML characters backslash-escaped, so it shows as written and
    never becomes a link, an image, emphasis or markup. Line breaks become spaces (a heading is one line)."""
    flat = re.sub(r"[\x00-\x1f\x7f]+", " ", str(value))
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~&$:=])", r"\\\1", flat)


def score_table(labels: Sequence[str], scores: Sequence[float], selected: Sequence[str],
                thresholds: Sequence[float] | None = None, zero_shot: Sequence[str] = ()):
    """Labels with score bars, selected ones first."""
    import pandas as pd

    frame = pd.DataFrame({"label": list(labels), "score": [float(s) for s in scores]})
    frame["tagged"] = frame["label"].isin(set(selected))
    if thresholds is not None:
        frame["threshold"] = [float(t) for t in thresholds]
    if zero_shot:
        frame["zero-shot"] = frame["label"].isin(set(zero_shot))
    frame = frame.sort_values(["tagged", "score"], ascending=[False, False])
    # every row visible: Streamlit's rows are 35 px, plus the header and a border
    st.dataframe(frame, hide_index=True, width="stretch", height=35 * (len(frame) + 1) + 3, column_config={
        "score": st.column_config.ProgressColumn("score", min_value=0.0, max_value=1.0, format="%.2f"),
        "threshold": st.column_config.NumberColumn("threshold", format="%.2f"),
    })


# -- input -----------------------------------------------------------------------------------------------------
def _safe_name(name: str) -> str:
    base = Path(name).name or "upload"
    return re.sub(r"[^\w.\-]+", "_", base)[:120]


def documents_from_input(text: str, title: str, uploads: Sequence[Any], *,
                         max_bytes: int = MAX_UPLOAD_BYTES) -> tuple[list[Document], list[str]]:
    """Documents from pasted text and uploaded files, and one message per thing that could not be used.

    Uploads go through the same readers as `cdpd ingest` (a temporary copy keeps the file's suffix)."""
    docs: list[Document] = []
    problems: list[str] = []
    if text and text.strip():
        docs.append(Document(id=f"pasted-{text_key(text)[:12]}", text=text.strip(), title=(title or "").strip()))
    for upload in uploads or []:
        name = _safe_name(upload.name)
        size = int(getattr(upload, "size", 0) or len(upload.getvalue()))
        if size == 0:
            problems.append(f"{name}: the file is empty")
            continue
        if size > max_bytes:
            problems.append(f"{name}: {size / 2**20:.1f} MB is over the {max_bytes / 2**20:.0f} MB limit for the "
                            "app; add large files with `cdpd ingest` instead")
            continue
        with tempfile.TemporaryDirectory(prefix="cdpd-upload-") as tmp:
            path = Path(tmp) / name
            path.write_bytes(upload.getvalue())
            try:
                n = 0
                for item in iter_documents([path], max_bytes=min(max_bytes, MAX_FILE_BYTES)):
                    if isinstance(item, Rejected):
                        problems.append(f"{name}: {item.reason}")
                        continue
                    if n >= MAX_UPLOAD_DOCUMENTS:
                        problems.append(f"{name}: only the first {MAX_UPLOAD_DOCUMENTS} documents were taken; "
                                        "classify whole tables with `cdpd classify` or `cdpd ingest --classify`")
                        break
                    item.id = name if item.id == str(path) else f"{name}:{item.id}"
                    if not item.title and not Path(name).suffix.lower() in (".csv", ".jsonl", ".json", ".parquet"):
                        item.title = Path(name).stem
                    docs.append(item)
                    n += 1
            except IngestError as exc:
                problems.append(f"{name}: {exc.reason}")
            except Exception as exc:  # a parser failing on a malformed file: say so, keep the page alive
                problems.append(f"{name}: cannot be read ({type(exc).__name__}: {exc})")
    return docs, problems


def language_problems(docs: list[Document]) -> tuple[list[Document], list[str]]:
    """English (or undetermined) documents, and a message for each other one."""
    keep, problems = [], []
    for doc in docs:
        lang = detect_language(doc.text)
        if lang in ("en", "und"):
            keep.append(doc)
        else:
            problems.append(f"{doc.id}: not English (detected {lang!r}); the models are trained on English text. "
                            "Tick 'Tag non-English documents too' to tag it anyway")
    return keep, problems


# -- filters -------------------------------------------------------------------------------------------------
FILTER_LABELS = {"source": "Source", "issuer_type": "Issuer type", "issuer": "Issuer", "country": "Country",
                 "city": "City"}


def sidebar_filters(ws: Workspace, key: str) -> Filters:
    """Metadata and date filters in the sidebar; each page keeps its own choices (``key``)."""
    from ..browse import date_range, filter_values

    where: dict[str, list[str]] = {}
    with st.sidebar:
        st.subheader("Filters")
        for name, label in FILTER_LABELS.items():
            values = filter_values(ws, name)
            if not values:
                continue
            chosen = st.multiselect(label, values, key=f"{key}_{name}")
            if chosen:
                where[name] = chosen
        span = date_range(ws)
        date_from = date_to = None
        if span:
            years = sorted({span[0][:4], span[1][:4]})
            first, last = int(years[0]), int(years[-1])
            if first < last:
                lo, hi = st.slider("Years", first, last, (first, last), key=f"{key}_years")
                date_from = None if lo == first else str(lo)
                date_to = None if hi == last else str(hi)
    return Filters(where, date_from, date_to)


def model_picker(refs: Sequence[str], key: str, where=None, help: str | None = None) -> str | None:
    if not refs:
        return None
    target = where or st
    return target.selectbox("Model", list(refs), key=key, help=help)


def friendly(exc: Exception) -> str:
    """One line for a user, whatever failed underneath."""
    if isinstance(exc, CdpdError):  # a problem the user can fix: its message says what and how
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
