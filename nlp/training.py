"""Training and evaluating taggers on annotated units."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .annotations import Annotation, heldout_split, label_matrix, read_annotations
from .codebook import Codebook
from .metrics import axis_report
from .models import ModelInfo, file_sha256, save_model
from .pipeline import text_for_tagging
from .schema import Document
from .taggers import Tagger, get_tagger_class
from .text import Passage, TextProcessor

Progress = Callable[[str], None]


def _quiet(_msg: str) -> None:
    pass


def annotation_units(annotations: list[Annotation], processor: TextProcessor) -> list[list[Passage]]:
    docs = (text_for_tagging(Document(id=a.id, text=a.text, title=a.title)) for a in annotations)
    return list(processor.process(docs))


def evaluate_tagger(tagger: Tagger, units, y: dict[str, np.ndarray], codebook: Codebook) -> dict[str, Any]:
    """Micro/macro F1 and per-label P/R/F1/support per axis, on document-level (passage-aggregated) predictions."""
    pred = tagger.predict(units)
    return {axis: axis_report(y[axis], pred[axis], codebook.labels(axis)) for axis in codebook.axis_names}


def annotations_sha256(annotations: list[Annotation]) -> str:
    """A hash of annotation content (texts and labels, in order): the training-data identity of a model."""
    h = hashlib.sha256()
    for ann in annotations:
        h.update(json.dumps([ann.text, {a: sorted(v) for a, v in sorted(ann.labels.items())}]).encode("utf-8"))
    return h.hexdigest()


def train(annotations_path: str | Path | list[Annotation], codebook: Codebook, *, tagger: str = "linear",
          name: str | None = None, params: dict[str, Any] | None = None, holdout: float = 0.2, seed: int = 0,
          models_folder: Path | None = None, progress: Progress = _quiet,
          source: str | None = None) -> tuple[ModelInfo, dict[str, Any]]:
    """Train on all units but a held-out fifth of the random sample, report on that fifth, then refit on all.

    The saved model is fitted on every unit; its recorded metrics are those of the same settings fitted
    without the held-out units, so they are honest estimates of what the saved model does on new data.
    """
    if isinstance(annotations_path, list):
        annotations = annotations_path
        source = source or "annotations"
        data_hash = annotations_sha256(annotations)
        progress(f"training on {len(annotations)} annotated units ({source})")
    else:
        annotations = read_annotations(annotations_path, codebook)
        source = str(annotations_path)
        data_hash = file_sha256(annotations_path)
        progress(f"read {len(annotations)} annotated units from {annotations_path}")
    processor = TextProcessor(codebook)
    t0 = time.perf_counter()
    units = annotation_units(annotations, processor)
    y = label_matrix(annotations, codebook)
    progress(f"processed {sum(len(u) for u in units)} passages in {time.perf_counter() - t0:.1f}s")
    cls = get_tagger_class(tagger)
    metrics: dict[str, Any] = {}
    train_idx, test_idx = heldout_split(annotations, holdout, seed)
    if cls.trainable and test_idx:
        progress(f"fitting {tagger} on {len(train_idx)} units, evaluating on {len(test_idx)} held-out random units")
        model = cls(codebook, **(params or {})).fit([units[i] for i in train_idx],
                                                    {a: v[train_idx] for a, v in y.items()})
        metrics = {"heldout": evaluate_tagger(model, [units[i] for i in test_idx],
                                              {a: v[test_idx] for a, v in y.items()}, codebook),
                   "heldout_units": len(test_idx), "heldout_seed": seed}
        for axis in codebook.axis_names:
            r = metrics["heldout"][axis]
            progress(f"  held-out {axis}: micro-F1 {r['micro']['f1']:.3f}, macro-F1 {r['macro_f1']:.3f}")
    progress(f"fitting {tagger} on all {len(units)} units")
    t0 = time.perf_counter()
    model = cls(codebook, **(params or {})).fit(units, y)
    fit_seconds = time.perf_counter() - t0
    training = {"path": source, "sha256": data_hash, "n_units": len(units), "fit_seconds": round(fit_seconds, 2)}
    info = save_model(model, name or tagger, training=training, metrics=metrics, folder=models_folder)
    progress(f"saved model {info.ref} ({fit_seconds:.1f}s to fit)")
    return info, metrics


def evaluate(annotations: list[Annotation], tagger: Tagger, codebook: Codebook) -> dict[str, Any]:
    processor = TextProcessor(codebook)
    units = annotation_units(annotations, processor)
    return evaluate_tagger(tagger, units, label_matrix(annotations, codebook), codebook)
