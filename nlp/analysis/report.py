"""Reports and exports of the analysis: one self-contained HTML page, and files written beside the figure.

:func:`export` writes the diagram as HTML (plotly, self-contained), or as SVG or PDF (vector) or PNG (300 dpi) with
matplotlib, and each table as a CSV beside it. When it is given the convergence (the two sides' profiles), the HTML
page shows the dumbbell chart too, and a static export writes it as a second file ``<stem>_dumbbell.<ext>`` in the
same format (PDF included: one figure per file, so each can go into a paper on its own). Every static figure carries
the caption it is given (model, held-out F1, unit, sides, N: the caller's words), wrapped under it.
:func:`export_figure` writes any matplotlib figure the same way.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import ConfigError
from ..fileio import atomic_path, csv_text
from .figures import add_note, biplot, dumbbell, mds_figure, static_biplot, static_dumbbell

#: Static formats and what they are: vector (SVG, PDF) or raster at :data:`PNG_DPI`.
STATIC_FORMATS = (".svg", ".pdf", ".png")
FORMATS = (".html", *STATIC_FORMATS)
#: PNG resolution: print quality.
PNG_DPI = 300


def _reading_rule(convergence) -> str | None:
    """The rule that reads the convergence table: the object's own ``rule`` when it has one, else the module's."""
    rule = getattr(convergence, "rule", None)
    if isinstance(rule, str) and rule.strip():
        return rule
    from . import convergence as module

    return getattr(module, "READING_RULE", None)


def _conv_table(convergence) -> pd.DataFrame | None:
    if convergence is None:
        return None
    return convergence if isinstance(convergence, pd.DataFrame) else getattr(convergence, "table", None)


def _can_dumbbell(convergence) -> bool:
    """A dumbbell needs two sides' shares: an object with ``sides``, or a table with two ``<side>_share`` columns."""
    table = _conv_table(convergence)
    if table is None:
        return False
    sides = getattr(convergence, "sides", None)
    if sides is not None:
        return all(f"{s}_share" in table.columns for s in sides)
    return sum(str(c).endswith("_share") for c in table.columns) >= 2


def _convergence_html(convergence) -> str:
    """The convergence table (a :class:`~nlp.analysis.convergence.Convergence`, or a bare table) with its unit,
    rule and method: shares, bounds and differences in %, p-values below 0.001 written so."""
    table = _percent_table(_conv_table(convergence))
    head = "<h2>Convergence table</h2>"
    if hasattr(convergence, "unit_label"):
        head += (f"<p>Reading of {html.escape(str(getattr(convergence, 'label', '')))}; unit "
                 f"{html.escape(str(getattr(convergence, 'unit', '')))}: {html.escape(convergence.unit_label)}.</p>")
    out = head + table.to_html(escape=True, border=0)
    rule = _reading_rule(convergence)
    if rule:
        out += f"<p><em>Reading rule.</em> {html.escape(rule)}</p>"
    if hasattr(convergence, "method"):
        out += f"<p><em>Method.</em> {html.escape(convergence.method)}</p>"
    return out


def html_report(result, codebook, *, ellipses: pd.DataFrame | None, title: str, convergence=None,
                mds: tuple[pd.DataFrame, float] | None = None, caption: str | None = "",
                sides: pd.DataFrame | None = None) -> str:
    """One self-contained page: the biplot, the two sides compared, the dumbbell chart of the two sides with the
    convergence table, its rule and method, and the MDS view. ``convergence`` is the convergence table or an object
    with ``table``, ``sides`` and ``unit_label`` (shares are shown in %); ``caption`` (model, F1, unit, N) is
    printed under the title."""
    parts = ["<h1>" + html.escape(title) + "</h1>"]
    if caption:
        parts.append("<p class='caption'>" + html.escape(caption) + "</p>")
    parts.append(biplot(result, codebook, ellipses=ellipses, title=title).to_html(full_html=False,
                                                                                  include_plotlyjs=True))
    if sides is not None:
        parts.append("<h2>Sides compared</h2>" + sides.to_html(escape=True, border=0))
    table = _conv_table(convergence)
    if table is not None:
        if _can_dumbbell(convergence):
            parts.append(dumbbell(convergence).to_html(full_html=False, include_plotlyjs=False))
        parts.append(_convergence_html(convergence))
    if mds is not None:
        parts.append(mds_figure(*mds).to_html(full_html=False, include_plotlyjs=False))
    return ("<!doctype html><html><head><meta charset='utf-8'><title>" + html.escape(title) + "</title>"
            "<style>body{font-family:sans-serif;margin:2em} table{border-collapse:collapse;font-size:13px} "
            "td,th{padding:2px 8px;text-align:right} .caption{color:#444;max-width:60em}</style></head><body>"
            + "".join(parts) + "</body></html>")


@dataclass
class Exported:
    """What :func:`export` wrote: the main figure, the CSV tables, and every figure file (main one first)."""

    figure: Path
    tables: list[Path]
    figures: list[Path] = field(default_factory=list)


def _atomic_write(path: Path, write) -> None:
    with atomic_path(path) as tmp:
        write(str(tmp))


def _static_suffix(out: Path) -> str:
    suffix = out.suffix.lower()
    if suffix not in STATIC_FORMATS:
        raise ConfigError(f"{out}: a figure is written as {', '.join(STATIC_FORMATS)}, not {suffix or 'no suffix'!r}")
    return suffix


def export_figure(fig, out: str | Path, caption: str = "") -> Path:
    """Write the matplotlib figure ``fig`` to ``out`` (.svg, .pdf: vector; .png: 300 dpi) with ``caption`` wrapped
    under it (the figure grows; what is drawn keeps its size), atomically. Text stays text in SVG and PDF (PDF
    embeds the TrueType fonts; SVG names DejaVu Sans with the usual fallbacks, which are no wider), so captions
    and labels can be searched and edited in a paper's figure. Give the caption here or to the figure function
    (``static_biplot(caption=...)``), not both: each call adds one. Closes nothing: the caller owns ``fig``."""
    out = Path(out)
    suffix = _static_suffix(out)
    if caption and caption.strip():
        add_note(fig, caption, gid="caption")
    import matplotlib

    options = {"format": suffix[1:]}
    if suffix == ".png":
        options["dpi"] = PNG_DPI
    if suffix == ".pdf":
        options["metadata"] = {"Creator": "cdpd"}
    with matplotlib.rc_context({"svg.fonttype": "none", "pdf.fonttype": 42}):
        _atomic_write(out, lambda p: fig.savefig(p, **options))
    return out


def export(out: str | Path, result, tables: dict[str, pd.DataFrame], codebook=None,
           ellipses: pd.DataFrame | None = None, title: str = "City Diplomacy - Public Diplomacy diagram",
           mds: tuple[pd.DataFrame, float] | None = None, *, convergence=None, caption: str | None = "",
           sides: pd.DataFrame | None = None, codes: bool = False,
           min_contribution: float | None = None) -> Exported:
    """Write the diagram (.html, .svg, .pdf or .png, by suffix) and each table as ``<stem>_<name>.csv`` beside it.

    ``convergence`` (the convergence table, or an object with ``table``, ``sides``, ``unit_label``): the HTML page
    shows its dumbbell chart and table; a static export writes the dumbbell as ``<stem>_dumbbell.<ext>`` too.
    Without it, the HTML page still shows ``tables["convergence"]`` when there is one; ``sides`` (default
    ``tables["sides"]``) is shown on the HTML page. ``caption`` goes under every figure; ``codes`` and
    ``min_contribution`` are :func:`~nlp.analysis.figures.static_biplot`'s.
    """
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise ConfigError(f"{out}: the diagram is written as {', '.join(FORMATS)}, not {suffix or 'no suffix'!r}")
    figures = [out]
    if suffix == ".html":
        page = html_report(result, codebook, ellipses=ellipses, title=title,
                           convergence=convergence if convergence is not None else tables.get("convergence"),
                           mds=mds, sides=sides if sides is not None else tables.get("sides"), caption=caption)
        _atomic_write(out, lambda p: Path(p).write_text(page, encoding="utf-8"))
    else:
        import matplotlib.pyplot as plt

        fig = static_biplot(result, codebook, ellipses=ellipses, title=title, caption=caption or "", codes=codes,
                            min_contribution=min_contribution)
        try:
            export_figure(fig, out)
        finally:
            plt.close(fig)
        if convergence is not None and _can_dumbbell(convergence):
            second = out.with_name(f"{out.stem}_dumbbell{out.suffix}")
            fig = static_dumbbell(convergence, caption=caption or "")
            try:
                export_figure(fig, second)
            finally:
                plt.close(fig)
            figures.append(second)
    written = []
    for name, table in tables.items():
        path = out.with_name(f"{out.stem}_{name}.csv")
        _atomic_write(path, lambda p, t=table: Path(p).write_text(csv_text(t), encoding="utf-8"))
        written.append(path)
    return Exported(out, written, figures)


# ------------------------------------------------------------------------------------------------------------------
# The research report: one HTML (or PDF) a researcher can cite
# ------------------------------------------------------------------------------------------------------------------
REPORT_FORMATS = (".html", ".pdf")


def _percent_table(table: pd.DataFrame) -> pd.DataFrame:
    """Shares (``*_share``, ``*_low``, ``*_high``, ``difference*``) as percentages with one decimal; p-values with
    three significant digits and never "0" (a p-value below 0.001 reads "< 0.001")."""
    shown = table.copy()
    for column in shown.columns:
        name = str(column)
        if not pd.api.types.is_numeric_dtype(shown[column]):
            continue
        if name.endswith(("_share", "_low", "_high")) or name.startswith("difference"):
            shown[column] = (100 * shown[column]).map(lambda v: "" if pd.isna(v) else f"{v:.1f}%")
        elif name.startswith("p_"):
            shown[column] = shown[column].map(lambda v: "" if pd.isna(v) else ("< 0.001" if v < 0.001 else f"{v:.3g}"))
    return shown


def _svg(fig) -> str:
    """A matplotlib figure as inline SVG (text kept as text), for a report that needs no script and prints as is."""
    import io

    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(buffer, format="svg")
    svg = buffer.getvalue()
    return svg[svg.index("<svg"):]


def _zones(convergence) -> tuple[list[str], list[str]]:
    """(intervention-space lines, expected-overlap lines) from the convergence table's ``zone`` column."""
    table = _conv_table(convergence)
    if table is None or "zone" not in table.columns:
        return [], []
    space = [f"{label}: {zone}" for label, zone in table["zone"].items() if str(zone).startswith("intervention")]
    overlap = [f"{label}: {zone}" for label, zone in table["zone"].items() if str(zone).startswith("expected overlap")]
    return space, overlap


def _method_lines(diagram) -> list[tuple[str, str]]:
    """The method in plain words, as (heading, text) pairs, from what the diagram itself records."""
    conv = getattr(diagram, "convergence", None)
    lines = []
    if conv is not None:
        scope = ("only each side's diplomatic units (those with at least one function)" if conv.diplomatic_only
                 else "all of each side's units, diplomatic or not")
        lines.append(("Unit", f"{conv.unit}: a share is the {conv.unit_label}; counted over {scope}."))
        lines.append(("Uncertainty", conv.method))
        lines.append(("Reading rule", conv.rule))
    notes = list(getattr(diagram, "notes", []) or [])
    if notes:
        lines.append(("Notes", " ".join(notes)))
    return lines


def research_report(diagram, *, quality: pd.DataFrame | None = None, codebook=None, generated: str = "") -> str:
    """One self-contained HTML page for a paper's appendix: what each side contains, the two profiles (dumbbell)
    with the convergence table and its intervals, the policy intervention space and expected overlaps, the CA map,
    the method in plain words (unit, rule, test, bootstrap replicates, seed) and the model's per-source quality.

    Figures are inline SVG (no script, no network: the page opens and prints anywhere, and is the same figure as
    the PDF's). Every piece of data (source, issuer and label names) is escaped. ``diagram`` is
    :class:`~nlp.analysis.diagram.Diagram`; ``quality`` the model's held-out figures per source
    (:func:`nlp.metrics.quality_by_source`), when known.
    """
    import matplotlib.pyplot as plt

    esc = html.escape
    caption = getattr(diagram, "caption", "") or ""
    parts = [f"<h1>{esc(diagram.title)}</h1>"]
    parts.append(f"<p class='caption'>{esc(caption)}</p>")
    if generated:
        parts.append(f"<p class='small'>Generated {esc(generated)} by cdpd.</p>")
    sides = getattr(diagram, "sides", None)
    if sides is not None and not sides.empty:
        parts.append("<h2>The two sides</h2><p>What each side of the comparison contains (classified documents "
                     "under the filters).</p>" + sides.to_html(escape=True, border=0))
    conv = getattr(diagram, "convergence", None)
    if conv is not None and _can_dumbbell(conv):
        fig = static_dumbbell(conv, caption=caption)
        try:
            parts.append("<h2>The two profiles</h2>" + _svg(fig))
        finally:
            plt.close(fig)
        space, overlap = _zones(conv)
        parts.append("<h2>Where the sides meet and where one is weak</h2>")
        parts.append("<p><strong>Policy intervention space</strong> (crossover functions, after Amiri, that one side "
                     "uses significantly less than the other: room for that side to act):</p>"
                     + ("<ul>" + "".join(f"<li>{esc(x)}</li>" for x in space) + "</ul>" if space
                        else "<p><em>none under this comparison</em></p>"))
        parts.append("<p><strong>Expected overlaps</strong> (functions Amiri names as convergence):</p>"
                     + ("<ul>" + "".join(f"<li>{esc(x)}</li>" for x in overlap) + "</ul>" if overlap
                        else "<p><em>none</em></p>"))
        parts.append("<h2>Convergence table</h2>" + _percent_table(conv.table).to_html(escape=True, border=0))
    elif getattr(diagram, "convergence", None) is None:
        parts.append("<p><em>No convergence reading: the selection does not hold both sides.</em></p>")
    fig = static_biplot(diagram.result, codebook, ellipses=getattr(diagram, "ellipses", None), title=diagram.title)
    try:
        parts.append("<h2>Correspondence analysis map</h2>" + _svg(fig))
    finally:
        plt.close(fig)
    parts.append("<h3>Eigenvalues</h3>" + diagram.result.eigenvalues.round(4).to_html(escape=True, border=0))
    parts.append("<h2>Method</h2><dl>" + "".join(f"<dt>{esc(h)}</dt><dd>{esc(t)}</dd>"
                                                 for h, t in _method_lines(diagram)) + "</dl>")
    if quality is not None and not quality.empty:
        shown = quality.copy()
        if isinstance(shown.columns, pd.MultiIndex):
            shown.columns = [" ".join(map(str, c)) for c in shown.columns]
        parts.append("<h2>How good the tags are</h2><p>The model's held-out quality per source (units of a quarter "
                     "of the annotated documents, never trained on): micro- and macro-F1, and on units annotated "
                     "with no label the share given one (false on empty). Readings rest on these tags: where a "
                     "source's F1 is low, read its side's shares with care." + _unseen_note(quality) + "</p>"
                     + shown.round(3).to_html(escape=True, border=0))
    style = ("body{font-family:sans-serif;margin:2em;max-width:75em} table{border-collapse:collapse;font-size:12px;"
             "margin:0.5em 0} td,th{padding:2px 8px;text-align:right;border-bottom:1px solid #eee} "
             ".caption{color:#333;max-width:60em} .small{color:#666;font-size:12px} svg{max-width:100%;height:auto} "
             "dt{font-weight:bold;margin-top:0.6em}")
    return ("<!doctype html><html><head><meta charset='utf-8'><title>" + esc(diagram.title) + "</title><style>"
            + style + "</style></head><body>" + "".join(parts) + "</body></html>")


def _text_page(pdf, title: str, blocks: list[tuple[str, str]], *, width: int = 100) -> None:
    """A PDF page (A4 portrait) of headed paragraphs, wrapped; continues on more pages when long."""
    import textwrap

    import matplotlib.pyplot as plt

    lines: list[tuple[str, bool]] = [(title, True), ("", False)]
    for heading, text in blocks:
        lines.append((heading, True))
        for paragraph in str(text).split("\n"):
            lines.extend((line, False) for line in (textwrap.wrap(paragraph, width) or [""]))
        lines.append(("", False))
    per_page = 58
    for start in range(0, len(lines), per_page):
        fig = plt.figure(figsize=(8.27, 11.69))
        y = 0.96
        for text, bold in lines[start:start + per_page]:
            fig.text(0.07, y, text, fontsize=11 if bold else 8.5, weight="bold" if bold else "normal",
                     family="DejaVu Sans", va="top")
            y -= 0.0165
        pdf.savefig(fig)
        plt.close(fig)


def _frame_text(frame: pd.DataFrame, width: int = 160) -> str:
    with pd.option_context("display.width", width, "display.max_columns", 40, "display.max_colwidth", 40):
        return frame.to_string()


def _table_page(pdf, title: str, frame: pd.DataFrame) -> None:
    """A table as monospaced text on a landscape A4 page: every column, nothing cut (long cells wrap by pandas)."""
    import matplotlib.pyplot as plt

    text = _frame_text(frame)
    rows = text.split("\n")
    per_page = 48
    for start in range(0, len(rows), per_page):
        fig = plt.figure(figsize=(11.69, 8.27))
        fig.text(0.04, 0.96, title, fontsize=12, weight="bold", va="top")
        fig.text(0.04, 0.91, "\n".join(rows[:1] + rows[max(start, 1):start + per_page]), fontsize=6.5,
                 family="DejaVu Sans Mono", va="top")
        pdf.savefig(fig)
        plt.close(fig)


def _unseen_note(quality: pd.DataFrame) -> str:
    """What the last row of the quality table means, where the model card has it."""
    from ..models import UNSEEN_SOURCE_ROW

    if UNSEEN_SOURCE_ROW not in quality.index:
        return ""
    return (f" The row '{UNSEEN_SOURCE_ROW}' is what each annotated source gets from the same settings fitted on "
            "the other sources only: read a source that has no annotations (your own documents, a new period or "
            "genre) against that row, not against the held-out ones.")


def research_report_pdf(diagram, out: str | Path, *, quality: pd.DataFrame | None = None, codebook=None,
                        generated: str = "") -> Path:
    """The report as a PDF (vector figures, text as text): the same sections as :func:`research_report`, one
    figure per page. Written atomically."""
    import matplotlib

    from matplotlib.backends.backend_pdf import PdfPages

    import matplotlib.pyplot as plt

    out = Path(out)
    caption = getattr(diagram, "caption", "") or ""
    conv = getattr(diagram, "convergence", None)

    def write(path: str) -> None:
        with matplotlib.rc_context({"pdf.fonttype": 42}), PdfPages(path, metadata={"Creator": "cdpd",
                                                                                  "Title": diagram.title}) as pdf:
            blocks = [("What was compared", caption)]
            if generated:
                blocks.append(("Generated", f"{generated} by cdpd"))
            sides = getattr(diagram, "sides", None)
            if sides is not None and not sides.empty:
                for name, row in sides.iterrows():
                    blocks.append((f"Side: {name}", "; ".join(f"{k}: {v}" for k, v in row.items())))
            if conv is not None:
                space, overlap = _zones(conv)
                blocks.append(("Policy intervention space (crossover functions one side uses significantly less)",
                               "\n".join(space) or "none under this comparison"))
                blocks.append(("Expected overlaps (functions Amiri names as convergence)",
                               "\n".join(overlap) or "none"))
            blocks.extend(_method_lines(diagram))
            _text_page(pdf, diagram.title, blocks)
            if conv is not None and _can_dumbbell(conv):
                fig = static_dumbbell(conv, caption=caption)
                pdf.savefig(fig)
                plt.close(fig)
                _table_page(pdf, "Convergence table", _percent_table(conv.table))
            fig = static_biplot(diagram.result, codebook, ellipses=getattr(diagram, "ellipses", None),
                                title=diagram.title, caption=caption)
            pdf.savefig(fig)
            plt.close(fig)
            if quality is not None and not quality.empty:
                shown = quality.copy()
                if isinstance(shown.columns, pd.MultiIndex):
                    shown.columns = [" ".join(map(str, c)) for c in shown.columns]
                from ..models import UNSEEN_SOURCE_ROW

                title = "The model's held-out quality per source" + (
                    "; last row: on a source it never saw" if UNSEEN_SOURCE_ROW in quality.index else "")
                _table_page(pdf, title, shown.round(3))

    _atomic_write(out, write)
    return out


def write_report(diagram, out: str | Path, *, quality: pd.DataFrame | None = None, codebook=None,
                 generated: str = "") -> Path:
    """``cdpd report``'s writer: HTML or PDF by the suffix of ``out``."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in REPORT_FORMATS:
        raise ConfigError(f"{out}: the report is written as .html or .pdf, not {suffix or 'no suffix'!r}")
    if suffix == ".pdf":
        return research_report_pdf(diagram, out, quality=quality, codebook=codebook, generated=generated)
    page = research_report(diagram, quality=quality, codebook=codebook, generated=generated)
    _atomic_write(out, lambda p: Path(p).write_text(page, encoding="utf-8"))
    return out
