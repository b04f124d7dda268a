"""The linear tagger: TF-IDF of lemma uni- and bigrams plus codebook-seed counts, one-vs-rest logistic regression.

The seed counts give the rare functions (listening, broadcasting, twinning, people-to-people) a prior that a few
dozen examples cannot: each label's seeds are one feature column that every axis's classifiers may use.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold
from sklearn.multiclass import OneVsRestClassifier

from ..metrics import tune_thresholds
from ..text import Passage
from .base import Tagger, Units, aggregate_max, register_tagger


def _joined(tokens: Sequence[str]) -> str:
    return " ".join(tokens)


@register_tagger("linear")
class LinearTagger(Tagger):
    _param_names = ("C", "ngram_max", "min_df", "max_features", "seed_weight", "cv_folds", "random_state")

    def __init__(self, codebook, *, C: float = 4.0, ngram_max: int = 2, min_df: int = 2, max_features: int = 60000,
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

    def _seed_matrix(self, seed_counts: Sequence[dict[str, int]]) -> sp.csr_matrix:
        rows = np.array([[c.get(lab, 0) for lab in self.seed_labels] for c in seed_counts], dtype=np.float32)
        return sp.csr_matrix(np.log1p(rows.reshape(len(seed_counts), len(self.seed_labels))) * self.seed_weight)

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
        return OneVsRestClassifier(
            LogisticRegression(C=self.C, class_weight="balanced", solver="liblinear", dual=True, max_iter=1000)
        )

    def _fit_models(self, units: Units, y: dict[str, np.ndarray]):
        tokens, seeds = self._unit_parts(units)
        vectorizer = self._new_vectorizer().fit([_joined(t) for t in tokens])
        X = self._features(vectorizer, tokens, seeds)
        classifiers = {}
        for axis in self.labels:
            Y = np.asarray(y[axis], dtype=int)
            classifiers[axis] = self._new_classifier().fit(X, Y)
        return vectorizer, classifiers

    # -- contract ------------------------------------------------------------------------------------------------
    def fit(self, units: Units, y: dict[str, np.ndarray]) -> "LinearTagger":
        """Fit on whole units; tune thresholds on out-of-fold, passage-aggregated document scores."""
        n = len(units)
        oof = {axis: np.zeros((n, len(labs))) for axis, labs in self.labels.items()}
        folds = KFold(n_splits=min(self.cv_folds, n), shuffle=True, random_state=self.random_state)
        for train_idx, test_idx in folds.split(np.arange(n)):
            self.vectorizer_, self.classifiers_ = self._fit_models([units[i] for i in train_idx],
                                                                  {a: np.asarray(v)[train_idx] for a, v in y.items()})
            held = self.predict_proba([units[i] for i in test_idx])
            for axis in oof:
                oof[axis][test_idx] = held[axis]
        self.thresholds_ = {axis: tune_thresholds(np.asarray(y[axis]), oof[axis]) for axis in self.labels}
        self.vectorizer_, self.classifiers_ = self._fit_models(units, y)
        return self

    def _check_fitted(self):
        if self.vectorizer_ is None:
            raise RuntimeError("linear tagger is not fitted: call fit() or load a trained model")

    def passage_proba(self, passages: Sequence[Passage]) -> dict[str, np.ndarray]:
        self._check_fitted()
        X = self._features(self.vectorizer_, [p.tokens for p in passages], [p.seed_counts() for p in passages])
        return {axis: _positive_proba(clf, X) for axis, clf in self.classifiers_.items()}

    def sentence_contributions(self, passage: Passage, axis: str, label_index: int) -> np.ndarray:
        """Each feature's share of the linear score, apportioned to sentences by their share of its count."""
        self._check_fitted()
        estimator = self.classifiers_[axis].estimators_[label_index]
        coef = getattr(estimator, "coef_", None)
        if coef is None:  # a constant predictor (label absent from training): no sentence explains it
            return np.zeros(len(passage.sentences))
        coef = coef.ravel()
        x = self._features(self.vectorizer_, [passage.tokens], [passage.seed_counts()]).toarray().ravel()
        counter = CountVectorizer(analyzer="word", token_pattern=r"\S+", lowercase=False,
                                  ngram_range=(1, self.ngram_max), vocabulary=self.vectorizer_.vocabulary_)
        per_sentence = counter.transform([_joined(s.tokens) for s in passage.sentences]).toarray().astype(float)
        seeds = np.array([[s.seeds.get(lab, 0) for lab in self.seed_labels] for s in passage.sentences], float)
        counts = np.hstack([per_sentence, seeds.reshape(len(passage.sentences), len(self.seed_labels))])
        totals = counts.sum(axis=0)
        share = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
        return share @ (x * coef)


def _positive_proba(clf: OneVsRestClassifier, X) -> np.ndarray:
    proba = clf.predict_proba(X)
    return np.asarray(proba, dtype=float)
