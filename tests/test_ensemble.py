"""The ensemble tier: linear and embedding scores averaged on the logit scale, thresholds tuned on the members'
out-of-fold scores; saved and reloaded through the registry (skops members, JSON), predicting identically.

Trained on the ~120 small seed units (every label present) with members' 3-fold threshold tuning; the embedding
cache lives in a temporary folder shared by the session (conftest), so every passage is embedded once.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import skops.io as sio
import yaml

from nlp.annotations import Annotation, label_matrix
from nlp.codebook import DEFAULT_CODEBOOK, load_codebook
from nlp.metrics import tune_thresholds
from nlp.models import load_model, save_model
from nlp.pipeline import DocumentTagger, text_for_tagging
from nlp.schema import Document
from nlp.taggers import TAGGERS, get_tagger_class
from nlp.taggers.base import aggregate_max
from nlp.taggers.embedding import EmbeddingTagger
from nlp.taggers.ensemble import STATE_FILE, EnsembleTagger
from nlp.taggers.linear import LinearTagger
from nlp.text import TextProcessor
from nlp.training import annotation_units

MEMBERS_3_FOLDS = {"linear": {"cv_folds": 3}, "embedding": {"cv_folds": 3}}


pytestmark = pytest.mark.usefixtures("torch_all_cpus", "static_table")  # conftest: every CPU, a quick static table


@pytest.fixture(scope="module")
def cache_path(embedding_cache):
    return embedding_cache


@pytest.fixture(scope="module")
def fitted(small_ensemble):
    """conftest: the ensemble (members' thresholds tuned on 3 folds) fitted on the small units."""
    return small_ensemble


def _logit(p):
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def test_registered_with_its_members_parameters(codebook):
    assert TAGGERS["ensemble"] is EnsembleTagger and get_tagger_class("ensemble") is EnsembleTagger
    tagger = EnsembleTagger(codebook, member_params={"linear": {"C": 2.0}}, cache="/nowhere/embeddings.sqlite")
    params = tagger.get_params()
    assert params["members"] == ["linear", "embedding"] and params["weights"] is None
    # every member parameter is recorded, defaults included; runtime settings are not
    assert params["member_params"]["linear"] == LinearTagger(codebook, C=2.0).get_params()
    assert params["member_params"]["embedding"] == EmbeddingTagger(codebook).get_params()
    assert tagger.taggers_["embedding"].cache == "/nowhere/embeddings.sqlite"
    assert "cache" not in json.dumps(params)
    tagger.set_params(cache=None)
    assert tagger.taggers_["embedding"].cache is None


@pytest.mark.parametrize("kwargs, message", [
    ({"members": ["linear", "transformer"]}, "no out-of-fold scores"),
    ({"members": ["linear", "ensemble"]}, "its own member"),
    ({"members": ["linear"]}, "two or more"),
    ({"members": ["linear", "linear"]}, "two or more distinct"),
    ({"weights": [1.0]}, "1 weights for 2 members"),
    ({"weights": [1.0, -1.0]}, "non-negative"),
    ({"member_params": {"lexicon": {}}}, "not members"),
    ({"members": ["linear", "nonsense"]}, "unknown tagger"),
])
def test_bad_settings_are_refused(codebook, kwargs, message):
    with pytest.raises(ValueError, match=message):
        EnsembleTagger(codebook, **kwargs)


def test_scores_are_the_members_logits_averaged(codebook, small_units, fitted):
    units, _ = small_units
    passages = [p for u in units[:15] for p in u]
    ours = fitted.passage_proba(passages)
    lin = fitted.taggers_["linear"].passage_proba(passages)
    emb = fitted.taggers_["embedding"].passage_proba(passages)
    for axis in codebook.axis_names:
        expected = 1 / (1 + np.exp(-(_logit(lin[axis]) + _logit(emb[axis])) / 2))
        np.testing.assert_allclose(ours[axis], expected, atol=1e-9)
    # weights count: all the weight on one member gives that member's scores
    only_linear = EnsembleTagger(codebook, weights=[1.0, 0.0])
    only_linear.taggers_ = fitted.taggers_
    for axis, scores in only_linear.passage_proba(passages).items():
        np.testing.assert_allclose(scores, np.clip(lin[axis], 1e-6, 1 - 1e-6), atol=1e-9)


def test_thresholds_are_tuned_on_out_of_fold_scores(codebook, small_units, fitted):
    units, y = small_units
    owners = np.repeat(np.arange(len(units)), [len(u) for u in units])
    lin = fitted.taggers_["linear"].oof_passage_scores_
    emb = fitted.taggers_["embedding"].oof_passage_scores_
    for axis in codebook.axis_names:
        # out-of-fold: not the members' in-sample scores
        flat = [p for u in units for p in u]
        assert not np.allclose(lin[axis], fitted.taggers_["linear"].passage_proba(flat)[axis], atol=1e-3)
        combined = 1 / (1 + np.exp(-(_logit(lin[axis]) + _logit(emb[axis])) / 2))
        expected = tune_thresholds(y[axis], aggregate_max(combined, owners, len(units)))
        np.testing.assert_allclose(fitted.thresholds_[axis], expected)
    assert fitted.zero_shot_labels == set()  # every label of the small set has positives


def test_save_load_predicts_identically(codebook, small_units, fitted, cache_path, tmp_path):
    units, _ = small_units
    info = save_model(fitted, "ens", folder=tmp_path)
    assert info.meta["tagger"] == "ensemble" and info.meta["params"] == fitted.get_params()
    assert (info.path / STATE_FILE).is_file()
    for member, state in (("linear", "linear.safetensors"), ("embedding", "embedding.skops")):
        assert (info.path / member / state).is_file()
    assert sio.get_untrusted_types(file=info.path / "embedding" / "embedding.skops") == []
    loaded, loaded_info = load_model("ens", codebook, folder=tmp_path)
    assert isinstance(loaded, EnsembleTagger) and loaded_info.version == info.version
    assert loaded.taggers_["embedding"].cache is None  # runtime settings are not part of a model
    loaded.set_params(cache=cache_path)
    before, after = fitted.predict_proba(units), loaded.predict_proba(units)
    for axis in codebook.axis_names:
        np.testing.assert_allclose(after[axis], before[axis], atol=1e-6)
        np.testing.assert_array_equal(after[axis] >= loaded.thresholds_[axis], before[axis] >= fitted.thresholds_[axis])
        for name in ("linear", "embedding"):
            np.testing.assert_allclose(loaded.taggers_[name].thresholds_[axis], fitted.taggers_[name].thresholds_[axis])
    # evidence through the pipeline: the same sentences, each from the tagged document
    anns = units[:6]
    docs = [Document(id=f"d{i}", text=" ".join(p.text for p in unit)) for i, unit in enumerate(anns)]
    processor = TextProcessor(codebook)
    a = list(DocumentTagger(fitted, processor).tag(docs))
    b = list(DocumentTagger(loaded, processor).tag(docs))
    assert [t.selected for t in a] == [t.selected for t in b] and [t.evidence for t in a] == [t.evidence for t in b]
    assert sum(len(t.evidence) for t in a) > 0
    for doc, tagged in zip(docs, a):
        assert all(q.rstrip("…") in text_for_tagging(doc) for quotes in tagged.evidence.values() for q in quotes)


def test_evidence_is_the_weighted_sum_of_the_members(codebook, small_units, fitted):
    units, _ = small_units
    passages = [p for u in units[:4] for p in u]
    ours = fitted.sentence_contributions(passages, "functions")
    lin = fitted.taggers_["linear"].sentence_contributions(passages, "functions")
    emb = fitted.taggers_["embedding"].sentence_contributions(passages, "functions")
    for p, c, a, b in zip(passages, ours, lin, emb):
        assert c.shape == (len(p.sentences), len(codebook.labels("functions")))
        np.testing.assert_allclose(c, (a + b) / 2, atol=1e-9)


def test_zero_shot_label_comes_from_the_embedding_member(small_seed_rows, cache_path, tmp_path):
    data = yaml.safe_load(DEFAULT_CODEBOOK.read_text(encoding="utf-8"))
    data["functions"].append({"id": "sister_city_festival",
                              "definition": "Festivals and fairs held with a sister city.",
                              "seeds": ["sister city festival", "friendship festival"]})
    path = tmp_path / "codebook.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    extended = load_codebook(path)
    anns = [Annotation(r["id"], r["text"], {a: r[a] for a in extended.axis_names}, r["title"], r["sample"])
            for r in small_seed_rows]
    units, y = annotation_units(anns, TextProcessor(extended)), label_matrix(anns, extended)
    tagger = EnsembleTagger(extended, member_params=MEMBERS_3_FOLDS, cache=cache_path).fit(units, y)
    assert tagger.zero_shot == {"functions": ["sister_city_festival"], "domains": []}
    j = extended.labels("functions").index("sister_city_festival")
    emb = tagger.taggers_["embedding"]
    passages = TextProcessor(extended).passages("Our sister city festival drew thousands to the plaza. "
                                                "The Treasury imposed sanctions on arms dealers.")
    np.testing.assert_allclose(tagger.passage_proba(passages)["functions"][:, j],
                               emb.passage_proba(passages)["functions"][:, j])
    assert tagger.thresholds_["functions"][j] == emb.thresholds_["functions"][j]
    save_model(tagger, "ens_zs", folder=tmp_path / "models")
    loaded, info = load_model("ens_zs", extended, folder=tmp_path / "models")
    assert loaded.zero_shot_labels == {"sister_city_festival"} and info.meta["zero_shot"]["functions"] == [
        "sister_city_festival"]
