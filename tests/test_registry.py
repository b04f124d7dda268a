"""The model registry: one folder per version, an active model, model cards, and `cdpd models`."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from nlp.cli import main
from nlp.models import ModelError, activate, active_ref, list_models, load_model, resolve, save_model


@pytest.fixture()
def registry(tmp_path, monkeypatch, small_linear):
    """Two versions of `linear` (different training-data hashes) and one `other`, in a temporary registry."""
    monkeypatch.setenv("CDPD_MODELS", str(tmp_path))
    a = save_model(small_linear, "linear", training={"sha256": "aaa"}, folder=tmp_path)
    b = save_model(small_linear, "linear", training={"sha256": "bbb"}, folder=tmp_path)
    c = save_model(small_linear, "other", training={"sha256": "aaa"}, folder=tmp_path)
    return tmp_path, a, b, c


def test_versions_live_in_their_own_folders(registry):
    root, a, b, c = registry
    assert a.version != b.version
    assert a.path == root / "linear" / a.version and b.path == root / "linear" / b.version
    assert (a.path / "MODEL_CARD.md").read_text().startswith(f"# Model card: linear@{a.version}")
    assert [m["name"] + "@" + m["version"] for m in list_models(root)] == [a.ref, b.ref, c.ref]


def test_resolution_and_activation(registry, codebook):
    root, a, b, c = registry
    assert active_ref(root) is None
    assert resolve("linear", root) == b.path  # no active model: the newest version of the name
    assert resolve(f"linear@{a.version}", root) == a.path
    assert activate(f"linear@{a.version}", root) == a.ref
    assert (root / "ACTIVE").read_text().strip() == a.ref
    assert resolve("linear", root) == a.path  # the active version of that name
    _, info = load_model(None, codebook, folder=root)  # None: the active model
    assert info.ref == a.ref
    assert [m["active"] for m in list_models(root)] == [True, False, False]
    assert activate("other", root) == c.ref
    assert resolve("linear", root) == b.path


def test_listing_offers_only_what_its_refs_load(registry, codebook):
    """The app's pickers and `cdpd models list` show NAME@VERSION from list_models: each one must resolve. An
    old-layout folder (NAME/meta.json) or a version folder whose meta names another model is left out, with one
    warning per folder, not an error."""
    root, a, b, c = registry
    old = root / "stray"
    old.mkdir()
    (old / "meta.json").write_text(json.dumps({**a.meta, "name": "stray"}))
    copied = root / "linear" / "0copy000"
    copied.mkdir()
    (copied / "meta.json").write_text(json.dumps(a.meta))  # still says linear@<a's version>
    with pytest.warns(UserWarning) as caught:
        listed = list_models(root)
    assert sorted(str(w.message).split(":")[0] for w in caught) == sorted([str(old), str(copied)])
    assert [m["name"] + "@" + m["version"] for m in listed] == [a.ref, b.ref, c.ref]
    for meta in listed:
        ref = f"{meta['name']}@{meta['version']}"
        assert resolve(ref, root) == Path(meta["path"]) and load_model(ref, codebook, folder=root)[1].ref == ref
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per folder, not on every page run
        assert len(list_models(root)) == 3
    with pytest.raises(ModelError, match="saved before versions had folders; retrain"):  # not loadable either
        resolve("stray", root)


def test_bad_references_are_refused(registry, codebook):
    root, *_ = registry
    for ref in ("../linear", "linear@../x", ".hidden", "a/b"):
        with pytest.raises(ModelError, match="not a model name"):
            resolve(ref, root)
    with pytest.raises(ModelError, match="versions of 'linear'"):
        resolve("linear@00000000", root)
    with pytest.raises(ModelError, match="no model named 'absent'"):
        activate("absent", root)
    assert active_ref(root) is None  # a failed activation changes nothing


def test_cli_models_list_show_activate_compare(registry, capsys, seed_rows, tmp_path):
    root, a, b, c = registry
    assert main(["models", "activate", a.ref]) == 0
    assert capsys.readouterr().out.strip() == f"active model: {a.ref}"
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"* {a.ref}\t") and lines[1].startswith(f"  {b.ref}\t")
    assert main(["models", "show", b.ref]) == 0
    card = capsys.readouterr().out
    assert card.startswith(f"# Model card: {b.ref}") and "## Limits" in card
    ann = tmp_path / "eval.jsonl"
    ann.write_text("".join(json.dumps(r) + "\n" for r in seed_rows[:60]), encoding="utf-8")
    assert main(["models", "compare", a.ref, c.ref, "--annotations", str(ann)]) == 0
    out = capsys.readouterr().out
    assert f"{a.ref} vs {c.ref}" in out and "advocacy" in out and "B-A" in out
    assert main(["models", "compare", a.ref]) == 2
    assert "usage: cdpd models compare A B" in capsys.readouterr().err
    assert main(["models", "activate", "nope"]) == 2
    assert "no model named 'nope'" in capsys.readouterr().err


def test_zero_shot_labels_are_recorded_and_marked(registry, codebook):
    from nlp.pipeline import TaggedDocument
    from nlp.schema import Document

    root, a, *_ = registry
    assert a.meta["zero_shot"] == {}  # the linear tier has none
    doc = TaggedDocument(Document(id="d", text="t"), [], {ax: [0.0] * len(l) for ax, l in codebook.label_sets().items()},
                         {}, {ax: [] for ax in codebook.axis_names}, {})
    assert "zero_shot" not in doc.to_record(codebook.label_sets(), "m@1", {"functions": []})
    record = doc.to_record(codebook.label_sets(), "m@1", {"functions": ["twinning"], "domains": []})
    assert record["zero_shot"] == ["twinning"]


def test_model_cards_say_what_each_tier_is_weak_at():
    from nlp.models import TIER_LIMITS, model_card
    from nlp.taggers import TAGGERS

    assert set(TIER_LIMITS) >= set(TAGGERS)  # a new tier needs its limits written down
    cards = {name: model_card({"name": name, "version": "0", "tagger": name}) for name in TAGGERS}
    for name, card in cards.items():
        limits = card.split("## Limits", 1)[1]
        assert all(line in limits for line in TIER_LIMITS[name])
    assert "256 word pieces" in cards["embedding"] and "Zero-shot" in cards["embedding"]
    assert "256 word pieces" in cards["transformer"] and "CPU" in cards["transformer"]
    assert "never predicted" in cards["linear"] and "negation" in cards["lexicon"]
    zero_shot = model_card({"name": "e", "version": "0", "tagger": "embedding",
                            "zero_shot": {"functions": ["sister_city_festival"], "domains": []}})
    assert "Zero-shot labels (no annotated example" in zero_shot and "sister_city_festival" in zero_shot
    assert "sister_city_festival" not in cards["embedding"]


def test_model_card_shows_data_text_as_text():
    """Source names and the training path come from annotation files: in the Markdown card they are escaped, so
    they never become links, images or markup in the app."""
    from nlp.metrics import axis_report
    from nlp.models import model_card

    import numpy as np

    evil = "![x](http://evil.example/i.png)<img src=x onerror=alert(1)>"
    y = np.array([[1, 0], [0, 0], [0, 1]])
    report = axis_report(y, y, ["a", "b"], sources=[evil, "plain", "plain"])
    meta = {"name": "m", "version": "v", "tagger": "linear", "training": {"path": "[click](http://evil.example)"},
            "metrics": {"heldout": {"functions": report}, "heldout_units": 3}}
    card = model_card(meta)
    import re

    assert "![x](" not in card and "[click](" not in card
    assert not re.search(r"(?<!\\)<img", card)  # only as \<img: a backslash-escaped, literal "<"
    assert "\\!\\[x\\]\\(http://evil\\.example/i\\.png\\)\\<img src=x onerror=alert\\(1\\)\\>" in card
    assert "| plain | 2 |" in card  # an ordinary name reads as it is


def test_model_files_must_be_regular_files_inside_the_folder(registry, codebook, tmp_path_factory):
    """Issue 15, audit defect 4: a state file linked to /dev/zero (or out of the model folder) is refused with a
    one-line reason naming the file, not read until memory runs out."""
    root, a, b, c = registry
    state = next(p for p in sorted(a.path.iterdir()) if p.name not in ("meta.json", "MODEL_CARD.md"))
    state.unlink()
    state.symlink_to("/dev/zero")
    with pytest.raises(ModelError, match=f"{state}: a link out of the model folder"):
        load_model(a.ref, codebook, folder=root)
    outside = tmp_path_factory.mktemp("elsewhere") / state.name
    outside.write_bytes((b.path / state.name).read_bytes())
    state.unlink()
    state.symlink_to(outside)
    with pytest.raises(ModelError, match="a link out of the model folder"):
        load_model(a.ref, codebook, folder=root)
    meta = c.path / "meta.json"
    meta.unlink()
    meta.symlink_to("/dev/zero")
    with pytest.raises(ModelError, match="meta.json: a link out of the model folder"):
        load_model(c.ref, codebook, folder=root)
    (root / "ACTIVE").symlink_to("/dev/zero")
    with pytest.warns(UserWarning, match="not a model; ignored"):  # read within a bound, not to the end
        assert active_ref(root) is None
    _, info = load_model(b.ref, codebook, folder=root)  # the sound one still loads
    assert info.ref == b.ref


def test_the_registry_does_not_trust_meta_json(registry, codebook, tmp_path_factory):
    """Issue 15, audit defect 8: a meta.json naming "../../elsewhere" could be activated, after which every
    command without --model failed; a model folder may not lead out of the registry; a meta.json's "cache" (any
    path, which the app then created or gave an `embeddings` table) is ignored: the workspace's cache is used."""
    import shutil

    root, a, b, c = registry
    forged = root / "linear" / "f0f0f0f0"
    shutil.copytree(a.path, forged)
    meta = json.loads((forged / "meta.json").read_text())
    (forged / "meta.json").write_text(json.dumps({**meta, "name": "../../elsewhere", "version": "x"}))
    with pytest.raises(ModelError, match=r"names '\.\./\.\./elsewhere@x', not linear@f0f0f0f0; refused"):
        activate("linear@f0f0f0f0", root)
    assert active_ref(root) is None
    with pytest.raises(ModelError, match="refused"):
        load_model("linear@f0f0f0f0", codebook, folder=root)
    (root / "ACTIVE").write_text("../../elsewhere@x\n")
    with pytest.warns(UserWarning, match="not a model; ignored"):
        assert active_ref(root) is None
    for ref in ("..", "a..b", "x@..", "linear@a/b", "-rf", "name\\x"):
        with pytest.raises(ModelError, match="not a model name"):
            resolve(ref, root)
    outside = tmp_path_factory.mktemp("elsewhere") / "model"
    shutil.copytree(c.path, outside)
    (root / "other" / "linked00").symlink_to(outside)
    with pytest.raises(ModelError, match="outside the model registry"):
        resolve("other@linked00", root)
    victim = tmp_path_factory.mktemp("victim") / "unrelated.sqlite"
    meta = json.loads((b.path / "meta.json").read_text())
    (b.path / "meta.json").write_text(json.dumps({**meta, "params": {**meta["params"], "cache": str(victim)}}))
    tagger, info = load_model(b.ref, codebook, folder=root)
    assert info.ref == b.ref and getattr(tagger, "cache", None) != str(victim) and not victim.exists()
