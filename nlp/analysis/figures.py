"""Figures of the analysis. Pure functions: data in, figure objects out; writing them is :mod:`nlp.analysis.report`'s.

- :func:`dumbbell` (plotly) and :func:`static_dumbbell` (matplotlib): the CD-PD diagram for **two sides** (city and
  state): per function, each side's share with its interval, grouped by practice, with the reading and the zones
  (policy intervention space, expected overlap) marked. Two sides give a correspondence analysis of a single
  dimension, so this chart, not a CA map, is the diagram of a city/state comparison.
- :func:`biplot` (plotly) and :func:`static_biplot` (matplotlib): the CA map for **three or more groups**. The static
  map guarantees that no two labels overlap (a repel step measured with the renderer, then codes with a key, a
  larger figure, and at last leaving the least important labels out, said in the caption); names are never cut.
- :func:`series_colors`: n distinct series styles (colour, marker, dash) for trend lines and the like.
- :func:`mds_figure`: the MDS view.

matplotlib and plotly are imported inside the functions: importing this module costs nothing to ``cdpd classify``.
"""

from __future__ import annotations

import html
import math
import textwrap
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

# ------------------------------------------------------------------------------------------------------------------
# Series styles
# ------------------------------------------------------------------------------------------------------------------

#: Twenty colours that stay apart on white: Tableau 10, then ten from Plotly's Dark24 far from those ten in hue or
#: lightness. A palette of 10 (matplotlib's default cycle) repeats colours as soon as a chart has 11 series.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#750d86", "#00a08b", "#6c7c32", "#862a16", "#1616a7", "#fb00d1", "#b68100", "#222a2a", "#778aae", "#a777f1",
)
#: Markers (matplotlib) and the plotly symbol of each, and line dashes (matplotlib, plotly): they change each time
#: the colours come round again, so every series of a long list keeps a style of its own.
_MARKERS = (("o", "circle"), ("s", "square"), ("^", "triangle-up"), ("D", "diamond"), ("v", "triangle-down"),
            ("P", "cross"), ("X", "x"), ("*", "star"))
_DASHES = (("-", "solid"), ("--", "dash"), (":", "dot"), ("-.", "dashdot"), ((0, (8, 2, 2, 2, 2, 2)), "longdashdot"))


@dataclass(frozen=True)
class SeriesStyle:
    """How one series is drawn: ``color`` (hex), ``marker`` (matplotlib) / ``symbol`` (plotly), ``linestyle``
    (matplotlib) / ``dash`` (plotly)."""

    color: str
    marker: str
    symbol: str
    linestyle: Any
    dash: str

    def mpl(self) -> dict:
        """Keyword arguments for ``Axes.plot``."""
        return {"color": self.color, "marker": self.marker, "linestyle": self.linestyle}

    def plotly(self) -> dict:
        """Keyword arguments for ``go.Scatter`` (``line`` and ``marker``)."""
        return {"line": {"color": self.color, "dash": self.dash},
                "marker": {"color": self.color, "symbol": self.symbol}}


def series_colors(n: int) -> list[SeriesStyle]:
    """``n`` distinct styles for ``n`` series (trend lines, groups of points), in a fixed order.

    The first 20 differ by colour (:data:`PALETTE`), all solid with round markers; from the 21st on the colours come
    round again with the next marker and dash, so that (colour, marker, dash) stays distinct for every series up to
    20 x 40 = 800 of them. Why not a colour map: sampled maps put neighbouring series in near-identical shades.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    out = []
    for i in range(n):
        lap = i // len(PALETTE)
        marker, symbol = _MARKERS[lap % len(_MARKERS)]
        linestyle, dash = _DASHES[lap % len(_DASHES)]
        out.append(SeriesStyle(PALETTE[i % len(PALETTE)], marker, symbol, linestyle, dash))
    return out


# ------------------------------------------------------------------------------------------------------------------
# Helpers shared by the figures
# ------------------------------------------------------------------------------------------------------------------

PRACTICE_ORDER = ("public", "both", "city")
PRACTICE_TITLES = {"public": "Public diplomacy practice", "both": "Shared practice (both)",
                   "city": "City diplomacy practice", "": "Practice not given"}
PRACTICE_SYMBOLS = {"public": "square", "city": "triangle-up", "both": "circle", "": "hexagon"}
PRACTICE_MARKERS = {"public": "s", "city": "^", "both": "o", "": "h"}  # matplotlib
#: The colours of the series of a CA map: label practices, then active and supplementary actor groups.
_MAP_COLORS = {"public": PALETTE[0], "both": PALETTE[2], "city": PALETTE[1], "": PALETTE[7],
               "group": PALETTE[3], "group_sup": PALETTE[4]}
#: The two sides of the dumbbell (Okabe-Ito vermillion and blue: apart for colour-blind readers too).
_SIDE_STYLES = (("#d55e00", "o", "circle"), ("#0072b2", "s", "square"))
#: How the zones of the convergence table are marked: (face colour, alpha, hatch, legend text).
_ZONE_STYLES = {
    "intervention": ("#e69f00", 0.28, None, "policy intervention space: one side active where the other is not "
                                            "(the side is named at the row's end)"),
    "expected overlap": ("#56b4e9", 0.22, None, "expected overlap: a shared function both sides use"),
    "expected overlap, not observed": ("#56b4e9", 0.22, "///", "expected overlap, not observed"),
    "crossover": ("#009e73", 0.18, None, "crossover: both sides active in the other's practice"),
}
_CROWD = 40  # more supplementary points than this: drawn small and light
_LABEL_WRAP = 28  # long names go on several lines of at most this many characters (never cut)


def _practice(codebook, label: str) -> str:
    """The codebook ``practice`` of a label ("" when unknown): drawn as the label's series."""
    if codebook is None:
        return ""
    try:
        return str(codebook.label(label).practice or "")
    except (KeyError, AttributeError):
        return ""


def _wrap(name: str, width: int = _LABEL_WRAP) -> str:
    """A name on lines of at most ``width`` characters, broken at spaces (a word longer than that stays whole):
    the words are all there, in order, so joining the lines with spaces gives the name back."""
    name = " ".join(str(name).split())
    return "\n".join(textwrap.wrap(name, width, break_long_words=False, break_on_hyphens=False)) or name


def _pct(result, k: int) -> str:
    if k < len(result.eigenvalues):
        return f"Dim {k + 1} ({result.eigenvalues['pct'].iloc[k]:.1f}% of inertia)"
    return f"Dim {k + 1}"


def _xy(frame: pd.DataFrame, result) -> tuple[np.ndarray, np.ndarray]:
    x = frame["coord_1"].to_numpy(float)
    y = frame["coord_2"].to_numpy(float) if result.n_components >= 2 and "coord_2" in frame else np.zeros(len(x))
    return x, y


def _matplotlib():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# ------------------------------------------------------------------------------------------------------------------
# Label repel (in the spirit of ggrepel / factoextra's repel = TRUE)
# ------------------------------------------------------------------------------------------------------------------


def _box_overlaps(centers: np.ndarray, half: np.ndarray, pad: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Pairwise overlap of axis-aligned boxes: (overlap along x, overlap along y), both > 0 where boxes overlap."""
    dx = np.abs(centers[:, None, 0] - centers[None, :, 0])
    dy = np.abs(centers[:, None, 1] - centers[None, :, 1])
    ox = half[:, None, 0] + half[None, :, 0] + pad - dx
    oy = half[:, None, 1] + half[None, :, 1] + pad - dy
    return ox, oy


def repel(anchors: np.ndarray, sizes: np.ndarray, bounds: tuple[float, float, float, float], *,
          points: np.ndarray | None = None, point_radius: float = 4.0, pad: float = 2.0, iterations: int = 400,
          free_x: bool = True, seed: int = 0) -> tuple[np.ndarray, bool]:
    """Centres for text boxes of ``sizes`` (w, h) near their ``anchors`` such that no two boxes overlap, in one
    coordinate system of equal units on both axes (display pixels). Returns (centres, True when no two boxes
    overlap).

    Each box starts beside its anchor, on the side away from the centre of the cloud (where there is room); then,
    iteratively, every overlapping pair is pushed apart along the axis of least overlap, boxes are pushed off the
    ``points`` (markers of ``point_radius``) and kept inside ``bounds`` (x0, y0, x1, y1). With ``free_x=False``
    boxes move vertically only (a one-dimensional strip). Deterministic for a given ``seed``.
    """
    anchors = np.asarray(anchors, float).reshape(-1, 2)
    half = np.asarray(sizes, float).reshape(-1, 2) / 2
    n = len(anchors)
    if n == 0:
        return anchors.copy(), True
    pts = np.asarray(points, float).reshape(-1, 2) if points is not None else anchors
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = bounds
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2]) if n < 3 else np.median(pts, axis=0)
    gap = point_radius + pad + 1
    c = anchors.copy()
    if free_x:
        away = anchors - centre
        right = np.where(away[:, 0] >= 0, 1.0, -1.0)
        up = np.where(away[:, 1] >= 0, 1.0, -1.0)
        # beside the point, towards the outside: mostly to the side, a little up or down
        c[:, 0] += right * (half[:, 0] + gap)
        c[:, 1] += up * (0.5 * half[:, 1])
    else:  # a strip: alternate above and below the line, in order along it
        order = np.argsort(anchors[:, 0], kind="stable")
        side = np.empty(n)
        side[order] = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
        c[:, 1] += side * (half[:, 1] + gap)

    def clamp(c):
        lo = np.array([x0, y0]) + half
        hi = np.array([x1, y1]) - half
        return np.where(lo <= hi, np.clip(c, lo, hi), (lo + hi) / 2)

    c = clamp(c)
    # a box wider or taller than the bounds cannot be placed inside them: a failure whatever else happens
    fits = (2 * half[:, 0] <= x1 - x0) & (2 * half[:, 1] <= y1 - y0)
    eye = np.eye(n, dtype=bool)
    for it in range(iterations):
        move = np.zeros_like(c)
        ox, oy = _box_overlaps(c, half, pad)
        hit = (ox > 0) & (oy > 0) & ~eye
        # point obstacles: boxes of half-size point_radius at every marker
        px = half[:, None, 0] + point_radius - np.abs(c[:, None, 0] - pts[None, :, 0])
        py = half[:, None, 1] + point_radius - np.abs(c[:, None, 1] - pts[None, :, 1])
        on_point = (px > 0) & (py > 0)
        if not hit.any() and not on_point.any():
            return c, bool(fits.all())
        if hit.any():
            dx = c[:, None, 0] - c[None, :, 0]
            dy = c[:, None, 1] - c[None, :, 1]
            jitter = rng.uniform(-1, 1, size=(n, n))
            jitter = np.triu(jitter, 1) - np.triu(jitter, 1).T  # antisymmetric: the pair moves apart
            sx = np.sign(np.where(dx == 0, jitter, dx))
            sy = np.sign(np.where(dy == 0, jitter, dy))
            along_x = (ox < oy) & free_x
            mx = np.where(hit & along_x, sx * (ox / 2 + 0.5), 0.0)
            my = np.where(hit & ~along_x, sy * (oy / 2 + 0.5), 0.0)
            move[:, 0] += mx.sum(1)
            move[:, 1] += my.sum(1)
        if on_point.any():
            dx = c[:, None, 0] - pts[None, :, 0]
            dy = c[:, None, 1] - pts[None, :, 1]
            sx = np.sign(np.where(dx == 0, 1.0, dx))
            sy = np.sign(np.where(dy == 0, rng.choice([-1.0, 1.0]), dy))
            along_x = (px < py) & free_x
            move[:, 0] += np.where(on_point & along_x, sx * (px + 0.5), 0.0).sum(1)
            move[:, 1] += np.where(on_point & ~along_x, sy * (py + 0.5), 0.0).sum(1)
        # a weak pull back to the anchor keeps labels near their points; it fades so the pushes win in the end
        pull = 0.02 * (1 - it / iterations)
        toward = anchors - c
        move += pull * toward * np.array([1.0 if free_x else 0.0, 1.0])
        # a small random kick breaks the rare cycles where two pushes cancel out
        if it and it % 50 == 0:
            move += rng.normal(0, 1.0, size=move.shape) * np.array([1.0 if free_x else 0.0, 1.0])
        c = clamp(c + move)
    ox, oy = _box_overlaps(c, half, 0.0)
    return c, bool(fits.all()) and not ((ox > 0) & (oy > 0) & ~eye).any()


def _bbox_pairs(boxes) -> list[tuple[int, int]]:
    """Pairs (i, j), i < j, of overlapping boxes (objects with x0, y0, x1, y1); touching is not overlapping."""
    if len(boxes) < 2:
        return []
    b = np.array([[x.x0, x.y0, x.x1, x.y1] for x in boxes], float)
    over = ((np.minimum(b[:, None, 2], b[None, :, 2]) > np.maximum(b[:, None, 0], b[None, :, 0]))
            & (np.minimum(b[:, None, 3], b[None, :, 3]) > np.maximum(b[:, None, 1], b[None, :, 1])))
    i, j = np.nonzero(np.triu(over, 1))
    return list(zip(i.tolist(), j.tolist()))


def text_overlaps(texts, renderer) -> list[tuple[int, int]]:
    """Pairs (i, j) of matplotlib ``texts`` whose rendered bounding boxes overlap (``get_window_extent``)."""
    return _bbox_pairs([t.get_window_extent(renderer) for t in texts])


# ------------------------------------------------------------------------------------------------------------------
# Captions and notes under matplotlib figures
# ------------------------------------------------------------------------------------------------------------------


def _grow_bottom(fig, inches: float) -> None:
    """Add ``inches`` of room under everything already drawn: the figure gets taller and every axes, and every
    figure-level text placed in inches, keeps its size and position in inches (so placed labels stay apart)."""
    w, h = fig.get_size_inches()
    boxes = [(ax, ax.get_position(original=True)) for ax in fig.axes]
    fig.set_size_inches(w, h + inches, forward=False)
    for ax, box in boxes:
        ax.set_position([box.x0, (box.y0 * h + inches) / (h + inches), box.width, box.height * h / (h + inches)])
    for text in fig.texts:
        if getattr(text, "_cdpd_inches", False):
            x, y = text.get_position()
            text.set_position((x, y + inches))


def _grow_right(fig, inches: float) -> None:
    """Add ``inches`` of room on the right (for a legend): the axes keep their size and place in inches."""
    w, h = fig.get_size_inches()
    boxes = [(ax, ax.get_position(original=True)) for ax in fig.axes]
    fig.set_size_inches(w + inches, h, forward=False)
    for ax, box in boxes:
        ax.set_position([box.x0 * w / (w + inches), box.y0, box.width * w / (w + inches), box.height])


def add_note(fig, text: str, *, fontsize: float = 8.5, gid: str = "caption", family: str | None = None) -> Any:
    """Write ``text`` under the figure, wrapped to its width (never cut), growing the figure so that nothing moves.

    Paragraphs (``\\n``) are kept. Returns the Text artist (its ``gid`` lets a test or an SVG reader find it).
    """
    if not text or not text.strip():
        return None
    plt = _matplotlib()  # noqa: F841  (Agg before any drawing)
    renderer = fig.canvas.get_renderer()
    width_in = fig.get_size_inches()[0] - 0.5
    chars = max(20, int(width_in * 72 / (0.52 * fontsize)))
    while True:
        wrapped = "\n".join(_wrap(par, chars) if par.strip() else "" for par in text.split("\n"))
        artist = fig.text(0.25, 0.0, wrapped, fontsize=fontsize, ha="left", va="bottom", wrap=False,
                          transform=fig.dpi_scale_trans, gid=gid, family=family)
        box = artist.get_window_extent(renderer)
        if box.width / fig.dpi <= width_in or chars <= 20:
            break
        artist.remove()
        chars = int(chars * width_in / (box.width / fig.dpi)) - 1
    height = box.height / fig.dpi + 0.2
    _grow_bottom(fig, height)
    artist.set_position((0.25, 0.1))
    artist._cdpd_inches = True
    return artist


# ------------------------------------------------------------------------------------------------------------------
# The dumbbell chart (two sides)
# ------------------------------------------------------------------------------------------------------------------


def _convergence_parts(table, sides=None, unit_label=None):
    """(table, sides, unit_label, extra) from a table and its sides, or from any object with ``table``, ``sides`` and
    ``unit_label`` attributes (the Convergence of :mod:`nlp.analysis.convergence`): the figures never import it.
    ``extra`` holds what else the object says (``alpha``, ``unit``, ``rule``) for the notes."""
    extra = {}
    if not isinstance(table, pd.DataFrame):
        obj = table
        table = obj.table
        sides = sides or getattr(obj, "sides", None)
        unit_label = unit_label or getattr(obj, "unit_label", None)
        extra = {k: getattr(obj, k) for k in ("alpha", "unit", "rule", "n") if hasattr(obj, k)}
    if sides is None:  # a bare table: the sides are the prefixes of its first two "<side>_share" columns
        found = [c[: -len("_share")] for c in table.columns if str(c).endswith("_share")]
        if len(found) < 2:
            raise ValueError("the convergence table needs two '<side>_share' columns (one per side)")
        sides = tuple(found[:2])
    sides = tuple(sides)
    for side in sides:
        if f"{side}_share" not in table.columns:
            raise ValueError(f"the convergence table has no {side}_share column (sides {sides})")
    return table, sides, unit_label or "share", extra


def _dumbbell_rows(table: pd.DataFrame) -> list[tuple[str, str | None]]:
    """Rows of the chart top to bottom: ("heading", practice) then ("row", function) for each function of that
    practice, practices in the order public, shared, city (then any other), functions in table (codebook) order."""
    practice = table["practice"].fillna("").astype(str) if "practice" in table else pd.Series("", table.index)
    order = [p for p in PRACTICE_ORDER if (practice == p).any()]
    order += [p for p in dict.fromkeys(practice) if p not in order]
    out = []
    for p in order:
        out.append(("heading", p))
        out.extend(("row", f) for f in table.index[practice == p])
    return out


def _zone_kind(zone) -> str | None:
    zone = "" if zone is None or (isinstance(zone, float) and math.isnan(zone)) else str(zone)
    if zone.startswith("intervention space"):
        return "intervention"
    if zone.startswith("expected overlap, not observed"):
        return "expected overlap, not observed"
    if zone.startswith("expected overlap"):
        return "expected overlap"
    if zone.startswith("crossover"):
        return "crossover"
    return None


def _row_note(row: pd.Series) -> str:
    reading = row.get("reading", "")
    zone = row.get("zone", "")
    parts = [str(v) for v in (reading, zone) if isinstance(v, str) and v]
    return " · ".join(parts)


def _num(row: pd.Series, column: str) -> float:
    value = row.get(column, np.nan)
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _what(table: pd.DataFrame, side: str) -> str:
    """What a side's marks show: the share, and its interval when the table has one."""
    has_interval = {f"{side}_low", f"{side}_high"} <= set(table.columns)
    return "share and interval" if has_interval else "share"


def _dumbbell_note(table, sides, extra) -> str:
    level = f"{100 * (1 - extra['alpha']):g}% " if isinstance(extra.get("alpha"), (int, float)) else ""
    rule = f" Rule: {extra['rule']}" if isinstance(extra.get("rule"), str) and extra["rule"].strip() else ""
    bars = f"; bars: its {level}confidence interval" if _what(table, sides[0]) != "share" else ""
    return (f"Dots: each side's share ({sides[0]}, {sides[1]}){bars}. Rows are grouped by the practice the "
            "codebook gives the function. Shaded orange: the policy intervention space (one side active where the "
            "other is not: room for the other to act); shaded blue: expected overlap (a shared function); hatched "
            "(lighter on screen): expected overlap not observed. At the row's end: the reading, then the zone."
            + rule)


def static_dumbbell(table, sides: tuple[str, str] | None = None, unit_label: str | None = None, *, caption: str = "",
                    title: str = "City Diplomacy - Public Diplomacy: the two profiles"):
    """The two sides' profiles as a dot-and-interval chart, with matplotlib (for PNG, SVG and PDF).

    ``table`` is the convergence table (or any object with ``table``, ``sides``, ``unit_label``): one row per
    function with ``practice``, ``{side}_share`` / ``_low`` / ``_high`` for both sides, ``reading`` and ``zone``
    (``_low``/``_high``, ``reading`` and ``zone`` may be missing: then no bars, notes or bands). Why a dumbbell: with
    two sides, correspondence analysis has one dimension; the shares themselves, with their uncertainty, say more.

    Artists carry ``gid``s a reader can check: ``heading:<practice>``, ``zone:<function>``, ``reading:<function>``.
    """
    plt = _matplotlib()
    from matplotlib.patches import Patch
    from matplotlib.ticker import PercentFormatter

    table, sides, unit_label, extra = _convergence_parts(table, sides, unit_label)
    layout = _dumbbell_rows(table)
    n_rows = len(layout)
    row_h = 0.34
    plot_w, left, right, top, bottom = 5.2, 2.0, 3.2, 0.6, 0.75
    fig = plt.figure(figsize=(left + plot_w + right, top + bottom + row_h * n_rows))
    fig.add_axes([0, 0, 1, 1])
    ax = fig.axes[0]
    ys = {}
    for k, (kind, name) in enumerate(layout):
        ys[(kind, name)] = n_rows - 1 - k
    ticks, tick_labels = [], []
    used_zones: set[str] = set()
    for (kind, name), y in ys.items():
        if kind == "heading":
            ax.text(0, y, PRACTICE_TITLES.get(name, f"Practice: {name}"), fontweight="bold", fontsize=9.5,
                    ha="left", va="center", gid=f"heading:{name}")
            continue
        row = table.loc[name]
        ticks.append(y)
        tick_labels.append(str(name))
        zone = _zone_kind(row.get("zone"))
        if zone:
            color, alpha, hatch, _ = _ZONE_STYLES[zone]
            ax.axhspan(y - 0.5, y + 0.5, facecolor=color, alpha=alpha, hatch=hatch, edgecolor=color if hatch else
                       "none", lw=0, zorder=0, gid=f"zone:{name}")
            used_zones.add(zone)
        shares = [_num(row, f"{s}_share") * 100 for s in sides]
        if all(np.isfinite(shares)):
            ax.plot(shares, [y, y], color="#bbbbbb", lw=1.2, zorder=1)
        for (color, marker, _sym), side, off, share in zip(_SIDE_STYLES, sides, (0.12, -0.12), shares):
            lo, hi = _num(row, f"{side}_low") * 100, _num(row, f"{side}_high") * 100
            if np.isfinite(lo) and np.isfinite(hi):
                ax.plot([lo, hi], [y + off, y + off], color=color, lw=2.2, alpha=0.8, zorder=2,
                        solid_capstyle="butt")
            if np.isfinite(share):
                ax.scatter([share], [y + off], color=color, marker=marker, s=42, zorder=3, edgecolors="white",
                           linewidths=0.6)
        note = _row_note(row)
        if note:
            ax.text(1.015, y, note, transform=ax.get_yaxis_transform(), fontsize=8, ha="left", va="center",
                    gid=f"reading:{name}", clip_on=False)
    ax.set_yticks(ticks, tick_labels, fontsize=8.5)
    ax.set_ylim(-0.6, n_rows - 0.4)
    ax.set_xlim(0, 100)
    ax.xaxis.set_major_formatter(PercentFormatter(100))
    ax.set_xlabel(unit_label)
    ax.grid(axis="x", color="#e5e5e5", lw=0.6)
    ax.set_axisbelow(True)
    for spine in ("top", "right"):
        ax.spines[spine].set_visible(False)
    ax.set_title(title, fontsize=11, loc="left")
    handles = [plt.Line2D([], [], color=c, marker=m, lw=2.2, label=f"{side}: {_what(table, side)}")
               for (c, m, _s), side in zip(_SIDE_STYLES, sides)]
    handles += [Patch(facecolor=_ZONE_STYLES[z][0], alpha=_ZONE_STYLES[z][1], hatch=_ZONE_STYLES[z][2],
                      edgecolor=_ZONE_STYLES[z][0] if _ZONE_STYLES[z][2] else "none", label=_ZONE_STYLES[z][3])
                for z in _ZONE_STYLES if z in used_zones]
    # axes placed in inches: the tick labels and notes are measured, then the margins fitted to them
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    tick_w = max((t.get_window_extent(renderer).width for t in ax.get_yticklabels()), default=0) / fig.dpi
    note_w = max((t.get_window_extent(renderer).width for t in ax.texts if str(t.get_gid()).startswith("reading:")),
                 default=0) / fig.dpi
    left, right = max(0.6, tick_w + 0.35), max(0.4, note_w + 0.35)
    legend_h = 0.2 * len(handles) + 0.25
    height = top + row_h * n_rows + bottom + legend_h
    width = left + plot_w + right
    fig.set_size_inches(width, height, forward=False)
    ax.set_position([left / width, (bottom + legend_h) / height, plot_w / width, row_h * n_rows / height])
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(0, -bottom / (row_h * n_rows)), ncol=1,
              fontsize=8, frameon=False, borderaxespad=0)
    fig.canvas.draw()
    add_note(fig, _dumbbell_note(table, sides, extra), gid="note")
    if caption:
        add_note(fig, caption, gid="caption")
    return fig


def dumbbell(table, sides: tuple[str, str] | None = None, unit_label: str | None = None, *, caption: str = "",
             title: str = "City Diplomacy - Public Diplomacy: the two profiles"):
    """The dumbbell chart of :func:`static_dumbbell` with plotly (for the app and the HTML report); hovering a dot
    gives the share, its interval and its count."""
    import plotly.graph_objects as go

    table, sides, unit_label, extra = _convergence_parts(table, sides, unit_label)
    layout = _dumbbell_rows(table)
    n_rows = len(layout)
    ys = {key: n_rows - 1 - k for k, key in enumerate(layout)}
    fig = go.Figure()
    shapes, annotations = [], []
    used_zones = set()
    rows = [(name, y) for (kind, name), y in ys.items() if kind == "row"]
    for (kind, name), y in ys.items():
        if kind == "heading":
            annotations.append(dict(x=0, y=y, xref="x", yref="y", showarrow=False, xanchor="left",
                                    text="<b>" + html.escape(PRACTICE_TITLES.get(name, f"Practice: {name}")) + "</b>"))
            continue
        row = table.loc[name]
        zone = _zone_kind(row.get("zone"))
        if zone:
            color, alpha, hatch, _ = _ZONE_STYLES[zone]
            shapes.append(dict(type="rect", xref="paper", yref="y", x0=0, x1=1, y0=y - 0.5, y1=y + 0.5,
                               fillcolor=color, opacity=alpha if not hatch else alpha / 2, line_width=0,
                               layer="below"))
            used_zones.add(zone)
        note = _row_note(row)
        if note:
            annotations.append(dict(x=1.01, y=y, xref="paper", yref="y", showarrow=False, xanchor="left",
                                    text=html.escape(note), font=dict(size=11)))
    for (color, _m, symbol), side, off in zip(_SIDE_STYLES, sides, (0.12, -0.12)):
        sub = table.loc[[name for name, _y in rows]]
        share = 100 * pd.to_numeric(sub[f"{side}_share"], errors="coerce")
        low = 100 * pd.to_numeric(sub.get(f"{side}_low", share / 100), errors="coerce")
        high = 100 * pd.to_numeric(sub.get(f"{side}_high", share / 100), errors="coerce")
        count = sub.get(f"{side}_n", pd.Series(np.nan, sub.index))
        hover = [html.escape(f"{name} - {side}: {s:.1f}% ({lo:.1f}-{hi:.1f}%), n = {n}")
                 for name, s, lo, hi, n in zip(sub.index, share, low, high, count)]
        fig.add_trace(go.Scatter(
            x=share, y=[y + off for _n, y in rows], mode="markers", name=html.escape(f"{side}: {_what(table, side)}"),
            marker=dict(color=color, symbol=symbol, size=9, line=dict(color="white", width=0.5)),
            error_x=dict(type="data", symmetric=False, array=(high - share).clip(lower=0),
                         arrayminus=(share - low).clip(lower=0), color=color, thickness=2, width=0),
            hovertext=hover, hoverinfo="text"))
    for zone in _ZONE_STYLES:
        if zone in used_zones:
            color, alpha, _h, text = _ZONE_STYLES[zone]
            fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=html.escape(text),
                                     marker=dict(symbol="square", size=14, color=color, opacity=alpha + 0.2)))
    wrapped = "<br>".join(html.escape(line) for line in textwrap.wrap(
        _dumbbell_note(table, sides, extra) + ("  " + caption if caption else ""), 150))
    legend_px = 70 + 20 * (len(sides) + len(used_zones))  # axis title, then one legend line per entry
    annotations.append(dict(x=0, y=0, xref="paper", yref="paper", yshift=-legend_px, showarrow=False,
                            xanchor="left", yanchor="top", align="left", text=wrapped, font=dict(size=11)))
    bottom = legend_px + 30 + 16 * (1 + wrapped.count("<br>"))
    height = 100 + 26 * n_rows + bottom
    fig.update_layout(title=html.escape(title), template="plotly_white", height=height, shapes=shapes,
                      annotations=annotations, margin=dict(r=300, b=bottom),
                      legend=dict(orientation="h", y=-0.08, yanchor="top"),
                      xaxis=dict(range=[0, 100], ticksuffix="%", title=html.escape(unit_label)),
                      yaxis=dict(tickvals=[y for _n, y in rows], ticktext=[html.escape(str(n)) for n, _y in rows],
                                 range=[-0.6, n_rows - 0.4], showgrid=False, zeroline=False))
    return fig


# ------------------------------------------------------------------------------------------------------------------
# The CA map (three or more groups)
# ------------------------------------------------------------------------------------------------------------------


@dataclass
class _Point:
    name: str
    side: str          # "row" or "col"
    series: str        # practice of a row ("public", "both", "city", ""), or "group"
    supplementary: bool
    x: float
    y: float
    weight: float      # contribution to the plane (%), NaN for supplementary points
    quality: float     # cos2 on the plane: orders supplementary points
    shown: bool = True  # drawn as a full marker (False: under the contribution filter, drawn faint)
    labelled: bool = True
    text: str = ""


def _plane_contribution(frame: pd.DataFrame, result) -> np.ndarray:
    """Contribution (%) of each point to the plane of dimensions 1-2: the eigenvalue-weighted mean of its
    contributions to each (factoextra's ``fviz_contrib(axes = 1:2)``); NaN for supplementary points."""
    k = min(2, result.n_components)
    eig = result.eigenvalues["eigenvalue"].to_numpy(float)[:k]
    parts = [frame.get(f"contrib_{j + 1}", pd.Series(np.nan, frame.index)).to_numpy(float) for j in range(k)]
    return sum(p * e for p, e in zip(parts, eig)) / eig.sum()


def _points(result, codebook, min_contribution, max_labels) -> tuple[list[_Point], list[str]]:
    """Every point of the map with its series, weight and whether it is labelled; notes for the caption."""
    out: list[_Point] = []
    for side, frame in (("row", result.rows), ("col", result.cols)):
        x, y = _xy(frame, result)
        contrib = _plane_contribution(frame, result)
        k = min(2, result.n_components)
        quality = sum(frame.get(f"cos2_{j + 1}", pd.Series(0.0, frame.index)).to_numpy(float) for j in range(k))
        for i, name in enumerate(frame.index):
            series = _practice(codebook, str(name)) if side == "row" else "group"
            out.append(_Point(str(name), side, series, bool(frame["supplementary"].iloc[i]), float(x[i]), float(y[i]),
                              float(contrib[i]), float(np.nan_to_num(quality[i]))))
    notes = []
    if min_contribution is not None:
        active = [p for p in out if not p.supplementary]
        for p in active:
            p.shown = p.labelled = bool(p.weight >= min_contribution)
        kept = sum(p.shown for p in active)
        notes.append(f"Labelled: the {kept} of {len(active)} active points contributing at least "
                     f"{min_contribution:g}% to the plane; the others are drawn faint, unlabelled.")
    candidates = [p for p in out if p.labelled]
    if max_labels is not None and len(candidates) > max_labels:
        ranked = sorted(candidates, key=_priority, reverse=True)
        for p in ranked[max_labels:]:
            p.labelled = False
        dropped = ranked[max_labels:]
        sup = sum(p.supplementary for p in dropped)
        notes.append(f"{len(dropped)} of {len(candidates)} points are drawn unlabelled ({sup} supplementary) to keep "
                     f"the map readable: the {max_labels} labelled are the active points by contribution, then "
                     "supplementary points by quality (cos2); every point is in the CSV tables.")
    return out, notes


def _priority(p: _Point) -> tuple:
    """Which labels to keep when not all fit: active before supplementary, then rows (the labels of the codebook)
    before groups, then by contribution (active) or quality of representation (supplementary)."""
    return (not p.supplementary, p.side == "row", np.nan_to_num(p.weight, nan=-1.0), p.quality)


def _group_codes(groups: list[_Point]) -> dict[str, str]:
    """Codes G1, G2 ... for the labelled groups, active ones first, each side in table order: short numbers on a
    map of a thousand groups, where only some are labelled."""
    ordered = [p for p in groups if p.labelled and not p.supplementary] + [p for p in groups
                                                                          if p.labelled and p.supplementary]
    return {p.name: f"G{i + 1}" for i, p in enumerate(ordered)}


def _series_legend(points: list[_Point]) -> list[tuple[str, str, str, bool]]:
    """(key, label, marker, hollow) of every series present, in a fixed order."""
    out = []
    for series in (*PRACTICE_ORDER, "", "group"):
        for sup in (False, True):
            if any(p.series == series and p.supplementary == sup for p in points):
                if series == "group":
                    count = sum(p.series == "group" and p.supplementary == sup for p in points)
                    label = "actor group" + (f" (supplementary, projected: {count})" if sup else f" (active: {count})")
                else:
                    label = (PRACTICE_TITLES[series].replace(" practice", "") + " function"
                             + (" (supplementary)" if sup else ""))
                out.append((series, label, "D" if series == "group" else PRACTICE_MARKERS.get(series, "o"), sup))
    return out


def _series_color(series: str, sup: bool) -> str:
    if series == "group":
        return _MAP_COLORS["group_sup" if sup else "group"]
    return _MAP_COLORS.get(series, _MAP_COLORS[""])


def _by_series(points: list[_Point]) -> dict[tuple[str, bool, bool], list[_Point]]:
    """Points by (series, supplementary, shown): one scatter per group of equal style."""
    out: dict[tuple[str, bool, bool], list[_Point]] = {}
    for p in points:
        out.setdefault((p.series, p.supplementary, p.shown), []).append(p)
    return out


def _draw_map(points, result, ellipses, title, *, size, codes, one_dim):
    """One attempt at the static map at ``size`` (inches of the map area): markers, labels placed by
    :func:`repel`, leader lines. Returns (figure, axes, label texts, points labelled, repel succeeded)."""
    plt = _matplotlib()
    map_w, map_h = size
    legend_w = 2.6
    left, bottom, top = 0.9, 0.75, 0.55
    fig = plt.figure(figsize=(left + map_w + legend_w, bottom + map_h + top), dpi=100)
    ax = fig.add_axes([left / (left + map_w + legend_w), bottom / (bottom + map_h + top),
                       map_w / (left + map_w + legend_w), map_h / (bottom + map_h + top)])
    # many supplementary points (groups by issuer: hundreds) are drawn small and light, under the active ones,
    # so that the active points and the labels are not lost in a blob
    crowd = sum(p.supplementary for p in points) > _CROWD
    for (series, sup, shown), pts in _by_series(points).items():
        color = _series_color(series, sup)
        marker = "D" if series == "group" else PRACTICE_MARKERS.get(series, "o")
        size_pt = (55 if series == "group" else 45) if shown else 14
        light = sup and crowd
        ax.scatter([p.x for p in pts], [p.y for p in pts], marker=marker, s=16 if light else size_pt,
                   zorder=2 if sup else 3, facecolors="none" if sup else color, edgecolors=color,
                   linewidths=0.7 if light else 1.1, alpha=0.45 if light else (1.0 if shown else 0.35),
                   gid=f"points:{series or 'label'}:{'sup' if sup else 'active'}")
    if ellipses is not None and not ellipses.empty and not one_dim:
        for (kind, _name), pts in ellipses.groupby(["kind", "name"], sort=False):
            ax.plot(pts["x"], pts["y"], lw=0.8, ls=":", zorder=2,
                    color=_MAP_COLORS["group"] if kind == "col" else _MAP_COLORS["both"])
    ax.axhline(0, color="#999", lw=0.7, zorder=1)
    ax.axvline(0, color="#999", lw=0.7, zorder=1)
    ax.set_xlabel(_pct(result, 0))
    if one_dim:
        ax.set_yticks([])
        ax.set_ylabel("")
        for spine in ("left", "right", "top"):
            ax.spines[spine].set_visible(False)
        ax.set_ylim(-1, 1)
        xs = np.array([p.x for p in points])
        span = float(xs.max() - xs.min()) or 1.0
        ax.set_xlim(xs.min() - 0.08 * span, xs.max() + 0.08 * span)
    else:
        ax.set_ylabel(_pct(result, 1))
        ax.set_aspect("equal", adjustable="datalim")
        ax.margins(0.08)
    ax.set_title(title, fontsize=11, loc="left")
    handles = [plt.Line2D([], [], marker=m, ls="", markersize=7, color=_series_color(s, sup),
                          markerfacecolor="none" if sup else _series_color(s, sup), label=lab)
               for s, lab, m, sup in _series_legend(points)]
    if any(not p.shown for p in points):
        handles.append(plt.Line2D([], [], marker="o", ls="", markersize=4, color="#999", alpha=0.5,
                                  label="under the contribution filter"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False,
              borderaxespad=0)
    fig.canvas.draw()  # fixes the limits (equal aspect) before the labels are placed in display units
    legend = ax.get_legend().get_window_extent(fig.canvas.get_renderer())
    spill = (legend.x1 - fig.bbox.x1) / fig.dpi + 0.2
    if spill > 0:
        _grow_right(fig, spill)
        fig.canvas.draw()
    ax.set_xlim(ax.get_xlim())
    ax.set_ylim(ax.get_ylim())
    ax.set_autoscale_on(False)
    renderer = fig.canvas.get_renderer()

    labelled = [p for p in points if p.labelled]
    texts = []
    for i, p in enumerate(labelled):
        color = _series_color(p.series, p.supplementary)
        text = codes.get(p.name, _wrap(p.name)) if p.side == "col" else _wrap(p.name)
        p.text = text
        texts.append(ax.text(p.x, p.y, text, fontsize=8 if p.side == "row" else 8.5, ha="center", va="center",
                             color="#333333" if p.supplementary else color, zorder=5, gid=f"label:{p.side}:{i}",
                             fontweight="bold" if p.side == "col" and not p.supplementary else "normal",
                             linespacing=1.0))
    if not texts:
        return fig, ax, texts, labelled, True
    to_display = ax.transData.transform
    anchors = to_display(np.array([[p.x, p.y] for p in labelled]))
    every = to_display(np.array([[p.x, p.y] for p in points]))
    boxes = [t.get_window_extent(renderer) for t in texts]
    sizes = np.array([[b.width, b.height] for b in boxes])
    # a text's box centre is not exactly its anchor (descenders): remember the offset to place boxes exactly
    offset = np.array([[(b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2] for b in boxes]) - anchors
    frame = ax.get_window_extent(renderer)
    bounds = (frame.x0 + 2, frame.y0 + 2, frame.x1 - 2, frame.y1 - 2)
    centres, ok = repel(anchors, sizes, bounds, points=every, point_radius=5.5, pad=2.5, free_x=not one_dim)
    back = ax.transData.inverted().transform
    for t, c, o in zip(texts, centres, offset):
        t.set_position(back(c - o))
    # leader lines from a moved label to its point: to the nearest point of the label's box
    for t, a, c, (w, h), p in zip(texts, anchors, centres, sizes, labelled):
        near = np.clip(a, c - [w / 2, h / 2], c + [w / 2, h / 2])
        if np.hypot(*(near - a)) > 9:
            start = a + (near - a) * 4.5 / max(np.hypot(*(near - a)), 1e-9)  # from the marker's edge
            (x0, y0), (x1, y1) = back(start), back(near)
            ax.plot([x0, x1], [y0, y1], color=_series_color(p.series, p.supplementary), lw=0.6, alpha=0.7,
                    zorder=4)
    fig.canvas.draw()
    inside = all(frame.x0 - 0.5 <= b.x0 and b.x1 <= frame.x1 + 0.5 and frame.y0 - 0.5 <= b.y0
                 and b.y1 <= frame.y1 + 0.5 for b in (t.get_window_extent(renderer) for t in texts))
    return fig, ax, texts, labelled, ok and inside and not text_overlaps(texts, renderer)


def static_biplot(result, codebook=None, *, ellipses: pd.DataFrame | None = None,
                  title: str = "City Diplomacy - Public Diplomacy diagram", caption: str = "", codes: bool = False,
                  min_contribution: float | None = None, max_label_chars: int | None = None,
                  max_labels: int | None = 60):
    """The symmetric CA map with matplotlib, for PNG, SVG and PDF. **No two labels overlap**: checked with the
    renderer's bounding boxes after placement, whatever the data.

    Labels are full names (long ones wrapped on several lines, never cut) placed by :func:`repel`, with a leader
    line when moved away from their point. When the labels cannot all be placed apart, the figure falls back, in
    order, to: a larger map; short codes G1, G2 ... for the actor groups with a key under the map holding every
    full name; a larger map again; and last, leaving out the least important overlapping labels (said in the
    caption). ``codes=True`` uses the codes from the start; ``max_label_chars`` gives codes to the groups whose name
    is longer. ``min_contribution`` (%) labels only the active points contributing at least that much to the plane
    (the others are drawn faint; the caption says so); ``max_labels`` caps the labels (active points first).

    Series: each label practice and the actor groups have their own colour and marker; supplementary points are
    hollow. A one-dimensional solution (two groups) is drawn as a strip along Dim 1 with the labels spread
    vertically, and a note points to the dumbbell chart, which is the better figure for two groups.
    Label texts carry ``gid`` ``label:<row|col>:<i>``; the key and the caption ``key`` and ``caption``.
    """
    one_dim = result.n_components < 2
    points, notes = _points(result, codebook, min_contribution, max_labels)
    groups = [p for p in points if p.side == "col"]
    all_codes = _group_codes(groups)
    wanted = {name: c for name, c in all_codes.items()
              if codes or (max_label_chars is not None and len(name) > max_label_chars)}
    n_labels = sum(p.labelled for p in points)
    base = (7.5, 2.2 + 0.05 * n_labels) if one_dim else (7.5, 6.5)
    larger, largest = (base[0] * 1.35, base[1] * 1.35), (base[0] * 1.8, base[1] * 1.8)
    attempts = [(base, wanted), (larger, wanted)]
    # names that make a label too big whatever the size (many lines, or one word longer than a line): codes first
    bulky = {**wanted, **{name: code for name, code in all_codes.items()
                          if len(name) > 3 * _LABEL_WRAP or max(map(len, name.split() or [""])) > 40}}
    if len(wanted) < len(bulky) < len(all_codes):
        attempts.append((larger, bulky))
    if len(wanted) < len(all_codes):
        attempts += [(larger, all_codes), (largest, all_codes)]
    else:
        attempts += [(largest, wanted)]
    for k, (size, used_codes) in enumerate(attempts):
        fig, ax, texts, labelled, ok = _draw_map(points, result, ellipses, title, size=size, codes=used_codes,
                                                 one_dim=one_dim)
        if ok:
            break
        if k < len(attempts) - 1:
            _matplotlib().close(fig)
    else:  # the last attempt is kept: drop the least important label of each overlapping pair until none overlap
        renderer = fig.canvas.get_renderer()
        boxes = [t.get_window_extent(renderer) for t in texts]
        gone: set[int] = set()
        kept: list = []
        # most important first: a label is kept unless it overlaps one kept before it
        frame = ax.get_window_extent(renderer)
        for k in sorted(range(len(texts)), key=lambda k: _priority(labelled[k]), reverse=True):
            box = boxes[k]
            outside = not (frame.x0 - 0.5 <= box.x0 and box.x1 <= frame.x1 + 0.5 and frame.y0 - 0.5 <= box.y0
                           and box.y1 <= frame.y1 + 0.5)
            if outside or any(_bbox_pairs([box, other]) for other in kept):
                gone.add(k)
            else:
                kept.append(box)
        dropped = [labelled[k] for k in sorted(gone)]
        for k in sorted(gone, reverse=True):
            texts[k].remove()
            labelled[k].labelled = False
            del texts[k], labelled[k]
        notes.append(f"{len(dropped)} label(s) left out where the map is too crowded to place them apart: "
                     + ", ".join(p.name for p in dropped) + ".")
    if one_dim:
        notes.insert(0, "Two groups give a single dimension: the map is a strip along Dim 1 (labels spread "
                        "vertically only to be read). The dumbbell chart compares the two groups directly.")
    key = {p.name: used_codes[p.name] for p in labelled if p.side == "col" and p.name in used_codes}
    fig._cdpd_labels = texts
    fig._cdpd_key = key
    if key:
        ordered = sorted(key.items(), key=lambda item: int(item[1][1:]))
        add_note(fig, "Key: " + "; ".join(f"{code} = {name}" for name, code in ordered), gid="key")
    text = " ".join(filter(None, [caption.strip(), *notes]))
    if text:
        add_note(fig, text, gid="caption")
    return fig


def _estimate_sizes(texts: Sequence[str], font_px: float) -> np.ndarray:
    """Text box sizes (px) of plotly labels, estimated (plotly has no renderer here): 0.6 em per character."""
    out = []
    for text in texts:
        lines = text.split("<br>")
        out.append([max(len(html.unescape(line)) for line in lines) * 0.6 * font_px + 4, len(lines) * 1.25 * font_px])
    return np.array(out, float).reshape(-1, 2)


def biplot(result, codebook=None, *, ellipses: pd.DataFrame | None = None,
           title: str = "City Diplomacy - Public Diplomacy diagram", caption: str = "", codes: bool = False,
           min_contribution: float | None = None, max_label_chars: int | None = None, max_labels: int | None = 40):
    """A plotly symmetric CA map for the app and the HTML report, with the series and filters of
    :func:`static_biplot`.

    Labels are full names (wrapped, never cut) placed with :func:`repel` on estimated text sizes at the nominal
    figure size and drawn as annotations with a leader arrow when moved; hovering any point gives its full name.
    On crowded maps (more than ``max_labels`` candidates) the least important points are hover-only: the static
    map (PNG, SVG, PDF) places every label it can with the renderer's measures. A one-dimensional solution is drawn
    as a strip along Dim 1.
    """
    import plotly.graph_objects as go

    one_dim = result.n_components < 2
    points, notes = _points(result, codebook, min_contribution, max_labels)
    groups = [p for p in points if p.side == "col"]
    codes_of = {name: c for name, c in _group_codes(groups).items()
                if codes or (max_label_chars is not None and len(name) > max_label_chars)}
    fig = go.Figure()
    crowd = sum(p.supplementary for p in points) > _CROWD
    for series, label, _m, sup in _series_legend(points):
        pts = [p for p in points if p.series == series and p.supplementary == sup]
        symbol = "diamond" if series == "group" else PRACTICE_SYMBOLS.get(series, "circle")
        color = _series_color(series, sup)
        light = sup and crowd  # hundreds of projected groups: small and light, under the active points
        fig.add_trace(go.Scatter(
            x=[p.x for p in pts], y=[p.y for p in pts], mode="markers", name=html.escape(label),
            hovertext=[html.escape(p.name) + (f" ({codes_of[p.name]})" if p.name in codes_of else "")
                       + (f"<br>contribution to the plane {p.weight:.1f}%" if np.isfinite(p.weight) else "")
                       for p in pts], hoverinfo="text",
            marker=dict(symbol=symbol + ("-open" if sup else ""),
                        size=[6 if light or not p.shown else 11 for p in pts], color=color,
                        opacity=0.5 if light else 1.0, line=dict(color=color, width=0.8 if light else 1.2))))
    if ellipses is not None and not ellipses.empty and not one_dim:
        for (kind, name), pts in ellipses.groupby(["kind", "name"], sort=False):
            fig.add_trace(go.Scatter(x=pts["x"], y=pts["y"], mode="lines", showlegend=False, hoverinfo="skip",
                                     line=dict(width=1, dash="dot",
                                               color=_MAP_COLORS["group"] if kind == "col" else _MAP_COLORS["both"])))
    # label placement at the nominal plot area (width x height px) of an equal-aspect map
    width, height = (760, 320) if one_dim else (680, 560)
    xs = np.array([p.x for p in points])
    ys = np.array([p.y for p in points])
    xr = [xs.min(), xs.max()]
    yr = [ys.min(), ys.max()] if not one_dim else [-1, 1]
    pad_x = 0.1 * ((xr[1] - xr[0]) or 1)
    pad_y = 0.1 * ((yr[1] - yr[0]) or 1)
    xr, yr = [xr[0] - pad_x, xr[1] + pad_x], [yr[0] - pad_y, yr[1] + pad_y]
    if not one_dim:  # equal units: widen the range that is short for the aspect of the plot area
        scale = max((xr[1] - xr[0]) / width, (yr[1] - yr[0]) / height)
        mid_x, mid_y = sum(xr) / 2, sum(yr) / 2
        xr = [mid_x - scale * width / 2, mid_x + scale * width / 2]
        yr = [mid_y - scale * height / 2, mid_y + scale * height / 2]
    to_px = lambda x, y: np.column_stack([(np.asarray(x) - xr[0]) / (xr[1] - xr[0]) * width,  # noqa: E731
                                          (np.asarray(y) - yr[0]) / (yr[1] - yr[0]) * height])
    if crowd:  # hundreds of projected groups: hover-only here (the static map labels what fits)
        hidden = [p for p in points if p.labelled and p.supplementary]
        for p in hidden:
            p.labelled = False
        if hidden:
            notes.append(f"The {sum(p.supplementary for p in points)} supplementary groups are hover-only here; the "
                         "static figure (PNG, SVG, PDF) labels those that fit.")
    labelled = [p for p in points if p.labelled]
    texts = ["<br>".join(html.escape(line) for line in
                         (codes_of.get(p.name) or _wrap(p.name)).split("\n")) for p in labelled]
    annotations = []
    if labelled:
        anchors = to_px([p.x for p in labelled], [p.y for p in labelled])
        sizes = _estimate_sizes(texts, 11)
        centres, ok = repel(anchors, sizes, (0, 0, width, height), points=to_px(xs, ys), point_radius=6, pad=3,
                            free_x=not one_dim)
        if not ok:  # as the static map's last resort: the least important overlapping labels go hover-only
            kept, keep = [], []
            for k in sorted(range(len(labelled)), key=lambda k: _priority(labelled[k]), reverse=True):
                lo, hi = centres[k] - sizes[k] / 2, centres[k] + sizes[k] / 2
                if all((np.minimum(hi, h) <= np.maximum(lo, l)).any() for l, h in kept):
                    kept.append((lo, hi))
                    keep.append(k)
            if len(keep) < len(labelled):
                notes.append(f"{len(labelled) - len(keep)} label(s) are hover-only where the map is crowded.")
            keep.sort()
            labelled, texts, anchors, centres = ([labelled[k] for k in keep], [texts[k] for k in keep],
                                                 anchors[keep], centres[keep])
        for p, text, a, c in zip(labelled, texts, anchors, centres):
            moved = np.hypot(*(c - a)) > 14
            cx = xr[0] + c[0] / width * (xr[1] - xr[0])
            cy = yr[0] + c[1] / height * (yr[1] - yr[0])
            annotations.append(dict(
                x=p.x, y=p.y, ax=cx, ay=cy, axref="x", ayref="y", text=text, showarrow=bool(moved),
                arrowhead=0, arrowwidth=0.7, arrowcolor=_series_color(p.series, p.supplementary), standoff=5,
                font=dict(size=11, color=_series_color(p.series, p.supplementary)), bgcolor="rgba(255,255,255,0.6)")
                if moved else dict(x=cx, y=cy, xref="x", yref="y", text=text, showarrow=False,
                                   font=dict(size=11, color=_series_color(p.series, p.supplementary)),
                                   bgcolor="rgba(255,255,255,0.6)"))
    if one_dim:
        notes.insert(0, "Two groups give a single dimension: a strip along Dim 1; the dumbbell chart compares the "
                        "two groups directly.")
    key = [f"{c} = {n}" for n, c in codes_of.items()]
    foot = " ".join(filter(None, [caption.strip(), *notes, ("Key: " + "; ".join(key)) if key else ""]))
    lines = textwrap.wrap(foot, 160)
    if lines:
        annotations.append(dict(x=0, y=0, xref="paper", yref="paper", yshift=-60, showarrow=False, xanchor="left",
                                yanchor="top", align="left", text="<br>".join(html.escape(l) for l in lines),
                                font=dict(size=11)))
    # the figure is drawn at the size the labels were placed for: a fixed width (shown at that width, not
    # stretched to the container) and the legend above the plot, so that the plot area is width x height px
    fig.update_layout(title=dict(text=html.escape(title), y=0.99, yanchor="top"), template="plotly_white",
                      width=width + 80 + 40, height=height + 200 + 16 * len(lines), annotations=annotations,
                      margin=dict(l=80, r=40, t=120, b=80 + 16 * len(lines)),
                      legend=dict(orientation="h", x=0, y=1.02, xanchor="left", yanchor="bottom"),
                      xaxis=dict(title=_pct(result, 0), range=xr, zeroline=False),
                      yaxis=dict(title="" if one_dim else _pct(result, 1), range=yr, zeroline=False,
                                 showticklabels=not one_dim))
    fig.add_hline(y=0, line_width=1, line_color="#999")
    if not one_dim:
        fig.add_vline(x=0, line_width=1, line_color="#999")
        fig.update_yaxes(scaleanchor="x", scaleratio=1)
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
