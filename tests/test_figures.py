"""Figures and exports (issue 14, items 2 and 4): labels of the CA map never overlap (bounding boxes measured with
the renderer), names are never cut, two sides are drawn as a dumbbell, exports are vector or 300 dpi and carry
their caption, and series styles stay distinct for 14+ series."""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from nlp.analysis.ca import correspondence_analysis
from nlp.analysis import figures
from nlp.analysis.figures import biplot, dumbbell, series_colors, static_biplot, static_dumbbell
from nlp.analysis.report import export, export_figure

#: The default workspace of the project (read only); the real-data checks skip when it is absent.
WORKSPACE = Path(os.environ.get("CDPD_FIGURES_WORKSPACE", "/work/main/workspace"))
CAPTION = ("Model linear@1a2b3c4d (held-out micro-F1 0.62); unit: documents; sides: city vs state; "
           "N = 512 city and 2,110 state documents.")
ACTIVE = 15


# ------------------------------------------------------------------------------------------------------------------
# Helpers: geometry read back from the renderer, hand-built convergence tables
# ------------------------------------------------------------------------------------------------------------------


def _overlapping(boxes) -> list[tuple[int, int]]:
    """Pairs of boxes (matplotlib Bbox) with a common area (touching edges do not count)."""
    out = []
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            a, b = boxes[i], boxes[j]
            if min(a.x1, b.x1) > max(a.x0, b.x0) and min(a.y1, b.y1) > max(a.y0, b.y0):
                out.append((i, j))
    return out


def _labels(fig):
    return [t for ax in fig.axes for t in ax.texts if str(t.get_gid()).startswith("label:")]


def _note(fig, gid: str) -> str:
    texts = [t.get_text() for t in fig.texts if t.get_gid() == gid]
    return " ".join(" ".join(texts).split())


def _check_map(fig, result, tmp_path: Path, name: str) -> None:
    """The exported map: no two labels overlap, each inside the map and off the legend; every label a full name
    (wrapped, not cut) or a code whose key gives the full name."""
    export_figure(fig, tmp_path / f"{name}.png")
    renderer = fig.canvas.get_renderer()
    texts = _labels(fig)
    assert texts, "the map has labels"
    boxes = [t.get_window_extent(renderer) for t in texts]
    assert _overlapping(boxes) == [], [(texts[i].get_text(), texts[j].get_text())
                                       for i, j in _overlapping(boxes)]
    ax = texts[0].axes
    frame = ax.get_window_extent(renderer)
    for box in boxes:
        assert frame.x0 - 0.5 <= box.x0 and box.x1 <= frame.x1 + 0.5
        assert frame.y0 - 0.5 <= box.y0 and box.y1 <= frame.y1 + 0.5
    legend = ax.get_legend().get_window_extent(renderer)
    assert [pair for pair in _overlapping([legend, *boxes]) if pair[0] == 0] == []
    names = {str(n) for n in result.rows.index} | {str(n) for n in result.cols.index}
    key = _note(fig, "key")
    for t in texts:
        text = " ".join(t.get_text().split())
        assert "…" not in text and "..." not in text
        if text not in names:
            assert re.fullmatch(r"G\d+", text), text
            match = re.search(rf"(?:^|; |Key: ){text} = (.*?)(?=; G\d+ = |$)", key)
            assert match and match.group(1) in names, (text, key[:200])


def _crowded(n_groups: int = 60, seed: int = 3, codebook=None) -> tuple:
    """A synthetic labels x groups table that crowds the map: similar profiles, long names (one of 200 characters,
    one of a single 45-character word), the ``ACTIVE`` groups of largest mass active and the rest supplementary."""
    rng = np.random.default_rng(seed)
    rows = codebook.labels("functions") if codebook is not None else [f"function_{i}" for i in range(14)]
    names = [f"Ministry of Foreign Affairs and International Cooperation, delegation {i}" for i in range(n_groups)]
    names[1] = "U.S. Department of State press releases (RSS archive), " + "x" * 145
    names[2] = "Supercalifragilisticexpialidocious-delegation-of-Nowhere"
    names[3] = "EU"
    base = rng.gamma(2.0, 1.0, size=(len(rows), 1))
    counts = rng.poisson(base * rng.gamma(4.0, 1.0, size=(1, n_groups)) * 4 + 0.5)
    table = pd.DataFrame(counts, index=rows, columns=names)
    return _top_active(table)


def _top_active(table: pd.DataFrame, active: int = ACTIVE):
    mass = table.sum().sort_values(ascending=False, kind="stable")
    sup = [c for c in mass.index[active:]]
    return table, correspondence_analysis(table, sup_cols=sup)


def _convergence(sides=("city", "state"), codebook=None) -> pd.DataFrame:
    """A convergence table shaped as the stats side writes it (hand-built: no statistics here)."""
    a, b = sides
    functions = codebook.labels("functions")
    rng = np.random.default_rng(0)
    rows = []
    for k, f in enumerate(functions):
        practice = codebook.label(f).practice
        sa, sb = rng.uniform(0.02, 0.7), rng.uniform(0.02, 0.7)
        zone = {"public": "", "both": "expected overlap", "city": f"intervention space: {a}"}[practice]
        if k == 0:
            zone = f"intervention space: {b}"
        rows.append({"practice": practice, "amiri": "overlap", f"{a}_share": sa, f"{a}_low": sa * 0.8,
                     f"{a}_high": sa * 1.2, f"{a}_n": 400, f"{b}_share": sb, f"{b}_low": sb * 0.9,
                     f"{b}_high": min(sb * 1.1, 1.0), f"{b}_n": 2000, "difference": sa - sb,
                     "difference_low": sa - sb - 0.05, "difference_high": sa - sb + 0.05, "p_value": 0.01,
                     "p_adjusted": 0.04, "reading": "convergent" if abs(sa - sb) < 0.1 else
                     (f"{a}-led" if sa > sb else f"{b}-led"), "zone": zone})
    table = pd.DataFrame(rows, index=pd.Index(functions, name="functions"))
    both = table.index[table["practice"] == "both"]
    table.loc[both[0], "zone"] = "expected overlap, not observed"
    return table


def _conv_object(codebook, sides=("city", "state")):
    return SimpleNamespace(table=_convergence(sides, codebook), sides=sides, alpha=0.05,
                           unit_label="share of documents carrying the function")


# ------------------------------------------------------------------------------------------------------------------
# The no-overlap guarantee
# ------------------------------------------------------------------------------------------------------------------


def test_overlap_check_is_not_vacuous(codebook, tmp_path):
    """The checker itself finds overlaps: labels left on their points (no repel) do overlap on a crowded map."""
    table, result = _crowded(codebook=codebook)
    plt = figures._matplotlib()
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    texts = [ax.text(x, y, str(n), fontsize=8) for n, x, y in
             zip(result.cols.index, result.cols["coord_1"], result.cols["coord_2"])]
    ax.set_xlim(result.cols["coord_1"].min(), result.cols["coord_1"].max())
    ax.set_ylim(result.cols["coord_2"].min(), result.cols["coord_2"].max())
    fig.canvas.draw()
    assert _overlapping([t.get_window_extent(fig.canvas.get_renderer()) for t in texts])
    plt.close(fig)


@pytest.mark.parametrize("n_groups", [8, 60])
def test_crowded_synthetic_map_has_no_overlapping_labels(codebook, tmp_path, n_groups):
    table, result = _crowded(n_groups, codebook=codebook)
    fig = static_biplot(result, codebook, title="synthetic", caption=CAPTION)
    _check_map(fig, result, tmp_path, f"crowded{n_groups}")
    if n_groups == 8:  # few groups: full names, long ones wrapped on several lines (never cut); codes only for
        # the names no label can hold (145 characters with no space, a 57-character word)
        texts = [t.get_text() for t in _labels(fig)]
        assert any("\n" in t for t in texts)
        coded = re.findall(r"G(\d+) = ", _note(fig, "key"))
        assert {result.cols.index[int(k) - 1] for k in coded} <= set(result.cols.index[1:3])
    assert " ".join(CAPTION.split()) in _note(fig, "caption")
    figures._matplotlib().close(fig)


def test_codes_give_a_key_with_every_full_name(codebook, tmp_path):
    table, result = _crowded(20, codebook=codebook)
    fig = static_biplot(result, codebook, codes=True)
    texts = [" ".join(t.get_text().split()) for t in _labels(fig)]
    coded = [t for t in texts if re.fullmatch(r"G\d+", t)]
    assert coded, "codes=True labels the groups with codes"
    key = dict(re.findall(r"(G\d+) = (.*?)(?=; G\d+ = |$)", _note(fig, "key").removeprefix("Key: ")))
    assert set(coded) <= set(key) and set(key.values()) <= set(result.cols.index)
    active = [str(n) for n in result.cols.index[~result.cols["supplementary"]]]
    assert [key[f"G{i + 1}"] for i in range(len(active))] == active  # active groups first, in table order
    assert not any(str(n) in texts for n in result.cols.index)  # groups only by code
    _check_map(fig, result, tmp_path, "codes")
    figures._matplotlib().close(fig)


def test_last_resort_leaves_labels_out_and_says_so(codebook, tmp_path, monkeypatch):
    """When placement fails at every size (repel disabled here), the map still has no overlap: the least important
    labels are left out and the caption names them."""
    monkeypatch.setattr(figures, "repel", lambda anchors, sizes, bounds, **kw: (np.asarray(anchors, float), False))
    table, result = _crowded(40, codebook=codebook)
    fig = static_biplot(result, codebook)
    _check_map(fig, result, tmp_path, "fallback")
    caption = _note(fig, "caption")
    assert "left out where the map is too crowded" in caption
    figures._matplotlib().close(fig)


def test_two_groups_draw_a_strip_not_a_plane(codebook, tmp_path):
    rng = np.random.default_rng(5)
    rows = codebook.labels("functions")
    table = pd.DataFrame(rng.poisson(30, size=(len(rows), 2)), index=rows, columns=["city", "national"])
    result = correspondence_analysis(table)
    assert result.n_components == 1
    fig = static_biplot(result, codebook, caption=CAPTION)
    _check_map(fig, result, tmp_path, "strip")
    ax = _labels(fig)[0].axes
    assert list(ax.get_yticks()) == [] and "dumbbell" in _note(fig, "caption")
    # every point sits on the line y = 0 (labels move vertically only)
    for coll in ax.collections:
        if str(coll.get_gid()).startswith("points:"):
            assert np.allclose(coll.get_offsets()[:, 1], 0)
    plotly_fig = biplot(result, codebook)
    assert plotly_fig.layout.yaxis.showticklabels is False
    assert any("single dimension" in (a.text or "") for a in plotly_fig.layout.annotations)
    figures._matplotlib().close(fig)


def test_min_contribution_filters_labels_and_says_so(codebook, tmp_path):
    table, result = _crowded(12, codebook=codebook)
    fig = static_biplot(result, codebook, min_contribution=8.0)
    contrib = {str(n): v for side in (result.rows, result.cols)
               for n, v in zip(side.index, figures._plane_contribution(side, result))}
    sup = set(map(str, result.cols.index[result.cols["supplementary"]]))
    for text in (" ".join(t.get_text().split()) for t in _labels(fig)):
        if text in contrib and text not in sup:
            assert contrib[text] >= 8.0, text
    assert "at least 8% to the plane" in _note(fig, "caption")
    figures._matplotlib().close(fig)


@pytest.fixture(scope="module")
def tagged_workspace(tmp_path_factory, shipped_documents, classify_workspace):
    """The default workspace when there is one (``make run`` builds it; CDPD_FIGURES_WORKSPACE names another);
    otherwise, as in CI, real documents of every shipped source classified with the session's trained model."""
    from nlp.workspace import DB_FILE, Workspace

    if (WORKSPACE / DB_FILE).exists():
        return WORKSPACE
    home = tmp_path_factory.mktemp("figures_ws")
    with Workspace(home) as ws:
        ws.add_documents(shipped_documents)
    classify_workspace(home)
    return home


@pytest.mark.parametrize("by", ["source", "issuer_type", "issuer"])
def test_real_workspace_maps_have_no_overlapping_labels(codebook, tmp_path, by, tagged_workspace):
    from nlp.analysis.tables import label_table, resolve_model
    from nlp.workspace import Workspace

    with Workspace(tagged_workspace, create=False) as ws:
        model = resolve_model(ws, None)
        table = label_table(ws, model, axis="functions", by=by)
    table = table.loc[table.sum(axis=1) > 0, table.sum(axis=0) > 0]
    assert table.shape[1] >= 2, f"fewer than two {by} groups with tags"
    table, result = _top_active(table)
    fig = static_biplot(result, codebook, title=f"functions by {by}", caption=CAPTION)
    _check_map(fig, result, tmp_path, by)
    figures._matplotlib().close(fig)


def test_plotly_map_keeps_full_escaped_names(codebook):
    table, result = _crowded(10, codebook=codebook)
    table = table.rename(columns={table.columns[0]: "<b>Mayor's office & council</b>"})
    table, result = _top_active(table, 6)
    fig = biplot(result, codebook)
    texts = [a.text for a in fig.layout.annotations if a.text]
    assert any("&lt;b&gt;Mayor&#x27;s office &amp; council&lt;/b&gt;" in t.replace("<br>", " ") for t in texts)
    assert not any("<b>Mayor" in t for t in texts)
    assert not any("…" in t for t in texts)
    # every series in the legend is distinct (colour or symbol)
    styles = [(tr.marker.color, tr.marker.symbol) for tr in fig.data if tr.mode == "markers"]
    assert len(styles) == len(set(styles)) >= 3


# ------------------------------------------------------------------------------------------------------------------
# The dumbbell
# ------------------------------------------------------------------------------------------------------------------


def test_static_dumbbell_rows_groups_and_zones(codebook):
    conv = _conv_object(codebook)
    table = conv.table
    fig = static_dumbbell(conv, caption=CAPTION)
    ax = fig.axes[0]
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert sorted(ticks) == sorted(table.index) and len(ticks) == len(set(ticks)) == len(table)
    y_of = dict(zip(ticks, ax.get_yticks()))
    # grouped by practice, top to bottom public, both, city; each heading just above its rows
    order = {"public": 0, "both": 1, "city": 2}
    top_down = sorted(ticks, key=lambda f: -y_of[f])
    ranks = [order[table.loc[f, "practice"]] for f in top_down]
    assert ranks == sorted(ranks)
    headings = {t.get_gid().split(":", 1)[1]: t.get_position()[1] for t in ax.texts
                if str(t.get_gid()).startswith("heading:")}
    assert set(headings) == set(table["practice"])
    for practice, y in headings.items():
        rows = [y_of[f] for f in table.index[table["practice"] == practice]]
        assert y == max(rows) + 1
    # zones: a band for each row with a zone, intervention space in its own colour
    bands = {p.get_gid().split(":", 1)[1]: p for p in ax.patches if str(p.get_gid()).startswith("zone:")}
    assert set(bands) == set(table.index[table["zone"] != ""])
    intervention = set(table.index[table["zone"].str.startswith("intervention space")])
    assert intervention and intervention <= set(bands)
    colour = {f: tuple(np.round(bands[f].get_facecolor()[:3], 3)) for f in bands}
    assert {colour[f] for f in intervention}.isdisjoint({colour[f] for f in set(bands) - intervention})
    # readings at the row's end, and the axis
    readings = {t.get_gid().split(":", 1)[1]: t.get_text() for t in ax.texts
                if str(t.get_gid()).startswith("reading:")}
    for f in table.index:
        assert readings[f].startswith(table.loc[f, "reading"])
        if table.loc[f, "zone"]:
            assert table.loc[f, "zone"] in readings[f]
    assert ax.get_xlim() == (0, 100) and ax.get_xlabel() == conv.unit_label
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("city") for t in legend) and any(t.startswith("state") for t in legend)
    assert any("intervention space" in t for t in legend) and any("expected overlap" in t for t in legend)
    assert " ".join(CAPTION.split()) in _note(fig, "caption")
    figures._matplotlib().close(fig)


def test_dumbbell_duck_typing_and_plotly(codebook):
    conv = _conv_object(codebook, sides=("municipal", "federal"))
    fig = static_dumbbell(conv.table, conv.sides, conv.unit_label)  # table, sides, unit_label
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()][:2] == [
        "municipal: share and interval", "federal: share and interval"]
    figures._matplotlib().close(fig)
    pfig = dumbbell(conv)
    sides = [tr for tr in pfig.data if tr.name and tr.name.endswith("share and interval")]
    assert [tr.name.split(":")[0] for tr in sides] == ["municipal", "federal"]
    for tr, side in zip(sides, conv.sides):
        assert len(tr.x) == len(conv.table)
        assert np.allclose(sorted(tr.x), sorted(100 * conv.table[f"{side}_share"]))
    assert len(pfig.layout.shapes) == int((conv.table["zone"] != "").sum())
    with pytest.raises(ValueError, match="_share"):
        static_dumbbell(conv.table.drop(columns=["federal_share"]), ("municipal", "federal"), "x")


# ------------------------------------------------------------------------------------------------------------------
# Exports
# ------------------------------------------------------------------------------------------------------------------


def _svg_text(path: Path) -> str:
    root = ET.parse(path).getroot()
    return " ".join(" ".join(el.text.split()) for el in root.iter() if el.tag.endswith("text") and el.text)


def test_exports_vector_and_300_dpi_with_caption_and_dumbbell(codebook, tmp_path):
    from PIL import Image
    from pypdf import PdfReader

    table, result = _crowded(20, codebook=codebook)
    conv = _conv_object(codebook)
    written = {}
    for suffix in (".svg", ".pdf", ".png"):
        out = export(tmp_path / f"map{suffix}", result, {"counts": table}, codebook, title="map",
                     convergence=conv, caption=CAPTION)
        assert out.figures == [tmp_path / f"map{suffix}", tmp_path / f"map_dumbbell{suffix}"]
        assert out.tables == [tmp_path / "map_counts.csv"]
        written[suffix] = out.figures
    caption = " ".join(CAPTION.split())
    for path in written[".svg"]:
        text = _svg_text(path)
        assert caption in text  # wrapped on lines, the words all there in order
        assert "<image" not in path.read_text(encoding="utf-8")
    assert "intervention space" in _svg_text(written[".svg"][1])
    for path in written[".pdf"]:
        assert path.read_bytes()[:5] == b"%PDF-"
        reader = PdfReader(str(path))
        assert len(reader.pages) == 1 and all(len(page.images) == 0 for page in reader.pages)
        assert "held-out micro-F1 0.62" in " ".join(reader.pages[0].extract_text().split())
    for path in written[".png"]:
        with Image.open(path) as img:
            dpi = img.info["dpi"]
            assert dpi[0] == pytest.approx(300, abs=0.5) and dpi[1] == pytest.approx(300, abs=0.5)
            assert img.width >= 7 * 300  # a figure several inches wide at 300 dpi, not a 100 dpi raster
    with pytest.raises(ValueError, match=r"\.html, \.svg, \.pdf, \.png"):
        export(tmp_path / "map.jpg", result, {}, codebook)


def test_html_export_shows_the_dumbbell_and_caption(codebook, tmp_path):
    table, result = _crowded(10, codebook=codebook)
    conv = _conv_object(codebook)
    out = export(tmp_path / "r.html", result, {"counts": table}, codebook, convergence=conv, caption=CAPTION)
    page = out.figure.read_text(encoding="utf-8")
    assert "intervention space: city" in page and "share of documents carrying the function" in page
    assert "held-out micro-F1 0.62" in page and out.figures == [out.figure]


def test_export_figure_png_is_300_dpi(tmp_path):
    from PIL import Image

    plt = figures._matplotlib()
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [0, 1])
    export_figure(fig, tmp_path / "f.png", "A caption")
    with Image.open(tmp_path / "f.png") as img:
        assert img.info["dpi"][0] == pytest.approx(300, abs=0.5)
        w, h = fig.get_size_inches()
        assert (img.width, img.height) == (round(w * 300), round(h * 300))
    assert h > 3  # the caption added room under the plot
    with pytest.raises(ValueError):
        export_figure(fig, tmp_path / "f.gif")
    plt.close(fig)


# ------------------------------------------------------------------------------------------------------------------
# Series styles
# ------------------------------------------------------------------------------------------------------------------


def test_series_colors_are_distinct():
    styles = series_colors(14)
    assert len(styles) == 14 and len({s.color for s in styles}) == 14
    from matplotlib.colors import to_rgb

    rgb = np.array([to_rgb(s.color) for s in series_colors(20)])
    distances = np.sqrt(((rgb[:, None] - rgb[None]) ** 2).sum(-1))[np.triu_indices(20, 1)]
    assert distances.min() > 0.15  # no two of the first 20 are near-identical shades
    many = series_colors(45)
    assert len({(s.color, s.marker, str(s.linestyle)) for s in many}) == 45
    assert len({(s.color, s.symbol, s.dash) for s in many}) == 45
    assert series_colors(0) == []


def test_plotly_crowded_map_keeps_projected_groups_hover_only(codebook):
    """Hundreds of supplementary groups (by issuer) would bury the map: they are hover-only, small and light."""
    table, result = _crowded(60, codebook=codebook)  # 45 supplementary groups
    fig = biplot(result, codebook)
    sup = set(map(str, result.cols.index[result.cols["supplementary"]]))
    shown = {" ".join((a.text or "").replace("<br>", " ").split()) for a in fig.layout.annotations}
    assert not shown & sup and shown & set(map(str, result.cols.index[~result.cols["supplementary"]]))
    trace = next(t for t in fig.data if t.name and "supplementary" in t.name)
    assert len(trace.x) == len(sup) and trace.marker.opacity < 1 and "hover-only" in fig.layout.annotations[-1].text
