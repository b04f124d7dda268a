"""Agreement statistics against independent implementations (scikit-learn's kappa, the krippendorff package)."""

import math

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from nlp.agreement import agreement_table, cohen_kappa, krippendorff_alpha

krippendorff = pytest.importorskip("krippendorff")


def test_cohen_kappa_matches_scikit_learn():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2, 60)
    b = np.where(rng.random(60) < 0.8, a, 1 - a)
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)


def test_cohen_kappa_of_constant_codes_is_undefined_and_bad_input_refused():
    assert math.isnan(cohen_kappa([1, 1, 1], [1, 1, 1]))
    with pytest.raises(ValueError):
        cohen_kappa([1, 0], [1])


def test_krippendorff_alpha_matches_the_reference_package_with_missing_values():
    # Krippendorff's own worked example (nominal data, four coders, missing values as nan)
    reliability = np.array([
        [1, 2, 3, 3, 2, 1, 4, 1, 2, np.nan, np.nan, np.nan],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, np.nan, 3.],
        [np.nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, np.nan],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, np.nan],
    ])
    units = [[v for v in reliability[:, u] if not np.isnan(v)] for u in range(reliability.shape[1])]
    expected = krippendorff.alpha(reliability_data=reliability, level_of_measurement="nominal")
    assert krippendorff_alpha(units) == pytest.approx(expected, abs=1e-9)
    assert expected == pytest.approx(0.743, abs=1e-3)  # the value Krippendorff reports


def _row(text, annotator, functions, domains=()):
    return {"text": text, "annotator": annotator, "labels": {"functions": list(functions), "domains": list(domains)}}


def test_agreement_table_per_label(codebook):
    rows = [
        _row("The mayor met the consul.", "ana", ["representation_protocol"]),
        _row("The mayor met the consul.", "ben", ["representation_protocol"]),
        _row("Sister city visit to Kyoto.", "ana", ["twinning"]),
        _row("Sister city visit to Kyoto.", "ben", ["twinning", "exchange"]),
        _row("Relief funds for refugees.", "ana", ["aid_development"]),
        _row("Relief funds for refugees.", "ben", []),
        _row("Only one annotator saw this.", "ana", ["aid_development"]),
    ]
    table = agreement_table(rows, codebook)
    assert table.loc[("functions", "twinning"), "units"] == 3
    assert table.loc[("functions", "twinning"), "kappa"] == pytest.approx(1.0)
    aid = [[0, 0], [0, 0], [1, 0]]
    assert table.loc[("functions", "aid_development"), "kappa"] == pytest.approx(
        cohen_kappa_score([u[0] for u in aid], [u[1] for u in aid]))
    assert table.loc[("functions", "aid_development"), "alpha"] == pytest.approx(
        krippendorff.alpha(reliability_data=np.array(aid).T, level_of_measurement="nominal"))
    assert math.isnan(table.loc[("domains", "peace"), "kappa"])  # nobody used it: undefined, not 1


def test_agreement_table_is_empty_without_shared_units(codebook):
    assert agreement_table([_row("a", "ana", ["aid_development"]), _row("b", "ben", [])], codebook).empty
