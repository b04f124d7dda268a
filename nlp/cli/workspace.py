"""Workspace commands: ``cdpd ingest`` (documents in), ``cdpd run`` (the main job: shipped corpus, default model,
classification, summary), ``cdpd summary``, ``cdpd search`` and ``cdpd app``.

The work itself is in :mod:`nlp.jobs`, which the app and the Dask backend call too; these functions read options
and print what the jobs report."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from . import _util
from ..limits import MAX_SEARCH_LIMIT
from ._util import (EXIT_OK, EXIT_SKIPPED, CLIError, accepted_documents, codebook_of, dask_tagger, err, int_in_range,
                    model_of, open_workspace, printable, progress_bar)


def cmd_ingest(args) -> int:
    from ..jobs import import_documents

    rejected = [0]
    with open_workspace(args) as ws, progress_bar(None, "importing", quiet=args.quiet) as bar:
        report = import_documents(ws, accepted_documents(args, rejected), progress=bar)
    if rejected[0] and not report.read:
        raise CLIError(f"no document could be read ({rejected[0]} rejected)")
    for doc_id, why in report.duplicates:
        err(f"skipped {doc_id}: duplicate, {why}")
    for doc_id, lang in report.non_english:
        err(f"flagged {doc_id}: not English (detected {lang!r}); stored but not tagged")
    print(f"added {report.added} document(s) to {ws.path}; {len(report.duplicates)} duplicate(s), "
          f"{rejected[0]} rejected, {len(report.non_english)} flagged non-English")
    status = EXIT_SKIPPED if rejected[0] else EXIT_OK
    if args.classify:
        return max(status, classify_workspace(args))
    if report.added:
        err("run `cdpd run` (or `cdpd ingest --classify`) to tag them")
    return status


def classify_workspace(args, codebook=None) -> int:
    """Tag what the chosen model has not classified in the workspace (:func:`nlp.jobs.classify_workspace`), with a
    progress bar, in this process or on ``--dask``."""
    from ..jobs import classify_workspace as classify

    codebook = codebook or codebook_of(args)
    tagger, info = model_of(args, codebook)
    bar = None

    def started(report) -> None:
        nonlocal bar
        if report.on_dask and not args.quiet:
            err("the workers see this workspace: they read and write it" if report.shared else
                "this process sends the texts and writes the results (not every worker sees this workspace)")
        bar = progress_bar(report.todo, f"classifying ({info.ref})", quiet=args.quiet)

    class Progress:  # the bar exists once the job knows how much there is to do
        def update(self, n: int) -> None:
            bar.update(n)

    with open_workspace(args) as ws, dask_tagger(args, tagger, info, codebook) as on_dask:
        try:
            report = classify(ws, tagger, info, codebook, dask=on_dask, progress=Progress(), before=started)
        finally:
            if bar is not None:
                bar.close()
    if not report.todo:
        err(f"every document is already classified with {info.ref}")
    return 0


def cmd_run(args) -> int:
    """The main job: workspace from the shipped corpus, the default model (trained if missing), a summary."""
    from ..annotations import SEED_FILES, read_seed_annotations
    from ..jobs import import_folder_of_tables
    from ..models import DEFAULT_MODEL, DEFAULT_TAGGER, ModelError, activate, active_ref, read_meta
    from ..training import train

    t0 = time.perf_counter()
    codebook = codebook_of(args)
    with open_workspace(args) as ws:
        import_folder_of_tables(
            ws, _util.CORPORA, progress=lambda name: progress_bar(None, f"importing {name}", quiet=args.quiet),
            on_rejected=lambda row: err(f"skipped {row.id}: {row.reason}"),
            on_file=lambda name, r: err(f"{name}: {r.added} added, {len(r.duplicates)} duplicate(s) skipped, "
                                        f"{len(r.non_english)} flagged non-English"))
    args.model = args.model or active_ref() or DEFAULT_MODEL
    try:
        if args.model != "lexicon":  # the lexicon tagger needs no files
            read_meta(args.model)
    except ModelError:
        if args.model != DEFAULT_MODEL:
            raise
        names = " + ".join(p.name for p in SEED_FILES)
        err(f"no trained {DEFAULT_MODEL!r} model yet: training it on {names}")
        # the shipped model's card says what a source it never saw gets (six more fits, about two minutes, once)
        info, _ = train(read_seed_annotations(codebook), codebook, tagger=DEFAULT_TAGGER, name=DEFAULT_MODEL,
                        progress=err, source=f"shipped annotations ({names})", leave_source_out=True)
        if active_ref() is None:
            activate(info.ref)
    classify_workspace(args, codebook)
    cmd_summary(args)
    err(f"done in {time.perf_counter() - t0:.0f}s; workspace at {Path(args.workspace or 'workspace')}")
    return 0


def cmd_summary(args) -> int:
    import pandas as pd

    with open_workspace(args, create=False) as ws:
        model = args.model if args.model and "@" in args.model else None
        if model is None:
            wanted = args.model
            models = [m for m in ws.models() if wanted is None or m.split("@")[0] == wanted]
            model = ws.latest_model() if wanted is None else (models[-1] if models else None)
        print("Documents per source")
        print(ws.documents_per_source().to_string())
        if model is None:
            print("\nNo classified documents yet: run `cdpd run`.")
            return 0
        shares = ws.label_shares(model, by=args.by)
        print(f"\nShare of documents per label by {args.by} (model {model})")
        with pd.option_context("display.width", 200, "display.max_rows", 200):
            print((shares * 100).round(1).to_string(float_format=lambda v: f"{v:5.1f}%"))
    return 0


def cmd_search(args) -> int:
    with open_workspace(args, create=False) as ws:
        hits = ws.search(args.query, limit=args.limit, sort=args.sort)
    if hits.empty:
        print("no match")
        return 0
    # the order on stderr, so that stdout stays one tab-separated line (and a snippet) per document
    print("ranked by relevance (BM25; last column, higher is better)" if args.sort == "relevance" else
          "newest first (last column: relevance, BM25)", file=sys.stderr)
    for row in hits.itertuples():
        fields = [printable(v) for v in (row.id, row.source, row.date, str(row.title or "")[:80],
                                          f"{row.relevance:.2f}", row.snippet)]
        print("{}\t{}\t{}\t{}\t{}\n    {}".format(*fields))
    return 0


def cmd_app(args) -> int:
    """Serve app.py with Streamlit (blocks until stopped with Ctrl-C)."""
    import subprocess

    app = Path(__file__).resolve().parent.parent.parent / "app.py"
    if not app.exists():
        raise CLIError(f"{app} not found: the app runs from a checkout of cdpd (app.py beside nlp/)")
    env = dict(os.environ)
    if args.workspace:
        env["CDPD_HOME"] = str(Path(args.workspace).resolve())
    if args.codebook:
        env["CDPD_CODEBOOK"] = str(Path(args.codebook).resolve())
    err(f"cdpd app on http://{args.address}:{args.port} (Ctrl-C stops it)")
    command = [sys.executable, "-m", "streamlit", "run", str(app), "--server.headless", "true",
               "--server.address", args.address, "--server.port", str(args.port)]
    try:
        return subprocess.call(command, env=env, cwd=app.parent)
    except KeyboardInterrupt:
        return 0


def register(sub, parents) -> None:
    """Add this group's commands to ``sub`` (``parents``: the shared option groups)."""
    s = sub.add_parser("ingest", parents=[parents.common, parents.meta, parents.dask], help="add documents to the workspace")
    s.add_argument("inputs", nargs="+", metavar="PATH")
    s.add_argument("--classify", action="store_true", help="tag the new documents right away")
    s.add_argument("--model", help="model for --classify (default: linear)")
    s.set_defaults(func=cmd_ingest)


    s = sub.add_parser("run", parents=[parents.common, parents.dask], help="build the default workspace: import, train if needed, "
                       "classify, summarise")
    s.add_argument("--model", help="model name (default: linear, trained on the seed annotations if missing)")
    s.add_argument("--by", default="issuer_type", help="grouping of the label-share summary (default: issuer_type)")
    s.set_defaults(func=cmd_run)


    s = sub.add_parser("summary", parents=[parents.common], help="documents per source and label shares per group")
    s.add_argument("--model", help="model name or NAME@VERSION (default: the latest used)")
    s.add_argument("--by", default="issuer_type",
                   help="issuer_type (default), issuer, source, country, city or year")
    s.set_defaults(func=cmd_summary)


    s = sub.add_parser("search", parents=[parents.common], help="full-text search of the workspace (FTS5 syntax)")
    s.add_argument("query")
    s.add_argument("--limit", type=int_in_range(1, MAX_SEARCH_LIMIT), default=20,
                   help="at most this many documents (1-10000; default 20)")
    s.add_argument("--sort", choices=("relevance", "date"), default="relevance",
                   help="relevance (default: FTS5 BM25, best first) or date (newest first)")
    s.set_defaults(func=cmd_search)


    s = sub.add_parser("app", parents=[parents.common], help="open the Streamlit app on the workspace")
    s.add_argument("--port", type=int, default=8501, help="port to serve on (default 8501)")
    s.add_argument("--address", default="127.0.0.1", help="address to serve on (default 127.0.0.1: this machine only)")
    s.set_defaults(func=cmd_app)

