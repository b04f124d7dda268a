"""The ensemble tier: the linear and embedding taggers' scores averaged on the logit scale, thresholds re-tuned.

Scores. Each member scores a passage; the ensemble's score for a label is
``sigmoid(sum_m w_m * logit(p_m) / sum_m w_m)`` (a weighted geometric mean of the members' odds), and documents
are scored by their best passage, as for every tier. Averaging logits rather than probabilities keeps a confident
member's vote (a score of 0.99 against 0.6 stays high) and keeps sentence evidence additive: a sentence's
contribution is the same weighted sum of its contributions in each member (the linear member's are shares of its
logit, the embedding member's logit differences).

Training. Every member is fitted on all units; the trainable members compute out-of-fold passage scores while they
tune their own thresholds (``oof_passage_scores_``, the linear and embedding taggers' 5-fold loop), so the
ensemble's per-label thresholds are tuned on out-of-fold document scores of the combination at no extra fit. A
member that is not trained (the lexicon) is scored directly. A member without out-of-fold scores (the transformer)
is refused.

Zero-shot. A label without any positive training example is scored by the members that score it zero-shot (the
embedding tagger: similarity to the label's definition, calibrated on the other labels) alone, at their
threshold: the linear member would only say "never". :attr:`EnsembleTagger.zero_shot` names such labels.

Which combination. Chosen by 5-fold cross-validation of the 1,296 training units of the standard held-out split
(never on the held-out units). Functions micro/macro-F1: linear 0.737/0.557, embedding 0.733/0.540; logits
averaged with equal weights 0.742/0.564, and 0.748/0.575 with the linear member's C raised from 4 to 16 (C 2, 8, 32:
0.738, 0.747, 0.746; bigrams: 0.747 at best; the embedding member's C from 0.02 to 0.3 or seed weight 2 or 8
instead: 0.745-0.747). Averaging probabilities (0.743), weights tuned per axis on out-of-fold scores (they moved
between 0.3 and 0.7 from fold to fold; 0.749) and logistic stacking per axis (0.743) or per label (0.66) did no
better or worse. Domains moved by less than a point (0.800 linear, 0.808 this ensemble). On the held-out units it
is level with linear on functions micro-F1 (0.807 vs 0.806, macro 0.622 vs 0.659) and better on domains (0.832 vs
0.816): benchmarks/RESULTS.md, "Models".

State: each member's own state in a subfolder named after it (the members' formats: safetensors for linear, skops
for embedding), and ``ensemble.json`` with the members' thresholds and zero-shot labels. No pickle anywhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError, DataError, ModelError
from ..metrics import tune_thresholds
from ..text import Passage
from .base import ScoredBatch, Tagger, Units, aggregate_max, get_tagger_class, register_tagger
from .shared import sigmoid

STATE_FILE = "ensemble.json"
DEFAULT_MEMBERS = ("linear", "embedding")
#: Member settings that differ from the members' own defaults (given ``member_params`` override them).
DEFAULT_MEMBER_PARAMS: dict[str, dict[str, Any]] = {"linear": {"C": 16.0}}
_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1.0 - _EPS)
    return np.log(p) - np.log1p(-p)


@register_tagger("ensemble")
class EnsembleTagger(Tagger):
    _param_names = ("members", "weights", "member_params")
    fit_takes_sources = True
    #: Settings of how to compute (not recorded in meta.json), passed on to the members that take them.
    _runtime_names = ("cache", "batch_size", "device")

    def __init__(self, codebook, *, members: Sequence[str] = DEFAULT_MEMBERS, weights: Sequence[float] | None = None,
                 member_params: dict[str, dict[str, Any]] | None = None, **runtime):
        super().__init__(codebook)
        unknown = [k for k in runtime if k not in self._runtime_names]
        if unknown:
            raise ConfigError(f"ensemble tagger: unexpected argument(s) {', '.join(unknown)}")
        self.runtime = dict(runtime)
        self.members = list(members)
        self.weights = None if weights is None else [float(w) for w in weights]
        self.member_params = {name: dict(p) for name, p in (member_params or {}).items()}
        self._build_members()

    # -- members -------------------------------------------------------------------------------------------------
    def _build_members(self) -> None:
        if len(self.members) < 2 or len(set(self.members)) != len(self.members):
            raise ConfigError(f"ensemble tagger: members must be two or more distinct taggers, got {self.members}")
        if "ensemble" in self.members:
            raise ConfigError("ensemble tagger: an ensemble cannot be its own member")
        weights = self.weights if self.weights is not None else [1.0] * len(self.members)
        if len(weights) != len(self.members):
            raise ConfigError(f"ensemble tagger: {len(weights)} weights for {len(self.members)} members")
        if any(not np.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
            raise ConfigError(f"ensemble tagger: weights must be non-negative with a positive sum, got {weights}")
        extra = [name for name in self.member_params if name not in self.members]
        if extra:
            raise ConfigError(f"ensemble tagger: parameters given for {', '.join(extra)}, which are not members")
        self.taggers_: dict[str, Tagger] = {}
        for name in self.members:
            cls = get_tagger_class(name)
            if cls.trainable and not cls.out_of_fold:
                raise ConfigError(f"ensemble tagger: member {name!r} gives no out-of-fold scores to tune thresholds "
                                 "on; use members such as linear, embedding or lexicon")
            tagger = cls(self.codebook, **{**DEFAULT_MEMBER_PARAMS.get(name, {}), **self.member_params.get(name, {})})
            self._pass_runtime(tagger)
            self.taggers_[name] = tagger
            # record every member parameter (defaults included): meta.json and the version then say what was fitted
            self.member_params[name] = tagger.get_params()
        self._weights = np.asarray(weights, dtype=np.float64) / float(sum(weights))
        self.zero_shot_mask_: dict[str, np.ndarray] = {axis: np.zeros(len(l), bool) for axis, l in self.labels.items()}
        self.zero_shot_source_: dict[str, list[str | None]] = {axis: [None] * len(l) for axis, l in self.labels.items()}

    def _pass_runtime(self, tagger: Tagger) -> None:
        accepted = getattr(tagger, "_runtime_names", ())
        settings = {k: v for k, v in self.runtime.items() if k in accepted}
        if settings:
            tagger.set_params(**settings)

    def set_params(self, **params) -> "EnsembleTagger":
        runtime = {k: params.pop(k) for k in list(params) if k in self._runtime_names}
        super().set_params(**params)
        if params:
            if "weights" in params and params["weights"] is not None:
                self.weights = [float(w) for w in self.weights]
            self.member_params = {name: dict(p) for name, p in (self.member_params or {}).items()}
            self._build_members()
        self.runtime.update(runtime)
        for tagger in self.taggers_.values():
            self._pass_runtime(tagger)
        return self

    @property
    def zero_shot(self) -> dict[str, list[str]]:
        return {axis: [lab for lab, z in zip(self.labels[axis], self.zero_shot_mask_[axis]) if z]
                for axis in self.labels}

    @property
    def zero_shot_labels(self) -> set[str]:
        return {lab for labels in self.zero_shot.values() for lab in labels}

    # -- combining -----------------------------------------------------------------------------------------------
    def _combine(self, member_scores: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """Per axis, the weighted logit average of the members' scores; zero-shot labels from their source."""
        out = {}
        for axis in self.labels:
            z = sum(w * _logit(member_scores[name][axis]) for name, w in zip(self.members, self._weights))
            scores = sigmoid(z)
            for j, source in enumerate(self.zero_shot_source_[axis]):
                if source is not None:
                    scores[:, j] = member_scores[source][axis][:, j]
            out[axis] = scores
        return out

    def fit(self, units: Units, y: dict[str, np.ndarray], sources=None) -> "EnsembleTagger":
        """Fit every member (``sources`` to those that take them), then the combination's thresholds on the
        members' out-of-fold scores."""
        n = len(units)
        if n < 2:
            raise DataError(f"ensemble tagger needs at least 2 annotated units, got {n}")
        flat = [p for unit in units for p in unit]
        owners = np.repeat(np.arange(n), [len(u) for u in units])
        oof: dict[str, dict[str, np.ndarray]] = {}
        for name, tagger in self.taggers_.items():
            # an untrainable member learns nothing, but gets its thresholds (fitted state)
            if sources is not None and tagger.fit_takes_sources:
                tagger.fit(units, y, sources=sources)
            else:
                tagger.fit(units, y)
            if not tagger.trainable:
                oof[name] = tagger.passage_proba(flat)  # not trained on these units: its scores are out-of-sample
                continue
            oof[name] = tagger.oof_passage_scores_
        Y = {axis: np.asarray(y[axis], dtype=int) for axis in self.labels}
        for axis, labels in self.labels.items():
            without = Y[axis].sum(axis=0) == 0
            sources: list[str | None] = [None] * len(labels)
            for j in np.flatnonzero(without):
                sources[j] = next((name for name, t in self.taggers_.items()
                                   if labels[j] in getattr(t, "zero_shot_labels", ())), None)
            self.zero_shot_source_[axis] = sources
            self.zero_shot_mask_[axis] = np.array([s is not None for s in sources], dtype=bool)
        combined = self._combine(oof)
        self.thresholds_ = {}
        for axis in self.labels:
            thresholds = tune_thresholds(Y[axis], aggregate_max(combined[axis], owners, n))
            for j, source in enumerate(self.zero_shot_source_[axis]):
                if source is not None:
                    thresholds[j] = self.taggers_[source].thresholds_[axis][j]
            self.thresholds_[axis] = thresholds
        return self

    # -- scoring -------------------------------------------------------------------------------------------------
    def passage_proba(self, passages: Sequence[Passage]) -> dict[str, np.ndarray]:
        return self.score_batch(passages).scores

    def score_batch(self, passages: Sequence[Passage]) -> ScoredBatch:
        """Combined scores; the state is each member's own batch, which its evidence reuses."""
        if not passages:
            return ScoredBatch(passages, {axis: np.zeros((0, len(labs))) for axis, labs in self.labels.items()})
        members = {name: t.score_batch(passages) for name, t in self.taggers_.items()}
        return ScoredBatch(passages, self._combine({name: b.scores for name, b in members.items()}), members)

    def sentence_contributions(self, passages: Sequence[Passage], axis: str) -> list[np.ndarray]:
        """The members' sentence contributions, weighted as their logits are; a zero-shot label's from its source."""
        parts = {name: t.sentence_contributions(passages, axis) for name, t in self.taggers_.items()}
        return self._weighted(parts, len(passages), axis)

    def batch_contributions(self, batch: ScoredBatch, rows: Sequence[int], axis: str) -> list[np.ndarray]:
        if not isinstance(batch.state, dict):
            return super().batch_contributions(batch, rows, axis)
        parts = {name: t.batch_contributions(batch.state[name], rows, axis) for name, t in self.taggers_.items()}
        return self._weighted(parts, len(rows), axis)

    def _weighted(self, parts: dict[str, list[np.ndarray]], n: int, axis: str) -> list[np.ndarray]:
        out = []
        for k in range(n):
            block = sum(w * np.asarray(parts[name][k], dtype=np.float64)
                        for name, w in zip(self.members, self._weights))
            for j, source in enumerate(self.zero_shot_source_[axis]):
                if source is not None:
                    block[:, j] = np.asarray(parts[source][k])[:, j]
            out.append(block)
        return out

    # -- storage -------------------------------------------------------------------------------------------------
    def save_state(self, folder: Path) -> None:
        folder = Path(folder)
        state = {"members": self.members,
                 "member_thresholds": {name: {axis: [float(v) for v in th] for axis, th in t.thresholds_.items()}
                                       for name, t in self.taggers_.items()},
                 "zero_shot_source": self.zero_shot_source_,
                 "labels": self.labels}
        for name, tagger in self.taggers_.items():
            (folder / name).mkdir(exist_ok=True)
            tagger.save_state(folder / name)
        (folder / STATE_FILE).write_text(json.dumps(state, indent=1) + "\n", encoding="utf-8")

    def load_state(self, folder: Path) -> None:
        folder = Path(folder)
        state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
        if state["members"] != self.members:
            raise ModelError(f"{folder / STATE_FILE}: members {state['members']} differ from the parameters' "
                             f"{self.members}")
        if {axis: list(labs) for axis, labs in state["labels"].items()} != self.labels:
            raise ModelError(f"{folder / STATE_FILE}: the state's labels differ from the codebook's")
        for name, tagger in self.taggers_.items():
            tagger.load_state(folder / name)
            tagger.thresholds_ = {axis: np.asarray(v, dtype=float)
                                  for axis, v in state["member_thresholds"][name].items()}
        sources = {axis: [s if s in self.taggers_ else None for s in v]
                   for axis, v in state["zero_shot_source"].items()}
        if any(len(sources.get(axis, ())) != len(labs) for axis, labs in self.labels.items()):
            raise ModelError(f"{folder / STATE_FILE}: zero-shot sources do not match the labels")
        self.zero_shot_source_ = sources
        self.zero_shot_mask_ = {axis: np.array([s is not None for s in v], dtype=bool) for axis, v in sources.items()}
