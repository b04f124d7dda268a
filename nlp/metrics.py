"""Multi-label metrics and threshold tuning (pure functions over label matrices)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.metrics import precision_recall_fscore_support


def best_threshold(y_true: np.ndarray, scores: np.ndarray, default: float = 0.5) -> float:
    """The threshold that maximises F1 for one label; ``default`` when the label has no positives.

    Candidate thresholds are the midpoints between consecutive distinct scores, so the choice does not sit on a
    training example's score; ties in F1 go to the threshold closest to ``default``.
    """
    y_true = np.asarray(y_true, dtype=bool)
    if not y_true.any():
        return default
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], y_true[order]
    tp = np.cumsum(y)
    k = np.arange(1, len(s) + 1)
    f1 = 2 * tp / (k + y.sum())
    # only cut where the score changes: everything with score >= cut is predicted positive
    distinct = np.r_[s[1:] < s[:-1], True]
    f1 = np.where(distinct, f1, -1)
    best = f1.max()
    candidates = np.flatnonzero(f1 >= best - 1e-12)
    cuts = [(s[i] + s[i + 1]) / 2 if i + 1 < len(s) else s[i] / 2 for i in candidates]
    return float(min(cuts, key=lambda c: abs(c - default)))


def tune_thresholds(y_true: np.ndarray, scores: np.ndarray, default: float = 0.5, *, bootstrap: int = 0,
                    seed: int = 0) -> np.ndarray:
    """Per label, :func:`best_threshold`; with ``bootstrap`` B > 0, the median of the F1-optimal thresholds of B
    bootstrap resamples of the units instead (bagged thresholds).

    Why: F1 over the threshold is flat near its top, so the single argmax moves by a tenth between two fits that
    score the units almost alike (seen on the most frequent function: 0.25 and 0.36 for two gazetteers). The median
    over resamples sits in the middle of the plateau and moves less from one training set to the next."""
    y_true, scores = np.asarray(y_true), np.asarray(scores)
    labels = range(y_true.shape[1])
    if bootstrap <= 0:
        return np.array([best_threshold(y_true[:, j], scores[:, j], default) for j in labels])
    rng = np.random.default_rng(seed)
    n = len(y_true)
    draws = [rng.integers(0, n, n) for _ in range(int(bootstrap))]
    return np.array([float(np.median([best_threshold(y_true[d, j], scores[d, j], default) for d in draws]))
                     for j in labels])


def micro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Micro-averaged F1 over every (unit, label) cell: 2 TP / (true + predicted positives); 0 when both are 0.

    What :func:`axis_report` gives as ``micro.f1``, without scikit-learn's input checks: cheap enough to follow
    training epoch by epoch.
    """
    y_true, y_pred = np.asarray(y_true, dtype=bool), np.asarray(y_pred, dtype=bool)
    tp = float((y_true & y_pred).sum())
    denom = float(y_true.sum() + y_pred.sum())
    return 2 * tp / denom if denom else 0.0


def axis_report(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str],
                sources: Sequence[str] | None = None, periods: Sequence[str] | None = None) -> dict:
    """Micro and macro F1 and per-label precision, recall, F1 and support for one axis.

    Also the **false-label rate on empty units**: of the units whose gold has no label on this axis (on the
    functions axis: domestic business, which has no diplomacy function), the share given at least one label
    (``empty_units``, ``false_on_empty``). With ``sources`` (one name per unit), the same summary per source under
    ``by_source``: the product is weakest on some sources, and an overall figure hides them. With ``periods`` (one
    per unit, see :func:`~nlp.annotations.period_of`), the same per period under ``by_period``.
    """
    y_true = np.asarray(y_true, dtype=int)
    y_pred = np.asarray(y_pred, dtype=int)
    report = _summary(y_true, y_pred)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0,
                                                 labels=list(range(len(labels))))
    report["labels"] = {
        label: {"precision": float(p[j]), "recall": float(r[j]), "f1": float(f[j]), "support": int(s[j])}
        for j, label in enumerate(labels)
    }
    if sources is not None:
        report["by_source"] = _by_group(y_true, y_pred, sources, "sources")
    if periods is not None:
        report["by_period"] = _by_group(y_true, y_pred, periods, "periods")
    return report


def _by_group(y_true: np.ndarray, y_pred: np.ndarray, groups: Sequence[str], what: str) -> dict:
    groups = np.asarray(groups, dtype=str)
    if len(groups) != len(y_true):
        raise ValueError(f"{len(groups)} {what} for {len(y_true)} units")
    return {g: _summary(y_true[groups == g], y_pred[groups == g]) for g in sorted(set(groups.tolist()))}


def _summary(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Micro P/R/F1, macro F1 (over labels with support), samples F1 and the false-label rate on empty units."""
    if len(y_true) == 0:
        return {"micro": {"precision": 0.0, "recall": 0.0, "f1": 0.0}, "macro_f1": 0.0, "samples_f1": 0.0,
                "n_units": 0, "empty_units": 0, "false_on_empty": None}
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0,
                                                 labels=list(range(y_true.shape[1])))
    mp, mr, mf, _ = precision_recall_fscore_support(y_true, y_pred, average="micro", zero_division=0)
    present = s > 0
    empty = y_true.sum(1) == 0
    return {
        "micro": {"precision": float(mp), "recall": float(mr), "f1": float(mf)},
        "macro_f1": float(f[present].mean()) if present.any() else 0.0,
        "samples_f1": _samples_f1(y_true, y_pred),
        "n_units": int(len(y_true)),
        "empty_units": int(empty.sum()),
        "false_on_empty": float((y_pred[empty].sum(1) > 0).mean()) if empty.any() else None,
    }


def _samples_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean per-unit F1; a unit with no true and no predicted label counts as 1 (empty answers are real answers)."""
    tp = (y_true & y_pred).sum(1)
    denom = y_true.sum(1) + y_pred.sum(1)
    per_unit = np.where(denom == 0, 1.0, 2 * tp / np.maximum(denom, 1))
    return float(per_unit.mean()) if len(per_unit) else 0.0


def calibration_table(y_true: np.ndarray, scores: np.ndarray, bins: int = 10) -> list[dict]:
    """Reliability of scores pooled over labels: per score bin, mean score vs. observed share of positives."""
    y = np.asarray(y_true, dtype=float).ravel()
    p = np.asarray(scores, dtype=float).ravel()
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    rows = []
    for b in range(bins):
        mask = which == b
        if mask.any():
            rows.append({"bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}", "n": int(mask.sum()),
                         "mean_score": float(p[mask].mean()), "observed": float(y[mask].mean())})
    return rows


def expected_calibration_error(table: list[dict]) -> float:
    n = sum(r["n"] for r in table)
    return float(sum(r["n"] * abs(r["mean_score"] - r["observed"]) for r in table) / n) if n else 0.0


def side_by_side(report_a: dict, report_b: dict) -> "pd.DataFrame":
    """Per-label F1 of two evaluation reports (as :func:`axis_report` per axis) in one table: rows (axis, label),
    columns ``A``, ``B``, ``B - A`` and ``support``; the micro and macro F1 of each axis come first."""
    import pandas as pd

    rows = []
    for axis, ra in report_a.items():
        rb = report_b.get(axis)
        if not isinstance(ra, dict) or not isinstance(rb, dict) or "labels" not in ra:
            continue
        rows.append((axis, "(micro)", ra["micro"]["f1"], rb["micro"]["f1"], None))
        rows.append((axis, "(macro)", ra["macro_f1"], rb["macro_f1"], None))
        for label, m in ra["labels"].items():
            if label in rb["labels"]:
                rows.append((axis, label, m["f1"], rb["labels"][label]["f1"], m["support"]))
    frame = pd.DataFrame(rows, columns=["axis", "label", "A", "B", "support"]).set_index(["axis", "label"])
    frame.insert(2, "B - A", frame["B"] - frame["A"])
    return frame


def quality_by_source(report: dict) -> "pd.DataFrame":
    """One row per source (and ``all``), per axis its micro-F1, macro-F1, false-label rate on empty units and how many
    empty units that rate is over, and the number of units: the per-source view of an evaluation report (as
    :func:`axis_report` gives per axis with ``sources``).

    Columns are ``(axis, figure)``; a source with no empty unit on an axis has no rate (NaN), not 0.
    """
    import pandas as pd

    rows: dict[str, dict[tuple[str, str], float]] = {}
    for axis, r in report.items():
        if not isinstance(r, dict) or "micro" not in r:
            continue
        parts = {"all": r, **r.get("by_source", {})}
        for source, s in parts.items():
            row = rows.setdefault(source, {})
            row[(axis, "micro-F1")] = s["micro"]["f1"]
            row[(axis, "macro-F1")] = s["macro_f1"]
            rate = s.get("false_on_empty")
            row[(axis, "false on empty")] = float("nan") if rate is None else rate
            row[(axis, "empty units")] = s.get("empty_units", 0)
            row[(axis, "units")] = s["n_units"]
    frame = pd.DataFrame.from_dict(rows, orient="index")
    if not frame.empty:
        frame.columns = pd.MultiIndex.from_tuples(frame.columns)
        frame.index.name = "source"
    return frame
