"""The embedding tagger: frozen MiniLM passage embeddings plus codebook-seed counts, one logistic regression per label.

Encoders (``encoder``). ``"minilm"``: a passage is its MiniLM embedding (:func:`nlp.embeddings.embed`:
mean-pooled, L2-normalised; a passage longer than 256 word pieces is embedded in 256-piece windows whose vectors are
averaged, so nothing is truncated); one transformer pass per window, so it tags 1-2 corpus documents per second on 2
CPU cores. ``"static"``: the normalised sum of its word pieces' vectors in a static table distilled from the same
MiniLM (:mod:`nlp.static`, 256 dimensions): no transformer at tagging time, about 100 corpus documents per second
end to end on 2 shared cores (spaCy is then most of the time). Alone it scores 1-2 points of held-out micro-F1 below
MiniLM; inside the ensemble it scores as well or better (benchmarks/RESULTS.md, "Semantic tier speed"), hence the
default. A model saves the static
table it was trained on beside its weights (safetensors), so it predicts the same everywhere.

Features. A passage is its embedding scaled by :data:`EMBEDDING_SCALE`, next to ``seed_weight`` x log1p of its seed
matches for every codebook label (as in the linear tagger: the seeds give rare labels a prior that a few dozen
examples cannot). ``seed_weight=0`` gives the embeddings alone.

Training. A unit (an annotated document) is the L2-normalised mean of its passages' embeddings and the sum of their
seed counts: units are at most ~450 words, so almost all are one passage and a unit's vector is its passage's
vector; no text is embedded twice. Each label with a positive example gets a ``LogisticRegression`` with
``class_weight="balanced"``; thresholds are tuned on out-of-fold document scores (passage scores of held-out units,
aggregated by max), exactly as the linear tagger's.

Zero-shot. A label without any positive training example (say a label just added to the codebook) is scored from
what the codebook says about it: the cosine similarity of the passage to the label's prototype - the normalised
mean embedding of its definition, its ``include`` items and its seeds - and log1p of the passage's matches of the
label's own seeds, mapped to a probability by a logistic regression on these two numbers fitted on the labels that
do have data (over every (unit, label) pair of those labels). Its threshold is the F1-optimal one on those pooled
pairs (documents scored by their best passage). :attr:`EmbeddingTagger.zero_shot` names such labels per axis.

Evidence. Every sentence of a passage is embedded alone (one batch; with the static encoder a sentence costs
what its word pieces cost, and nothing is remembered between calls) and scored with the label's decision function
(the logit: the logistic regression's, or the zero-shot calibration's); a sentence's contribution is its score
minus the mean score of the passage's sentences, so the sentences that are more about the label than their
passage's average come out positive.

State: plain arrays in a skops file (no estimator objects, so no type beyond skops' defaults needs trusting), and
for the static encoder its table in ``static.safetensors``. A state says which encoder it was trained with, so a
model saved before ``encoder`` existed (MiniLM) loads as MiniLM whatever the default is.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold
from threadpoolctl import threadpool_limits

from ..encoder import MAX_TOKENS
from ..errors import ConfigError, DataError, ModelError
from ..metrics import best_threshold, tune_thresholds
from ..text import Passage
from .base import NotFittedError, ScoredBatch, Tagger, Units, aggregate_max, register_tagger
from .shared import seed_columns, seed_matrix, sigmoid, unit_seed_counts

STATE_FILE = "embedding.skops"
#: Embeddings have unit norm (components ~0.05); scaled by 10 they sit on the scale of log seed counts.
EMBEDDING_SCALE = 10.0
#: Types a state file may hold beyond skops' defaults: none. Anything untrusted is refused.
TRUSTED_TYPES: tuple[str, ...] = ()
_DIM = 384  # MiniLM's width
ENCODERS = ("static", "minilm")
#: The encoder of a new tagger: static, as fast as the linear tier's text processing allows, about as good as MiniLM.
DEFAULT_ENCODER = "static"


def sentence_text(passage: Passage, sentence) -> str:
    """A sentence as it stands in its passage (offsets are the document's)."""
    return passage.text[sentence.start - passage.start : sentence.end - passage.start]


@register_tagger("embedding")
class EmbeddingTagger(Tagger):
    out_of_fold = True
    _param_names = ("C", "seed_weight", "cv_folds", "max_tokens", "random_state", "encoder")
    #: Settings of how to compute, not of what is computed: accepted by the constructor and set_params, left out
    #: of get_params (so of meta.json and the model version).
    _runtime_names = ("cache", "batch_size", "device")

    def __init__(self, codebook, *, C: float = 0.05, seed_weight: float = 4.0, cv_folds: int = 5,
                 max_tokens: int = MAX_TOKENS, random_state: int = 0, cache: str | None = None,
                 batch_size: int = 64, device: str | None = None, encoder: str = DEFAULT_ENCODER):
        super().__init__(codebook)
        self.encoder = encoder
        self.C = C
        self.seed_weight = seed_weight
        self.cv_folds = cv_folds
        self.max_tokens = max_tokens
        self.random_state = random_state
        self.cache = cache  # path of an EmbeddingCache SQLite file; None: embed in memory, store nothing
        self.batch_size = batch_size
        self.device = device
        self.seed_labels = [lab for labels in self.labels.values() for lab in labels]
        self.coef_: dict[str, np.ndarray] = {}  # axis -> (n_labels, n_features); zero rows for zero-shot labels
        self.intercept_: dict[str, np.ndarray] = {}
        self.prototypes_: dict[str, np.ndarray] = {}  # axis -> (n_labels, 384) unit vectors
        self.zero_shot_mask_: dict[str, np.ndarray] = {}  # axis -> (n_labels,) bool
        self.calibration_: tuple[float, float, float] = (1.0, 0.0, 0.0)  # zero-shot: w_cos, w_seeds, intercept
        self.encoder_id_: str | None = None
        self.static_ = None  # the StaticEncoder fitted or loaded with (encoder="static")

    def set_params(self, **params) -> "EmbeddingTagger":
        runtime = {k: params.pop(k) for k in list(params) if k in self._runtime_names}
        for key, value in runtime.items():
            setattr(self, key, value)
        super().set_params(**params)
        if self.encoder not in ENCODERS:
            raise ConfigError(f"embedding tagger: encoder must be one of {', '.join(ENCODERS)}, got {self.encoder!r}")
        return self

    # -- what a caller may want to know --------------------------------------------------------------------------
    @property
    def zero_shot(self) -> dict[str, list[str]]:
        """Per axis, the labels scored zero-shot (no positive training example), in codebook order."""
        return {axis: [lab for lab, z in zip(self.labels[axis], self.zero_shot_mask_.get(axis, ())) if z]
                for axis in self.labels}

    @property
    def zero_shot_labels(self) -> set[str]:
        return {lab for labels in self.zero_shot.values() for lab in labels}

    # -- embeddings and features ---------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return self._static().dim if self.encoder == "static" else _DIM

    def _static(self):
        """The static encoder: the model's own table once fitted or loaded, else the one distilled for this models
        folder (:func:`nlp.static.static_encoder`, distilled at first use)."""
        if self.static_ is None:
            from ..static import static_encoder

            self.static_ = static_encoder()
        return self.static_

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        from ..embeddings import EmbeddingCache, embed

        if self.encoder == "static":  # cheaper than a cache look-up: never cached
            return self._static().embed(texts)
        if self.cache:
            with EmbeddingCache(self.cache, max_tokens=self.max_tokens, batch_size=self.batch_size,
                                device=self.device) as cache:
                return cache.get_or_compute(texts)
        return embed(texts, batch_size=self.batch_size, max_tokens=self.max_tokens, device=self.device)

    def _seed_matrix(self, seed_counts: Sequence[dict[str, int]]) -> np.ndarray:
        counts = seed_matrix(seed_counts, seed_columns(self.seed_labels)).toarray().astype(np.float64)
        return np.log1p(counts) * self.seed_weight

    def _features(self, vectors: np.ndarray, seed_counts: Sequence[dict[str, int]]) -> np.ndarray:
        return np.hstack([np.asarray(vectors, dtype=np.float64) * EMBEDDING_SCALE, self._seed_matrix(seed_counts)])

    def _prototype_vectors(self) -> dict[str, np.ndarray]:
        """Per axis, each label's prototype: the normalised mean embedding of its definition, includes and seeds."""
        texts: list[str] = []
        spans: list[tuple[int, int]] = []
        for axis, labels in self.labels.items():
            for label_id in labels:
                label = self.codebook.label(label_id)
                parts = [label.definition, *label.include, *label.seeds]
                spans.append((len(texts), len(texts) + len(parts)))
                texts.extend(parts)
        vectors = self._embed(texts)
        out, k = {}, 0
        for axis, labels in self.labels.items():
            rows = []
            for _ in labels:
                a, b = spans[k]
                k += 1
                v = vectors[a:b].mean(axis=0)
                rows.append(v / max(float(np.linalg.norm(v)), 1e-12))
            out[axis] = np.asarray(rows, dtype=np.float64).reshape(len(labels), self.dim)
        return out

    # -- fitting -------------------------------------------------------------------------------------------------
    def _new_classifier(self) -> LogisticRegression:
        return LogisticRegression(C=self.C, class_weight="balanced", max_iter=2000, random_state=self.random_state)

    def _fit_axis(self, X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(coef, intercept) per label: a fitted regression, constant certainty for a label on every unit, and a
        constant zero score (coef 0, intercept -50) for a label without positives."""
        coef = np.zeros((Y.shape[1], X.shape[1]))
        intercept = np.full(Y.shape[1], -50.0)
        for j in range(Y.shape[1]):
            positives = int(Y[:, j].sum())
            if positives == len(Y):
                intercept[j] = 50.0
            elif positives:
                clf = self._new_classifier().fit(X, Y[:, j])
                coef[j], intercept[j] = clf.coef_.ravel(), float(clf.intercept_[0])
        return coef, intercept

    def fit(self, units: Units, y: dict[str, np.ndarray]) -> "EmbeddingTagger":
        """Fit on whole units; tune thresholds on out-of-fold, passage-aggregated document scores."""
        from ..embeddings import encoder_id

        n = len(units)
        if n < 2:
            raise DataError(f"embedding tagger needs at least 2 annotated units, got {n}")
        if self.encoder != "static":
            self.static_ = None
        flat = [p for unit in units for p in unit]
        owners = np.repeat(np.arange(n), [len(u) for u in units])
        passage_vectors = self._embed([p.text for p in flat]) if flat else np.zeros((0, self.dim), np.float32)
        unit_vectors = np.zeros((n, self.dim))
        np.add.at(unit_vectors, owners, passage_vectors)
        norms = np.linalg.norm(unit_vectors, axis=1, keepdims=True)
        unit_vectors = unit_vectors / np.where(norms > 0, norms, 1.0)
        unit_seeds = [unit_seed_counts(unit) for unit in units]
        X_units = self._features(unit_vectors, unit_seeds)
        X_passages = self._features(passage_vectors, [p.seed_counts() for p in flat])
        Y = {axis: np.asarray(y[axis], dtype=int) for axis in self.labels}

        oof = {axis: np.zeros((n, len(labs))) for axis, labs in self.labels.items()}
        oof_passages = {axis: np.zeros((len(flat), len(labs))) for axis, labs in self.labels.items()}
        folds = KFold(n_splits=min(self.cv_folds, n), shuffle=True, random_state=self.random_state)
        # one BLAS thread: these matrices are small, and threads fighting over 2 cores made fitting 15x slower
        with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
            warnings.simplefilter("ignore", category=UserWarning)
            for train_idx, test_idx in folds.split(np.arange(n)):
                in_test = np.isin(owners, test_idx)
                for axis in self.labels:
                    coef, intercept = self._fit_axis(X_units[train_idx], Y[axis][train_idx])
                    scores = sigmoid(X_passages[in_test] @ coef.T + intercept)
                    oof_passages[axis][in_test] = scores
                    oof[axis][test_idx] = aggregate_max(scores, owners[in_test], n)[test_idx]
            fitted = {axis: self._fit_axis(X_units, Y[axis]) for axis in self.labels}
        self.coef_ = {axis: c for axis, (c, _) in fitted.items()}
        self.intercept_ = {axis: b for axis, (_, b) in fitted.items()}
        self.zero_shot_mask_ = {axis: Y[axis].sum(axis=0) == 0 for axis in self.labels}
        self.thresholds_ = {axis: tune_thresholds(Y[axis], oof[axis]) for axis in self.labels}
        # out-of-fold passage scores of the training units (not saved): what the ensemble tier stacks
        self.oof_passage_scores_ = oof_passages

        # zero-shot: calibrate (cosine to prototype, own seeds) on the labels that have data, then score the others
        self.prototypes_ = self._prototype_vectors()
        unit_parts = [self._zero_shot_inputs(unit_vectors, unit_seeds, axis, ~self.zero_shot_mask_[axis])
                      for axis in self.labels]
        x = np.column_stack([np.hstack([c for c, _ in unit_parts]).ravel(),
                             np.hstack([k for _, k in unit_parts]).ravel()])
        t = np.hstack([Y[axis][:, ~self.zero_shot_mask_[axis]] for axis in self.labels]).ravel()
        self.calibration_ = self._calibrate(x, t)
        passage_seeds = [p.seed_counts() for p in flat]
        doc = np.hstack([aggregate_max(sigmoid(self._zero_shot_logits(passage_vectors, passage_seeds, axis,
                                                                        ~self.zero_shot_mask_[axis])), owners, n)
                         for axis in self.labels])
        zero_shot_threshold = best_threshold(t, doc.ravel()) if len(t) else 0.5
        for axis in self.labels:
            self.thresholds_[axis] = np.where(self.zero_shot_mask_[axis], zero_shot_threshold, self.thresholds_[axis])
        self.encoder_id_ = self._static().id if self.encoder == "static" else encoder_id()
        return self

    def _zero_shot_inputs(self, vectors, seed_counts, axis: str, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For the labels of ``axis`` under ``mask``: cosine to their prototypes and log1p of their own seed matches
        (zero when ``seed_weight`` is 0: embeddings alone), each (n, n_masked)."""
        vectors = np.asarray(vectors, dtype=np.float64)
        cos = vectors @ self.prototypes_[axis][mask].T
        labels = [lab for lab, m in zip(self.labels[axis], mask) if m]
        seeds = np.log1p(np.array([[counts.get(lab, 0) for lab in labels] for counts in seed_counts],
                                  dtype=np.float64).reshape(len(vectors), len(labels)))
        return cos, seeds * float(self.seed_weight > 0)

    def _zero_shot_logits(self, vectors, seed_counts, axis: str, mask: np.ndarray) -> np.ndarray:
        cos, seeds = self._zero_shot_inputs(vectors, seed_counts, axis, mask)
        w_cos, w_seeds, b = self.calibration_
        return w_cos * cos + w_seeds * seeds + b

    def _calibrate(self, x: np.ndarray, t: np.ndarray) -> tuple[float, float, float]:
        """(w_cos, w_seeds, b) of p = sigmoid(w_cos * cos + w_seeds * log1p(seeds) + b), a logistic regression on
        the (unit, label) pairs of the labels with data."""
        if not len(t) or t.min() == t.max():
            if not any(m.any() for m in self.zero_shot_mask_.values()):
                return (1.0, 0.0, 0.0)  # nothing is zero-shot: the calibration is never used
            raise DataError("embedding tagger: zero-shot labels need other labels with both positive and negative "
                             "examples to calibrate on; annotate at least one positive unit for some label")
        with threadpool_limits(limits=1, user_api="blas"):
            clf = LogisticRegression(C=1e4, max_iter=1000).fit(x, t)
        w_cos, w_seeds = (float(w) for w in clf.coef_[0])
        return (w_cos, w_seeds, float(clf.intercept_[0]))

    # -- scoring -------------------------------------------------------------------------------------------------
    def _check_fitted(self):
        if not self.coef_:
            raise NotFittedError("embedding tagger is not fitted: call fit() or load a trained model")

    def _logits(self, vectors: np.ndarray, seed_counts: Sequence[dict[str, int]], axis: str) -> np.ndarray:
        """(n, n_labels) decision values: the regression's, or the zero-shot calibration's for zero-shot labels."""
        X = self._features(vectors, seed_counts)
        logits = X @ self.coef_[axis].T + self.intercept_[axis]
        mask = self.zero_shot_mask_[axis]
        if mask.any():
            logits[:, mask] = self._zero_shot_logits(vectors, seed_counts, axis, mask)
        return logits

    def passage_proba(self, passages: Sequence[Passage]) -> dict[str, np.ndarray]:
        self._check_fitted()
        if not passages:
            return {axis: np.zeros((0, len(labs))) for axis, labs in self.labels.items()}
        vectors = self._embed([p.text for p in passages])
        seeds = [p.seed_counts() for p in passages]
        return {axis: sigmoid(self._logits(vectors, seeds, axis)) for axis in self.labels}

    def score_batch(self, passages: Sequence[Passage]) -> ScoredBatch:
        """Scores, and an empty memo of sentence vectors that the batch's evidence fills (see below)."""
        return ScoredBatch(passages, self.passage_proba(passages), state={})

    def batch_contributions(self, batch: ScoredBatch, rows: Sequence[int], axis: str) -> list[np.ndarray]:
        """:meth:`sentence_contributions` with the batch's memo: each axis's evidence reuses the other's vectors."""
        memo = batch.state if isinstance(batch.state, dict) else None
        return self.sentence_contributions([batch.passages[k] for k in rows], axis, memo=memo)

    def _sentence_vectors(self, texts: list[str], memo: dict[str, np.ndarray]) -> np.ndarray:
        """Embeddings of sentences, remembered in ``memo``, the batch's: the pipeline asks for the evidence of a
        batch once per axis, mostly about the same passages, and nothing is embedded twice. Static vectors cost
        less than the memo: computed afresh."""
        if self.encoder == "static":
            return self._embed(texts).reshape(len(texts), self.dim)
        missing = list(dict.fromkeys(t for t in texts if t not in memo))
        if missing:
            memo.update(zip(missing, self._embed(missing)))
        return np.array([memo[t] for t in texts], dtype=np.float32).reshape(len(texts), _DIM)

    def sentence_contributions(self, passages: Sequence[Passage], axis: str,
                               memo: dict[str, np.ndarray] | None = None) -> list[np.ndarray]:
        """Per passage, (n_sentences, n_labels): each sentence's logit, scored alone, minus the passage's mean.
        ``memo``: sentence vectors already embedded for this batch (filled with the new ones)."""
        self._check_fitted()
        sentences = [(p, s) for p in passages for s in p.sentences]
        if not sentences:
            return [np.zeros((0, len(self.labels[axis]))) for _ in passages]
        vectors = self._sentence_vectors([sentence_text(p, s) for p, s in sentences], {} if memo is None else memo)
        logits = self._logits(vectors, [s.seeds for _, s in sentences], axis)
        out, start = [], 0
        for p in passages:
            block = logits[start : start + len(p.sentences)]
            start += len(p.sentences)
            out.append(block - block.mean(axis=0, keepdims=True) if len(block) else block)
        return out

    # -- storage -------------------------------------------------------------------------------------------------
    def save_state(self, folder: Path) -> None:
        self._check_fitted()
        state: dict[str, Any] = {
            "coef": {axis: np.asarray(c, dtype=np.float64) for axis, c in self.coef_.items()},
            "intercept": {axis: np.asarray(b, dtype=np.float64) for axis, b in self.intercept_.items()},
            "prototypes": {axis: np.asarray(v, dtype=np.float64) for axis, v in self.prototypes_.items()},
            "zero_shot": {axis: np.asarray(m, dtype=bool) for axis, m in self.zero_shot_mask_.items()},
            "calibration": np.asarray(self.calibration_, dtype=np.float64),
            "encoder": str(self.encoder_id_ or ""),
            "labels": {axis: list(labs) for axis, labs in self.labels.items()},
        }
        sio.dump(state, Path(folder) / STATE_FILE)
        if self.encoder == "static":
            from ..static import STATIC_FILE

            self._static().save(Path(folder) / STATIC_FILE)

    def load_state(self, folder: Path) -> None:
        from ..embeddings import encoder_id

        path = Path(folder) / STATE_FILE
        untrusted = [t for t in sio.get_untrusted_types(file=path) if t not in TRUSTED_TYPES]
        if untrusted:  # never unpickled: only skops' safe types are accepted
            raise ModelError(f"{path}: refusing to load untrusted types {', '.join(untrusted)}")
        state = sio.load(path, trusted=list(TRUSTED_TYPES))
        if {axis: list(labs) for axis, labs in state["labels"].items()} != self.labels:
            raise ModelError(f"{path}: the state's labels differ from the codebook's")
        static = str(state["encoder"]).startswith("static:")
        if static:  # the table the model was trained on, saved beside it; checked against the recorded id
            from ..static import STATIC_FILE, StaticEncoder

            self.static_ = StaticEncoder.load(Path(folder) / STATIC_FILE, expected_id=state["encoder"])
        self.encoder = "static" if static else "minilm"  # a state of before `encoder` existed is MiniLM's
        n_features = self.dim + len(self.seed_labels)
        for axis, labs in self.labels.items():
            if np.shape(state["coef"][axis]) != (len(labs), n_features):
                raise ModelError(f"{path}: {axis} weights have shape {np.shape(state['coef'][axis])}, "
                                 f"expected {(len(labs), n_features)}")
        current = encoder_id()
        if state["encoder"] and not static and state["encoder"] != current:
            raise ModelError(f"{path}: trained with encoder {state['encoder']}, but the installed one is {current}")
        self.coef_ = {axis: np.asarray(v, dtype=np.float64) for axis, v in state["coef"].items()}
        self.intercept_ = {axis: np.asarray(v, dtype=np.float64) for axis, v in state["intercept"].items()}
        self.prototypes_ = {axis: np.asarray(v, dtype=np.float64) for axis, v in state["prototypes"].items()}
        self.zero_shot_mask_ = {axis: np.asarray(v, dtype=bool) for axis, v in state["zero_shot"].items()}
        w_cos, w_seeds, b = np.asarray(state["calibration"], dtype=np.float64).reshape(3).tolist()
        self.calibration_ = (float(w_cos), float(w_seeds), float(b))
        self.encoder_id_ = state["encoder"] or None
