"""Scope features of the linear tier (nlp/taggers/scope.py): the gazetteer is data, loads, and matches case,
hyphen and plural variants alike; its pseudo-tokens are features like any other and travel with a saved model;
and, trained on the shipped annotations, the codebook's scope rule shows: cooperation among domestic
stakeholders gets no collaboration tag, a sister-city agreement with a foreign city gets twinning."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nlp.models import load_model, save_model
from nlp.pipeline import DocumentTagger
from nlp.schema import Document
from nlp.taggers.linear import LinearTagger
from nlp.taggers.scope import DEFAULT_GAZETTEER, GAZETTEER_FILE, HOME_KINDS, SCOPE_MARK, Gazetteer, shipped_gazetteer

SCOPED = dict(scope=True, scoped_seeds=True, hurdle=["functions"], threshold_shrink=30.0)


def _sentence_marks(processor, gazetteer, text, seeds=True):
    return [gazetteer.sentence_marks(s.tokens, s.seeds if seeds else None)
            for p in processor.passages(text) for s in p.sentences]


def test_shipped_gazetteer_is_data_with_kinds_and_no_labels(codebook):
    gazetteer = shipped_gazetteer()
    assert DEFAULT_GAZETTEER.exists() and DEFAULT_GAZETTEER.suffix == ".yaml"
    assert {"country", "world_city", "intl_org", "diplomatic", "us", "domestic"} <= set(gazetteer.kinds)
    assert HOME_KINDS <= set(gazetteer.kinds)
    labels = {lab for axis in codebook.axis_names for lab in codebook.labels(axis)}
    assert not labels & set(gazetteer.kinds)  # kinds of counterpart, never labels
    # pronouns and common words that share a spelling with a name are left out
    for word in ("us", "who", "turkey"):
        assert gazetteer.match([word]) == []


@pytest.mark.parametrize("variants", [
    ["The Embassy of France in Seoul", "the embassy of FRANCE in seoul", "THE EMBASSY OF FRANCE IN SEOUL"],
    ["a cross-border project with the EU", "a cross border project with the E.U."],
    ["the Sister Cities programme of Côte d'Ivoire", "the sister-city programme of Côte d’Ivoire"],
    ["our embassies and consulates", "our embassy and consulate"],
])
def test_gazetteer_matches_case_hyphen_apostrophe_and_plural_variants(processor, variants):
    gazetteer = shipped_gazetteer()
    marks = [_sentence_marks(processor, gazetteer, text, seeds=False) for text in variants]
    assert marks[0] and marks[0][0]
    assert all(m == marks[0] for m in marks)


def test_longest_phrase_wins_and_domestic_only_sentences_are_marked(processor):
    gazetteer = shipped_gazetteer()
    assert gazetteer.match(["new", "mexico"]) == ["domestic"]  # not the country Mexico
    assert gazetteer.match(["mexico"]) == ["country"]
    assert gazetteer.match(["unite", "nation", "security", "council"]) == ["intl_org", "intl_org"]
    domestic, abroad = _sentence_marks(processor, gazetteer,
                                       "Cooperation between local, regional and national stakeholders.\n"
                                       "Cooperation with the city of Lyon and C40 on heat plans.")
    assert SCOPE_MARK + "domestic_only" in domestic
    assert not any(m.startswith(SCOPE_MARK + "in_scope:") for m in domestic)
    assert {SCOPE_MARK + "world_city", SCOPE_MARK + "network"} <= set(abroad)
    assert any(m.startswith(SCOPE_MARK + "in_scope:") for m in abroad)


def test_gazetteer_round_trips_through_json_without_the_pipeline(tmp_path):
    gazetteer = Gazetteer({"country": ["France", "South Korea"], "domestic": ["city council"]})
    gazetteer.write(tmp_path / "g.json")
    data = json.loads((tmp_path / "g.json").read_text(encoding="utf-8"))
    assert ["country", ["south", "korea"]] in data["entries"]
    again = Gazetteer.read(tmp_path / "g.json")
    assert again.kinds == gazetteer.kinds and again.entries == gazetteer.entries
    assert again.match(["south", "korea", "and", "france", "city", "council"]) == ["country", "country", "domestic"]
    (tmp_path / "bad.json").write_text('{"kinds": ["x"]}', encoding="utf-8")
    with pytest.raises(ValueError, match="kinds"):
        Gazetteer.read(tmp_path / "bad.json")


def test_scope_tokens_are_features_on_both_paths_and_saved_with_the_model(codebook, small_units, tmp_path):
    """The fast per-sentence feature path gives what transforming whole passages gives; the model folder keeps
    the gazetteer it was fitted with, and a reloaded model scores the same."""
    units, y = small_units
    tagger = LinearTagger(codebook, cv_folds=3, **SCOPED).fit(units, y)
    assert any(term.startswith(SCOPE_MARK) for term in tagger.vectorizer_.vocabulary_)
    passages = [p for unit in units for p in unit]
    fast = tagger._passage_features(passages).toarray()
    whole = tagger._features(tagger.vectorizer_, [tagger._passage_tokens(p) for p in passages],
                             [p.seed_counts() for p in passages]).toarray()
    assert np.allclose(fast, whole, atol=1e-6)
    info = save_model(tagger, "scoped", folder=tmp_path)
    assert (info.path / GAZETTEER_FILE).exists()
    loaded, _ = load_model("scoped", codebook, folder=tmp_path)
    assert loaded.get_params()["hurdle"] == ["functions"]
    for axis, scores in tagger.predict_proba(units).items():
        assert np.array_equal(loaded.predict_proba(units)[axis], scores)
    (info.path / GAZETTEER_FILE).unlink()
    with pytest.raises(Exception, match=GAZETTEER_FILE):
        load_model("scoped", codebook, folder=tmp_path)


def test_hurdle_fits_labels_on_in_scope_units_and_thresholds_shrink_to_half(codebook, small_units):
    units, y = small_units
    plain = LinearTagger(codebook, cv_folds=3, definitions=0.0).fit(units, y)
    shrunk = LinearTagger(codebook, cv_folds=3, threshold_shrink=1e9).fit(units, y)
    for axis in codebook.axis_names:
        assert np.allclose(shrunk.thresholds_[axis], 0.5)
        assert not np.allclose(plain.thresholds_[axis], 0.5)
    hurdle = LinearTagger(codebook, cv_folds=3, hurdle=["functions"], definitions=0.0).fit(units, y)
    inside = y["functions"].sum(1) > 0
    X = hurdle._features(hurdle.vectorizer_, *hurdle._unit_parts(units))
    ref = LinearTagger(codebook, cv_folds=3)._new_classifier().fit(X[inside], y["functions"][inside])
    assert all(np.allclose(a.coef_, b.coef_) for a, b in zip(hurdle.classifiers_["functions"].estimators_,
                                                              ref.estimators_) if hasattr(a, "coef_"))
    # domains are not a hurdle axis here: fitted on every unit, as without the option
    assert all(np.allclose(a.coef_, b.coef_) for a, b in zip(hurdle.classifiers_["domains"].estimators_,
                                                              plain.classifiers_["domains"].estimators_)
               if hasattr(a, "coef_"))


def test_city_networks_are_a_kind_apart_from_the_eu(processor):
    """Taking part in a city network or an EU city programme is the codebook's cooperation through networks; the
    EU's targets, cited by nearly every European plan, are not: the two get different kinds."""
    gazetteer = shipped_gazetteer()
    joins, targets = _sentence_marks(processor, gazetteer,
                                     "The city joined NetZeroCities, the Covenant of Mayors and the EU Cities "
                                     "Mission.\nOur targets follow the European Union and the Paris Agreement.",
                                     seeds=False)
    assert joins.count(SCOPE_MARK + "network") == 3 and SCOPE_MARK + "intl_org" not in joins
    assert SCOPE_MARK + "network" not in targets and SCOPE_MARK + "intl_org" in targets
    for name in ("C40", "ICLEI", "Eurocities", "Mayors for Peace", "Climate-Neutral and Smart Cities"):
        assert "network" in gazetteer.match([t.lower() for s in processor.passages(name)[0].sentences
                                             for t in s.tokens]), name


def test_a_gazetteer_of_ones_own_makes_a_european_country_home(codebook, small_units, processor, tmp_path):
    """``gazetteer``: a researcher of German cities lists Germany as domestic; the model is fitted with that file,
    keeps it (a saved model scores the same when the file is gone), and a missing or malformed file is a one-line
    configuration error before any fitting."""
    from nlp.errors import ConfigError
    from nlp.training import tagger_settings

    own = tmp_path / "german_cities.yaml"
    own.write_text("kinds:\n  country: [france, poland]\n  domestic: [germany, german, bavaria, bundestag]\n",
                   encoding="utf-8")
    units, y = small_units
    tagger = LinearTagger(codebook, cv_folds=3, gazetteer=str(own)).fit(units, y)
    assert tagger.get_params()["gazetteer"] == str(own)
    sentence = [t for s in processor.passages("Cooperation with Bavaria and the Bundestag.")[0].sentences
                for t in s.tokens]
    assert tagger.scope_gazetteer_.match(sentence) == ["domestic", "domestic"]
    assert shipped_gazetteer().match(sentence) != ["domestic", "domestic"]
    info = save_model(tagger, "german", folder=tmp_path / "models")
    own.unlink()
    loaded, _ = load_model("german", codebook, folder=tmp_path / "models")
    for axis, scores in tagger.predict_proba(units).items():
        assert np.array_equal(loaded.predict_proba(units)[axis], scores)
    assert (info.path / GAZETTEER_FILE).exists()
    with pytest.raises(ConfigError, match="no such file"):
        tagger_settings(LinearTagger, {"gazetteer": str(own)})
    bad = tmp_path / "bad.yaml"
    bad.write_text("kinds: [unclosed", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        tagger_settings(LinearTagger, {"gazetteer": str(bad)})
    bad.write_text("countries: [france]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="needs 'kinds'"):
        tagger_settings(LinearTagger, {"gazetteer": str(bad)})


@pytest.fixture(scope="module")
def scoped_linear(codebook, seed_units, seed_labels, heldout_split_indices):
    """The linear tier with scope features, fitted as ``heldout_linear`` is (~20 s)."""
    train_idx, _ = heldout_split_indices
    return LinearTagger(codebook, **SCOPED).fit([seed_units[i] for i in train_idx],
                                                {a: v[train_idx] for a, v in seed_labels.items()})


def _selected(tagger, processor, texts):
    docs = [Document(id=str(k), text=t) for k, t in enumerate(texts)]
    return [next(DocumentTagger(tagger, processor).tag([d])).selected["functions"] for d in docs]


def test_domestic_cooperation_gets_no_function_and_a_foreign_sister_city_gets_twinning(scoped_linear, processor,
                                                                                      codebook):
    functions = codebook.labels("functions")
    twinning = [lab for lab in functions if "sister city" in codebook.label(lab).seeds]
    collaboration = [lab for lab in functions if "C40" in codebook.label(lab).seeds]
    domestic, sister = _selected(scoped_linear, processor, [
        "The plan was prepared in close cooperation between local, regional and national stakeholders. The city "
        "will work in partnership with residents, businesses and the county to cut emissions.",
        "Mayor signs a renewed sister-city agreement with the mayor of Kyoto, Japan. The two cities will "
        "exchange delegations of students and urban planners next spring."])
    assert domestic == []
    assert not set(collaboration) & set(domestic)
    assert set(twinning) <= set(sister)


def test_a_model_saved_before_scope_features_loads_as_one_without_them(codebook, small_units, tmp_path):
    """Its meta.json names no ``scope`` (the class default now says True) and its folder has no gazetteer: it is
    read as the model it is, and scores as before."""
    units, y = small_units
    old = LinearTagger(codebook, cv_folds=3, scope=False, scoped_seeds=False).fit(units, y)
    info = save_model(old, "old", folder=tmp_path)
    meta = json.loads((info.path / "meta.json").read_text(encoding="utf-8"))
    for key in ("scope", "scoped_seeds", "hurdle", "threshold_shrink"):
        del meta["params"][key]
    (info.path / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    loaded, _ = load_model("old", codebook, folder=tmp_path)
    assert loaded.scope is False and loaded.scoped_seeds is False
    for axis, scores in old.predict_proba(units).items():
        assert np.array_equal(loaded.predict_proba(units)[axis], scores)


def test_definition_features_fold_into_the_word_weights(codebook, small_units, tmp_path):
    """``definitions``: per label, the similarity of the unit to the label's codebook text, a feature while
    fitting; linear in the TF-IDF columns, so its weight folds into the words'. Scores from the folded weights are
    the fitted classifiers' (times the gate's) on the widened features, and they survive a save and load."""
    from nlp.taggers.shared import sigmoid

    units, y = small_units
    tagger = LinearTagger(codebook, cv_folds=3, definitions=3.0).fit(units, y)
    passages = [p for unit in units for p in unit]
    D = tagger._definition_matrix(tagger.vectorizer_)
    assert D.shape == (sum(len(v) for v in tagger.labels.values()), len(tagger.vectorizer_.vocabulary_))
    wide = tagger._features(tagger.vectorizer_, [tagger._passage_tokens(p) for p in passages],
                            [p.seed_counts() for p in passages], D)
    ours = tagger.passage_proba(passages)
    for axis, clf in tagger.classifiers_.items():
        gate = LinearTagger(codebook, cv_folds=3, definitions=3.0)._fit_gate(
            tagger._features(tagger.vectorizer_, *tagger._unit_parts(units), D), y[axis])
        expected = clf.predict_proba(wide) * sigmoid(np.asarray(wide @ gate[0]).reshape(-1, 1) + gate[1])
        assert np.allclose(ours[axis], expected, rtol=0, atol=1e-6)  # TF-IDF is float32
    save_model(tagger, "defs", folder=tmp_path)
    loaded, _ = load_model("defs", codebook, folder=tmp_path)
    for axis, scores in tagger.predict_proba(units).items():
        assert np.allclose(loaded.predict_proba(units)[axis], scores, rtol=0, atol=1e-12)
