"""The convergence reading of the CD-PD diagram: for each function, how much each side (by default city
documents against national ones) uses it, with uncertainty, and what that means in Amiri's terms.

Statistics only (no plotting): a :class:`~nlp.analysis.units.UnitMatrix` in, a :class:`Convergence` out.

Method, in order:

1. Each side's share (a ratio ``sum of numerators / sum of denominators`` over its documents, in the unit of the
   matrix) and a percentile bootstrap interval that **resamples documents within each side**: documents, not
   passages, are the independent units (a speech's passages rise and fall together), so for the passages unit a
   replicate resamples documents and recomputes passages carrying the label over passages.
2. The difference A - B, its percentile interval (the two sides resampled independently) and a Wald test using
   the bootstrap standard error, ``p = 2 * Phi(-|d / se|)``: a bootstrap p-value cannot go below 1 / replicates.
3. Holm's step-down adjustment across the functions tested (those whose difference varies across replicates).
4. The reading by :data:`READING_RULE`, and the Amiri zone from the codebook's ``practice`` and ``amiri``.

The bootstrap is vectorised: a replicate's document weights are drawn as counts (``bincount`` of uniform
indices), and all replicates' numerators are one matrix product ``weights @ counts``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..codebook import Codebook
from ..errors import ConfigError, DataError
from .units import UnitMatrix

#: A side "leads" only when the larger share is at least this many times the smaller (a size that matters).
SHARE_RATIO = 1.5
#: Below this share (1%) a side is taken not to use a function.
FLOOR = 0.01
DEFAULT_REPLICATES = 200
DEFAULT_ALPHA = 0.05
#: Bootstrap weights held in memory at once (replicates x documents cells); more replicates run in blocks.
_BLOCK_CELLS = 4_000_000

#: The reading rule, for sides named A and B (:func:`reading_rule` fills in the names).
READING_RULE = (
    "'{A} only' / '{B} only': the upper bound of one side's share is below {floor:.0%} while the other's lower "
    "bound is at least {floor:.0%}; 'rare on both': both upper bounds are below {floor:.0%}; '{A}-led' / '{B}-led': "
    "the difference is significant (Holm-adjusted p < {alpha:g}) and the larger share is at least {ratio:g} times "
    "the smaller; 'convergent' otherwise (no significant difference of a size that matters)."
)
ZONE_RULE = (
    "Zones (codebook's amiri field): 'expected overlap' where Amiri names an overlap and the reading is convergent; "
    "'expected overlap, not observed' where he names one and the reading is anything else; 'intervention space: "
    "SIDE' where he names a crossover opportunity and SIDE is significantly weaker or absent (where a policy could "
    "act); 'crossover, both active' where he names a crossover and the reading is convergent."
)


def reading_rule(a: str = "city", b: str = "state", alpha: float = DEFAULT_ALPHA) -> str:
    """:data:`READING_RULE` in the sides' names."""
    return READING_RULE.format(A=a, B=b, floor=FLOOR, alpha=alpha, ratio=SHARE_RATIO)


@dataclass
class Convergence:
    """The convergence reading. ``table``: index the function ids (codebook order), columns ``practice, amiri,
    {A}_share, {A}_low, {A}_high, {A}_n, {B}_share, {B}_low, {B}_high, {B}_n, difference, difference_low,
    difference_high, p_value, p_adjusted, reading, zone`` ({X}_n: units counted on side X)."""

    table: pd.DataFrame
    sides: tuple[str, str]
    unit: str
    unit_label: str
    diplomatic_only: bool
    replicates: int
    seed: int
    alpha: float
    rule: str
    method: str
    n: dict[str, int] = field(default_factory=dict)
    documents: dict[str, int] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """Which reading this is, in words: diplomatic units only, or all units."""
        return "diplomatic units only" if self.diplomatic_only else "all units"


def bootstrap_weights(n: int, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """``replicates x n`` resampling counts: each row is how often each of ``n`` documents was drawn in one
    resample of size ``n`` (a multinomial draw, as ``bincount`` of uniform indices: fast for large ``n``)."""
    if n == 0:
        return np.zeros((replicates, 0))
    picks = rng.integers(0, n, size=(replicates, n))
    picks += (np.arange(replicates) * n)[:, None]
    return np.bincount(picks.ravel(), minlength=replicates * n).reshape(replicates, n).astype(np.float64)


def bootstrap_shares(counts: np.ndarray, weights: np.ndarray, replicates: int,
                     rng: np.random.Generator) -> np.ndarray:
    """``replicates x labels`` ratio shares ``(w @ counts) / (w @ weights)`` over document resamples ``w``
    (NaN in a replicate whose denominator is 0)."""
    n, k = counts.shape
    out = np.empty((replicates, k))
    block = max(1, min(replicates, _BLOCK_CELLS // max(n, 1)))
    for start in range(0, replicates, block):
        stop = min(replicates, start + block)
        w = bootstrap_weights(n, stop - start, rng)
        num, den = w @ counts, w @ weights
        with np.errstate(divide="ignore", invalid="ignore"):
            out[start:stop] = np.where(den[:, None] > 0, num / den[:, None], np.nan)
    return out


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN entries are not tested and stay NaN): the i-th smallest of m is
    multiplied by m - i + 1, made monotone, capped at 1."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    m = len(tested)
    if m == 0:
        return out
    order = tested[np.argsort(p[tested], kind="stable")]
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out[order] = adjusted
    return out


def wald_p(difference: np.ndarray, se: np.ndarray) -> np.ndarray:
    """Two-sided normal p-values ``2 * Phi(-|d / se|)``; NaN where the difference never varies (se = 0 and
    d = 0: nothing to test), 0 where it is constant and non-zero."""
    p = np.full(np.shape(difference), np.nan)
    for i, (d, s) in enumerate(zip(np.ravel(difference), np.ravel(se))):
        if not np.isfinite(d) or not np.isfinite(s):
            continue
        if s > 0:
            p.flat[i] = math.erfc(abs(d / s) / math.sqrt(2))
        elif d != 0:
            p.flat[i] = 0.0
    return p


def read(a: str, b: str, row: dict, alpha: float) -> str:
    """The reading of one function by :data:`READING_RULE` (``row`` holds the table's columns)."""
    a_low, a_high, b_low, b_high = row[f"{a}_low"], row[f"{a}_high"], row[f"{b}_low"], row[f"{b}_high"]
    if a_high < FLOOR and b_high < FLOOR:
        return "rare on both"
    if a_high < FLOOR <= b_low:
        return f"{b} only"
    if b_high < FLOOR <= a_low:
        return f"{a} only"
    p = row["p_adjusted"]
    sa, sb = row[f"{a}_share"], row[f"{b}_share"]
    if np.isfinite(p) and p < alpha:
        if sa > sb and sa >= SHARE_RATIO * sb:
            return f"{a}-led"
        if sb > sa and sb >= SHARE_RATIO * sa:
            return f"{b}-led"
    return "convergent"


def zone(reading: str, amiri: str, a: str, b: str) -> str:
    """The Amiri zone of a function from its reading (see :data:`ZONE_RULE`)."""
    if amiri == "overlap":
        return "expected overlap" if reading == "convergent" else "expected overlap, not observed"
    if amiri == "crossover":
        if reading == "convergent":
            return "crossover, both active"
        if reading in (f"{a}-led", f"{a} only"):
            return f"intervention space: {b}"
        if reading in (f"{b}-led", f"{b} only"):
            return f"intervention space: {a}"
    return ""


def _attribute(codebook: Codebook | None, label: str, key: str) -> str:
    if codebook is None:
        return ""
    try:
        return str(codebook.label(label).attributes.get(key) or "")
    except KeyError:
        return ""


def _practice(codebook: Codebook | None, label: str) -> str:
    return _attribute(codebook, label, "practice")


def convergence(matrix: UnitMatrix, codebook: Codebook | None = None, *, replicates: int = DEFAULT_REPLICATES,
                seed: int = 0, alpha: float = DEFAULT_ALPHA) -> Convergence:
    """The convergence reading of ``matrix`` (see the module docstring). Raises ``ValueError`` when a side has no
    unit (nothing to compare) or the settings are out of range."""
    if isinstance(replicates, bool) or not isinstance(replicates, (int, np.integer)) or replicates < 20:
        raise ConfigError(f"replicates must be a whole number >= 20 (percentile intervals need them), not "
                         f"{replicates!r}")
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must lie between 0 and 1, not {alpha!r}")
    a, b = matrix.sides
    n, documents = matrix.n(), matrix.documents()
    empty = [name for name in (a, b) if n[name] == 0]
    if empty:
        raise DataError(f"side(s) {', '.join(empty)} count no unit ({matrix.unit}"
                         f"{', diplomatic only' if matrix.diplomatic_only else ''}): nothing to compare")
    rng = np.random.default_rng(seed)
    labels = list(matrix.labels)
    shares = matrix.shares()
    boot = {}
    for k, name in enumerate((a, b)):
        mask = matrix.side == k
        boot[name] = bootstrap_shares(matrix.counts[mask], matrix.weights[mask], int(replicates), rng)
    q = [100 * alpha / 2, 100 * (1 - alpha / 2)]
    table = pd.DataFrame(index=pd.Index(labels, name=matrix.axis))
    table["practice"] = [_attribute(codebook, label, "practice") for label in labels]
    table["amiri"] = [_attribute(codebook, label, "amiri") for label in labels]
    for name in (a, b):
        low, high = np.nanpercentile(boot[name], q, axis=0)
        table[f"{name}_share"] = shares[name].to_numpy()
        table[f"{name}_low"] = low
        table[f"{name}_high"] = high
        table[f"{name}_n"] = n[name]
    diff = boot[a] - boot[b]
    table["difference"] = table[f"{a}_share"] - table[f"{b}_share"]
    d_low, d_high = np.nanpercentile(diff, q, axis=0)
    table["difference_low"], table["difference_high"] = d_low, d_high
    se = np.nanstd(diff, axis=0, ddof=1)
    table["p_value"] = wald_p(table["difference"].to_numpy(), se)
    table["p_adjusted"] = holm(table["p_value"].to_numpy())
    rows = table.to_dict("index")
    table["reading"] = [read(a, b, rows[label], alpha) for label in labels]
    table["zone"] = [zone(r, am, a, b) for r, am in zip(table["reading"], table["amiri"])]
    method = (f"{replicates} bootstrap replicates (seed {seed}) resampling documents within each side; "
              f"{100 * (1 - alpha):g}% percentile intervals for each share and for the difference {a} - {b}; "
              f"Wald test of the difference with the bootstrap standard error, p = 2 Phi(-|d/se|); "
              f"Holm adjustment across the {int(np.isfinite(table['p_value']).sum())} {matrix.axis} tested "
              f"(those whose difference varies across replicates).")
    return Convergence(table, (a, b), matrix.unit, matrix.unit_label, matrix.diplomatic_only, int(replicates),
                       int(seed), float(alpha), reading_rule(a, b, alpha) + " " + ZONE_RULE, method, n, documents)


def standardised_residuals(table: pd.DataFrame) -> pd.DataFrame:
    """(observed - expected) / sqrt(expected) under independence, the cells whose squares sum to chi-square."""
    values = table.to_numpy(float)
    total = values.sum()
    expected = np.outer(values.sum(1), values.sum(0)) / total
    with np.errstate(divide="ignore", invalid="ignore"):
        res = np.where(expected > 0, (values - expected) / np.sqrt(expected), 0.0)
    return pd.DataFrame(res, index=table.index, columns=table.columns)
