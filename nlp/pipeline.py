"""Tagging documents end to end: passages, scores on every axis, thresholds, and evidence sentences."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import numpy as np

from .schema import Document, text_for_tagging
from .taggers import Tagger
from .taggers.base import aggregate_max
from .text import Passage, TextProcessor

MAX_EVIDENCE = 3
MAX_EVIDENCE_CHARS = 600


@dataclass
class TaggedDocument:
    doc: Document
    passages: list[Passage]
    scores: dict[str, np.ndarray]  # axis -> (n_labels,) document scores
    passage_scores: dict[str, np.ndarray]  # axis -> (n_passages, n_labels)
    selected: dict[str, list[str]]  # axis -> labels over threshold
    evidence: dict[str, list[str]]  # label -> sentences

    def to_record(self, labels: dict[str, list[str]], model_ref: str,
                  zero_shot: dict[str, list[str]] | None = None) -> dict[str, Any]:
        """The JSON line of ``cdpd classify``: id, one list per axis, scores, evidence, model; and ``zero_shot``
        (the labels scored without annotations) only when the model has such labels."""
        record: dict[str, Any] = {"id": self.doc.id}
        for axis in labels:
            record[axis] = self.selected[axis]
        record["scores"] = {
            axis: {lab: round(float(s), 4) for lab, s in zip(labels[axis], self.scores[axis])} for axis in labels
        }
        record["evidence"] = self.evidence
        record["model"] = model_ref
        if zero_shot and any(zero_shot.values()):
            record["zero_shot"] = sorted(lab for labs in zero_shot.values() for lab in labs)
        return record


class DocumentTagger:
    """Runs a tagger over documents in batches; pure: no I/O, no workspace."""

    def __init__(self, tagger: Tagger, processor: TextProcessor, max_evidence: int = MAX_EVIDENCE):
        self.tagger = tagger
        self.processor = processor
        self.max_evidence = max_evidence
        self.labels = tagger.labels

    def tag(self, docs: Iterable[Document], batch_size: int = 128) -> Iterator[TaggedDocument]:
        batch: list[Document] = []
        for doc in docs:
            batch.append(doc)
            if len(batch) >= batch_size:
                yield from self._tag_batch(batch)
                batch = []
        if batch:
            yield from self._tag_batch(batch)

    def _tag_batch(self, docs: list[Document]) -> list[TaggedDocument]:
        units = list(self.processor.process(text_for_tagging(d) for d in docs))
        flat = [p for unit in units for p in unit]
        owners = np.repeat(np.arange(len(units)), [len(u) for u in units])
        if flat:
            batch = self.tagger.score_batch(flat)  # kept for the evidence below: this call's, no other thread's
            passage_scores = batch.scores
        else:
            passage_scores = {axis: np.zeros((0, len(labs))) for axis, labs in self.labels.items()}
        doc_scores = {axis: aggregate_max(s, owners, len(units)) for axis, s in passage_scores.items()}
        offsets = np.r_[0, np.cumsum([len(u) for u in units])]
        # a document without passages carries no label (and has no passage to quote), whatever the thresholds
        has_text = np.array([len(u) > 0 for u in units], dtype=bool).reshape(-1, 1)
        over = {axis: ((doc_scores[axis] >= self.tagger.thresholds_[axis]) & has_text).tolist() for axis in self.labels}
        selected = [
            {axis: [lab for lab, on in zip(self.labels[axis], over[axis][i]) if on] for axis in self.labels}
            for i in range(len(docs))
        ]
        # evidence: each selected label's best passage; sentence contributions computed in one batch per axis
        wanted: dict[str, dict[int, None]] = {axis: {} for axis in self.labels}
        best: list[dict[str, int]] = []
        for i, sel in enumerate(selected):
            picks = {}
            for axis, labels in sel.items():
                for label in labels:
                    j = self.labels[axis].index(label)
                    k = int(offsets[i] + np.argmax(passage_scores[axis][offsets[i] : offsets[i + 1], j]))
                    picks[label] = k
                    wanted[axis][k] = None
            best.append(picks)
        contributions: dict[tuple[str, int], np.ndarray] = {}
        for axis, keys in wanted.items():
            ks = list(keys)
            if ks:
                for k, c in zip(ks, self.tagger.batch_contributions(batch, ks, axis)):
                    contributions[(axis, k)] = c
        out = []
        for i, (doc, unit) in enumerate(zip(docs, units)):
            text = text_for_tagging(doc)
            evidence = {}
            for axis, labels in selected[i].items():
                for label in labels:
                    k = best[i][label]
                    column = contributions[(axis, k)][:, self.labels[axis].index(label)]
                    order = np.argsort(-column, kind="stable")
                    picked = [int(s) for s in order[: self.max_evidence] if column[s] > 0] or [int(order[0])]
                    evidence[label] = [_clip(text[flat[k].sentences[s].start : flat[k].sentences[s].end])
                                       for s in picked]
            out.append(TaggedDocument(
                doc, unit, {axis: s[i] for axis, s in doc_scores.items()},
                {axis: s[offsets[i] : offsets[i + 1]] for axis, s in passage_scores.items()}, selected[i], evidence))
        return out


def _clip(sentence: str) -> str:
    """The sentence as it stands in the document (so it can be found and highlighted), clipped if very long."""
    sentence = sentence.strip()
    return sentence if len(sentence) <= MAX_EVIDENCE_CHARS else sentence[: MAX_EVIDENCE_CHARS - 1] + "…"
