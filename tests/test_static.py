"""The static encoder (MiniLM distilled into a table of word-piece vectors) and the embedding tier on it.

Distillation is checked on a slice of the vocabulary (the recipe and its determinism do not depend on its size); the
tagger tests use the session's static table (conftest ``static_table``: the 6,000 first word pieces, distilled once
per session into its temporary models folder) and the ~120 small seed units: they check mechanics, not quality
(benchmarks/semantic_speed.py measures that on the full table).
"""

from __future__ import annotations

import json
import socket
import threading

import numpy as np
import pytest
import skops.io as sio

from nlp import static
from nlp.encoder import load_encoder
from nlp.models import ModelError, load_model, save_model
from nlp.pipeline import DocumentTagger
from nlp.schema import Document
from nlp.static import STATIC_FILE, StaticEncoder, distill, table_id
from nlp.taggers.embedding import STATE_FILE, EmbeddingTagger, sentence_text
from nlp.taggers.ensemble import EnsembleTagger

pytestmark = pytest.mark.usefixtures("torch_all_cpus", "static_table")

SANCTIONS = ("The Department of the Treasury today imposed sanctions on three companies and five individuals that "
             "supplied components to the regime's ballistic missile program, freezing their assets.")
FESTIVAL = ("The city will host its annual Sister City Festival this weekend, celebrating thirty years of friendship "
            "with our sister city Kumamoto, Japan, with taiko drumming and a lantern parade.")


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""
    def refuse(*_a, **_k):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="module")
def encoder(static_table):
    return static_table


@pytest.fixture(scope="module")
def fitted(codebook, small_units, encoder):
    units, y = small_units
    return EmbeddingTagger(codebook, cv_folds=3).fit(units, y)


def test_distillation_is_deterministic_offline_and_shaped(no_network):
    first = distill(64, limit=400)
    again = distill(64, limit=400)
    np.testing.assert_array_equal(first, again)
    assert table_id(first) == table_id(again)
    tokenizer, _ = load_encoder()
    assert first.shape == (len(tokenizer.get_vocab()), 64) and first.dtype == np.float16
    kept = static._kept_ids(tokenizer)[:400]
    assert np.abs(first[kept]).sum(axis=1).min() > 0  # every distilled piece has a vector
    others = np.setdiff1d(np.arange(len(first)), kept)
    assert not first[others].any()  # [CLS], [SEP], [MASK], [unusedN] and the pieces left out: zero rows
    assert tokenizer.cls_token_id not in kept and tokenizer.convert_tokens_to_ids("[unused0]") not in kept
    with pytest.raises(ValueError, match="dims"):
        distill(1000, limit=50)


def test_static_vectors_are_normalised_sums_of_pieces(encoder):
    texts = [SANCTIONS, FESTIVAL, "", " ".join([FESTIVAL] * 40) + " " + SANCTIONS]
    vectors = encoder.embed(texts)
    assert vectors.shape == (4, encoder.dim) == (4, 256) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors[[0, 1, 3]], axis=1), 1.0, atol=1e-5)
    assert not vectors[2].any()  # nothing to read: a zero vector
    ids = encoder.token_ids([SANCTIONS])[0]
    by_hand = encoder.table[ids].sum(axis=0)
    np.testing.assert_allclose(vectors[0], by_hand / np.linalg.norm(by_hand), atol=1e-6)
    # alone or in a batch: the same vector; a long text is read to its end (no truncation)
    for i, text in enumerate(texts):
        np.testing.assert_allclose(encoder.embed([text])[0], vectors[i], atol=1e-6)
    assert len(encoder.token_ids(texts[3:])[0]) > 1000
    assert vectors[3] @ vectors[0] > encoder.embed([" ".join([FESTIVAL] * 40)])[0] @ vectors[0]
    a, b, c = encoder.embed(["The city signed a sister-city agreement.", "A twin-town partnership was signed.",
                             "Treasury froze the assets of arms dealers."])
    assert a @ b > a @ c  # similar meaning, similar vectors


def test_static_tagger_batches_change_nothing(codebook, processor, small_units, fitted):
    assert fitted.get_params()["encoder"] == "static" and fitted.encoder_id_.startswith("static:")
    units, _ = small_units
    passages = [p for u in units[:20] for p in u]
    together = fitted.passage_proba(passages)
    alone = [fitted.passage_proba([p]) for p in passages]
    for axis in codebook.axis_names:
        np.testing.assert_allclose(np.vstack([a[axis] for a in alone]), together[axis], atol=1e-9)
        both = fitted.sentence_contributions(passages[:6], axis)
        for p, c in zip(passages[:6], both):
            np.testing.assert_allclose(fitted.sentence_contributions([p], axis)[0], c, atol=1e-9)
            np.testing.assert_allclose(c.mean(axis=0), 0.0, atol=1e-9)
    [passage] = processor.passages(f"{FESTIVAL} {SANCTIONS}")
    j = codebook.labels("functions").index("coercive_measures")
    [c] = fitted.sentence_contributions([passage], "functions")
    assert "sanctions" in sentence_text(passage, passage.sentences[int(np.argmax(c[:, j]))])


def test_two_threads_share_one_static_tagger(codebook, small_units, fitted):
    """Prediction keeps no state between calls: two threads tagging at once get what each gets alone."""
    units, _ = small_units
    docs = [[p for u in units[i::2] for p in u] for i in range(2)]
    expected = [(fitted.passage_proba(d), fitted.sentence_contributions(d, "domains")) for d in docs]
    got: list = [None, None]

    def work(k):
        for _ in range(3):
            got[k] = (fitted.passage_proba(docs[k]), fitted.sentence_contributions(docs[k], "domains"))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (scores, contrib), (want_scores, want_contrib) in zip(got, expected):
        for axis in codebook.axis_names:
            np.testing.assert_array_equal(scores[axis], want_scores[axis])
        for a, b in zip(contrib, want_contrib):
            np.testing.assert_array_equal(a, b)


def test_save_load_round_trip_carries_the_table(codebook, processor, small_units, fitted, tmp_path, monkeypatch):
    units, _ = small_units
    info = save_model(fitted, "static_emb", folder=tmp_path)
    assert info.meta["params"]["encoder"] == "static"
    assert (info.path / STATIC_FILE).is_file() and sio.get_untrusted_types(file=info.path / STATE_FILE) == []
    monkeypatch.setattr(static, "distill", lambda *a, **k: pytest.fail("loading a model must not distil"))
    loaded, _ = load_model("static_emb", codebook, folder=tmp_path)
    assert loaded.encoder == "static" and loaded.static_.id == fitted.static_.id
    few = units[:12]
    for axis, scores in loaded.predict_proba(few).items():
        np.testing.assert_array_equal(scores, fitted.predict_proba(few)[axis])
    docs = [Document(id=str(i), text=" ".join(p.text for p in u)) for i, u in enumerate(units[:6])]
    a = [t.evidence for t in DocumentTagger(fitted, processor).tag(docs)]
    b = [t.evidence for t in DocumentTagger(loaded, processor).tag(docs)]
    assert a == b and any(a)
    # a table that is not the one the model was trained on is refused
    table = StaticEncoder.load(info.path / STATIC_FILE).table16.copy()
    table[1000] += np.float16(0.5)
    StaticEncoder(table).save(info.path / STATIC_FILE)
    with pytest.raises(ModelError, match="not the expected"):
        load_model("static_emb", codebook, folder=tmp_path)


def test_a_minilm_state_loads_as_minilm(codebook, small_units, fitted, tmp_path, monkeypatch):
    """A model saved before ``encoder`` existed has no such parameter in its meta.json: its state names MiniLM."""
    from nlp import embeddings

    minilm = EmbeddingTagger(codebook, encoder="minilm")
    for name in ("coef_", "intercept_", "zero_shot_mask_", "calibration_", "thresholds_"):
        setattr(minilm, name, getattr(fitted, name))
    n_labels = {axis: len(labs) for axis, labs in codebook.label_sets().items()}
    minilm.coef_ = {axis: np.zeros((n, 384 + len(minilm.seed_labels))) for axis, n in n_labels.items()}
    minilm.prototypes_ = {axis: np.zeros((n, 384)) for axis, n in n_labels.items()}
    minilm.encoder_id_ = embeddings.encoder_id()
    info = save_model(minilm, "old", folder=tmp_path)
    meta_path = info.path / "meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["params"]["encoder"]
    meta_path.write_text(json.dumps(meta))
    loaded, _ = load_model("old", codebook, folder=tmp_path)
    assert loaded.encoder == "minilm" and loaded.dim == 384 and not (info.path / STATIC_FILE).exists()


def test_ensemble_embeds_with_the_static_member(codebook, small_units, tmp_path):
    units, y = small_units
    members = {"linear": {"cv_folds": 3}, "embedding": {"cv_folds": 3}}
    ensemble = EnsembleTagger(codebook, member_params=members).fit(units, y)
    assert ensemble.get_params()["member_params"]["embedding"]["encoder"] == "static"
    info = save_model(ensemble, "ens", folder=tmp_path)
    assert (info.path / "embedding" / STATIC_FILE).is_file()
    loaded, _ = load_model("ens", codebook, folder=tmp_path)
    few = units[:10]
    for axis, scores in loaded.predict_proba(few).items():
        np.testing.assert_allclose(scores, ensemble.predict_proba(few)[axis], atol=1e-12)
