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


def html_report(result: CAResult, codebook: Codebook | None, *, ellipses: pd.DataFrame | None, title: str,
                convergence: pd.DataFrame | None = None, mds: tuple[pd.DataFrame, float] | None = None) -> str:
    """One self-contained page: the biplot, the convergence table with its rule, and the MDS view."""
    parts = [biplot(result, codebook, ellipses=ellipses, title=title).to_html(full_html=False,
                                                                              include_plotlyjs=True)]
    if convergence is not None:
        table = convergence.copy()
        for column in ("city_share", "national_share"):
            table[column] = (100 * table[column]).map("{:.1f}%".format)
        parts.append("<h2>Convergence table</h2>" + table.round(3).to_html(escape=True, border=0)
                     + f"<p><em>Reading rule.</em> {html.escape(READING_RULE)}</p>")
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
           mds: tuple[pd.DataFrame, float] | None = None) -> Exported:
    """Write the figure (.html, .png or .svg, by suffix) and each table as ``<stem>_<name>.csv`` beside it."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".html", ".png", ".svg"):
        raise ValueError(f"{out}: the diagram is written as .html, .png or .svg, not {suffix or 'no suffix'!r}")
    if suffix == ".html":
        page = html_report(result, codebook, ellipses=ellipses, title=title, convergence=tables.get("convergence"),
                           mds=mds)
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
