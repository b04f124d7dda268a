"""Annotated units: reading and validating annotation files against the codebook."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .codebook import Codebook, CodebookError, check_labels
from .errors import CdpdError, ConfigError
from .schema import Annotation

SEED_FOLDER = Path(__file__).resolve().parent.parent / "corpora" / "annotations"
#: The shipped annotation rounds, in order (see ``corpora/annotations/README.md``): every shipped model is trained on
#: all of them, and the fixed held-out split (:func:`heldout_split`) is drawn over all of them.
SEED_FILES = (SEED_FOLDER / "seed.jsonl", SEED_FOLDER / "round2.jsonl")
#: Round 1 alone (kept for callers that name one file).
SEED_ANNOTATIONS = SEED_FILES[0]
#: Samples an evaluation may use: drawn at random, or at random among documents with international cue words.
#: Keyword-enriched units (``enriched``) would flatter the rare labels; annotations made in the app carry the
#: queue's strategy (``uncertainty``, ``diversity``: chosen by the model, they would flatter or sink it) unless the
#: queue was random (``random``: they count), and older ones none.
EVALUATION_SAMPLES = ("random", "cue")
#: Share of documents held out by :func:`heldout_split`.
HELDOUT_FRACTION = 0.25


class AnnotationError(CdpdError, ValueError):
    """An annotation file cannot be used; the message names the file and the line."""

    code = "annotations"


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


def read_seed_annotations(codebook: Codebook) -> list[Annotation]:
    """Every shipped annotation round (:data:`SEED_FILES`), in order; ids are unique across the files."""
    out: list[Annotation] = []
    seen: set[str] = set()
    for path in SEED_FILES:
        for ann in read_annotations(path, codebook):
            if ann.id in seen:
                raise AnnotationError(f"{path}: id {ann.id!r} is already used by an earlier annotation round")
            seen.add(ann.id)
            out.append(ann)
    return out


def meta_value(ann: Annotation, key: str) -> Any:
    """``key`` of the unit's metadata: at the top of its record, or under ``metadata`` (where our JSONL export
    writes a workspace unit's ``document`` and ``source``), so that an export read back keeps them."""
    value = ann.meta.get(key)
    if value is None and isinstance(ann.meta.get("metadata"), dict):
        value = ann.meta["metadata"].get(key)
    return value


def document_key(ann: Annotation) -> str:
    """The document a unit was cut from: ``doc_id`` in the shipped rounds, ``document`` for workspace annotations,
    else the unit's own id. Splits keep every unit of one document on one side."""
    return str(meta_value(ann, "doc_id") or meta_value(ann, "document") or ann.id)


def source_of(ann: Annotation) -> str:
    """The unit's source (``corpus`` in the shipped rounds, ``source`` elsewhere), for per-source figures."""
    return str(meta_value(ann, "corpus") or meta_value(ann, "source") or "unknown")


#: What :func:`period_of` calls a unit without a readable year.
UNDATED = "undated"


def period_of(ann: Annotation) -> str:
    """The decade of the unit's date ("1990s"), or "undated", for per-period figures. Trends over years are only as
    good as the tags in each year: a tagger that reads the 1960s' UN speeches worse than the 2010s' draws a trend
    of its own errors. The shipped rounds carry the document's ``date``, workspace units their document's."""
    date = str(meta_value(ann, "date") or "")
    return f"{date[:3]}0s" if len(date) >= 4 and date[:4].isdigit() else UNDATED


def shipped_source_keys(seed: list[Annotation], corpora: Path = SEED_FOLDER.parent) -> dict[str, str]:
    """The shipped corpora's source names as the workspace stores them ("New York City Council resolutions
    (Legistar)") -> the key the shipped annotation rounds give the same source (``nyc_council``), found through the
    documents both name (the rounds' ``doc_id`` is a document ``id`` in ``corpora/*.parquet``). A unit annotated
    in the app on a shipped document is then the same source as the shipped units, for source balance, per-source
    figures and leave-one-source-out; a source no shipped unit comes from (your own) keeps its name."""
    import pyarrow.parquet as pq

    key_of_doc = {str(a.meta["doc_id"]): source_of(a) for a in seed if a.meta.get("doc_id")}
    out: dict[str, str] = {}
    for path in sorted(Path(corpora).glob("*.parquet")):
        try:
            table = pq.read_table(path, columns=["id", "source"])
        except (OSError, KeyError, ValueError):  # not a corpus table of ours: nothing to learn from it
            continue
        for doc, name in zip(table.column("id").to_pylist(), table.column("source").to_pylist()):
            key = key_of_doc.get(str(doc))
            if key is not None and name:
                out.setdefault(str(name), key)
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


def source_folds(sources: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Leave-one-source-out folds, one per source in sorted order: each source's units are predicted by a model
    fitted on the other sources only. Grouped CV by document flatters a source the model has already seen (its
    genre, its boilerplate, its base rate of diplomacy); these folds measure what a user bringing a new source
    gets. Needs at least two sources."""
    src = np.asarray(sources, dtype=str)
    names = sorted(set(src.tolist()))
    if len(names) < 2:
        raise ConfigError(f"leave-one-source-out needs units of at least two sources, got {len(names)} "
                          f"({', '.join(names) or 'none'})")
    return [(np.flatnonzero(src != s), np.flatnonzero(src == s)) for s in names]


def period_folds(sources: list[str], periods: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Leave-one-period-out folds within each source: for every source whose units are dated in two periods or more
    (:func:`period_of`), one fold per (source, period), in sorted order. Its units are predicted by a model fitted
    on every other unit, the same source's other periods included. This is what the tags of years one has not
    annotated get, for a source one has: a trend drawn over them is only as good as that. Units of a source with
    one period only, and undated units, are never predicted (they train every fold)."""
    src, per = np.asarray(sources, dtype=str), np.asarray(periods, dtype=str)
    if len(src) != len(per):
        raise ValueError(f"{len(src)} sources for {len(per)} periods")
    folds = []
    for source in sorted(set(src.tolist())):
        dated = sorted(set(per[(src == source) & (per != UNDATED)].tolist()))
        if len(dated) < 2:
            continue
        for period in dated:
            held = (src == source) & (per == period)
            folds.append((np.flatnonzero(~held), np.flatnonzero(held)))
    if not folds:
        raise ConfigError("leave-one-period-out needs a source whose units are dated in two decades or more; "
                          "none is (units need a 'date')")
    return folds


def stratified_folds(y: dict[str, np.ndarray], k: int = 5, seed: int = 0,
                     groups: list[str] | np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """K multi-label folds by iterative stratification (Sechidis et al. 2011, ``iterative-stratification``):
    every label's positives are spread over the folds as evenly as the data allow.

    With ``groups`` (a document key per unit, see :func:`document_key`) the folds are drawn over documents: a
    document carries the union of its units' labels, and all its units land in the same fold, so no fold's model
    has seen another part of the document it is scored on.
    """
    from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

    Y = np.hstack([np.asarray(v) for v in y.values()])
    if groups is None:
        group_index = np.arange(len(Y))
    else:
        if len(groups) != len(Y):
            raise ConfigError(f"groups has {len(groups)} entries for {len(Y)} units")
        _, group_index = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    n_groups = int(group_index.max()) + 1 if len(Y) else 0
    if k < 2 or k > n_groups:
        raise ConfigError(f"cross-validation needs 2 <= k <= {n_groups} documents, got k={k}")
    G = np.zeros((n_groups, Y.shape[1]), dtype=int)
    np.maximum.at(G, group_index, Y)
    folds = MultilabelStratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    out = []
    for _, test_groups in folds.split(np.zeros(n_groups), G):
        in_test = np.isin(group_index, test_groups)
        out.append((np.flatnonzero(~in_test), np.flatnonzero(in_test)))
    return out


def heldout_share(key: str) -> float:
    """A document's place in [0, 1), fixed by its key alone (SHA-256): the held-out set does not depend on file
    order, on which other units exist or on a seed, so adding annotations never moves a document across."""
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:12], 16) / float(16 ** 12)


def heldout_split(annotations: list[Annotation], fraction: float = HELDOUT_FRACTION) -> tuple[list[int], list[int]]:
    """Indices (train, test) of the fixed held-out split, by document.

    A document is held out when :func:`heldout_share` of its key is below ``fraction`` and it has units drawn at
    random or by cue (:data:`EVALUATION_SAMPLES`): those units are the test set. Its other units (keyword-enriched,
    or annotated in the app) are used on neither side, so no document is on both. Every unit of every other
    document trains. An annotation file with no ``sample`` field at all is treated as drawn at random.
    """
    if not 0 <= fraction < 1:
        raise ConfigError(f"held-out fraction must be in [0, 1), got {fraction}")
    scored = scorable(annotations)
    keys = [document_key(a) for a in annotations]
    held = {k for k, ok in zip(keys, scored) if ok and heldout_share(k) < fraction}
    train = [i for i, k in enumerate(keys) if k not in held]
    test = [i for i, (k, ok) in enumerate(zip(keys, scored)) if k in held and ok]
    return train, test


def scorable(annotations: list[Annotation]) -> list[bool]:
    """Per unit, whether an evaluation may score it: drawn at random or by cue (:data:`EVALUATION_SAMPLES`), or,
    in a set where no unit says how it was drawn, every unit (taken as drawn at random)."""
    pool = EVALUATION_SAMPLES if any(a.sample for a in annotations) else ("",)
    return [a.sample in pool for a in annotations]


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
    from .normalise import text_key

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
