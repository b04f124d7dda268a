"""Taggers: one scikit-learn-style interface, registered by name (``lexicon``, ``linear``, ...)."""

from .base import TAGGERS, Tagger, get_tagger_class, register_tagger
from . import lexicon, linear  # noqa: F401  (register the built-in taggers)

__all__ = ["TAGGERS", "Tagger", "get_tagger_class", "register_tagger"]
