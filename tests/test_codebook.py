"""The codebook: the shipped file, the validator's messages on broken files, a third axis end to end, and the
guard that keeps a model from being used with a codebook whose labels differ from the ones it was trained on."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from nlp.codebook import DEFAULT_CODEBOOK, CodebookError, load_codebook, parse_codebook

SHIPPED_FUNCTIONS = [
    "listening", "advocacy", "cultural_diplomacy", "exchange", "international_broadcasting", "domestic_engagement",
    "people_to_people", "twinning", "aid_development", "collaboration_networks", "economic_promotion",
    "representation_protocol", "peacebuilding", "coercive_measures",
]  # fmt: skip
SHIPPED_DOMAINS = ["peace", "environment", "economy_food", "health", "human_rights", "culture"]
#: sha256 of the shipped codebook's axes, label ids and seeds: changes only when a trained model must be redone.
SHIPPED_FINGERPRINT = "d979a901ce430bf6"


def minimal() -> dict:
    return {
        "version": 1,
        "rules": {"substantive": "tag what the unit says"},
        "functions": [
            {"id": "advocacy", "definition": "Promoting a position abroad.", "seeds": ["condemn", "urge"]},
            {"id": "aid_development", "definition": "Aid to foreign places.", "seeds": ["humanitarian aid"]},
        ],
        "domains": [
            {"id": "peace", "definition": "War and security.", "seeds": ["war", "weapons"]},
            {"id": "health", "definition": "Health.", "seeds": ["vaccine", "hospital"]},
        ],
    }


def write(tmp_path: Path, data, name: str = "codebook.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def load_error(path: Path) -> str:
    with pytest.raises(CodebookError) as info:
        load_codebook(path)
    message = str(info.value)
    assert "\n" not in message
    return message


# ----------------------------------------------------------------------------------------------- shipped codebook


def test_shipped_codebook_loads_with_14_functions_and_6_domains(codebook):
    assert codebook.axis_names == ("functions", "domains")
    assert codebook.labels("functions") == SHIPPED_FUNCTIONS
    assert codebook.labels("domains") == SHIPPED_DOMAINS
    assert codebook.version == 1
    assert set(codebook.rules) >= {"substantive", "scope", "domains"}
    sanctions = codebook.label("coercive_measures")
    assert sanctions.axis == "functions" and "sanctions" in sanctions.seeds and sanctions.definition
    assert sanctions.practice == "public"
    assert codebook.label("twinning").practice == "city"
    assert all(codebook.label(lab).seeds for lab in SHIPPED_FUNCTIONS + SHIPPED_DOMAINS)
    with pytest.raises(KeyError, match="no axis 'directions'"):
        codebook.labels("directions")
    with pytest.raises(KeyError, match="no label 'nope'"):
        codebook.label("nope")


def test_include_and_exclude_items_with_commas_in_parentheses_read_as_written(codebook):
    """YAML splits a flow list at every comma, including those inside parentheses; the guidelines shown to
    annotators keep the authors' items whole."""
    networks = codebook.label("collaboration_networks")
    assert networks.include[0] == "city networks (C40, ICLEI, Eurocities, Covenant of Mayors, UCLG, Mayors for Peace)"
    assert networks.include[1] == "multilateral fora and summits as venues of cooperation"
    assert codebook.label("culture").exclude == ("rights claims of these communities (human_rights, tag both if both)",)
    every = [item for axis in codebook.axis_names for lab in codebook.labels(axis)
             for item in (*codebook.label(lab).include, *codebook.label(lab).exclude)]
    assert all(item.count("(") == item.count(")") for item in every)
    data = yaml.safe_load("functions:\n  - {id: a, definition: d, seeds: [s], include: [x (y, z, w]}\n"
                          "domains:\n  - {id: b, definition: d, seeds: [s]}\n")
    assert parse_codebook(data).label("a").include == ("x (y, z, w",)  # never balanced: one item, nothing lost


def test_fingerprint_is_stable_and_tracks_what_a_model_depends_on(codebook, tmp_path):
    assert codebook.fingerprint() == SHIPPED_FINGERPRINT
    assert load_codebook(DEFAULT_CODEBOOK).fingerprint() == SHIPPED_FINGERPRINT
    data = yaml.safe_load(DEFAULT_CODEBOOK.read_text(encoding="utf-8"))
    reworded = copy.deepcopy(data)
    reworded["functions"][0]["definition"] = "Something else entirely."
    assert parse_codebook(reworded).fingerprint() == SHIPPED_FINGERPRINT  # wording does not matter
    reseeded = copy.deepcopy(data)
    reseeded["functions"][0]["seeds"].append("focus group")
    assert parse_codebook(reseeded).fingerprint() != SHIPPED_FINGERPRINT  # seeds do
    renamed = copy.deepcopy(data)
    renamed["domains"][0]["id"] = "security"
    assert parse_codebook(renamed).fingerprint() != SHIPPED_FINGERPRINT


# ------------------------------------------------------------------------------------------------ broken files


def test_duplicate_id_within_an_axis(tmp_path):
    data = minimal()
    data["functions"].append({"id": "advocacy", "definition": "again", "seeds": ["urge"]})
    path = write(tmp_path, data)
    msg = load_error(path)
    assert str(path) in msg and "'advocacy'" in msg and "'id'" in msg and "duplicates" in msg


def test_duplicate_id_across_axes(tmp_path):
    data = minimal()
    data["domains"].append({"id": "advocacy", "definition": "a domain now", "seeds": ["urge"]})
    path = write(tmp_path, data)
    msg = load_error(path)
    assert str(path) in msg and "'advocacy'" in msg and "'id'" in msg
    assert "'domains'" in msg and "'functions'" in msg  # where the copy is, and where the first one was


@pytest.mark.parametrize("key", ["definition", "seeds"])
def test_missing_required_key(tmp_path, key):
    data = minimal()
    del data["domains"][1][key]
    path = write(tmp_path, data)
    msg = load_error(path)
    assert str(path) in msg and "'health'" in msg and f"'{key}'" in msg and "missing" in msg


def test_empty_seeds_count_as_missing(tmp_path):
    data = minimal()
    data["functions"][1]["seeds"] = []
    msg = load_error(write(tmp_path, data))
    assert "'aid_development'" in msg and "'seeds'" in msg


def test_missing_id_names_the_label_by_position(tmp_path):
    data = minimal()
    del data["functions"][1]["id"]
    path = write(tmp_path, data)
    msg = load_error(path)
    assert str(path) in msg and "label #2" in msg and "'id'" in msg and "'functions'" in msg


@pytest.mark.parametrize("bad", ["Advocacy", "advocacy-2", "2advocacy", "advocacy policy"])
def test_bad_id_format(tmp_path, bad):
    data = minimal()
    data["functions"][0]["id"] = bad
    path = write(tmp_path, data)
    msg = load_error(path)
    assert str(path) in msg and bad in msg and "'id'" in msg and "lower_snake_case" in msg


def test_seeds_must_be_a_list(tmp_path):
    data = minimal()
    data["domains"][0]["seeds"] = "war, weapons"
    path = write(tmp_path, data)
    msg = load_error(path)
    assert str(path) in msg and "'peace'" in msg and "'seeds'" in msg and "list" in msg


def test_definition_must_be_a_string(tmp_path):
    data = minimal()
    data["domains"][0]["definition"] = ["war", "weapons"]
    msg = load_error(write(tmp_path, data))
    assert "'peace'" in msg and "'definition'" in msg


def test_axis_not_a_list(tmp_path):
    data = minimal()
    data["functions"] = {"advocacy": {"definition": "x", "seeds": ["urge"]}}
    path = write(tmp_path, data)
    msg = load_error(path)
    assert str(path) in msg and "'functions'" in msg and "must be a list" in msg


def test_label_not_a_mapping(tmp_path):
    data = minimal()
    data["domains"].append("environment")
    path = write(tmp_path, data)
    msg = load_error(path)
    assert str(path) in msg and "'domains'" in msg and "label #3" in msg


def test_empty_axis(tmp_path):
    data = minimal()
    data["domains"] = []
    msg = load_error(write(tmp_path, data))
    assert "'domains'" in msg and "no labels" in msg


def test_missing_domains_axis(tmp_path):
    data = minimal()
    del data["domains"]
    path = write(tmp_path, data)
    msg = load_error(path)
    assert str(path) in msg and "missing axis 'domains'" in msg


def test_invalid_yaml_names_the_line(tmp_path):
    text = "version: 1\nfunctions:\n  - id: advocacy\n    definition: a: b\n    seeds: [urge]\n"
    path = write(tmp_path, text)
    msg = load_error(path)
    assert str(path) in msg and "invalid YAML at line 4" in msg


def test_bad_indentation_names_the_line(tmp_path):
    text = "version: 1\nfunctions:\n  - id: advocacy\n    definition: d\n    seeds: [urge]\n   domains: []\n"
    msg = load_error(write(tmp_path, text))
    assert "invalid YAML at line 6" in msg


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere" / "codebook.yaml"
    msg = load_error(path)
    assert str(path) in msg and "not found" in msg


def test_non_utf8_file(tmp_path):
    path = tmp_path / "latin1.yaml"
    text = yaml.safe_dump(minimal(), sort_keys=False).replace("Health.", "Santé publique.")
    path.write_bytes(text.encode("latin-1"))
    msg = load_error(path)
    assert str(path) in msg and "UTF-8" in msg


@pytest.mark.parametrize("text, kind", [("- functions\n- domains\n", "list"), ("just a string\n", "str"),
                                        ("", "NoneType")])
def test_top_level_not_a_mapping(tmp_path, text, kind):
    path = write(tmp_path, text)
    msg = load_error(path)
    assert str(path) in msg and "mapping" in msg and kind in msg


def test_minimal_codebook_loads_and_keeps_extra_attributes(tmp_path):
    data = minimal()
    data["functions"][0]["practice"] = "both"
    data["functions"][0]["include"] = ["joint statements"]
    cb = load_codebook(write(tmp_path, data))
    assert cb.label_sets() == {"functions": ["advocacy", "aid_development"], "domains": ["peace", "health"]}
    assert cb.label("advocacy").practice == "both"
    assert cb.label("advocacy").include == ("joint statements",)
    assert cb.label("peace").seeds == ("war", "weapons")
    assert cb.path == str(tmp_path / "codebook.yaml")


# ------------------------------------------------------------------------------------------------ compatibility


def test_check_compatible_names_the_differing_labels(codebook):
    trained = codebook.label_sets()
    codebook.check_compatible(trained)  # same labels: fine
    changed = {"functions": [lab for lab in trained["functions"] if lab != "twinning"] + ["sister_cities"],
               "domains": trained["domains"]}
    with pytest.raises(CodebookError) as info:
        codebook.check_compatible(changed, what="model 'x'")
    msg = str(info.value)
    assert "sister_cities" in msg and "twinning" in msg and "functions" in msg
    assert "domains" not in msg.split("labels:", 1)[1]  # the unchanged axis is not blamed
    assert str(DEFAULT_CODEBOOK) in msg
    with pytest.raises(CodebookError, match="axis 'directions' is in the model"):
        codebook.check_compatible({**trained, "directions": ["north"]})
    with pytest.raises(CodebookError, match="axis 'domains' is in the codebook but not in the model"):
        codebook.check_compatible({"functions": trained["functions"]})


# ------------------------------------------------------------------------------------------------ a third axis

DIRECTIONS = {
    "north": ["north", "northern", "Arctic", "Canada"],
    "south": ["south", "southern", "Africa", "Latin America"],
    "east": ["east", "eastern", "Asia", "Pacific"],
    "west": ["west", "western", "Europe", "Atlantic"],
}


def three_axis_codebook(tmp_path: Path) -> Path:
    data = yaml.safe_load(DEFAULT_CODEBOOK.read_text(encoding="utf-8"))
    data["directions"] = [{"id": lab, "definition": f"Mentions the {lab}.", "seeds": seeds}
                          for lab, seeds in DIRECTIONS.items()]
    return write(tmp_path, data, "codebook3.yaml")


def direction_labels(text: str) -> list[str]:
    lower = text.lower()
    return [lab for lab, seeds in DIRECTIONS.items()
            if any(re.search(rf"\b{re.escape(s.lower())}", lower) for s in seeds)]


@pytest.fixture(scope="module")
def three_axes(tmp_path_factory, small_seed_rows):
    """A codebook with a third axis and a linear model trained on ~120 seed units labelled on it by keyword."""
    from nlp.training import train

    folder = tmp_path_factory.mktemp("three_axes")
    cb_path = three_axis_codebook(folder)
    codebook3 = load_codebook(cb_path)
    rows = [dict(row, directions=direction_labels(row["title"] + "\n\n" + row["text"])) for row in small_seed_rows]
    for j, lab in enumerate(DIRECTIONS):  # every direction label has positive and negative examples
        assert 0 < sum(lab in r["directions"] for r in rows) < len(rows), lab
    ann = folder / "ann3.jsonl"
    ann.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    info, _ = train(ann, codebook3, name="linear3", holdout=0, models_folder=folder / "models")
    return codebook3, folder / "models", info, rows


def test_third_axis_loads(three_axes):
    codebook3 = three_axes[0]
    assert codebook3.axis_names == ("functions", "domains", "directions")
    assert codebook3.labels("directions") == list(DIRECTIONS)
    assert codebook3.labels("functions") == SHIPPED_FUNCTIONS


def test_third_axis_lexicon_scores_every_axis(three_axes, state_department):
    from nlp.taggers import get_tagger_class
    from nlp.text import TextProcessor

    codebook3 = three_axes[0]
    tagger = get_tagger_class("lexicon")(codebook3)
    text = "Our partners in Asia and in Africa met in Europe to condemn the war."
    units = list(TextProcessor(codebook3).process([text]))
    proba = tagger.predict_proba(units)
    assert set(proba) == {"functions", "domains", "directions"}
    assert proba["directions"].shape == (1, 4)
    directions = dict(zip(codebook3.labels("directions"), proba["directions"][0]))
    assert directions == {"north": 0.0, "south": 0.5, "east": 0.5, "west": 0.5}  # 1 - 2^-hits
    assert proba["functions"][0][SHIPPED_FUNCTIONS.index("advocacy")] == 0.5
    assert proba["domains"][0][SHIPPED_DOMAINS.index("peace")] == 0.5


def test_third_axis_linear_model_scores_every_axis(three_axes, state_department):
    from nlp.models import load_model
    from nlp.pipeline import DocumentTagger
    from nlp.schema import Document
    from nlp.text import TextProcessor

    codebook3, folder, info, rows = three_axes
    meta = json.loads((info.path / "meta.json").read_text())
    assert meta["labels"]["directions"] == list(DIRECTIONS)
    assert len(meta["thresholds"]["directions"]) == 4
    tagger, loaded = load_model("linear3", codebook3, folder=folder)
    assert loaded.ref == info.ref
    docs = [Document(id=r.id, text=r.text, title=r.title) for r in state_department.head(20).itertuples()]
    tagged = list(DocumentTagger(tagger, TextProcessor(codebook3)).tag(docs))
    for t in tagged:
        record = t.to_record(tagger.labels, loaded.ref)
        assert list(record) == ["id", "functions", "domains", "directions", "scores", "evidence", "model"]
        assert list(record["scores"]["directions"]) == list(DIRECTIONS)
        assert len(record["scores"]["functions"]) == 14 and len(record["scores"]["domains"]) == 6
        assert all(0.0 <= s <= 1.0 for axis in record["scores"].values() for s in axis.values())
        assert set(record["directions"]) <= set(DIRECTIONS)
    # the keyword-derived axis was learnt: the model scores units that mention a direction above those that do not
    scores = tagger.predict_proba([[p for p in unit] for unit in TextProcessor(codebook3).process(
        [r["title"] + "\n\n" + r["text"] for r in rows])])["directions"]
    truth = np.array([[lab in r["directions"] for lab in DIRECTIONS] for r in rows])
    for j, lab in enumerate(DIRECTIONS):
        if 0 < truth[:, j].sum() < len(rows):
            assert scores[truth[:, j], j].mean() > scores[~truth[:, j], j].mean(), lab


def test_model_refuses_a_codebook_with_other_labels(three_axes, codebook, tmp_path):
    from nlp.models import ModelError, load_model

    codebook3, folder, _info, _rows = three_axes
    with pytest.raises((CodebookError, ModelError)) as info:
        load_model("linear3", codebook, folder=folder)  # the shipped codebook has no 'directions' axis
    assert "directions" in str(info.value) and "linear3" in str(info.value)
    data = yaml.safe_load(Path(codebook3.path).read_text(encoding="utf-8"))
    data["directions"][0]["id"] = "arctic"
    renamed = load_codebook(write(tmp_path, data, "renamed.yaml"))
    with pytest.raises((CodebookError, ModelError)) as info:
        load_model("linear3", renamed, folder=folder)
    msg = str(info.value)
    assert "arctic" in msg and "north" in msg and "directions" in msg and "renamed.yaml" in msg


def test_single_label_axis_is_supported_or_refused(tmp_path):
    """An axis with one label must either be refused by the validator or be scored with one column."""
    from nlp.taggers import get_tagger_class
    from nlp.text import TextProcessor

    data = minimal()
    data["urgency"] = [{"id": "urgent", "definition": "Calls for immediate action.", "seeds": ["immediately"]}]
    path = write(tmp_path, data)
    try:
        cb = load_codebook(path)
    except CodebookError as exc:  # refusing it is an acceptable answer
        assert "urgency" in str(exc)
        return
    texts = [f"We must act immediately on item {i}. We condemn the war." if i % 2 else
             f"Routine report number {i} on hospital budgets and vaccine supply." for i in range(12)]
    units = list(TextProcessor(cb).process(texts))
    y = {"functions": np.array([[i % 2, 0] for i in range(12)]), "domains": np.array([[i % 2, 1 - i % 2]
                                                                                      for i in range(12)]),
         "urgency": np.array([[i % 2] for i in range(12)])}
    tagger = get_tagger_class("linear")(cb, min_df=1, cv_folds=3).fit(units, y)
    proba = tagger.predict_proba(units)
    assert proba["urgency"].shape == (12, 1)
    assert proba["urgency"][1, 0] > proba["urgency"][0, 0]
