"""The linear tagger: TF-IDF of lemma uni- and bigrams plus codebook-seed counts, one-vs-rest logistic regression.

The seed counts give the rare labels a prior that a few dozen examples cannot: each label's seeds are one feature
column that every axis's classifiers may use.

The scope gate. Whether a unit carries *any* label of an axis is a question of its own: on the functions axis it is
the codebook's scope rule (diplomacy needs a foreign counterpart, audience or arena), which every annotated unit
answers, including the many with no label, whereas each label's classifier learns from its few dozen positives
which words go with that label, not whether the unit is in scope at all. With ``gate=True`` each axis gets one more
logistic regression on the same features, "has at least one label on this axis", and a label's score is its own
probability times the gate's. On the held-out documents this halves the share of domestic units given a function
(see ``benchmarks/RESULTS.md``).

Scope features (``scope=True``, default; ``scoped_seeds=True``, default, adds seed matches in sentences that name
a counterpart abroad): pseudo-tokens per sentence from a gazetteer of counterparts by kind (``scope.py``), so that
the scope rule is learnt from kinds of counterpart, not word by word. They are tokens like any other (TF-IDF,
evidence); the gazetteer is saved with the model.

``gazetteer`` (a YAML file of the shipped file's form) replaces the shipped gazetteer: a European city's
researcher can list her own country and regions as ``domestic`` (the shipped file treats only the United States as
home). The model keeps the gazetteer it was fitted with.

Thresholds: each label's F1-optimal threshold on out-of-fold scores, bagged (the median of the optima of
``threshold_bootstrap`` bootstrap resamples, default 50: the argmax of a flat F1 curve moves by a tenth between
near-identical fits) and shrunk toward 0.5 with ``threshold_shrink`` (default 30 pseudo-examples): the rare labels'
optimum on a few dozen positives is noise.

Codebook definitions (``definitions``, default weight 3): while fitting, one more column per label, the unit's
TF-IDF cosine similarity to the label's definition and include list; the column is linear in the TF-IDF columns,
so its weight folds into the words' after fitting and the saved state and scoring are unchanged.

``hurdle`` (off) fits an axis's label classifiers on in-scope units only. Each default was chosen on grouped
cross-validation of the training part (``benchmarks/quality.py``, ``benchmarks/RESULTS.md`` "Quality decisions").
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import scipy.sparse as sp

from ..errors import DataError, ModelError
from ..text import Passage
from .base import NotFittedError, ScoredBatch, Tagger, Units, aggregate_max, register_tagger
from .linear_state import LEGACY_STATE_FILE, STATE_FILE, FittedTfidf, read_legacy_state, read_state, write_state
from .linear_state import TRUSTED_TYPES  # noqa: F401  (where it was defined before linear_state.py)
from .scope import GAZETTEER_FILE, SCOPE_MARK, Gazetteer, shipped_gazetteer, user_gazetteer
from .shared import seed_columns, seed_matrix, sigmoid, source_weights, unit_seed_counts

# scikit-learn (and nlp.metrics, which imports it) is imported where a model is fitted, not here: importing it takes
# ~1 s, and a saved model is read and scores without it (see linear_state.py).
if TYPE_CHECKING:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.multiclass import OneVsRestClassifier

#: Guards the one-time build of a tagger's stacked weights, so that threads sharing a tagger build them once.
_WEIGHTS_LOCK = threading.Lock()
#: Prefix of lead features (lemmas of a document's first sentence); lemmas never start with it (the tokenizer
#: keeps punctuation apart from words).
LEAD_MARK = "^"


def _joined(tokens: Sequence[str]) -> str:
    return " ".join(tokens)


@register_tagger("linear")
class LinearTagger(Tagger):
    out_of_fold = True
    fit_takes_sources = True
    _param_names = ("C", "ngram_max", "min_df", "max_features", "seed_weight", "cv_folds", "random_state", "gate",
                     "gate_C", "lead", "scope", "scoped_seeds", "hurdle", "threshold_shrink",
                     "definitions", "threshold_bootstrap", "gazetteer", "source_balance")

    def __init__(self, codebook, *, C: float = 16.0, ngram_max: int = 1, min_df: int = 2, max_features: int = 60000,
                 seed_weight: float = 1.0, cv_folds: int = 5, random_state: int = 0, gate: bool = True,
                 gate_C: float = 16.0, lead: bool = False, scope: bool = True, scoped_seeds: bool = True,
                 hurdle: bool | Sequence[str] = False, threshold_shrink: float = 30.0, definitions: float = 3.0,
                 threshold_bootstrap: int = 50, gazetteer: str | None = None, source_balance: float = 0.5):
        super().__init__(codebook)
        self.threshold_shrink = threshold_shrink
        self.definitions = definitions
        self.threshold_bootstrap = threshold_bootstrap
        self.gazetteer = None if gazetteer is None else str(gazetteer)
        self.source_balance = source_balance
        self.hurdle = list(hurdle) if isinstance(hurdle, (list, tuple)) else hurdle
        self.lead = lead
        self.scope = scope
        self.scoped_seeds = scoped_seeds
        self.C = C
        self.gate = gate
        self.gate_C = gate_C
        self.ngram_max = ngram_max
        self.min_df = min_df
        self.max_features = max_features
        self.seed_weight = seed_weight
        self.cv_folds = cv_folds
        self.random_state = random_state
        self.seed_labels = [lab for labels in self.labels.values() for lab in labels]
        self._seed_column = seed_columns(self.seed_labels)
        self.vectorizer_: TfidfVectorizer | FittedTfidf | None = None  # FittedTfidf: read from a saved state
        self.classifiers_: dict[str, OneVsRestClassifier] = {}
        self.gates_: dict[str, tuple[np.ndarray, float]] = {}  # axis -> (weights, intercept) of the scope gate

    @classmethod
    def check_params(cls, params) -> None:
        """A ``gazetteer`` that is missing or malformed is refused before any annotation is read."""
        if params.get("gazetteer"):
            user_gazetteer(params["gazetteer"])

    # -- features ------------------------------------------------------------------------------------------------
    def _new_vectorizer(self) -> TfidfVectorizer:
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(
            analyzer="word", token_pattern=r"\S+", lowercase=False, ngram_range=(1, self.ngram_max),
            min_df=self.min_df, max_df=0.9, max_features=self.max_features, sublinear_tf=True, dtype=np.float32,
        )

    def _seed_matrix(self, seed_counts: Sequence[dict[str, int]], log: bool = True) -> sp.csr_matrix:
        """One column per codebook label: its seed matches (log1p-scaled and weighted as features)."""
        matrix = seed_matrix(seed_counts, self._seed_column)
        if log:
            matrix.data = np.log1p(matrix.data) * self.seed_weight
        return matrix

    def _features(self, vectorizer, token_lists, seed_counts, definitions=None) -> sp.csr_matrix:
        """TF-IDF and seed columns; while fitting with ``definitions`` (see :meth:`_definition_matrix`), also one
        column per label: the unit's cosine similarity to the label's codebook text, times ``definitions``."""
        text = vectorizer.transform([_joined(t) for t in token_lists])
        parts = [text, self._seed_matrix(seed_counts)]
        if definitions is not None:
            parts.append((text @ definitions.T).tocsr() * float(self.definitions))
        return sp.hstack(parts, format="csr")

    def _definition_matrix(self, vectorizer):
        """(n_labels of every axis, n_terms) TF-IDF of each label's codebook text (definition and include list),
        or None without ``definitions``. Its similarity columns are linear in the TF-IDF columns, so after fitting
        their weights fold into the words' (:meth:`_fold`): the saved state and scoring do not change."""
        if not self.definitions:
            return None
        from .scope import lemmas_of

        texts = []
        for axis in self.labels:
            for label in self.labels[axis]:
                entry = self.codebook.label(label)
                parts = lemmas_of([entry.definition, *entry.include])
                texts.append(" ".join(tok for part in parts for tok in part))
        return vectorizer.transform(texts).tocsr()

    def _fold(self, coef: np.ndarray) -> np.ndarray:
        """Weights over TF-IDF, seed and definition columns -> the same scores over TF-IDF and seed columns."""
        definitions = self.__dict__.get("_definitions_fit")
        n = len(self.vectorizer_.vocabulary_) + len(self.seed_labels)
        if definitions is None or len(coef) == n:
            return coef
        folded = np.array(coef[:n], dtype=np.float64)
        folded[:definitions.shape[1]] += float(self.definitions) * np.asarray(definitions.T @ coef[n:]).ravel()
        return folded

    def _sentence_tokens(self, passage: Passage) -> list[list[str]]:
        """The lemmas of each sentence; with ``lead``, the document's first sentence (its title, where it has one:
        documents are tagged as title and body) also as lead features, ``LEAD_MARK`` + lemma, so that what a
        headline or a resolution's title says weighs apart from the body."""
        tokens = [s.tokens for s in passage.sentences]
        if self.lead and passage.index == 0 and tokens:
            tokens[0] = tokens[0] + [LEAD_MARK + t for t in tokens[0]]
        if self._scoped:
            gazetteer = self.scope_gazetteer_
            tokens = [t + gazetteer.sentence_marks(s.tokens, s.seeds if self.scoped_seeds else None)
                      for t, s in zip(tokens, passage.sentences)]
        return tokens

    @property
    def _scoped(self) -> bool:
        """Whether sentences get scope pseudo-tokens (``scope`` or ``scoped_seeds``)."""
        return bool(self.scope or self.scoped_seeds)

    def _passage_tokens(self, passage: Passage) -> list[str]:
        if not (self.lead and passage.index == 0) and not self._scoped:
            return passage.tokens
        return [tok for sentence in self._sentence_tokens(passage) for tok in sentence]

    def _unit_parts(self, units: Units):
        tokens = [[tok for p in unit for tok in self._passage_tokens(p)] for unit in units]
        return tokens, [unit_seed_counts(unit) for unit in units]

    def _new_classifier(self) -> OneVsRestClassifier:
        from sklearn.linear_model import LogisticRegression
        from sklearn.multiclass import OneVsRestClassifier

        # a label with no positive example becomes a constant predictor (score 0): expected for rare labels
        return OneVsRestClassifier(
            LogisticRegression(C=self.C, class_weight="balanced", solver="liblinear", dual=True, max_iter=1000,
                               random_state=self.random_state)
        )

    def _shrunk(self, thresholds: np.ndarray, positives: np.ndarray) -> np.ndarray:
        """With ``threshold_shrink`` k, each label's F1-optimal threshold t is pulled toward 0.5, the balanced
        classifiers' own decision point, as if k more examples had voted for it: (n t + k 0.5) / (n + k) for a
        label with n positive training units. The optimum found on a few dozen positives is noisy (and the rare
        labels' positives are mostly keyword-drawn units); a frequent label keeps its tuned threshold."""
        k = float(self.threshold_shrink)
        if k <= 0:
            return thresholds
        n = np.asarray(positives, dtype=float)
        return (n * thresholds + k * 0.5) / (n + k)

    def _hurdles(self, axis: str) -> bool:
        """Whether ``axis`` is fitted as a hurdle: ``hurdle`` True (every axis) or a list of axis names."""
        return bool(self.gate) and (self.hurdle is True or (isinstance(self.hurdle, list) and axis in self.hurdle))

    def _fit_labels(self, X, Y: np.ndarray, axis: str, sample_weight=None) -> OneVsRestClassifier:
        """One axis's label classifiers; for a hurdle axis (see :meth:`_hurdles`), fitted on the units that carry a
        label of the axis only: the gate says whether a unit is in scope, the labels which of them it is."""
        if self._hurdles(axis):
            inside = np.asarray(Y).sum(1) > 0
            if inside.sum() >= 2 and not inside.all():
                X, Y = X[inside], Y[inside]
                sample_weight = None if sample_weight is None else sample_weight[inside]
        if sample_weight is None:
            return self._new_classifier().fit(X, Y)
        import sklearn

        with sklearn.config_context(enable_metadata_routing=True):
            clf = self._new_classifier()
            clf.estimator.set_fit_request(sample_weight=True)
            return clf.fit(X, Y, sample_weight=sample_weight)

    def _fit_gate(self, X, Y: np.ndarray, sample_weight=None) -> tuple[np.ndarray, float] | None:
        """The scope gate of one axis: P(the unit has at least one label), or None when every unit (or none) has."""
        from sklearn.linear_model import LogisticRegression

        anything = (np.asarray(Y).sum(1) > 0).astype(int)
        if anything.min() == anything.max():
            return None
        clf = LogisticRegression(C=self.gate_C, class_weight="balanced", solver="liblinear", dual=True,
                                 max_iter=1000, random_state=self.random_state).fit(X, anything, sample_weight)
        return clf.coef_.ravel().astype(np.float64), float(clf.intercept_[0])

    @staticmethod
    def _gate_proba(gate: tuple[np.ndarray, float] | None, X) -> np.ndarray:
        """(n, 1) gate probabilities; ones where the axis has no gate."""
        if gate is None:
            return np.ones((X.shape[0], 1))
        return sigmoid(np.asarray(X @ gate[0]).reshape(-1, 1) + gate[1])

    def fit(self, units: Units, y: dict[str, np.ndarray], sources: Sequence[str] | None = None) -> "LinearTagger":
        """Fit on whole units; tune thresholds on out-of-fold, passage-aggregated document scores.

        The vocabulary and IDF are fitted once on all units (unsupervised); only the classifiers are refitted per
        fold. Out-of-fold scores are computed on each held-out unit's passages and aggregated by max, exactly as
        documents are scored at prediction time.

        ``sources`` (one name per unit; the trainers pass each annotation's source) weighs the units so that each
        source counts more evenly (``source_balance``, :func:`~nlp.taggers.shared.source_weights`); without it every
        unit weighs alike.
        """
        if sources is not None and len(sources) != len(units):
            raise DataError(f"sources: {len(sources)} names for {len(units)} units")
        sample_weight = (source_weights(sources, self.source_balance)
                         if sources is not None and self.source_balance else None)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Label .* is present in all training examples")
            return self._fit(units, y, sample_weight)

    def _fit(self, units: Units, y: dict[str, np.ndarray], sample_weight=None) -> "LinearTagger":
        from sklearn.model_selection import KFold

        from ..metrics import tune_thresholds

        n = len(units)
        if n < 2:
            raise DataError(f"linear tagger needs at least 2 annotated units, got {n}")
        if self._scoped:
            self.scope_gazetteer_ = user_gazetteer(self.gazetteer) if self.gazetteer else shipped_gazetteer()
        tokens, seeds = self._unit_parts(units)
        self.vectorizer_ = self._new_vectorizer().fit([_joined(t) for t in tokens])
        definitions = self.__dict__["_definitions_fit"] = self._definition_matrix(self.vectorizer_)
        X_units = self._features(self.vectorizer_, tokens, seeds, definitions)
        flat = [p for unit in units for p in unit]
        owners = np.repeat(np.arange(n), [len(u) for u in units])
        X_passages = self._features(self.vectorizer_, [self._passage_tokens(p) for p in flat],
                                    [p.seed_counts() for p in flat], definitions)
        Y = {axis: np.asarray(y[axis], dtype=int) for axis in self.labels}
        oof = {axis: np.zeros((n, len(labs))) for axis, labs in self.labels.items()}
        oof_passages = {axis: np.zeros((len(flat), len(labs))) for axis, labs in self.labels.items()}
        folds = KFold(n_splits=min(self.cv_folds, n), shuffle=True, random_state=self.random_state)
        for train_idx, test_idx in folds.split(np.arange(n)):
            in_test = np.isin(owners, test_idx)
            w = None if sample_weight is None else sample_weight[train_idx]
            for axis in self.labels:
                clf = self._fit_labels(X_units[train_idx], Y[axis][train_idx], axis, w)
                passage_scores = _positive_proba(clf, X_passages[in_test])
                if self.gate:
                    gate = self._fit_gate(X_units[train_idx], Y[axis][train_idx], w)
                    passage_scores = passage_scores * self._gate_proba(gate, X_passages[in_test])
                oof_passages[axis][in_test] = passage_scores
                oof[axis][test_idx] = aggregate_max(passage_scores, owners[in_test], n)[test_idx]
        self.thresholds_ = {axis: self._shrunk(tune_thresholds(Y[axis], oof[axis], bootstrap=self.threshold_bootstrap,
                                                                seed=self.random_state), Y[axis].sum(0))
                            for axis in self.labels}
        # out-of-fold passage scores of the training units (not saved): what the ensemble tier stacks
        self.oof_passage_scores_ = oof_passages
        self.classifiers_ = {axis: self._fit_labels(X_units, Y[axis], axis, sample_weight) for axis in self.labels}
        self.gates_ = {}
        if self.gate:
            for axis in self.labels:
                gate = self._fit_gate(X_units, Y[axis], sample_weight)
                if gate is not None:
                    self.gates_[axis] = (self._fold(gate[0]), gate[1])
        self._forget_caches()
        return self

    def save_state(self, folder: Path) -> None:
        """Plain arrays in safetensors (``linear_state.py``): the vocabulary, its IDF and each axis's stacked
        weights, which is all that scoring reads; a saved model is read without scikit-learn."""
        self._check_fitted()
        vocabulary = self.vectorizer_.vocabulary_
        terms = [""] * len(vocabulary)
        for term, index in vocabulary.items():
            terms[index] = term
        write_state(Path(folder) / STATE_FILE, terms, np.asarray(self.vectorizer_.idf_),
                    {axis: self._weights(axis) for axis in self.labels},
                    sublinear_tf=self.vectorizer_.sublinear_tf, norm=self.vectorizer_.norm, gates=self.gates_)
        if self._scoped:
            self.scope_gazetteer_.write(Path(folder) / GAZETTEER_FILE)

    def load_state(self, folder: Path) -> None:
        """The safetensors state; a model saved before it (``linear.skops``) through skops, trusted types only.

        A model read from safetensors holds no scikit-learn objects: ``vectorizer_`` is a :class:`FittedTfidf` and
        ``classifiers_`` is empty (scoring reads the stacked weights, kept where :meth:`_weights` caches them)."""
        folder = Path(folder)
        if not (folder / STATE_FILE).exists() and (folder / LEGACY_STATE_FILE).exists():
            self._load_legacy_state(folder / LEGACY_STATE_FILE)
            self._load_gazetteer(folder)
            return
        terms, idf, weights, tfidf, gates = read_state(folder / STATE_FILE)
        vocabulary = {term: i for i, term in enumerate(terms)}
        n_features = len(vocabulary) + len(self.seed_labels)
        for axis, labels in self.labels.items():
            if axis not in weights or weights[axis][0].shape != (n_features, len(labels)):
                raise ModelError(f"{folder / STATE_FILE}: no weights of shape ({n_features}, {len(labels)}) for "
                                 f"the axis {axis!r}")
        self.vectorizer_ = FittedTfidf(vocabulary, idf, sublinear_tf=tfidf["sublinear_tf"], norm=tfidf["norm"],
                                       make=self._new_vectorizer)
        for axis, (coef, _) in gates.items():
            if axis not in self.labels or coef.shape != (n_features,):
                raise ModelError(f"{folder / STATE_FILE}: a scope gate for the axis {axis!r} that does not fit the "
                                 f"model ({coef.shape} weights for {n_features} features)")
        self.classifiers_ = {}
        self.gates_ = gates
        self._forget_caches()
        self.__dict__["_coef_cache"] = {axis: weights[axis] for axis in self.labels}
        self._load_gazetteer(folder)

    def _load_gazetteer(self, folder: Path) -> None:
        """The gazetteer the model was fitted with. A model saved before scope features existed has neither the
        file nor a scope term, and its meta.json does not name ``scope`` (so the class default says True): it is
        read as what it is, a model without scope features."""
        if (folder / GAZETTEER_FILE).exists():
            self.scope_gazetteer_ = Gazetteer.read(folder / GAZETTEER_FILE)
            return
        if self._scoped:
            if any(term.startswith(SCOPE_MARK) for term in self.vectorizer_.vocabulary_):
                raise ModelError(f"{folder}: a linear model with scope features needs its {GAZETTEER_FILE}")
            self.scope = self.scoped_seeds = False

    def _load_legacy_state(self, path: Path) -> None:
        state = read_legacy_state(path)
        vectorizer = self._new_vectorizer()
        vectorizer.vocabulary_ = {str(term): i for i, term in enumerate(state["terms"].tolist())}
        vectorizer.fixed_vocabulary_ = False
        vectorizer.idf_ = np.asarray(state["idf"], dtype=np.float64)
        self.vectorizer_, self.classifiers_ = vectorizer, state["classifiers"]
        self.gates_ = {}  # models saved as skops predate the scope gate
        self._forget_caches()

    def _forget_caches(self) -> None:
        """Drop the stacked weights of the previous fit (rebuilt from the new classifiers on first use)."""
        self.__dict__.pop("_coef_cache", None)

    def _check_fitted(self):
        if self.vectorizer_ is None:
            raise NotFittedError("linear tagger is not fitted: call fit() or load a trained model")

    def passage_proba(self, passages: Sequence[Passage]) -> dict[str, np.ndarray]:
        return self.score_batch(passages).scores

    def score_batch(self, passages: Sequence[Passage]) -> ScoredBatch:
        """Scores, and the batch's sentence counts and features for :meth:`batch_contributions` to reuse."""
        self._check_fitted()
        if not len(passages):  # nothing to count
            return ScoredBatch(passages, {axis: np.zeros((0, len(self.labels[axis]))) for axis in self.labels})
        X, sentences = self._batch_features(passages)
        return ScoredBatch(passages, {axis: self._proba(axis, X) for axis in self.labels}, (sentences, X))

    def _proba(self, axis: str, X) -> np.ndarray:
        """What ``OneVsRestClassifier.predict_proba`` gives for the positive class of each label, as one sparse
        product over the stacked weights: the 20 per-label sklearn calls spent more time validating the batch
        than computing it."""
        coef, intercept, constant, value = self._weights(axis)
        proba = sigmoid(np.asarray(X @ coef) + intercept)
        if constant.any():
            proba[:, constant] = value[constant]
        if axis in self.gates_:
            proba *= self._gate_proba(self.gates_[axis], X)
        return proba

    # -- sentence-level counts, shared by scoring and evidence ---------------------------------------------------
    def _term_counts(self, token_lists: Sequence[Sequence[str]]) -> sp.csr_matrix:
        """Unigram counts over the model's vocabulary by direct lookup (what CountVectorizer would give, 3x faster)."""
        vocabulary = self.vectorizer_.vocabulary_
        indices: list[int] = []
        indptr = [0]
        for tokens in token_lists:
            indices.extend(j for j in map(vocabulary.get, tokens) if j is not None)
            indptr.append(len(indices))
        counts = sp.csr_matrix((np.ones(len(indices), dtype=np.float32), np.asarray(indices, dtype=np.int32),
                                np.asarray(indptr, dtype=np.int64)), shape=(len(token_lists), len(vocabulary)))
        counts.sum_duplicates()
        return counts

    def _sentence_counts(self, passages: Sequence[Passage]):
        """Term and seed counts per sentence, and the passage each sentence belongs to (a sparse 0/1 matrix)."""
        sentences = [s for p in passages for s in p.sentences]
        sentence_tokens = [tokens for p in passages for tokens in self._sentence_tokens(p)]
        if self.ngram_max == 1:
            words = self._term_counts(sentence_tokens)
        else:
            from sklearn.feature_extraction.text import CountVectorizer

            words = CountVectorizer(analyzer="word", token_pattern=r"\S+", lowercase=False, dtype=np.float32,
                                    ngram_range=(1, self.ngram_max), vocabulary=self.vectorizer_.vocabulary_
                                    ).transform([_joined(t) for t in sentence_tokens])
        counts = sp.hstack([words, self._seed_matrix([s.seeds for s in sentences], log=False)], format="csr")
        owner = np.repeat(np.arange(len(passages)), [len(p.sentences) for p in passages])
        owner_matrix = sp.csr_matrix((np.ones(len(owner), dtype=np.float32), (owner, np.arange(len(owner)))),
                                     shape=(len(passages), len(owner)))
        return counts, owner, owner_matrix

    def _passage_features(self, passages: Sequence[Passage]) -> sp.csr_matrix:
        return self._batch_features(passages)[0]

    def _batch_features(self, passages: Sequence[Passage]):
        """Passage features, and for unigrams the sentence counts they were built from (which evidence then
        reuses): (X, (counts, owner, totals)), or (X, None) for n-grams."""
        if self.ngram_max > 1:  # n-grams may cross sentences: transform whole passages
            return self._features(self.vectorizer_, [self._passage_tokens(p) for p in passages],
                                  [p.seed_counts() for p in passages]), None
        counts, owner, owner_matrix = self._sentence_counts(passages)
        totals = (owner_matrix @ counts).tocsr()
        n_words = len(self.vectorizer_.vocabulary_)
        tf = totals[:, :n_words].tocsr()
        if self.vectorizer_.sublinear_tf:
            tf.data = 1.0 + np.log(tf.data)
        tf = tf @ sp.diags(self.vectorizer_.idf_.astype(np.float32))
        tf = _normalize_rows(tf, self.vectorizer_.norm)
        seeds = totals[:, n_words:].tocsr()
        seeds.data = np.log1p(seeds.data) * self.seed_weight
        X = sp.hstack([tf, seeds], format="csr")
        return X, (counts, owner, totals)

    def _coef(self, axis: str) -> np.ndarray:
        """(n_features, n_labels) weights; zeros for a label that had no positive example."""
        return self._weights(axis)[0]

    def _weights(self, axis: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The axis's classifiers stacked: weights (n_features, n_labels), intercepts, which labels are constant
        predictors (no positive, or no negative, training example) and the score those always give. A model read
        from its saved state has these (and no classifiers): :meth:`load_state` fills the cache."""
        cache = self.__dict__.get("_coef_cache")
        if cache is None:  # built once per fit, for every axis, and published whole: never changed afterwards
            with _WEIGHTS_LOCK:
                cache = self.__dict__.get("_coef_cache")
                if cache is None:
                    cache = self.__dict__["_coef_cache"] = {a: self._stack(a) for a in self.classifiers_}
        return cache[axis]

    def _stack(self, axis: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """One axis's entry of :meth:`_weights`."""
        n_features = len(self.vectorizer_.vocabulary_) + len(self.seed_labels)
        estimators = self.classifiers_[axis].estimators_
        constant = np.array([not hasattr(est, "coef_") for est in estimators])
        return (
            np.stack([np.zeros(n_features) if c else self._fold(est.coef_.ravel())
                      for est, c in zip(estimators, constant)],
                     axis=1).astype(np.float64),
            np.array([0.0 if c else float(est.intercept_[0]) for est, c in zip(estimators, constant)]),
            constant,
            np.array([float(np.ravel(est.y_)[0]) if c else 0.0 for est, c in zip(estimators, constant)]),
        )

    def sentence_contributions(self, passages: Sequence[Passage], axis: str) -> list[np.ndarray]:
        """Each feature's share of the linear score, apportioned to sentences by their share of its count."""
        self._check_fitted()
        if not passages:
            return []
        counts, owner, owner_matrix = self._sentence_counts(passages)
        totals = (owner_matrix @ counts).tocsr()
        X = self._features(self.vectorizer_, [self._passage_tokens(p) for p in passages],
                           [p.seed_counts() for p in passages])
        return self._contributions(counts, owner, totals, X, axis)

    def batch_contributions(self, batch: ScoredBatch, rows: Sequence[int], axis: str) -> list[np.ndarray]:
        """:meth:`sentence_contributions` of the passages ``rows`` of ``batch`` from the sentence counts and
        features the batch was scored with: nothing is counted twice."""
        self._check_fitted()
        sentences, X = batch.state if isinstance(batch.state, tuple) else (None, None)
        if sentences is None:  # n-grams: no sentence counts were made while scoring
            return super().batch_contributions(batch, rows, axis)
        if not len(rows):
            return []
        counts, owner, totals = sentences
        rows = np.asarray(rows, dtype=int)
        keep = np.isin(owner, rows)
        counts, owner = counts[keep], owner[keep]
        remap = np.full(len(batch.passages), -1)
        remap[rows] = np.arange(len(rows))
        owner = remap[owner]
        order = np.argsort(owner, kind="stable")  # group sentence rows in the order passages were asked for
        return self._contributions(counts[order], owner[order], totals[rows], X[rows], axis)

    def _contributions(self, counts, owner, totals, X, axis: str) -> list[np.ndarray]:
        """Per passage, (n_sentences, n_labels): ``counts`` are sentence rows grouped by passage in passage order,
        ``owner`` their passage, ``totals`` and ``X`` the passages' summed counts and features."""
        # share of each sentence in its passage's count of a feature, times the passage's feature value
        inverse = totals.copy().tocsr()
        inverse.data = 1.0 / inverse.data
        scale = X.multiply(inverse).tocsr()
        weighted = counts.multiply(scale[owner]).tocsr()
        contrib = np.asarray(weighted @ self._coef(axis))
        # rows of ``counts`` are grouped by passage in passage order, so contiguous blocks map back
        sizes = np.bincount(owner, minlength=X.shape[0])
        bounds = np.r_[0, np.cumsum(sizes)]
        return [contrib[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def _normalize_rows(X: sp.csr_matrix, norm: str | None) -> sp.csr_matrix:
    """``sklearn.preprocessing.normalize(X, norm, copy=False)`` for a CSR matrix, without importing scikit-learn
    for the L2 norm TF-IDF uses: the same arithmetic (squares in X's dtype summed in float64 in row order, each
    value divided by its row's norm in float64; empty rows left alone), so the same bits."""
    if norm is None:
        return X
    if norm != "l2":
        from sklearn.preprocessing import normalize

        return normalize(X, norm=norm, copy=False)
    X = X.tocsr()
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    norms = np.sqrt(np.bincount(rows, weights=np.square(X.data).astype(np.float64), minlength=X.shape[0]))
    scale = norms[rows]
    nonzero = scale != 0.0
    X.data[nonzero] = X.data[nonzero] / scale[nonzero]
    return X


def _positive_proba(clf: OneVsRestClassifier, X) -> np.ndarray:
    """(n, n_labels) probabilities of each label; an axis of one label comes back as one column, not (1-p, p)."""
    proba = np.asarray(clf.predict_proba(X), dtype=float)
    if len(clf.estimators_) == 1 and proba.shape[1] == 2:
        proba = proba[:, 1:]
    return proba
