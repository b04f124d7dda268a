#!/usr/bin/env python
"""Diagram speed: ``build_diagram`` with its convergence reading (200 bootstrap replicates) on a real workspace and
on a synthetic 100,000-document one.

    .venv/bin/python benchmarks/diagram_speed.py [--workspace DIR] [--synthetic 100000] [--replicates 200]
                                                 [--repeat 3] [--out benchmarks/RESULTS.md] [--no-write]

What it measures
  * On the real workspace (``--workspace``, default ``$CDPD_HOME`` or ``workspace``; copied to a temporary folder
    first, so the original is only read): per unit (intensity, documents, passages), the per-document read
    (:func:`nlp.analysis.units.unit_matrix`, diplomatic units only) and the convergence reading
    (:func:`nlp.analysis.convergence.convergence`, ``--replicates``), median of ``--repeat`` runs after a warm-up;
    the sides description; the whole ``build_diagram`` (CA table, CA, both readings, MDS); and one cold
    ``cdpd diagram`` in a fresh process (import, read, analyse, write the HTML and the CSV tables).
  * On a synthetic workspace of ``--synthetic`` documents (metadata shaped like the real corpus: 3/4 city, 1/4
    national; 1-12 passages each; labels drawn per passage; written with bulk SQL into a workspace created by the
    workspace's own schema, triggers included), the same reads and readings, and ``build_diagram``. Synthetic rows
    are fine here: the time depends on row counts, not on what the texts say.

Goal (issue 14): ``cdpd diagram`` and ``cdpd report`` under 10 s on the default workspace including 200 replicates;
the unit matrix of the default workspace well under 1 s; 100k documents in a few seconds. The console gets the table; ``--out`` gets
a ``## Diagram speed (benchmarks/diagram_speed.py)`` section (``_results.py``).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import resource  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
from _results import cpu_model, git_commit, write_section  # noqa: E402

SECTION = "## Diagram speed (benchmarks/diagram_speed.py)"
GOAL_S = 10.0
UNITS = ("intensity", "documents", "passages")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def timed(fn, repeat: int) -> tuple[tuple[float, float], object]:
    """Median (wall, CPU) seconds of ``repeat`` calls after one warm-up call, and the last result. CPU time is
    what an idle machine would take: the machine this runs on is often shared."""
    result = fn()
    walls, cpus = [], []
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return (statistics.median(walls), statistics.median(cpus)), result


def measure(home: Path, label: str, replicates: int, repeat: int, cold: bool) -> list[tuple]:
    from nlp.analysis.convergence import convergence
    from nlp.analysis.diagram import build_diagram
    from nlp.analysis.sides import describe
    from nlp.analysis.units import unit_matrix
    from nlp.codebook import load_codebook
    from nlp.workspace import Workspace

    codebook = load_codebook()
    rows = []
    with Workspace(home, create=False) as ws:
        model = ws.latest_model()
        docs = ws.conn.execute("SELECT count(*) FROM classified WHERE model = ?", (model,)).fetchone()[0]
        log(f"{label}: {docs:,} classified documents ({model})")
        for unit in UNITS:
            t_read, matrix = timed(lambda u=unit: unit_matrix(ws, model, "functions", unit=u), repeat)
            t_boot, conv = timed(lambda m=matrix: convergence(m, codebook, replicates=replicates), repeat)
            n = ", ".join(f"{k} {v:,}" for k, v in conv.n.items())
            rows.append((label, f"unit_matrix ({unit}, diplomatic)", t_read, n))
            rows.append((label, f"convergence ({unit}, {replicates} replicates)", t_boot, n))
        t_desc, _ = timed(lambda: describe(ws, model), repeat)
        rows.append((label, "describe (sides)", t_desc, ""))
        t_diag, d = timed(lambda: build_diagram(ws, codebook, model, replicates=replicates), max(1, repeat // 2))
        rows.append((label, f"build_diagram (by source, intensity, {replicates} replicates, both readings)", t_diag,
                     f"{docs:,} documents"))
    if cold:
        # The goal is for the commands as a user runs them: a fresh process, imports and all.
        commands = [("cdpd diagram, cold process (HTML + CSV", ["diagram"], "d.html"),
                    ("cdpd report, cold process (HTML", ["report"], "r.html"),
                    ("cdpd report, cold process (PDF", ["report"], "r.pdf")]
        for what, command, name in commands:
            with tempfile.TemporaryDirectory() as out:
                env = {**os.environ, "PYTHONPATH": str(ROOT)}
                start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
                proc = subprocess.run([sys.executable, "-m", "nlp", *command, "--workspace", str(home),
                                       "--replicates", str(replicates), "--out", str(Path(out) / name)],
                                      env=env, cwd=ROOT, capture_output=True, text=True)
                wall = time.perf_counter() - start
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
                if proc.returncode != 0:
                    raise SystemExit(f"cdpd {command[0]} failed: {proc.stderr[-2000:]}")
            rows.append((label, f"{what}, {replicates} replicates)", (wall, cpu),
                         f"goal < {GOAL_S:g} s: {'met' if min(wall, cpu) < GOAL_S else 'NOT met'} "
                         f"({'wall' if wall < GOAL_S else 'CPU'})"))
    return rows


def synthetic_workspace(home: Path, n_docs: int, seed: int = 0) -> None:
    """``n_docs`` classified documents written with bulk SQL (the workspace's schema and triggers): 3/4 city
    documents (one in ten diplomatic), 1/4 national (four in five diplomatic); 1-12 passages each; each passage
    of a diplomatic document carries each function with a probability drawn per document and side."""
    from nlp.codebook import load_codebook
    from nlp.workspace import Workspace

    rng = np.random.default_rng(seed)
    labels = load_codebook().label_sets()
    functions, domains = labels["functions"], labels["domains"]
    model = "synthetic@00000000"
    with Workspace(home) as ws:
        ws.register_model(model, "synthetic", "00000000", "lexicon", labels)
        city = rng.random(n_docs) < 0.75
        diplomatic = np.where(city, rng.random(n_docs) < 0.1, rng.random(n_docs) < 0.8)
        n_pass = rng.integers(1, 13, size=n_docs)
        sources = np.where(city, np.array(["nyc", "ccc", "kc"])[rng.integers(0, 3, n_docs)],
                           np.array(["state", "wh", "ungdc"])[rng.integers(0, 3, n_docs)])
        now = "2026-01-01T00:00:00"
        with ws.transaction() as conn:
            conn.executemany(
                "INSERT INTO documents (doc_id, id, source, issuer_type, date, text, text_key, n_words, added_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 10, ?)",
                ((i + 1, f"s{i}", sources[i], "city" if city[i] else "national",
                  f"20{10 + i % 15}-0{1 + i % 9}-01", f"synthetic {i}", f"k{i}", now) for i in range(n_docs)))
            pid = 0
            passage_rows, label_rows, prediction_rows = [], [], []
            base = rng.random((n_docs, len(functions))) * 0.4
            for i in range(n_docs):
                doc_labels = set()
                for k in range(int(n_pass[i])):
                    pid += 1
                    passage_rows.append((pid, i + 1, k, 0, 10, 10))
                    if diplomatic[i]:
                        for j in np.flatnonzero(rng.random(len(functions)) < base[i]):
                            label_rows.append((model, pid, functions[j], 0.9))
                            doc_labels.add(functions[j])
                    if rng.random() < 0.3:
                        d = domains[int(rng.integers(0, len(domains)))]
                        label_rows.append((model, pid, d, 0.9))
                        doc_labels.add(d)
                for label in doc_labels:
                    axis = "functions" if label in functions else "domains"
                    prediction_rows.append((model, i + 1, axis, label, 0.9, 1))
            conn.executemany("INSERT INTO passages (passage_id, doc_id, idx, start, end, n_words) "
                             "VALUES (?, ?, ?, ?, ?, ?)", passage_rows)
            conn.executemany("INSERT OR IGNORE INTO passage_labels VALUES (?, ?, ?, ?)", label_rows)
            conn.executemany("INSERT INTO predictions (model, doc_id, axis, label, score, selected) "
                             "VALUES (?, ?, ?, ?, ?, ?)", prediction_rows)
            conn.executemany("INSERT INTO classified VALUES (?, ?, ?)", ((model, i + 1, now) for i in range(n_docs)))
        log(f"synthetic workspace: {n_docs:,} documents, {len(passage_rows):,} passages, {len(label_rows):,} passage "
            f"labels, {len(prediction_rows):,} selected predictions")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workspace", type=Path, default=Path(os.environ.get("CDPD_HOME", "workspace")),
                   help="the real workspace (copied first; default $CDPD_HOME or workspace)")
    p.add_argument("--synthetic", type=int, default=100_000, help="documents of the synthetic workspace (0: skip)")
    p.add_argument("--replicates", type=int, default=200)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    p.add_argument("--no-write", action="store_true", help="print only")
    args = p.parse_args(argv)

    rows = []
    with tempfile.TemporaryDirectory(prefix="cdpd-diagram-speed-") as tmp:
        if (args.workspace / "cdpd.sqlite").exists():
            copy = Path(tmp) / "real"
            copy.mkdir()
            for name in ("cdpd.sqlite", "cdpd.sqlite-wal"):
                if (args.workspace / name).exists():
                    shutil.copy2(args.workspace / name, copy / name)
            rows += measure(copy, "real workspace", args.replicates, args.repeat, cold=True)
        else:
            log(f"no workspace at {args.workspace}: real-workspace timings skipped")
        if args.synthetic:
            start = time.perf_counter()
            synthetic_workspace(Path(tmp) / "synthetic", args.synthetic)
            log(f"synthetic workspace written in {time.perf_counter() - start:.0f} s")
            rows += measure(Path(tmp) / "synthetic", f"synthetic {args.synthetic:,}", args.replicates, args.repeat,
                            cold=False)

    width = max(len(r[1]) for r in rows)
    table = ["| workspace | step | wall s | CPU s | counted |", "| --- | --- | ---: | ---: | --- |"]
    for label, step, (wall, cpu), note in rows:
        print(f"{label:<18} {step:<{width}} {wall:8.3f} s wall {cpu:8.3f} s CPU  {note}")
        table.append(f"| {label} | {step} | {wall:.3f} | {cpu:.3f} | {note} |")
    section = "\n".join([
        SECTION, "",
        f"Run {dt.date.today().isoformat()} at commit {git_commit(ROOT)} on {cpu_model()} ({os.cpu_count()} cores, "
        f"shared, load average {os.getloadavg()[0]:.1f} at the end; one BLAS thread). Median of {args.repeat} runs "
        f"after a warm-up (`build_diagram`: of {max(1, args.repeat // 2)}); the cold commands are one fresh "
        f"process each. Goal (issue 14): `cdpd diagram` and `cdpd report` under {GOAL_S:g} s on the default workspace with "
        f"{args.replicates} replicates.", "",
        *table, "",
        "The per-document read is three indexed SQL aggregates read into numpy; the bootstrap draws each side's "
        "document weights as a `bincount` of uniform indices and takes every replicate's numerators as one matrix "
        "product, in blocks of at most 4M weights.",
    ])
    if not args.no_write:
        write_section(args.out, section)
        log(f"wrote the section to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
