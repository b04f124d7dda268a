"""Active learning: which workspace passages to annotate next.

``uncertainty`` ranks passages by how close their scores sit to the labels' thresholds (the smallest margin over
the labels of the chosen axes, scaled so that 0 is on the threshold and 1 as far as a score can be); ``diversity``
takes the most uncertain passages and keeps one per cluster (k-means on the tagger's features), so a batch does not
repeat itself; ``random`` is the baseline. Passages whose text is already annotated are never proposed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .errors import ConfigError
from .taggers import Tagger
from .text import Passage

STRATEGIES = ("uncertainty", "diversity", "random")


@dataclass
class Candidate:
    passage_id: int
    document: str
    text: str
    margin: float
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    suggested: dict[str, list[str]] = field(default_factory=dict)


def margins(scores: dict[str, np.ndarray], thresholds: dict[str, np.ndarray], axes: Sequence[str]) -> np.ndarray:
    """Per passage, the smallest distance of a label's score to its threshold, scaled to [0, 1]."""
    parts = []
    for axis in axes:
        t = np.asarray(thresholds[axis])
        span = np.where(scores[axis] >= t, 1 - t, t)  # how far a score can go on its side of the threshold
        parts.append(np.abs(scores[axis] - t) / np.maximum(span, 1e-9))
    return np.min(np.hstack(parts), axis=1) if parts else np.zeros(0)


def choose(tagger: Tagger, passages: list[Passage], n: int, *, strategy: str = "uncertainty",
           axes: Sequence[str] | None = None, seed: int = 0) -> tuple[list[int], np.ndarray, dict[str, np.ndarray]]:
    """Indices of the ``n`` passages to annotate next, most useful first; also the margins and the scores."""
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    axes = list(axes or tagger.labels)
    unknown = [a for a in axes if a not in tagger.labels]
    if unknown:
        raise ConfigError(f"unknown axis {', '.join(unknown)}; the model's axes are {', '.join(tagger.labels)}")
    if not passages or n <= 0:
        return [], np.zeros(0), {}
    scores = tagger.passage_proba(passages)
    margin = margins(scores, tagger.thresholds_, axes)
    order = np.argsort(margin, kind="stable")
    if strategy == "random":
        picked = np.random.default_rng(seed).permutation(len(passages))[:n]
    elif strategy == "uncertainty" or len(passages) <= n:
        picked = order[:n]
    else:
        pool = order[: min(len(passages), 4 * n)]
        picked = _one_per_cluster(tagger, [passages[i] for i in pool], pool, margin, n, seed)
    return [int(i) for i in picked], margin, scores


def _one_per_cluster(tagger, pool_passages, pool, margin, n, seed) -> np.ndarray:
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import TfidfVectorizer

    features = getattr(tagger, "_passage_features", None)
    if features is not None:
        X = features(pool_passages)
    else:  # a tagger without a feature space of its own: TF-IDF of the lemmas
        X = TfidfVectorizer(analyzer=lambda tokens: tokens).fit_transform([p.tokens for p in pool_passages])
    labels = KMeans(n_clusters=n, n_init=3, random_state=seed).fit_predict(X)
    picked = []
    for cluster in range(n):
        members = np.flatnonzero(labels == cluster)
        if len(members):
            picked.append(pool[members[np.argmin(margin[pool[members]])]])
    picked = sorted(picked, key=lambda i: margin[i])
    return np.asarray(picked[:n])


def workspace_queue(ws, tagger: Tagger, codebook, n: int, *, strategy: str = "uncertainty",
                    axes: Sequence[str] | None = None, pool: int = 2000, seed: int = 0,
                    source: str | None = None) -> list[Candidate]:
    """The ``n`` workspace passages to annotate next (none whose text is annotated already), most useful first,
    with the model's scores and suggested labels. Used by `cdpd queue` and the app's Annotate page.

    ``source`` draws from that source's documents only: the way to teach the model a source it never saw (a city
    office's own releases). On the shipped city sources, a model that never saw a source gains most from that
    source's own units, and a queue chosen by uncertainty did no better than a random one
    (benchmarks/RESULTS.md, "A new source")."""
    from .text import Passage, TextProcessor

    if source is not None:
        known = list(ws.documents_per_source().index.unique())
        if source not in known:
            raise ConfigError(f"no source {source!r} in the workspace; its sources: {', '.join(known) or 'none'}")
    rows = ws.candidate_passages(limit=pool, seed=seed, source=source)
    if not rows:
        return []
    processor = TextProcessor(codebook, passage_words=10**9)  # a stored passage stays one passage
    texts = [text[start:end] for _pid, _doc, start, end, text in rows]
    passages = [ps[0] if ps else Passage(0, 0, 0, [], "") for ps in processor.process(texts)]
    picked, margin, scores = choose(tagger, passages, n, strategy=strategy, axes=axes, seed=seed)
    out = []
    for i in picked:
        pid, doc, *_ = rows[i]
        out.append(Candidate(
            pid, doc, texts[i], round(float(margin[i]), 4),
            {axis: {lab: float(scores[axis][i, j]) for j, lab in enumerate(labs)} for axis, labs in tagger.labels.items()},
            {axis: [lab for j, lab in enumerate(labs) if scores[axis][i, j] >= tagger.thresholds_[axis][j]]
             for axis, labs in tagger.labels.items()}))
    return out
