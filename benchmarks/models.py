#!/usr/bin/env python
"""Model tiers compared: quality (held-out split and 5-fold CV), training time, inference speed, peak memory.

    .venv/bin/python benchmarks/models.py [--tiers lexicon,linear,embedding,ensemble,transformer,spacy]
        [--cv-tiers lexicon,linear,embedding,ensemble,spacy] [--docs 300] [--threads 2] [--out benchmarks/RESULTS.md]

Tiers: cdpd's ``lexicon``, ``linear``, ``embedding``, ``ensemble`` and ``transformer`` taggers with their default
parameters, and ``spacy``: spaCy's own ``textcat_multilabel``, the peer a user would pick instead (see
:func:`fit_spacy`).

What it measures, per tier, each phase in a fresh subprocess (this script re-invoking itself with ``--worker``)
so that memory peaks and thread settings do not mix:

* **held-out**: fitted on the training part of the fixed split ``heldout_split(annotations)`` over both shipped
  annotation rounds (1,780 of 2,244 units: every unit of the documents not held out), scored on its 464 held-out
  units (drawn at random or by cue from a quarter of the documents) as documents (passages aggregated by max);
  micro P/R/F1 and macro F1 per axis, overall and **per source**, and the **false-label rate on empty units** (of the
  units annotated with no label on an axis, the share given one: on functions, domestic business tagged as
  diplomacy). Training time is the ``fit`` call (the spaCy processing of the units into passages,
  ~4 s, is shared by all cdpd tiers and left out; spaCy's textcat tokenizes inside its fit). Peak RSS: the
  process's ``ru_maxrss`` (spaCy pipeline, data and model included).
* **5-fold CV**: :func:`nlp.training.cross_validate` on all 2,244 units (iteratively stratified folds grouped by
  document, ``stratified_folds(y, 5, seed=0, groups)``; keyword-enriched units included, so lower than held-out);
  spaCy's textcat on the same folds. The transformer is left out by default (five fits of ~15 min on 2 CPU cores); ``--cv-tiers``
  chooses.
* **inference**: the saved model loaded in a new process and run end to end (``DocumentTagger.tag``: spaCy,
  passages, every axis, thresholds, evidence) over ``--docs`` documents drawn with a fixed seed from
  ``corpora/*.parquet`` (as benchmarks/tagging.py draws them), after a warm-up on 16 other documents; ``--threads``
  BLAS/OpenMP/torch threads, the process pinned to that many CPUs, device forced to the CPU. spaCy's textcat runs
  ``nlp.pipe`` over the same texts (whole documents: no passages, no evidence). Where ``torch.cuda.is_available()``,
  the torch tiers are run once more on the GPU; otherwise the GPU column says so.
* **embeddings**: the embedding and ensemble tiers read MiniLM embeddings from a cache (``--cache``; a fresh file in
  a temporary folder by default). Encoding every seed passage and label prototype into it is timed once, first
  (``encode``); their fits then read the cache, as a retrain does. Inference embeds without a cache (new text).
* **retrain**: ``cdpd train --model linear`` and ``--model embedding`` as a user runs them (seed annotations, a
  new workspace whose embedding cache holds the seed passages), wall-clock time of the whole command.

The console gets the tables; ``--out`` gets a ``## Models (benchmarks/models.py)`` section, written with
benchmarks/tagging.py's section writer (only that section is replaced).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import tagging as _tagging  # noqa: E402  (sets thread variables to 1 on import; main() sets them again)
from _results import publish  # noqa: E402

SECTION = "## Models (benchmarks/models.py)"
TIERS = ("lexicon", "linear", "embedding", "ensemble", "transformer", "spacy")
TORCH_TIERS = ("embedding", "ensemble", "transformer")
EMBEDDING_TIERS = ("embedding", "ensemble")
CV_SKIPPED = {"transformer": "not run by default: five fits of ~15 min each on 2 CPU cores (over an hour); "
                             "`--cv-tiers` with transformer runs it"}
WARMUP_DOCS = 16
GOALS = [  # (key, description, target) on the best tier by held-out functions micro-F1 (issue 13)
    ("functions_micro", "best tier: functions micro-F1 (held-out)", 0.85),
    ("functions_macro", "best tier: functions macro-F1 (held-out)", 0.70),
    ("domains_micro", "best tier: domains micro-F1 (held-out)", 0.90),
    ("ccc", "best tier: functions micro-F1 on climate-city contracts (held-out)", 0.75),
    ("nyc_council", "best tier: functions micro-F1 on NYC Council (held-out)", 0.75),
    ("white_house", "best tier: functions micro-F1 on White House (held-out)", 0.75),
    ("false_on_empty", "best tier: share of no-function units given a function (held-out)", -0.05),
    ("retrain_linear", "`cdpd train --model linear` on the shipped annotations (s)", 60.0),
    ("retrain_embedding", "`cdpd train --model embedding`, embeddings cached (s)", 60.0),
]


def set_threads(n: int) -> None:
    for var in _tagging.THREAD_VARS:
        os.environ[var] = "false" if var == "TOKENIZERS_PARALLELISM" else str(n)


def pin(n: int) -> list[int] | None:
    """Pin this process to ``n`` of the CPUs it may use (the lowest ones); None without affinity calls."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))[:n]
    os.sched_setaffinity(0, set(cpus))
    return cpus


# -- data -----------------------------------------------------------------------------------------------------------
def load_data():
    from nlp.annotations import heldout_split, label_matrix, read_seed_annotations
    from nlp.codebook import load_codebook

    codebook = load_codebook()
    annotations = read_seed_annotations(codebook)
    return codebook, annotations, label_matrix(annotations, codebook), heldout_split(annotations)


def unit_texts(annotations) -> list[str]:
    from nlp.pipeline import text_for_tagging
    from nlp.schema import Document

    return [text_for_tagging(Document(id=a.id, text=a.text, title=a.title)) for a in annotations]


def summary(report: dict) -> dict:
    keys = ("micro", "macro_f1", "empty_units", "false_on_empty", "by_source")
    return {axis: {k: r[k] for k in keys if k in r} for axis, r in report.items()}


# -- spaCy's textcat_multilabel, the peer ----------------------------------------------------------------------------
SPACY_EPOCHS = 20
SPACY_PATIENCE = 3


def spacy_label(axis: str, label: str) -> str:
    return f"{axis}/{label}"


def fit_spacy(texts: list[str], Y: dict, codebook, *, seed: int = 0, log=print):
    """spaCy's ``textcat_multilabel`` from ``spacy.blank("en")``, one component over both axes (labels prefixed with
    their axis), its default model (``spacy.TextCatEnsemble.v2``: a Tok2Vec with hash embeddings and a maxout window
    encoder, next to a bag-of-words linear model; no pretrained vectors), trained as ``spacy train``'s default config
    trains (Adam, learn rate 0.001, L2 0.01 as weight decay, gradient clip 1.0, dropout 0.1, batches by words
    compounding from 100 to 1,000).

    15% of the units are kept for validation (the transformer tier's split: every label with two or more positives
    keeps one in training): after each epoch they are scored; the epoch with the best micro-F1 at thresholds tuned on
    them is kept (at most 20 epochs, stopping after 3 without improvement), and its per-label F1-optimal thresholds
    on the validation units are the model's thresholds. Returns (nlp, thresholds per axis, history).
    """
    import numpy as np
    import spacy
    from spacy.training import Example
    from spacy.training.batchers import minibatch_by_words
    from thinc.api import Adam, compounding, fix_random_seed

    from nlp.metrics import axis_report, tune_thresholds
    from nlp.taggers.transformer_training import validation_split

    fix_random_seed(seed)
    axes = list(codebook.axis_names)
    names = [spacy_label(axis, lab) for axis in axes for lab in codebook.labels(axis)]
    Yall = np.hstack([np.asarray(Y[axis]) for axis in axes])
    train_idx, val_idx = validation_split(Yall, 0.15, seed)
    nlp = spacy.blank("en")
    textcat = nlp.add_pipe("textcat_multilabel")
    for name in names:
        textcat.add_label(name)

    def example(i):
        return Example.from_dict(nlp.make_doc(texts[i]), {"cats": {n: float(v) for n, v in zip(names, Yall[i])}})

    train_examples = [example(i) for i in train_idx]
    nlp.initialize(lambda: train_examples)
    optimizer = Adam(learn_rate=0.001, L2=0.01, L2_is_weight_decay=True, grad_clip=1.0, use_averages=False)
    sizes = compounding(100.0, 1000.0, 1.001)
    val_texts = [texts[i] for i in val_idx]
    Yval = Yall[val_idx]
    rng = np.random.default_rng(seed)
    best = (-1.0, 0, None, None)
    history = []
    for epoch in range(1, SPACY_EPOCHS + 1):
        order = rng.permutation(len(train_examples))
        losses: dict = {}
        for batch in minibatch_by_words([train_examples[i] for i in order], size=sizes, tolerance=0.2,
                                        discard_oversize=False):
            nlp.update(batch, drop=0.1, sgd=optimizer, losses=losses)
        scores = spacy_scores(nlp, val_texts, names)
        thresholds = tune_thresholds(Yval, scores)
        f1 = axis_report(Yval, scores >= thresholds, names)["micro"]["f1"]
        history.append({"epoch": epoch, "loss": float(losses.get("textcat_multilabel", 0.0)), "val_micro_f1": f1})
        log(f"spacy epoch {epoch}: loss {history[-1]['loss']:.3f}, validation micro-F1 {f1:.3f}")
        if f1 > best[0]:
            best = (f1, epoch, nlp.get_pipe("textcat_multilabel").to_bytes(), thresholds)
        elif epoch - best[1] >= SPACY_PATIENCE:
            break
    nlp.get_pipe("textcat_multilabel").from_bytes(best[2])
    offsets = np.cumsum([0] + [len(codebook.labels(axis)) for axis in axes])
    thresholds = {axis: best[3][offsets[k]: offsets[k + 1]] for k, axis in enumerate(axes)}
    return nlp, thresholds, {"epochs": history, "best_epoch": best[1], "n_train": len(train_idx),
                             "n_validation": len(val_idx)}


def spacy_scores(nlp, texts: list[str], names: list[str], batch_size: int = 128):
    import numpy as np

    return np.array([[doc.cats[n] for n in names] for doc in nlp.pipe(texts, batch_size=batch_size)]).reshape(
        len(texts), len(names))


def spacy_predict(nlp, thresholds: dict, texts: list[str], codebook) -> dict:
    names = [spacy_label(axis, lab) for axis in codebook.axis_names for lab in codebook.labels(axis)]
    scores = spacy_scores(nlp, texts, names)
    out, start = {}, 0
    for axis in codebook.axis_names:
        k = len(codebook.labels(axis))
        out[axis] = scores[:, start: start + k] >= thresholds[axis]
        start += k
    return out


# -- workers --------------------------------------------------------------------------------------------------------
def _log(tag: str, msg: str) -> None:
    print(f"  [{tag}] {msg}", file=sys.stderr, flush=True)


def tier_params(args, tier: str) -> dict:
    return {"cache": args.cache} if tier in EMBEDDING_TIERS else {}


def worker_encode(args) -> dict:
    """Embed every seed passage and every label prototype text into the cache, timed."""
    import time

    from nlp.embeddings import EmbeddingCache
    from nlp.taggers.embedding import EmbeddingTagger
    from nlp.text import TextProcessor
    from nlp.training import annotation_units

    codebook, annotations, _, _ = load_data()
    units = annotation_units(annotations, TextProcessor(codebook))
    texts = [p.text for u in units for p in u]
    t0 = time.perf_counter()
    with EmbeddingCache(args.cache) as cache:
        cache.get_or_compute(texts)
        hits, misses = cache.hits, cache.misses
    EmbeddingTagger(codebook, cache=args.cache)._prototype_vectors()
    seconds = time.perf_counter() - t0
    _log("encode", f"{len(texts)} passages ({misses} encoded, {hits} cached) and label prototypes in {seconds:.1f}s")
    return {"passages": len(texts), "encoded": misses, "cached": hits, "seconds": seconds}


def worker_heldout(args) -> dict:
    """Fit on the training part of the split, score the held-out units, save the model for the inference worker."""
    import time

    from nlp.annotations import source_of
    from nlp.models import save_model
    from nlp.taggers import get_tagger_class
    from nlp.text import TextProcessor
    from nlp.training import annotation_units, evaluate_tagger

    tier = args.tier
    codebook, annotations, y, (train_idx, test_idx) = load_data()
    sub = lambda idx: {a: v[idx] for a, v in y.items()}  # noqa: E731
    out: dict = {"n_train": len(train_idx), "n_test": len(test_idx)}
    if tier == "spacy":
        from nlp.metrics import axis_report

        texts = unit_texts(annotations)
        t0 = time.perf_counter()
        nlp, thresholds, history = fit_spacy([texts[i] for i in train_idx], sub(train_idx), codebook,
                                             log=lambda m: _log(tier, m))
        out["fit_s"] = time.perf_counter() - t0
        pred = spacy_predict(nlp, thresholds, [texts[i] for i in test_idx], codebook)
        sources = [source_of(annotations[i]) for i in test_idx]
        out["heldout"] = summary({axis: axis_report(sub(test_idx)[axis], pred[axis], codebook.labels(axis), sources)
                                  for axis in codebook.axis_names})
        out["history"] = history
        folder = Path(args.model_dir) / "spacy"
        nlp.to_disk(folder)
        (folder / "thresholds.json").write_text(
            __import__("json").dumps({a: [float(t) for t in th] for a, th in thresholds.items()}))
    else:
        units = annotation_units(annotations, TextProcessor(codebook))
        cls = get_tagger_class(tier)
        tagger = cls(codebook, **tier_params(args, tier))
        out["params"] = tagger.get_params()
        t0 = time.perf_counter()
        fit_sources = {"sources": [source_of(annotations[i]) for i in train_idx]} if cls.fit_takes_sources else {}
        # as `cdpd train` fits (sources for source_balance); the lexicon's learns nothing: its thresholds
        tagger.fit([units[i] for i in train_idx], sub(train_idx), **fit_sources)
        out["fit_s"] = time.perf_counter() - t0 if cls.trainable else 0.0
        out["heldout"] = summary(evaluate_tagger(tagger, [units[i] for i in test_idx], sub(test_idx), codebook,
                                                 [source_of(annotations[i]) for i in test_idx]))
        if getattr(tagger, "history_", None):
            out["history"] = tagger.history_
        if cls.trainable:
            save_model(tagger, tier, training={"n_units": len(train_idx)}, folder=Path(args.model_dir))
    out["peak_rss"] = _tagging.maxrss_bytes()
    q = out["heldout"]
    _log(tier, f"fitted in {out['fit_s']:.1f}s; held-out " + "; ".join(
        f"{axis} micro-F1 {r['micro']['f1']:.3f} macro-F1 {r['macro_f1']:.3f}" for axis, r in q.items()))
    return out


def worker_infer(args) -> dict:
    """End-to-end tagging of ``--docs`` corpus documents on ``--device``, timed after a warm-up."""
    import time

    tier, device = args.tier, args.device
    docs, _, _ = _tagging.sample_documents(args.docs + WARMUP_DOCS, args.seed)
    warm, docs = docs[:WARMUP_DOCS], docs[WARMUP_DOCS:]
    from nlp.codebook import load_codebook
    from nlp.pipeline import text_for_tagging

    codebook = load_codebook()
    texts = [text_for_tagging(d) for d in docs]
    out: dict = {"docs": len(docs), "device": device}
    if tier == "spacy":
        import json

        import spacy

        if device == "cuda" and not spacy.prefer_gpu():
            return {"skipped": "spaCy finds no GPU (cupy is not installed)"}
        folder = Path(args.model_dir) / "spacy"
        nlp = spacy.load(folder)
        thresholds = json.loads((folder / "thresholds.json").read_text())
        names = [spacy_label(axis, lab) for axis in codebook.axis_names for lab in codebook.labels(axis)]
        spacy_scores(nlp, [text_for_tagging(d) for d in warm], names)
        t0 = time.perf_counter()
        spacy_predict(nlp, thresholds, texts, codebook)
        seconds = time.perf_counter() - t0
        out["passages"] = None
    else:
        import torch  # noqa: F401  (loaded by every torch tier; imported here so its threads follow --threads)

        from nlp.models import load_model
        from nlp.pipeline import DocumentTagger
        from nlp.text import TextProcessor

        if tier == "lexicon":
            tagger, _ = load_model("lexicon", codebook, folder=Path(args.model_dir))
        else:
            tagger, _ = load_model(tier, codebook, folder=Path(args.model_dir))
        if tier in ("embedding", "ensemble"):
            tagger.set_params(device=device, cache=None)  # new documents: nothing cached
        elif tier == "transformer":
            tagger.set_params(device=device)
        runner = DocumentTagger(tagger, TextProcessor(codebook))
        list(runner.tag(warm))
        t0 = time.perf_counter()
        passages = sum(len(t.passages) for t in runner.tag(docs, batch_size=128))
        seconds = time.perf_counter() - t0
        out["passages"] = passages
    import torch

    out.update(seconds=seconds, docs_per_s=len(docs) / seconds, peak_rss=_tagging.maxrss_bytes(),
               torch_threads=torch.get_num_threads())
    if out["passages"]:
        out["passages_per_s"] = out["passages"] / seconds
    if device == "cuda":
        out["gpu"] = torch.cuda.get_device_name(0)
        out["gpu_peak_bytes"] = torch.cuda.max_memory_allocated()
    _log(tier, f"{device}: {out['docs_per_s']:.1f} docs/s ({len(docs)} docs in {seconds:.1f}s)")
    return out


def worker_cv(args) -> dict:
    import time

    from nlp.annotations import document_key, source_of, stratified_folds
    from nlp.metrics import axis_report

    tier = args.tier
    codebook, annotations, y, _ = load_data()
    groups = [document_key(a) for a in annotations]
    t0 = time.perf_counter()
    if tier == "spacy":
        import numpy as np

        texts = unit_texts(annotations)
        pred = {axis: np.zeros_like(v) for axis, v in y.items()}
        for n, (train_idx, test_idx) in enumerate(stratified_folds(y, 5, 0, groups), 1):
            nlp, thresholds, _ = fit_spacy([texts[i] for i in train_idx], {a: v[train_idx] for a, v in y.items()},
                                           codebook, log=lambda m: None)
            fold = spacy_predict(nlp, thresholds, [texts[i] for i in test_idx], codebook)
            for axis in y:
                pred[axis][test_idx] = fold[axis]
            _log(tier, f"CV fold {n}/5 done ({time.perf_counter() - t0:.0f}s)")
        report = {axis: axis_report(y[axis], pred[axis], codebook.labels(axis), [source_of(a) for a in annotations])
                  for axis in codebook.axis_names}
    else:
        from nlp.training import cross_validate

        report = cross_validate(annotations, codebook, tagger=tier, params=tier_params(args, tier), k=5, seed=0,
                                progress=lambda m: _log(tier, m), cache=args.cache)
    out = {"cv": summary(report), "seconds": time.perf_counter() - t0, "n_units": len(annotations)}
    _log(tier, f"5-fold CV in {out['seconds']:.0f}s: " + "; ".join(
        f"{axis} micro-F1 {r['micro']['f1']:.3f}" for axis, r in out["cv"].items()))
    return out


def worker_retrain(args) -> dict:
    """``cdpd train --model linear|embedding`` as a user runs it, in a new workspace; wall-clock time."""
    import shutil
    import subprocess
    import tempfile
    import time

    from nlp.embeddings import CACHE_FILE

    out = {}
    with tempfile.TemporaryDirectory(prefix="cdpd-retrain-") as tmp:
        home, models = Path(tmp) / "workspace", Path(tmp) / "models"
        home.mkdir()
        if Path(args.cache).exists():
            shutil.copyfile(args.cache, home / CACHE_FILE)  # a workspace whose cache holds the seed passages
        env = dict(os.environ, CDPD_HOME=str(home), CDPD_MODELS=str(models))
        for tier in ("linear", "embedding"):
            cmd = [sys.executable, "-m", "nlp", "train", "--model", tier, "-q"]
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
            out[tier] = time.perf_counter() - t0
            _log("retrain", f"cdpd train --model {tier}: {out[tier]:.1f}s")
    return out


WORKERS = {"encode": worker_encode, "heldout": worker_heldout, "infer": worker_infer, "cv": worker_cv,
           "retrain": worker_retrain}


# -- driver ---------------------------------------------------------------------------------------------------------
def run_worker(args, phase: str, tier: str, tmp: Path, device: str = "cpu") -> dict:
    import json
    import subprocess
    import time

    json_path = tmp / f"{phase}-{tier}-{device}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", phase, "--tier", tier, "--device", device,
           "--docs", str(args.docs), "--seed", str(args.seed), "--threads", str(args.threads),
           "--model-dir", str(tmp / "models"), "--cache", args.cache, "--json", str(json_path)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        print(f"[{phase} {tier}] FAILED (exit {proc.returncode}) after {wall:.0f}s", file=sys.stderr)
        return {"failed": f"exit status {proc.returncode}"}
    print(f"[{phase} {tier} {device}] done in {wall:.0f}s", file=sys.stderr)
    result = json.loads(json_path.read_text())
    result["wall_s"] = wall
    return result


def fmt_s(seconds: float) -> str:
    if seconds < 100:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def render(args, mach: dict, results: dict, encode: dict | None, retrain: dict | None, gpu: str | None) -> str:
    import datetime as dt

    from nlp.codebook import load_codebook

    axes = list(load_codebook().axis_names)
    table = _tagging.table
    now = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    v = mach["versions"]
    out = [SECTION, ""]
    out.append(f"Run {now} with `python benchmarks/models.py --tiers {','.join(args.tiers)} --cv-tiers "
               f"{','.join(args.cv_tiers) or '-'} --docs {args.docs} --threads {args.threads}` at git {mach['git']}.  ")
    out.append(f"Machine: {mach['nproc']} cores, {mach['cpu']}, Python {mach['python']}; spaCy {v.get('spacy')}, "
               f"scikit-learn {v.get('sklearn')}, torch {mach.get('torch')}. Load average (1 min) "
               f"{mach['loadavg_start'][0]:.2f} at the start, {mach['loadavg_end'][0]:.2f} at the end: other "
               "processes shared these cores and slow every timing here alike.")
    out.append("")
    any_tier = next((r for r in results.values() if "heldout" in r), {})
    n_train, n_test = any_tier.get("heldout", {}).get("n_train", "?"), any_tier.get("heldout", {}).get("n_test", "?")
    out.append(f"- **Held-out**: each tier fitted with default parameters on the {n_train} training units of the "
               f"fixed split `heldout_split(annotations)` over both shipped annotation rounds and scored on its "
               f"{n_test} held-out units (drawn at random or by cue from a quarter of the documents, chosen by a hash "
               "of the document id) as documents (max over passages), at the thresholds it tuned itself (cdpd "
               "tiers: on out-of-fold scores of the training units; transformer and spaCy: on a validation 15% of "
               "them).")
    out.append("- **5-fold CV**: `nlp.training.cross_validate` on all 2,244 units, iteratively stratified folds "
               "grouped by document (seed 0); the keyword-enriched units are included, so CV scores sit below "
               "held-out ones.")
    out.append("- **spaCy** (`spacy`): `textcat_multilabel` added to `spacy.blank(\"en\")` with its default model "
               "(`spacy.TextCatEnsemble.v2`: hash-embedding Tok2Vec width 64 with a maxout window encoder, beside a "
               "unigram bag-of-words model; no pretrained vectors); **one component over both axes**, labels "
               "prefixed with their axis; trained as `spacy train`'s default config (Adam 0.001, L2 0.01, dropout "
               "0.1, batches of 100 to 1,000 words) on whole units, with 15% of the training units kept for "
               "validation: best epoch (of at most 20, patience 3) and **per-label thresholds tuned on that "
               "validation part** (not 0.5).")
    if encode:
        out.append(f"- **Embeddings**: encoding the {encode['passages']:,} seed passages (MiniLM, 256-piece windows "
                   f"averaged) and the label prototypes into the cache took {fmt_s(encode['seconds'])} "
                   f"({encode['encoded']:,} passages encoded, {encode['cached']:,} already cached) on "
                   f"{args.threads} threads; the embedding and ensemble fits below read that cache (a retrain "
                   "does), their inference embeds afresh.")
    out.append("")
    out.append("### Quality (F1)")
    out.append("")
    header = ["tier"] + [f"held-out {a} {m}" for a in axes for m in ("micro", "macro")] + \
             [f"5-fold CV {a} {m}" for a in axes for m in ("micro", "macro")]
    rows = []
    notes = []
    for tier in args.tiers:
        r = results.get(tier, {})
        h = r.get("heldout", {}).get("heldout")
        cv = r.get("cv", {}).get("cv")
        row = [tier]
        for a in axes:
            row += [f"{h[a]['micro']['f1']:.3f}", f"{h[a]['macro_f1']:.3f}"] if h else ["—", "—"]
        if cv:
            for a in axes:
                row += [f"{cv[a]['micro']['f1']:.3f}", f"{cv[a]['macro_f1']:.3f}"]
        else:
            reason = r.get("cv", {}).get("failed") or CV_SKIPPED.get(tier, "not run (`--cv-tiers`)")
            row += ["not run"] * (2 * len(axes))
            notes.append(f"{tier} CV: {reason}.")
        rows.append(row)
    out.append(table(header, rows))
    out.append("")
    if notes:
        out.append(" ".join(notes))
        out.append("")
    out.append("Macro F1 averages over the labels with at least one example in the evaluated units.")
    out.append("")
    out.extend(render_sources(args, results, axes))
    out.append("### Cost")
    out.append("")
    gpu_head = f"GPU docs/s ({gpu})" if gpu else "GPU docs/s"
    header = ["tier", "training time (held-out fit)", "5-fold CV time", f"CPU docs/s ({args.threads} cores)",
              "CPU passages/s", gpu_head, "peak RSS, training", "peak RSS, inference"]
    rows = []
    for tier in args.tiers:
        r = results.get(tier, {})
        h, cpu, g, cv = r.get("heldout", {}), r.get("infer", {}), r.get("gpu"), r.get("cv", {})
        fit = "—" if "fit_s" not in h else ("no training" if tier == "lexicon" else fmt_s(h["fit_s"]))
        if tier in EMBEDDING_TIERS and encode and "fit_s" in h:
            fit += " (+ encoding, once)"
        if gpu is None:
            gcell = "GPU: not available"
        elif tier not in TORCH_TIERS and tier != "spacy":
            gcell = "— (CPU model)"
        elif g is None or "skipped" in (g or {}) or "failed" in (g or {}):
            gcell = (g or {}).get("skipped") or (g or {}).get("failed") or "—"
        else:
            gcell = f"{g['docs_per_s']:,.1f}"
        rows.append([tier, fit, fmt_s(cv["seconds"]) if "seconds" in cv else "—",
                     f"{cpu['docs_per_s']:,.1f}" if "docs_per_s" in cpu else "—",
                     f"{cpu['passages_per_s']:,.1f}" if cpu.get("passages_per_s") else "— (whole documents)",
                     gcell, _tagging.mib(h["peak_rss"]) if "peak_rss" in h else "—",
                     _tagging.mib(cpu["peak_rss"]) if "peak_rss" in cpu else "—"])
    out.append(table(header, rows, "lllrrlrr"))
    out.append("")
    out.append(f"Inference: {args.docs} documents drawn with seed {args.seed} from `corpora/*.parquet` (mean ~720 "
               f"words, ~2.4 passages each), tagged end to end (`DocumentTagger.tag`, batches of 128: "
               "spaCy, passages, both axes, thresholds, evidence sentences) after a warm-up on 16 other documents, "
               f"{args.threads} BLAS/OpenMP/torch threads, device CPU; spaCy's textcat: `nlp.pipe` over the same "
               "texts (no passages, no evidence). Peak RSS: `ru_maxrss` of the process (training: data, spaCy, the "
               "fit; inference: the loaded model and the documents). Training time: the `fit` call on the "
               "training units (cdpd tiers: their passages already made; spaCy: tokenizing included).")
    out.append("")
    if retrain:
        out.append("### Retraining from the command line (seed data, embeddings cached)")
        out.append("")
        out.append(table(["command", "wall time"], [[f"`cdpd train --model {t}`", fmt_s(retrain[t])]
                                                    for t in ("linear", "embedding") if t in retrain]))
        out.append("")
        out.append("A new workspace whose `embeddings.sqlite` already holds the seed passages (as after a first "
                   "embedding retrain); the whole command: start-up, reading and processing the 2,244 units, "
                   "the held-out fit and report, the fit on all units, saving. A first embedding retrain also encodes "
                   "the passages (see Embeddings above).")
        out.append("")
    out.append("### Goals")
    out.append("")
    rows = []
    for _key, desc, target, value, ok in goals(results, retrain):
        if value is None:
            rows.append([desc, "", "not measured", "—"])
            continue
        if target >= 1:
            cells = [f"≤ {target:.0f}", f"{value:.1f}"]
        elif target < 0:
            cells = [f"≤ {-target:.1%}", f"{value:.1%}"]
        else:
            cells = [f"≥ {target:.3f}", f"{value:.3f}"]
        rows.append([desc, *cells, "pass" if ok else "**FAIL**"])
    out.append(table(["goal", "target", "measured", "result"], rows, "lrrl"))
    best = best_tier(results)
    if best:
        out.append("")
        heldout = {t: r["heldout"]["heldout"] for t, r in results.items() if "heldout" in r.get("heldout", {})}
        best_domains = max(heldout, key=lambda t: heldout[t]["domains"]["micro"]["f1"])
        out.append(f"Best tier by held-out functions micro-F1: **{best}** (the goals above are its numbers); "
                   f"best domains micro-F1 of any tier: {heldout[best_domains]['domains']['micro']['f1']:.3f} "
                   f"({best_domains}).")
    out.append("")
    return "\n".join(out)


def render_sources(args, results: dict, axes: list[str]) -> list[str]:
    """Held-out figures per source: functions micro-F1 (the goals' figure) and every axis's false-label rate on
    empty units, one row per tier."""
    table = _tagging.table
    heldout = {t: results[t]["heldout"]["heldout"] for t in args.tiers
               if "heldout" in results.get(t, {}).get("heldout", {})}
    if not heldout:
        return []
    first = next(iter(heldout.values()))
    sources = sorted(first[axes[0]].get("by_source", {}))
    if not sources:
        return []
    counts = {src: first[axes[0]]["by_source"][src]["n_units"] for src in sources}
    out = ["### Per source (held-out)", ""]
    for axis in axes:
        header = ["tier"] + [f"{src} ({counts[src]})" for src in sources] + ["all"]
        rows = []
        for tier, h in heldout.items():
            by = h[axis].get("by_source", {})
            rows.append([tier] + [f"{by[src]['micro']['f1']:.3f}" if src in by else "—" for src in sources]
                        + [f"{h[axis]['micro']['f1']:.3f}"])
        out += [f"{axis}: micro-F1 per source (units in brackets)", "", table(header, rows), ""]
    header = ["tier"] + [f"{axis}: false on empty (of {first[axis].get('empty_units', '?')})" for axis in axes]
    rows = []
    for tier, h in heldout.items():
        rows.append([tier] + ["—" if h[axis].get("false_on_empty") is None else f"{h[axis]['false_on_empty']:.1%}"
                              for axis in axes])
    out += [table(header, rows), "",
            "False on empty: of the held-out units annotated with no label on that axis, the share given at least "
            "one (on functions: domestic business tagged as diplomacy).", ""]
    return out


def best_tier(results: dict) -> str | None:
    scored = {t: r["heldout"]["heldout"]["functions"]["micro"]["f1"] for t, r in results.items()
              if "heldout" in r.get("heldout", {})}
    return max(scored, key=scored.get) if scored else None


def goals(results: dict, retrain: dict | None):
    """(key, description, target, value, ok) per goal. A positive target is a floor (a time target, >= 1, a
    ceiling); a negative one is a ceiling on a share (its absolute value)."""
    best = best_tier(results)
    values: dict = dict.fromkeys(k for k, _d, _t in GOALS)
    if best:
        h = results[best]["heldout"]["heldout"]
        f = h["functions"]
        values.update(functions_micro=f["micro"]["f1"], functions_macro=f["macro_f1"],
                      domains_micro=h["domains"]["micro"]["f1"], false_on_empty=f.get("false_on_empty"))
        for source in ("ccc", "nyc_council", "white_house"):
            if source in f.get("by_source", {}):
                values[source] = f["by_source"][source]["micro"]["f1"]
    if retrain:
        values["retrain_linear"], values["retrain_embedding"] = retrain.get("linear"), retrain.get("embedding")
    for key, desc, target in GOALS:
        value = values[key]
        if value is None:
            ok = None
        elif target < 0:
            ok = value <= -target + 1e-12
        else:
            ok = value <= target if target >= 1 else value >= target - 1e-12
        yield key, desc, target, value, ok


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiers", default=",".join(TIERS), help="comma-separated tiers (default: all)")
    p.add_argument("--cv-tiers", default=",".join(t for t in TIERS if t not in CV_SKIPPED),
                   help="tiers to cross-validate (default: all but transformer)")
    p.add_argument("--docs", type=int, default=300, help="corpus documents for the inference timing (default 300)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed for those documents")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (and CPUs pinned) per worker (default 2)")
    p.add_argument("--cache", help="embedding cache file (default: a new one in a temporary folder)")
    p.add_argument("--no-retrain", action="store_true", help="skip timing `cdpd train` (linear, embedding)")
    p.add_argument("--no-encode", action="store_true",
                   help="skip filling the MiniLM embedding cache first (the default static encoder reads none)")
    p.add_argument("--out", type=Path, default=HERE / "RESULTS.md", help="markdown file whose section is replaced")
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--json-out", type=Path, help="also write every worker's results as JSON here")
    p.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    p.add_argument("--tier", help=argparse.SUPPRESS)
    p.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    p.add_argument("--model-dir", help=argparse.SUPPRESS)
    p.add_argument("--json", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.tiers = [t for t in args.tiers.split(",") if t]
    args.cv_tiers = [t for t in args.cv_tiers.split(",") if t and t in args.tiers]
    unknown = [t for t in args.tiers if t not in TIERS]
    if unknown:
        p.error(f"unknown tier(s) {', '.join(unknown)}; choose from {', '.join(TIERS)}")
    set_threads(args.threads)

    if args.worker:
        pin(args.threads)
        import json

        result = WORKERS[args.worker](args)
        args.json.write_text(json.dumps(result, default=float))
        return 0

    import json
    import tempfile

    mach = _tagging.machine()
    mach["loadavg_start"] = os.getloadavg()
    try:
        import torch

        mach["torch"] = torch.__version__
        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        gpu = None
    print(f"machine: {mach['nproc']} cores, {mach['cpu']}; GPU: {gpu or 'not available'}", file=sys.stderr)
    results: dict = {t: {} for t in args.tiers}
    encode = retrain = None
    with tempfile.TemporaryDirectory(prefix="cdpd-models-bench-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "models").mkdir()
        args.cache = args.cache or str(tmp / "embeddings.sqlite")
        needs_cache = any(t in EMBEDDING_TIERS for t in args.tiers) or not args.no_retrain
        if needs_cache and not args.no_encode:
            encode = run_worker(args, "encode", "embedding", tmp)
        for tier in args.tiers:
            results[tier]["heldout"] = run_worker(args, "heldout", tier, tmp)
            if "failed" in results[tier]["heldout"]:
                continue
            results[tier]["infer"] = run_worker(args, "infer", tier, tmp)
            if gpu and (tier in TORCH_TIERS or tier == "spacy"):
                results[tier]["gpu"] = run_worker(args, "infer", tier, tmp, device="cuda")
        for tier in args.cv_tiers:
            results[tier]["cv"] = run_worker(args, "cv", tier, tmp)
        if not args.no_retrain:
            retrain = run_worker(args, "retrain", "linear", tmp)
            if "failed" in retrain:
                retrain = None
    mach["loadavg_end"] = os.getloadavg()
    if args.json_out:
        args.json_out.write_text(json.dumps({"results": results, "encode": encode, "retrain": retrain,
                                             "machine": mach, "gpu": gpu}, indent=1, default=float))
    publish(render(args, mach, results, encode, retrain, gpu), None if args.no_write else args.out, SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
