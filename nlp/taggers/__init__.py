"""Taggers: one scikit-learn-style interface, registered by name (``lexicon``, ``linear``, ...)."""

from .base import TAGGERS, NotFittedError, ScoredBatch, Tagger, get_tagger_class, register_tagger
from . import lexicon, linear  # noqa: F401  (register the built-in taggers)
from . import embedding  # noqa: F401  (registers "embedding"; torch is imported only when it is used)
from . import transformer  # noqa: F401  (registers "transformer"; torch is imported only when it is used)
from . import ensemble  # noqa: F401  (registers "ensemble": linear and embedding combined)

__all__ = ["TAGGERS", "NotFittedError", "ScoredBatch", "Tagger", "get_tagger_class", "register_tagger"]
