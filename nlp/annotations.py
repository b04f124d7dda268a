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


def stratified_folds(y: dict[str, np.ndarray], k: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """K multi-label folds by iterative stratification (Sechidis et al. 2011, ``iterative-stratification``):
    every label's positives are spread over the folds as evenly as the data allow."""
    from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

    Y = np.hstack([np.asarray(v) for v in y.values()])
    if k < 2 or k > len(Y):
        raise ValueError(f"cross-validation needs 2 <= k <= {len(Y)} units, got k={k}")
    folds = MultilabelStratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(np.asarray(a), np.asarray(b)) for a, b in folds.split(np.zeros(len(Y)), Y)]


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


# -- import, export and merging ------------------------------------------------------------------------------------
FORMATS = ("jsonl", "spacy", "hf")


def _format_of(path: Path, fmt: str | None) -> str:
    if fmt:
        if fmt not in FORMATS:
            raise AnnotationError(f"unknown annotation format {fmt!r}; use one of {', '.join(FORMATS)}")
        return fmt
    if path.suffix == ".spacy":
        return "spacy"
    if path.suffix in (".jsonl", ".json"):
        return "jsonl"
    if path.is_dir() and (path / "dataset_info.json").exists():
        return "hf"
    raise AnnotationError(f"{path}: cannot tell the format; name it .jsonl or .spacy, or pass --format")


def to_record(ann: Annotation, codebook: Codebook) -> dict[str, Any]:
    """Our JSONL schema: id, title, text, one list per axis, annotator, metadata."""
    record: dict[str, Any] = {"id": ann.id, "title": ann.title, "text": ann.text}
    for axis in codebook.axis_names:
        record[axis] = list(ann.labels.get(axis, []))
    meta = dict(ann.meta)
    record["annotator"] = meta.pop("annotator", "")
    if ann.sample:
        record["sample"] = ann.sample
    record["metadata"] = meta.pop("metadata", {}) | meta
    return record


def export_annotations(annotations: list[Annotation], path: str | Path, codebook: Codebook,
                       fmt: str | None = None) -> Path:
    """Write annotations as JSONL, a spaCy DocBin (``doc.cats``: 1.0 for a unit's labels, 0.0 for the others) or a
    Hugging Face dataset folder (``save_to_disk``; one 0/1 list column per axis, label names in the features)."""
    from .fileio import atomic_path

    path = Path(path)
    fmt = fmt or ("spacy" if path.suffix == ".spacy" else "jsonl" if path.suffix in (".jsonl", ".json") else "hf")
    if fmt == "jsonl":
        with atomic_path(path) as tmp:
            with open(tmp, "w", encoding="utf-8") as fh:
                for ann in annotations:
                    fh.write(json.dumps(to_record(ann, codebook), ensure_ascii=False) + "\n")
    elif fmt == "spacy":
        import spacy
        from spacy.tokens import DocBin

        nlp = spacy.blank("en")
        every = [lab for axis in codebook.axis_names for lab in codebook.labels(axis)]
        docbin = DocBin(store_user_data=True)
        for ann in annotations:
            doc = nlp.make_doc(ann.text)
            chosen = {lab for labs in ann.labels.values() for lab in labs}
            doc.cats = {lab: float(lab in chosen) for lab in every}
            doc.user_data["cdpd"] = {"id": ann.id, "title": ann.title, "sample": ann.sample}
            docbin.add(doc)
        with atomic_path(path) as tmp:
            docbin.to_disk(tmp)
    elif fmt == "hf":
        from datasets import Dataset, Features, Sequence, Value

        features = {"id": Value("string"), "title": Value("string"), "text": Value("string")}
        columns: dict[str, list] = {"id": [], "title": [], "text": []}
        for axis in codebook.axis_names:
            features[axis] = Sequence(Value("string"))
            columns[axis] = []
        for ann in annotations:
            columns["id"].append(ann.id)
            columns["title"].append(ann.title)
            columns["text"].append(ann.text)
            for axis in codebook.axis_names:
                columns[axis].append(list(ann.labels.get(axis, [])))
        if path.exists():
            raise AnnotationError(f"{path}: already exists; a Hugging Face dataset is written to a new folder")
        Dataset.from_dict(columns, features=Features(features)).save_to_disk(str(path))
    else:
        raise AnnotationError(f"unknown annotation format {fmt!r}; use one of {', '.join(FORMATS)}")
    return path


def import_annotations(path: str | Path, codebook: Codebook, fmt: str | None = None) -> list[Annotation]:
    """Read annotations in any of :data:`FORMATS`; unknown labels are refused, naming the codebook."""
    path = Path(path)
    if not path.exists():
        raise AnnotationError(f"{path}: annotation file not found")
    fmt = _format_of(path, fmt)
    if fmt == "jsonl":
        return read_annotations(path, codebook)
    rows: list[dict[str, Any]] = []
    if fmt == "spacy":
        import spacy
        from spacy.tokens import DocBin

        try:
            docbin = DocBin().from_disk(path)
        except Exception as exc:  # msgpack/zlib errors on a file that is not a DocBin
            raise AnnotationError(f"{path}: not a spaCy DocBin ({type(exc).__name__})") from None
        axis_of = {lab: axis for axis in codebook.axis_names for lab in codebook.labels(axis)}
        for n, doc in enumerate(docbin.get_docs(spacy.blank("en").vocab), 1):
            info = doc.user_data.get("cdpd", {}) if isinstance(doc.user_data, dict) else {}
            unknown = [lab for lab in doc.cats if lab not in axis_of]
            if unknown:
                raise AnnotationError(f"{path}: doc {n}: unknown label(s) {', '.join(map(repr, unknown))} not in the "
                                      f"codebook ({codebook.path})")
            row = {"id": info.get("id") or f"{path.stem}:{n}", "title": info.get("title", ""), "text": doc.text,
                   "sample": info.get("sample", "")}
            for axis in codebook.axis_names:
                row[axis] = [lab for lab, v in doc.cats.items() if v >= 0.5 and axis_of[lab] == axis]
            rows.append(row)
    else:
        from datasets import load_from_disk

        try:
            dataset = load_from_disk(str(path))
        except Exception as exc:
            raise AnnotationError(f"{path}: not a Hugging Face dataset folder ({type(exc).__name__})") from None
        rows = [dict(r) for r in dataset]
    return _validate_rows(rows, codebook, str(path))


def _validate_rows(rows: list[dict[str, Any]], codebook: Codebook, source: str) -> list[Annotation]:
    out = []
    for n, row in enumerate(rows, 1):
        text = row.get("text")
        if not isinstance(text, str) or not text.strip():
            raise AnnotationError(f"{source}: unit {n}: missing or empty 'text'")
        labels = {}
        for axis in codebook.axis_names:
            try:
                labels[axis] = check_labels(codebook, axis, row.get(axis) or [], where=f"{source}: unit {n}")
            except CodebookError as exc:
                raise AnnotationError(str(exc)) from None
        out.append(Annotation(str(row.get("id") or f"{source}:{n}"), text, labels, str(row.get("title") or ""),
                              str(row.get("sample") or "")))
    return out


@dataclass
class MergeReport:
    merged: list[Annotation]
    duplicates: list[tuple[str, str]]  # (id dropped, id kept): same text, same labels
    conflicts: list[tuple[str, str, dict[str, list[str]], dict[str, list[str]]]]  # ids and both label sets


def merge_annotations(*groups: list[Annotation]) -> MergeReport:
    """Merge annotation sets, deduplicated by normalised text; the later set wins a conflict, which is reported."""
    from .ingest import text_key

    by_key: dict[str, int] = {}
    merged: list[Annotation] = []
    duplicates, conflicts = [], []
    for group in groups:
        for ann in group:
            key = text_key(ann.text)
            if key not in by_key:
                by_key[key] = len(merged)
                merged.append(ann)
                continue
            kept = merged[by_key[key]]
            same = {a: sorted(v) for a, v in kept.labels.items()} == {a: sorted(v) for a, v in ann.labels.items()}
            if same:
                duplicates.append((ann.id, kept.id))
            else:
                conflicts.append((kept.id, ann.id, kept.labels, ann.labels))
                merged[by_key[key]] = ann
    return MergeReport(merged, duplicates, conflicts)
