#!/usr/bin/env python
"""Tagging benchmark: throughput, memory and held-out quality of the lexicon and linear taggers, on one core.

    .venv/bin/python benchmarks/tagging.py [--docs 2000] [--repeat 3] [--out benchmarks/RESULTS.md] [--profile 500]

What it measures
  * Throughput end to end (``DocumentTagger.tag``: spaCy, passages, scores on every axis, thresholds, evidence)
    in documents/s and passages/s, on (a) ``--docs`` real documents drawn with a fixed seed from
    ``corpora/*.parquet``, stratified across the files *proportionally to their number of rows*, and (b) the
    1,548 annotated units of ``corpora/annotations/seed.jsonl`` (the "units" of the goals; ~290 whitespace
    words with their titles). Each workload is run ``--repeat`` times, each run with a fresh spaCy pipeline so
    that its caches start cold as on a new corpus; the median run is reported (and the best).
  * Peak memory: ``ru_maxrss`` before/after the timed corpus runs (an RSS high-water mark, so measured first)
    and the ``tracemalloc`` peak of Python allocations (numpy buffers included) in a separate, traced pass.
  * Where the time goes: in place (``process``, ``score_batch`` and ``batch_contributions`` timed as
    ``DocumentTagger.tag`` calls them) and alone (the spaCy tokenizer and components, ``TextProcessor.process``,
    then ``tagger.passage_proba`` on its passages, over the same 128-document batches; the end-to-end time minus
    those two is the rest: evidence, aggregation, thresholds).
  * Quality on the fixed held-out split of both shipped annotation rounds (``heldout_split(annotations)``: the
    random and cue units of a quarter of the documents), the linear tagger being fitted with default parameters on
    every unit of the other documents.

Isolation: every tagger runs in a fresh subprocess (this script re-invoking itself with ``--worker``) so memory
peaks don't mix; the linear model is trained in its own subprocess and handed over through a temporary model
folder (``nlp.models.save_model``/``load_model``), so the tagging worker's memory is that of inference only.
Each process sets the BLAS/OpenMP thread counts to 1 before numpy is imported and pins itself to one CPU.

The console gets the tables; ``--out`` gets a ``## Tagging (benchmarks/tagging.py)`` section, replacing only
that section if the file already has one.
"""

from __future__ import annotations

import os

# One core: set before numpy (or anything that imports it) is loaded; subprocesses inherit the environment.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "RAYON_NUM_THREADS", "TOKENIZERS_PARALLELISM")
for _var in THREAD_VARS:
    os.environ[_var] = "false" if _var == "TOKENIZERS_PARALLELISM" else "1"

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT / "corpora"
SEED_FILE = CORPORA / "annotations" / "seed.jsonl"
SECTION = "## Tagging (benchmarks/tagging.py)"
TAGGERS = ("lexicon", "linear")
BATCH_DOCS = 128  # DocumentTagger.tag's default batch size (and `cdpd classify`'s)
WARMUP_DOCS = 32
GOALS = [  # (key, description, target)
    ("functions_micro", "linear: functions micro-F1 (held-out)", 0.72),
    ("functions_macro", "linear: functions macro-F1 (held-out)", 0.50),
    ("domains_micro", "linear: domains micro-F1 (held-out)", 0.78),
    ("docs_per_s", "linear: documents/s end to end, one core (corpus sample)", 500.0),
    ("units_per_s", "linear: units/s end to end, one core (annotated units, ~276 words)", 500.0),
]


# -- one core ------------------------------------------------------------------------------------------------------
def pin_one_core() -> int | None:
    """Pin this process to CPU 0 (or the lowest CPU we may use); None where the OS has no affinity call."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = os.sched_getaffinity(0)
    core = 0 if 0 in allowed else min(allowed)
    os.sched_setaffinity(0, {core})
    return core


def maxrss_bytes() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # Linux reports KiB, macOS bytes


def blas_threads() -> dict[str, int]:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return {}
    return {f"{i.get('internal_api')}:{Path(i.get('filepath', '')).name}": i.get("num_threads") for i in threadpool_info()}


# -- data --------------------------------------------------------------------------------------------------------
def allocate(sizes: dict[str, int], n: int) -> dict[str, int]:
    """Split n proportionally to sizes (largest remainder), never more than a file holds."""
    total = sum(sizes.values())
    n = min(n, total)
    exact = {k: n * v / total for k, v in sizes.items()}
    alloc = {k: int(x) for k, x in exact.items()}
    for k in sorted(sizes, key=lambda k: (-(exact[k] - alloc[k]), k))[: n - sum(alloc.values())]:
        alloc[k] += 1
    return alloc


def sample_documents(n: int, seed: int):
    """``n`` documents from corpora/*.parquet, proportional to each file's row count, seeded; file order kept."""
    import numpy as np
    import pyarrow.parquet as pq

    from nlp.schema import Document

    files = sorted(CORPORA.glob("*.parquet"))
    sizes = {f.stem: pq.ParquetFile(f).metadata.num_rows for f in files}
    alloc = allocate(sizes, n)
    rng = np.random.default_rng(seed)
    docs = []
    for f in files:
        k = alloc[f.stem]
        if not k:
            continue
        rows = sorted(rng.choice(sizes[f.stem], size=k, replace=False).tolist())
        table = pq.read_table(f).take(rows).to_pylist()
        docs.extend(Document.from_record(r, default_id=f"{f.stem}:{i}") for r, i in zip(table, rows))
    # interleave the sources (seeded) so that batches mix short and long documents, as a real import would
    order = rng.permutation(len(docs))
    return [docs[i] for i in order], sizes, alloc


def unit_documents(annotations):
    from nlp.schema import Document

    return [Document(id=a.id, text=a.text, title=a.title) for a in annotations]


def words(docs) -> list[int]:
    from nlp.pipeline import text_for_tagging

    return [len(text_for_tagging(d).split()) for d in docs]


# -- workers -----------------------------------------------------------------------------------------------------
def worker_train(args) -> dict:
    """Fit linear on the non-held-out units, evaluate linear and lexicon on the held-out ones, save the model."""
    import numpy as np

    from nlp.annotations import heldout_split, label_matrix, read_seed_annotations
    from nlp.codebook import load_codebook
    from nlp.models import save_model
    from nlp.taggers import get_tagger_class
    from nlp.text import TextProcessor
    from nlp.training import annotation_units, evaluate_tagger

    codebook = load_codebook()
    annotations = read_seed_annotations(codebook)  # both shipped rounds: the fixed held-out split is over both
    t0 = time.perf_counter()
    units = annotation_units(annotations, TextProcessor(codebook))
    process_s = time.perf_counter() - t0
    y = label_matrix(annotations, codebook)
    train_idx, test_idx = heldout_split(annotations)
    sub = lambda idx: ([units[i] for i in idx], {a: v[idx] for a, v in y.items()})  # noqa: E731
    train_units, train_y = sub(train_idx)
    test_units, test_y = sub(test_idx)
    t0 = time.perf_counter()
    linear = get_tagger_class("linear")(codebook).fit(train_units, train_y)
    fit_s = time.perf_counter() - t0
    lexicon = get_tagger_class("lexicon")(codebook).fit(train_units, train_y)  # learns nothing: fixed thresholds
    quality = {name: evaluate_tagger(tagger, test_units, test_y, codebook)
               for name, tagger in (("lexicon", lexicon), ("linear", linear))}
    save_model(linear, "linear", training={"n_units": len(train_idx), "heldout": len(test_idx)},
               folder=Path(args.model_dir))
    return {
        "n_annotations": len(annotations), "n_train": len(train_idx), "n_test": len(test_idx),
        "n_random": sum(a.sample in ("random", "cue", "") for a in annotations),
        "unit_words": float(np.mean(words(unit_documents(annotations)))),
        "process_s": process_s, "fit_s": fit_s, "params": linear.get_params(), "quality": quality,
        "axes": list(codebook.axis_names),
    }


def _run_tag(runner, docs) -> tuple[float, int]:
    t0 = time.perf_counter()
    n_passages = 0
    for tagged in runner.tag(docs, batch_size=BATCH_DOCS):
        n_passages += len(tagged.passages)
    return time.perf_counter() - t0, n_passages


class _Stopwatch:
    """Time a method of one object in place (an instance attribute shadows it; nlp/ is untouched)."""

    def __init__(self, obj, name: str, generator: bool = False):
        self.obj, self.name, self.seconds = obj, name, 0.0
        original = getattr(obj, name)

        def timed(*a, **k):
            t0 = time.perf_counter()
            try:
                return original(*a, **k)
            finally:
                self.seconds += time.perf_counter() - t0

        def timed_generator(*a, **k):  # count only the time spent inside the generator
            it = original(*a, **k)
            while True:
                t0 = time.perf_counter()
                try:
                    item = next(it)
                except StopIteration:
                    self.seconds += time.perf_counter() - t0
                    return
                self.seconds += time.perf_counter() - t0
                yield item

        setattr(obj, name, timed_generator if generator else timed)

    def remove(self) -> None:
        delattr(self.obj, self.name)


def _timed_runs(new_runner, docs, repeat: int) -> dict:
    """``repeat`` full runs, each with a fresh spaCy pipeline (its caches start cold, as on a new corpus), timing
    in place ``process``, ``score_batch`` and ``batch_contributions``."""
    runs, n_passages = [], 0
    for _ in range(repeat):
        runner = new_runner()
        watches = {"process_s": _Stopwatch(runner.processor, "process", generator=True),
                   "score_s": _Stopwatch(runner.tagger, "score_batch"),
                   "contributions_s": _Stopwatch(runner.tagger, "batch_contributions")}
        try:
            t, n_passages = _run_tag(runner, docs)
        finally:
            for w in watches.values():
                w.remove()
        runs.append({"total_s": t, **{k: w.seconds for k, w in watches.items()}})
        del runner, watches
        gc.collect()  # free the previous pipeline before the next is built
    times = [r["total_s"] for r in runs]
    median_run = sorted(runs, key=lambda r: r["total_s"])[(len(runs) - 1) // 2]
    med = median_run["total_s"]
    return {"docs": len(docs), "passages": n_passages, "times": times, "median_s": med, "best_s": min(times),
            "docs_per_s": len(docs) / med, "passages_per_s": n_passages / med,
            "best_docs_per_s": len(docs) / min(times), "in_place": median_run}


def _breakdown(new_runner, docs, in_place: dict, repeat: int) -> dict:
    """The in-place split of the median run, plus each stage alone (spaCy components, process, passage_proba).

    Alone, over the same 128-document batches, median of ``repeat``: the tokenizer and each spaCy component one
    after the other as ``nlp.pipe`` runs them, then ``TextProcessor.process``, then ``passage_proba`` on its
    passages. The end-to-end total minus process and scoring alone is the brief's "rest" (evidence and the
    rest of ``DocumentTagger.tag``).
    """
    from nlp.pipeline import text_for_tagging

    total = in_place["total_s"]
    out = {  # in place, median end-to-end run: an exact partition of its time
        "total_s": total, "process_s": in_place["process_s"], "score_s": in_place["score_s"],
        "contributions_s": in_place["contributions_s"],
        "other_s": total - in_place["process_s"] - in_place["score_s"] - in_place["contributions_s"],
    }
    if not repeat:
        return out
    texts = [text_for_tagging(d) for d in docs]
    batches = [texts[i: i + BATCH_DOCS] for i in range(0, len(texts), BATCH_DOCS)]
    names = ["tokenizer", *new_runner().processor.nlp.pipe_names]
    alone: dict[str, list[float]] = {k: [] for k in (*names, "process", "score")}
    for _ in range(repeat):
        runner = new_runner()
        processor, tagger, nlp = runner.processor, runner.tagger, runner.processor.nlp
        spent = dict.fromkeys(names, 0.0)
        for b in batches:
            t0 = time.perf_counter()
            spacy_docs = list(nlp.tokenizer.pipe(b, batch_size=64))
            spent["tokenizer"] += time.perf_counter() - t0
            for name, proc in nlp.pipeline:
                t0 = time.perf_counter()
                spacy_docs = [proc(d) for d in spacy_docs]
                spent[name] += time.perf_counter() - t0
            del spacy_docs
        for k, v in spent.items():
            alone[k].append(v)
        runner = new_runner()  # process alone starts cold too
        processor = runner.processor
        t0 = time.perf_counter()
        flats = [[p for unit in processor.process(b) for p in unit] for b in batches]
        alone["process"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for flat in flats:
            if flat:
                tagger.passage_proba(flat)
        alone["score"].append(time.perf_counter() - t0)
        del flats
    alone_med = {k: statistics.median(v) for k, v in alone.items()}
    spacy_alone = sum(alone_med[k] for k in names)
    return out | {
        "spacy_components_alone_s": {k: alone_med[k] for k in names}, "spacy_alone_s": spacy_alone,
        "process_alone_s": alone_med["process"], "passages_alone_s": alone_med["process"] - spacy_alone,
        "score_alone_s": alone_med["score"],
        "rest_by_difference_s": total - alone_med["process"] - alone_med["score"],
    }


def _traced_peak(new_runner, docs) -> int:
    import tracemalloc

    runner = new_runner()
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        _run_tag(runner, docs)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _log(worker: str, t0: float, msg: str) -> None:
    print(f"  [{worker}] {time.perf_counter() - t0:6.1f}s {msg}", file=sys.stderr, flush=True)


def worker_tagger(args) -> dict:
    import numpy as np

    from nlp.annotations import read_annotations
    from nlp.codebook import load_codebook
    from nlp.models import load_model
    from nlp.pipeline import DocumentTagger
    from nlp.text import TextProcessor, build_pipeline

    t_start = time.perf_counter()
    log = lambda msg: _log(args.worker, t_start, msg)  # noqa: E731
    rss_start = maxrss_bytes()
    codebook = load_codebook()
    docs, _, _ = sample_documents(args.docs, args.seed)
    units = unit_documents(read_annotations(SEED_FILE, codebook))
    rss_data = maxrss_bytes()
    tagger, info = load_model(args.worker, codebook, folder=Path(args.model_dir))

    def new_runner(warm_up=units[:WARMUP_DOCS]):
        """A DocumentTagger with its own, fresh spaCy pipeline, warmed up on other documents than those timed."""
        runner = DocumentTagger(tagger, TextProcessor(codebook, nlp=build_pipeline()))
        _run_tag(runner, warm_up)  # lazy state: the tagger's coefficient caches and evidence counter
        return runner

    new_runner()
    rss_ready = maxrss_bytes()
    log(f"loaded {len(docs)} documents, {len(units)} units and model {info.ref}")

    corpus = _timed_runs(new_runner, docs, args.repeat)
    rss_peak = maxrss_bytes()
    corpus.update(rss_before=rss_ready, rss_after=rss_peak, rss_delta=rss_peak - rss_ready)
    corpus["words_mean"] = float(np.mean(words(docs)))
    corpus["words_median"] = float(np.median(words(docs)))
    log(f"corpus sample: {corpus['docs_per_s']:.0f} docs/s (runs: {', '.join(f'{t:.1f}s' for t in corpus['times'])})")

    new_unit_runner = lambda: new_runner(docs[:WARMUP_DOCS])  # noqa: E731
    unit_run = _timed_runs(new_unit_runner, units, args.repeat)
    unit_run["words_mean"] = float(np.mean(words(units)))
    log(f"annotated units: {unit_run['docs_per_s']:.0f} units/s (runs: {', '.join(f'{t:.1f}s' for t in unit_run['times'])})")

    out = {"tagger": args.worker, "model": info.ref, "corpus": corpus, "units": unit_run,
           "rss_start": rss_start, "rss_data": rss_data, "rss_model_ready": rss_ready,
           "core": args.core, "blas_threads": blas_threads()}
    # the stages alone for the linear tagger only (the brief's breakdown; it costs about two more runs each)
    out["breakdown"] = _breakdown(new_runner, docs, corpus["in_place"], args.repeat if args.worker == "linear" else 0)
    log("breakdown")
    n_trace = args.trace_docs or max(len(docs), len(units))
    out["corpus"]["traced_peak"] = _traced_peak(new_runner, docs[:n_trace])
    out["units"]["traced_peak"] = _traced_peak(new_unit_runner, units[:n_trace])
    out["corpus"]["traced_docs"], out["units"]["traced_docs"] = len(docs[:n_trace]), len(units[:n_trace])
    log("tracemalloc passes")
    if args.profile and args.worker == "linear":
        profile(new_runner(), docs[: args.profile])
    return out


def profile(runner, docs, top: int = 30) -> None:
    import cProfile
    import io
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    _run_tag(runner, docs)
    prof.disable()
    for key in ("tottime", "cumulative"):
        buf = io.StringIO()
        stats = pstats.Stats(prof, stream=buf).strip_dirs().sort_stats(key)
        stats.print_stats(top)
        print(f"\n=== cProfile, linear tagger, {len(docs)} documents, sorted by {key} ===")
        print(buf.getvalue().split("\n", 4)[-1] if key == "cumulative" else buf.getvalue())


# -- report ------------------------------------------------------------------------------------------------------
def machine() -> dict:
    from _results import cpu_model  # benchmarks/ is on sys.path: this script's folder

    cpu = cpu_model()
    try:
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_THREAD_LIMIT")}
        nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=True, env=env).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        nproc = str(os.cpu_count())
    versions = {}
    for mod in ("spacy", "sklearn", "numpy", "scipy"):
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            pass
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "nlp"], cwd=ROOT, capture_output=True,
                               text=True).stdout.strip()
        git = head + (" + uncommitted changes in nlp/" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        git = "unknown"
    return {"nproc": nproc, "cpu": cpu, "python": platform.python_version(), "versions": versions, "git": git,
            "os": f"{platform.system()} {platform.release()}"}


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def table(header: list[str], rows: list[list[str]], align: str | None = None) -> str:
    align = align or "l" + "r" * (len(header) - 1)
    sep = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def render(args, mach: dict, train: dict, results: dict, sizes: dict, alloc: dict) -> str:
    lin = results["linear"]
    now = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    v = mach["versions"]
    out = [SECTION, ""]
    out.append(f"Run {now} with `python benchmarks/tagging.py --docs {args.docs} --repeat {args.repeat} "
               f"--seed {args.seed} --trace-docs {args.trace_docs}` at git {mach['git']}.  ")
    out.append(f"Machine: {mach['nproc']} cores (nproc), {mach['cpu']}, {mach['os']}, Python {mach['python']}; "
               f"spaCy {v.get('spacy')}, scikit-learn {v.get('sklearn')}, numpy {v.get('numpy')}, "
               f"scipy {v.get('scipy')}.  ")
    out.append(f"Each tagger ran in its own process pinned to CPU {lin.get('core')} with BLAS/OpenMP threads set "
               f"to 1; times are the median of {args.repeat} runs, each with a fresh spaCy pipeline (cold caches, as on "
               f"a new corpus) warmed up on {WARMUP_DOCS} documents of the other workload. "
               f"Load average (1 min) {mach['loadavg_start'][0]:.2f} at the start, {mach['loadavg_end'][0]:.2f} at "
               f"the end: other processes on the machine share its cores and can slow a run.")
    out.append("")
    c = lin["corpus"]
    strata = ", ".join(f"{k} {alloc[k]}/{sizes[k]:,}" for k in sorted(sizes))
    out.append(f"- **Corpus sample**: {c['docs']:,} documents drawn with seed {args.seed} from `corpora/*.parquet`, "
               f"stratified *proportionally to each file's row count* (sampled/rows: {strata}). "
               f"Mean {c['words_mean']:,.0f} words/document (median {c['words_median']:,.0f}; whitespace words "
               f"of title + text), {c['passages'] / c['docs']:.2f} passages/document.")
    u = lin["units"]
    out.append(f"- **Annotated units**: the {u['docs']:,} units of `corpora/annotations/seed.jsonl`, mean "
               f"{u['words_mean']:,.0f} words, {u['passages'] / u['docs']:.2f} passages/unit.")
    out.append("- End to end = `DocumentTagger.tag` in batches of 128: spaCy, passages, both axes, thresholds, "
               "evidence. The linear model is the one fitted for the quality table below.")
    out.append("")
    out.append("### Throughput and memory (one core)")
    out.append("")
    rows = []
    for name in TAGGERS:
        r = results[name]
        for label, w in (("corpus sample", r["corpus"]), ("annotated units", r["units"])):
            rows.append([name, label, f"{w['docs']:,}", f"{w['docs_per_s']:,.0f}", f"{w['best_docs_per_s']:,.0f}",
                         f"{w['passages_per_s']:,.0f}", f"{w['docs_per_s'] * w['words_mean']:,.0f}",
                         f"{1000 * w['median_s'] / w['docs']:.2f}", mib(w["traced_peak"]),
                         mib(w["rss_delta"]) if "rss_delta" in w else "—",
                         mib(w["rss_after"]) if "rss_after" in w else "—"])
    out.append(table(["tagger", "workload", "docs", "docs/s", "docs/s (best)", "passages/s", "words/s", "ms/doc",
                      "tracemalloc peak", "max RSS Δ", "max RSS"], rows, "ll" + "r" * 9))
    out.append("")
    n_traced = lin["corpus"]["traced_docs"]
    out.append(f"tracemalloc peak: Python allocations (numpy buffers included) during one traced pass over the "
               f"first {n_traced:,} documents of each workload ({-(-n_traced // BATCH_DOCS)} batches of {BATCH_DOCS}; tracing is slow), "
               f"results discarded as they stream out. Max RSS Δ: growth of `ru_maxrss` over the timed "
               "corpus runs, from the level reached after loading spaCy, the model and the documents (max RSS "
               "is that process's high-water mark; the linear model is trained in a separate process).")
    out.append("")
    out.append("### Where the time goes (corpus sample)")
    out.append("")
    rows = []
    for name in TAGGERS:
        b = results[name]["breakdown"]
        n = results[name]["corpus"]["docs"]

        def row(label, in_place=None, alone=None):
            sec = in_place if in_place is not None else alone
            return [name, label, "—" if in_place is None else f"{in_place:.2f}", f"{100 * sec / b['total_s']:.0f}%",
                    f"{1000 * sec / n:.2f}", "—" if alone is None else f"{alone:.2f}"]

        rows.append(row("`TextProcessor.process`: spaCy, sentences, seeds, passages", b["process_s"],
                        b.get("process_alone_s")))
        for comp, sec in b.get("spacy_components_alone_s", {}).items():
            rows.append(row(f"&nbsp;&nbsp;spaCy `{comp}`", alone=sec))
        if "passages_alone_s" in b:
            rows.append(row("&nbsp;&nbsp;sentences, lemmas, seed matches, passages (process minus spaCy)",
                            alone=b["passages_alone_s"]))
        rows.append(row("scoring: `tagger.score_batch`", b["score_s"], b.get("score_alone_s")))
        rows.append(row("evidence: `tagger.batch_contributions`", b["contributions_s"]))
        rows.append(row("other: aggregation, thresholds, evidence sentences, batching", b["other_s"]))
        if "rest_by_difference_s" in b:
            rows.append(row("rest = total − process alone − scoring alone", alone=b["rest_by_difference_s"]))
        rows.append(row("**total** (`DocumentTagger.tag`)", b["total_s"]))
    out.append(table(["tagger", "stage", "in place (s)", "share", "ms/doc", "alone (s)"], rows, "llrrrr"))
    out.append("")
    out.append("In place: the median end-to-end run, with `process`, `score_batch` and `batch_contributions` "
               "timed as `DocumentTagger.tag` calls them (\"other\" is the remainder). Alone (linear only): median "
               f"of {args.repeat} separate runs over the same 128-document batches: the tokenizer and each spaCy "
               "component one after the other as `nlp.pipe` runs them, `TextProcessor.process`, then "
               "`passage_proba` on its passages. Share and ms/doc use the in-place time where there is one. "
               "On a shared machine the two columns can differ by the load of the moment.")
    out.append("")
    out.append(f"### Quality on held-out units ({train['n_test']} random and cue units of a quarter of the "
               f"documents; linear fitted on the other documents' {train['n_train']} units)")
    out.append("")
    out.append(f"`heldout_split(annotations)`; linear with default parameters "
               f"({', '.join(f'{k}={v}' for k, v in train['params'].items())}), thresholds tuned on out-of-fold "
               f"scores of the training units; fitted in {train['fit_s']:.1f} s. Lexicon: seeds only, threshold 0.5.")
    out.append("")
    rows = []
    for name in TAGGERS:
        for axis in train["axes"]:
            q = train["quality"][name][axis]
            rows.append([name, axis, f"{q['micro']['precision']:.3f}", f"{q['micro']['recall']:.3f}",
                         f"{q['micro']['f1']:.3f}", f"{q['macro_f1']:.3f}"])
    out.append(table(["tagger", "axis", "micro P", "micro R", "micro F1", "macro F1"], rows, "llrrrr"))
    out.append("")
    out.append("Macro F1 averages over the labels with at least one held-out example.")
    for axis in train["axes"]:
        out.append("")
        out.append(f"#### Linear tagger, {axis}: per label (held-out)")
        out.append("")
        labels = train["quality"]["linear"][axis]["labels"]
        lex = train["quality"]["lexicon"][axis]["labels"]
        rows = [[lab, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", str(m["support"]),
                 f"{lex[lab]['f1']:.3f}"] for lab, m in sorted(labels.items(), key=lambda kv: -kv[1]["support"])]
        out.append(table(["label", "P", "R", "F1", "support", "lexicon F1"], rows))
    out.append("")
    out.append("### Goals")
    out.append("")
    rows = []
    for key, desc, target, value, ok in goals(train, results):
        fmt = (lambda x: f"{x:,.0f}") if target >= 1 else (lambda x: f"{x:.3f}")
        rows.append([desc, f"≥ {fmt(target)}", fmt(value), "pass" if ok else "**FAIL**"])
    out.append(table(["goal", "target", "measured", "result"], rows, "lrrl"))
    out.append("")
    return "\n".join(out)


def goals(train: dict, results: dict):
    q = train["quality"]["linear"]
    lin = results["linear"]
    values = {"functions_micro": q["functions"]["micro"]["f1"], "functions_macro": q["functions"]["macro_f1"],
              "domains_micro": q["domains"]["micro"]["f1"], "docs_per_s": lin["corpus"]["docs_per_s"],
              "units_per_s": lin["units"]["docs_per_s"]}
    for key, desc, target in GOALS:
        yield key, desc, target, values[key], values[key] >= target


def write_section(path: Path, section: str, heading: str = SECTION) -> None:
    """Replace the section of ``path`` that starts with ``heading`` (this script's by default) up to the next
    level-2 heading, or add it at the end; keep the rest (``benchmarks/_results.py``, atomically)."""
    from _results import write_section as shared  # benchmarks/ is on sys.path: this script's folder

    shared(path, section, heading)


# -- driver ------------------------------------------------------------------------------------------------------
def run_worker(name: str, args, model_dir: str, json_path: Path) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--docs", str(args.docs),
           "--seed", str(args.seed), "--repeat", str(args.repeat), "--trace-docs", str(args.trace_docs), "--model-dir", model_dir, "--json", str(json_path)]
    if args.profile:
        cmd += ["--profile", str(args.profile)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT)
    print(f"[{name}] done in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return json.loads(json_path.read_text())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--docs", type=int, default=2000, help="corpus documents to sample (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--repeat", type=int, default=3, help="timed runs per workload; the median is reported")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "RESULTS.md",
                   help="markdown file whose tagging section is written or replaced")
    p.add_argument("--no-write", action="store_true", help="print only, leave --out alone")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="also print a cProfile of the linear tagger on the first N sampled documents")
    p.add_argument("--trace-docs", type=int, default=4 * BATCH_DOCS, metavar="N",
                   help="documents per workload in the (slow) tracemalloc pass; 0 = all (default %(default)s)")
    p.add_argument("--worker", choices=("train", *TAGGERS), help=argparse.SUPPRESS)
    p.add_argument("--model-dir", help=argparse.SUPPRESS)
    p.add_argument("--json", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    mach = None if args.worker else machine()  # before pinning: nproc counts the CPUs this process may use
    args.core = pin_one_core()
    sys.path.insert(0, str(ROOT))  # run from a checkout without relying on the editable install

    if args.worker:
        result = worker_train(args) if args.worker == "train" else worker_tagger(args)
        args.json.write_text(json.dumps(result, default=float))
        return 0

    import pyarrow.parquet as pq

    sizes = {f.stem: pq.ParquetFile(f).metadata.num_rows for f in sorted(CORPORA.glob("*.parquet"))}
    alloc = allocate(sizes, args.docs)
    mach["loadavg_start"] = os.getloadavg()
    print(f"machine: {mach['nproc']} cores, {mach['cpu']}, Python {mach['python']}; pinned to CPU {args.core}",
          file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="cdpd-bench-") as tmp:
        print("[train] fitting linear on the non-held-out units ...", file=sys.stderr)
        train = run_worker("train", args, tmp, Path(tmp) / "train.json")
        results = {}
        for name in TAGGERS:
            print(f"[{name}] timing {args.docs} documents and the annotated units ...", file=sys.stderr)
            results[name] = run_worker(name, args, tmp, Path(tmp) / f"{name}.json")
    mach["loadavg_end"] = os.getloadavg()
    section = render(args, mach, train, results, sizes, alloc)
    print(section)
    if not args.no_write:
        write_section(args.out, section)
        print(f"wrote {args.out}", file=sys.stderr)
    failed = [desc for _k, desc, _t, _v, ok in goals(train, results) if not ok]
    print(f"goals: {len(GOALS) - len(failed)} of {len(GOALS)} met" + (f"; not met: {'; '.join(failed)}" if failed else ""),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
