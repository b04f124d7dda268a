"""The convergence reading (issue 14): stated sides, length-invariant units, bootstrap intervals, Holm, readings.

A planted workspace, written through the workspace's own API, has a known structure: cities over-use twinning and
cultural diplomacy, the state over-uses coercive measures, advocacy and collaboration are used alike; one long
city document of 40 passages carries nearly every label beside many two-passage ones, and domestic city documents
carry no function. It must read exactly so in every unit. Coverage of the intervals is checked on 100 seeded
samples drawn directly as unit matrices (no SQLite), with passages clustered within documents.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from nlp.analysis.convergence import (FLOOR, Convergence, bootstrap_weights, convergence, holm, read, wald_p,
                                      zone)
from nlp.analysis.diagram import build_diagram, caption, format_p
from nlp.analysis.sides import Comparison, Side, SideError, describe
from nlp.analysis.tables import Filters
from nlp.analysis.units import UNITS, UnitMatrix, unit_matrix, unit_table
from nlp.pipeline import TaggedDocument
from nlp.schema import Document
from nlp.text import Passage, Sentence
from nlp.workspace import Workspace

MODEL = "planted@00000000"
N_SIDE = 150  # short diplomatic documents per side
N_DOMESTIC = 150  # city documents with no function
LONG_PASSAGES = 40
#: (side, i) -> carries the function; every short diplomatic document carries at least one
PLANTED = {
    "twinning": lambda side, i: i % 2 == 0 if side == "city" else i % 20 == 0,  # 50% vs 5%
    "cultural_diplomacy": lambda side, i: i % 2 == 1 if side == "city" else i % 10 == 3,  # 50% vs 10%
    "coercive_measures": lambda side, i: i % 20 == 1 if side == "city" else i % 2 == 0,  # 5% vs 50%
    "advocacy": lambda side, i: i % 5 < 2,  # 40% on both
    "collaboration_networks": lambda side, i: i % 2 == 0 if side == "city" else i % 2 == 1,  # 50% on both
}
EXPECTED = {"twinning": "city-led", "cultural_diplomacy": "city-led", "coercive_measures": "state-led",
            "advocacy": "convergent", "collaboration_networks": "convergent"}
LONG_LABELS_LEFT_OUT = ("twinning", "cultural_diplomacy")


def _plan(codebook):
    """(id, issuer_type, source, passages) per document, each passage the set of functions it carries.

    Short documents have two passages; a third of the city ones carry their functions on the first passage only
    (the second is not diplomatic). The long city document's 40 passages carry one function each, in turn, every
    function but twinning and cultural diplomacy. Domestic city documents carry none."""
    functions = codebook.labels("functions")
    docs = []
    for side, issuer_type in (("city", "city"), ("state", "national")):
        for i in range(N_SIDE):
            carried = {f for f, rule in PLANTED.items() if rule(side, i)}
            first_only = side == "city" and i % 3 == 0
            source = ("town_hall", "harbour")[i % 2] if side == "city" else "ministry" if i < 100 else "embassy"
            docs.append((f"{side}{i}", issuer_type, source, [carried, set() if first_only else carried]))
    long_labels = [f for f in functions if f not in LONG_LABELS_LEFT_OUT]
    docs.append(("long", "city", "town_hall", [{long_labels[p % len(long_labels)]} for p in range(LONG_PASSAGES)]))
    # domestic documents carry no function; every fifth addresses the environment (a domain) in its first passage
    docs.extend((f"dom{i}", "city", "town_hall", [{"environment"} if i % 5 == 0 else set(), set()])
                for i in range(N_DOMESTIC))
    # the first passage of every fourth short city document addresses the environment too (a diplomatic passage)
    for k in range(0, N_SIDE, 4):
        docs[k][3][0] = docs[k][3][0] | {"environment"}
    return docs


def _tagged(doc, labels, passages_carried: list[set[str]]):
    """A TaggedDocument whose passage k scores 0.9 on the functions of ``passages_carried[k]`` (0.1 elsewhere);
    a document carries what any of its passages carries (the document score is the max over passages)."""
    sent = Sentence(0, len(doc.text), doc.text.split())
    passages = [Passage(k, 0, len(doc.text), [sent]) for k in range(len(passages_carried))]
    scores, passage_scores, selected = {}, {}, {}
    for axis, labs in labels.items():
        ps = np.full((len(passages), len(labs)), 0.1)
        for k, carried in enumerate(passages_carried):
            for f in carried:
                if f in labs:
                    ps[k, labs.index(f)] = 0.9
        passage_scores[axis] = ps
        scores[axis] = ps.max(axis=0)
        selected[axis] = [lab for lab, sc in zip(labs, scores[axis]) if sc >= 0.5]
    return TaggedDocument(doc, passages, scores, passage_scores, selected, {})


@pytest.fixture(scope="module")
def planted(tmp_path_factory, codebook):
    labels = codebook.label_sets()
    plan = _plan(codebook)
    ws = Workspace(tmp_path_factory.mktemp("planted") / "ws")
    docs = [Document(id=i, text=f"Planted document {i} about things.", issuer_type=t, source=s,
                     date="" if i.startswith("dom") or i == "long" else "2022-0%d-01" % (1 + k % 9))
            for k, (i, t, s, _p) in enumerate(plan)]
    ws.add_documents(docs)
    ws.register_model(MODEL, "planted", "00000000", "lexicon", labels)
    ids = dict(ws.conn.execute("SELECT id, doc_id FROM documents").fetchall())
    items = [(ids[doc.id], _tagged(doc, labels, passages)) for doc, (_i, _t, _s, passages) in zip(docs, plan)]
    ws.save_predictions(MODEL, items, {axis: np.full(len(l), 0.5) for axis, l in labels.items()})
    yield ws
    ws.close()


def _reference_shares(codebook, unit: str, diplomatic_only: bool, axis: str = "functions") -> pd.DataFrame:
    """The planted shares computed from the plan with plain Python (an independent reference for the SQL path)."""
    out = {}
    functions = set(codebook.labels("functions"))
    for side, issuer_type in (("city", "city"), ("state", "national")):
        num = {f: 0.0 for f in codebook.labels(axis)}
        den = 0.0
        for _i, t, _s, passages in _plan(codebook):
            if t != issuer_type:
                continue
            kept = [p for p in passages if p & functions] if diplomatic_only else passages
            if not kept:
                continue
            if unit == "documents":
                kept = passages  # a diplomatic document counts with all it carries
            for f in num:
                carrying = sum(f in p for p in kept)
                num[f] += (carrying > 0) if unit == "documents" else carrying if unit == "passages" else \
                    carrying / len(kept)
            den += len(kept) if unit == "passages" else 1
        out[side] = {f: v / den for f, v in num.items()}
    return pd.DataFrame(out)


# -- the SQL path against the planted structure -------------------------------------------------------------------

def test_planted_shares_by_hand_in_every_unit(planted, codebook):
    """Each unit's shares, read through SQL, equal the plain-Python reference on the plan; shares lie in [0, 1];
    the long document weighs 1 in documents and intensity."""
    for unit, axis in ((u, a) for u in UNITS for a in ("functions", "domains")):
        for dip in (True, False):
            m = unit_matrix(planted, MODEL, axis, unit=unit, diplomatic_only=dip)
            shares = m.shares()
            reference = _reference_shares(codebook, unit, dip, axis)
            assert np.allclose(shares.to_numpy(), reference.loc[shares.index, ["city", "state"]].to_numpy()), \
                (unit, axis, dip)
            assert ((shares >= 0) & (shares <= 1)).all().all()
            if unit != "passages":
                assert (m.weights == 1).all()  # the 40-passage document weighs as one press release
    # a function only the long document carries: in intensity it adds 1/12 of one document, not 40 passages
    m = unit_matrix(planted, MODEL, "functions", unit="intensity")
    long_share = sum(p == {"representation_protocol"} for p in _plan(codebook)[2 * N_SIDE][3]) / LONG_PASSAGES
    assert m.shares().loc["representation_protocol", "city"] == pytest.approx(long_share / (N_SIDE + 1))
    assert long_share == pytest.approx(1 / 12, abs=0.03)


def test_planted_reads_as_planted_in_every_unit(planted, codebook):
    """Diplomatic units (the default reading): city-led, state-led and convergent as planted, in every unit,
    though the long city document carries coercive measures, advocacy and collaboration too."""
    for unit in UNITS:
        for dip in (True,):
            conv = convergence(unit_matrix(planted, MODEL, "functions", unit=unit, diplomatic_only=dip), codebook,
                               replicates=200, seed=1)
            got = conv.table.loc[list(EXPECTED), "reading"].to_dict()
            assert got == EXPECTED, (unit, dip)
            cols = [c for c in conv.table if c.endswith(("_share", "_low", "_high")) and not c.startswith("diff")]
            assert ((conv.table[cols] >= 0) & (conv.table[cols] <= 1)).all().all(), unit
            assert (conv.table["city_low"] <= conv.table["city_share"] + 1e-12).all()
            assert (conv.table["city_share"] <= conv.table["city_high"] + 1e-12).all()


def test_contract_of_the_table(planted, codebook):
    conv = convergence(unit_matrix(planted, MODEL), codebook, replicates=50, seed=0)
    assert isinstance(conv, Convergence)
    assert conv.table.index.name == "functions" and list(conv.table.index) == codebook.labels("functions")
    assert list(conv.table.columns) == [
        "practice", "amiri", "city_share", "city_low", "city_high", "city_n", "state_share", "state_low",
        "state_high", "state_n", "difference", "difference_low", "difference_high", "p_value", "p_adjusted",
        "reading", "zone"]
    assert conv.sides == ("city", "state") and conv.unit == "intensity" and conv.diplomatic_only
    assert conv.replicates == 50 and conv.seed == 0 and conv.alpha == 0.05
    assert "1.5 times" in conv.rule and "Holm" in conv.method and "resampling documents" in conv.method
    assert conv.n == {"city": N_SIDE + 1, "state": N_SIDE} == conv.documents
    assert (conv.table["city_n"] == N_SIDE + 1).all()
    # twinning is an Amiri crossover read city-led: the state is the weak side, the intervention space
    assert conv.table.loc["twinning", "zone"] == "intervention space: state"
    assert conv.table.loc["cultural_diplomacy", "zone"] == "expected overlap, not observed"
    assert conv.table.loc["collaboration_networks", "zone"] == "crossover, both active"
    assert conv.table.loc["twinning", "practice"] == "city"


def test_diplomatic_only_changes_denominators_as_stated(planted):
    dip = {u: unit_matrix(planted, MODEL, unit=u, diplomatic_only=True) for u in UNITS}
    every = {u: unit_matrix(planted, MODEL, unit=u, diplomatic_only=False) for u in UNITS}
    assert every["documents"].n() == {"city": N_SIDE + 1 + N_DOMESTIC, "state": N_SIDE}
    assert dip["documents"].n() == {"city": N_SIDE + 1, "state": N_SIDE}
    assert every["passages"].n() == {"city": 2 * (N_SIDE + N_DOMESTIC) + LONG_PASSAGES, "state": 2 * N_SIDE}
    # only diplomatic passages count: a third of the short city documents have one, not two
    assert dip["passages"].n() == {"city": 2 * N_SIDE - N_SIDE // 3 + LONG_PASSAGES, "state": 2 * N_SIDE}
    assert N_SIDE % 6 == 0  # the counts below: twinning on even documents, one passage of two when i % 6 == 0
    assert dip["intensity"].n() == {"city": N_SIDE + 1, "state": N_SIDE}
    # intensity over diplomatic passages: a short document carrying twinning on its only diplomatic passage
    # counts 1, over all its passages 1/2
    assert dip["intensity"].shares().loc["twinning", "city"] == pytest.approx(N_SIDE / 2 / (N_SIDE + 1))
    assert every["intensity"].shares().loc["twinning", "city"] == pytest.approx(
        (N_SIDE / 3 + N_SIDE / 6 / 2) / (N_SIDE + 1 + N_DOMESTIC))
    # a domain counts in diplomatic passages only: the domestic documents' environment passages drop out
    env = {d: unit_matrix(planted, MODEL, "domains", unit="passages", diplomatic_only=d).shares().loc[
        "environment", "city"] for d in (True, False)}
    short_env = len(range(0, N_SIDE, 4))
    assert env[True] == pytest.approx(short_env / (2 * N_SIDE - N_SIDE // 3 + LONG_PASSAGES))
    assert env[False] == pytest.approx((short_env + N_DOMESTIC // 5) / (2 * (N_SIDE + N_DOMESTIC) + LONG_PASSAGES))
    assert dip["intensity"].unit_label != every["intensity"].unit_label
    assert "diplomatic" in dip["passages"].unit_label and "diplomatic" not in every["passages"].unit_label


def test_all_units_dilute_the_city_side(planted, codebook):
    """The issue's complaint, planted: over all city documents (most of them domestic) advocacy reads state-led;
    over diplomatic documents it is convergent."""
    every = convergence(unit_matrix(planted, MODEL, unit="documents", diplomatic_only=False), codebook, seed=0)
    dip = convergence(unit_matrix(planted, MODEL, unit="documents", diplomatic_only=True), codebook, seed=0)
    assert every.table.loc["advocacy", "reading"] == "state-led"
    assert dip.table.loc["advocacy", "reading"] == "convergent"
    assert every.label == "all units" and dip.label == "diplomatic units only"


def test_describe_states_each_side(planted):
    d = describe(planted, MODEL)
    assert list(d.index) == ["city", "state"]
    assert d.loc["city", "definition"] == "issuer_type = city"
    assert d.loc["city", "documents"] == N_SIDE + 1 + N_DOMESTIC
    assert d.loc["city", "diplomatic_documents"] == N_SIDE + 1
    assert d.loc["city", "passages"] == 2 * (N_SIDE + N_DOMESTIC) + LONG_PASSAGES
    assert d.loc["city", "undated"] == N_DOMESTIC + 1
    assert d.loc["city", "sources"] == f"town_hall {N_SIDE // 2 + 1 + N_DOMESTIC}; harbour {N_SIDE // 2}"
    assert d.loc["state", "sources"] == f"ministry 100; embassy {N_SIDE - 100}"
    assert d.loc["state", "dated_from"] == "2022-01-01" and d.loc["state", "dated_to"] == "2022-09-01"
    narrowed = describe(planted, MODEL, filters=Filters(date_from="2022-01", date_to="2022-01"))
    assert narrowed.loc["city", "undated"] == 0 and narrowed.loc["city", "documents"] < 20


# -- sides --------------------------------------------------------------------------------------------------------

def test_side_specs_parse_and_bad_ones_are_refused(planted):
    c = Comparison.parse(["towns:issuer_type=city;source=town_hall,other", "gov:issuer_type=national"])
    assert c.names == ("towns", "gov")
    assert c.sides[0].where == {"issuer_type": ("city",), "source": ("town_hall", "other")}
    assert c.sides[0].definition == "issuer_type = city and source in (town_hall, other)"
    assert Comparison.parse([]) == Comparison.default()
    un = "UN General Debate Corpus (Jankin, Baturo, Dasandi), doi:10.7910/DVN/0TJX8Y"
    escaped = Comparison.parse([r"un:source=UN General Debate Corpus (Jankin\, Baturo\, Dasandi)\, "
                                r"doi:10.7910/DVN/0TJX8Y,other;country=US", "rest:issuer_type=city"])
    assert escaped.sides[0].where == {"source": (un, "other"), "country": ("US",)}
    assert Comparison.parse([escaped.sides[0].spec, "rest:issuer_type=city"]) == escaped  # spec round-trips
    bad = {("city",): "side-spec", ("city:issuer_type=city",): "side-spec",
           ("city:text=x", "state:issuer_type=national"): "side-field",
           ("a:issuer_type=city", "a:issuer_type=national"): "side-name",
           ("a:issuer_type=city", "b:issuer_type=city"): "side-overlap",
           ("a:issuer_type", "b:issuer_type=national"): "side-spec",
           ("a b:issuer_type=city", "b:issuer_type=national"): "side-name",
           ("a:issuer_type=", "b:issuer_type=national"): "side-spec"}
    for specs, code in bad.items():
        with pytest.raises(SideError) as info:
            Comparison.parse(list(specs))
        assert info.value.code == code and str(info.value).startswith(code + ":") and "\n" not in str(info.value)
    overlapping = Comparison((Side("a", {"issuer_type": ["city"]}), Side("b", {"source": ["town_hall"]})))
    with pytest.raises(SideError, match=f"side-overlap: {N_SIDE // 2 + 1 + N_DOMESTIC} document"):
        unit_matrix(planted, MODEL, comparison=overlapping)


def test_sides_are_free_to_choose(planted, codebook):
    """Swapping the sides swaps the readings and negates the difference."""
    swapped = Comparison((Side("state", {"issuer_type": ["national"]}), Side("city", {"issuer_type": ["city"]})))
    a = convergence(unit_matrix(planted, MODEL), codebook, replicates=100, seed=3)
    b = convergence(unit_matrix(planted, MODEL, comparison=swapped), codebook, replicates=100, seed=3)
    assert list(b.table.columns[2:4]) == ["state_share", "state_low"]
    assert np.allclose(a.table["difference"], -b.table["difference"])
    assert (a.table["reading"] == b.table["reading"]).all()  # readings name the side, not A or B


# -- statistics ---------------------------------------------------------------------------------------------------

def test_holm_by_hand():
    p = np.array([0.01, 0.04, 0.03, 0.005, np.nan])
    # sorted: 0.005 * 4 = 0.02, 0.01 * 3 = 0.03, 0.03 * 2 = 0.06, 0.04 * 1 = 0.04 -> monotone 0.06
    assert np.allclose(holm(p)[:4], [0.03, 0.06, 0.06, 0.02])
    assert np.isnan(holm(p)[4])
    assert np.allclose(holm([0.5, 0.9]), [1.0, 1.0])  # 0.5 * 2 = 1, and monotone
    assert np.allclose(holm([0.2, 0.01]), [0.2, 0.02])
    assert np.isnan(holm([np.nan])).all()


def test_wald_p_and_its_edges():
    p = wald_p(np.array([1.96, 0.0, 0.3, 0.0]), np.array([1.0, 1.0, 0.0, 0.0]))
    assert p[0] == pytest.approx(0.05, abs=1e-3) and p[1] == pytest.approx(1.0)
    assert p[2] == 0.0 and np.isnan(p[3])
    assert format_p(0.0) == "p < 0.001" and format_p(0.0123) == "p = 0.012"


def test_reading_rule_and_zones():
    row = dict(city_share=0.2, city_low=0.15, city_high=0.25, state_share=0.1, state_low=0.07, state_high=0.13,
               p_adjusted=0.001)
    assert read("city", "state", row, 0.05) == "city-led"
    assert read("city", "state", {**row, "p_adjusted": 0.2}, 0.05) == "convergent"
    assert read("city", "state", {**row, "state_share": 0.15}, 0.05) == "convergent"  # 1.33 times: too small
    low = dict(row, city_share=0.002, city_low=0.0, city_high=0.005)
    assert read("city", "state", low, 0.05) == "state only"
    both = dict(low, state_share=0.003, state_low=0.0, state_high=0.008)
    assert read("city", "state", both, 0.05) == "rare on both"
    assert FLOOR == 0.01
    assert zone("convergent", "overlap", "city", "state") == "expected overlap"
    assert zone("state-led", "overlap", "city", "state") == "expected overlap, not observed"
    assert zone("state only", "crossover", "city", "state") == "intervention space: city"
    assert zone("city-led", "crossover", "city", "state") == "intervention space: state"
    assert zone("convergent", "crossover", "city", "state") == "crossover, both active"
    assert zone("rare on both", "crossover", "city", "state") == ""
    assert zone("city-led", "none", "city", "state") == ""


def test_bootstrap_weights_resample_n_documents():
    w = bootstrap_weights(7, 50, np.random.default_rng(0))
    assert w.shape == (50, 7) and (w.sum(axis=1) == 7).all() and (w >= 0).all()


def _sample(rng, n, p, unit, clustered=True):
    """A side of ``n`` documents: 1-8 passages each, each passage carrying label j with the document's propensity
    q_j ~ Beta (mean p_j; strongly clustered), so the population share is p_j in the intensity and passages units;
    in the documents unit each document carries label j with probability p_j."""
    k = len(p)
    if unit == "documents":
        counts = (rng.random((n, k)) < p).astype(float)
        return counts, np.ones(n)
    passages = rng.integers(1, 9, size=n)
    q = rng.beta(p * 2.0, (1 - p) * 2.0, size=(n, k)) if clustered else np.tile(p, (n, 1))
    carried = rng.binomial(passages[:, None], q).astype(float)
    if unit == "passages":
        return carried, passages.astype(float)
    return carried / passages[:, None], np.ones(n)


def _passages_as_documents(counts: np.ndarray, passages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One row per passage (0/1 per label): what a bootstrap of passages, ignoring documents, would resample."""
    p = passages.astype(int)
    doc = np.repeat(np.arange(len(p)), p)
    position = np.arange(p.sum()) - np.repeat(np.cumsum(p) - p, p)
    return (position[:, None] < counts[doc]).astype(float), np.ones(p.sum())


def _coverage(unit: str, naive: bool = False) -> dict[str, np.ndarray]:
    """Hits of the 95% intervals over 100 seeded samples of 200 documents per side."""
    p_city, p_state = np.array([0.3, 0.1, 0.05]), np.array([0.1, 0.1, 0.2])
    rng = np.random.default_rng(2024)
    hits = {"city": np.zeros(3), "state": np.zeros(3), "difference": np.zeros(3)}
    for rep in range(100):
        (ca, wa), (cb, wb) = _sample(rng, 200, p_city, unit), _sample(rng, 200, p_state, unit)
        if naive:
            (ca, wa), (cb, wb) = _passages_as_documents(ca, wa), _passages_as_documents(cb, wb)
        m = UnitMatrix(unit, "functions", ("a", "b", "c"), ("city", "state"), False, np.arange(len(wa) + len(wb)),
                       np.r_[np.zeros(len(wa), np.int8), np.ones(len(wb), np.int8)], np.vstack([ca, cb]),
                       np.r_[wa, wb], np.r_[wa, wb])
        t = convergence(m, None, replicates=200, seed=rep).table
        for side, p in (("city", p_city), ("state", p_state)):
            hits[side] += (t[f"{side}_low"].to_numpy() <= p) & (p <= t[f"{side}_high"].to_numpy())
        d = p_city - p_state
        hits["difference"] += (t["difference_low"].to_numpy() <= d) & (d <= t["difference_high"].to_numpy())
    return hits


def test_intervals_cover_the_population_shares():
    """100 seeded samples per unit, passages strongly clustered within documents: the 95% intervals of each side's
    share and of the difference cover the planted values in >= 90% of samples overall, and no single one below
    85%. The check has teeth: a bootstrap of passages that ignores documents covers about three quarters."""
    for unit in UNITS:
        every = np.concatenate(list(_coverage(unit).values()))
        assert every.mean() >= 90 and every.min() >= 85, (unit, every)
    naive = np.concatenate(list(_coverage("passages", naive=True).values()))
    assert naive.mean() < 85, naive


def test_bootstrap_is_fast_at_scale():
    """200 replicates on 32,000 documents x 14 labels: well under a second (vectorised)."""
    import time

    rng = np.random.default_rng(0)
    n, k = 32_000, 14
    m = UnitMatrix("intensity", "functions", tuple(f"l{j}" for j in range(k)), ("city", "state"), True,
                   np.arange(n), (rng.random(n) < 0.3).astype(np.int8), rng.random((n, k)) * (rng.random((n, k)) < .2),
                   np.ones(n), np.ones(n))
    start = time.perf_counter()
    convergence(m, None, replicates=200, seed=0)
    assert time.perf_counter() - start < 2.0  # ~0.2 s here; slack for a loaded 2-core machine


def test_convergence_refuses_bad_settings_and_empty_sides(planted, codebook):
    m = unit_matrix(planted, MODEL)
    with pytest.raises(ValueError, match="replicates"):
        convergence(m, codebook, replicates=5)
    with pytest.raises(ValueError, match="alpha"):
        convergence(m, codebook, alpha=1.5)
    nobody = Comparison((Side("city", {"issuer_type": ["city"]}), Side("ghosts", {"source": ["nowhere"]})))
    with pytest.raises(ValueError, match="ghosts count no unit"):
        convergence(unit_matrix(planted, MODEL, comparison=nobody), codebook)


# -- the diagram ---------------------------------------------------------------------------------------------------

def test_diagram_caption_counts_equal_the_table(planted, codebook):
    for unit in UNITS:
        d = build_diagram(planted, codebook, MODEL, by="issuer_type", unit=unit, replicates=50)
        conv = d.convergence
        assert conv is not None and conv.unit == unit and d.other_reading is not None
        assert conv.diplomatic_only and not d.other_reading.diplomatic_only
        for side in conv.sides:
            docs = conv.documents[side]
            n = int(conv.table[f"{side}_n"].iloc[0])
            assert n == conv.n[side]
            words = f"{n:,} passages in {docs:,} documents" if unit == "passages" else f"{docs:,} documents"
            assert f"{side} (issuer_type = " in d.caption and f"): {words} counted of " in d.caption, d.caption
        total = sum(conv.documents.values())
        assert re.search(rf"N = (.* in )?{total:,} documents counted", d.caption)
        assert "p = 0" not in d.caption and "p < 0.001" in d.caption
        assert "held-out" in d.caption and MODEL in d.caption
        assert set(d.tables) >= {"convergence", "sides", "convergence_all_units", "counts"}
        assert d.sides.loc["city", "documents"] == N_SIDE + 1 + N_DOMESTIC


def test_caption_without_a_reading_still_names_the_model():
    assert caption("m@1", None, None).startswith("Model m@1 (no held-out score recorded)")


def test_intensity_table_for_the_biplot(planted, codebook):
    table = unit_table(planted, MODEL, axis="functions", by="issuer_type", unit="intensity")
    assert list(table.columns) == ["city", "national"]
    assert table.loc["coercive_measures", "national"] == pytest.approx(N_SIDE / 2)
    # the even city documents carry twinning: on both passages (1 each), or on one of two when i % 6 == 0 (1/2)
    assert table.loc["twinning", "city"] == pytest.approx(N_SIDE / 3 + N_SIDE / 6 / 2)
    docs = unit_table(planted, MODEL, axis="functions", by="issuer_type", unit="documents")
    assert docs.loc["twinning", "city"] == N_SIDE / 2
    passages = unit_table(planted, MODEL, axis="functions", by="issuer_type", unit="passages")
    assert passages.loc["twinning", "city"] == 2 * N_SIDE / 3 + N_SIDE / 6


def test_top_groups_are_active_the_rest_supplementary(planted, codebook):
    every = build_diagram(planted, codebook, MODEL, by="source", top=None, replicates=20)
    assert not every.result.cols["supplementary"].any() and len(every.result.cols) == 4
    d = build_diagram(planted, codebook, MODEL, by="source", top=3, replicates=20)
    mass = d.counts.sum(axis=0).sort_values()
    assert d.result.cols.loc[mass.index[0], "supplementary"]  # the smallest group is projected
    assert d.result.cols["supplementary"].sum() == 1
    assert any("top=3" in note for note in d.notes)
    with pytest.raises(ValueError, match="top must be"):
        build_diagram(planted, codebook, MODEL, top=1)



# -- the command line -----------------------------------------------------------------------------------------------

def test_cli_diagram_prints_sides_intervals_rule_and_writes_tables(planted, tmp_path, capsys):
    from nlp.cli import main

    out = tmp_path / "d.html"
    assert main(["diagram", "--workspace", str(planted.home), "--by", "source", "--unit", "passages",
                 "--side", "towns:issuer_type=city", "--side", "gov:issuer_type=national", "--replicates", "50",
                 "--seed", "4", "--top", "3", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    printed = captured.out
    assert "Sides compared" in printed and "issuer_type = city" in printed
    assert "Reading rule: " in printed and "'towns-led'" in printed and "Method: 50 bootstrap replicates (seed 4)" \
        in printed
    assert re.search(r"twinning .*% \[.*\].*towns-led", printed)
    assert "top=3" in captured.err
    conv = pd.read_csv(tmp_path / "d_convergence.csv", index_col=0, keep_default_na=False)
    assert list(conv.columns[2:6]) == ["towns_share", "towns_low", "towns_high", "towns_n"]
    assert conv.loc["coercive_measures", "reading"] == "gov-led"
    assert (tmp_path / "d_sides.csv").exists() and (tmp_path / "d_convergence_all_units.csv").exists()
    html = out.read_text(encoding="utf-8")
    assert "Sides compared" in html and "Reading rule" in html and "p = 0" not in html
    # --all-units: the primary reading is over all units; the diplomatic one is written beside it
    assert main(["diagram", "--workspace", str(planted.home), "--by", "issuer_type", "--unit", "documents",
                 "--all-units", "--replicates", "20", "--out", str(tmp_path / "e.svg")]) == 0
    assert "Convergence (all units;" in capsys.readouterr().out
    assert (tmp_path / "e_convergence_diplomatic.csv").exists()


def test_cli_diagram_bad_sides_are_one_line_errors(planted, tmp_path, capsys):
    from nlp.cli import main

    base = ["diagram", "--workspace", str(planted.home), "--out", str(tmp_path / "x.html")]
    for sides, code in ((["--side", "city"], "side-spec"),
                        (["--side", "a:text=x", "--side", "b:issuer_type=national"], "side-field"),
                        (["--side", "a:issuer_type=city", "--side", "a:issuer_type=national"], "side-name"),
                        (["--side", "a:issuer_type=city", "--side", "b:source=town_hall"], "side-overlap")):
        assert main(base + sides) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"cdpd diagram: error: {code}: "), err
    with pytest.raises(SystemExit):
        main(base + ["--replicates", "5"])
    assert "20 to 10000" in capsys.readouterr().err


def test_cli_report_html_and_pdf_say_what_was_compared_and_how(planted, tmp_path, capsys):
    """`cdpd report`: one HTML (inline SVG figures, no script) and one PDF with the sides, the two profiles, the
    convergence table with intervals, the intervention space, the method and the caption's counts."""
    import pypdf

    from nlp.cli import main

    html_out, pdf_out = tmp_path / "r.html", tmp_path / "r.pdf"
    args = ["--workspace", str(planted.home), "--by", "source", "--replicates", "50", "--seed", "3"]
    assert main(["report", *args, "--out", str(html_out)]) == 0
    captured = capsys.readouterr()
    caption = captured.out.strip()
    assert "documents counted" in caption and "no held-out score recorded" in caption  # not in the registry
    assert "no held-out figures" in captured.err
    page = html_out.read_text(encoding="utf-8")
    assert "<script" not in page and page.count("<svg") == 2  # the dumbbell and the map, as inline SVG
    for needed in ("The two sides", "issuer_type = city", "The two profiles", "Policy intervention space",
                   "Expected overlaps", "Convergence table", "city_low", "state_high", "Holm",
                   "50 bootstrap replicates (seed 3)", "Reading rule", html_escape(caption)):
        assert needed in page, needed
    assert "twinning" in page and "p = 0" not in page
    assert main(["report", *args, "--out", str(pdf_out)]) == 0
    capsys.readouterr()
    assert pdf_out.read_bytes().startswith(b"%PDF-")
    reader = pypdf.PdfReader(str(pdf_out))
    text = "\n".join(p.extract_text() for p in reader.pages)
    assert len(reader.pages) >= 4
    for needed in ("Side: city", "Policy intervention space", "Convergence table", "Holm", "twinning"):
        assert needed in text, needed
    assert main(["report", *args, "--out", str(tmp_path / "r.docx")]) == 2
    assert "written as .html or .pdf" in capsys.readouterr().err


def test_report_says_how_to_read_a_source_without_annotations(planted, codebook):
    """With the model's leave-one-source-out row, the report says to read unannotated sources against it."""
    import pandas as pd

    from nlp.analysis.report import research_report
    from nlp.models import UNSEEN_SOURCE_ROW

    d = build_diagram(planted, codebook, MODEL, by="source", replicates=20)
    columns = pd.MultiIndex.from_tuples([("functions", "micro-F1"), ("functions", "units")])
    held = pd.DataFrame([[0.8, 100], [0.7, 40]], index=["all", "ccc"], columns=columns)
    page = research_report(d, quality=held, codebook=codebook)
    assert "How good the tags are" in page and UNSEEN_SOURCE_ROW not in page
    both = pd.concat([held, pd.DataFrame([[0.69, 90]], index=[UNSEEN_SOURCE_ROW], columns=columns)])
    page = research_report(d, quality=both, codebook=codebook)
    assert f"The row '{UNSEEN_SOURCE_ROW}'" in html_unescape(page) and "0.69" in page


def html_unescape(text: str) -> str:
    import html

    return html.unescape(text)


def html_escape(text: str) -> str:
    import html

    return html.escape(text)


def test_cli_diagram_static_map_with_codes_and_contribution_filter(planted, tmp_path, capsys):
    from nlp.cli import main

    out = tmp_path / "m.svg"
    assert main(["diagram", "--workspace", str(planted.home), "--by", "source", "--replicates", "20", "--codes",
                 "--min-contribution", "5", "--out", str(out)]) == 0
    svg = out.read_text(encoding="utf-8")
    assert "G1" in svg and "Key" in svg  # groups coded, with the key under the map
    assert "to the plane" in svg  # the caption says which points the filter kept
    assert (tmp_path / "m_dumbbell.svg").exists()
    capsys.readouterr()
    assert main(["diagram", "--workspace", str(planted.home), "--min-contribution", "150",
                 "--out", str(tmp_path / "n.svg")]) == 2
    assert "percentage from 0 to 100" in capsys.readouterr().err
