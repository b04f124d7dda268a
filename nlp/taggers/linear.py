"""The linear tagger: TF-IDF of lemma uni- and bigrams plus codebook-seed counts, one-vs-rest logistic regression.

The seed counts give the rare functions (listening, broadcasting, twinning, people-to-people) a prior that a few
dozen examples cannot: each label's seeds are one feature column that every axis's classifiers may use.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import scipy.sparse as sp
import skops.io as sio
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold
from sklearn.multiclass import OneVsRestClassifier

from ..metrics import tune_thresholds
from ..text import Passage
from .base import Tagger, Units, aggregate_max, register_tagger


STATE_FILE = "linear.skops"
#: Types skops does not trust by default that a linear model legitimately holds: the constant predictor that
#: one-vs-rest fits for a label with no positive example (plain data, no code). Anything else is refused.
TRUSTED_TYPES = ("sklearn.multiclass._ConstantPredictor",)


def _joined(tokens: Sequence[str]) -> str:
    return " ".join(tokens)


@register_tagger("linear")
class LinearTagger(Tagger):
    _param_names = ("C", "ngram_max", "min_df", "max_features", "seed_weight", "cv_folds", "random_state")

    def __init__(self, codebook, *, C: float = 4.0, ngram_max: int = 1, min_df: int = 2, max_features: int = 60000,
                 seed_weight: float = 1.0, cv_folds: int = 5, random_state: int = 0):
        super().__init__(codebook)
        self.C = C
        self.ngram_max = ngram_max
        self.min_df = min_df
        self.max_features = max_features
        self.seed_weight = seed_weight
        self.cv_folds = cv_folds
        self.random_state = random_state
        self.seed_labels = [lab for labels in self.labels.values() for lab in labels]
        self.vectorizer_: TfidfVectorizer | None = None
        self.classifiers_: dict[str, OneVsRestClassifier] = {}

    # -- features ------------------------------------------------------------------------------------------------
    def _new_vectorizer(self) -> TfidfVectorizer:
        return TfidfVectorizer(
            analyzer="word", token_pattern=r"\S+", lowercase=False, ngram_range=(1, self.ngram_max),
            min_df=self.min_df, max_df=0.9, max_features=self.max_features, sublinear_tf=True, dtype=np.float32,
        )

    def _seed_matrix(self, seed_counts: Sequence[dict[str, int]], log: bool = True) -> sp.csr_matrix:
        rows = np.array([[c.get(lab, 0) for lab in self.seed_labels] for c in seed_counts], dtype=np.float32)
        rows = rows.reshape(len(seed_counts), len(self.seed_labels))
        return sp.csr_matrix(np.log1p(rows) * self.seed_weight if log else rows)

    def _features(self, vectorizer, token_lists, seed_counts) -> sp.csr_matrix:
        text = vectorizer.transform([_joined(t) for t in token_lists])
        return sp.hstack([text, self._seed_matrix(seed_counts)], format="csr")

    @staticmethod
    def _unit_parts(units: Units):
        tokens = [[tok for p in unit for tok in p.tokens] for unit in units]
        seeds = []
        for unit in units:
            counts: dict[str, int] = {}
            for p in unit:
                for k, v in p.seed_counts().items():
                    counts[k] = counts.get(k, 0) + v
            seeds.append(counts)
        return tokens, seeds

    def _new_classifier(self) -> OneVsRestClassifier:
        # a label with no positive example becomes a constant predictor (score 0): expected for rare labels
        return OneVsRestClassifier(
            LogisticRegression(C=self.C, class_weight="balanced", solver="liblinear", dual=True, max_iter=1000)
        )

    def fit(self, units: Units, y: dict[str, np.ndarray]) -> "LinearTagger":
        """Fit on whole units; tune thresholds on out-of-fold, passage-aggregated document scores.

        The vocabulary and IDF are fitted once on all units (unsupervised); only the classifiers are refitted per
        fold. Out-of-fold scores are computed on each held-out unit's passages and aggregated by max, exactly as
        documents are scored at prediction time.
        """
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Label .* is present in all training examples")
            return self._fit(units, y)

    def _fit(self, units: Units, y: dict[str, np.ndarray]) -> "LinearTagger":
        n = len(units)
        if n < 2:
            raise ValueError(f"linear tagger needs at least 2 annotated units, got {n}")
        tokens, seeds = self._unit_parts(units)
        self.vectorizer_ = self._new_vectorizer().fit([_joined(t) for t in tokens])
        X_units = self._features(self.vectorizer_, tokens, seeds)
        flat = [p for unit in units for p in unit]
        owners = np.repeat(np.arange(n), [len(u) for u in units])
        X_passages = self._features(self.vectorizer_, [p.tokens for p in flat], [p.seed_counts() for p in flat])
        Y = {axis: np.asarray(y[axis], dtype=int) for axis in self.labels}
        oof = {axis: np.zeros((n, len(labs))) for axis, labs in self.labels.items()}
        folds = KFold(n_splits=min(self.cv_folds, n), shuffle=True, random_state=self.random_state)
        for train_idx, test_idx in folds.split(np.arange(n)):
            in_test = np.isin(owners, test_idx)
            for axis in self.labels:
                clf = self._new_classifier().fit(X_units[train_idx], Y[axis][train_idx])
                scores = aggregate_max(_positive_proba(clf, X_passages[in_test]), owners[in_test], n)
                oof[axis][test_idx] = scores[test_idx]
        self.thresholds_ = {axis: tune_thresholds(Y[axis], oof[axis]) for axis in self.labels}
        self.classifiers_ = {axis: self._new_classifier().fit(X_units, Y[axis]) for axis in self.labels}
        self.__dict__.pop("_coef_cache", None)
        self.__dict__.pop("_counter", None)
        return self

    def save_state(self, folder: Path) -> None:
        self._check_fitted()
        sio.dump({"vectorizer": self.vectorizer_, "classifiers": self.classifiers_}, folder / STATE_FILE)

    def load_state(self, folder: Path) -> None:
        path = folder / STATE_FILE
        untrusted = [t for t in sio.get_untrusted_types(file=path) if t not in TRUSTED_TYPES]
        if untrusted:  # never unpickled: only skops' safe types and the explicit list above are accepted
            raise ValueError(f"{path}: refusing to load untrusted types {', '.join(untrusted)}")
        state = sio.load(path, trusted=list(TRUSTED_TYPES))
        self.vectorizer_, self.classifiers_ = state["vectorizer"], state["classifiers"]
        self.__dict__.pop("_coef_cache", None)
        self.__dict__.pop("_counter", None)

    def _check_fitted(self):
        if self.vectorizer_ is None:
            raise RuntimeError("linear tagger is not fitted: call fit() or load a trained model")

    def passage_proba(self, passages: Sequence[Passage]) -> dict[str, np.ndarray]:
        self._check_fitted()
        X = self._features(self.vectorizer_, [p.tokens for p in passages], [p.seed_counts() for p in passages])
        return {axis: _positive_proba(clf, X) for axis, clf in self.classifiers_.items()}

    def _coef(self, axis: str) -> np.ndarray:
        """(n_features, n_labels) weights; zeros for a label that had no positive example."""
        cache = self.__dict__.setdefault("_coef_cache", {})
        if axis not in cache:
            n_features = len(self.vectorizer_.vocabulary_) + len(self.seed_labels)
            cols = [getattr(est, "coef_", np.zeros((1, n_features))).ravel()
                    for est in self.classifiers_[axis].estimators_]
            cache[axis] = np.stack(cols, axis=1)
        return cache[axis]

    def sentence_contributions(self, passages: Sequence[Passage], axis: str) -> list[np.ndarray]:
        """Each feature's share of the linear score, apportioned to sentences by their share of its count.

        Batched: one transform for all passages and one for all their sentences.
        """
        self._check_fitted()
        if not passages:
            return []
        counter = self.__dict__.get("_counter")
        if counter is None:
            counter = self.__dict__["_counter"] = CountVectorizer(
                analyzer="word", token_pattern=r"\S+", lowercase=False, ngram_range=(1, self.ngram_max),
                vocabulary=self.vectorizer_.vocabulary_, dtype=np.float32)
        X = self._features(self.vectorizer_, [p.tokens for p in passages], [p.seed_counts() for p in passages])
        sentences = [s for p in passages for s in p.sentences]
        words = counter.transform([_joined(s.tokens) for s in sentences])
        counts = sp.hstack([words, self._seed_matrix([s.seeds for s in sentences], log=False)], format="csr")
        owner = np.repeat(np.arange(len(passages)), [len(p.sentences) for p in passages])
        owner_matrix = sp.csr_matrix((np.ones(len(owner), dtype=np.float32), (owner, np.arange(len(owner)))),
                                     shape=(len(passages), len(owner)))
        totals = (owner_matrix @ counts).tocsr()  # per passage, the count of each feature
        # share of each sentence in its passage's count of a feature, times the passage's feature value
        scale = X.multiply(totals.power(-1)).tocsr() if totals.nnz else totals
        weighted = counts.multiply(scale[owner]).tocsr()
        contrib = np.asarray(weighted @ self._coef(axis))
        bounds = np.r_[0, np.cumsum([len(p.sentences) for p in passages])]
        return [contrib[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def _positive_proba(clf: OneVsRestClassifier, X) -> np.ndarray:
    proba = clf.predict_proba(X)
    return np.asarray(proba, dtype=float)
