"""One tagger, several threads: the app caches one tagger per model and every browser session tags with it from
its own thread. Two threads tag different real documents with one shared tagger, over and over, and must get
exactly what each gets alone (scores, selected labels, evidence), and do no more work than alone: the evidence of
a batch reuses what scoring that batch computed (the linear tier's sentence counts, the embedding tier's sentence
vectors) however the threads interleave.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter

import pytest

from nlp.models import load_model
from nlp.pipeline import DocumentTagger, text_for_tagging
from nlp.schema import Document


class Preprocessed:
    """A TextProcessor stand-in returning passages computed beforehand: what is under test is the tagger, not
    spaCy's shared pipeline."""

    def __init__(self, processor, docs):
        texts = [text_for_tagging(d) for d in docs]
        self.units = dict(zip(texts, processor.process(texts)))

    def process(self, texts):
        return (self.units[t] for t in texts)


def _documents(frame, n: int, start: int = 0) -> list[Document]:
    return [Document(id=r.id, text=r.text, title=r.title) for r in frame.iloc[start:start + n].itertuples()]


def _record(tagged) -> tuple:
    return (tagged.doc.id, {a: s.tolist() for a, s in tagged.scores.items()},
            {a: s.tolist() for a, s in tagged.passage_scores.items()}, tagged.selected, tagged.evidence)


class CallCounter:
    """Counts, per thread, the calls of some methods of some objects (instance attributes shadow the methods)."""

    def __init__(self, monkeypatch, targets):
        self.local = threading.local()
        for obj, name in targets:
            original = getattr(obj, name)

            def counted(*args, _original=original, _name=name, **kwargs):
                self.counts()[_name] += 1
                return _original(*args, **kwargs)

            monkeypatch.setattr(obj, name, counted)

    def counts(self) -> Counter:
        if not hasattr(self.local, "counts"):
            self.local.counts = Counter()
        return self.local.counts

    def reset(self) -> Counter:
        counts, self.local.counts = self.counts(), Counter()
        return counts


def tag_concurrently(tagger, processor, doc_sets, *, iterations: int, batch_size: int, counter: CallCounter):
    """Each document set tagged alone first (the reference: results and method calls), then by one thread per set
    at once, ``iterations`` times; returns the first mismatch of each thread (empty when there is none)."""
    runners = [DocumentTagger(tagger, Preprocessed(processor, docs)) for docs in doc_sets]

    def run(k):
        return [_record(t) for t in runners[k].tag(doc_sets[k], batch_size=batch_size)]

    for k in range(len(doc_sets)):
        run(k)  # warm: lazily built state (weights, inference models, caches) is built before the reference
    expected, expected_calls = [], []
    for k in range(len(doc_sets)):
        counter.reset()
        expected.append(run(k))
        expected_calls.append(counter.reset())
    assert any(record[4] for records in expected for record in records), "no evidence to compare"
    barrier = threading.Barrier(len(doc_sets))
    problems: list[str] = []

    def work(k):
        try:
            barrier.wait()
            for i in range(iterations):
                counter.reset()
                got = run(k)
                calls = counter.reset()
                if got != expected[k]:
                    doc = next(e[0] for g, e in zip(got, expected[k]) if g != e)
                    problems.append(f"thread {k}, iteration {i}: document {doc} differs from tagging it alone")
                    return
                if calls != expected_calls[k]:
                    problems.append(f"thread {k}, iteration {i}: calls {dict(calls)}, alone {dict(expected_calls[k])}")
                    return
        except Exception as exc:  # noqa: BLE001  (reported by the test, not lost in the thread)
            problems.append(f"thread {k}: {type(exc).__name__}: {exc}")

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often: interleavings that are rare in production come at once
    try:
        threads = [threading.Thread(target=work, args=(k,)) for k in range(len(doc_sets))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(switch)
    return problems


@pytest.fixture(scope="module")
def long_documents(state_department, king_county):
    """Two sets of real press releases (several passages each, some documents over one passage)."""
    return [_documents(state_department, 10), _documents(king_county, 10)]


@pytest.fixture(scope="module")
def lexicon(codebook, tmp_path_factory):
    return load_model("lexicon", codebook, folder=tmp_path_factory.mktemp("no_models"))[0]


def test_lexicon_tagger_shared_by_two_threads(lexicon, processor, long_documents, monkeypatch):
    counter = CallCounter(monkeypatch, [])
    assert tag_concurrently(lexicon, processor, long_documents, iterations=30, batch_size=4, counter=counter) == []


def test_linear_tagger_shared_by_two_threads(small_linear, processor, long_documents, monkeypatch):
    """The linear tier's evidence reuses the sentence counts its batch was scored with: one count per batch."""
    counter = CallCounter(monkeypatch, [(small_linear, "_sentence_counts")])
    assert sum(len(p) for docs in long_documents for p in Preprocessed(processor, docs).units.values()) > 20
    assert tag_concurrently(small_linear, processor, long_documents, iterations=30, batch_size=4,
                            counter=counter) == []


# -- the tiers that run MiniLM: fewer, shorter documents (their vectors come from the session's cache once embedded)
@pytest.fixture(scope="module")
def short_documents(state_department, king_county):
    """Two sets of two real press releases of 70-520 words (one of them over one passage)."""
    pick = lambda frame, rows: [Document(id=r.id, text=r.text, title=r.title)  # noqa: E731
                                for r in frame.iloc[rows].itertuples()]
    return [pick(state_department, [1, 3]), pick(king_county, [0, 1])]


def test_embedding_tagger_shared_by_two_threads(small_ensemble, processor, short_documents, monkeypatch,
                                                torch_all_cpus):
    """The embedding tier's evidence embeds each sentence of a batch once, for both axes, whatever the other thread
    does meanwhile."""
    tagger = small_ensemble.taggers_["embedding"]
    counter = CallCounter(monkeypatch, [(tagger, "_embed")])
    assert tag_concurrently(tagger, processor, short_documents, iterations=6, batch_size=1, counter=counter) == []


def test_ensemble_tagger_shared_by_two_threads(small_ensemble, processor, short_documents, monkeypatch,
                                               torch_all_cpus):
    counter = CallCounter(monkeypatch, [(small_ensemble.taggers_["linear"], "_sentence_counts"),
                                        (small_ensemble.taggers_["embedding"], "_embed")])
    assert tag_concurrently(small_ensemble, processor, short_documents, iterations=6, batch_size=1,
                            counter=counter) == []


@pytest.fixture(scope="module")
def tiny_transformer(codebook, small_units):
    """A transformer fine-tuned for one epoch on 36 small units, 64 tokens, 5 of 6 layers frozen (~2 s)."""
    from nlp.taggers.transformer import TransformerTagger

    units, y = small_units
    tagger = TransformerTagger(codebook, epochs=1, max_tokens=64, freeze_layers=5, batch_size=8, validation=0.25,
                               precision="fp32", progress=lambda _m: None)
    return tagger.fit(units[:36], {a: v[:36] for a, v in y.items()})


def test_transformer_tagger_shared_by_two_threads(tiny_transformer, processor, short_documents, monkeypatch,
                                                  codebook, tmp_path):
    """Loaded from disk, as the app has it: the inference copy and the prior are built once, under a lock, by
    whichever thread comes first."""
    from nlp.models import save_model

    save_model(tiny_transformer, "tiny", folder=tmp_path)
    loaded = load_model("tiny", codebook, folder=tmp_path)[0]
    counter = CallCounter(monkeypatch, [(loaded, "_logits")])
    one_each = [docs[:1] for docs in short_documents]  # every sentence goes through MiniLM alone: keep it short
    assert tag_concurrently(loaded, processor, one_each, iterations=4, batch_size=1, counter=counter) == []
    assert loaded.tokenizer_ is not tiny_transformer.tokenizer_


def test_a_fitted_transformer_has_its_own_tokenizer(tiny_transformer):
    """The shared MiniLM tokenizer is the embedding tier's, called without truncation: a transformer fitted in this
    process truncating with it would change it under that tier's feet (another thread's words cut at 64 pieces)."""
    from nlp.encoder import load_encoder

    shared = load_encoder()[0]
    assert tiny_transformer.tokenizer_ is not shared
    tiny_transformer._tokenize(["A sentence long enough to be truncated at sixty-four word pieces. " * 10])
    assert shared._tokenizer.truncation is None or shared._tokenizer.truncation.get("max_length") != 64
