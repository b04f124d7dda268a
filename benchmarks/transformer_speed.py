#!/usr/bin/env python
"""Transformer tier: inference speed on CPU (and, with ``--train``, training time and held-out F1).

    .venv/bin/python benchmarks/transformer_speed.py [--passages 512] [--threads 2,1] [--repeat 2]
                                                      [--train] [--out benchmarks/RESULTS.md]
    # on a GPU (issue 13, item 6): every layer fine-tuned, passages read whole
    .venv/bin/python benchmarks/transformer_speed.py --train --skip-speed --save-train-json gpu.json \
        --params '{"freeze_layers": 0, "stride": 128, "device": "cuda"}'

Speed
  ``--passages`` real passages (default 512) drawn with a fixed seed from the documents of ``corpora/*.parquet``
  (title + text, cut into passages by ``nlp.text.TextProcessor``), read at most 256 word pieces each, scored by
  all-MiniLM-L6-v2 with a fresh head over every codebook label (speed does not depend on training). Each
  configuration runs with torch using 2 threads, then 1 (``--threads``): one untimed pass of each (warm-up), then
  ``--repeat`` rounds that time each configuration in turn over all passages; the table gives the median and the
  best pass (on a machine shared with other processes the best is the closer to what an idle machine does).

  * ``plain transformers``: the baseline as one would write it: the tokenizer padding every passage to 256
    tokens, batches of 32 in input order, ``AutoModel`` in fp32, mean pooling and the head.
  * ``dynamic padding``: the same model, each batch padded to its longest passage, input order.
  * ``tagger fp32``: ``TransformerTagger.passage_proba``: passages sorted by length and batched (length
    bucketing), 32 a batch, restored to input order.
  * ``tagger bf16``: the same under bf16 autocast (``precision="bf16"``; what ``"auto"`` picks on a CPU with
    AMX-BF16).
  * ``tagger int8``: the same with the encoder's Linear layers dynamically quantized to int8 (``quantize=True``).

  Differences to ``tagger fp32`` (max |Δp| over all passages and labels) show what the faster paths change in the
  scores of an untrained head; ``--train`` measures what they change in held-out F1.

Training (``--train``, with ``--params JSON`` for other tagger parameters than the defaults)
  The tagger with default parameters fitted on the standard split (``heldout_split(annotations)``:
  train on the other 1,296 units, of which the tagger keeps 15% for validation), its wall time, and micro/macro F1
  on the 464 held-out units (random and cue units of a quarter of the documents) for each inference path, next to the linear tagger fitted on the same units.
  On 2 CPU cores this takes about 20 minutes.

The console gets the tables; ``--out`` gets a ``## Transformer inference (benchmarks/transformer_speed.py)``
section, replacing only that section if the file already has one (with ``--train-json`` a previous ``--train``
result, saved with ``--save-train-json``, is reused instead of training again).
"""

from __future__ import annotations

import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CORPORA = ROOT / "corpora"
SECTION = "## Transformer inference (benchmarks/transformer_speed.py)"
BASELINE_BATCH = 32
GOAL = 40.0  # passages/s on 2 cores


# -- data --------------------------------------------------------------------------------------------------------
def corpus_passages(codebook, n: int, seed: int):
    """``n`` passages drawn with ``seed`` from the passages of documents drawn from every corpus file."""
    import pandas as pd

    from nlp.pipeline import text_for_tagging
    from nlp.schema import Document
    from nlp.text import TextProcessor

    rng = np.random.default_rng(seed)
    docs = []
    for path in sorted(CORPORA.glob("*.parquet")):
        frame = pd.read_parquet(path, columns=["id", "text", "title"])
        take = rng.choice(len(frame), size=min(len(frame), max(20, n // 4)), replace=False)
        docs += [Document(id=str(r.id), text=r.text or "", title=r.title or "")
                 for r in frame.iloc[np.sort(take)].itertuples()]
    docs = [docs[i] for i in rng.permutation(len(docs))]
    processor = TextProcessor(codebook)
    passages = [p for unit in processor.process(text_for_tagging(d) for d in docs) for p in unit if p.text.strip()]
    pick = np.sort(rng.choice(len(passages), size=min(n, len(passages)), replace=False))
    return [passages[i] for i in pick], len(docs)


# -- configurations ----------------------------------------------------------------------------------------------
def set_threads(n: int) -> None:
    import torch

    os.environ["OMP_NUM_THREADS"] = str(n)  # the tagger reads it on every call
    torch.set_num_threads(n)


def plain_transformers(tagger, texts, pad_to_max: bool) -> np.ndarray:
    """Input order, batches of 32; every passage padded to 256 tokens (``pad_to_max``) or to its batch's longest."""
    import torch

    from nlp.encoder import mean_pool

    tokenizer, encoder, head = tagger.tokenizer_, tagger.encoder_, tagger.head_
    out = []
    with torch.inference_mode():
        for a in range(0, len(texts), BASELINE_BATCH):
            enc = tokenizer(texts[a:a + BASELINE_BATCH], padding="max_length" if pad_to_max else "longest",
                            truncation=True, max_length=tagger.max_tokens, return_tensors="pt")
            hidden = encoder(**enc).last_hidden_state
            out.append(torch.sigmoid(head(mean_pool(hidden, enc["attention_mask"]))).numpy())
    return np.concatenate(out)


def tagger_scores(tagger, passages) -> np.ndarray:
    scores = tagger.passage_proba(passages)
    return np.concatenate([scores[a] for a in tagger.labels], axis=1)


def configurations(tagger):
    texts_of = lambda ps: [p.text for p in ps]  # noqa: E731
    return [
        ("plain transformers (pad to 256, batch 32, input order, fp32)", dict(precision="fp32", quantize=False),
         lambda ps: plain_transformers(tagger, texts_of(ps), pad_to_max=True)),
        ("dynamic padding (batch 32, input order, fp32)", dict(precision="fp32", quantize=False),
         lambda ps: plain_transformers(tagger, texts_of(ps), pad_to_max=False)),
        ("tagger fp32 (length bucketing, batch 32)", dict(precision="fp32", quantize=False),
         lambda ps: tagger_scores(tagger, ps)),
        ("tagger bf16 autocast (length bucketing)", dict(precision="bf16", quantize=False),
         lambda ps: tagger_scores(tagger, ps)),
        ("tagger int8 dynamic quantization (length bucketing)", dict(precision="fp32", quantize=True),
         lambda ps: tagger_scores(tagger, ps)),
    ]


def run_speed(tagger, passages, threads: list[int], repeat: int, progress=print) -> list[dict]:
    """Per thread count: one untimed pass of every configuration (warm-up: the int8 and bf16 copies made, oneDNN
    kernels built for every batch shape), then ``repeat`` rounds timing every configuration in turn, so that the
    load of other processes falls on all of them alike."""
    rows = []
    configs = configurations(tagger)
    for n in threads:
        set_threads(n)
        times = {name: [] for name, _, _ in configs}
        scores = {}
        for round_ in range(repeat + 1):
            for name, params, fn in configs:
                tagger.set_params(**params)
                if round_ == 0:
                    scores[name] = fn(passages)
                    continue
                t0 = time.perf_counter()
                fn(passages)
                times[name].append(time.perf_counter() - t0)
            if round_:
                progress(f"  {n} thread(s), round {round_}: " + ", ".join(
                    f"{name.split(' (')[0]} {len(passages) / t[-1]:.1f}/s" for name, t in times.items()))
        reference = next(v for k, v in scores.items() if k.startswith("tagger fp32"))
        for name, _, _ in configs:
            rows.append({"config": name, "threads": n, "best": len(passages) / min(times[name]),
                         "median": len(passages) / statistics.median(times[name]),
                         "max_diff": float(np.abs(scores[name] - reference).max())})
    tagger.set_params(precision="auto", quantize=False)
    return rows


# -- training ----------------------------------------------------------------------------------------------------
def run_training(codebook, progress=print, params: dict | None = None) -> dict:
    """Fit on the training part of the fixed split with ``params`` (defaults otherwise), score the held-out units
    under each inference path, beside the linear tier fitted on the same units."""
    from nlp.annotations import heldout_split, label_matrix, read_seed_annotations, source_of
    from nlp.taggers.linear import LinearTagger
    from nlp.taggers.transformer import TransformerTagger
    from nlp.text import TextProcessor
    from nlp.training import annotation_units, evaluate_tagger

    os.environ.pop("OMP_NUM_THREADS", None)
    set_threads(len(os.sched_getaffinity(0)))
    annotations = read_seed_annotations(codebook)
    units = annotation_units(annotations, TextProcessor(codebook))
    y = label_matrix(annotations, codebook)
    train_idx, test_idx = heldout_split(annotations)
    train_units = [units[i] for i in train_idx]
    y_train = {a: v[train_idx] for a, v in y.items()}
    test_units, y_test = [units[i] for i in test_idx], {a: v[test_idx] for a, v in y.items()}
    test_sources = [source_of(annotations[i]) for i in test_idx]
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    tagger = TransformerTagger(codebook, progress=progress, **(params or {})).fit(train_units, y_train)
    fit_seconds = time.perf_counter() - t0
    out = {"fit_seconds": fit_seconds, "load": [load_before, os.getloadavg()], "params": tagger.get_params(),
           "device": str(tagger._torch_device()),
           "history": tagger.history_, "train_units": len(train_idx), "test_units": len(test_idx),
           "train_passages": sum(len(u) for u in train_units), "results": {}}
    for mode, params in (("fp32", dict(precision="fp32")), ("bf16", dict(precision="bf16")),
                         ("int8", dict(quantize=True))):
        tagger.set_params(**{"precision": "auto", "quantize": False, **params})
        t0 = time.perf_counter()
        report = evaluate_tagger(tagger, test_units, y_test, codebook, test_sources)
        out["results"][mode] = _brief(report) | {"seconds": time.perf_counter() - t0}
        progress(f"  held-out, {mode}: " + ", ".join(f"{a} micro-F1 {r['micro']['f1']:.3f}"
                                                     for a, r in report.items()))
    linear = LinearTagger(codebook).fit(train_units, y_train)
    out["results"]["linear"] = _brief(evaluate_tagger(linear, test_units, y_test, codebook, test_sources))
    return out


def _brief(report: dict) -> dict:
    return {axis: {"micro": r["micro"], "macro_f1": r["macro_f1"], "false_on_empty": r.get("false_on_empty"),
                   "by_source": {s: g["micro"]["f1"] for s, g in (r.get("by_source") or {}).items()},
                   "labels": {k: v["f1"] for k, v in r["labels"].items()}} for axis, r in report.items()}


# -- report ------------------------------------------------------------------------------------------------------
def machine() -> dict:
    import torch
    import transformers

    from _results import cpu_model, git_commit  # benchmarks/ is on sys.path: this script's folder

    cpu, commit = cpu_model(), git_commit(ROOT)
    from nlp.taggers.transformer import cpu_has_native_bf16

    return {"cores": len(os.sched_getaffinity(0)), "cpu": cpu, "python": platform.python_version(),
            "torch": torch.__version__, "transformers": transformers.__version__, "commit": commit,
            "amx_bf16": cpu_has_native_bf16(), "quantized_engine": torch.backends.quantized.engine}


def render(args, mach, stats, rows, load, train) -> str:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cmd = " ".join(["python benchmarks/transformer_speed.py"] + sys.argv[1:])
    out = [SECTION, "",
           f"Run {now} with `{cmd}` at git {mach['commit']}.  ",
           f"Machine: {mach['cores']} cores, {mach['cpu']}, Python {mach['python']}; torch {mach['torch']} (CPU), "
           f"transformers {mach['transformers']}; AMX-BF16: {'yes' if mach['amx_bf16'] else 'no'}, quantized "
           f"engine {mach['quantized_engine']}. Load average (1 min) {load[0]:.2f} at the start, {load[1]:.2f} at "
           f"the end: other processes share these cores and slow every configuration alike.",
           "",
           f"- **Passages**: {stats['n']} drawn with seed {args.seed} from the passages of {stats['docs']} documents "
           f"of `corpora/*.parquet` (title + text, `TextProcessor` passages of at most 400 words). At most "
           f"{stats['max_tokens']} word pieces read: mean {stats['mean_tokens']:.0f} per passage, "
           f"{stats['at_cap']:.0%} cut at the cap, so sorting by length saves less than on short texts.",
           "- **Model**: all-MiniLM-L6-v2 with a fresh head over all codebook labels (`TransformerTagger.initialize`;"
           " speed does not depend on training). Passages/s = passages scored per second, tokenization included: "
           f"median and best of {args.repeat} timed passes, taken in rounds over all configurations after one untimed "
           "pass of each (warm-up: int8/bf16 copies made, oneDNN kernels built for every batch shape).",
           "",
           "| threads | configuration | passages/s (median) | passages/s (best) | vs plain transformers | "
           "max \\|Δp\\| vs tagger fp32 |",
           "| ---: | --- | ---: | ---: | ---: | ---: |"]
    for n in args.threads:
        base = next(r["median"] for r in rows if r["threads"] == n and r["config"].startswith("plain"))
        for r in (r for r in rows if r["threads"] == n):
            out.append(f"| {n} | {r['config']} | {r['median']:.1f} | {r['best']:.1f} | {r['median'] / base:.2f}x | "
                       f"{r.get('max_diff', 0.0):.4f} |")
    best2 = max((r for r in rows if r["threads"] == 2), key=lambda r: r["median"], default=None)
    if best2:
        verdict = "pass" if best2["median"] >= GOAL else "**FAIL**"
        note = (f" (best pass {best2['best']:.1f}: {'pass' if best2['best'] >= GOAL else 'FAIL'})"
                if (best2["best"] >= GOAL) != (best2["median"] >= GOAL) else "")
        out += ["", f"Goal: ≥ {GOAL:.0f} passages/s on 2 cores at 256 tokens, on the median pass. Fastest: "
                    f"{best2['config']}, {best2['median']:.1f} passages/s: {verdict}{note}."]
    if train:
        out += ["", *render_training(train)]
    return "\n".join(out) + "\n"


def render_training(train: dict) -> list[str]:
    p = train["params"]
    hist = "; ".join(f"epoch {h['epoch']}: loss {h['loss']:.3f}, validation micro-F1 {h.get('val_micro_f1', 0):.3f}"
                     f" ({h['seconds']:.0f} s)" for h in train["history"])
    settings = ", ".join(f"{k}={v}" for k, v in p.items())
    lines = ["### Training and held-out quality (`--train`)", "",
             f"`TransformerTagger` with parameters {settings} fitted on the {train['train_units']} units "
             f"of `heldout_split(annotations)` ({train['train_passages']} passages; 15% of the units "
             f"kept for validation: early stopping and thresholds) in **{train['fit_seconds'] / 60:.1f} min** on "
             + (f"device {train['device']}, " if train.get("device", "cpu") != "cpu" else "")
             + f"{len(os.sched_getaffinity(0))} cores (load average {train['load'][0][0]:.2f} at the start, "
             f"{train['load'][1][0]:.2f} at the end). {hist}.",
             "",
             "| model | inference | functions micro F1 | functions macro F1 | domains micro F1 | domains macro F1 |"
             " scoring time (s) |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for mode, res in train["results"].items():
        model = "linear (default)" if mode == "linear" else "transformer"
        infer = "—" if mode == "linear" else mode
        secs = f"{res['seconds']:.1f}" if "seconds" in res else "—"
        lines.append(f"| {model} | {infer} | {res['functions']['micro']['f1']:.3f} | "
                     f"{res['functions']['macro_f1']:.3f} | {res['domains']['micro']['f1']:.3f} | "
                     f"{res['domains']['macro_f1']:.3f} | {secs} |")
    sources = sorted({src for res in train["results"].values() for src in res["functions"].get("by_source", {})})
    if sources:
        lines += ["", "Functions micro-F1 per source (held-out), and the share of units without a function given one:",
                  "", "| model | inference | " + " | ".join(sources) + " | false on empty |",
                  "| --- | --- | " + " | ".join("---:" for _ in sources) + " | ---: |"]
        for mode, res in train["results"].items():
            f = res["functions"]
            rate = "—" if f.get("false_on_empty") is None else f"{f['false_on_empty']:.1%}"
            lines.append(f"| {'linear (default)' if mode == 'linear' else 'transformer'} | "
                         f"{'—' if mode == 'linear' else mode} | "
                         + " | ".join(f"{f['by_source'][s]:.3f}" if s in f["by_source"] else "—" for s in sources)
                         + f" | {rate} |")
    lines += ["", f"Held-out: the {train['test_units']} random and cue units of the split, scored as documents "
                  "(max over passages) at the thresholds tuned on the validation units."]
    if train.get("source"):
        lines += ["", train["source"]]
    return lines


def write_section(path: Path, section: str) -> None:
    """Replace this script's section of ``path`` (up to the next level-2 heading), or append it; keep the rest
    (``benchmarks/_results.py``, atomically)."""
    from _results import write_section as shared  # benchmarks/ is on sys.path: this script's folder

    shared(path, section, SECTION)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--passages", type=int, default=512)
    p.add_argument("--threads", type=lambda s: [int(x) for x in s.split(",")], default=[2, 1])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train", action="store_true", help="also fit on the held-out split and report F1 (~20 min)")
    p.add_argument("--params", type=json.loads, default={}, metavar="JSON",
                   help='tagger parameters for --train, e.g. \'{"freeze_layers": 0, "stride": 128, "device": "cuda"}\' '
                        "(issue 13, item 6: the whole encoder fine-tuned, passages read whole, on a GPU)")
    p.add_argument("--train-json", type=Path, help="reuse the result of an earlier --train run")
    p.add_argument("--save-train-json", type=Path, help="write the --train result here")
    p.add_argument("--skip-speed", action="store_true", help="only --train/--train-json (no speed table)")
    p.add_argument("--out", type=Path, help="markdown file whose transformer section is written or replaced")
    args = p.parse_args(argv)

    from nlp.codebook import load_codebook
    from nlp.taggers.transformer import TransformerTagger

    codebook = load_codebook()
    load_start = os.getloadavg()[0]
    rows, stats = [], None
    if not args.skip_speed:
        passages, n_docs = corpus_passages(codebook, args.passages, args.seed)
        tagger = TransformerTagger(codebook).initialize()
        lengths = np.array([len(ids) for ids in tagger._tokenize([p.text for p in passages])])
        stats = {"n": len(passages), "docs": n_docs, "max_tokens": tagger.max_tokens,
                 "mean_tokens": float(lengths.mean()), "at_cap": float((lengths >= tagger.max_tokens).mean())}
        print(f"{len(passages)} passages from {n_docs} documents; mean {stats['mean_tokens']:.0f} tokens, "
              f"{stats['at_cap']:.0%} at the {tagger.max_tokens}-token cap", file=sys.stderr)
        rows = run_speed(tagger, passages, args.threads, args.repeat,
                         progress=lambda m: print(m, file=sys.stderr, flush=True))
    train = None
    if args.train_json:
        train = json.loads(args.train_json.read_text(encoding="utf-8"))
        train.setdefault("source", "Measured by an earlier `--train` run of this script (saved with "
                                   "`--save-train-json`, read back with `--train-json`).")
    elif args.train:
        train = run_training(codebook, progress=lambda m: print(m, file=sys.stderr, flush=True), params=args.params)
    if train and args.save_train_json:
        args.save_train_json.write_text(json.dumps(train, indent=1), encoding="utf-8")
    load = (load_start, os.getloadavg()[0])
    if stats is None:
        print("\n".join(render_training(train)) if train else "nothing to do")
        return 0
    section = render(args, machine(), stats, rows, load, train)
    print(section)
    if args.out:
        write_section(args.out, section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
