"""Taggers: the acceptance test (linear beats lexicon on held-out random units), thresholds, parameters, safe
model storage, evidence on a real press release, and the F1-optimal threshold search. What every tagger keeps
(shapes, fitted state, empty input, determinism, the save/load round trip...) is in test_tagger_contract.py."""

from __future__ import annotations

import copy
import json
import struct
import subprocess
import sys

import numpy as np
import pytest
import skops.io as sio
import yaml

from nlp.annotations import heldout_split
from nlp.codebook import DEFAULT_CODEBOOK, CodebookError, load_codebook
from nlp.metrics import best_threshold, tune_thresholds
from nlp.models import ModelError, load_model, save_model
from nlp.pipeline import DocumentTagger, text_for_tagging
from nlp.schema import Document
from nlp.taggers import TAGGERS, get_tagger_class
from nlp.taggers.linear import STATE_FILE, LinearTagger
from nlp.taggers.linear_state import LEGACY_STATE_FILE
from nlp.training import evaluate_tagger


def docs_of(frame, n: int) -> list[Document]:
    return [Document(id=r.id, text=r.text, title=r.title) for r in frame.head(n).itertuples()]


@pytest.fixture(scope="module")
def split(heldout_split_indices):
    return heldout_split_indices


@pytest.fixture(scope="module")
def real_units(processor, state_department, king_county):
    docs = docs_of(state_department, 25) + docs_of(king_county, 25)
    return list(processor.process(text_for_tagging(d) for d in docs))


# ------------------------------------------------------------------------------------------------ acceptance


def test_heldout_split_is_fixed_by_document_over_both_rounds(seed_annotations, split):
    """A quarter of the documents, by a hash of their key: only units drawn at random or by cue are scored, no
    document is on both sides, every source is represented, and neither file order nor other units move it."""
    from nlp.annotations import document_key, source_of

    train_idx, test_idx = split
    assert len(seed_annotations) == 2244
    assert len(test_idx) == 464
    assert {seed_annotations[i].sample for i in test_idx} == {"random", "cue"}
    assert not set(train_idx) & set(test_idx)
    train_docs = {document_key(seed_annotations[i]) for i in train_idx}
    assert not train_docs & {document_key(seed_annotations[i]) for i in test_idx}
    dropped = set(range(len(seed_annotations))) - set(train_idx) - set(test_idx)
    assert all(seed_annotations[i].sample == "enriched" for i in dropped)  # units of held-out documents only
    per_source = {}
    for i in test_idx:
        per_source[source_of(seed_annotations[i])] = per_source.get(source_of(seed_annotations[i]), 0) + 1
    assert set(per_source) == {source_of(a) for a in seed_annotations} and min(per_source.values()) >= 25
    # fixed: reversing the file order or dropping the second round keeps every remaining document on its side
    reversed_anns = seed_annotations[::-1]
    r_train, r_test = heldout_split(reversed_anns)
    assert {reversed_anns[i].id for i in r_test} == {seed_annotations[i].id for i in test_idx}
    first = seed_annotations[:1548]
    f_train, f_test = heldout_split(first)
    assert {first[i].id for i in f_test} == {seed_annotations[i].id for i in test_idx if i < 1548}


def test_a_document_with_units_on_both_sides_stays_whole(codebook):
    """Workspace annotations of one document (several passages) all go where the document goes."""
    from nlp.annotations import Annotation, heldout_share

    units = [Annotation(f"u{k}-{j}", "text", {a: [] for a in codebook.axis_names}, sample="random",
                        meta={"doc_id": f"doc{k}"}) for k in range(200) for j in range(3)]
    train, test = heldout_split(units)
    assert len(test) % 3 == 0 and 0 < len(test) < len(units)
    for i in test:
        assert heldout_share(f"doc{i // 3}") < 0.25 and {i // 3 * 3, i // 3 * 3 + 1, i // 3 * 3 + 2} <= set(test)


def test_linear_beats_lexicon_on_heldout_random_units(codebook, seed_units, seed_labels, split, heldout_linear):
    """THE acceptance test: micro-F1 of the trained linear tagger over the seed-only lexicon, on both axes."""
    _, test_idx = split
    units = [seed_units[i] for i in test_idx]
    y = {a: v[test_idx] for a, v in seed_labels.items()}
    linear = evaluate_tagger(heldout_linear, units, y, codebook)
    lexicon = evaluate_tagger(get_tagger_class("lexicon")(codebook).fit(units, y), units, y, codebook)
    for axis in ("functions", "domains"):
        lin, lex = linear[axis]["micro"]["f1"], lexicon[axis]["micro"]["f1"]
        assert lin > lex, f"{axis}: linear micro-F1 {lin:.3f} does not beat lexicon {lex:.3f}"
        assert lin >= 0.7, f"{axis}: linear micro-F1 {lin:.3f}"
        assert linear[axis]["n_units"] == 464
        assert sum(m["support"] for m in linear[axis]["labels"].values()) == int(y[axis].sum())
    assert linear["functions"]["micro"]["f1"] - lexicon["functions"]["micro"]["f1"] > 0.1


# ------------------------------------------------------------------------------------------- thresholds, params


def test_thresholds_are_per_label_and_inside_0_1(heldout_linear, codebook, linear_model):
    for tagger in (heldout_linear, linear_model[0]):
        for axis in codebook.axis_names:
            th = np.asarray(tagger.thresholds_[axis])
            assert th.shape == (len(codebook.labels(axis)),)
            assert np.all((th > 0) & (th < 1)), (axis, th)
            assert len(np.unique(th)) > 1  # tuned per label, not one global cut
    meta = linear_model[1].meta
    assert {a: len(v) for a, v in meta["thresholds"].items()} == {"functions": 14, "domains": 6}


def test_parameters_and_their_errors(codebook):
    tagger = LinearTagger(codebook, C=2.5, ngram_max=2, min_df=3)
    params = tagger.get_params()
    assert params == {"C": 2.5, "ngram_max": 2, "min_df": 3, "max_features": 60000, "seed_weight": 1.0,
                      "cv_folds": 5, "random_state": 0, "gate": True, "gate_C": 16.0, "lead": False,
                      "scope": True, "scoped_seeds": True, "hurdle": False, "threshold_shrink": 30.0,
                      "definitions": 3.0, "threshold_bootstrap": 50, "gazetteer": None,
                      "source_balance": 0.5}
    with pytest.raises(ValueError, match="no parameter 'alpha'"):
        tagger.set_params(alpha=1.0)
    lexicon = get_tagger_class("lexicon")(codebook)
    assert lexicon.get_params() == {}
    with pytest.raises(ValueError, match="lexicon tagger has no parameter 'C'"):
        lexicon.set_params(C=1)


def test_tagger_registry_and_too_little_data(codebook, processor):
    assert {"lexicon", "linear"} <= set(TAGGERS)
    with pytest.raises(ValueError, match="unknown tagger 'bert'.*lexicon, linear"):
        get_tagger_class("bert")
    units = list(processor.process(["The Secretary condemned the attack."]))
    with pytest.raises(ValueError, match="at least 2"):
        LinearTagger(codebook).fit(units, {"functions": np.zeros((1, 14)), "domains": np.zeros((1, 6))})


def test_a_lexicon_scores_unfitted_but_needs_fit_for_its_thresholds(codebook, processor, tmp_path):
    """Nothing to learn (scikit-learn's requires_fit=False): scores need no fit; thresholds are fitted state all
    the same, set by a fit that learns nothing or by load_model."""
    from nlp.taggers import NotFittedError

    units = list(processor.process(["The city imposed sanctions and hosted a festival."]))
    lexicon = get_tagger_class("lexicon")(codebook)
    assert lexicon.predict_proba(units)["functions"].max() == 0.5
    with pytest.raises(NotFittedError, match="lexicon tagger is not fitted"):
        lexicon.predict(units)
    assert not hasattr(lexicon, "thresholds_")
    for fitted in (lexicon.fit([], {}), load_model("lexicon", codebook, folder=tmp_path)[0]):
        assert {a: th.tolist() for a, th in fitted.thresholds_.items()} == {
            a: [0.5] * len(labs) for a, labs in codebook.label_sets().items()}


# -------------------------------------------------------------------------------------------------- storage


def test_saved_model_reloads_with_identical_scores(heldout_linear, linear_model, trained_linear, codebook,
                                                   real_units):
    """The session's ``linear`` model (the full-size one) is ``heldout_linear`` written by save_model and read back
    by load_model: the same scores and thresholds, bit for bit."""
    loaded, info = linear_model
    assert info.ref == trained_linear.ref and len(info.version) == 8
    before, after = heldout_linear.predict_proba(real_units), loaded.predict_proba(real_units)
    for axis in codebook.axis_names:
        assert np.array_equal(before[axis], after[axis])
        assert np.array_equal(loaded.thresholds_[axis], heldout_linear.thresholds_[axis])


def test_model_version(small_linear, codebook, tmp_path):
    info = save_model(small_linear, "copy", training={"sha256": "abc"}, folder=tmp_path)
    _, loaded_info = load_model("copy", codebook, folder=tmp_path)
    assert loaded_info.ref == info.ref == f"copy@{info.version}"
    # the same settings and data give the same version; other data another; saving again replaces the model
    assert save_model(small_linear, "copy", training={"sha256": "abc"}, folder=tmp_path).version == info.version
    assert save_model(small_linear, "copy", training={"sha256": "abd"}, folder=tmp_path).version != info.version
    assert sorted(p.name for p in (tmp_path / "copy").iterdir()) == sorted(  # no staging or backup folder left
        {info.version, save_model(small_linear, "copy", training={"sha256": "abd"}, folder=tmp_path).version})


def test_saved_state_is_plain_safetensors_not_pickle(trained_linear, cdpd_env):
    folder = cdpd_env / "models" / "linear" / trained_linear.version
    assert trained_linear.path == folder
    # the scope features' gazetteer (plain JSON) travels with the model: see test_scope.py
    assert sorted(p.name for p in folder.iterdir()) == ["MODEL_CARD.md", STATE_FILE, "meta.json",
                                                        "scope_gazetteer.json"]
    assert not [p for p in folder.rglob("*") if p.suffix in (".pkl", ".pickle", ".joblib")]
    # safetensors: an 8-byte header length, a JSON header of numeric tensors, then their bytes; nothing else
    data = (folder / STATE_FILE).read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    assert header.pop("__metadata__")["format"] == "cdpd-linear-1"
    assert {t["dtype"] for t in header.values()} <= {"F64", "I64", "U8", "BOOL"}
    assert 8 + length + max(t["data_offsets"][1] for t in header.values()) == len(data)
    assert {"idf", "terms", "term_ends", "functions/coef", "domains/coef"} <= set(header)
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["tagger"] == "linear" and meta["name"] == "linear" and meta["version"] == trained_linear.version
    assert meta["labels"] == {"functions": load_codebook().labels("functions"),
                              "domains": load_codebook().labels("domains")}


class Untrusted:
    """Not a scikit-learn type: a model file holding one must be refused before anything is instantiated."""

    instantiated = 0

    def __init__(self):
        self.payload = "x"

    def __setstate__(self, state):
        Untrusted.instantiated += 1
        self.__dict__.update(state)


def test_models_saved_as_skops_still_load(small_units, codebook, tmp_path):
    """Models saved before the safetensors state (a skops file of the fitted objects; they had no scope gate) load
    and score the same."""
    units, y = small_units
    small_linear = LinearTagger(codebook, cv_folds=3, gate=False, scope=False, scoped_seeds=False,
                                definitions=0.0).fit(units, y)
    path = save_model(small_linear, "old", folder=tmp_path).path
    (path / STATE_FILE).unlink()
    vocabulary = small_linear.vectorizer_.vocabulary_
    sio.dump({"terms": np.array(sorted(vocabulary, key=vocabulary.get)), "idf": small_linear.vectorizer_.idf_,
              "classifiers": small_linear.classifiers_}, path / LEGACY_STATE_FILE)
    loaded, _ = load_model("old", codebook, folder=tmp_path)
    before, after = small_linear.predict_proba(units), loaded.predict_proba(units)
    assert all(np.array_equal(before[axis], after[axis]) for axis in codebook.axis_names)


def test_reading_a_model_imports_no_scikit_learn(trained_linear):
    """A saved linear model is read and tags without scikit-learn or skops (seconds of imports; linear_state.py)."""
    code = """
import sys
from nlp.codebook import load_codebook
from nlp.models import load_model
from nlp.pipeline import DocumentTagger
from nlp.schema import Document
from nlp.text import TextProcessor

tagger, _ = load_model("linear", load_codebook())
doc = Document(id="d", text="The mayor met the ambassador to discuss trade and culture.")
[tagged] = DocumentTagger(tagger, TextProcessor(tagger.codebook)).tag([doc])
assert not [m for m in sys.modules if m.split(".")[0] in ("sklearn", "skops")], "scikit-learn imported"
"""
    subprocess.run([sys.executable, "-c", code], check=True)


def test_tampered_state_with_untrusted_type_is_refused(small_linear, codebook, tmp_path):
    path = save_model(small_linear, "tampered", folder=tmp_path).path
    (path / STATE_FILE).unlink()  # a model saved before the safetensors state: read through skops
    state = path / LEGACY_STATE_FILE
    sio.dump({"vectorizer": Untrusted(), "classifiers": small_linear.classifiers_}, state)
    assert any("Untrusted" in t for t in sio.get_untrusted_types(file=state))
    with pytest.raises(ModelError) as info:
        load_model("tampered", codebook, folder=tmp_path)
    assert "untrusted" in str(info.value) and "Untrusted" in str(info.value) and "tampered" in str(info.value)
    assert Untrusted.instantiated == 0


def test_missing_model_and_missing_state(codebook, tmp_path, small_linear):
    with pytest.raises(ModelError, match="no model named 'absent'"):
        load_model("absent", codebook, folder=tmp_path)
    (save_model(small_linear, "nostate", folder=tmp_path).path / STATE_FILE).unlink()
    with pytest.raises(ModelError, match="nostate"):
        load_model("nostate", codebook, folder=tmp_path)
    (tmp_path / "bad" / "v1").mkdir(parents=True)
    (tmp_path / "bad" / "v1" / "meta.json").write_text("{not json")
    with pytest.raises(ModelError, match="unreadable model metadata"):
        load_model("bad", codebook, folder=tmp_path)


def test_lexicon_needs_no_files(codebook, tmp_path):
    tagger, info = load_model("lexicon", codebook, folder=tmp_path)
    assert info.ref == f"lexicon@{codebook.fingerprint()[:8]}" and tagger.name == "lexicon"
    assert list(tmp_path.iterdir()) == []


def test_corrupt_state_file_gives_model_error(small_linear, codebook, tmp_path):
    path = save_model(small_linear, "corrupt", folder=tmp_path).path
    (path / STATE_FILE).write_bytes(b"this is not a zip archive" * 4)
    with pytest.raises(ModelError, match="corrupt"):
        load_model("corrupt", codebook, folder=tmp_path)


def test_incomplete_meta_gives_model_error(small_linear, codebook, tmp_path):
    meta_path = save_model(small_linear, "partial", folder=tmp_path).path / "meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["thresholds"]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="partial"):
        load_model("partial", codebook, folder=tmp_path)


def test_model_with_a_label_never_seen_in_training_can_be_loaded(codebook, small_units, tmp_path):
    units, y = small_units
    j = codebook.labels("functions").index("listening")
    y = {a: v.copy() for a, v in y.items()}
    y["functions"][:, j] = 0  # nobody listened: a constant estimator for that label
    tagger = LinearTagger(codebook, cv_folds=3).fit(units, y)
    assert tagger.predict_proba(units)["functions"][:, j].max() == 0.0
    save_model(tagger, "rare", folder=tmp_path)
    loaded, _ = load_model("rare", codebook, folder=tmp_path)
    assert np.array_equal(loaded.predict_proba(units)["functions"], tagger.predict_proba(units)["functions"])


def test_linear_scores_equal_sklearns_one_vs_rest_with_constant_labels(codebook, small_units):
    """The tagger scores a batch with one product over the stacked weights; it must give what sklearn gives,
    for a label never seen (constant 0) and one always seen (constant 1) too."""
    units, y = small_units
    functions = codebook.labels("functions")
    y = {a: v.copy() for a, v in y.items()}
    y["functions"][:, functions.index("listening")] = 0
    y["functions"][:, functions.index("advocacy")] = 1
    tagger = LinearTagger(codebook, cv_folds=3, gate=False, definitions=0.0).fit(units, y)  # test_scope.py: folded
    passages = [p for unit in units for p in unit]
    ours = tagger.passage_proba(passages)
    X = tagger._passage_features(passages)
    for axis, clf in tagger.classifiers_.items():
        assert np.allclose(ours[axis], clf.predict_proba(X), rtol=0, atol=1e-12)
    assert set(ours["functions"][:, functions.index("listening")]) == {0.0}
    assert set(ours["functions"][:, functions.index("advocacy")]) == {1.0}


def test_scope_gate_multiplies_each_label_by_p_any_label(codebook, small_units):
    """With the gate, a label's score is its own classifier's probability times the axis gate's: a logistic
    regression of "has at least one label on this axis" on the same features."""
    from scipy.special import expit
    from sklearn.linear_model import LogisticRegression

    units, y = small_units
    gated = LinearTagger(codebook, cv_folds=3, definitions=0.0).fit(units, y)
    plain = LinearTagger(codebook, cv_folds=3, gate=False, definitions=0.0).fit(units, y)
    passages = [p for unit in units for p in unit]
    X = gated._passage_features(passages)
    ours, base = gated.passage_proba(passages), plain.passage_proba(passages)
    for axis in codebook.axis_names:
        anything = (y[axis].sum(1) > 0).astype(int)
        Xu = gated._features(gated.vectorizer_, *gated._unit_parts(units))
        ref = LogisticRegression(C=gated.gate_C, class_weight="balanced", solver="liblinear", dual=True,
                                 max_iter=1000, random_state=0).fit(Xu, anything)
        gate = ref.predict_proba(X)[:, 1:]
        assert np.allclose(ours[axis], base[axis] * gate, rtol=0, atol=1e-9)
        assert gated.get_params()["gate"] is True and axis in gated.gates_


def test_lead_features_mark_the_first_sentence_and_agree_with_whole_passages(codebook, small_units):
    """``lead=True`` adds the document's first sentence (its title) as marked lemmas; the fast per-sentence feature
    path gives what transforming whole passages gives."""
    from nlp.taggers.linear import LEAD_MARK

    units, y = small_units
    tagger = LinearTagger(codebook, cv_folds=3, lead=True, scope=False, scoped_seeds=False).fit(units, y)
    assert any(term.startswith(LEAD_MARK) for term in tagger.vectorizer_.vocabulary_)
    first = units[0][0]
    assert tagger._sentence_tokens(first)[0] == first.sentences[0].tokens + [
        LEAD_MARK + t for t in first.sentences[0].tokens]
    passages = [p for unit in units for p in unit]
    fast = tagger._passage_features(passages).toarray()
    whole = tagger._features(tagger.vectorizer_, [tagger._passage_tokens(p) for p in passages],
                             [p.seed_counts() for p in passages]).toarray()
    assert np.allclose(fast, whole, atol=1e-6)
    lead_terms = {LEAD_MARK + t for unit in units for t in unit[0].sentences[0].tokens if t.isalpha()}
    assert lead_terms & set(tagger.vectorizer_.vocabulary_)
    assert not lead_terms & set(LinearTagger(codebook, cv_folds=3).fit(units, y).vectorizer_.vocabulary_)


def test_reordered_codebook_is_refused_or_mapped(linear_model, processor, state_department, tmp_path):
    tagger, info = linear_model
    data = yaml.safe_load(DEFAULT_CODEBOOK.read_text(encoding="utf-8"))
    reordered = copy.deepcopy(data)
    reordered["functions"] = list(reversed(reordered["functions"]))
    path = tmp_path / "reordered.yaml"
    path.write_text(yaml.safe_dump(reordered, sort_keys=False), encoding="utf-8")
    cb2 = load_codebook(path)
    try:
        other, _ = load_model("linear", cb2)
    except (CodebookError, ModelError):
        return  # refusing is fine
    from nlp.text import TextProcessor

    doc = docs_of(state_department[state_department.title.str.contains("Sanction")], 1)[0]
    units = list(processor.process([text_for_tagging(doc)]))
    units2 = list(TextProcessor(cb2).process([text_for_tagging(doc)]))
    mine = dict(zip(tagger.labels["functions"], tagger.predict_proba(units)["functions"][0]))
    theirs = dict(zip(other.labels["functions"], other.predict_proba(units2)["functions"][0]))
    for label in mine:
        assert mine[label] == pytest.approx(theirs[label]), label


# --------------------------------------------------------------------------------------------- empty input


# ----------------------------------------------------------------------------- surface forms and the scope rule


def _function_scores(tagger, processor, texts):
    docs = [Document(id=str(k), text=t) for k, t in enumerate(texts)]
    return [next(DocumentTagger(tagger, processor).tag([d])) for d in docs]


def test_hyphenated_and_spaced_seed_phrases_score_alike(heldout_linear, processor, codebook):
    """"sister-city" and "sister city" are one phrase to a reader: the seed matcher sees both (a seed's
    hyphenation variants are patterns too), the bag of lemmas drops the hyphen, so the scores are the same."""
    spaced, hyphenated = _function_scores(heldout_linear, processor, [
        "Mayor signs renewed sister city agreement with Kyoto. The two mayors signed a renewed sister city "
        "agreement at City Hall today.",
        "Mayor signs renewed sister-city agreement with Kyoto. The two mayors signed a renewed sister-city "
        "agreement at City Hall today."])
    for axis in codebook.axis_names:
        assert np.allclose(spaced.scores[axis], hyphenated.scores[axis], rtol=0, atol=1e-12)
    twinning = [lab for lab in codebook.labels("functions") if "sister city" in codebook.label(lab).seeds]
    assert twinning and set(twinning) <= set(spaced.selected["functions"])
    seeds = [dict(s.seeds) for p in processor.passages("a renewed sister-city agreement") for s in p.sentences]
    assert seeds == [{twinning[0]: 1}]
    # case, typographic apostrophes and quotes: one reading too
    variants = _function_scores(heldout_linear, processor, [
        "The City's mayor signed the city's renewed sister city agreement with Kyoto.",
        "THE CITY’S MAYOR SIGNED THE CITY’S RENEWED “SISTER-CITY” AGREEMENT WITH KYOTO."])
    for axis in codebook.axis_names:
        assert np.allclose(variants[0].scores[axis], variants[1].scores[axis], rtol=0, atol=1e-12)


def test_network_membership_is_not_twinning_and_domestic_notices_get_no_function(heldout_linear, processor,
                                                                                 codebook):
    """The codebook's scope rule: functions need a foreign counterpart, audience or arena; a city network is
    collaboration, not a city-to-city partnership."""
    twinning = [lab for lab in codebook.labels("functions") if "sister city" in codebook.label(lab).seeds]
    c40, egg, logs = _function_scores(heldout_linear, processor, [
        "The City has uploaded its C40 membership documents. As a member of C40 Cities, the city reports its "
        "emissions inventory every year.",
        "The White House Easter Egg Roll will take place on the South Lawn on Monday. Tickets are distributed by "
        "an online lottery; families with children 13 and under may apply.",
        "The White House today released its visitor logs for the month of September, in keeping with its "
        "commitment to transparency."])
    assert not set(twinning) & set(c40.selected["functions"])
    assert egg.selected["functions"] == [] and logs.selected["functions"] == []


def test_blank_documents_have_no_passages_and_no_tags(processor, heldout_linear):
    assert processor.passages("") == [] and processor.passages("  \n\n ") == []
    tagged = list(DocumentTagger(heldout_linear, processor).tag([Document(id="empty", text=""),
                                                                 Document(id="blank", text=" \n ")]))
    for t in tagged:
        assert t.passages == [] and t.evidence == {}
        assert t.selected == {"functions": [], "domains": []}
        assert all(not s.any() for s in t.scores.values())


def test_a_document_without_passages_gets_no_label_even_at_threshold_zero(small_linear, processor):
    """Thresholds tuned on little data can be 0 (a rare label's only positive scored 0 out of fold; without
    ``threshold_shrink``): a document without a word still carries no label, and the pipeline has no passage to
    quote."""
    tagger = copy.copy(small_linear)
    tagger.thresholds_ = {axis: np.where(np.arange(len(th)) == 0, 0.0, th)
                          for axis, th in small_linear.thresholds_.items()}
    assert any((th == 0).any() for th in tagger.thresholds_.values())  # so it is tested
    assert not any(p.any() for p in tagger.predict([[], []]).values())
    [tagged] = DocumentTagger(tagger, processor).tag([Document(id="empty", text="")])
    assert tagged.selected == {"functions": [], "domains": []} and tagged.evidence == {}


def test_empty_document_among_others_keeps_scores_aligned(heldout_linear, processor, state_department):
    docs = docs_of(state_department, 3)
    runner = DocumentTagger(heldout_linear, processor)
    alone = {t.doc.id: t.scores for t in runner.tag(docs)}
    mixed = list(runner.tag([docs[0], Document(id="empty", text=""), docs[1], docs[2]], batch_size=4))
    assert [t.doc.id for t in mixed] == [docs[0].id, "empty", docs[1].id, docs[2].id]
    assert not mixed[1].scores["functions"].any()
    for t in mixed[:1] + mixed[2:]:
        for axis in ("functions", "domains"):
            np.testing.assert_allclose(t.scores[axis], alone[t.doc.id][axis], rtol=1e-6, atol=1e-9)


# ------------------------------------------------------------------------------------------------- lexicon


def test_lexicon_score_is_one_minus_half_to_the_hits(codebook, processor):
    lexicon = get_tagger_class("lexicon")(codebook).fit([], {})  # learns nothing: its fixed thresholds
    text = "Sanctions were imposed. More sanctions and an embargo followed. The city hosted a festival."
    proba = lexicon.predict_proba(list(processor.process([text])))
    functions = dict(zip(codebook.labels("functions"), proba["functions"][0]))
    assert functions["coercive_measures"] == pytest.approx(1 - 0.5 ** 3)
    assert functions["cultural_diplomacy"] == pytest.approx(0.5)
    assert functions["representation_protocol"] == pytest.approx(0.5)  # "hosted"
    assert functions["twinning"] == 0.0
    tagged = next(DocumentTagger(lexicon, processor).tag([Document(id="x", text=text)]))
    assert "coercive_measures" in tagged.selected["functions"]
    assert tagged.evidence["coercive_measures"] == ["More sanctions and an embargo followed.",
                                                    "Sanctions were imposed."]


# ------------------------------------------------------------------------------------------------- evidence


def test_sanctions_press_release_evidence(linear_model, processor, state_department):
    tagger, info = linear_model
    row = state_department[state_department.title.str.contains("Sanction")].iloc[0]
    assert row.id == "state-d7ac595c1ec0"
    doc = Document(id=row.id, text=row.text, title=row.title, issuer_type="national")
    full = row.title + "\n\n" + row.text
    assert text_for_tagging(doc) == full
    tagged = next(DocumentTagger(tagger, processor).tag([doc]))
    assert "coercive_measures" in tagged.selected["functions"]
    evidence = tagged.evidence["coercive_measures"]
    assert 1 <= len(evidence) <= 3
    for sentence in evidence:
        assert sentence in full, sentence
    assert any("sanction" in s.lower() for s in evidence)
    # every selected label has evidence, and only selected labels do
    selected = {lab for labs in tagged.selected.values() for lab in labs}
    assert set(tagged.evidence) == selected
    record = tagged.to_record(tagger.labels, info.ref)
    assert record["scores"]["functions"]["coercive_measures"] >= tagger.thresholds_["functions"][13]


# ------------------------------------------------------------------------------------------------- metrics


@pytest.mark.parametrize("y, scores, expected", [
    ([1, 1, 0, 0], [0.9, 0.8, 0.3, 0.1], 0.55),  # perfect separation: the midpoint of the gap
    ([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1], 0.4),  # F1 2/3, 1/2, 4/5, 2/3: cut below the third
    ([1, 0, 0, 1], [0.9, 0.8, 0.7, 0.6], 0.3),  # F1 tie (2/3) between 0.85 and 0.3: the one nearer 0.5
    ([1, 0, 0], [0.9, 0.9, 0.1], 0.5),  # cannot cut between equal scores
    ([0, 1, 0, 0], [0.2, 0.7, 0.95, 0.1], 0.45),  # unsorted input
])
def test_best_threshold_is_f1_optimal(y, scores, expected):
    assert best_threshold(np.array(y), np.array(scores)) == pytest.approx(expected)


def test_best_threshold_defaults_and_brute_force():
    assert best_threshold(np.zeros(4), np.array([0.1, 0.2, 0.3, 0.4])) == 0.5
    assert best_threshold(np.zeros(4), np.array([0.1, 0.2, 0.3, 0.4]), default=0.3) == 0.3
    rng = np.random.default_rng(0)
    for _ in range(30):
        y = rng.random(25) < 0.3
        y[0] = True
        s = np.round(rng.random(25), 2) + 0.01
        cut = best_threshold(y, s)

        def f1(t):
            pred = s >= t
            tp = (pred & y).sum()
            return 2 * tp / (pred.sum() + y.sum())

        assert f1(cut) == pytest.approx(max(f1(t) for t in np.r_[s, 0.0]))
        assert not np.any(np.isclose(s, cut))  # the cut never sits on a score
    Y = np.array([[1, 0], [0, 0], [1, 0]])
    S = np.array([[0.8, 0.1], [0.3, 0.9], [0.6, 0.2]])
    assert tune_thresholds(Y, S).tolist() == pytest.approx([0.45, 0.5])


def test_bagged_thresholds_are_medians_of_resampled_optima_and_move_less():
    """``bootstrap=B``: per label, the median of the F1-optimal cuts of B resamples of the units, the same for the
    same seed; on a flat F1 curve it moves less than the single argmax when a few scores change."""
    rng = np.random.default_rng(1)
    y = (rng.random((400, 3)) < [0.3, 0.1, 0.0]).astype(int)
    s = np.clip(0.35 * y + rng.random((400, 3)) * 0.65, 0, 1)
    bagged = tune_thresholds(y, s, bootstrap=25, seed=7)
    assert np.array_equal(bagged, tune_thresholds(y, s, bootstrap=25, seed=7))
    assert bagged[2] == 0.5  # no positives: the default, as without bagging
    draws = np.random.default_rng(7)
    picks = [draws.integers(0, 400, 400) for _ in range(25)]
    assert bagged[0] == pytest.approx(np.median([best_threshold(y[d, 0], s[d, 0]) for d in picks]))
    assert np.array_equal(tune_thresholds(y, s, bootstrap=0), tune_thresholds(y, s))
    # jitter a tenth of the scores: the bagged cut moves less, summed over 20 jitters, than the argmax
    moved = {0: 0.0, 25: 0.0}
    for k in range(20):
        t = s.copy()
        rows = np.random.default_rng(k).choice(400, 40, replace=False)
        t[rows] = np.clip(t[rows] + np.random.default_rng(100 + k).normal(0, 0.05, (40, 3)), 0, 1)
        for b in moved:
            moved[b] += abs(tune_thresholds(y, t, bootstrap=b, seed=7)[0] - tune_thresholds(y, s, bootstrap=b,
                                                                                           seed=7)[0])
    assert moved[25] < moved[0]


def test_source_weights_even_out_the_sources():
    from nlp.taggers.shared import source_weights

    sources = ["state"] * 6 + ["nyc"] * 2
    assert np.allclose(source_weights(sources, 0.0), 1.0)
    even = source_weights(sources, 1.0)
    assert even[:6].sum() == pytest.approx(even[6:].sum())  # every source the same total weight
    half = source_weights(sources, 0.5)
    assert half.mean() == pytest.approx(1.0)
    assert half[6] / half[0] == pytest.approx(np.sqrt(3.0))  # (6 / 2) ** 0.5
    assert source_weights([], 0.5).shape == (0,)


def test_linear_fit_weighs_units_by_source_as_sklearn_does(codebook, small_units, small_seed_rows):
    """``fit(units, y, sources=...)``: each classifier is scikit-learn's logistic regression with the units
    weighted by :func:`source_weights`; ``source_balance=0`` (or no sources) is the unweighted fit; a sources list
    of the wrong length is refused."""
    from sklearn.linear_model import LogisticRegression

    from nlp.errors import DataError
    from nlp.taggers.shared import source_weights

    units, y = small_units
    sources = ["round1" if k % 3 else "city" for k in range(len(units))]
    weighted = LinearTagger(codebook, cv_folds=3, gate=False, scope=False, scoped_seeds=False,
                            definitions=0.0).fit(units, y, sources=sources)
    X = weighted._features(weighted.vectorizer_, *weighted._unit_parts(units))
    j = int(np.argmax(y["domains"].sum(0)))
    ref = LogisticRegression(C=16.0, class_weight="balanced", solver="liblinear", dual=True, max_iter=1000,
                             random_state=0).fit(X, y["domains"][:, j], sample_weight=source_weights(sources, 0.5))
    assert np.allclose(weighted.classifiers_["domains"].estimators_[j].coef_, ref.coef_)
    plain = LinearTagger(codebook, cv_folds=3).fit(units, y)
    off = LinearTagger(codebook, cv_folds=3, source_balance=0.0).fit(units, y, sources=sources)
    for axis, scores in plain.predict_proba(units).items():
        assert np.array_equal(off.predict_proba(units)[axis], scores)
    with pytest.raises(DataError, match="3 names for"):
        LinearTagger(codebook).fit(units, y, sources=sources[:3])


def test_fit_tagger_passes_sources_to_the_taggers_that_take_them(codebook, small_units):
    from nlp.training import fit_tagger

    units, y = small_units
    sources = ["a" if k % 2 else "b" for k in range(len(units))]
    sources[:5] = ["c"] * 5
    fitted = fit_tagger(LinearTagger, codebook, {"cv_folds": 3}, units, y, sources=sources)
    direct = LinearTagger(codebook, cv_folds=3).fit(units, y, sources=sources)
    for axis, scores in direct.predict_proba(units).items():
        assert np.array_equal(fitted.predict_proba(units)[axis], scores)
    lexicon = fit_tagger(get_tagger_class("lexicon"), codebook, {}, units, y, sources=sources)
    assert set(lexicon.thresholds_) == set(codebook.axis_names)
