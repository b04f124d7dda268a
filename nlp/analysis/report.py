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
        head += (f"<p>Reading of {html.escape(getattr(convergence, 'label', ''))}; unit "
                 f"{html.escape(convergence.unit)}: {html.escape(convergence.unit_label)}.</p>")
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
        raise ValueError(f"{out}: a figure is written as {', '.join(STATIC_FORMATS)}, not {suffix or 'no suffix'!r}")
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
    ``tables["sides"]``) is shown on the HTML page. ``caption`` goes under every figure; ``codes`` and ``min_contribution`` are :func:`~nlp.analysis.figures.static_biplot`'s.
    """
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{out}: the diagram is written as {', '.join(FORMATS)}, not {suffix or 'no suffix'!r}")
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
