"""Every registered tagger keeps one contract (nlp/taggers/checks.py, in the manner of scikit-learn's
``check_estimator``): fit returns the tagger; fitted state only after fit or load; a clear error before; scores of
shape (documents, labels) in [0, 1] per axis; empty input; sentence contributions; prediction that leaves the
tagger unchanged (threads share it); parameters that round-trip; deterministic fits; the registry's save/load
round trip (same scores, identical thresholds, no pickle) and a codebook with other labels refused on load.

Small real data: the ~120 small seed units (every label present; conftest) and a real two-passage press release
to predict. The slow tiers get tiny settings: 3 folds; the transformer one epoch on 36 units at 64 tokens with 5 of
6 layers frozen; the embedding and ensemble tiers share the session's embedding cache, so every text is embedded
once per session.
"""

from __future__ import annotations

import pytest

from nlp.taggers import TAGGERS
from nlp.taggers.checks import CHECKS, TaggerCheck, check_tagger
from nlp.taggers.embedding import EmbeddingTagger
from nlp.taggers.ensemble import EnsembleTagger
from nlp.taggers.lexicon import LexiconTagger
from nlp.taggers.linear import LinearTagger
from nlp.taggers.transformer import TransformerTagger
from nlp.text import TextProcessor

pytestmark = pytest.mark.usefixtures("torch_all_cpus")  # conftest: encode with every CPU

TINY_TRANSFORMER = dict(epochs=1, max_tokens=64, freeze_layers=5, batch_size=8, predict_batch_size=16,
                        validation=0.25, precision="fp32", seed=0)
#: How many training units each tier gets (the transformer trains on every passage of them: keep it small).
N_UNITS = {"transformer": 36}


def factories(codebook, cache):
    """An unfitted tagger of each registered name, with settings small enough for a test."""
    return {
        "lexicon": lambda: LexiconTagger(codebook),
        "linear": lambda: LinearTagger(codebook, cv_folds=3),
        "embedding": lambda: EmbeddingTagger(codebook, cv_folds=3, cache=cache),
        "ensemble": lambda: EnsembleTagger(codebook, member_params={"linear": {"cv_folds": 3},
                                                                    "embedding": {"cv_folds": 3}}, cache=cache),
        "transformer": lambda: TransformerTagger(codebook, progress=lambda _m: None, **TINY_TRANSFORMER),
    }


@pytest.fixture(scope="module")
def contexts(codebook, small_units, king_county, embedding_cache, tmp_path_factory):
    """One TaggerCheck per tagger name, made on first use and shared by that tagger's checks (each fits its
    tagger once; the checks that need fresh fits make their own)."""
    units, y = small_units
    long_document = king_county.iloc[1]
    test_units = units[:8] + list(TextProcessor(codebook).process([f"{long_document.title}\n\n{long_document.text}"]))
    assert len(test_units[-1]) == 2  # a document of two passages: evidence picks the best one
    made: dict[str, TaggerCheck] = {}
    make = factories(codebook, embedding_cache)

    def get(name: str) -> TaggerCheck:
        if name not in made:
            assert name in make, f"tagger {name!r} is registered but has no factory in this test: add one"
            n = N_UNITS.get(name, len(units))
            made[name] = TaggerCheck(make[name], units[:n], {a: v[:n] for a, v in y.items()}, test_units=test_units,
                                     folder=tmp_path_factory.mktemp(f"contract_{name}"))
        return made[name]

    return get


def test_every_registered_tagger_is_checked(codebook):
    assert set(factories(codebook, None)) == set(TAGGERS)


@pytest.mark.parametrize("name", sorted(TAGGERS))
@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__.removeprefix("check_"))
def test_tagger_contract(name, check, contexts):
    check(contexts(name))


def test_check_tagger_runs_every_check_and_names_the_one_that_fails(codebook, small_units, tmp_path):
    """``check_tagger`` is what a new tier's author runs; a tagger that breaks the contract is named with the
    broken rule."""
    units, y = small_units
    assert check_tagger(lambda: LexiconTagger(codebook), units[:20], {a: v[:20] for a, v in y.items()},
                        folder=tmp_path) == [check.__name__ for check in CHECKS]

    class BornFitted(LexiconTagger):  # fitted state set in __init__: what the contract forbids
        def __init__(self, codebook):
            super().__init__(codebook)
            self.fit([], {})

    with pytest.raises(AssertionError, match="check_fitted_state_only_after_fit: thresholds_ is fitted state"):
        check_tagger(lambda: BornFitted(codebook), units[:20], {a: v[:20] for a, v in y.items()}, folder=tmp_path)
