"""The linear tier's saved state: plain arrays in one safetensors file, read with NumPy alone.

Reading a model must be quick: ``cdpd classify`` loads one for every run. The state used to be a skops file of the
fitted scikit-learn objects; reading that imports skops, whose trusted-type list imports every scikit-learn
estimator (2-3 s on 2 cores), and building the objects imports scikit-learn itself (~1 s). What scoring needs is
plain numbers: the vocabulary, its IDF weights, and per axis the stacked weights of the one-vs-rest logistic
regressions (with the labels that are constant predictors and the score they give). Those go into a safetensors
file (tensors and a JSON header, nothing executable), and the tagger scores from them without scikit-learn.

Layout of ``linear.safetensors``: ``idf`` (float64), ``terms`` (the vocabulary in index order, UTF-8, concatenated;
uint8) and ``term_ends`` (end offset of each term in ``terms``; int64), and per axis ``AXIS/coef`` (n_features x
n_labels, float64), ``AXIS/intercept`` (float64), ``AXIS/constant`` (bool) and ``AXIS/value`` (float64), and for an
axis with a scope gate ``AXIS/gate_coef`` (n_features, float64) and ``AXIS/gate_intercept`` (1, float64); the
metadata holds ``format``, the axes in order, and the TF-IDF settings scoring uses (``sublinear_tf``, ``norm``).

Models saved before this format (``linear.skops``) are still read, through skops with its trusted types only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import ModelError

STATE_FILE = "linear.safetensors"
FORMAT = "cdpd-linear-1"
#: The state file of models saved before ``linear.safetensors``: skops, read with the trusted types below only.
LEGACY_STATE_FILE = "linear.skops"
#: Types skops does not trust by default that a legacy linear model legitimately holds: the constant predictor that
#: one-vs-rest fits for a label with no positive example (plain data, no code). Anything else is refused.
TRUSTED_TYPES = ("sklearn.multiclass._ConstantPredictor",)

#: Per axis: weights (n_features, n_labels), intercepts, which labels are constant predictors, their constant score.
Weights = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class FittedTfidf:
    """What scoring reads of a fitted ``TfidfVectorizer`` (vocabulary, IDF, ``sublinear_tf``, ``norm``), without
    scikit-learn. :meth:`transform` (n-gram features, evidence outside a scored batch) builds the real vectorizer on
    first use, from ``make`` (the tagger's vectorizer factory) and the stored vocabulary and IDF."""

    def __init__(self, vocabulary: dict[str, int], idf: np.ndarray, *, sublinear_tf: bool, norm: str | None,
                 make: Callable[[], Any]):
        self.vocabulary_ = vocabulary
        self.idf_ = idf
        self.sublinear_tf = sublinear_tf
        self.norm = norm
        self._make = make
        self._vectorizer = None

    def transform(self, raw_documents):
        if self._vectorizer is None:
            vectorizer = self._make()
            vectorizer.vocabulary_ = self.vocabulary_
            vectorizer.fixed_vocabulary_ = False
            vectorizer.idf_ = self.idf_
            self._vectorizer = vectorizer
        return self._vectorizer.transform(raw_documents)


def write_state(path: Path, terms: Sequence[str], idf: np.ndarray, weights: dict[str, Weights], *,
                sublinear_tf: bool, norm: str | None, gates: dict[str, tuple[np.ndarray, float]] | None = None
                ) -> None:
    """Write the state described in the module docstring to ``path``; ``gates``: per axis with a scope gate, its
    weights (n_features,) and intercept, stored as ``AXIS/gate_coef`` and ``AXIS/gate_intercept`` (shape (1,))."""
    from safetensors.numpy import save

    encoded = [term.encode("utf-8") for term in terms]
    tensors = {"idf": np.ascontiguousarray(idf, dtype=np.float64),
               "terms": np.frombuffer(b"".join(encoded), dtype=np.uint8).copy(),
               "term_ends": np.cumsum([len(t) for t in encoded], dtype=np.int64)}
    for axis, (coef, intercept, constant, value) in weights.items():
        tensors[f"{axis}/coef"] = np.ascontiguousarray(coef, dtype=np.float64)
        tensors[f"{axis}/intercept"] = np.ascontiguousarray(intercept, dtype=np.float64)
        tensors[f"{axis}/constant"] = np.ascontiguousarray(constant, dtype=bool)
        tensors[f"{axis}/value"] = np.ascontiguousarray(value, dtype=np.float64)
    for axis, (coef, intercept) in (gates or {}).items():
        tensors[f"{axis}/gate_coef"] = np.ascontiguousarray(coef, dtype=np.float64)
        tensors[f"{axis}/gate_intercept"] = np.array([intercept], dtype=np.float64)
    metadata = {"format": FORMAT, "axes": json.dumps(list(weights)),
                "tfidf": json.dumps({"sublinear_tf": bool(sublinear_tf), "norm": norm})}
    path.write_bytes(save(tensors, metadata=metadata))  # not save_file: it makes the file private (0600)


def read_state(path: Path) -> tuple[list[str], np.ndarray, dict[str, Weights], dict[str, Any],
                                   dict[str, tuple[np.ndarray, float]]]:
    """(terms in index order, IDF, weights per axis, TF-IDF settings, scope gates per axis that has one) from a
    file :func:`write_state` wrote."""
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as fh:
        metadata = fh.metadata() or {}
        if metadata.get("format") != FORMAT:
            raise ModelError(f"{path}: not a linear tagger state (format {metadata.get('format')!r}, "
                             f"expected {FORMAT!r})")
        blob = fh.get_tensor("terms").tobytes()
        ends = fh.get_tensor("term_ends").tolist()
        starts = [0, *ends[:-1]]
        terms = [blob[a:b].decode("utf-8") for a, b in zip(starts, ends)]
        idf = fh.get_tensor("idf")
        weights = {axis: (fh.get_tensor(f"{axis}/coef"), fh.get_tensor(f"{axis}/intercept"),
                          fh.get_tensor(f"{axis}/constant"), fh.get_tensor(f"{axis}/value"))
                   for axis in json.loads(metadata["axes"])}
        names = set(fh.keys())
        gates = {axis: (fh.get_tensor(f"{axis}/gate_coef"), float(fh.get_tensor(f"{axis}/gate_intercept")[0]))
                 for axis in weights if f"{axis}/gate_coef" in names}
    return terms, idf, weights, json.loads(metadata["tfidf"]), gates


def read_legacy_state(path: Path) -> dict[str, Any]:
    """The dict a ``linear.skops`` file holds (``terms``, ``idf``, ``classifiers``); untrusted types are refused
    before anything is instantiated (never unpickled: only skops' safe types and :data:`TRUSTED_TYPES`)."""
    import skops.io as sio

    untrusted = [t for t in sio.get_untrusted_types(file=path) if t not in TRUSTED_TYPES]
    if untrusted:
        raise ModelError(f"{path}: refusing to load untrusted types {', '.join(untrusted)}")
    return sio.load(path, trusted=list(TRUSTED_TYPES))
