"""Figures of the analysis: the CA biplot (plotly for the app and HTML, matplotlib for PNG, SVG and PDF) and
the MDS view. Pure functions: results in, figure objects out; writing them is :mod:`nlp.analysis.report`'s.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from ..codebook import Codebook
from .ca import CAResult
from .convergence import _practice

PRACTICE_SYMBOLS = {"public": "square", "city": "triangle-up", "both": "circle"}
PRACTICE_MARKERS = {"public": "s", "city": "^", "both": "o"}  # matplotlib


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
