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


def tune_thresholds(y_true: np.ndarray, scores: np.ndarray, default: float = 0.5) -> np.ndarray:
    return np.array([best_threshold(y_true[:, j], scores[:, j], default) for j in range(y_true.shape[1])])


def axis_report(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> dict:
    """Micro and macro F1 and per-label precision, recall, F1 and support for one axis."""
    y_true = np.asarray(y_true, dtype=int)
    y_pred = np.asarray(y_pred, dtype=int)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
    mp, mr, mf, _ = precision_recall_fscore_support(y_true, y_pred, average="micro", zero_division=0)
    present = s > 0
    return {
        "micro": {"precision": float(mp), "recall": float(mr), "f1": float(mf)},
        "macro_f1": float(f[present].mean()) if present.any() else 0.0,
        "n_units": int(len(y_true)),
        "labels": {
            label: {"precision": float(p[j]), "recall": float(r[j]), "f1": float(f[j]), "support": int(s[j])}
            for j, label in enumerate(labels)
        },
    }
