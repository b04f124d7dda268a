"""Evaluation: stratified folds, samples F1, calibration, cross-validation and reports."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nlp.annotations import stratified_folds
from nlp.cli import main
from nlp.metrics import _samples_f1, axis_report, calibration_table, expected_calibration_error


def test_stratified_folds_cover_every_unit_once_and_spread_rare_labels(seed_labels):
    folds = stratified_folds(seed_labels, k=5, seed=0)
    tests = np.concatenate([t for _, t in folds])
    assert sorted(tests.tolist()) == list(range(len(seed_labels["functions"])))
    twinning = seed_labels["functions"][:, 7]  # 22 positives: 4 or 5 in each fold
    assert all(4 <= twinning[t].sum() <= 5 for _, t in folds)
    with pytest.raises(ValueError, match="2 <= k"):
        stratified_folds(seed_labels, k=1)


def test_grouped_folds_keep_each_document_in_one_fold(seed_labels):
    n = len(seed_labels["functions"])
    groups = [f"doc{i // 4}" for i in range(n)]  # four units per document
    folds = stratified_folds(seed_labels, k=5, seed=0, groups=groups)
    tests = np.concatenate([t for _, t in folds])
    assert sorted(tests.tolist()) == list(range(n))
    for train, test in folds:
        assert not {groups[i] for i in train} & {groups[i] for i in test}
    with pytest.raises(ValueError, match="groups has"):
        stratified_folds(seed_labels, k=5, groups=groups[:-1])


def test_false_labels_on_empty_units_and_per_source_figures_by_hand():
    y = np.array([[1, 0], [0, 0], [0, 0], [0, 1], [0, 0]])
    p = np.array([[1, 0], [1, 0], [0, 0], [0, 1], [0, 1]])
    report = axis_report(y, p, ["a", "b"], sources=["x", "x", "x", "y", "y"])
    assert report["empty_units"] == 3 and report["false_on_empty"] == pytest.approx(2 / 3)
    x, yy = report["by_source"]["x"], report["by_source"]["y"]
    assert x["n_units"] == 3 and x["empty_units"] == 2 and x["false_on_empty"] == pytest.approx(0.5)
    assert x["micro"]["precision"] == pytest.approx(0.5) and x["micro"]["recall"] == 1.0
    assert yy["micro"]["f1"] == pytest.approx(2 / 3) and yy["false_on_empty"] == 1.0
    assert axis_report(y[:1], p[:1], ["a", "b"])["false_on_empty"] is None  # no empty unit: no rate
    with pytest.raises(ValueError, match="sources"):
        axis_report(y, p, ["a", "b"], sources=["x"])
    by_period = axis_report(y, p, ["a", "b"], periods=["1990s", "1990s", "2020s", "2020s", "undated"])["by_period"]
    assert list(by_period) == ["1990s", "2020s", "undated"]
    assert by_period["1990s"]["micro"]["precision"] == pytest.approx(0.5) and by_period["1990s"]["n_units"] == 2
    assert by_period["2020s"]["micro"]["f1"] == 1.0 and by_period["undated"]["false_on_empty"] == 1.0
    with pytest.raises(ValueError, match="1 periods for 5 units"):
        axis_report(y, p, ["a", "b"], periods=["1990s"])


def test_a_units_period_is_the_decade_of_its_date():
    from nlp.annotations import Annotation, period_of

    def unit(**meta):
        return Annotation("u", "text", {}, "", "random", meta)

    assert period_of(unit(date="1995-10-02")) == "1990s" and period_of(unit(date="2024")) == "2020s"
    assert period_of(unit(metadata={"date": "1961-01-01"})) == "1960s"  # an exported workspace unit
    assert {period_of(unit()), period_of(unit(date="")), period_of(unit(date="n.d."))} == {"undated"}


def test_samples_f1_and_calibration_by_hand():
    y = np.array([[1, 0], [0, 0], [1, 1]])
    p = np.array([[1, 1], [0, 0], [0, 1]])
    # unit F1: 2*1/(1+2)=0.667; empty and empty = 1; 2*1/(2+1)=0.667
    assert _samples_f1(y.astype(bool), p.astype(bool)) == pytest.approx((2 / 3 + 1 + 2 / 3) / 3)
    assert axis_report(y, p, ["a", "b"])["samples_f1"] == pytest.approx((2 / 3 + 1 + 2 / 3) / 3)
    table = calibration_table(np.array([1, 0, 1, 0]), np.array([0.95, 0.91, 0.05, 0.02]), bins=10)
    assert [(r["bin"], r["n"], r["observed"]) for r in table] == [("0.0-0.1", 2, 0.5), ("0.9-1.0", 2, 0.5)]
    assert expected_calibration_error(table) == pytest.approx((abs(0.035 - 0.5) + abs(0.93 - 0.5)) / 2)


def test_cli_cross_validation_with_reports(tmp_path, capsys, small_seed_rows, monkeypatch):
    monkeypatch.setenv("CDPD_MODELS", str(tmp_path / "models"))
    ann = tmp_path / "small.jsonl"
    rows = [dict(r, title="<script>alert(1)</script>") for r in small_seed_rows]
    ann.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert main(["evaluate", "--annotations", str(ann), "--model", "lexicon", "--cv", "3", "-q", "--json",
                 "--report", str(tmp_path / "cv.md")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_units"] == len(rows)
    for axis in ("functions", "domains"):
        r = report["axes"][axis]
        assert sum(c["n"] for c in r["calibration"]) == len(rows) * len(r["labels"])
        assert 0 <= r["ece"] <= 1 and 0 <= r["samples_f1"] <= 1
    md = (tmp_path / "cv.md").read_text()
    assert md.startswith("# 3-fold cross-validation of lexicon") and "| advocacy |" in md
    # what the console shows is in the file too: per source, per period (decade of the date), false on empty
    functions = report["axes"]["functions"]
    assert f"{functions['false_on_empty']:.1%} of the {functions['empty_units']} units without a label" in md
    for key, head in (("by_source", "| source | units |"), ("by_period", "| period | units |")):
        assert len(functions[key]) >= 2 and head in md
        name, first = next(iter(functions[key].items()))
        assert f"| {name} | {first['n_units']} | {first['micro']['f1']:.3f} |" in md
    assert main(["evaluate", "--annotations", str(ann), "--model", "lexicon", "-q",
                 "--report", str(tmp_path / "ev.html")]) == 0
    page = (tmp_path / "ev.html").read_text()
    assert "<table" in page and "calibration" in page.lower() and "<script>" not in page
    assert "<th>source</th>" in page and "<th>period</th>" in page and "units without a label" in page


def test_source_folds_hold_out_one_whole_source_each():
    from nlp.annotations import source_folds

    sources = ["b", "a", "b", "c", "a", "b"]
    folds = source_folds(sources)
    assert [sorted({sources[i] for i in test}) for _, test in folds] == [["a"], ["b"], ["c"]]
    for train, test in folds:
        assert sorted([*train, *test]) == list(range(6))
        assert not {sources[i] for i in train} & {sources[i] for i in test}
    with pytest.raises(ValueError, match="at least two sources"):
        source_folds(["a", "a"])


def _rows_of_three_sources(seed_rows, n=12):
    out = []
    for source in ("nyc_council", "state_department", "ungdc"):
        out += [r for r in seed_rows if r["corpus"] == source][:n]
    return out


def _annotations_of(rows, codebook, *keys):
    from nlp.annotations import Annotation

    return [Annotation(r["id"], r["text"], {a: r[a] for a in codebook.axis_names}, r["title"], r["sample"],
                       {k: r[k] for k in keys}) for r in rows]


def _spy_on_fits(monkeypatch) -> list[tuple[int, set[str]]]:
    """(units, sources) of every fit cross-validation makes, in order."""
    from nlp import training

    seen = []
    real_fit = training.fit_tagger

    def spy(cls, codebook, settings, units, y, user_params=None, sources=None):
        seen.append((len(units), set(sources)))
        return real_fit(cls, codebook, settings, units, y, user_params, sources)

    monkeypatch.setattr(training, "fit_tagger", spy)
    return seen


def test_leave_one_source_out_fits_each_fold_without_the_source_it_scores(seed_rows, codebook, monkeypatch):
    from nlp import training

    rows = _rows_of_three_sources(seed_rows)
    anns = _annotations_of(rows, codebook, "corpus")
    seen = _spy_on_fits(monkeypatch)
    progress = []
    report = training.cross_validate(anns, codebook, tagger="lexicon", by="source", progress=progress.append)
    assert [sources for _, sources in seen] == [{"state_department", "ungdc"}, {"nyc_council", "ungdc"},
                                                 {"nyc_council", "state_department"}]
    assert progress[0].startswith("fold 1/3") and progress[0].endswith("of nyc_council")
    assert sorted(report["functions"]["by_source"]) == ["nyc_council", "state_department", "ungdc"]
    assert sum(s["n_units"] for s in report["functions"]["by_source"].values()) == len(rows)
    with pytest.raises(ValueError, match="choose 'document', 'source' or 'period'"):
        training.cross_validate(anns, codebook, tagger="lexicon", by="city")
    with pytest.raises(ValueError, match="at least two sources"):
        training.cross_validate(anns[:5], codebook, tagger="lexicon", by="source")


def test_cli_leave_source_out(tmp_path, capsys, seed_rows, monkeypatch):
    monkeypatch.setenv("CDPD_MODELS", str(tmp_path / "models"))
    ann = tmp_path / "three.jsonl"
    rows = _rows_of_three_sources(seed_rows)
    ann.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert main(["evaluate", "--annotations", str(ann), "--model", "lexicon", "--leave-source-out",
                 "--report", str(tmp_path / "loso.md")]) == 0
    out, errors = capsys.readouterr()
    assert out.startswith(f"leave-one-source-out cross-validation of lexicon (lexicon settings): {len(rows)} units")
    assert "fold 3/3" in errors and "of ungdc" in errors
    assert (tmp_path / "loso.md").read_text().startswith("# leave-one-source-out cross-validation of lexicon")
    with pytest.raises(SystemExit):  # one way of cross-validating at a time
        main(["evaluate", "--annotations", str(ann), "--model", "lexicon", "--leave-source-out", "--cv", "3"])

    assert main(["evaluate", "--annotations", str(ann), "--model", "lexicon", "--leave-period-out"]) == 0
    out, errors = capsys.readouterr()
    assert out.startswith("leave-one-period-out cross-validation of lexicon (lexicon settings): ")
    assert "\n  period " in out and "of ungdc " in errors
    with pytest.raises(SystemExit):
        main(["evaluate", "--annotations", str(ann), "--model", "lexicon", "--leave-period-out", "--cv", "3"])


def test_train_records_what_a_source_never_seen_gets_on_the_model_card(tmp_path, seed_rows, capsys, monkeypatch):
    monkeypatch.setenv("CDPD_MODELS", str(tmp_path / "models"))
    from nlp.models import model_card, read_meta

    ann = tmp_path / "three.jsonl"
    rows = _rows_of_three_sources(seed_rows, n=25)
    ann.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert main(["train", "--annotations", str(ann), "--name", "unseen", "--leave-source-out"]) == 0
    ref = capsys.readouterr().out.strip()
    unseen = read_meta(ref)["metrics"]["leave_source_out"]
    for axis in ("functions", "domains"):
        by = unseen[axis]["by_source"]
        assert sorted(by) == ["nyc_council", "state_department", "ungdc"]
        scored = sum(r["sample"] in ("random", "cue") for r in rows)
        assert sum(s["n_units"] for s in by.values()) == unseen[axis]["n_units"] == scored
        assert 0 <= unseen[axis]["micro"]["f1"] <= 1
    card = model_card(read_meta(ref))
    assert "## On a source it never saw (leave-one-source-out)" in card and "| nyc\\_council |" in card
    # the report's quality table: held-out rows, then the never-seen row with the leave-one-source-out figures
    from nlp.models import UNSEEN_SOURCE_ROW, model_quality

    table = model_quality(ref)
    assert table.index[-1] == UNSEEN_SOURCE_ROW and "all" in table.index
    assert table.loc[UNSEEN_SOURCE_ROW, ("functions", "micro-F1")] == pytest.approx(unseen["functions"]["micro"]["f1"])
    assert table.loc["all", ("functions", "micro-F1")] == pytest.approx(
        read_meta(ref)["metrics"]["heldout"]["functions"]["micro"]["f1"])
    assert model_quality("no-such-model") is None
    # one source only: refused before any fit, with the reason
    one = tmp_path / "one.jsonl"
    one.write_text("".join(json.dumps(r) + "\n" for r in rows if r["corpus"] == "ungdc"), encoding="utf-8")
    assert main(["train", "--annotations", str(one), "--leave-source-out", "-q"]) == 2
    assert "at least two sources" in capsys.readouterr().err


def test_train_says_why_units_chosen_by_the_model_are_not_scored(tmp_path, seed_rows, capsys, monkeypatch):
    """Units from an uncertainty queue train but are never held out nor scored: `cdpd train` says so instead of
    leaving the card silently without figures, and skips the leave-one-source-out fits."""
    monkeypatch.setenv("CDPD_MODELS", str(tmp_path / "models"))
    from nlp.models import read_meta

    rows = [dict(r, sample="uncertainty") for r in _rows_of_three_sources(seed_rows, n=15)]
    ann = tmp_path / "chosen.jsonl"
    ann.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert main(["train", "--annotations", str(ann), "--name", "chosen", "--leave-source-out"]) == 0
    out, errors = capsys.readouterr()
    assert "no held-out evaluation: no unit was drawn at random or by cue" in errors
    assert "leave-one-source-out: skipped" in errors and "fold 1/" not in errors
    assert read_meta(out.strip())["metrics"] == {}


def test_period_folds_hold_out_one_decade_of_one_source_each():
    from nlp.annotations import period_folds

    sources = ["un", "un", "un", "city", "city", "un", "plans"]
    periods = ["1960s", "2010s", "1960s", "2020s", "2020s", "undated", "undated"]
    folds = period_folds(sources, periods)
    # only the UN is dated in two decades: one fold per decade; the city (one decade) and undated units always train
    assert [sorted(test.tolist()) for _, test in folds] == [[0, 2], [1]]
    for train, test in folds:
        assert sorted([*train, *test]) == list(range(7))
        assert {3, 4, 5, 6} <= set(train.tolist())
    with pytest.raises(ValueError, match="two decades or more"):
        period_folds(["city", "city"], ["2020s", "undated"])


def test_leave_one_period_out_scores_the_decades_of_sources_that_span_them(seed_rows, codebook, monkeypatch):
    from nlp import training
    from nlp.annotations import period_of

    anns = _annotations_of(_rows_of_three_sources(seed_rows, n=30), codebook, "corpus", "date")
    spanning = {(a.meta["corpus"], period_of(a)) for a in anns}
    un_decades = sorted(p for s, p in spanning if s == "ungdc")
    assert len(un_decades) >= 2  # the UN General Debate spans decades; State Department units do not
    seen = _spy_on_fits(monkeypatch)
    progress = []
    report = training.cross_validate(anns, codebook, tagger="lexicon", by="period", progress=progress.append)
    scored = [a for a in anns if a.meta["corpus"] in {s for s, p in spanning
                                                      if sum(s2 == s for s2, _ in spanning) >= 2}]
    assert report["functions"]["n_units"] == len(scored) == sum(len(anns) - n for n, _ in seen)
    assert "state_department" not in report["functions"]["by_source"]
    assert sum(m.endswith(f"of ungdc {un_decades[0]}") for m in progress) == 1
    assert sorted(report["functions"]["by_period"]) == sorted({period_of(a) for a in scored})
