"""The tagger contract.

A tagger scores *passages* (see :mod:`nlp.text`) on every axis of a codebook. Documents are scored by their
passages and aggregated by max: a document carries a label if one of its passages does. Thresholds are per label
and are applied to these document-level scores.

Prediction changes nothing on the tagger, so one fitted tagger can serve several threads at once (the app shares
one per model between its browser sessions). What one call computes that a later call about the same passages
may reuse (the linear tier's sentence counts, the embedding tier's sentence vectors) travels in the
:class:`ScoredBatch` that :meth:`Tagger.score_batch` returns and :meth:`Tagger.batch_contributions` is given back,
never on the tagger. State built once on first use and never changed afterwards (stacked weights, an inference
copy of a network) is built under a lock. ``fit``, ``set_params`` and ``load_state`` do change the tagger: not
while another thread predicts with it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

import numpy as np

from ..codebook import Codebook
from ..errors import ConfigError

if TYPE_CHECKING:  # not at run time: nlp.text imports spaCy, which `cdpd models list` has no use for
    from ..text import Passage


class TaggerRegistry(Mapping):
    """Tagger classes by name, each tagger's module imported when its class is first asked for.

    The tiers' modules import what they compute with (scikit-learn and skops, torch, transformers), which takes
    seconds: importing every tier up front made ``cdpd classify`` with the linear model pay for the embedding and
    transformer tiers too. A tier is therefore declared by name and module (:meth:`declare`) and its module is
    imported by ``TAGGERS[name]`` / :func:`get_tagger_class`, where ``@register_tagger`` in it fills in the class.
    Names, ``in`` and ``len`` need no import; ``values()`` and ``items()`` import every tier.
    """

    def __init__(self) -> None:
        self._modules: dict[str, str] = {}
        self._classes: dict[str, type[Tagger]] = {}

    def declare(self, name: str, module: str) -> None:
        """``name`` is the tagger that importing ``module`` (a dotted path) registers."""
        self._modules[name] = module

    def register(self, name: str, cls: type[Tagger]) -> None:
        self._classes[name] = cls

    def __getitem__(self, name: str) -> type[Tagger]:
        if name not in self._classes and name in self._modules:
            importlib.import_module(self._modules[name])
            if name not in self._classes:
                raise ImportError(f"{self._modules[name]} did not register the tagger {name!r}")
        return self._classes[name]

    def __iter__(self) -> Iterator[str]:
        return iter({**self._modules, **self._classes})

    def __len__(self) -> int:
        return len(self._modules.keys() | self._classes.keys())

    def __contains__(self, name: object) -> bool:
        return name in self._modules or name in self._classes


#: Every tagger by name (the built-in tiers are declared in ``nlp/taggers/__init__.py``).
TAGGERS = TaggerRegistry()


def register_tagger(name: str):
    def deco(cls):
        cls.name = name
        TAGGERS.register(name, cls)
        return cls

    return deco


def get_tagger_class(name: str) -> type["Tagger"]:
    try:
        return TAGGERS[name]
    except KeyError:
        raise ConfigError(f"unknown tagger {name!r}; available: {', '.join(sorted(TAGGERS))}") from None


Units = Sequence[Sequence["Passage"]]  # one entry per document: its passages


class NotFittedError(RuntimeError, AttributeError):
    """A tagger was used before ``fit`` or loading. An ``AttributeError`` too (as scikit-learn's), so that
    ``hasattr(tagger, "thresholds_")`` is simply False before fitting."""


@dataclass(frozen=True, eq=False)
class ScoredBatch:
    """Passages scored in one call: their scores per axis (as :meth:`Tagger.passage_proba` gives them) and
    ``state``, what the tagger computed on the way that evidence for these passages may reuse (its own business;
    ``None`` when it keeps nothing). It belongs to the caller, so threads never see each other's."""

    passages: Sequence[Passage]
    scores: dict[str, np.ndarray]
    state: Any = None


class Tagger:
    """Base class: subclasses implement ``fit``, ``passage_proba`` and ``sentence_contributions``.

    As in scikit-learn, the constructor stores the codebook and the parameters, and fitted state (names ending in
    ``_``: ``thresholds_``, per axis one threshold per label) appears only in ``fit`` (or when
    ``nlp.models.load_model`` loads a model); asked for before, it raises :class:`NotFittedError`. The contract
    every tagger keeps is checked by :mod:`nlp.taggers.checks`.
    """

    name: ClassVar[str] = "tagger"
    trainable: ClassVar[bool] = True
    #: Whether ``fit`` leaves ``oof_passage_scores_``: out-of-fold passage scores of the training units, per axis
    #: (what the ensemble tier tunes its thresholds on).
    out_of_fold: ClassVar[bool] = False
    _param_names: ClassVar[tuple[str, ...]] = ()
    #: Whether ``fit`` takes ``sources=`` (one source name per unit), as the trainers pass where they know them.
    fit_takes_sources: ClassVar[bool] = False

    thresholds_: dict[str, np.ndarray]  # fitted state: set by fit() or load_model(), never by __init__

    def __init__(self, codebook: Codebook):
        self.codebook = codebook
        self.labels = codebook.label_sets()

    def __getattr__(self, name: str):
        """Only called for an attribute that is not there: fitted state asked for too early says so."""
        if name.endswith("_") and not name.startswith("_"):
            raise NotFittedError(f"{self.name} tagger is not fitted (it has no {name}): call fit() or load a "
                                 "trained model")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # -- scikit-learn-style parameters -------------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._param_names}

    def set_params(self, **params) -> "Tagger":
        for key, value in params.items():
            if key not in self._param_names:
                raise ConfigError(f"{self.name} tagger has no parameter {key!r}; it has {', '.join(self._param_names)}")
            setattr(self, key, value)
        return self

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        """Refuse, as a :class:`~nlp.errors.ConfigError`, a parameter value that can be checked before any text is
        processed (a file that is not there); called by :func:`nlp.training.tagger_settings`. Nothing by default."""

    # -- to implement ------------------------------------------------------------------------------------------
    def fit(self, units: Units, y: dict[str, np.ndarray]) -> "Tagger":
        raise NotImplementedError

    def passage_proba(self, passages: Sequence[Passage]) -> dict[str, np.ndarray]:
        """Scores in [0, 1], per axis an array of shape (n_passages, n_labels)."""
        raise NotImplementedError

    def sentence_contributions(self, passages: Sequence[Passage], axis: str) -> list[np.ndarray]:
        """How much each sentence pushes each label's score up: per passage, shape (n_sentences, n_labels)."""
        raise NotImplementedError

    # -- scoring and evidence in one batch (override to reuse work; the defaults reuse nothing) -----------------
    def score_batch(self, passages: Sequence[Passage]) -> ScoredBatch:
        """:meth:`passage_proba` of ``passages``, with whatever evidence for them may reuse."""
        return ScoredBatch(passages, self.passage_proba(passages))

    def batch_contributions(self, batch: ScoredBatch, rows: Sequence[int], axis: str) -> list[np.ndarray]:
        """:meth:`sentence_contributions` of ``batch.passages[k]`` for ``k`` in ``rows``, in that order, reusing what
        scoring the batch computed. What ``DocumentTagger`` uses for evidence: the best passages of the selected
        labels, asked once per axis."""
        return self.sentence_contributions([batch.passages[k] for k in rows], axis)

    def save_state(self, folder) -> None:
        """Write fitted state into ``folder`` in a safe format (no pickle). Nothing to write by default."""

    def load_state(self, folder) -> None:
        """Read what :meth:`save_state` wrote."""

    # -- shared ------------------------------------------------------------------------------------------------
    def predict_proba(self, units: Units) -> dict[str, np.ndarray]:
        """Document-level scores: the max over each document's passages."""
        flat = [p for unit in units for p in unit]
        owners = np.repeat(np.arange(len(units)), [len(u) for u in units])
        scores = self.passage_proba(flat) if flat else {a: np.zeros((0, len(l))) for a, l in self.labels.items()}
        return {axis: aggregate_max(s, owners, len(units)) for axis, s in scores.items()}

    def predict(self, units: Units) -> dict[str, np.ndarray]:
        """Document-level scores at ``thresholds_``. A document without passages carries no label, whatever the
        thresholds (one tuned to 0 on little data would otherwise put its label on a document without a word)."""
        proba = self.predict_proba(units)
        has_text = np.array([len(unit) > 0 for unit in units], dtype=bool).reshape(-1, 1)
        return {axis: (proba[axis] >= self.thresholds_[axis]) & has_text for axis in proba}


def aggregate_max(scores: np.ndarray, owners: np.ndarray, n_docs: int) -> np.ndarray:
    """Per-document max of passage scores; a document without passages scores 0."""
    out = np.zeros((n_docs, scores.shape[1]))
    if len(owners):
        np.maximum.at(out, owners, scores)
    return out
