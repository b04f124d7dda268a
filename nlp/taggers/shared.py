"""What several tiers compute the same way: the logistic function, a unit's seed counts and the seed-count matrix.

One copy of each, so that the tiers cannot drift apart: the ensemble averages the linear and embedding members'
logits and must read their scores on the same scale, and every tier's seed features count the same matches.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import scipy.sparse as sp
from scipy.special import expit


def sigmoid(z) -> np.ndarray:
    """The logistic function, elementwise, in the input's float precision.

    scipy's ``expit`` (what scikit-learn's logistic regression uses for its probabilities): exact far out in the
    tails, with no overflow warning and no clipping, so a very negative logit gives a tiny score, not exactly 0.
    """
    return expit(np.asarray(z))


def unit_seed_counts(passages: Sequence) -> dict[str, int]:
    """Seed matches of a unit (an annotated document): the sum over its passages, label -> matches."""
    counts: dict[str, int] = {}
    for passage in passages:
        for label, n in passage.seed_counts().items():
            counts[label] = counts.get(label, 0) + n
    return counts


def seed_columns(labels: Sequence[str]) -> dict[str, int]:
    """Column of each label in a seed matrix: the codebook's labels of every axis, in order."""
    return {label: j for j, label in enumerate(labels)}


def seed_matrix(seed_counts: Sequence[Mapping[str, int]], columns: Mapping[str, int]) -> sp.csr_matrix:
    """(n, len(columns)) float32 counts of seed matches: row i holds ``seed_counts[i]`` (label -> matches) in the
    labels' ``columns``; labels without a column (not in the codebook) are left out. Sparse: a passage matches
    the seeds of a few labels at most. Callers scale the counts (log1p, a weight) as their features need."""
    rows: list[int] = []
    cols: list[int] = []
    values: list[int] = []
    for i, counts in enumerate(seed_counts):
        for label, n in counts.items():
            j = columns.get(label)
            if j is not None:
                rows.append(i)
                cols.append(j)
                values.append(n)
    return sp.csr_matrix((np.asarray(values, dtype=np.float32), (rows, cols)), shape=(len(seed_counts), len(columns)),
                         dtype=np.float32)


def source_weights(sources: Sequence[str], power: float) -> np.ndarray:
    """Per unit, a training weight that evens out how much each source counts: (N / (S n_s)) ** ``power`` for a
    unit of a source with n_s of the N units (S sources), scaled to a mean of 1. ``power`` 0 weighs every unit
    alike, 1 gives every source the same total weight.

    Why: the annotations are mostly State Department and UN units, whose style of diplomacy sets the words' weights;
    a city source's conventions (a council resolution urging Congress on a foreign matter is advocacy) come from a
    few dozen units. Evening the sources out a little lets those count without letting a small source's noise rule."""
    sources = [str(s) for s in sources]
    if not sources:
        return np.ones(0)
    names, index, counts = np.unique(sources, return_inverse=True, return_counts=True)
    weights = (len(sources) / (len(names) * counts[index])) ** float(power)
    return weights / weights.mean()
