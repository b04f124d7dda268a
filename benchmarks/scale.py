#!/usr/bin/env python
"""Scale benchmark: workspace classification in-process vs on Dask, memory as the corpus grows, trend latency.

    .venv/bin/python benchmarks/scale.py [--docs 2000] [--repeat 3] [--passages 10000,100000]
                                         [--predictions 1000000] [--skip memory,...] [--out benchmarks/RESULTS.md]

What it measures
  * Throughput of workspace classification (what ``cdpd ingest --classify`` and ``cdpd run`` do after the import:
    read unclassified documents, tag them with the linear tier, write passages, predictions and the pre-aggregated
    counts) on ``--docs`` documents drawn with a fixed seed from ``corpora/*.parquet`` (``benchmarks/tagging.py``'s
    sample: proportional to each file's rows, sources interleaved). Five configurations: in-process (the default
    path, one process), Dask ``local:1`` and ``local:2`` (LocalClusters of one-thread worker processes that read
    and write the workspace themselves, as ``--dask local:N`` does), and ``local:2`` with the client reading,
    shipping and writing (what workers on other machines get); and, as a reference for what two cores give
    this workload, the in-process path in two processes side by side, each on half of the documents in a workspace
    of its own (no Dask, nothing shared). ``--repeat`` rounds time each configuration in turn, one alive at a time,
    each round on new documents and with every configuration started afresh (new processes, new clusters), loaded
    and warmed up (spaCy caches) on the same other documents; the median is reported. Also one cold run of the
    whole command (``python -m nlp ingest SAMPLE --classify [--dask local:N]``: process start, import, model load,
    cluster start).
  * Peak memory at ``--passages`` passages (10k and 100k): a fresh process per size classifies a workspace of the
    shipped corpus plus the full UN General Debate (shuffled with a fixed seed, imported beforehand) until that many
    passages are tagged, in-process and on Dask ``local:2``; peak RSS (VmHWM) of the process doing the work
    (for Dask: the client and the largest worker).
  * Trend query latency at ``--predictions`` prediction rows: a synthetic workspace (metadata shaped like the
    shipped corpus plus the UN General Debate, see :func:`synthetic_documents`; 20 labels per document, ~45%
    selected; predictions inserted through the workspace's triggers, which keep the pre-aggregated counts), then
    ``nlp.analysis.tables.trends`` and ``label_table`` timed (median of 7 after a warm-up), and a trend answered by a
    scan of the predictions for comparison. Synthetic rows are fine here: latency depends on row counts and group
    cardinalities, not on what the texts say.

BLAS/OpenMP threads are 1 in every process. The console gets the tables; ``--out`` gets a
``## Scale (benchmarks/scale.py)`` section, replacing only that section (``benchmarks/_results.py``).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import tagging as _tagging  # noqa: E402  (the corpus sample, machine description and table helpers)
from nlp.distributed import DEFAULT_PARTITION, MIN_PARTITION  # noqa: E402
from _results import write_section  # noqa: E402

SECTION = "## Scale (benchmarks/scale.py)"
UNGDC = ROOT.parent / "shared" / "corpora" / "ungdc.jsonl.gz"
WARMUP_DOCS = 64
CLIENT_WRITES = "dask local:2, client writes"
TWO_PROCESSES = "two independent processes (reference, no Dask)"
CONFIGS = ("in-process", TWO_PROCESSES, "dask local:1", "dask local:2", CLIENT_WRITES)
GOALS = {"speedup": 1.7, "memory": 0.10, "trend_ms": 200.0}


def log(msg: str) -> None:
    print(f"[scale {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def maxrss() -> int:
    """Peak RSS of this process: VmHWM, the high-water mark of its own address space. (``ru_maxrss`` would do for
    a forked process, but after fork and exec Linux keeps the parent's peak in it.)"""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return _tagging.maxrss_bytes()


# -- model and workspaces ----------------------------------------------------------------------------------------
def train_model(models: Path) -> str:
    """The default linear model, trained on the seed annotations into a private registry; returns its ref."""
    os.environ["CDPD_MODELS"] = str(models)
    from nlp.annotations import SEED_ANNOTATIONS
    from nlp.codebook import load_codebook
    from nlp.training import train

    info, _ = train(SEED_ANNOTATIONS, load_codebook(), tagger="linear", name="linear")
    return info.ref


def load(ref: str):
    from nlp.codebook import load_codebook
    from nlp.models import load_model

    codebook = load_codebook()
    tagger, info = load_model(ref, codebook)
    return codebook, tagger, info


def import_workspace(home: Path, docs) -> None:
    from nlp.workspace import Workspace

    with Workspace(home) as ws:
        ws.add_documents(docs)


def copy_workspace(template: Path, home: Path) -> Path:
    if home.exists():
        shutil.rmtree(home)
    shutil.copytree(template, home)
    return home


def classify_in_process(home: Path, runner, info, tagger, stop_at_passages: int | None = None) -> dict:
    """What ``cdpd ingest --classify`` does after the import, in this process."""
    from nlp.workspace import Workspace

    with Workspace(home) as ws:
        ws.register_model(info.ref, info.name, info.version, info.tagger, tagger.labels)
        t0, c0 = time.perf_counter(), time.process_time()
        docs = passages = 0
        for batch in ws.unclassified(info.ref, batch_size=256):
            tagged = list(runner.tag((doc for _, doc in batch), batch_size=256))
            ws.save_predictions(info.ref, [(doc_id, t) for (doc_id, _), t in zip(batch, tagged)], tagger.thresholds_)
            docs += len(batch)
            passages += sum(len(t.passages) for t in tagged)
            if stop_at_passages and passages >= stop_at_passages:
                break
        return {"seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0, "docs": docs,
                "passages": passages}


def classify_on_dask(home: Path, runner, info, tagger, stop_at_passages: int | None = None,
                     shared: bool | None = None) -> dict:
    """The same on a DaskTagger, as ``nlp.distributed.classify_workspace`` does it: when the workers see the
    workspace (``shared``) they read and write it, otherwise the client ships texts, gets results and writes."""
    from nlp.workspace import Workspace

    shared = runner.shares_workspace(home) if shared is None else shared
    with Workspace(home) as ws:
        ws.register_model(info.ref, info.name, info.version, info.tagger, tagger.labels)
        from distributed import get_task_stream

        w0 = runner.client.run(cpu_seconds)
        t0, c0, wall0 = time.perf_counter(), time.process_time(), time.time()
        docs = passages = 0
        if shared:
            parts = runner.tag_workspace(home, info.ref, runner.workspace_partitions(ws))
        else:
            batches = runner.document_partitions(ws)
            parts = runner.tag_partitions((([i for i, _ in b], [d for _, d in b]) for b in batches))
        with get_task_stream(runner.client) as stream:
            try:
                for part in parts:
                    if shared:
                        n_docs, n_passages = part
                    else:
                        ids, tagged = part
                        ws.save_predictions(info.ref, list(zip(ids, tagged)), tagger.thresholds_)
                        n_docs, n_passages = len(ids), sum(len(t.passages) for t in tagged)
                    docs += n_docs
                    passages += n_passages
                    if stop_at_passages and passages >= stop_at_passages:
                        break
            finally:
                parts.close()  # cancels what is still in flight
            seconds, cpu, wall1 = time.perf_counter() - t0, time.process_time() - c0, time.time()
        w1 = runner.client.run(cpu_seconds)
        workers = [w1[w] - w0[w] for w in w1 if w in w0]
        busy: dict[str, float] = {}  # seconds each worker spent running a partition, within the run
        for task in stream.data:
            for span in task.get("startstops", ()):
                if span.get("action") == "compute":
                    overlap = min(span["stop"], wall1) - max(span["start"], wall0)
                    busy[task["worker"]] = busy.get(task["worker"], 0.0) + max(overlap, 0.0)
        return {"seconds": seconds, "cpu": cpu, "docs": docs, "passages": passages, "worker_cpu": workers,
                "worker_busy": [b / (wall1 - wall0) for b in busy.values()]}


def cpu_seconds() -> float:
    """CPU time (user + system) of the calling process: run on every Dask worker."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- throughput --------------------------------------------------------------------------------------------------
_FRESH: dict = {}  # in a spawned benchmark process: the loaded model, and the barrier that starts it with its twin


def _fresh_start(ref: str, warm_home: str, barrier) -> None:
    """Pool initializer: load the model and warm it up on the warm-up documents, as every configuration does."""
    from nlp.pipeline import DocumentTagger
    from nlp.text import TextProcessor

    codebook, tagger, info = load(ref)
    runner = DocumentTagger(tagger, TextProcessor(codebook))
    home = copy_workspace(Path(warm_home), Path(warm_home).parent / f"warm-{os.getpid()}")
    classify_in_process(home, runner, info, tagger)
    shutil.rmtree(home, ignore_errors=True)
    _FRESH.update(runner=runner, info=info, tagger=tagger, barrier=barrier)


def _fresh_classify(home: str) -> dict:
    if _FRESH["barrier"] is not None:
        _FRESH["barrier"].wait()  # both halves start together
    return classify_in_process(Path(home), _FRESH["runner"], _FRESH["info"], _FRESH["tagger"])


def classify_fresh(ctx, ref: str, warm_home: Path, homes: list[Path]) -> dict:
    """The in-process path in new processes (one, or two side by side, each on its own workspace): like each Dask
    configuration, which starts its cluster every round, they begin with a model that has seen only the warm-up
    documents (a process that has tagged more knows more words, and spaCy's vocabulary makes new words cost more)."""
    barrier = ctx.Barrier(len(homes)) if len(homes) > 1 else None
    with ctx.Pool(len(homes), initializer=_fresh_start, initargs=(ref, str(warm_home), barrier)) as pool:
        runs = pool.map(_fresh_classify, [str(h) for h in homes], chunksize=1)
    if len(runs) == 1:
        return runs[0]
    return {"seconds": max(r["seconds"] for r in runs), "cpu": 0.0,
            "docs": sum(r["docs"] for r in runs), "passages": sum(r["passages"] for r in runs),
            "worker_cpu": [r["cpu"] for r in runs], "worker_busy": [r["seconds"] / max(x["seconds"] for x in runs)
                                                                   for r in runs]}


def throughput(args, ref: str, tmp: Path) -> dict:
    import multiprocessing

    from nlp.distributed import DaskTagger, connect, parse_target

    # every round tags documents that no configuration has seen: a process that has tagged a text before knows
    # its words (spaCy's vocabulary grows as new words come), which would flatter whoever ran before
    docs, _sizes, _alloc = _tagging.sample_documents(args.docs * args.repeat + WARMUP_DOCS, args.seed)
    warm, docs = docs[:WARMUP_DOCS], docs[WARMUP_DOCS:]
    rounds = [docs[r * args.docs:(r + 1) * args.docs] for r in range(args.repeat)]
    warm_template = tmp / "warm"
    import_workspace(warm_template, warm)
    codebook, tagger, info = load(ref)  # for the Dask configurations' clients (this process tags nothing)
    words = sum(len(((d.title or "") + " " + d.text).split()) for d in docs)

    # Only one configuration is alive at a time, and each round starts every one afresh: in-process (a new
    # process) and the reference (two new processes) as each Dask configuration (a new cluster), all with the
    # model loaded and warmed up (spaCy caches) on the same other documents. So no idle cluster slows a run, and
    # no configuration has learnt more words than another.
    ctx = multiprocessing.get_context("spawn")
    results: dict[str, list[dict]] = {name: [] for name in CONFIGS}
    for r, round_docs in enumerate(rounds):
        template, halves = tmp / "sample", [tmp / "half-a", tmp / "half-b"]
        for folder, part in ((template, round_docs), (halves[0], round_docs[0::2]), (halves[1], round_docs[1::2])):
            shutil.rmtree(folder, ignore_errors=True)
            import_workspace(folder, part)
        for name in CONFIGS:
            home = copy_workspace(template, tmp / "run")
            if name == "in-process":
                res = classify_fresh(ctx, ref, warm_template, [home])
            elif name == TWO_PROCESSES:
                res = classify_fresh(ctx, ref, warm_template, [copy_workspace(h, tmp / f"run-{h.name}")
                                                              for h in halves])
            else:
                t0 = time.perf_counter()
                with connect(parse_target(name.split()[1].rstrip(","))) as client, \
                        DaskTagger(client, tagger, info, codebook) as runner:
                    runner.warm_up()
                    shared = name != CLIENT_WRITES
                    classify_on_dask(copy_workspace(warm_template, tmp / "warm-run"), runner, info, tagger,
                                     shared=shared)
                    log(f"{name}: cluster up and warm in {time.perf_counter() - t0:.1f}s")
                    res = classify_on_dask(home, runner, info, tagger, shared=shared)
            res["load"] = os.getloadavg()[0]
            results[name].append(res)
            log(f"round {r + 1} {name}: {res['docs']} docs in {res['seconds']:.1f}s "
                f"({res['docs'] / res['seconds']:.0f} docs/s; load {res['load']:.2f})")

    # one cold run of the whole command per configuration
    sample = tmp / "sample.jsonl"
    with open(sample, "w", encoding="utf-8") as fh:
        for d in rounds[0]:
            fh.write(json.dumps(d.to_dict(), ensure_ascii=False, default=str) + "\n")
    cold = {}
    for name in CONFIGS:
        if name in (CLIENT_WRITES, TWO_PROCESSES):  # no command does these here (CLIENT_WRITES: remote workers)
            continue
        home = tmp / "cold"
        shutil.rmtree(home, ignore_errors=True)
        cmd = [sys.executable, "-m", "nlp", "ingest", str(sample), "--classify", "--model", ref, "--workspace",
               str(home), "-q"] + (["--dask", name.split()[1]] if name != "in-process" else [])
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cold[name] = time.perf_counter() - t0
        log(f"cold command {name}: {cold[name]:.1f}s")
    passages = sum(r["passages"] for r in results["in-process"])
    return {"docs": len(docs), "round_docs": args.docs, "words": words, "passages": passages, "runs": results,
            "cold": cold}


# -- memory ------------------------------------------------------------------------------------------------------
def memory_worker(args) -> dict:
    """In a fresh process: load, warm up, then classify until ``--target`` passages; report peak RSS."""
    codebook, tagger, info = load(args.model)
    home = Path(args.home)
    if args.mode == "in-process":
        from nlp.pipeline import DocumentTagger
        from nlp.text import TextProcessor

        runner = DocumentTagger(tagger, TextProcessor(codebook))
        list(runner.tag(_tagging.sample_documents(16, 1)[0]))  # warm-up outside the workspace
        loaded = maxrss()
        res = classify_in_process(home, runner, info, tagger, stop_at_passages=args.target)
        res.update(rss=maxrss(), rss_loaded=loaded)
        return res
    from nlp.distributed import DaskTagger, connect, parse_target

    with connect(parse_target("local:2")) as client, DaskTagger(client, tagger, info, codebook) as runner:
        runner.warm_up()
        loaded = maxrss()
        res = classify_on_dask(home, runner, info, tagger, stop_at_passages=args.target)
        workers = client.run(maxrss)
        res.update(rss=maxrss(), rss_loaded=loaded, worker_rss=max(workers.values()))
    return res


def memory(args, ref: str, tmp: Path) -> dict:
    import random

    from nlp.ingest import read_table

    template = tmp / "big"
    t0 = time.perf_counter()
    files = sorted((ROOT / "corpora").glob("*.parquet"))
    docs = [d for f in files if f.stem != "ungdc_sample" for d in read_table(f)]
    if UNGDC.exists():
        docs += list(read_table(UNGDC))
    else:
        log(f"{UNGDC} not found: memory runs on the shipped corpus only")
    random.Random(args.seed).shuffle(docs)
    if args.memory_docs:
        docs = docs[: args.memory_docs]
    import_workspace(template, docs)
    n_docs = len(docs)
    del docs
    log(f"memory: imported {n_docs} documents in {time.perf_counter() - t0:.0f}s")
    out = {"docs": n_docs, "runs": {}}
    for mode in ("in-process", "dask local:2"):
        for target in args.passages:
            home = copy_workspace(template, tmp / "mem")
            json_path = tmp / "mem.json"
            cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "memory", "--mode", mode.split()[0],
                   "--target", str(target), "--home", str(home), "--model", ref, "--json", str(json_path)]
            subprocess.run(cmd, check=True, cwd=ROOT)
            res = json.loads(json_path.read_text())
            out["runs"][(mode, target)] = res
            log(f"memory {mode} {target}: {res['passages']} passages, {res['docs']} docs in {res['seconds']:.0f}s, "
                f"peak RSS {_tagging.mib(res['rss'])}" + (f", worker {_tagging.mib(res['worker_rss'])}"
                                                          if "worker_rss" in res else ""))
    return out


# -- trends ------------------------------------------------------------------------------------------------------
def synthetic_documents(n_docs: int, rng):
    """Metadata shaped like the shipped corpus plus the UN General Debate, scaled to ``n_docs`` documents:
    40% UN speeches (one per country and session: 193 countries, 1946-2024, dated to the month, speakers nearly
    unique), 35% city documents (3 sources, 400 cities in 40 countries, 2014-2025, a tenth undated as the climate
    city contracts are), 25% national press releases (2 sources, 60 officials, 2021-2025)."""
    countries = [f"C{i:03d}" for i in range(193)]
    cities = [(f"City {i}", countries[i % 40]) for i in range(400)]
    city_sources = ["city council resolutions", "county news", "climate city contracts"]
    national_sources = ["state department", "briefing room"]
    for i in range(n_docs):
        kind = i % 20
        if kind < 8:
            year = int(rng.integers(1946, 2025))
            yield ("UN General Debate", f"speaker {int(rng.integers(20000))}", "national",
                   countries[int(rng.integers(193))], "", f"{year}-09")
        elif kind < 15:
            city, country = cities[int(rng.integers(len(cities)))]
            source = city_sources[kind % 3]
            date = "" if source == "climate city contracts" and rng.random() < 0.3 else \
                f"{int(rng.integers(2014, 2026))}-{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d}"
            yield source, city, "city", country, city, date
        else:
            yield (national_sources[kind % 2], f"official {int(rng.integers(60))}", "national", "USA", "",
                   f"{int(rng.integers(2021, 2026))}-{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d}")


def synthetic_workspace(home: Path, n_docs: int, labels: dict[str, list[str]], seed: int) -> dict:
    """Documents with corpus-like metadata (:func:`synthetic_documents`) and one prediction per label each (~45%
    selected, as in the UN General Debate), written through the workspace's triggers, which keep the counts."""
    import numpy as np

    from nlp.workspace import Workspace

    rng = np.random.default_rng(seed)
    model = "synthetic@00000000"
    t0 = time.perf_counter()
    with Workspace(home) as ws:
        ws.register_model(model, "synthetic", "00000000", "linear", labels)
        now = "2026-01-01T00:00:00+00:00"
        flat = [(axis, lab) for axis, labs in labels.items() for lab in labs]
        rates = rng.uniform(0.05, 0.85, size=len(flat))  # some labels common, some rare: ~45% selected
        docs = enumerate(synthetic_documents(n_docs, rng))
        while True:
            chunk = [item for _, item in zip(range(5000), docs)]
            if not chunk:
                break
            rows, preds, classified = [], [], []
            for i, (source, issuer, issuer_type, country, city, date) in chunk:
                rows.append((i + 1, f"syn-{i}", source, issuer, issuer_type, country, city, date,
                             f"synthetic document {i}", f"key-{i}", "en", 3, now))
                chosen = rng.random(len(flat)) < rates
                scores = rng.random(len(flat))
                preds.extend((model, i + 1, axis, lab, float(s), int(c), None)
                             for (axis, lab), s, c in zip(flat, scores, chosen))
                classified.append((model, i + 1, now))
            with ws.transaction() as conn:
                conn.executemany("INSERT INTO documents (doc_id, id, source, issuer, issuer_type, country, city, "
                                 "date, text, text_key, lang, n_words, added_at) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
                conn.executemany("INSERT INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?)", preds)
                conn.executemany("INSERT INTO classified VALUES (?, ?, ?)", classified)
        seconds = time.perf_counter() - t0
        stats = {name: ws.conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0]  # fixed table names
                 for name in ("documents", "predictions", "label_counts", "group_counts", "labels_by_month",
                              "labels_by_country")}
        stats["selected"] = ws.conn.execute("SELECT count(*) FROM predictions WHERE selected = 1").fetchone()[0]
    stats.update(model=model, insert_seconds=seconds)
    return stats


def timed(fn, repeat: int = 7) -> dict:
    fn()  # warm-up: pages in the OS cache, statements compiled
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return {"median_ms": statistics.median(times) * 1000, "max_ms": max(times) * 1000, "rows": len(out)}


def trend_latency(args, tmp: Path) -> dict:
    from nlp.analysis.tables import Filters, label_table, trends
    from nlp.codebook import load_codebook
    from nlp.workspace import Workspace

    labels = load_codebook().label_sets()
    per_doc = sum(len(v) for v in labels.values())
    n_docs = -(-args.predictions // per_doc)
    home = tmp / "trends"
    stats = synthetic_workspace(home, n_docs, labels, args.seed)
    log(f"trends: {stats['predictions']:,} predictions ({stats['selected']:,} selected), "
        f"{stats['label_counts']:,} label_counts rows, written in {stats['insert_seconds']:.0f}s")
    m = stats["model"]
    un = Filters({"source": ["UN General Debate"]})
    queries = [  # (name, call, part of the goal)
        ("trends by year", lambda ws: trends(ws, m), True),
        ("trends by month", lambda ws: trends(ws, m, period="month"), True),
        ("trends by year, UN speeches only", lambda ws: trends(ws, m, filters=un), True),
        ("trends by year and source, 1990-2010, domains", lambda ws: trends(
            ws, m, axis="domains", by="source", filters=Filters(date_from="1990", date_to="2010")), True),
        ("trends by year and issuer type", lambda ws: trends(ws, m, by="issuer_type"), True),
        ("trends by year, one country", lambda ws: trends(ws, m, filters=Filters({"country": ["C007"]})), True),
        ("trends by year and country, five countries", lambda ws: trends(
            ws, m, by="country", filters=Filters({"country": ["C001", "C002", "C003", "C004", "USA"]})), True),
        ("trends by month, one city", lambda ws: trends(ws, m, period="month",
                                                        filters=Filters({"city": ["City 7"]})), True),
        ("trends by year, one issuer", lambda ws: trends(ws, m, filters=Filters({"issuer": ["official 3"]})), True),
        ("trends by year, the 10 largest countries", lambda ws: trends(ws, m, by="country", top=10), True),
        ("trends by year, the 10 largest issuers", lambda ws: trends(ws, m, by="issuer", top=10), True),
        ("trends by month, the 10 largest cities", lambda ws: trends(ws, m, period="month", by="city", top=10),
         True),
        ("full split, an export: trends by year and country, every country", lambda ws: trends(ws, m, by="country"),
         False),
        ("full split, an export: trends by year and issuer, every issuer", lambda ws: trends(ws, m, by="issuer"),
         False),
        ("label_table by source (CD-PD diagram)", lambda ws: label_table(ws, m, by="source"), False),
        ("label_table by country", lambda ws: label_table(ws, m, by="country"), False),
        ("for comparison, a scan: trends by year with a bound to the day", lambda ws: trends(
            ws, m, filters=Filters(date_from="1946-01-01")), False),
    ]
    out = {"stats": stats, "queries": []}
    with Workspace(home, create=False) as ws:
        for name, fn, goal in queries:
            res = timed(lambda: fn(ws))
            res.update(name=name, goal=goal)
            out["queries"].append(res)
            log(f"{name}: {res['median_ms']:.1f} ms (max {res['max_ms']:.1f}; {res['rows']} rows)")
    return out


# -- report ------------------------------------------------------------------------------------------------------
def render(args, mach: dict, tp: dict | None, mem: dict | None, tr: dict | None) -> str:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cmd = " ".join(["python benchmarks/scale.py"] + sys.argv[1:])
    table, mib = _tagging.table, _tagging.mib
    lines = [SECTION, "",
             f"Run {now} with `{cmd}` at git {mach['git']}.  ",
             f"Machine: {mach['nproc']} cores (nproc), {mach['cpu']}, {mach['os']}, Python {mach['python']}. "
             f"Load average (1 min) {mach['loadavg_start'][0]:.2f} at the start, {mach['loadavg_end'][0]:.2f} at the "
             "end: other processes share these cores, and a Dask run needs both of them free to reach 2x.", ""]
    verdicts = []
    if tp:
        med = {name: statistics.median(r["docs"] / r["seconds"] for r in runs) for name, runs in tp["runs"].items()}
        best = {name: max(r["docs"] / r["seconds"] for r in runs) for name, runs in tp["runs"].items()}
        def per_doc(runs, key):  # median CPU milliseconds per document
            return statistics.median(1000 * key(r) / r["docs"] for r in runs)

        client_ms = {name: per_doc(runs, lambda r: r["cpu"]) for name, runs in tp["runs"].items()}
        worker_ms = {name: per_doc(runs, lambda r: sum(r.get("worker_cpu", []))) for name, runs in tp["runs"].items()}
        busiest_ms = {name: per_doc(runs, lambda r: max(r.get("worker_cpu", [0]))) for name, runs in tp["runs"].items()}
        busy = {name: statistics.median(statistics.mean(r["worker_busy"]) if r.get("worker_busy") else 0.0
                                        for r in runs) for name, runs in tp["runs"].items()}
        got = {name: statistics.median(statistics.mean(r["worker_cpu"]) / r["seconds"] if r.get("worker_cpu")
                                       else 0.0 for r in runs) for name, runs in tp["runs"].items()}
        # what the CPU time allows on two otherwise idle cores: the busier of the two cores, the client (one busy
        # thread) and the busiest worker bound the wall time
        bound = {name: 1000 / max((client_ms[name] + worker_ms[name]) / 2, client_ms[name], busiest_ms[name])
                 for name in CONFIGS}
        base = med["in-process"]
        per_doc_passages = tp["passages"] / sum(r["docs"] for r in tp["runs"]["in-process"])
        lines += ["### Throughput: workspace classification, linear tier", "",
                  f"{tp['round_docs']:,} corpus documents per run ({tp['words'] / tp['docs']:.0f} words and "
                  f"{per_doc_passages:.2f} passages per document on average; seed {args.seed}), read "
                  "from the workspace, tagged, and written back (passages, predictions, pre-aggregated counts). "
                  f"Median of {args.repeat} runs per configuration, taken in rounds; each round tags "
                  f"{tp['round_docs']:,} documents no configuration has seen ({tp['docs']:,} in all), with models "
                  "loaded and warmed up on other documents. The cold column is one "
                  "run of the whole command on an empty workspace (process start, import of the documents, model "
                  "load, cluster start).", "",
                  table(["configuration", "docs/s (median)", "docs/s (best)", "vs in-process", "passages/s",
                         "CPU ms/doc: client", "CPU ms/doc: workers", "workers busy", "CPU a worker got",
                         "CPU-bound docs/s on 2 idle cores", "cold command (s)"],
                        [[name, f"{med[name]:.0f}", f"{best[name]:.0f}", f"{med[name] / base:.2f}x",
                          f"{med[name] * per_doc_passages:.0f}",
                          "—" if name == TWO_PROCESSES else f"{client_ms[name]:.2f}",
                          f"{worker_ms[name]:.2f}" if worker_ms[name] else "—",
                          f"{busy[name]:.0%}" if busy[name] else "—",
                          f"{got[name]:.2f} cores" if got[name] else "—", f"{bound[name]:.0f}",
                          f"{tp['cold'][name]:.1f}" if name in tp["cold"] else "—"] for name in CONFIGS]),
                  "",
                  "Configurations: `dask local:N` is what `--dask local:N` does: the workers share the machine's "
                  "files, so the client hands out partitions of doc_ids and each worker reads its documents from "
                  "the workspace, tags them and saves them (SQLite in WAL mode, one writer at a time). `client "
                  "writes` is what workers on other machines (`--dask tcp://...`) get, run here on the same "
                  "LocalCluster: the client reads the texts, ships them, receives the results and is the only "
                  "writer. The reference row runs no Dask at all: the in-process path in two new processes, each "
                  "tagging half of the documents into a workspace of its own, which is what two cores give this "
                  "workload when nothing is shared or coordinated. Only one configuration is up at a time (no idle "
                  "cluster during the in-process runs).", "",
                  "CPU ms/doc: CPU time per document of the process running the loop (in-process: all the work; "
                  "Dask: handing out partitions, or for `client writes` also reading, shipping, receiving and "
                  "writing; plus the LocalCluster's scheduler, which runs in that process) and of all workers "
                  "together. CPU-bound docs/s: the "
                  "throughput those CPU times allow on two cores nobody else uses (wall time at least half the total "
                  "CPU time, the client's and the busiest worker's): an upper bound to compare with the measured "
                  "column when the machine is shared. Workers busy: the share of the run each worker spent inside a "
                  "partition (Dask's task stream; below 100% means it waited for work). CPU a worker got: its CPU "
                  "seconds per wall second while it was busy or not (1.00 = a whole core). Dask workers have one "
                  f"thread each, partitions of up to {DEFAULT_PARTITION} documents that shrink toward the end of a run "
                  f"(down to {MIN_PARTITION}), two partitions in flight per worker."]
        ratio = med["dask local:2"] / base
        verdicts.append(f"Dask local:2 vs in-process, measured: {ratio:.2f}x (goal ≥ {GOALS['speedup']}x): "
                        + ("pass" if ratio >= GOALS["speedup"] else "**not met**")
                        + f"; from CPU time on two idle cores: {bound['dask local:2'] / bound['in-process']:.2f}x "
                        f"(load average {statistics.median(r['load'] for rs in tp['runs'].values() for r in rs):.1f} "
                        f"during the runs); the reference, two independent processes: {med[TWO_PROCESSES] / base:.2f}x"
                        f", so Dask local:2 reaches {med['dask local:2'] / med[TWO_PROCESSES]:.0%} of what two cores "
                        "give this workload")
        lines.append("")
    if mem:
        rows = []
        runs = mem["runs"]
        for (mode, target), r in sorted(runs.items(), key=lambda kv: (kv[0][0] != "in-process", kv[0][1])):
            rows.append([mode, f"{target:,}", f"{r['passages']:,}", f"{r['docs']:,}", f"{r['seconds']:.0f}",
                         f"{r['passages'] / r['seconds']:.0f}",
                         mib(r["rss_loaded"]), mib(r["rss"]), mib(r["worker_rss"]) if "worker_rss" in r else "—"])
        lines += ["### Peak memory as the corpus grows", "",
                  f"A workspace of {mem['docs']:,} documents (the shipped corpus without its UN sample, plus the "
                  "full UN General Debate, shuffled with a fixed seed) classified by a fresh process until the "
                  "target number of passages was tagged. Peak RSS is VmHWM (the high-water mark of resident "
                  "memory) of the process "
                  "doing the work; for Dask also the largest worker's. Loaded: the peak after loading spaCy and the "
                  "model (and, for Dask, starting the cluster), before the loop. One run each: passages/s is "
                  "the speed of that run (long UN speeches included), not a controlled comparison.", "",
                  table(["configuration", "target passages", "passages", "documents", "seconds", "passages/s",
                         "RSS loaded",
                         "peak RSS", "peak RSS, largest worker"], rows), ""]
        for mode in ("in-process", "dask local:2"):
            sizes = sorted(t for m, t in runs if m == mode)
            if len(sizes) >= 2:
                small, big = runs[(mode, sizes[0])], runs[(mode, sizes[-1])]
                growth = big["rss"] / small["rss"] - 1
                verdicts.append(f"peak memory {mode}, {sizes[0]:,} -> {sizes[-1]:,} passages: {growth:+.1%} "
                                f"(goal within ±{GOALS['memory']:.0%}): "
                                + ("pass" if abs(growth) <= GOALS["memory"] else "**not met**"))
                if "worker_rss" in big:
                    wg = big["worker_rss"] / small["worker_rss"] - 1
                    verdicts.append(f"peak memory of a Dask worker, same sizes: {wg:+.1%}")
    if tr:
        s = tr["stats"]
        lines += [f"### Trend queries at {s['predictions'] / 1e6:g}M predictions", "",
                  f"Synthetic workspace (synthetic rows: latency depends on row counts and group cardinalities, not "
                  f"on the texts): {s['documents']:,} documents with metadata shaped like the shipped corpus plus "
                  "the UN General Debate (40% UN speeches: 193 countries, sessions 1946-2024, nearly one speaker per "
                  "speech; 35% city documents: 3 sources, 400 cities, 2014-2025, some undated; 25% national press "
                  f"releases), {s['predictions']:,} predictions ({s['selected']:,} selected). The triggers kept "
                  f"{s['label_counts']:,} `label_counts` rows (about one per selected prediction: issuer and country "
                  f"make nearly every UN speech a group of its own), {s['group_counts']:,} `group_counts` rows, "
                  f"and the rollups, e.g. {s['labels_by_month']:,} `labels_by_month` and "
                  f"{s['labels_by_country']:,} `labels_by_country` rows, while the predictions were written "
                  f"({s['insert_seconds']:.0f} s for all rows, counts included). No `ANALYZE` statistics. Median "
                  "and slowest of 7 calls after a warm-up; every call returns a pandas DataFrame. The goal covers "
                  "the queries a trend chart or the CLI makes (the app compares at most 20 groups in one chart, "
                  "`top=N`); the full splits return one row per label, period and group (hundreds of thousands) "
                  "and are listed for what an export of all of them costs; the scan and `label_table` are for "
                  "comparison.", "",
                  table(["query", "median (ms)", "slowest (ms)", "rows out"],
                        [[q["name"] + ("" if q["goal"] else " (not in the goal)"), f"{q['median_ms']:.1f}",
                          f"{q['max_ms']:.1f}", f"{q['rows']:,}"] for q in tr["queries"]]), ""]
        goal_q = [q for q in tr["queries"] if q["goal"]]
        missed = [q for q in goal_q if q["median_ms"] >= GOALS["trend_ms"]]
        verdicts.append(f"trend queries under {GOALS['trend_ms']:.0f} ms: {len(goal_q) - len(missed)} of "
                        f"{len(goal_q)}" + ("" if not missed else "; **not met** by " + "; ".join(
                            f"{q['name']} ({q['median_ms']:.0f} ms, {q['rows']:,} rows out)" for q in missed)))
        exports = [q for q in tr["queries"] if q["name"].startswith("full split")]
        if exports:
            verdicts.append("full splits over every group (exports, outside the goal): " + "; ".join(
                f"{q['name'].split(': ', 1)[1]} {q['median_ms']:.0f} ms for {q['rows']:,} rows" for q in exports))
    lines += ["### Goals", ""] + [f"- {v}" for v in verdicts]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--docs", type=int, default=2000, help="documents per throughput run (default 2000)")
    p.add_argument("--repeat", type=int, default=5, help="timed rounds (default 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--passages", type=lambda s: [int(x) for x in s.split(",")], default=[10_000, 100_000],
                   help="passage counts for the memory runs (default 10000,100000)")
    p.add_argument("--predictions", type=int, default=1_000_000, help="prediction rows for trend latency")
    p.add_argument("--memory-docs", type=int, default=0, help="documents of the memory workspace (default: all)")
    p.add_argument("--skip", default="", help="comma-separated parts to skip: throughput, memory, trends")
    p.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--worker", choices=["memory"], help=argparse.SUPPRESS)
    p.add_argument("--mode", choices=["in-process", "dask"], help=argparse.SUPPRESS)
    p.add_argument("--target", type=int, help=argparse.SUPPRESS)
    p.add_argument("--home", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--json", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        args.json.write_text(json.dumps(memory_worker(args)))
        return 0
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    mach = _tagging.machine()
    mach["loadavg_start"] = os.getloadavg()
    tp = mem = tr = None
    with tempfile.TemporaryDirectory(prefix="cdpd-scale-") as tmpdir:
        tmp = Path(tmpdir)
        os.environ["CDPD_HOME"] = str(tmp / "home")
        ref = None
        if not {"throughput", "memory"} <= skip:
            log("training the linear model on the seed annotations ...")
            ref = train_model(tmp / "models")
        if "throughput" not in skip:
            tp = throughput(args, ref, tmp)
        if "memory" not in skip:
            mem = memory(args, ref, tmp)
        if "trends" not in skip:
            tr = trend_latency(args, tmp)
    mach["loadavg_end"] = os.getloadavg()
    section = render(args, mach, tp, mem, tr)
    print(section)
    if not args.no_write:
        write_section(args.out, section)
        log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
