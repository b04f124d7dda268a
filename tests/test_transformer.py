"""The transformer tier on a tiny, fixed subset of the seed annotations (one epoch, 64 tokens, 5 of 6 layers
frozen, fp32 so that results compare exactly): training, safe storage, length-bucketed batches in input order,
evidence sentences, the int8 path and parameter checks. Shapes, fitted state, empty input and the save/load round
trip are checked for every tier in test_tagger_contract.py."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from nlp.annotations import Annotation, label_matrix
from nlp.models import load_model, save_model
from nlp.pipeline import DocumentTagger
from nlp.schema import Document
from nlp.taggers import get_tagger_class
from nlp.taggers.transformer import WEIGHTS_FILE, TransformerTagger
from nlp.taggers.transformer_training import frozen_features, top_logits, validation_split
from nlp.text import Passage
from nlp.training import annotation_units


REPO = Path(__file__).resolve().parents[1]
N_UNITS = 36
TINY = dict(epochs=1, max_tokens=64, freeze_layers=5, batch_size=8, predict_batch_size=16, validation=0.25,
            precision="fp32", seed=0)
SAFE_SUFFIXES = {".safetensors", ".json", ".txt"}
UNSAFE_SUFFIXES = {".pt", ".pth", ".bin", ".pkl", ".pickle", ".joblib", ".ckpt", ".npy", ".npz", ".skops"}


@pytest.fixture(scope="module")
def tiny_data(codebook, processor, seed_rows):
    """The first 36 seed units: their passages and label matrices."""
    rows = seed_rows[:N_UNITS]
    anns = [Annotation(r["id"], r["text"], {a: r[a] for a in codebook.axis_names}, r.get("title", ""),
                       r.get("sample", "")) for r in rows]
    return annotation_units(anns, processor), label_matrix(anns, codebook), [r["text"] for r in rows]


@pytest.fixture(scope="module")
def trained(codebook, tiny_data):
    units, y, _ = tiny_data
    messages: list[str] = []
    tagger = TransformerTagger(codebook, progress=messages.append, **TINY).fit(units, y)
    return tagger, messages


@pytest.fixture(scope="module")
def passages(tiny_data):
    units, _, _ = tiny_data
    return [p for unit in units for p in unit]


def test_registered_and_import_is_cheap():
    """Registered by importing nlp.taggers; torch, transformers, datasets and safetensors are imported only inside
    functions, so neither the module's top level nor its training loop's imports any of them."""
    assert get_tagger_class("transformer") is TransformerTagger
    for module in ("transformer.py", "transformer_training.py"):
        tree = ast.parse((REPO / "nlp" / "taggers" / module).read_text(encoding="utf-8"))
        top = set()
        for node in tree.body:
            if isinstance(node, ast.Import):
                top.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                top.add(node.module.split(".")[0])
        assert not top & {"torch", "transformers", "datasets", "safetensors", "tokenizers"}, (module, top)


def test_fit_reports_progress(trained):
    tagger, messages = trained
    text = "\n".join(messages)
    assert "epoch 1/1" in text and "loss" in text and "validation micro-F1" in text
    assert len(tagger.history_) == 1 and np.isfinite(tagger.history_[0]["loss"])


def test_fit_leaves_the_shared_encoder_untouched(trained):
    from safetensors.torch import load_file

    from nlp.encoder import encoder_path, load_encoder

    tagger, _ = trained
    original = load_file(str(encoder_path() / "model.safetensors"))
    cached = load_encoder()[1].state_dict()
    name = "encoder.layer.5.attention.self.query.weight"  # a trained layer
    key = next(k for k in original if k.endswith(name))
    assert np.array_equal(cached[name].numpy(), original[key].numpy())
    assert not np.array_equal(tagger.encoder_.state_dict()[name].numpy(), original[key].numpy())


def test_cached_frozen_layers_give_the_full_model_output(trained, passages):
    """Training runs the upper layers on cached outputs of the frozen ones: the same logits as the whole model."""
    import torch

    tagger, _ = trained
    sample = passages[:6]
    ids = [torch.tensor(x) for x in tagger._tokenize([p.text for p in sample])]
    device = torch.device("cpu")
    feats = frozen_features(tagger, tagger.encoder_, ids, device, use_bf16=False)
    assert [f.shape for f in feats] == [(len(x), 384) for x in ids]
    cached = top_logits(tagger, tagger.encoder_, tagger.head_, feats, device, use_bf16=False)
    np.testing.assert_allclose(cached, tagger._logits([p.text for p in sample]), atol=1e-4, rtol=0)
    assert len(tagger.encoder_.encoder.layer) == 6 and hasattr(tagger.encoder_.embeddings, "word_embeddings")


def test_saved_model_holds_safe_formats_only(trained, tmp_path):
    """(The save/load round trip itself is in test_tagger_contract.py.)"""
    tagger, _ = trained
    save_model(tagger, "tiny-transformer", folder=tmp_path)
    # the model folder holds no pickle-able formats at all; the tagger's own files are safetensors/json/txt
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files and not {p.suffix for p in files} & UNSAFE_SUFFIXES
    state = tmp_path / "state"
    state.mkdir()
    tagger.save_state(state)
    names = {p.name for p in state.iterdir()}
    assert {WEIGHTS_FILE, "config.json", "tokenizer.json", "vocab.txt"} <= names
    assert {p.suffix for p in state.iterdir()} <= SAFE_SUFFIXES


@pytest.mark.parametrize("config_file", ["config.json", "tokenizer_config.json"])
def test_a_model_folder_that_asks_to_run_its_own_code_is_refused(trained, tmp_path, codebook, config_file,
                                                                   monkeypatch):
    """A config naming code of its own (``auto_map`` and a Python file beside the weights) is refused before
    transformers reads it: no prompt, and answering "y" on stdin runs nothing."""
    import io
    import json

    from nlp.models import ModelError, load_model

    tagger, _ = trained
    info = save_model(tagger, "remote", folder=tmp_path)
    marker = tmp_path / "ran"
    (info.path / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n", encoding="utf-8")
    target = info.path / config_file
    data = json.loads(target.read_text(encoding="utf-8")) if target.exists() else {}
    data["auto_map"] = {"AutoConfig": "evil.Config", "AutoModel": "evil.Model", "AutoTokenizer": ["evil.Tok", None]}
    target.write_text(json.dumps(data), encoding="utf-8")
    monkeypatch.setattr("sys.stdin", io.StringIO("y\ny\ny\n"))
    with pytest.raises(ModelError, match="run its own code"):
        load_model(info.ref, codebook, folder=tmp_path)
    assert not marker.exists()
    (info.path / config_file).write_text(json.dumps({k: v for k, v in data.items() if k != "auto_map"}),
                                         encoding="utf-8")
    with pytest.raises(ModelError, match="Python files"):  # a stray .py beside the weights is refused too
        load_model(info.ref, codebook, folder=tmp_path)
    assert not marker.exists()


def test_weights_file_is_plain_safetensors(trained, tmp_path, codebook):
    from safetensors import safe_open

    tagger, _ = trained
    tagger.save_state(tmp_path)
    n_labels = sum(len(v) for v in codebook.label_sets().values())
    with safe_open(str(tmp_path / WEIGHTS_FILE), framework="np") as fh:
        keys = set(fh.keys())
        assert fh.get_tensor("head.linear.weight").shape == (n_labels, 384)
    assert any(k.startswith("encoder.encoder.layer.5.") for k in keys)


def test_length_bucketing_returns_input_order(trained, passages):
    tagger, _ = trained
    sample = passages[:20]
    assert len({len(p.text) for p in sample}) > 5  # lengths differ: sorting really reorders them
    try:
        tagger.set_params(predict_batch_size=1)
        one = tagger.passage_proba(sample)
        tagger.set_params(predict_batch_size=8)
        eight = tagger.passage_proba(sample)
        reverse = tagger.passage_proba(sample[::-1])
    finally:
        tagger.set_params(predict_batch_size=TINY["predict_batch_size"])
    for axis in one:
        np.testing.assert_allclose(eight[axis], one[axis], atol=1e-5, rtol=0)
        np.testing.assert_allclose(reverse[axis][::-1], one[axis], atol=1e-5, rtol=0)


def test_sliding_windows_read_a_long_passage_whole_and_score_its_best_window(trained, passages):
    """With ``stride``, a passage past ``max_tokens`` is read as overlapping windows (nothing truncated) and scores
    the max over them; a short passage scores as without windows."""
    tagger, _ = trained
    long = max(passages, key=lambda p: len(p.text))
    short = Passage(0, 0, 43, [], "The Mayor of Lyon met the Consul of Japan.")
    pieces = len(tagger.tokenizer_(long.text, add_special_tokens=False, verbose=False)["input_ids"])
    assert pieces > 3 * TINY["max_tokens"]
    plain = tagger.passage_proba([long, short])
    try:
        tagger.set_params(stride=31)
        texts, owner = tagger._windows([long.text, short.text])
        width = TINY["max_tokens"] - 2
        assert owner.tolist() == [0] * (len(texts) - 1) + [1] and texts[-1] == short.text
        windows = texts[:-1]
        assert len(windows) == 1 + -(-(pieces - width) // 31)  # one every 31 pieces, the last ending with the text
        assert windows[0] == long.text[:len(windows[0])] and long.text.rstrip().endswith(windows[-1])
        # none is truncated (a window cut inside a word may read its first piece as a word of its own: +2 at most)
        assert all(len(tagger.tokenizer_(w, add_special_tokens=False, verbose=False)["input_ids"]) <= width + 2
                   for w in windows)
        for a, b in zip(windows, windows[1:]):  # consecutive windows overlap
            assert a[-20:] in long.text and long.text.index(b) < long.text.index(a) + len(a)
        windowed = tagger.passage_proba([long, short])
        alone = tagger._split_axes(1 / (1 + np.exp(-tagger._logits(windows))))
    finally:
        tagger.set_params(stride=0)
    for axis in windowed:
        np.testing.assert_allclose(windowed[axis][0], alone[axis].max(0), atol=1e-6, rtol=0)
        np.testing.assert_allclose(windowed[axis][1], plain[axis][1], atol=1e-6, rtol=0)
        assert not np.allclose(windowed[axis][0], plain[axis][0])  # the rest of the passage was read


def test_a_fit_with_sliding_windows_trains_on_every_window(codebook, tiny_data, trained, tmp_path):
    units, y, _ = tiny_data
    messages: list[str] = []
    params = {**TINY, "stride": 48}
    tagger = TransformerTagger(codebook, progress=messages.append, **params).fit(units, y)
    n_passages = sum(len(u) for u in units)
    counts = [int(m.split(" training passages")[0].split()[-1]) for m in messages if "training passages" in m]
    plain = [int(m.split(" training passages")[0].split()[-1]) for m in trained[1] if "training passages" in m]
    assert counts and plain and counts[0] > plain[0]  # more examples: the windows of the long passages
    assert tagger.get_params()["stride"] == 48 and plain[0] <= n_passages
    some = [p for u in units[:3] for p in u]
    proba = tagger.passage_proba(some)
    assert all(np.isfinite(v).all() and ((v >= 0) & (v <= 1)).all() for v in proba.values())
    # the model keeps reading in windows once saved and loaded from the registry
    info = save_model(tagger, "windowed", folder=tmp_path)
    back, _ = load_model(info.ref, codebook, folder=tmp_path)
    assert back.get_params()["stride"] == 48
    for axis, scores in back.passage_proba(some).items():
        np.testing.assert_allclose(scores, proba[axis], atol=1e-5, rtol=0)


def test_sentence_contributions_score_each_sentence_alone(trained, passages, codebook):
    tagger, _ = trained
    sample = passages[:4]
    for axis, labels in codebook.label_sets().items():
        contrib = tagger.sentence_contributions(sample, axis)
        assert [c.shape for c in contrib] == [(len(p.sentences), len(labels)) for p in sample]
    # the documented rule: a sentence's score alone minus the score of an empty input
    p = sample[0]
    s = p.sentences[0]
    alone = Passage(0, s.start, s.end, [s], p.text[s.start - p.start : s.end - p.start])
    empty = Passage(0, 0, 0, [], "")
    expected = tagger.passage_proba([alone])["functions"][0] - tagger.passage_proba([empty])["functions"][0]
    np.testing.assert_allclose(tagger.sentence_contributions([p], "functions")[0][0], expected, atol=1e-5)
    assert tagger.sentence_contributions([], "functions") == []


def test_evidence_sentences_are_sentences_of_the_passage(trained, processor, tiny_data):
    tagger, _ = trained
    _, _, texts = tiny_data
    old = tagger.thresholds_
    tagger.thresholds_ = {axis: np.zeros_like(th) for axis, th in old.items()}  # select every label
    try:
        tagged = list(DocumentTagger(tagger, processor).tag([Document(id=f"d{i}", text=t)
                                                             for i, t in enumerate(texts[:3])]))
    finally:
        tagger.thresholds_ = old
    checked = 0
    for doc in tagged:
        for label, sentences in doc.evidence.items():
            assert sentences
            real = [doc.doc.text[s.start : s.end].strip() for p in doc.passages for s in p.sentences]
            for sentence in sentences:  # as the document has it, clipped with "…" if very long
                assert any(sentence == r or (sentence.endswith("…") and r.startswith(sentence[:-1]))
                           for r in real), (label, sentence)
                checked += 1
    assert checked >= 20


def test_int8_and_bf16_paths_stay_close_to_fp32(trained, passages):
    tagger, _ = trained
    sample = passages[:12]
    base = tagger.passage_proba(sample)
    try:
        tagger.set_params(quantize=True)
        int8 = tagger.passage_proba(sample)
        tagger.set_params(quantize=False, precision="bf16")
        bf16 = tagger.passage_proba(sample)
    finally:
        tagger.set_params(quantize=False, precision="fp32")
    for axis in base:
        assert int8[axis].shape == base[axis].shape
        assert np.abs(int8[axis] - base[axis]).max() < 0.1
        assert np.abs(bf16[axis] - base[axis]).max() < 0.1
    again = tagger.passage_proba(sample)  # back to fp32: the cached int8 encoder is dropped
    for axis in base:
        np.testing.assert_allclose(again[axis], base[axis], atol=1e-6, rtol=0)


@pytest.mark.parametrize("bad", [
    dict(epochs=0), dict(epochs=1.5), dict(lr=0), dict(lr=-1e-4), dict(batch_size=0), dict(max_tokens=1000),
    dict(max_tokens=4), dict(freeze_layers=-1), dict(validation=1.0), dict(validation=-0.1), dict(dropout=1.0),
    dict(patience=-1), dict(max_pos_weight=0.5), dict(device="tpu"), dict(precision="fp16"), dict(quantize="yes"),
    dict(seed=-1), dict(warmup=float("nan")), dict(stride=-1), dict(max_tokens=64, stride=63),
])
def test_bad_params_raise_value_error(codebook, bad):
    with pytest.raises(ValueError):
        TransformerTagger(codebook, **bad)


def test_set_params_checks_and_keeps_old_values(codebook):
    tagger = TransformerTagger(codebook)
    with pytest.raises(ValueError):
        tagger.set_params(epochs=0)
    assert tagger.epochs == 4
    with pytest.raises(ValueError):
        tagger.set_params(no_such_param=1)


def test_fit_refuses_bad_input(codebook, tiny_data):
    units, y, _ = tiny_data
    with pytest.raises(ValueError):
        TransformerTagger(codebook, **TINY).fit(units[:1], {a: v[:1] for a, v in y.items()})
    with pytest.raises(ValueError, match="freeze_layers"):
        TransformerTagger(codebook, **{**TINY, "freeze_layers": 7}).fit(units, y)


def test_validation_split_keeps_a_positive_of_every_label_in_training():
    rng = np.random.default_rng(1)
    Y = (rng.random((60, 8)) < 0.08).astype(int)
    Y[:, 7] = 0
    Y[[3, 4], 7] = 1  # a label with two positive units
    for seed in range(20):
        train, val = validation_split(Y, 0.3, seed)
        assert sorted(np.r_[train, val].tolist()) == list(range(60)) and not set(train) & set(val)
        assert 14 <= len(val) <= 18
        has = Y.sum(0) > 0
        assert (Y[train].sum(0) > 0)[has].all()
    assert np.array_equal(validation_split(Y, 0.3, 5)[1], validation_split(Y, 0.3, 5)[1])
    train, val = validation_split(Y, 0.0, 0)
    assert len(val) == 0 and len(train) == 60
