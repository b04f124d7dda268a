"""The lexicon tagger: the codebook's seed phrases and nothing else. A transparent baseline with no training."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..text import Passage
from .base import Tagger, Units, register_tagger


@register_tagger("lexicon")
class LexiconTagger(Tagger):
    """Score = 1 - 2^-hits, so one seed match reaches the threshold of 0.5 and more matches score higher.

    Nothing to learn: the seeds are the model. As a scikit-learn estimator that needs no fitting
    (``requires_fit=False``), it scores without being fitted; its thresholds are still fitted state like every
    tier's, set by :meth:`fit` (which learns nothing) or by ``nlp.models.load_model("lexicon")``, and needed by
    ``predict`` and ``DocumentTagger``. Setting them on first use instead would write to a tagger that threads
    share while it predicts.
    """

    trainable = False
    #: One seed match: 1 - 2^-1.
    THRESHOLD = 0.5

    def fit(self, units: Units, y: dict[str, np.ndarray]) -> "LexiconTagger":
        """Learns nothing from ``units`` and ``y``; sets the fixed thresholds."""
        self.thresholds_ = {axis: np.full(len(labs), self.THRESHOLD) for axis, labs in self.labels.items()}
        return self

    def _counts(self, counts: dict[str, int], axis: str) -> np.ndarray:
        return np.array([counts.get(label, 0) for label in self.labels[axis]], dtype=float)

    def passage_proba(self, passages: Sequence[Passage]) -> dict[str, np.ndarray]:
        seeds = [p.seed_counts() for p in passages]
        return {
            axis: 1.0 - np.power(0.5, np.array([self._counts(c, axis) for c in seeds]).reshape(len(seeds), len(labels)))
            for axis, labels in self.labels.items()
        }

    def sentence_contributions(self, passages: Sequence[Passage], axis: str) -> list[np.ndarray]:
        labels = self.labels[axis]
        return [np.array([[float(s.seeds.get(lab, 0)) for lab in labels] for s in p.sentences]).reshape(
            len(p.sentences), len(labels)) for p in passages]
