"""The ``cdpd`` command line. Results go to stdout (or ``--output``), progress and problems to stderr."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, TextIO

from . import __version__
from .fileio import atomic_path

CORPORA = Path(__file__).resolve().parent.parent / "corpora"


class CLIError(Exception):
    """An unusable input or request: printed as one line, exit status 2."""


#: Exit statuses (README, "The command line"): all went well; some inputs or documents were reported and skipped
#: (the rest was done); a usage error or nothing usable (one line on stderr says why).
EXIT_OK, EXIT_SKIPPED, EXIT_ERROR = 0, 1, 2


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _progress(total: int | None, desc: str, unit: str = "doc", quiet: bool = False):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=quiet, dynamic_ncols=True,
                smoothing=0.1, mininterval=0.5)


@contextmanager
def atomic_output(path: str | None) -> Iterator[TextIO]:
    """stdout, or a file written to a temporary name and renamed on success: never a half-written file. Only a
    regular file is replaced so: a symbolic link is followed (the link stays), and a device, FIFO or socket is
    written into as it is (as root, replacing ``/dev/null`` with a file would break the machine)."""
    if path is None or path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    target = Path(path)
    if target.is_symlink():  # write what the link points to and keep the link
        target = target.resolve()
    if target.exists() and not target.is_file() and not target.is_dir():
        # a device, FIFO or socket (``-o /dev/null``, a pipe): written into as it is, never replaced by a file
        try:
            fh = open(target, "w", encoding="utf-8")
        except OSError as exc:
            raise CLIError(f"{target}: cannot write ({exc.strerror})") from None
        with fh:
            yield fh
        return
    if target.is_dir() or not target.parent.is_dir():
        raise CLIError(f"{target}: --output needs a file name in an existing folder")
    if not os.access(target.parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise CLIError(f"{target}: cannot write there (permission denied)")
    with atomic_path(target) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        yield fh


# -- shared helpers -----------------------------------------------------------------------------------------------
def _reads_text(args) -> bool:
    """Whether the command runs text through spaCy (tags, trains, evaluates or proposes passages)."""
    return (args.command in ("classify", "train", "evaluate", "run", "queue", "annotations")
            or bool(getattr(args, "classify", False)) or (args.command == "models" and bool(args.annotations)))


def _import_spacy_without_torch() -> None:
    """Import spaCy with torch hidden, so that thinc does not import torch: ~1.2 s of the ~1.8 s of ``import spacy``.

    ``thinc/compat.py`` runs ``import torch`` at import time whenever torch is installed, for thinc's PyTorch shims
    and GPU ops; thinc has no setting to skip it (8.3.14 and its main branch; only TensorFlow and MXNet are opt-in).
    cdpd's spaCy is a blank English pipeline on thinc's NumPy ops and never uses those shims; the tiers that need
    torch (embedding, transformer) import it themselves. So for the import of spaCy only, ``sys.modules["torch"]``
    is ``None`` (Python's documented way of making an import fail), and the entry is removed right after: torch
    imports normally later in the process, and only thinc keeps ``has_torch = False`` (its PyTorch wrappers are
    unusable in this process). Done by the command line only, while it runs one thread (another thread could be
    importing torch meanwhile); a library user or the app imports spaCy as usual. Nothing happens when torch or
    thinc is already imported.
    """
    import threading

    if "torch" in sys.modules or "thinc" in sys.modules or threading.active_count() > 1:
        return
    sys.modules["torch"] = None  # type: ignore[assignment]
    try:
        import spacy  # noqa: F401
    finally:
        if "torch" in sys.modules and sys.modules["torch"] is None:
            del sys.modules["torch"]


def _codebook(args):
    from .codebook import load_codebook

    return load_codebook(args.codebook)


def _load(args, codebook):
    from .models import load_model

    return load_model(getattr(args, "model", None), codebook, cache=_embedding_cache(args))


def _embedding_cache(args) -> Path:
    """The workspace's persistent embedding cache (``--workspace`` or ``$CDPD_HOME``), used by every tagger that
    embeds text: a retrain or a second classification of the same passages encodes nothing again."""
    from .embeddings import CACHE_FILE, default_cache_path

    workspace = getattr(args, "workspace", None)
    return Path(workspace) / CACHE_FILE if workspace else default_cache_path()


def _workspace(args, create=True):
    from .workspace import Workspace

    return Workspace(args.workspace, create=create)


def _metadata(args) -> dict[str, str]:
    return {k: v for k, v in {"issuer": args.issuer, "issuer_type": args.issuer_type, "date": args.date,
                              "source": args.source, "country": args.country, "city": args.city}.items() if v}


def _accepted_documents(args, skipped: list[int], english_only: bool = False):
    """The documents of ``args.inputs``; each rejected one (a bad document, or a bad file, named or in a folder) is
    reported (id and reason) and counted in skipped[0]. A missing path or an unsupported file type named on the
    command line stops everything with a one-line CLIError before any work."""
    from .ingest import IngestError, Rejected, detect_language, iter_documents

    try:
        for item in iter_documents(args.inputs, skip_bad_inputs=True,
                                   follow_links=getattr(args, "follow_links", False), **_metadata(args)):
            if isinstance(item, Rejected):
                skipped[0] += 1
                _err(f"skipped {item.id}: {item.reason}")
                continue
            if english_only:
                lang = detect_language(item.text)
                if lang not in ("en", "und"):
                    skipped[0] += 1
                    _err(f"skipped {item.id}: not English (detected {lang!r}); use --any-language to tag it")
                    continue
            yield item
    except IngestError as exc:
        raise CLIError(str(exc)) from None


# -- commands -----------------------------------------------------------------------------------------------------
def cmd_classify(args) -> int:
    from .pipeline import DocumentTagger
    from .text import TextProcessor

    codebook = _codebook(args)
    tagger, info = _load(args, codebook)
    runner = None if getattr(args, "dask", None) else DocumentTagger(tagger, TextProcessor(codebook))
    skipped = [0]
    accepted = _accepted_documents(args, skipped, english_only=not args.any_language)

    n = 0
    with _dask_tagger(args, tagger, info, codebook) as on_dask, atomic_output(args.output) as out, \
            _progress(None, "classifying", quiet=args.quiet) as bar:
        for tagged in (on_dask or runner).tag(accepted, batch_size=args.batch_size):
            record = tagged.to_record(tagger.labels, info.ref, getattr(tagger, "zero_shot", None))
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            n += 1
            bar.update(1)
        if n == 0:  # raised inside the block, so an existing --output file is left as it was
            raise CLIError("no document could be classified")
    _err(f"classified {n} document(s) with {info.ref}" + (f"; skipped {skipped[0]}" if skipped[0] else ""))
    return EXIT_SKIPPED if skipped[0] else EXIT_OK


def cmd_train(args) -> int:
    from .training import train

    from .models import active_ref, activate, read_meta

    codebook = _codebook(args)
    try:
        params = json.loads(args.params) if args.params else None
    except json.JSONDecodeError as exc:
        raise CLIError(f"--params is not JSON ({exc.msg})") from None
    say = (lambda _msg: None) if args.quiet else _err
    previous = active_ref()
    data, source = args.annotations, None
    if data is None:
        data, source = _seed_and_workspace_annotations(args, codebook, say)
    info, metrics = train(data, codebook, tagger=args.model, name=args.name, params=params, progress=say,
                          source=source, cache=_embedding_cache(args))
    print(info.ref)
    if previous and previous != info.ref and not args.quiet:
        _print_comparison(read_meta(previous), info.meta)
    if args.activate or previous is None:
        say(f"active model: {activate(info.ref)}")
    elif previous != info.ref:
        say(f"active model is still {previous}; `cdpd models activate {info.ref}` (or train --activate) to switch")
    return 0


def _seed_and_workspace_annotations(args, codebook, say):
    from .training import seed_and_workspace_annotations

    return seed_and_workspace_annotations(codebook, Path(args.workspace) if args.workspace else None, say)


def cmd_annotations(args) -> int:
    from .annotations import (export_annotations, import_annotations, merge_annotations, read_annotations,
                              read_seed_annotations)

    codebook = _codebook(args)
    if args.action == "import":
        annotations = import_annotations(args.path, codebook, args.format)
        with _workspace(args) as ws:
            existing = ws.annotation_units(codebook)
            report = merge_annotations(existing, annotations)
            for kept, new, old_labels, new_labels in report.conflicts:
                _err(f"conflict: {new} relabels the text of {kept} ({old_labels} -> {new_labels})")
            known = {d for d, _ in report.duplicates}
            added = present = 0
            for ann in annotations:
                if ann.id in known:
                    continue
                annotator = args.annotator or ann.meta.get("annotator") or "import"
                _, new = ws.insert_annotation(ann.text, ann.labels, annotator)  # stored once, even by two imports
                added += new
                present += not new
        print(f"imported {added} annotation(s) from {args.path}; {len(report.duplicates) + present} already present, "
              f"{len(report.conflicts)} conflict(s) reported")
        return 0
    if args.action == "export":
        with _workspace(args, create=False) as ws:
            annotations = ws.annotation_units(codebook)
        if args.with_seed:
            annotations = merge_annotations(read_seed_annotations(codebook), annotations).merged
        path = export_annotations(annotations, args.path, codebook, args.format)
        print(f"exported {len(annotations)} annotation(s) to {path}")
        return 0
    if args.action == "issues":
        from .training import label_issues

        annotations = read_annotations(args.path, codebook)
        rows = label_issues(annotations, codebook, k=args.cv, progress=(lambda _m: None) if args.quiet else _err)
        with atomic_output(args.output) as out:
            for row in rows[: args.top]:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        _err(f"cleanlab flagged {len(rows)} (unit, axis) pair(s) in {len(annotations)} units ({args.cv}-fold "
             f"out-of-fold scores); the {min(args.top, len(rows))} most suspect are listed, lowest quality first")
        return 0
    raise CLIError(f"unknown action {args.action!r}")


def cmd_queue(args) -> int:
    from .queue import workspace_queue

    codebook = _codebook(args)
    tagger, info = _load(args, codebook)
    with _workspace(args, create=False) as ws:
        picked = workspace_queue(ws, tagger, codebook, args.n, strategy=args.strategy, axes=args.axis,
                                 pool=args.pool, seed=args.seed)
    if not picked:
        raise CLIError("no unannotated passage in the workspace: run `cdpd run` (or ingest and classify) first")
    with atomic_output(args.output) as out:
        for cand in picked:
            record = {"passage_id": cand.passage_id, "document": cand.document, "text": cand.text,
                      "margin": cand.margin, "suggested": cand.suggested, "model": info.ref}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    _err(f"{len(picked)} passage(s) chosen by {args.strategy} (pool of up to {args.pool} candidates; {info.ref})")
    return 0


def _print_comparison(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Per-label held-out F1 of two models side by side, when both were measured on the same data."""
    ref_a, ref_b = f"{a['name']}@{a['version']}", f"{b['name']}@{b['version']}"
    from .models import same_heldout

    ha, hb = a.get("metrics", {}).get("heldout"), b.get("metrics", {}).get("heldout")
    if not (ha and hb and same_heldout(a, b)):
        _err(f"no comparison of {ref_a} and {ref_b}: they were not evaluated on the same held-out units "
             "(use `cdpd models compare A B --annotations FILE`)")
        return
    _print_side_by_side(ref_a, ha, ref_b, hb, "the same held-out units")


def _print_sources(r: dict[str, Any], other: dict[str, Any] | None = None) -> None:
    """Per-source micro/macro F1 and false-label rate on empty units of one axis (two reports: side by side)."""
    sources = r.get("by_source") or {}
    if len(sources) < 2:
        return

    def cells(s: dict[str, Any] | None) -> str:
        if not s:
            return f"{'-':>7s} {'-':>7s} {'-':>12s}"
        rate = "-" if s.get("false_on_empty") is None else f"{s['false_on_empty']:.1%}/{s['empty_units']}"
        return f"{s['micro']['f1']:7.3f} {s['macro_f1']:7.3f} {rate:>12s}"

    head = f"{'micro':>7s} {'macro':>7s} {'fp-empty/n':>12s}"
    print(f"  {'source':28s} {'units':>6s} {head}" + (f" | {head}" if other is not None else ""))
    for source, s in sources.items():
        line = f"  {source:28s} {s['n_units']:6d} {cells(s)}"
        if other is not None:
            line += " | " + cells((other.get("by_source") or {}).get(source))
        print(line)


def _print_side_by_side(ref_a: str, ra: dict, ref_b: str, rb: dict, what: str) -> None:
    print(f"\nper-label F1 on {what}: {ref_a} vs {ref_b}")
    for axis in ra:
        if axis not in rb:
            continue
        print(f"\n{axis}: micro-F1 {ra[axis]['micro']['f1']:.3f} vs {rb[axis]['micro']['f1']:.3f}; "
              f"macro-F1 {ra[axis]['macro_f1']:.3f} vs {rb[axis]['macro_f1']:.3f}")
        _print_sources(ra[axis], rb[axis])
        print(f"  {'label':28s} {'A':>6s} {'B':>6s} {'B-A':>7s} {'support':>8s}")
        for label, m in ra[axis]["labels"].items():
            other = rb[axis]["labels"].get(label)
            if other is None:
                continue
            print(f"  {label:28s} {m['f1']:6.3f} {other['f1']:6.3f} {other['f1'] - m['f1']:+7.3f} {m['support']:8d}")


def cmd_evaluate(args) -> int:
    from .annotations import read_annotations
    from .models import active_ref, file_sha256
    from .training import evaluate

    codebook = _codebook(args)
    annotations = read_annotations(args.annotations, codebook)
    if args.random_only:
        from .annotations import EVALUATION_SAMPLES

        annotations = [a for a in annotations if a.sample in (*EVALUATION_SAMPLES, "")]
    if args.cv:
        from .models import read_meta
        from .training import cross_validate

        name = args.model or active_ref() or "linear"
        meta = read_meta(name) if name != "lexicon" else {"tagger": "lexicon", "params": {}, "name": "lexicon",
                                                           "version": "-"}
        title = f"{args.cv}-fold cross-validation of {meta['tagger']} ({meta.get('name')} settings)"
        report = cross_validate(annotations, codebook, tagger=meta["tagger"], params=meta.get("params"), k=args.cv,
                                progress=(lambda _m: None) if args.quiet else _err, cache=_embedding_cache(args))
        model_ref = f"{meta['tagger']} (cross-validated)"
    else:
        tagger, info = _load(args, codebook)
        model_ref = info.ref
        trained_on = info.meta.get("training", {}).get("sha256")
        if trained_on and trained_on == file_sha256(args.annotations):
            _err(f"warning: {info.ref} was trained on {args.annotations}; these scores are optimistic. "
                 "Its held-out scores are in `cdpd models show` (or use --cv).")
        report = evaluate(annotations, tagger, codebook)
        title = f"Evaluation of {info.ref} on {args.annotations}"
    if args.report:
        from .training import report_html, report_markdown

        text = report_html(report, title) if args.report.endswith((".html", ".htm")) else report_markdown(report, title)
        with atomic_output(args.report) as fh:
            fh.write(text)
        _err(f"wrote {args.report}")
    if args.json:
        print(json.dumps({"model": model_ref, "n_units": len(annotations), "axes": report}, indent=2))
        return 0
    print(f"{title}: {len(annotations)} units" if args.cv else
          f"model {model_ref} on {len(annotations)} units of {args.annotations}")
    for axis, r in report.items():
        print(f"\n{axis}: micro P {r['micro']['precision']:.3f} R {r['micro']['recall']:.3f} "
              f"F1 {r['micro']['f1']:.3f} | macro F1 {r['macro_f1']:.3f} | samples F1 {r['samples_f1']:.3f} | "
              f"ECE {r['ece']:.3f}")
        if r.get("false_on_empty") is not None:
            print(f"  {r['false_on_empty']:.1%} of the {r['empty_units']} units without a label were given one")
        print(f"  {'label':28s} {'P':>6s} {'R':>6s} {'F1':>6s} {'support':>8s}")
        for label, m in r["labels"].items():
            print(f"  {label:28s} {m['precision']:6.3f} {m['recall']:6.3f} {m['f1']:6.3f} {m['support']:8d}")
        _print_sources(r)
    return 0


def cmd_ingest(args) -> int:
    rejected = [0]
    accepted = _accepted_documents(args, rejected)

    read = [0]

    def counted():
        for doc in accepted:
            read[0] += 1
            yield doc

    with _workspace(args) as ws, _progress(None, "importing", quiet=args.quiet) as bar:
        report = ws.add_documents(counted(), progress=bar)
    if rejected[0] and not read[0]:
        raise CLIError(f"no document could be read ({rejected[0]} rejected)")
    for doc_id, why in report.duplicates:
        _err(f"skipped {doc_id}: duplicate, {why}")
    for doc_id, lang in report.non_english:
        _err(f"flagged {doc_id}: not English (detected {lang!r}); stored but not tagged")
    print(f"added {report.added} document(s) to {ws.path}; {len(report.duplicates)} duplicate(s), "
          f"{rejected[0]} rejected, {len(report.non_english)} flagged non-English")
    status = EXIT_SKIPPED if rejected[0] else EXIT_OK
    if args.classify:
        return max(status, _classify_workspace(args))
    if report.added:
        _err("run `cdpd run` (or `cdpd ingest --classify`) to tag them")
    return status


def _classify_workspace(args, codebook=None) -> int:
    from .pipeline import DocumentTagger
    from .text import TextProcessor

    codebook = codebook or _codebook(args)
    tagger, info = _load(args, codebook)
    runner = None if getattr(args, "dask", None) else DocumentTagger(tagger, TextProcessor(codebook))
    with _workspace(args) as ws:
        ws.register_model(info.ref, info.name, info.version, info.tagger, tagger.labels)
        todo = ws.count_unclassified(info.ref)
        if not todo:
            _err(f"every document is already classified with {info.ref}")
            return 0
        with _dask_tagger(args, tagger, info, codebook) as on_dask:
            shared = on_dask is not None and on_dask.shares_workspace(ws.home)
            if on_dask is not None and not args.quiet:
                _err("the workers see this workspace: they read and write it" if shared else
                     "this process sends the texts and writes the results (not every worker sees this workspace)")
            with _progress(todo, f"classifying ({info.ref})", quiet=args.quiet) as bar:
                if on_dask is not None:
                    from .distributed import classify_workspace

                    classify_workspace(ws, on_dask, progress=bar, shared=shared)
                else:
                    for batch in ws.unclassified(info.ref, batch_size=256):
                        tagged = list(runner.tag((doc for _, doc in batch), batch_size=256))
                        ws.save_predictions(info.ref, [(doc_id, t) for (doc_id, _), t in zip(batch, tagged)],
                                            tagger.thresholds_)
                        bar.update(len(batch))
    return 0


@contextmanager
def _dask_tagger(args, tagger, info, codebook):
    """With ``--dask``: a DaskTagger on that cluster (started, for local:N, and shut down on exit); else None."""
    spec = getattr(args, "dask", None)
    if not spec:
        yield None
        return
    from .distributed import DaskTagger, connect, parse_target

    target = parse_target(spec)
    if not args.quiet:
        _err(f"connecting to {target.describe()} ...")
    with connect(target) as client, DaskTagger(client, tagger, info, codebook,
                                               partition_size=getattr(args, "partition_size", None)) as runner:
        if not args.quiet:
            _err(f"tagging on Dask: {runner.describe()}")
        yield runner


def _import_shipped_corpus(args) -> None:
    from .ingest import Rejected, read_table

    files = sorted(CORPORA.glob("*.parquet"))
    if not files:
        raise CLIError(f"no shipped corpus in {CORPORA} (*.parquet)")
    from .models import file_sha256

    with _workspace(args) as ws:
        for path in files:
            key, digest = f"imported:{path.name}", file_sha256(path)
            if ws.get_meta(key) == digest:
                continue  # done in an earlier run; an interrupted import is redone, its duplicates skipped
            rejected: list[Rejected] = []

            def documents(rows=read_table(path), rejected=rejected):
                for row in rows:
                    if isinstance(row, Rejected):
                        rejected.append(row)
                    else:
                        yield row

            with _progress(None, f"importing {path.name}", quiet=args.quiet) as bar:
                report = ws.add_documents(documents(), progress=bar)
            for row in rejected:
                _err(f"skipped {row.id}: {row.reason}")
            ws.set_meta(key, digest)
            _err(f"{path.name}: {report.added} added, {len(report.duplicates)} duplicate(s) skipped, "
                 f"{len(report.non_english)} flagged non-English")


def cmd_run(args) -> int:
    """The main job: workspace from the shipped corpus, the default model (trained if missing), a summary."""
    from .annotations import SEED_FILES, read_seed_annotations
    from .models import DEFAULT_MODEL, DEFAULT_TAGGER, ModelError, active_ref, activate, read_meta
    from .training import train

    t0 = time.perf_counter()
    codebook = _codebook(args)
    _import_shipped_corpus(args)
    args.model = args.model or active_ref() or DEFAULT_MODEL
    try:
        if args.model != "lexicon":  # the lexicon tagger needs no files
            read_meta(args.model)
    except ModelError:
        if args.model != DEFAULT_MODEL:
            raise
        names = " + ".join(p.name for p in SEED_FILES)
        _err(f"no trained {DEFAULT_MODEL!r} model yet: training it on {names}")
        info, _ = train(read_seed_annotations(codebook), codebook, tagger=DEFAULT_TAGGER, name=DEFAULT_MODEL,
                        progress=_err, source=f"shipped annotations ({names})")
        if active_ref() is None:
            activate(info.ref)
    _classify_workspace(args, codebook)
    cmd_summary(args)
    _err(f"done in {time.perf_counter() - t0:.0f}s; workspace at {Path(args.workspace or 'workspace')}")
    return 0


def cmd_summary(args) -> int:
    import pandas as pd

    with _workspace(args, create=False) as ws:
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


def cmd_app(args) -> int:
    """Serve app.py with Streamlit (blocks until stopped with Ctrl-C)."""
    import subprocess

    app = Path(__file__).resolve().parent.parent / "app.py"
    if not app.exists():
        raise CLIError(f"{app} not found: the app runs from a checkout of cdpd (app.py beside nlp/)")
    env = dict(os.environ)
    if args.workspace:
        env["CDPD_HOME"] = str(Path(args.workspace).resolve())
    if args.codebook:
        env["CDPD_CODEBOOK"] = str(Path(args.codebook).resolve())
    _err(f"cdpd app on http://{args.address}:{args.port} (Ctrl-C stops it)")
    command = [sys.executable, "-m", "streamlit", "run", str(app), "--server.headless", "true",
               "--server.address", args.address, "--server.port", str(args.port)]
    try:
        return subprocess.call(command, env=env, cwd=app.parent)
    except KeyboardInterrupt:
        return 0


def _printable(value) -> str:
    """Document text for the terminal: control characters (ANSI escapes, carriage returns) shown as spaces, so a
    title cannot move the cursor, recolour or rewrite the screen."""
    text = "" if value is None else str(value)
    return "".join(" " if ord(ch) < 32 or 127 <= ord(ch) < 160 else ch for ch in text)


def cmd_search(args) -> int:
    with _workspace(args, create=False) as ws:
        hits = ws.search(args.query, limit=args.limit, sort=args.sort)
    if hits.empty:
        print("no match")
        return 0
    # the order on stderr, so that stdout stays one tab-separated line (and a snippet) per document
    print("ranked by relevance (BM25; last column, higher is better)" if args.sort == "relevance" else
          "newest first (last column: relevance, BM25)", file=sys.stderr)
    for row in hits.itertuples():
        fields = [_printable(v) for v in (row.id, row.source, row.date, str(row.title or "")[:80],
                                          f"{row.relevance:.2f}", row.snippet)]
        print("{}\t{}\t{}\t{}\t{}\n    {}".format(*fields))
    return 0


def _search_limit(text: str) -> int:
    from .workspace import MAX_SEARCH_LIMIT

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= MAX_SEARCH_LIMIT:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_SEARCH_LIMIT}, got {text}")
    return value


def _names(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def cmd_ca(args) -> int:
    import pandas as pd

    from .analysis.ca import correspondence_analysis

    path = Path(args.table)
    if not path.is_file():
        raise CLIError(f"{path}: file not found")
    try:
        table = pd.read_csv(path, index_col=0)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CLIError(f"{path}: not a readable CSV table ({str(exc).splitlines()[0]})") from None
    table.index = table.index.astype(str)
    result = correspondence_analysis(table, n_components=args.dims, sup_rows=_names(args.sup_rows),
                                     sup_cols=_names(args.sup_cols))
    k = result.n_components
    if args.json:
        coords = lambda frame: {str(name): [float(v) for v in row] for name, row in frame.iterrows()}  # noqa: E731
        print(json.dumps({"eigenvalues": [float(v) for v in result.eigenvalues["eigenvalue"]],
                          "total_inertia": float(result.total_inertia),
                          "rows": coords(result.row_coords.iloc[:, :k]),
                          "cols": coords(result.col_coords.iloc[:, :k])}, indent=2))
        return 0
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 50):
        print(f"total inertia {result.total_inertia:.6f}; chi-square {result.chi2:.4f} on {result.dof} df, "
              f"p = {result.p_value:.3g}; n = {result.n:g}\n")
        print(result.eigenvalues.round(6).to_string(), "\n")
        print("rows\n" + result.rows.round(6).to_string(), "\n")
        print("columns\n" + result.cols.round(6).to_string())
    return 0


def _convergence_for_print(conv):
    """The convergence table as printed: each share as "12.3% [10.1, 14.6]", p-values < 0.001 written so."""
    import pandas as pd

    t = conv.table
    out = pd.DataFrame(index=t.index)
    out["practice"], out["amiri"] = t["practice"], t["amiri"]

    def cell(share, low, high):
        return f"{100 * share:.1f}% [{100 * low:.1f}, {100 * high:.1f}]"

    for side in conv.sides:
        out[side] = [cell(*r) for r in t[[f"{side}_share", f"{side}_low", f"{side}_high"]].to_numpy()]
    out["difference"] = [cell(*r) for r in t[["difference", "difference_low", "difference_high"]].to_numpy()]
    out["p_adjusted"] = t["p_adjusted"].map(lambda p: "-" if p != p else "< 0.001" if p < 0.001 else f"{p:.3f}")
    out["reading"], out["zone"] = t["reading"], t["zone"]
    return out


def _diagram_of(args):
    """The diagram ``cdpd diagram`` and ``cdpd report`` describe, from their shared options."""
    from .analysis.diagram import build_diagram
    from .analysis.sides import Comparison
    from .analysis.tables import Filters, resolve_model

    codebook = _codebook(args)
    filters = Filters.parse(args.where or [], args.date_from, args.date_to)
    comparison = Comparison.parse(args.side)
    with _workspace(args, create=False) as ws:
        model = resolve_model(ws, args.model)
        d = build_diagram(ws, codebook, model, rows=args.rows, by=args.by, unit=args.unit, filters=filters,
                          sup_cols=_names(args.sup_cols), sup_rows=_names(args.sup_rows), ellipses=args.ellipses,
                          seed=args.seed, comparison=comparison, diplomatic_only=not args.all_units,
                          replicates=args.replicates, top=args.top or None)
    for note in d.notes:
        _err(note)
    return d, codebook


def cmd_report(args) -> int:
    """``cdpd report``: the diagram's figures, tables, comparison sets, method and the model's per-source quality
    in one HTML or PDF file."""
    import datetime

    from .analysis.report import REPORT_FORMATS, write_report

    if Path(args.out).suffix.lower() not in REPORT_FORMATS:
        raise CLIError(f"{args.out}: the report is written as .html or .pdf")
    d, codebook = _diagram_of(args)
    quality = None
    try:
        from .metrics import quality_by_source
        from .models import read_meta

        quality = quality_by_source(read_meta(d.model)["metrics"]["heldout"])
    except (ValueError, OSError, KeyError, TypeError):  # no registry entry or no held-out figures: say so
        _err(f"no held-out figures for {d.model} in the model registry: the report leaves out the model's quality")
    generated = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = write_report(d, args.out, quality=quality, codebook=codebook, generated=generated)
    print(d.caption)
    _err(f"wrote {out}")
    return 0


def cmd_diagram(args) -> int:
    import pandas as pd

    from .analysis.report import export

    if args.min_contribution is not None and not 0 <= args.min_contribution < 100:
        raise CLIError(f"--min-contribution is a percentage from 0 to 100, not {args.min_contribution:g}")
    d, codebook = _diagram_of(args)
    out = export(args.out, d.result, d.tables, codebook, ellipses=d.ellipses, title=d.title, mds=d.mds,
                 convergence=d.convergence, sides=d.sides, caption=d.caption, codes=args.codes,
                 min_contribution=args.min_contribution)
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.max_colwidth", 120):
        print(f"{d.title}\n")
        print(d.caption, "\n")
        print(d.result.eigenvalues.round(4).to_string(), "\n")
        if d.sides is not None:
            print("Sides compared\n" + d.sides.T.to_string(), "\n")
        if d.convergence is not None:
            conv = d.convergence
            print(f"Convergence ({conv.label}; unit {conv.unit}: {conv.unit_label}; "
                  + ", ".join(f"{s} n = {conv.n[s]:,}" for s in conv.sides) + ")")
            print(_convergence_for_print(conv).to_string())
            print(f"\nReading rule: {conv.rule}")
            print(f"Method: {conv.method}")
        if d.mds is not None:
            print(f"\nMDS of {args.rows} profiles: Kruskal stress-1 = {d.mds[1]:.3f}")
    _err(f"wrote {out.figure} and {len(out.tables)} table(s): " + ", ".join(p.name for p in out.tables))
    return 0


def _replicates(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 20 <= value <= 10_000:
        raise argparse.ArgumentTypeError(f"{value} is out of range: give 20 to 10000 replicates")
    return value


def _top(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value != 0 and value < 2:
        raise argparse.ArgumentTypeError(f"{value}: keep at least 2 groups active (0 keeps all)")
    return value


def cmd_models(args) -> int:
    from .models import activate, list_models, model_card, read_meta

    action = args.action or "list"
    if action == "list":
        models = list_models()
        if not models:
            print("no trained model yet: `cdpd train --annotations FILE` or `cdpd run`")
        for meta in models:
            held = meta.get("metrics", {}).get("heldout", {})
            scores = ", ".join(f"{axis} micro-F1 {r['micro']['f1']:.3f}" for axis, r in held.items()) or "no held-out"
            mark = "*" if meta["active"] else " "
            print(f"{mark} {meta['name']}@{meta['version']}\t{meta['tagger']}\t{meta['created_at']}\t{scores}")
        return 0
    if action == "show":
        _need(args.refs, 1, "show NAME")
        print(model_card(read_meta(args.refs[0])))
        return 0
    if action == "activate":
        _need(args.refs, 1, "activate NAME")
        print(f"active model: {activate(args.refs[0])}")
        return 0
    if action == "compare":
        _need(args.refs, 2, "compare A B")
        a, b = read_meta(args.refs[0]), read_meta(args.refs[1])
        if not args.annotations:
            _print_comparison(a, b)
            return 0
        from .annotations import read_annotations
        from .models import load_model
        from .training import evaluate

        codebook = _codebook(args)
        annotations = read_annotations(args.annotations, codebook)
        reports = [evaluate(annotations, load_model(ref, codebook, cache=_embedding_cache(args))[0], codebook)
                   for ref in args.refs[:2]]
        _print_side_by_side(f"{a['name']}@{a['version']}", reports[0], f"{b['name']}@{b['version']}", reports[1],
                            f"{len(annotations)} units of {args.annotations}")
        return 0
    raise CLIError(f"unknown action {action!r}; use list, show, activate or compare")


def _need(refs: list[str], n: int, usage: str) -> None:
    if len(refs) != n:
        raise CLIError(f"usage: cdpd models {usage}")


# -- parser -------------------------------------------------------------------------------------------------------
def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {value!r}")
    return number


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cdpd", description="Tag diplomacy functions and security domains in documents "
                                "and map where city and public diplomacy converge.")
    p.add_argument("--version", action="version", version=f"cdpd {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--codebook", metavar="PATH", help="codebook YAML (default: corpora/codebook.yaml)")
    common.add_argument("--workspace", metavar="DIR", default=os.environ.get("CDPD_HOME"),
                        help="workspace folder (default: $CDPD_HOME or ./workspace)")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    dask = argparse.ArgumentParser(add_help=False)
    dask.add_argument("--dask", metavar="local[:N]|tcp://HOST:PORT",
                      help="tag on Dask: a local cluster of N worker processes, or an existing scheduler "
                      "(needs pip install 'cdpd[dask]')")
    dask.add_argument("--partition-size", type=_positive_int, metavar="N",
                      help="documents per Dask partition (default: up to 128, shrinking toward the end of a "
                      "workspace run)")
    meta = argparse.ArgumentParser(add_help=False)
    for flag in ("issuer", "issuer-type", "date", "source", "country", "city"):
        meta.add_argument(f"--{flag}", help=f"{flag.replace('-', '_')} for documents that do not set it themselves")
    meta.add_argument("--follow-links", action="store_true",
                      help="in folders, follow symbolic links that point outside the folder (default: report them as "
                      "skipped)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("classify", parents=[common, meta, dask],
                       help="tag files, folders, tables or stdin; JSON lines out")
    s.add_argument("inputs", nargs="+", metavar="INPUT", help="files, folders, .jsonl/.csv/.parquet, or - for stdin")
    s.add_argument("--model", help="model name or NAME@VERSION (default: the active model; 'lexicon' needs no "
                   "training)")
    s.add_argument("--output", "-o", metavar="FILE", help="write JSON lines here (atomically) instead of stdout")
    s.add_argument("--any-language", action="store_true", help="tag documents that are not English too")
    s.add_argument("--batch-size", type=int, default=128, help=argparse.SUPPRESS)
    s.set_defaults(func=cmd_classify)

    s = sub.add_parser("train", parents=[common], help="train a model on annotations (JSONL)")
    s.add_argument("--annotations", metavar="FILE",
                   help="annotations JSONL (default: the seed annotations plus the workspace's)")
    s.add_argument("--model", default="linear", help="tagger to train (default: linear)")
    s.add_argument("--name", help="model name to save under (default: the tagger's name)")
    s.add_argument("--params", help='tagger parameters as JSON, e.g. \'{"C": 4}\'')
    s.add_argument("--activate", action="store_true", help="make the new model the active one")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("evaluate", parents=[common], help="per-label and micro/macro F1 of a model on annotations")
    s.add_argument("--annotations", required=True, metavar="FILE")
    s.add_argument("--model", help="model name (default: linear)")
    s.add_argument("--json", action="store_true", help="print the report as JSON")
    s.add_argument("--random-only", action="store_true",
                   help="only units drawn at random or by cue (sample 'random' or 'cue', or none)")
    s.add_argument("--cv", type=int, metavar="K", help="K-fold cross-validation (iteratively stratified) of the "
                   "model's tagger and settings, instead of evaluating the trained model")
    s.add_argument("--report", metavar="FILE", help="also write the report as markdown (.md) or HTML (.html)")
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("ingest", parents=[common, meta, dask], help="add documents to the workspace")
    s.add_argument("inputs", nargs="+", metavar="PATH")
    s.add_argument("--classify", action="store_true", help="tag the new documents right away")
    s.add_argument("--model", help="model for --classify (default: linear)")
    s.set_defaults(func=cmd_ingest)

    s = sub.add_parser("run", parents=[common, dask], help="build the default workspace: import, train if needed, "
                       "classify, summarise")
    s.add_argument("--model", help="model name (default: linear, trained on the seed annotations if missing)")
    s.add_argument("--by", default="issuer_type", help="grouping of the label-share summary (default: issuer_type)")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("summary", parents=[common], help="documents per source and label shares per group")
    s.add_argument("--model", help="model name or NAME@VERSION (default: the latest used)")
    s.add_argument("--by", default="issuer_type",
                   help="issuer_type (default), issuer, source, country, city or year")
    s.set_defaults(func=cmd_summary)

    s = sub.add_parser("app", parents=[common], help="open the Streamlit app on the workspace")
    s.add_argument("--port", type=int, default=8501, help="port to serve on (default 8501)")
    s.add_argument("--address", default="127.0.0.1", help="address to serve on (default 127.0.0.1: this machine only)")
    s.set_defaults(func=cmd_app)

    s = sub.add_parser("search", parents=[common], help="full-text search of the workspace (FTS5 syntax)")
    s.add_argument("query")
    s.add_argument("--limit", type=_search_limit, default=20,
                   help="at most this many documents (1-10000; default 20)")
    s.add_argument("--sort", choices=("relevance", "date"), default="relevance",
                   help="relevance (default: FTS5 BM25, best first) or date (newest first)")
    s.set_defaults(func=cmd_search)

    s = sub.add_parser("ca", parents=[common], help="correspondence analysis of a CSV table of counts")
    s.add_argument("--table", required=True, metavar="CSV", help="counts, row names in the first column")
    s.add_argument("--sup-rows", metavar="A,B", help="rows to project as supplementary points")
    s.add_argument("--sup-cols", metavar="X,Y", help="columns to project as supplementary points")
    s.add_argument("--dims", type=int, default=2, metavar="K", help="dimensions to report (default 2)")
    s.add_argument("--json", action="store_true", help="eigenvalues, total inertia and principal coordinates as JSON")
    s.set_defaults(func=cmd_ca)

    diagram = argparse.ArgumentParser(add_help=False)  # what is analysed: shared by `diagram` and `report`
    diagram.add_argument("--rows", default="functions", help="codebook axis for the rows (default: functions)")
    diagram.add_argument("--by", default="source",
                         help="issuer_type, issuer, source (default), country, city or year")
    diagram.add_argument("--where", action="append", metavar="FIELD=VALUE",
                         help="keep matching documents (repeatable)")
    diagram.add_argument("--from", dest="date_from", metavar="DATE", help="first date (ISO, inclusive)")
    diagram.add_argument("--to", dest="date_to", metavar="DATE", help="last date (ISO, inclusive)")
    diagram.add_argument("--unit", default="intensity", choices=["documents", "passages", "intensity"],
                         help="what is counted: intensity (default; each document weighs 1, a label counts for the "
                              "share of its passages carrying it), documents (tagged or not) or passages")
    diagram.add_argument("--side", action="append", metavar="NAME:FIELD=V1,V2[;FIELD=V]",
                         help="a side of the convergence reading; give it twice, side A then side B "
                              "(default: city:issuer_type=city and state:issuer_type=national)")
    diagram.add_argument("--all-units", action="store_true",
                         help="read convergence over all units, not only diplomatic ones (at least one function)")
    diagram.add_argument("--replicates", type=_replicates, default=200, metavar="N",
                         help="bootstrap replicates of the convergence intervals (default 200)")
    diagram.add_argument("--top", type=_top, default=15, metavar="N",
                         help="groups kept active in the biplot, the largest by mass (default 15; 0 keeps all); "
                              "the others are projected as supplementary points")
    diagram.add_argument("--sup-cols", metavar="X,Y", help="groups to project as supplementary points")
    diagram.add_argument("--sup-rows", metavar="A,B", help="labels to project as supplementary points")
    diagram.add_argument("--ellipses", type=int, default=0, metavar="N",
                         help="bootstrap confidence ellipses, N replicates")
    diagram.add_argument("--seed", type=int, default=0, help="bootstrap seed (ellipses and convergence intervals)")
    diagram.add_argument("--model", help="model name or NAME@VERSION (default: the latest used)")
    s = sub.add_parser("diagram", parents=[common, diagram],
                       help="the CD-PD diagram (CA biplot) and its tables")
    s.add_argument("--out", default="cdpd_diagram.html", metavar="FILE",
                   help=".html (default), .svg or .pdf (vector), .png (300 dpi); tables as CSV beside it")
    s.add_argument("--codes", action="store_true",
                   help="static maps: label groups with short codes G1, G2 ... and a key under the map")
    s.add_argument("--min-contribution", type=float, metavar="PCT",
                   help="static maps: label only the points contributing at least PCT%% to the plane")
    s.set_defaults(func=cmd_diagram)

    s = sub.add_parser("report", parents=[common, diagram],
                       help="a report to cite: figures, convergence table, sides, method, model quality")
    s.add_argument("--out", default="cdpd_report.html", metavar="FILE", help=".html (default) or .pdf")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("annotations", parents=[common], help="import or export annotations (JSONL, spaCy, HF)")
    s.add_argument("action", choices=["import", "export", "issues"],
                   help="issues: flag likely label errors in a JSONL file (cleanlab, out-of-fold scores)")
    s.add_argument("path", metavar="PATH", help=".jsonl, .spacy (DocBin) or a Hugging Face dataset folder")
    s.add_argument("--cv", type=int, default=5, metavar="K", help="issues: folds for out-of-fold scores")
    s.add_argument("--top", type=int, default=50, metavar="N", help="issues: list the N most suspect (default 50)")
    s.add_argument("--output", "-o", metavar="FILE", help="issues: JSON lines here instead of stdout")
    s.add_argument("--format", choices=["jsonl", "spacy", "hf"], help="default: from the suffix")
    s.add_argument("--annotator", help="import: the annotator's name for units that do not name one")
    s.add_argument("--with-seed", action="store_true", help="export: include the seed annotations")
    s.set_defaults(func=cmd_annotations)

    s = sub.add_parser("queue", parents=[common], help="workspace passages to annotate next (active learning)")
    s.add_argument("-n", type=int, default=20, help="how many passages (default 20)")
    s.add_argument("--strategy", default="uncertainty", choices=["uncertainty", "diversity", "random"])
    s.add_argument("--axis", action="append", help="only this axis's labels count for uncertainty (repeatable)")
    s.add_argument("--model", help="model name or NAME@VERSION (default: the active model)")
    s.add_argument("--pool", type=int, default=2000, help="candidate passages drawn from the workspace")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--output", "-o", metavar="FILE", help="JSON lines here instead of stdout")
    s.set_defaults(func=cmd_queue)

    s = sub.add_parser("models", parents=[common], help="the model registry: list, show, activate, compare")
    s.add_argument("action", nargs="?", choices=["list", "show", "activate", "compare"], help="default: list")
    s.add_argument("refs", nargs="*", metavar="NAME", help="NAME or NAME@VERSION")
    s.add_argument("--annotations", metavar="FILE", help="compare: evaluate both models on these annotations")
    s.set_defaults(func=cmd_models)
    return p


def log_path() -> Path:
    """Where third-party libraries' log records and warnings go: ``$CDPD_LOG``, else ``cdpd.log`` in the user's
    cache folder (``$XDG_CACHE_HOME/cdpd`` or ``~/.cache/cdpd``)."""
    if os.environ.get("CDPD_LOG"):
        return Path(os.environ["CDPD_LOG"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cdpd" / "cdpd.log"


_NOISE_HANDLER: logging.Handler | None = None


def _route_library_noise() -> None:
    """Send what libraries log (pypdf's "EOF marker not found", ...) and warn to :func:`log_path`, not to stderr:
    the user sees cdpd's one-line reasons only. cdpd's own warnings still go to stderr. Installed once."""
    global _NOISE_HANDLER
    if _NOISE_HANDLER is not None:
        return
    path = log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(path, delay=True, encoding="utf-8")
    except OSError:
        handler = logging.NullHandler()  # nowhere to log: dropped rather than shown
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(name)s %(levelname)s: %(message)s"))
    handler.setLevel(logging.WARNING)
    logging.getLogger().addHandler(handler)
    _NOISE_HANDLER = handler
    shown = warnings.showwarning
    ours = Path(__file__).resolve().parent

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if ours in Path(filename).resolve().parents:
            shown(message, category, filename, lineno, file, line)
        else:
            logging.getLogger("py.warnings").warning("%s:%s: %s: %s", filename, lineno, category.__name__, message)

    warnings.showwarning = showwarning


_MAIN_PID = os.getpid()


def _terminate(signum, frame):  # noqa: ARG001 - the signal handler's signature
    """SIGTERM unwinds like Ctrl-C: temporary files and caches are removed on the way out. Only in the process
    that installed it: a forked child (a multiprocessing pool's worker, which its pool ends with SIGTERM) dies
    at once, as it would have without this handler."""
    if os.getpid() != _MAIN_PID:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    raise SystemExit(128 + signum)


def _check_no_nul(args) -> None:
    """A NUL byte in any argument (a file name, a value) is a usage error naming the option, before any work: the
    operating system cannot take it, and Python's "embedded null byte" names nothing."""
    for key, value in vars(args).items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and "\x00" in item:
                where = "an input" if key in ("inputs", "path", "query", "refs") else f"--{key.replace('_', '-')}"
                raise CLIError(f"{where} contains a NUL byte ({item!r}); a file name or value cannot hold one")


def main(argv: list[str] | None = None) -> int:
    # Every error a user can cause is a ValueError (codebook, annotations, models, CA, bad values) or a
    # WorkspaceError; catching them by base class keeps heavy modules (spaCy, skops) out of commands that need none.
    from .workspace import WorkspaceError

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    _route_library_noise()
    on_main_thread = threading.current_thread() is threading.main_thread()
    global _MAIN_PID
    _MAIN_PID = os.getpid()
    previous = signal.signal(signal.SIGTERM, _terminate) if on_main_thread else None
    try:
        _check_no_nul(args)
        if getattr(args, "dask", None):  # a malformed --dask fails before any work
            from .distributed import parse_target

            parse_target(args.dask)
        if _reads_text(args):
            _import_spacy_without_torch()
        return args.func(args) or 0
    except (CLIError, WorkspaceError, ValueError) as exc:
        _err(f"cdpd {args.command}: error: {exc}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        _err(f"cdpd {args.command}: interrupted; what was committed is kept, run it again to resume")
        return 130
    except BrokenPipeError:
        return 0
    finally:
        if on_main_thread and previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
