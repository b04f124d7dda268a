"""The contract every tagger keeps, as checks in the manner of scikit-learn's ``utils/estimator_checks.py``.

:func:`check_tagger` runs every check on one tagger class, given a factory of unfitted taggers and a little real
training data; :data:`CHECKS` lists the checks for a test to parametrise over (``tests/test_tagger_contract.py``
runs them on every registered tagger, so a new tier is held to the same contract the day it is registered).

What the contract says:

* ``fit(units, y)`` returns the tagger, leaves ``y`` and the tagger's parameters as they were, and is
  deterministic: two fits with the same parameters (seeds included) give the same scores and thresholds.
* A tagger whose ``fit`` takes ``sources=`` (``fit_takes_sources``: one source name per unit, for weighting) fits
  with them deterministically, and when every unit has the same source it fits as without them.
* Fitted state (``thresholds_``: per axis, one threshold in [0, 1] per label) exists only after ``fit`` or
  ``nlp.models.load_model``. A trainable tagger used before either raises :class:`NotFittedError`, a
  ``RuntimeError`` saying "not fitted". An untrainable one (the lexicon: ``trainable = False``, scikit-learn's
  ``requires_fit=False``) scores without being fitted; its ``fit`` learns nothing but sets its fixed thresholds,
  which ``predict`` and ``DocumentTagger`` need.
* ``predict_proba`` gives per axis an array (n_documents, n_labels) of scores in [0, 1]; ``predict`` is those
  scores at ``thresholds_``. Empty input works: no documents, documents without passages (scored 0, no label,
  no evidence), no passages.
* Sentence contributions have one row per sentence and one column per label, and reusing a scored batch
  (``score_batch``/``batch_contributions``, what ``DocumentTagger`` does) gives what asking afresh gives.
* Prediction changes nothing on the tagger (once state built on first use exists): threads may share it.
* ``get_params``/``set_params`` round-trip (JSON-serialisable: they go into ``meta.json``); an unknown parameter is
  refused.
* Saved with ``nlp.models.save_model`` and loaded with ``load_model``: the same parameters, identical thresholds,
  the same scores; no pickle-able file in the model folder; and a codebook whose labels differ is refused on load.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from functools import cached_property
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..codebook import Codebook, CodebookError
from .base import NotFittedError, Tagger, Units

#: File suffixes of formats that can run code when loaded: none may be in a saved model's folder.
UNSAFE_SUFFIXES = {".pkl", ".pickle", ".joblib", ".pt", ".pth", ".bin", ".ckpt", ".npy", ".npz"}
#: Scores of a saved-and-loaded model may differ this much (embeddings computed in another batch; float32 maths).
LOAD_ATOL = 1e-6
#: Sentence contributions from a reused batch and from a fresh call may differ this much (float32 features, or
#: sentence vectors embedded in another batch).
CONTRIBUTION_ATOL = 1e-5


class TaggerCheck:
    """What one run of the checks shares: the factory, the data, and one tagger fitted on it (fitted once, on first
    use; checks only read it). ``folder``: scratch space for the registry round trip."""

    def __init__(self, factory: Callable[[], Tagger], units: Units, y: dict[str, np.ndarray], *,
                 test_units: Units | None = None, folder: str | Path | None = None):
        self.factory = factory
        self.units = units
        self.y = y
        self.test_units = test_units if test_units is not None else units[: min(len(units), 12)]
        self._scratch = None if folder is not None else tempfile.TemporaryDirectory(prefix="tagger-checks-")
        self.folder = Path(folder) if folder is not None else Path(self._scratch.name)

    @cached_property
    def fitted(self) -> Tagger:
        return self.factory().fit(self.units, self.y)

    @property
    def codebook(self) -> Codebook:
        return self.fitted.codebook

    @property
    def test_passages(self):
        return [p for unit in self.test_units for p in unit]


# -- the checks -----------------------------------------------------------------------------------------------
def check_fit_returns_self_and_keeps_inputs(c: TaggerCheck) -> None:
    tagger = c.factory()
    params = json.dumps(tagger.get_params(), sort_keys=True, default=str)
    y = {axis: np.array(v, copy=True) for axis, v in c.y.items()}
    assert tagger.fit(c.units, c.y) is tagger, "fit() must return the tagger itself"
    for axis in y:
        assert np.array_equal(y[axis], c.y[axis]), f"fit() changed the label matrix of {axis!r}"
    assert json.dumps(tagger.get_params(), sort_keys=True, default=str) == params, "fit() changed the parameters"


def check_fitted_state_only_after_fit(c: TaggerCheck) -> None:
    tagger = c.factory()
    assert not hasattr(tagger, "thresholds_"), "thresholds_ is fitted state: it must not exist before fit()"
    labels = c.fitted.labels
    assert set(c.fitted.thresholds_) == set(labels), "thresholds_ must have one entry per axis"
    for axis, labs in labels.items():
        th = np.asarray(c.fitted.thresholds_[axis], dtype=float)
        assert th.shape == (len(labs),), f"{axis}: thresholds_ shape {th.shape}, expected ({len(labs)},)"
        assert np.all(np.isfinite(th) & (th >= 0) & (th <= 1)), f"{axis}: thresholds outside [0, 1]: {th}"


def check_unfitted_tagger_raises(c: TaggerCheck) -> None:
    tagger = c.factory()
    units, passages = c.test_units[:2], [p for unit in c.test_units[:2] for p in unit]
    calls = {"predict": lambda: tagger.predict(units)}
    if tagger.trainable:
        calls.update({"predict_proba": lambda: tagger.predict_proba(units),
                      "passage_proba": lambda: tagger.passage_proba(passages),
                      "sentence_contributions": lambda: tagger.sentence_contributions(passages, next(iter(
                          tagger.labels)))})
    else:  # nothing to learn: it scores unfitted, as it does fitted
        proba = tagger.predict_proba(units)
        for axis, scores in c.fitted.predict_proba(units).items():
            assert np.array_equal(proba[axis], scores), f"{axis}: an untrainable tagger scores differently unfitted"
    for what, call in calls.items():
        try:
            call()
        except NotFittedError as exc:
            assert "not fitted" in str(exc), f"{what} before fit: the error should say 'not fitted': {exc}"
        else:
            raise AssertionError(f"{what} before fit() must raise NotFittedError")


def check_predict_proba_shapes_and_range(c: TaggerCheck) -> None:
    tagger, units = c.fitted, c.test_units
    proba = tagger.predict_proba(units)
    assert list(proba) == list(tagger.labels), f"axes {list(proba)}, expected {list(tagger.labels)}"
    pred = tagger.predict(units)
    for axis, labs in tagger.labels.items():
        p = proba[axis]
        assert p.shape == (len(units), len(labs)), f"{axis}: predict_proba shape {p.shape}"
        assert np.all(np.isfinite(p) & (p >= 0) & (p <= 1)), f"{axis}: scores outside [0, 1]"
        assert np.array_equal(pred[axis], p >= tagger.thresholds_[axis]), f"{axis}: predict is not proba >= thresholds_"
    passages = c.test_passages
    scores = tagger.passage_proba(passages)
    for axis, labs in tagger.labels.items():
        assert scores[axis].shape == (len(passages), len(labs)), f"{axis}: passage_proba shape {scores[axis].shape}"


def check_empty_input(c: TaggerCheck) -> None:
    from ..pipeline import DocumentTagger
    from ..schema import Document

    tagger = c.fitted
    n = {axis: len(labs) for axis, labs in tagger.labels.items()}
    for units, rows in (([], 0), ([[], []], 2)):
        proba, pred = tagger.predict_proba(units), tagger.predict(units)
        assert {a: p.shape for a, p in proba.items()} == {a: (rows, k) for a, k in n.items()}, \
            f"predict_proba of {rows} document(s) without passages: {({a: p.shape for a, p in proba.items()})}"
        assert not any(p.any() for p in proba.values()), "a document without passages must score 0"
        assert not any(p.any() for p in pred.values()), "a document without passages must get no label"
    assert {a: s.shape for a, s in tagger.score_batch([]).scores.items()} == {a: (0, k) for a, k in n.items()}
    for axis in n:
        assert list(tagger.sentence_contributions([], axis)) == [], "no passages: no contributions"

    class NoPassages:  # a processor for documents that have no text to tag
        def process(self, texts):
            return ([] for _ in texts)

    tagged = list(DocumentTagger(tagger, NoPassages()).tag([Document(id="empty", text=""),
                                                           Document(id="blank", text=" ")]))
    assert [t.doc.id for t in tagged] == ["empty", "blank"]
    for t in tagged:
        assert t.passages == [] and t.evidence == {} and not any(t.selected.values())


def check_sentence_contributions(c: TaggerCheck) -> None:
    tagger, passages = c.fitted, c.test_passages[:6]
    batch = tagger.score_batch(passages)
    for axis, scores in tagger.passage_proba(passages).items():
        np.testing.assert_allclose(batch.scores[axis], scores, rtol=0, atol=1e-12,
                                   err_msg=f"{axis}: score_batch and passage_proba differ")
    rows = list(range(len(passages)))[::-2]  # a subset, not in batch order
    for axis, labs in tagger.labels.items():
        fresh = tagger.sentence_contributions(passages, axis)
        assert len(fresh) == len(passages), f"{axis}: {len(fresh)} blocks for {len(passages)} passages"
        for p, block in zip(passages, fresh):
            assert np.shape(block) == (len(p.sentences), len(labs)), f"{axis}: contributions shape {np.shape(block)}"
            assert np.all(np.isfinite(block)), f"{axis}: contributions not finite"
        reused = tagger.batch_contributions(batch, rows, axis)
        assert len(reused) == len(rows), f"{axis}: batch_contributions gave {len(reused)} blocks for {len(rows)} rows"
        for k, block in zip(rows, reused):
            np.testing.assert_allclose(block, fresh[k], rtol=0, atol=CONTRIBUTION_ATOL,
                                       err_msg=f"{axis}: batch_contributions differs from sentence_contributions")


def check_prediction_leaves_tagger_unchanged(c: TaggerCheck) -> None:
    """What threads sharing a tagger rely on: once a first prediction has built what is built on first use,
    predicting again writes nothing on the tagger."""
    from ..pipeline import DocumentTagger

    tagger, units = c.fitted, c.test_units[:1]  # few passages: the transformer scores every sentence alone
    passages = [p for unit in units for p in unit]

    def predict_everything():
        tagger.predict(units)
        batch = tagger.score_batch(passages)
        for axis in tagger.labels:
            tagger.batch_contributions(batch, list(range(len(passages))), axis)
            tagger.sentence_contributions(passages[:1], axis)
        list(DocumentTagger(tagger, _Units(units)).tag(_Units.documents(units)))

    def snapshot(obj, depth=0):
        state = {}
        for key, value in vars(obj).items():
            size = len(value) if isinstance(value, (dict, list, set)) else None
            state[key] = (id(value), size)
            if isinstance(value, Tagger) and depth < 2:
                state[key] += (snapshot(value, depth + 1),)
            elif isinstance(value, dict) and depth < 2:
                state[key] += (tuple((k, id(v), snapshot(v, depth + 1) if isinstance(v, Tagger) else None)
                                     for k, v in value.items()),)
        return state

    predict_everything()
    before = snapshot(tagger)
    predict_everything()
    assert snapshot(tagger) == before, "prediction changed the tagger's attributes: it is not safe to share"


def check_params_round_trip(c: TaggerCheck) -> None:
    tagger = c.factory()
    params = tagger.get_params()
    json.dumps(params)  # what meta.json records: must be JSON
    other = c.factory()
    assert other.set_params(**params) is other, "set_params() must return the tagger itself"
    assert other.get_params() == params, "get_params() after set_params(**get_params()) differs"
    try:
        other.set_params(no_such_parameter=1)
    except ValueError:
        pass
    else:
        raise AssertionError("set_params() must refuse an unknown parameter with a ValueError")
    assert other.get_params() == params, "a refused set_params() changed the parameters"


def check_deterministic_fit(c: TaggerCheck) -> None:
    """Seeded by its parameters, not by whatever state numpy's global generator is in."""
    state = np.random.get_state()
    try:
        np.random.seed(1)
        first = c.factory().fit(c.units, c.y)
        np.random.seed(2)
        second = c.factory().fit(c.units, c.y)
    finally:
        np.random.set_state(state)
    a, b = first.predict_proba(c.test_units), second.predict_proba(c.test_units)
    for axis in first.labels:
        assert np.array_equal(a[axis], b[axis]), f"{axis}: two fits with the same parameters score differently"
        assert np.array_equal(first.thresholds_[axis], second.thresholds_[axis]), \
            f"{axis}: two fits with the same parameters give other thresholds"


def check_save_load_round_trip(c: TaggerCheck) -> None:
    from ..models import load_model, save_model

    tagger = c.fitted
    root = c.folder / "round_trip"
    info = save_model(tagger, "contract", folder=root)
    unsafe = [p.name for p in info.path.rglob("*") if p.suffix in UNSAFE_SUFFIXES]
    assert not unsafe, f"the model folder holds files of unsafe formats: {unsafe}"
    loaded, loaded_info = load_model("contract", c.codebook, folder=root)
    assert type(loaded) is type(tagger) and loaded_info.version == info.version
    assert loaded.get_params() == tagger.get_params(), "loaded parameters differ"
    before, after = tagger.predict_proba(c.test_units), loaded.predict_proba(c.test_units)
    for axis in tagger.labels:
        assert np.array_equal(loaded.thresholds_[axis], tagger.thresholds_[axis]), f"{axis}: loaded thresholds differ"
        np.testing.assert_allclose(after[axis], before[axis], rtol=0, atol=LOAD_ATOL,
                                   err_msg=f"{axis}: the loaded model scores differently")


def check_other_codebook_refused_on_load(c: TaggerCheck) -> None:
    """A model records its labels; a codebook with a label less, or the same labels in another order (columns
    would be attached to the wrong labels), is refused, naming what differs."""
    from ..models import ModelError, load_model, save_model

    tagger = c.fitted
    root = c.folder / "other_codebook"
    save_model(tagger, "contract", folder=root)
    axis = next(iter(c.codebook.axes))
    labels = c.codebook.axes[axis]
    fewer = dataclasses.replace(c.codebook, axes={**c.codebook.axes, axis: labels[:-1]})
    reordered = dataclasses.replace(c.codebook, axes={**c.codebook.axes, axis: labels[::-1]})
    for other, says in ((fewer, labels[-1].id), (reordered, "order")):
        try:
            load_model("contract", other, folder=root)
        except (CodebookError, ModelError) as exc:
            assert says in str(exc), f"the refusal should say what differs ({says!r}): {exc}"
        else:
            raise AssertionError(f"a codebook whose {axis!r} labels differ was accepted on load")


def check_fit_with_sources(c: TaggerCheck) -> None:
    """``fit_takes_sources``: ``fit(units, y, sources=...)`` works and is deterministic; one source for every unit
    weighs them alike, so it fits as without sources. A tagger without it is not asked."""
    tagger = c.factory()
    if not type(tagger).fit_takes_sources:
        return
    n = len(c.units)
    mixed = [f"s{k % 3}" for k in range(n)]
    first = tagger.fit(c.units, c.y, sources=mixed).predict_proba(c.test_units)
    second = c.factory().fit(c.units, c.y, sources=mixed).predict_proba(c.test_units)
    same = c.factory().fit(c.units, c.y, sources=["one"] * n).predict_proba(c.test_units)
    plain = c.fitted.predict_proba(c.test_units)
    for axis in first:
        assert np.array_equal(first[axis], second[axis]), f"{axis}: two fits with the same sources score differently"
        assert np.allclose(same[axis], plain[axis]), f"{axis}: one source for every unit fits other than no sources"


CHECKS: tuple[Callable[[TaggerCheck], None], ...] = (
    check_fit_returns_self_and_keeps_inputs,
    check_fitted_state_only_after_fit,
    check_unfitted_tagger_raises,
    check_predict_proba_shapes_and_range,
    check_empty_input,
    check_sentence_contributions,
    check_prediction_leaves_tagger_unchanged,
    check_params_round_trip,
    check_deterministic_fit,
    check_fit_with_sources,
    check_save_load_round_trip,
    check_other_codebook_refused_on_load,
)


def check_tagger(factory: Callable[[], Tagger], units: Units, y: dict[str, np.ndarray], *,
                 test_units: Units | None = None, folder: str | Path | None = None,
                 checks: Sequence[Callable[[TaggerCheck], None]] = CHECKS) -> list[str]:
    """Run ``checks`` on taggers made by ``factory`` (a fresh, unfitted tagger per call), trained on ``units`` and
    ``y``, predicting ``test_units`` (by default the first 12 training units). Raises ``AssertionError`` naming
    the first check that fails; returns the names of the checks run."""
    context = TaggerCheck(factory, units, y, test_units=test_units, folder=folder)
    for check in checks:
        try:
            check(context)
        except AssertionError as exc:
            raise AssertionError(f"{check.__name__}: {exc}") from exc
    return [check.__name__ for check in checks]


class _Units:
    """A processor stand-in that gives back units already cut into passages (by document id)."""

    def __init__(self, units: Units):
        self.units = {f"u{i}": unit for i, unit in enumerate(units)}

    @staticmethod
    def documents(units: Units):
        from ..schema import Document

        return [Document(id=f"u{i}", text=f"u{i}") for i in range(len(units))]

    def process(self, texts):
        return (self.units[t] for t in texts)
