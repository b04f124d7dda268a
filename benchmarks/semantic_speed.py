#!/usr/bin/env python
"""Semantic tiers: end-to-end tagging speed and held-out quality of the embedding and ensemble tiers per encoder.

    .venv/bin/python benchmarks/semantic_speed.py [--docs 400] [--minilm-docs 100] [--threads 2] [--cache FILE]
                                                   [--no-distill] [--out benchmarks/RESULTS.md]

What is measured, per configuration:

* **docs/s**: ``DocumentTagger.tag`` over ``--docs`` documents (MiniLM configurations: the first ``--minilm-docs``
  of them, as they take seconds a document) drawn with seed 0 from ``corpora/*.parquet`` (as
  ``benchmarks/tagging.py`` draws them: proportional to each file, ~720 words and ~2.4 passages a document), in
  batches of 128, end to end: spaCy, passages, scores on both axes, thresholds, evidence sentences. torch and the
  static encoder get ``--threads`` threads (default 2, this machine's cores), after a warm-up on 16 other documents.
  **passages/s**: the same run's passages per second. **scoring passages/s**: ``passage_proba`` alone over the
  same passages (spaCy and evidence left out): what the encoder allows.
* **max |Δp|** (and mean): the largest (mean) difference of a document score from the reference, MiniLM fp32 of
  the same tier, over all documents and labels: float noise for a faster path of the same model, a different
  model for the static encoder (whose quality the F1 columns give).
* **held-out F1**: each tier fitted with default parameters (apart from the encoder) on the 1,296 training units of
  ``heldout_split(annotations)`` and scored on its 464 held-out units (random and cue units of a quarter of the documents) as documents (max over
  passages), as ``benchmarks/models.py`` does. A bf16 row scores the same fp32-fitted model under bf16 autocast.
* **distillation**: the static table distilled afresh (``nlp.static.distill``), wall and CPU time (``--no-distill``:
  skipped, the models folder's cached table is used).

Configurations: ``minilm`` (the reference: fp32, every evidence sentence embedded alone, as the tier ran before),
``minilm, bf16 autocast`` (where the CPU has AMX-BF16), ``static`` (the distilled table), for the embedding tier
and the ensemble (linear + embedding averaged on the logit scale); the linear tier for comparison.

MiniLM fits read the passages' embeddings from ``--cache`` (a SQLite embedding cache; a new one is filled first,
about 5 minutes on 2 cores); tagging never uses a cache (new documents). Models go to a temporary models folder.
"""

from __future__ import annotations

import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import datetime as dt  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
SECTION = "## Semantic tier speed (benchmarks/semantic_speed.py)"
WARMUP_DOCS = 16
NOTES = """Reading the table. MiniLM reads every 256-piece window of a passage (about 4 a corpus document) and, for the
evidence, every sentence of the best passages again: about a document a second on 2 cores. Even at the encoder's best
(57 windows/s under bf16 autocast on a CPU with AMX-BF16, `benchmarks/transformer_speed.py`) the passage pass alone
caps it near 14 documents/s, so no batching, bf16, int8 or caching of MiniLM reaches 20. The static table reads a
document in a sparse product (word pieces x table) and a sentence for the evidence at the same price: the end-to-end
rate is then the text processing's (spaCy), as for the linear tier. On held-out units the static embedding tier
scores 1-2 points of micro-F1 below MiniLM (4 points of functions macro-F1); inside the ensemble, where the linear
member carries the rare functions, the static member scores as well as MiniLM or better. A bf16 row is measured only
on a CPU with AMX-BF16 (oneDNN's fast bf16 path); without it the row is left out."""


def log(msg: str) -> None:
    print(f"[semantic_speed {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def bf16(enabled: bool):
    import torch

    with torch.autocast("cpu", dtype=torch.bfloat16) if enabled else contextlib.nullcontext():
        yield


def fit_models(codebook, units, y, train_idx, cache: str, folder: Path) -> dict:
    """(tier, encoder) -> fitted tagger, each fitted on the training part with default parameters."""
    from nlp.taggers import get_tagger_class

    sub = {a: v[train_idx] for a, v in y.items()}
    train_units = [units[i] for i in train_idx]
    specs = {("linear", None): ("linear", {}),
             ("embedding", "minilm"): ("embedding", {"encoder": "minilm", "cache": cache}),
             ("embedding", "static"): ("embedding", {"encoder": "static"}),
             ("ensemble", "minilm"): ("ensemble", {"member_params": {"embedding": {"encoder": "minilm"}},
                                                   "cache": cache}),
             ("ensemble", "static"): ("ensemble", {"member_params": {"embedding": {"encoder": "static"}}})}
    out = {}
    for key, (tier, params) in specs.items():
        t0 = time.perf_counter()
        out[key] = get_tagger_class(tier)(codebook, **params).fit(train_units, sub)
        out[key].set_params(cache=None) if "cache" in getattr(out[key], "_runtime_names", ()) else None
        log(f"fitted {key} in {time.perf_counter() - t0:.1f}s")
    return out


def heldout(tagger, codebook, units, y, test_idx, use_bf16: bool = False) -> dict:
    from nlp.training import evaluate_tagger

    with bf16(use_bf16):
        r = evaluate_tagger(tagger, [units[i] for i in test_idx], {a: v[test_idx] for a, v in y.items()}, codebook)
    return {axis: (r[axis]["micro"]["f1"], r[axis]["macro_f1"]) for axis in codebook.axis_names}


def tag_run(tagger, processor, docs, warm, use_bf16: bool = False) -> dict:
    from nlp.pipeline import DocumentTagger

    runner = DocumentTagger(tagger, processor)
    with bf16(use_bf16):
        list(runner.tag(warm))
        t0, c0 = time.perf_counter(), time.process_time()
        tagged = list(runner.tag(docs, batch_size=128))
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        passages = [p for t in tagged for p in t.passages]
        t1 = time.perf_counter()
        for start in range(0, len(passages), 256):
            tagger.passage_proba(passages[start : start + 256])
        scoring = time.perf_counter() - t1
    scores = {axis: np.vstack([t.scores[axis] for t in tagged]) for axis in tagger.labels}
    return {"seconds": seconds, "cpu": cpu, "docs_per_s": len(docs) / seconds, "passages": len(passages),
            "passages_per_s": len(passages) / seconds, "scoring_per_s": len(passages) / scoring, "scores": scores,
            "evidence": sum(len(q) for t in tagged for q in t.evidence.values())}


def time_distillation() -> dict:
    from nlp.static import StaticEncoder, cache_file, distill, table_id

    t0, c0 = time.perf_counter(), time.process_time()
    table = distill()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    if not cache_file().is_file():  # the fits below use it instead of distilling again
        cache_file().parent.mkdir(parents=True, exist_ok=True)
        StaticEncoder(table).save(cache_file())
    return {"seconds": seconds, "cpu": cpu, "id": table_id(table),
            "shape": table.shape}


def render(args, rows: list[dict], distilled: dict | None, meta: dict) -> str:
    out = [SECTION, ""]
    out.append(f"Run {meta['when']} with `python benchmarks/semantic_speed.py {' '.join(meta['argv'])}` at git "
               f"{meta['git']}.  ")
    out.append(f"Machine: {meta['nproc']} cores, {meta['cpu']}, Python {platform.python_version()}; torch "
               f"{meta['torch']}; AMX-BF16: {'yes' if meta['amx'] else 'no'}. Load average (1 min) "
               f"{meta['load0']:.2f} at the start, {meta['load1']:.2f} at the end: other processes share these "
               "cores and slow every configuration alike.")
    out.append("")
    out.append(f"- **Documents**: {meta['docs']} drawn with seed 0 from `corpora/*.parquet` (as "
               f"`benchmarks/tagging.py` draws them), {meta['words']:.0f} words and {meta['ppd']:.2f} passages per "
               f"document on average; `DocumentTagger.tag` end to end in batches of 128 on {args.threads} threads, "
               f"after a warm-up on {WARMUP_DOCS} other documents. Scoring passages/s: `passage_proba` alone over "
               "the same passages.")
    out.append("- **Held-out**: fitted with default parameters (but the encoder) on the 1,296 training units of "
               "`heldout_split(annotations)`, scored on its 464 held-out units (random and cue units of a quarter of the documents) as documents; "
               "F1 as micro / macro. A bf16 row scores the fp32-fitted model under bf16 autocast.")
    out.append("- **max (mean) |Δp|**: document scores against the same tier with MiniLM in fp32, on the documents "
               "both tagged.")
    out.append("")
    out.append("| configuration | docs | docs/s | passages/s | scoring passages/s | max \\|Δp\\| (mean) vs MiniLM fp32 | "
               "functions F1 (micro / macro) | domains F1 (micro / macro) |")
    out.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        delta = "—" if r.get("delta") is None else f"{r['delta'][0]:.4f} ({r['delta'][1]:.4f})"
        f, d = r["f1"]["functions"], r["f1"]["domains"]
        out.append(f"| {r['name']} | {r['docs']} | {r['docs_per_s']:.1f} | {r['passages_per_s']:.1f} | {r['scoring_per_s']:.0f} | "
                   f"{delta} | {f[0]:.3f} / {f[1]:.3f} | {d[0]:.3f} / {d[1]:.3f} |")
    out.append("")
    if distilled:
        out.append(f"Distilling the static table (`nlp.static.distill()`, 256 dimensions, {distilled['shape'][0]:,} "
                   f"rows, fp32 forward passes of every word piece, offline) took {distilled['seconds']:.0f} s "
                   f"wall, {distilled['cpu']:.0f} s CPU, at that load; table {distilled['id']}.")
        out.append("")
    out.append(NOTES)
    out.append("")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--docs", type=int, default=400)
    p.add_argument("--minilm-docs", type=int, default=100, help="documents tagged by the MiniLM configurations")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cache", help="MiniLM embedding cache for the fits (default: a new file in a temporary folder)")
    p.add_argument("--no-distill", action="store_true", help="do not time a fresh distillation")
    p.add_argument("--out", help="results file to write this section into (e.g. benchmarks/RESULTS.md)")
    args = p.parse_args(argv)

    import torch

    from _results import cpu_model, git_commit, write_section
    from tagging import sample_documents

    from nlp.annotations import heldout_split, label_matrix, read_seed_annotations
    from nlp.codebook import load_codebook
    from nlp.pipeline import text_for_tagging
    from nlp.taggers.transformer import cpu_has_native_bf16
    from nlp.text import TextProcessor
    from nlp.training import annotation_units

    torch.set_num_threads(args.threads)
    load0 = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="semantic_speed."))
    os.environ.setdefault("CDPD_MODELS", str(tmp / "models"))
    cache = args.cache or str(tmp / "embeddings.sqlite")
    codebook = load_codebook()
    processor = TextProcessor(codebook)
    distilled = None
    if not args.no_distill:
        distilled = time_distillation()
        log(f"distilled in {distilled['seconds']:.0f}s ({distilled['cpu']:.0f}s CPU)")
    annotations = read_seed_annotations(codebook)
    y = label_matrix(annotations, codebook)
    train_idx, test_idx = heldout_split(annotations)
    units = annotation_units(annotations, processor)
    models = fit_models(codebook, units, y, train_idx, cache, tmp)
    docs, _, _ = sample_documents(args.docs + WARMUP_DOCS, 0)
    warm, docs = docs[:WARMUP_DOCS], docs[WARMUP_DOCS:]
    amx = cpu_has_native_bf16()
    configs = [("linear", ("linear", None), False),
               ("embedding, MiniLM fp32 (reference)", ("embedding", "minilm"), False),
               ("embedding, MiniLM bf16 autocast", ("embedding", "minilm"), True),
               ("embedding, static", ("embedding", "static"), False),
               ("ensemble, MiniLM fp32 (reference)", ("ensemble", "minilm"), False),
               ("ensemble, MiniLM bf16 autocast", ("ensemble", "minilm"), True),
               ("ensemble, static", ("ensemble", "static"), False)]
    rows, reference = [], {}
    for name, key, use_bf16 in configs:
        if use_bf16 and not amx:
            continue
        run = tag_run(models[key], processor, docs[: args.minilm_docs] if key[1] == "minilm" else docs, warm,
                      use_bf16)
        run["f1"] = heldout(models[key], codebook, units, y, test_idx, use_bf16)
        if key[1] and not use_bf16 and key[1] == "minilm":
            reference[key[0]] = run["scores"]
        ref = reference.get(key[0]) if key[1] else None
        if ref is not None:
            diffs = np.concatenate([np.abs(run["scores"][a][: len(ref[a])] - ref[a]).ravel() for a in ref])
            run["delta"] = (float(diffs.max()), float(diffs.mean()))
        run["name"], run["docs"] = name, len(run["scores"]["functions"])
        rows.append(run)
        log(f"{name}: {run['docs_per_s']:.1f} docs/s, {run['scoring_per_s']:.0f} passages/s scoring; F1 "
            + "; ".join(f"{a} {m:.3f}/{M:.3f}" for a, (m, M) in run["f1"].items()))
    words = np.mean([len(text_for_tagging(d).split()) for d in docs])
    meta = {"when": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "argv": sys.argv[1:] or [],
            "git": git_commit(ROOT), "nproc": os.cpu_count(), "cpu": cpu_model(), "torch": torch.__version__,
            "amx": amx, "load0": load0, "load1": os.getloadavg()[0], "docs": len(docs), "words": words,
            "ppd": rows[0]["passages"] / len(docs)}
    section = render(args, rows, distilled, meta)
    print(section)
    if args.out:
        write_section(args.out, section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
