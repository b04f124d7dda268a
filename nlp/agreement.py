"""Agreement between annotators, per label: Cohen's kappa (mean over annotator pairs) and Krippendorff's alpha.

Each label is a binary decision per unit (the annotator did or did not give it), so both statistics are the
nominal, two-category forms. Units are texts (matched by normalised text) annotated by two or more people.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any, Iterable

import numpy as np
import pandas as pd

from .codebook import Codebook


def cohen_kappa(a: Iterable[int], b: Iterable[int]) -> float:
    """Cohen's kappa of two raters' binary codes for the same units; NaN when chance agreement is total."""
    a, b = np.asarray(list(a), dtype=int), np.asarray(list(b), dtype=int)
    if a.shape != b.shape or a.size == 0:
        raise ValueError("cohen_kappa needs two equally long, non-empty sequences")
    observed = float(np.mean(a == b))
    pa, pb = a.mean(), b.mean()
    expected = pa * pb + (1 - pa) * (1 - pb)
    return float("nan") if np.isclose(expected, 1.0) else (observed - expected) / (1 - expected)


def krippendorff_alpha(units: Iterable[Iterable[Any]]) -> float:
    """Krippendorff's alpha (nominal) for units given as the list of values their coders gave (missing values
    simply left out). Units with fewer than two values are not pairable and are ignored."""
    coincidence: dict[tuple[Any, Any], float] = defaultdict(float)
    for values in units:
        values = list(values)
        m = len(values)
        if m < 2:
            continue
        for i, j in itertools.permutations(range(m), 2):
            coincidence[(values[i], values[j])] += 1.0 / (m - 1)
    n_c: dict[Any, float] = defaultdict(float)
    for (c, _k), o in coincidence.items():
        n_c[c] += o
    n = sum(n_c.values())
    if n <= 1:
        return float("nan")
    disagree = sum(o for (c, k), o in coincidence.items() if c != k)
    expected = sum(n_c[c] * n_c[k] for c in n_c for k in n_c if c != k) / (n - 1)
    return float("nan") if expected == 0 else 1.0 - disagree / expected


def agreement_table(annotations: list[dict[str, Any]], codebook: Codebook) -> pd.DataFrame:
    """Per label (rows: axis, label): units coded by two or more annotators, Cohen's kappa averaged over annotator
    pairs (Light's kappa; pairs sharing fewer than two units skipped) and Krippendorff's alpha.

    ``annotations`` are rows with ``text``, ``labels`` ({axis: [labels]}) and ``annotator``; an annotator's
    latest annotation of a text counts. Empty when no text has two annotators.
    """
    from .normalise import text_key

    by_unit: dict[str, dict[str, dict[str, list[str]]]] = defaultdict(dict)
    for row in annotations:
        by_unit[text_key(row["text"])][row["annotator"]] = row["labels"]
    shared = {key: coders for key, coders in by_unit.items() if len(coders) >= 2}
    if not shared:
        return pd.DataFrame(columns=["units", "kappa", "alpha"])
    annotators = sorted({a for coders in shared.values() for a in coders})
    records = []
    for axis in codebook.axis_names:
        for label in codebook.labels(axis):
            codes = {key: {a: int(label in labels.get(axis, [])) for a, labels in coders.items()}
                     for key, coders in shared.items()}
            kappas, weights = [], []
            for a, b in itertools.combinations(annotators, 2):
                both = [c for c in codes.values() if a in c and b in c]
                if len(both) >= 2:
                    k = cohen_kappa([c[a] for c in both], [c[b] for c in both])
                    if not np.isnan(k):
                        kappas.append(k)
                        weights.append(len(both))
            records.append({"axis": axis, "label": label, "units": len(codes),
                            "kappa": float(np.average(kappas, weights=weights)) if kappas else float("nan"),
                            "alpha": krippendorff_alpha(list(c.values()) for c in codes.values())})
    return pd.DataFrame.from_records(records).set_index(["axis", "label"])
