"""Reports and exports of the analysis: one self-contained HTML page, and files written beside the figure.

:func:`export` writes HTML (plotly, self-contained), PNG or SVG (matplotlib) and the CSV tables.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..codebook import Codebook
from ..fileio import atomic_path, csv_text
from .ca import CAResult
from .convergence import READING_RULE
from .figures import biplot, mds_figure, static_biplot


def _convergence_html(convergence) -> str:
    """The convergence table (a :class:`~nlp.analysis.convergence.Convergence`, or a bare table) with its unit,
    rule and method: shares and their bounds in %, p-values below 0.001 written so."""
    table = getattr(convergence, "table", convergence).copy()
    for column in table.columns:
        if column.endswith(("_share", "_low", "_high")) or column.startswith("difference"):
            table[column] = (100 * table[column]).map("{:.1f}%".format)
    for column in ("p_value", "p_adjusted"):
        if column in table:
            table[column] = table[column].map(lambda p: "" if p != p else "< 0.001" if p < 0.001 else f"{p:.3f}")
    head = "<h2>Convergence table</h2>"
    if hasattr(convergence, "unit_label"):
        head += (f"<p>Reading of {html.escape(convergence.label)}; unit {html.escape(convergence.unit)}: "
                 f"{html.escape(convergence.unit_label)}.</p>")
    rule = getattr(convergence, "rule", READING_RULE)
    out = head + table.round(3).to_html(escape=True, border=0) + f"<p><em>Reading rule.</em> {html.escape(rule)}</p>"
    if hasattr(convergence, "method"):
        out += f"<p><em>Method.</em> {html.escape(convergence.method)}</p>"
    return out


def html_report(result: CAResult, codebook: Codebook | None, *, ellipses: pd.DataFrame | None, title: str,
                convergence=None, mds: tuple[pd.DataFrame, float] | None = None, sides: pd.DataFrame | None = None,
                caption: str | None = None) -> str:
    """One self-contained page: the biplot, its caption, the two sides compared, the convergence table with its
    rule and method, and the MDS view."""
    parts = [biplot(result, codebook, ellipses=ellipses, title=title).to_html(full_html=False,
                                                                              include_plotlyjs=True)]
    if caption:
        parts.append(f"<p>{html.escape(caption)}</p>")
    if sides is not None:
        parts.append("<h2>Sides compared</h2>" + sides.to_html(escape=True, border=0))
    if convergence is not None:
        parts.append(_convergence_html(convergence))
    if mds is not None:
        parts.append(mds_figure(*mds).to_html(full_html=False, include_plotlyjs=False))
    return ("<!doctype html><html><head><meta charset='utf-8'><title>" + html.escape(title) + "</title>"
            "<style>body{font-family:sans-serif;margin:2em} table{border-collapse:collapse;font-size:13px} "
            "td,th{padding:2px 8px;text-align:right}</style></head><body>" + "".join(parts) + "</body></html>")


@dataclass
class Exported:
    figure: Path
    tables: list[Path]


def _atomic_write(path: Path, write) -> None:
    with atomic_path(path) as tmp:
        write(str(tmp))


def export(out: str | Path, result: CAResult, tables: dict[str, pd.DataFrame], codebook: Codebook | None = None,
           ellipses: pd.DataFrame | None = None, title: str = "City Diplomacy - Public Diplomacy diagram",
           mds: tuple[pd.DataFrame, float] | None = None, convergence=None, sides: pd.DataFrame | None = None,
           caption: str | None = None) -> Exported:
    """Write the figure (.html, .png or .svg, by suffix) and each table as ``<stem>_<name>.csv`` beside it.
    ``convergence`` (a Convergence; default: the ``convergence`` table), ``sides`` and ``caption`` go into the
    HTML report."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".html", ".png", ".svg"):
        raise ValueError(f"{out}: the diagram is written as .html, .png or .svg, not {suffix or 'no suffix'!r}")
    if suffix == ".html":
        page = html_report(result, codebook, ellipses=ellipses, title=title,
                           convergence=convergence if convergence is not None else tables.get("convergence"),
                           mds=mds, sides=sides if sides is not None else tables.get("sides"), caption=caption)
        _atomic_write(out, lambda p: Path(p).write_text(page, encoding="utf-8"))
    else:
        import matplotlib.pyplot as plt

        fig = static_biplot(result, codebook, ellipses=ellipses, title=title)
        _atomic_write(out, lambda p: fig.savefig(p, format=suffix[1:]))
        plt.close(fig)
    written = []
    for name, table in tables.items():
        path = out.with_name(f"{out.stem}_{name}.csv")
        _atomic_write(path, lambda p, t=table: Path(p).write_text(csv_text(t), encoding="utf-8"))
        written.append(path)
    return Exported(out, written)
