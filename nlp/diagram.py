"""The City Diplomacy-Public Diplomacy (CD-PD) diagram: a CA biplot of labels and actor groups, and the
convergence table that reads it.

Pure functions build the figure and tables from a contingency table and a :class:`~nlp.ca.CAResult`;
:func:`export` writes HTML (plotly, self-contained), PNG or SVG (matplotlib) and CSV tables.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .ca import CAResult
from .codebook import Codebook
from .fileio import atomic_path, csv_text

#: The reading rule of the convergence table (also printed under it).
READING_RULE = (
    "city-led: the city standardised residual is >= 1.96 and the city share is at least 1.5 times the national "
    "share; state-led: the residual is <= -1.96 and the national share is at least 1.5 times the city share; "
    "convergent otherwise (both practices use the function in comparable measure)."
)
RESIDUAL_CUT = 1.96
SHARE_RATIO = 1.5
PRACTICE_SYMBOLS = {"public": "square", "city": "triangle-up", "both": "circle"}
PRACTICE_MARKERS = {"public": "s", "city": "^", "both": "o"}  # matplotlib


def standardised_residuals(table: pd.DataFrame) -> pd.DataFrame:
    """(observed - expected) / sqrt(expected) under independence, the cells whose squares sum to chi-square."""
    values = table.to_numpy(float)
    n = values.sum()
    expected = np.outer(values.sum(1), values.sum(0)) / n
    with np.errstate(divide="ignore", invalid="ignore"):
        res = np.where(expected > 0, (values - expected) / np.sqrt(expected), 0.0)
    return pd.DataFrame(res, index=table.index, columns=table.columns)


def convergence_table(counts: pd.DataFrame, totals: pd.Series, codebook: Codebook | None = None,
                      city: str = "city", national: str = "national") -> pd.DataFrame:
    """Per label: share of city and of national documents carrying it, the standardised residual of its city
    count (against the count expected from the cities' share of all documents), its contribution (%) to the
    inertia of the labels x issuer-type table, and a reading by :data:`READING_RULE`.

    ``counts`` is labels x issuer types (documents carrying each label); ``totals`` the documents per issuer type.
    """
    for column in (city, national):
        if column not in counts.columns:
            raise ValueError(f"the convergence table needs a {column!r} column; the table has "
                             f"{', '.join(map(str, counts.columns))} (group by issuer_type)")
    table = counts[[city, national]].astype(float)
    n_city, n_national = max(int(totals.get(city, 0)), 1), max(int(totals.get(national, 0)), 1)
    # residual of the city cell of each label's 2x2 table (city/national x with/without the label): positive when
    # cities carry the label more often than their share of the documents predicts
    expected = table.sum(axis=1) * n_city / (n_city + n_national)
    with np.errstate(divide="ignore", invalid="ignore"):
        residual = np.where(expected > 0, (table[city] - expected) / np.sqrt(expected), 0.0)
    sq = standardised_residuals(table).to_numpy() ** 2
    inertia_share = 100 * sq.sum(1) / sq.sum() if sq.sum() > 0 else np.zeros(len(table))
    out = pd.DataFrame(index=table.index)
    out["practice"] = [_practice(codebook, label) for label in table.index]
    out["city_share"] = table[city] / n_city
    out["national_share"] = table[national] / n_national
    out["city_documents"] = table[city].astype(int)
    out["national_documents"] = table[national].astype(int)
    out["std_residual_city"] = residual
    out["contribution_pct"] = inertia_share
    out["reading"] = [_reading(r.std_residual_city, r.city_share, r.national_share) for r in out.itertuples()]
    out.index.name = table.index.name
    return out


def _reading(residual: float, city_share: float, national_share: float) -> str:
    if residual >= RESIDUAL_CUT and city_share >= SHARE_RATIO * national_share:
        return "city-led"
    if residual <= -RESIDUAL_CUT and national_share >= SHARE_RATIO * city_share:
        return "state-led"
    return "convergent"


def _practice(codebook: Codebook | None, label: str) -> str:
    if codebook is None:
        return ""
    try:
        return str(codebook.label(label).practice or "")
    except KeyError:
        return ""


def _short(name, width: int = 32) -> str:
    name = str(name)
    return name if len(name) <= width else name[: width - 1] + "…"


def _pct(result: CAResult, k: int) -> str:
    if k < len(result.eigenvalues):
        return f"Dim {k + 1} ({result.eigenvalues['pct'].iloc[k]:.1f}% of inertia)"
    return f"Dim {k + 1}"


def _xy(frame: pd.DataFrame, result: CAResult) -> tuple[np.ndarray, np.ndarray]:
    x = frame["coord_1"].to_numpy(float)
    y = frame["coord_2"].to_numpy(float) if result.n_components >= 2 and "coord_2" in frame else np.zeros(len(x))
    return x, y


def biplot(result: CAResult, codebook: Codebook | None = None, *, ellipses: pd.DataFrame | None = None,
           title: str = "City Diplomacy - Public Diplomacy diagram"):
    """A plotly symmetric CA map: labels marked by their codebook ``practice``, groups as diamonds.

    Supplementary points are drawn hollow. A one-dimensional solution (two groups) is drawn on a line.
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    rows, cols = result.rows, result.cols
    for practice in sorted({_practice(codebook, r) for r in rows.index}):
        part = rows[[_practice(codebook, r) == practice for r in rows.index]]
        for sup in (False, True):
            pts = part[part["supplementary"] == sup]
            if pts.empty:
                continue
            x, y = _xy(pts, result)
            name = f"{practice or 'label'} practice" + (" (supplementary)" if sup else "")
            fig.add_trace(go.Scatter(
                x=x, y=y, mode="markers+text", name=name, text=[html.escape(str(i)) for i in pts.index],
                textposition="top center", hovertext=[html.escape(str(i)) for i in pts.index],
                marker=dict(symbol=PRACTICE_SYMBOLS.get(practice, "circle") + ("-open" if sup else ""), size=10)))
    for sup in (False, True):
        pts = cols[cols["supplementary"] == sup]
        if pts.empty:
            continue
        x, y = _xy(pts, result)
        fig.add_trace(go.Scatter(
            x=x, y=y, mode="markers+text", name="actor group" + (" (supplementary)" if sup else ""),
            text=[html.escape(_short(i)) for i in pts.index], hovertext=[html.escape(str(i)) for i in pts.index],
            textposition="bottom center",
            marker=dict(symbol="diamond-open" if sup else "diamond", size=13, color="#d62728")))
    if ellipses is not None and not ellipses.empty:
        for (kind, name), pts in ellipses.groupby(["kind", "name"], sort=False):
            fig.add_trace(go.Scatter(x=pts["x"], y=pts["y"], mode="lines", showlegend=False, hoverinfo="skip",
                                     line=dict(width=1, dash="dot", color="#d62728" if kind == "col" else "#1f77b4")))
    fig.update_layout(title=title, xaxis_title=_pct(result, 0), yaxis_title=_pct(result, 1), template="plotly_white",
                      height=720, legend=dict(orientation="h", y=-0.12))
    fig.add_hline(y=0, line_width=1, line_color="#999")
    fig.add_vline(x=0, line_width=1, line_color="#999")
    if result.n_components >= 2:
        fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return fig


def static_biplot(result: CAResult, codebook: Codebook | None = None, *, ellipses: pd.DataFrame | None = None,
                  title: str = "City Diplomacy - Public Diplomacy diagram"):
    """The same map with matplotlib, for PNG and SVG (no browser needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 8), dpi=120)
    rows, cols = result.rows, result.cols
    for name, row in rows.iterrows():
        x, y = _xy(row.to_frame().T, result)
        practice = _practice(codebook, str(name))
        ax.scatter(x, y, marker=PRACTICE_MARKERS.get(practice, "o"), s=50,
                   facecolors="none" if row["supplementary"] else "#1f77b4", edgecolors="#1f77b4")
        ax.annotate(str(name), (x[0], y[0]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    for name, col in cols.iterrows():
        x, y = _xy(col.to_frame().T, result)
        ax.scatter(x, y, marker="D", s=70, facecolors="none" if col["supplementary"] else "#d62728",
                   edgecolors="#d62728")
        ax.annotate(_short(name), (x[0], y[0]), textcoords="offset points", xytext=(4, -10), fontsize=9,
                    color="#d62728")
    if ellipses is not None and not ellipses.empty:
        for (kind, _name), pts in ellipses.groupby(["kind", "name"], sort=False):
            ax.plot(pts["x"], pts["y"], lw=0.8, ls=":", color="#d62728" if kind == "col" else "#1f77b4")
    ax.axhline(0, color="#999", lw=0.8)
    ax.axvline(0, color="#999", lw=0.8)
    ax.set_xlabel(_pct(result, 0))
    ax.set_ylabel(_pct(result, 1))
    ax.set_title(title)
    if result.n_components >= 2:
        ax.set_aspect("equal", adjustable="datalim")
    handles = [plt.Line2D([], [], marker=m, ls="", color="#1f77b4", label=f"{p} practice")
               for p, m in PRACTICE_MARKERS.items()]
    handles.append(plt.Line2D([], [], marker="D", ls="", color="#d62728", label="actor group"))
    ax.legend(handles=handles, loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def mds_figure(coords: pd.DataFrame, stress: float, title: str = "MDS of label profiles"):
    """The second view: metric MDS of chi-square distances between label profiles, stress in the title."""
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=coords["dim 1"], y=coords["dim 2"], mode="markers+text",
                               text=[html.escape(str(i)) for i in coords.index], textposition="top center"))
    fig.update_layout(title=f"{title} (Kruskal stress-1 = {stress:.3f})", template="plotly_white", height=560,
                      xaxis_title="MDS 1", yaxis_title="MDS 2")
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return fig


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
