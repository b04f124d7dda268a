#!/usr/bin/env python
"""App page render times: one full script run of every page of the Streamlit app, on the default workspace and on
a workspace of 100,000 documents.

    .venv/bin/python benchmarks/app_speed.py [--repeat 3] [--docs 100000] [--big PATH] [--out benchmarks/RESULTS.md]
    CDPD_HOME=/tmp/cdpd-bench-100k .venv/bin/python benchmarks/app_speed.py --profile corpus  # where time goes

What it measures
  * A page render is one full script run through ``streamlit.testing.v1.AppTest``: ``AppTest.from_file(app.py)``,
    one run of the default page (untimed: a session's first run also pays AppTest's set-up, ~1 s),
    ``switch_page(page)``, then the timed ``run()`` (for Classify, a second run of it). Each is a new session, as a
    new browser tab is.
  * Warm server, cold data: every page is first run once in the process (imports done, the model loaded into
    ``st.cache_resource``, as in a server that has served a page before), then ``--repeat`` timed rounds over
    all pages, ``st.cache_data`` cleared before every run so that no computed table or diagram is reused: the
    median is reported, wall clock and CPU time (the script runs alone in its thread while the main thread waits:
    its CPU time is what an idle core would take; the machine is often shared). The first run of each page in a
    fresh process (page modules imported, model loaded) is reported beside it, from a new subprocess per page.
  * Workspaces: (a) the default one (``$CDPD_HOME`` or ``./workspace``; built with ``cdpd run`` if missing),
    timed on a copy (``--copy``: the app upgrades an older schema when it opens a workspace, and the benchmark
    leaves the user's alone), and (b) a copy grown to ``--docs`` documents with SQL: each copied document gets a
    suffix in its id, text and ``text_key`` (the UNIQUE constraints hold), and copies of the original's passages,
    passage labels, predictions and classified rows for the same model, so that it looks classified by the active
    model without running the model (the pre-aggregated counts are kept by the workspace's triggers, the
    full-text index by its own). Both are reused while the source workspace and ``nlp/workspace.py`` are
    unchanged (building (b) takes about two minutes).

Models come from ``$CDPD_MODELS`` (default ``./models``). The console gets the table; ``--out`` gets an
``## App page render times (benchmarks/app_speed.py)`` section, replacing only that section (``_results.py``).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sqlite3  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app.py"
SECTION = "## App page render times (benchmarks/app_speed.py)"
PAGES = {"classify": "Classify", "corpus": "Corpus & trends", "diagram": "CD-PD diagram", "annotate": "Annotate",
         "models": "Models"}
GOAL_DEFAULT_S = 2.0
GOAL_BIG_S = 5.0
COPY_TABLES = ("passages", "passage_labels", "predictions", "classified")


# -- the workspaces -------------------------------------------------------------------------------------------------
def source_stamp(path: Path) -> str:
    """What the copies were made from: the source's size and last classification, and the workspace code (its
    schema can change without a version bump while it is being worked on)."""
    import hashlib

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        n = conn.execute("SELECT count(*), coalesce(max(doc_id), 0) FROM documents").fetchone()
        c = conn.execute("SELECT count(*), coalesce(max(classified_at), '') FROM classified").fetchone()
    finally:
        conn.close()
    code = hashlib.sha256((ROOT / "nlp" / "workspace.py").read_bytes()).hexdigest()[:12]
    return f"{n[0]}:{n[1]}:{c[0]}:{c[1]}:{code}"


def _stamp_of(db: Path, key: str) -> str | None:
    if not db.exists():
        return None
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None
    except sqlite3.DatabaseError:
        return None
    finally:
        conn.close()


def _copy_db(source_db: Path, dest_home: Path) -> Path:
    dest_home.mkdir(parents=True, exist_ok=True)
    db = dest_home / source_db.name
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{source_db}?mode=ro", uri=True)
    dst = sqlite3.connect(db)
    src.backup(dst)  # a consistent copy, even of a workspace in WAL mode being written
    src.close()
    dst.close()
    return db


def snapshot(source_home: Path, dest_home: Path, say=print) -> dict:
    """A copy of the default workspace to time pages on: the app upgrades an older workspace schema when it opens
    one, and the benchmark must not do that to the user's workspace. Reused while the source is unchanged."""
    from nlp.workspace import DB_FILE, Workspace

    stamp = source_stamp(source_home / DB_FILE)
    if _stamp_of(dest_home / DB_FILE, "benchmark:copied_from") == stamp:
        return {"reused": True}
    t0 = time.perf_counter()
    _copy_db(source_home / DB_FILE, dest_home)
    with Workspace(dest_home) as ws:  # upgrade the copy's schema now, not inside a timed run
        ws.set_meta("benchmark:copied_from", stamp)
    say(f"copied {source_home / DB_FILE} to {dest_home} in {time.perf_counter() - t0:.1f}s")
    return {"reused": False}


def build_big(source_home: Path, big_home: Path, target: int, say=print) -> dict:
    """``big_home`` as a copy of ``source_home`` grown to ``target`` documents (see the module docstring)."""
    from nlp.workspace import DB_FILE, Workspace

    stamp = f"{source_stamp(source_home / DB_FILE)}->{target}"
    db = big_home / DB_FILE
    if _stamp_of(db, "benchmark:grown_from") == stamp:
        return {"reused": True}
    if db.exists():
        say(f"{big_home}: out of date, rebuilding")
    t0 = time.perf_counter()
    _copy_db(source_home / DB_FILE, big_home)
    say(f"copied {source_home / DB_FILE} in {time.perf_counter() - t0:.1f}s")
    with Workspace(big_home) as ws:  # upgrades the copy's schema if older (pre-aggregated counts built)
        conn = ws.conn
        originals = conn.execute("SELECT count(*), max(doc_id) FROM documents").fetchone()
        n_orig, max_orig = originals
        if n_orig == 0:
            raise SystemExit(f"{source_home} has no documents to copy")
        conn.execute("CREATE TEMP TABLE originals AS SELECT doc_id FROM documents ORDER BY doc_id")
        columns = [r[1] for r in conn.execute("PRAGMA table_info(documents)") if r[1] != "doc_id"]
        copy = 0
        while ws.count_documents() < target:
            copy += 1
            need = min(n_orig, target - ws.count_documents())
            t1 = time.perf_counter()
            suffix = f"~copy{copy}"
            values = {c: c for c in columns}
            values.update(id="id || :suffix", text_key="text_key || :suffix",
                          text="text || char(10) || char(10) || '(benchmark copy ' || :copy || ')'")
            with ws.transaction():
                conn.execute("DROP TABLE IF EXISTS temp.docmap")
                conn.execute("CREATE TEMP TABLE docmap (old INTEGER PRIMARY KEY, new INTEGER NOT NULL)")
                conn.execute(
                    f"INSERT INTO documents ({', '.join(columns)}) SELECT {', '.join(values[c] for c in columns)} "
                    "FROM documents WHERE doc_id IN (SELECT doc_id FROM originals ORDER BY doc_id LIMIT :need) "
                    "ORDER BY doc_id", {"suffix": suffix, "copy": copy, "need": need})
                conn.execute("INSERT INTO docmap (old, new) SELECT o.doc_id, c.doc_id FROM documents o "
                             "JOIN documents c ON c.id = o.id || :suffix WHERE o.doc_id <= :max",
                             {"suffix": suffix, "max": max_orig})
                conn.execute("INSERT INTO passages (doc_id, idx, start, end, n_words) SELECT m.new, p.idx, p.start, "
                             "p.end, p.n_words FROM passages p JOIN docmap m ON m.old = p.doc_id")
                conn.execute("INSERT INTO passage_labels (model, passage_id, label, score) "
                             "SELECT pl.model, p2.passage_id, pl.label, pl.score FROM passage_labels pl "
                             "JOIN passages p1 ON p1.passage_id = pl.passage_id JOIN docmap m ON m.old = p1.doc_id "
                             "JOIN passages p2 ON p2.doc_id = m.new AND p2.idx = p1.idx")
                conn.execute("INSERT INTO predictions (model, doc_id, axis, label, score, selected, evidence) "
                             "SELECT p.model, m.new, p.axis, p.label, p.score, p.selected, p.evidence "
                             "FROM predictions p JOIN docmap m ON m.old = p.doc_id")
                conn.execute("INSERT INTO classified (model, doc_id, classified_at) SELECT c.model, m.new, "
                             "c.classified_at FROM classified c JOIN docmap m ON m.old = c.doc_id")
            say(f"copy {copy}: {need:,} documents in {time.perf_counter() - t1:.1f}s "
                f"({ws.count_documents():,} in all)")
        ws.set_meta("benchmark:grown_from", stamp)
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("documents", *COPY_TABLES)}
    conn = sqlite3.connect(db)  # no ANALYZE: the workspace never runs it, so query plans stay those users get
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    say(f"built {big_home} in {time.perf_counter() - t0:.0f}s: {counts}")
    return {**counts, "reused": False}


def workspace_stats(home: Path) -> dict:
    from nlp.workspace import DB_FILE

    conn = sqlite3.connect(f"file:{home / DB_FILE}?mode=ro", uri=True)
    try:
        out = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("documents", *COPY_TABLES)}
    finally:
        conn.close()
    out["bytes"] = (home / DB_FILE).stat().st_size
    return out


# -- timing (in a worker process) -----------------------------------------------------------------------------------
def run_page(name: str):
    """One session showing page ``name``: (wall seconds of its script run, CPU seconds of this process meanwhile,
    exception messages). The script runs in a thread of AppTest's while this one waits, so the CPU time is the
    script's own: what the wall time would be on an idle core."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=600)
    at.run()  # the default page (Classify); a session's first run also pays AppTest's own set-up
    at.switch_page(f"nlp/app/pages/{name}.py")
    t0, c0 = time.perf_counter(), time.process_time()
    at.run()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    errors = [str(e.value)[:300] for e in at.exception]
    if not at.title or (name != "classify" and at.title[0].value == "Classify documents"):
        errors.append(f"page {name} did not render (title: {[t.value for t in at.title]})")
    return seconds, cpu, errors


def worker(args) -> int:
    """Time pages in this process (``CDPD_HOME`` set by the driver) and write JSON."""
    import streamlit as st

    pages = args.pages.split(",")
    out: dict = {"first": {}, "runs": {p: [] for p in pages}, "cpu": {p: [] for p in pages}, "errors": {}}
    if args.first_only:
        seconds, _cpu, errors = run_page(pages[0])
        out["first"][pages[0]] = seconds
        out["errors"][pages[0]] = errors
    else:
        for page in pages:  # warm-up: imports, model in cache_resource
            out["first"][page], _cpu, errors = run_page(page)
            out["errors"][page] = errors
        for _ in range(args.repeat):
            for page in pages:
                st.cache_data.clear()
                seconds, cpu, errors = run_page(page)
                out["runs"][page].append(seconds)
                out["cpu"][page].append(cpu)
                out["errors"][page] += errors
    Path(args.json).write_text(json.dumps(out))
    return 0


def profile_page(args) -> int:
    """cProfile one timed run of ``--profile PAGE`` (after a warm-up run) and print the top functions. AppTest runs
    the script in a thread of its own: every thread started during the run is profiled."""
    import cProfile
    import pstats
    import threading

    import streamlit as st

    run_page(args.profile)
    st.cache_data.clear()
    profiles: list[cProfile.Profile] = []
    original = threading.Thread.run

    def profiled_run(self):
        prof = cProfile.Profile()
        profiles.append(prof)
        prof.runcall(original, self)

    threading.Thread.run = profiled_run
    try:
        seconds, _cpu, errors = run_page(args.profile)
    finally:
        threading.Thread.run = original
    print(f"{args.profile}: {seconds:.2f}s {errors or ''}")
    stats = pstats.Stats(*profiles) if profiles else None
    if stats is not None:
        stats.sort_stats("cumulative").print_stats(args.profile_filter, args.profile_top)
    return 0


#: Where workers' own output goes (Streamlit's warnings and the tracebacks of failing pages).
WORKER_LOG = Path(tempfile.gettempdir()) / "cdpd-app-speed-workers.log"


def spawn(home: Path, pages: list[str], repeat: int, first_only: bool = False) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "out.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--pages", ",".join(pages),
               "--repeat", str(repeat), "--json", str(path)] + (["--first-only"] if first_only else [])
        with open(WORKER_LOG, "a", encoding="utf-8") as log:
            log.write(f"\n== {home} {pages} {'first' if first_only else f'repeat {repeat}'}\n")
            log.flush()
            subprocess.run(cmd, check=True, cwd=ROOT, env=dict(os.environ, CDPD_HOME=str(home)), stdout=log,
                           stderr=subprocess.STDOUT)
        return json.loads(path.read_text())


def measure(home: Path, repeat: int, say=print) -> dict:
    say(f"[{home}] warm runs ...")
    warm = spawn(home, list(PAGES), repeat)
    first = {}
    for page in PAGES:
        say(f"[{home}] first run of {page} in a fresh process ...")
        res = spawn(home, [page], 0, first_only=True)
        first[page] = res["first"][page]
        warm["errors"][page] += res["errors"][page]
    return {"median": {p: statistics.median(v) for p, v in warm["runs"].items()},
            "cpu": {p: statistics.median(v) for p, v in warm["cpu"].items()},
            "runs": warm["runs"], "first": first, "errors": {p: sorted(set(e)) for p, e in warm["errors"].items()}}


# -- report -------------------------------------------------------------------------------------------------------
def machine() -> dict:
    import streamlit
    from _results import cpu_model, git_commit  # benchmarks/ is on sys.path when this script runs

    return {"cores": len(os.sched_getaffinity(0)), "cpu": cpu_model(), "python": platform.python_version(),
            "streamlit": streamlit.__version__, "commit": git_commit(ROOT)}


def verdict(wall: float, cpu: float, goal: float, errors) -> str:
    if errors:
        return "**error**"
    if wall < goal:
        return "pass"
    return "FAIL on the wall clock, pass on CPU" if cpu < goal else "**FAIL**"


def render(saved: dict, default_home: Path, notes: Path | None = None) -> str:
    default, big, load, mach = saved["default"], saved["big"], saved["load"], saved["machine"]
    stats_a, stats_b = saved["stats"]
    lines = [SECTION, "",
             f"Run {saved['when']} with `{saved['command']}` at git {mach['commit']}.  ",
             f"Machine: {mach['cores']} cores, {mach['cpu']}, Python {mach['python']}, Streamlit "
             f"{mach['streamlit']}. Load average (1 min) {load[0]:.2f} at the start, {load[1]:.2f} at the end: "
             "other processes share these cores, so wall times are inflated; the CPU time of the script (the "
             "page's thread runs alone in its process, numpy on one thread) is what an idle core would take.",
             "",
             f"- **Default workspace** (`{default_home}`, timed on a copy): {stats_a['documents']:,} documents, "
             f"{stats_a['passages']:,} passages, {stats_a['predictions']:,} predictions "
             f"({stats_a['bytes'] / 2**20:.0f} MB).",
             f"- **100k workspace**: the default one grown to {stats_b['documents']:,} documents by copying its "
             f"documents, passages, passage labels, predictions and classified rows with SQL (ids, texts and text "
             f"keys suffixed; no model run): {stats_b['passages']:,} passages, {stats_b['predictions']:,} "
             f"predictions ({stats_b['bytes'] / 2**20:.0f} MB).",
             f"- **Render** = one full script run of the page in a new `AppTest` session; server warm (every page "
             f"run once before, model loaded), `st.cache_data` cleared before each run: median of {saved['repeat']} "
             f"runs, wall clock (CPU in brackets). **First run** = the page's first run in a fresh process (its "
             f"modules imported, the model loaded), wall clock, for information.",
             "",
             f"| page | default workspace (s) | 100k workspace (s) | goal: < {GOAL_DEFAULT_S:.0f} s default | "
             f"goal: < {GOAL_BIG_S:.0f} s at 100k | first run, default (s) | first run, 100k (s) |",
             "| --- | ---: | ---: | --- | --- | ---: | ---: |"]
    misses = []
    for page, title in PAGES.items():
        a, b = default["median"][page], big["median"][page]
        ca, cb = default["cpu"][page], big["cpu"][page]
        va = verdict(a, ca, GOAL_DEFAULT_S, default["errors"][page])
        vb = verdict(b, cb, GOAL_BIG_S, big["errors"][page])
        lines.append(f"| {title} | {a:.2f} ({ca:.2f}) | {b:.2f} ({cb:.2f}) | {va} | {vb} | "
                     f"{default['first'][page]:.2f} | {big['first'][page]:.2f} |")
        if va != "pass" or vb != "pass":
            misses.append(f"{title} ({va} / {vb})".replace("*", ""))
    errors = [f"{which} {page}: {e}" for which, res in (("default", default), ("100k", big))
              for page, errs in res["errors"].items() for e in errs]
    lines.append("")
    lines.append("Goals: every page renders in under 2 s on the default workspace and under 5 s on 100,000 documents: "
                 + ("all met." if not misses else f"missed by {'; '.join(misses)}."))
    if errors:
        lines += ["", f"Errors raised by pages during the runs (tracebacks in `{WORKER_LOG}`):", ""]
        lines += [f"- {e}" for e in errors]
    if notes is not None:
        lines += ["", Path(notes).read_text(encoding="utf-8").strip()]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=3, help="timed runs per page and workspace (median reported)")
    p.add_argument("--docs", type=int, default=100_000, help="documents in the large workspace")
    p.add_argument("--big", type=Path, default=Path(tempfile.gettempdir()) / "cdpd-bench-100k",
                   help="folder of the large workspace (built if missing or stale, reused otherwise)")
    p.add_argument("--copy", type=Path, default=Path(tempfile.gettempdir()) / "cdpd-bench-default",
                   help="folder of the copy of the default workspace that pages are timed on")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "RESULTS.md",
                   help="markdown file whose app section is written or replaced")
    p.add_argument("--no-write", action="store_true", help="print the table only")
    p.add_argument("--notes", type=Path, help="markdown appended to the section (e.g. profiling findings)")
    p.add_argument("--build-only", action="store_true", help="build the large workspace and stop")
    p.add_argument("--save-json", type=Path, help="also write the measurements to this JSON file")
    p.add_argument("--from-json", type=Path, help="render measurements saved by --save-json instead of measuring")
    p.add_argument("--profile", choices=list(PAGES),
                   help="cProfile one run of this page on $CDPD_HOME (default: the copy of ./workspace) and stop")
    p.add_argument("--profile-filter", default=r"nlp/|pandas/io/sql|prince|plotly/express|streamlit/elements",
                   help="regular expression on file names kept in the profile listing")
    p.add_argument("--profile-top", type=int, default=40, help="functions listed by --profile")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--first-only", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--pages", default=",".join(PAGES), help=argparse.SUPPRESS)
    p.add_argument("--json", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    if args.worker:
        return worker(args)

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    from nlp.workspace import DB_FILE, default_home

    if args.profile:
        if "CDPD_HOME" not in os.environ:  # the default workspace, through its copy (never upgraded in place)
            snapshot(default_home().resolve(), args.copy.resolve(), say=say)
            os.environ["CDPD_HOME"] = str(args.copy.resolve())
        return profile_page(args)
    home = default_home().resolve()
    if not (home / DB_FILE).exists():
        say(f"no workspace at {home}: building it with `cdpd run`")
        subprocess.run([str(Path(sys.executable).with_name("cdpd")), "run"], check=True, cwd=ROOT)
    small, big_home = args.copy.resolve(), args.big.resolve()
    if args.from_json:  # re-render a measured run (e.g. with --notes added)
        saved = json.loads(args.from_json.read_text())
    else:
        snapshot(home, small, say=say)
        build_big(home, big_home, args.docs, say=say)
        if args.build_only:
            return 0
        load0 = os.getloadavg()[0]
        default = measure(small, args.repeat, say=say)
        big = measure(big_home, args.repeat, say=say)
        saved = {"default": default, "big": big, "load": [load0, os.getloadavg()[0]], "repeat": args.repeat,
                 "stats": [workspace_stats(small), workspace_stats(big_home)], "machine": machine(),
                 "command": " ".join(["python benchmarks/app_speed.py"] + sys.argv[1:]),
                 "when": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
        if args.save_json:
            args.save_json.write_text(json.dumps(saved))
    section = render(saved, home, notes=args.notes)
    print(section)
    if not args.no_write:
        from _results import write_section  # benchmarks/ is on sys.path when this script runs

        write_section(args.out, section)
        say(f"wrote the section to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
