"""Annotated units: reading and validating annotation files against the codebook."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .codebook import Codebook, CodebookError, check_labels

SEED_ANNOTATIONS = Path(__file__).resolve().parent.parent / "corpora" / "annotations" / "seed.jsonl"


class AnnotationError(ValueError):
    """An annotation file cannot be used; the message names the file and the line."""


@dataclass
class Annotation:
    id: str
    text: str
    labels: dict[str, list[str]]  # axis -> label ids
    title: str = ""
    sample: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


def read_annotations(path: str | Path, codebook: Codebook) -> list[Annotation]:
    """Read JSONL annotations (``id``, ``text``, one list per codebook axis); unknown labels are refused."""
    path = Path(path)
    if not path.exists():
        raise AnnotationError(f"{path}: annotation file not found")
    out: list[Annotation] = []
    seen: set[str] = set()
    with open(path, encoding="utf-8-sig") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise AnnotationError(f"{path}: line {n}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise AnnotationError(f"{path}: line {n}: expected a JSON object")
            text = row.get("text")
            if not isinstance(text, str) or not text.strip():
                raise AnnotationError(f"{path}: line {n}: missing or empty 'text'")
            uid = str(row.get("id") or f"{path.stem}:{n}")
            if uid in seen:
                raise AnnotationError(f"{path}: line {n}: duplicate id {uid!r}")
            seen.add(uid)
            labels = {}
            for axis in codebook.axis_names:
                value = row.get(axis, [])
                if not isinstance(value, list):
                    raise AnnotationError(f"{path}: line {n}: {axis!r} must be a list of label ids")
                try:
                    labels[axis] = check_labels(codebook, axis, value, where=f"{path}: line {n}")
                except CodebookError as exc:
                    raise AnnotationError(str(exc)) from None
            known = {"id", "text", "title", "sample", *codebook.axis_names}
            out.append(Annotation(uid, text, labels, str(row.get("title") or ""), str(row.get("sample") or ""),
                                  {k: v for k, v in row.items() if k not in known}))
    if not out:
        raise AnnotationError(f"{path}: no annotations in file")
    return out


def label_matrix(annotations: list[Annotation], codebook: Codebook) -> dict[str, np.ndarray]:
    """Per axis, a (n_units, n_labels) 0/1 matrix in codebook order."""
    out = {}
    for axis in codebook.axis_names:
        index = {lab: j for j, lab in enumerate(codebook.labels(axis))}
        Y = np.zeros((len(annotations), len(index)), dtype=int)
        for i, ann in enumerate(annotations):
            for lab in ann.labels.get(axis, []):
                Y[i, index[lab]] = 1
        out[axis] = Y
    return out


def heldout_split(annotations: list[Annotation], fraction: float = 0.2, seed: int = 0) -> tuple[list[int], list[int]]:
    """Indices (train, test): the test set is a seeded ``fraction`` of the ``sample == "random"`` units.

    Keyword-enriched units never go to the test set: they would flatter the rare labels.
    """
    rng = np.random.default_rng(seed)
    pool = [i for i, a in enumerate(annotations) if a.sample in ("random", "")]
    k = int(round(len(pool) * fraction))
    test = sorted(rng.choice(pool, size=k, replace=False).tolist()) if k else []
    held = set(test)
    return [i for i in range(len(annotations)) if i not in held], test
