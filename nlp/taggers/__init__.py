"""Taggers: one scikit-learn-style interface, registered by name (``lexicon``, ``linear``, ...).

The built-in tiers are declared here by name and module, not imported: a tier's module (and what it imports:
scikit-learn, skops, torch) is loaded when that tier is first used (see :class:`~nlp.taggers.base.TaggerRegistry`).
"""

from .base import TAGGERS, NotFittedError, ScoredBatch, Tagger, get_tagger_class, register_tagger

for _name in ("lexicon", "linear", "embedding", "transformer", "ensemble"):
    TAGGERS.declare(_name, f"{__name__}.{_name}")
del _name

__all__ = ["TAGGERS", "NotFittedError", "ScoredBatch", "Tagger", "get_tagger_class", "register_tagger"]
