"""The embedding tier: MiniLM embeddings (unit norm, deterministic), their SQLite cache, and the embedding tagger
(save/load, held-out F1 over the lexicon, zero-shot scores for a label without annotations, sentence evidence).

Embedding all 1,548 seed units takes minutes on 2 CPU cores, so the tagger tests use a fixed subset of the standard
held-out split: 500 of its training units (every label with at least 3 positives) and 100 of its held-out random
units. With fewer than ~500 training units neither this tagger nor the linear one reliably beats the lexicon on
functions (their micro-F1 swings by +-0.15 with the draw). One embedding cache in a temporary folder is shared by
the module, so every passage is embedded once.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
import yaml

from nlp import embeddings
from nlp.annotations import label_matrix
from nlp.codebook import DEFAULT_CODEBOOK, load_codebook
from nlp.embeddings import DIM, EmbeddingCache, default_cache_path, embed
from nlp.models import load_model, save_model
from nlp.pipeline import DocumentTagger, text_for_tagging
from nlp.schema import Document
from nlp.taggers import TAGGERS, get_tagger_class
from nlp.taggers.embedding import STATE_FILE, EmbeddingTagger, sentence_text
from nlp.text import TextProcessor
from nlp.training import annotation_units, evaluate_tagger

FESTIVAL = ("The city will host its annual Sister City Festival this weekend in the downtown plaza, celebrating "
            "thirty years of friendship with our sister city Kumamoto, Japan, with taiko drumming, food stalls "
            "and a lantern parade led by a visiting delegation.")
#: About a sister-city festival without any of the new label's seeds: only its embedding can tell.
FAIR = ("Thousands of residents came downtown on Saturday for music, dance and food from Kumamoto, as the two "
        "partner cities marked thirty years of friendship with a weekend of celebrations.")
SANCTIONS = ("The Department of the Treasury today imposed sanctions on three companies and five individuals that "
             "supplied components to the regime's ballistic missile program, freezing their assets and barring "
             "U.S. persons from dealing with them.")
NEW_LABEL = {
    "id": "sister_city_festival",
    "definition": "Festivals, fairs and celebrations held with a sister city or in honour of a sister-city tie.",
    "include": ["sister-city festivals and cultural fairs", "anniversary celebrations of a sister-city tie"],
    "exclude": ["signing a sister-city agreement without a celebration (twinning)"],
    "seeds": ["sister city festival", "sister cities festival", "friendship festival"],
}


pytestmark = pytest.mark.usefixtures("torch_all_cpus")  # conftest: encode with every CPU


@pytest.fixture(scope="module")
def cache_path(tmp_path_factory):
    return str(tmp_path_factory.mktemp("embedding_cache") / "embeddings.sqlite")


@pytest.fixture(scope="module")
def subset_data(seed_annotations, seed_units, seed_labels, heldout_split_indices, codebook):
    """(annotations, units, labels, train indices, test indices) of a fixed subset of the standard split: a seeded
    500 of its training units (topped up from the rest, in file order, until every label has 3 positives) and a
    seeded 100 of its 252 held-out random units. Indices are into the subset's lists."""
    train_all, test_all = heldout_split_indices
    rng = np.random.default_rng(0)
    train = rng.choice(train_all, size=500, replace=False).tolist()
    test = sorted(rng.choice(test_all, size=100, replace=False).tolist())
    for axis in codebook.axis_names:
        for j, label in enumerate(codebook.labels(axis)):
            have = int(seed_labels[axis][train, j].sum())
            for i in train_all:
                if have >= 3:
                    break
                if i not in train and seed_labels[axis][i, j]:
                    train.append(i)
                    have += 1
    chosen = sorted(train) + test
    anns = [seed_annotations[i] for i in chosen]
    units = [seed_units[i] for i in chosen]
    y = {a: v[chosen] for a, v in seed_labels.items()}
    return anns, units, y, list(range(len(train))), list(range(len(train), len(chosen)))


@pytest.fixture(scope="module")
def fitted(codebook, subset_data, cache_path):
    """The embedding tagger fitted on the subset's training part."""
    _, units, y, train_idx, _ = subset_data
    return EmbeddingTagger(codebook, cache=cache_path, encoder="minilm").fit([units[i] for i in train_idx],
                                                           {a: v[train_idx] for a, v in y.items()})


# ------------------------------------------------------------------------------------------------ embeddings


def test_embeddings_are_unit_norm_deterministic_and_in_order():
    trade = " ".join(["The mayor welcomed a trade delegation from our sister city to discuss exports."] * 25)
    sanctions = " ".join(["Treasury imposed sanctions and froze the assets of arms dealers."] * 25)
    long_text = f"{trade} {sanctions}"
    texts = ["Sanctions were imposed on the regime.", long_text, "", "A cultural festival with partner cities."]
    first = embed(texts)
    assert first.shape == (4, DIM) and first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(embed(texts), first)  # same batch, same numbers
    # order restored after sorting by length; a text alone gives (numerically) the same vector as in a batch
    np.testing.assert_allclose(embed(texts[::-1]), first[::-1], atol=1e-5)
    np.testing.assert_allclose(embed([texts[0]])[0], first[0], atol=1e-5)
    # a text over 256 word pieces is read in windows, not truncated: its second half counts
    tokenizer, _ = embeddings.load_encoder()
    assert len(tokenizer(trade, add_special_tokens=False, verbose=False)["input_ids"]) > 256
    v_trade, v_long, v_sanctions = embed([trade, long_text, sanctions])
    assert v_long @ v_sanctions > v_trade @ v_sanctions + 0.1
    assert embed([]).shape == (0, DIM)
    # similar meaning, similar vectors
    a, b, c = embed(["The city signed a sister-city agreement.", "A twin-town partnership was signed by the city.",
                     "Treasury froze the assets of arms dealers."])
    assert a @ b > a @ c


def test_cache_returns_stored_vectors_and_computes_nothing_twice(tmp_path, monkeypatch):
    calls: list[int] = []
    real_embed = embeddings.embed

    def counting(texts, **kwargs):
        calls.append(len(texts))
        return real_embed(texts, **kwargs)

    monkeypatch.setattr(embeddings, "embed", counting)
    texts = ["Sanctions were imposed.", "A festival with our sister city.", "Sanctions were imposed."]
    path = tmp_path / "cache" / "embeddings.sqlite"
    with EmbeddingCache(path) as cache:
        first = cache.get_or_compute(texts)
        assert calls == [2]  # the duplicate text is embedded once
        assert (cache.hits, cache.misses, len(cache)) == (0, 3, 2)
        second = cache.get_or_compute(texts)
        assert calls == [2] and cache.hits == 3
        np.testing.assert_array_equal(first, second)
        np.testing.assert_array_equal(first[0], first[2])
    with EmbeddingCache(path) as reopened:  # persisted on disk
        np.testing.assert_array_equal(reopened.get_or_compute(texts[::-1]), first[::-1])
        more = reopened.get_or_compute(["A new text.", texts[1]])
        assert calls == [2, 1]
        np.testing.assert_array_equal(more[1], first[1])
    np.testing.assert_allclose(first, real_embed(texts), atol=1e-5)
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        dims = {row[0] for row in conn.execute("SELECT dim FROM embeddings")}
        sizes = {row[0] for row in conn.execute("SELECT length(vector) FROM embeddings")}
        assert dims == {DIM} and sizes == {DIM * 4}  # float32 blobs
    finally:
        conn.close()
    # another encoder (or max_tokens) is another key: nothing stale is returned
    with EmbeddingCache(path, encoder="minilm:other") as other:
        other.get_or_compute(texts[:1])
        assert other.misses == 1 and calls == [2, 1, 1]
        assert other.purge_other_encoders() == 3
    assert default_cache_path() == Path(os.environ["CDPD_HOME"]) / "embeddings.sqlite"  # a tmp folder in tests


def test_importing_the_taggers_does_not_load_the_encoder():
    code = ("import sys, nlp.taggers, nlp.embeddings; "
            "assert 'embedding' in nlp.taggers.TAGGERS; assert 'transformers' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------------------------------------ the tagger


def test_registered_with_its_parameters(codebook):
    assert TAGGERS["embedding"] is EmbeddingTagger and get_tagger_class("embedding") is EmbeddingTagger
    tagger = EmbeddingTagger(codebook, cache="/nowhere/embeddings.sqlite")
    params = tagger.get_params()
    assert params == {"C": 0.05, "seed_weight": 4.0, "cv_folds": 5, "max_tokens": 256, "random_state": 0,
                      "encoder": "static"}
    tagger.set_params(C=1.0, cache=None, batch_size=8)  # runtime settings are accepted but not recorded
    assert tagger.C == 1.0 and tagger.cache is None and "cache" not in tagger.get_params()
    with pytest.raises(ValueError, match="no parameter"):
        tagger.set_params(alpha=1)
    with pytest.raises(ValueError, match="encoder must be one of"):
        tagger.set_params(encoder="word2vec")


def test_fit_uses_the_cache_and_refits_without_encoding(codebook, subset_data, cache_path, fitted, monkeypatch):
    _, units, y, train_idx, _ = subset_data
    calls: list[int] = []
    monkeypatch.setattr(embeddings, "embed", lambda texts, **kw: calls.append(len(texts)) or np.zeros((0, DIM)))
    again = EmbeddingTagger(codebook, cache=cache_path, encoder="minilm").fit([units[i] for i in train_idx],
                                                            {a: v[train_idx] for a, v in y.items()})
    assert calls == []  # passages and label prototypes all came from the cache
    for axis in codebook.axis_names:
        np.testing.assert_array_equal(again.coef_[axis], fitted.coef_[axis])
        np.testing.assert_array_equal(again.thresholds_[axis], fitted.thresholds_[axis])
    assert fitted.zero_shot_labels == set()  # every label of the subset has positives


def test_save_load_predicts_identically(codebook, subset_data, fitted, cache_path, tmp_path):
    _, units, _, _, test_idx = subset_data
    folder = tmp_path / "models"
    info = save_model(fitted, "emb", folder=folder)
    assert info.meta["params"] == fitted.get_params() and "cache" not in info.meta["params"]
    assert sio.get_untrusted_types(file=info.path / STATE_FILE) == []
    loaded, loaded_info = load_model("emb", codebook, folder=folder)
    assert isinstance(loaded, EmbeddingTagger) and loaded_info.version == info.version
    # without a cache the loaded model embeds in memory: the same numbers as through the cache
    assert loaded.cache is None
    few = [units[i] for i in test_idx[:8]]
    for axis, scores in loaded.predict_proba(few).items():
        np.testing.assert_allclose(scores, fitted.predict_proba(few)[axis], atol=1e-6)
    loaded.set_params(cache=cache_path)
    test_units = [units[i] for i in test_idx]
    before, after = fitted.predict_proba(test_units), loaded.predict_proba(test_units)
    for axis in codebook.axis_names:
        np.testing.assert_allclose(after[axis], before[axis], atol=1e-6)
        np.testing.assert_array_equal(loaded.thresholds_[axis], fitted.thresholds_[axis])
        np.testing.assert_array_equal(after[axis] >= loaded.thresholds_[axis], before[axis] >= fitted.thresholds_[axis])


class Untrusted:
    """Not a type skops trusts: a state file holding one must be refused before anything is instantiated."""

    instantiated = 0

    def __setstate__(self, state):
        Untrusted.instantiated += 1
        self.__dict__.update(state)


def test_refuses_a_state_with_untrusted_types(codebook, fitted, tmp_path):
    from nlp.models import ModelError

    info = save_model(fitted, "tampered", folder=tmp_path)
    sio.dump({"coef": Untrusted()}, info.path / STATE_FILE)
    with pytest.raises(ModelError, match="untrusted types .*Untrusted"):
        load_model("tampered", codebook, folder=tmp_path)
    assert Untrusted.instantiated == 0


def test_beats_the_lexicon_on_heldout_units(codebook, subset_data, fitted):
    _, units, y, _, test_idx = subset_data
    test_units = [units[i] for i in test_idx]
    y_test = {a: v[test_idx] for a, v in y.items()}
    assert len(test_idx) == 100
    ours = evaluate_tagger(fitted, test_units, y_test, codebook)
    lexicon = evaluate_tagger(get_tagger_class("lexicon")(codebook).fit(test_units, y_test), test_units, y_test,
                              codebook)
    for axis in ("functions", "domains"):
        emb, lex = ours[axis]["micro"]["f1"], lexicon[axis]["micro"]["f1"]
        assert emb > lex, f"{axis}: embedding micro-F1 {emb:.3f} does not beat lexicon {lex:.3f}"


def test_evidence_sentences_come_from_the_passage(codebook, processor, subset_data, fitted):
    anns, units, _, _, test_idx = subset_data
    passages = [p for i in test_idx[:6] for p in units[i]]
    for axis in codebook.axis_names:
        contributions = fitted.sentence_contributions(passages, axis)
        assert len(contributions) == len(passages)
        for p, c in zip(passages, contributions):
            assert c.shape == (len(p.sentences), len(codebook.labels(axis)))
            np.testing.assert_allclose(c.mean(axis=0), 0.0, atol=1e-9)  # relative to the passage's mean
    # through the pipeline: every evidence sentence is a sentence of the tagged document
    docs = [Document(id=anns[i].id, text=anns[i].text, title=anns[i].title) for i in test_idx[:6]]
    tagged = list(DocumentTagger(fitted, processor).tag(docs))
    n_evidence = 0
    for doc, result in zip(docs, tagged):
        text = text_for_tagging(doc)
        sentences = {sentence_text(p, s).strip() for p in result.passages for s in p.sentences}
        for label, quotes in result.evidence.items():
            for quote in quotes:
                n_evidence += 1
                assert quote.rstrip("…") in text and any(s.startswith(quote.rstrip("…")) for s in sentences)
    assert n_evidence > 0
    # the sentence about coercion is the top evidence for coercive_measures
    [passage] = processor.passages(f"{FESTIVAL} {SANCTIONS}")
    j = codebook.labels("functions").index("coercive_measures")
    [c] = fitted.sentence_contributions([passage], "functions")
    top = passage.sentences[int(np.argmax(c[:, j]))]
    assert "sanctions" in sentence_text(passage, top)


# ------------------------------------------------------------------------------------------------ zero-shot


@pytest.fixture(scope="module")
def extended_codebook(tmp_path_factory):
    data = yaml.safe_load(DEFAULT_CODEBOOK.read_text(encoding="utf-8"))
    data["functions"].append(dict(NEW_LABEL))
    path = tmp_path_factory.mktemp("codebook") / "codebook.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return load_codebook(path)


def test_zero_shot_label_without_annotations(extended_codebook, subset_data, cache_path, tmp_path):
    anns, _, _, train_idx, _ = subset_data
    processor = TextProcessor(extended_codebook)
    train = [anns[i] for i in train_idx]
    units = annotation_units(train, processor)
    y = label_matrix(train, extended_codebook)
    assert y["functions"][:, -1].sum() == 0  # nobody annotated the new label
    tagger = EmbeddingTagger(extended_codebook, cache=cache_path, encoder="minilm").fit(units, y)
    assert tagger.zero_shot_labels == {"sister_city_festival"}
    assert tagger.zero_shot == {"functions": ["sister_city_festival"], "domains": []}
    w_cos, w_seeds, _ = tagger.calibration_
    assert w_cos > 0 and w_seeds > 0  # closer to its prototype or more of its seeds: more likely the label
    j = extended_codebook.labels("functions").index("sister_city_festival")
    passages = [p for text in (FESTIVAL, SANCTIONS, FAIR) for p in processor.passages(text)]
    assert [p.seed_counts().get("sister_city_festival", 0) for p in passages] == [1, 0, 0]
    scores = tagger.passage_proba(passages)["functions"][:, j]
    assert ((0 <= scores) & (scores <= 1)).all()
    assert scores[0] > scores[1], f"festival {scores[0]:.3f} vs sanctions {scores[1]:.3f}"
    assert scores[2] > scores[1], f"fair without seeds {scores[2]:.3f} vs sanctions {scores[1]:.3f}"
    assert 0 < tagger.thresholds_["functions"][j] < 1
    # labels with data keep their trained classifier: the sanctions passage is coercive_measures, not a festival
    k = extended_codebook.labels("functions").index("coercive_measures")
    all_scores = tagger.passage_proba(passages)["functions"]
    assert int(np.argmax(all_scores[1])) == k  # its best function (on a 500-unit model; its threshold may differ)
    assert all_scores[1, k] > max(all_scores[0, k], all_scores[2, k]) and all_scores[1, j] < all_scores[0, j]
    # evidence for a zero-shot label: the festival sentence over the sanctions one
    [mixed] = processor.passages(f"{SANCTIONS} {FESTIVAL}")
    [c] = tagger.sentence_contributions([mixed], "functions")
    assert "Festival" in sentence_text(mixed, mixed.sentences[int(np.argmax(c[:, j]))])
    # saved and loaded: still zero-shot, same scores
    save_model(tagger, "emb_zs", folder=tmp_path)
    loaded, _ = load_model("emb_zs", extended_codebook, folder=tmp_path)
    assert loaded.zero_shot_labels == {"sister_city_festival"}
    np.testing.assert_allclose(loaded.passage_proba(passages)["functions"], tagger.passage_proba(passages)["functions"],
                               atol=1e-6)
