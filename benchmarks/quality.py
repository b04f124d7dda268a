#!/usr/bin/env python
"""Which settings of the linear tier the numbers justify: held-out and grouped cross-validated F1, per source.

    .venv/bin/python benchmarks/quality.py [--configs NAME,...] [--folds 5] [--out benchmarks/RESULTS.md]
    .venv/bin/python benchmarks/quality.py --configs A,B --save a.json --no-write   # (and C,D --save c.json)
    .venv/bin/python benchmarks/quality.py --merge a.json c.json                     # one table of both
    .venv/bin/python benchmarks/quality.py --groups city ...   # CV folds keep each city's contract sections together
    .venv/bin/python benchmarks/quality.py --groups source ... # one fold per source: a source the model never met
    .venv/bin/python benchmarks/quality.py --groups period ... # one fold per decade of a source that spans decades

Each configuration is a set of linear-tier parameters (and which annotation rounds it trains on). For each:

* **held-out**: fitted on the training part of the fixed split (``nlp.annotations.heldout_split``: every unit of the
  documents not held out), scored on the 464 held-out units (random and cue units of a quarter of the documents);
* **CV**: 5-fold iteratively stratified cross-validation grouped by document *on the training part only* (the
  held-out units never inform a choice), scored on its random and cue units only (keyword-enriched units would
  flatter the rare labels).

Reported per axis: micro and macro F1, the false-label rate on units with no gold label (on functions: domestic
business tagged as diplomacy), and functions micro-F1 per source. Settings are chosen on the CV columns; the
held-out columns say what a user gets. The console gets the table; ``--out`` gets a ``## Quality decisions``
section (only that section is replaced).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import tagging as _tagging  # noqa: E402  (sets thread variables to 1 on import)
from _results import publish  # noqa: E402

SECTION = "## Quality decisions (benchmarks/quality.py)"
#: The linear tier's settings before the scope features, threshold shrinkage, definition features, bagged
#: thresholds and source balance became defaults (C=16, scope gate).
PREVIOUS = {"scope": False, "scoped_seeds": False, "threshold_shrink": 0.0, "definitions": 0.0,
            "threshold_bootstrap": 0, "source_balance": 0.0}
#: Stands for a copy of the shipped gazetteer whose "network" kind is folded into "intl_org" (as it was before).
NO_NETWORK = "@no-network"
#: name -> (description, parameters, rounds trained on: "all" or "round1"[, tier: "linear" unless given])
CONFIGS = {
    "round1-old": ("round 1 only, old defaults (C=4, no gate)", {**PREVIOUS, "C": 4.0, "gate": False}, "round1"),
    "old": ("both rounds, old defaults (C=4, no gate)", {**PREVIOUS, "C": 4.0, "gate": False}, "all"),
    "c16": ("both rounds, C=16, no gate", {**PREVIOUS, "gate": False}, "all"),
    "gate": ("both rounds, C=16, scope gate (the default before this table's additions)", PREVIOUS, "all"),
    "gate-c4": ("gate with C=4", {**PREVIOUS, "gate_C": 4.0}, "all"),
    "lead": ("gate + lead features (title)", {**PREVIOUS, "lead": True}, "all"),
    "scope": ("gate + scope features (gazetteer kinds per sentence)", {**PREVIOUS, "scope": True}, "all"),
    "scope-seeds": ("gate + scope features + seeds in sentences naming a counterpart abroad",
                    {**PREVIOUS, "scope": True, "scoped_seeds": True}, "all"),
    "shrink30": ("gate + thresholds shrunk toward 0.5 (k=30)", {**PREVIOUS, "threshold_shrink": 30.0}, "all"),
    "scope-shrink30": ("scope features + scoped seeds + thresholds shrunk (k=30)", {"definitions": 0.0}, "all"),
    "definitions-1": ("scope-shrink30 + codebook-definition similarity, weight 1", {"definitions": 1.0}, "all"),
    "default": ("scope-shrink30 + codebook-definition similarity, weight 3 + the gazetteer's network kind + "
                "bagged thresholds + source balance 0.5: the default", {}, "all"),
    "definitions-8": ("scope-shrink30 + codebook-definition similarity, weight 8", {"definitions": 8.0}, "all"),
    "hurdle": ("gate, function classifiers fitted on in-scope units only", {**PREVIOUS, "hurdle": ["functions"]},
               "all"),
    "hurdle-default": ("the default + hurdle on functions", {"hurdle": ["functions"]}, "all"),
    "no-network": ("the default with city networks counted as international organisations (before the "
                   "'network' kind)", {"gazetteer": NO_NETWORK}, "all"),
    "unbagged": ("the default with the single F1-optimal threshold (no bootstrap)", {"threshold_bootstrap": 0},
                 "all"),
    "unbalanced": ("the default with every unit weighing alike (no source balance)", {"source_balance": 0.0},
                   "all"),
    "balance-1": ("the default with every source weighing alike in total (source_balance 1)",
                  {"source_balance": 1.0}, "all"),
    "previous-default": ("no network kind, bagged thresholds or source balance: the default before all three",
                         {"gazetteer": NO_NETWORK, "threshold_bootstrap": 0, "source_balance": 0.0}, "all"),
    "no-scope": ("the default without the gazetteer's scope features and scoped seeds", {"scope": False,
                 "scoped_seeds": False}, "all"),
    "no-definitions": ("the default without the codebook-definition similarity", {"definitions": 0.0}, "all"),
    "embedding": ("the embedding tier (static MiniLM table), its defaults", {}, "all", "embedding"),
    "ensemble": ("the ensemble tier (linear + static embedding), its defaults", {}, "all", "ensemble"),
}
CITY_SOURCES = ("ccc", "nyc_council", "king_county")
GROUPING = {"document": "document", "city": "document, climate-city-contract sections by city",
            "source": "source", "period": "period"}


def how_cv(args) -> str:
    if args.groups == "source":
        return "one fold per source, each scored by a model that never saw it"
    if args.groups == "period":
        return ("one fold per decade of each source dated in two decades or more (UN speeches, NYC Council), each "
                "scored by a model that saw every other unit; only those units are scored")
    return f"{args.folds} folds grouped by {GROUPING[args.groups]}, iteratively stratified"


def no_network_gazetteer() -> str:
    """The shipped gazetteer with its city networks counted as international organisations, written to a temporary
    file (what the ``no-network`` configurations fit with)."""
    import tempfile

    import yaml

    from nlp.taggers.scope import DEFAULT_GAZETTEER

    data = yaml.safe_load(DEFAULT_GAZETTEER.read_text(encoding="utf-8"))
    data["kinds"]["intl_org"] = data["kinds"]["intl_org"] + data["kinds"].pop("network", [])
    out = Path(tempfile.mkdtemp(prefix="cdpd-quality-")) / "no_network.yaml"
    out.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return str(out)


def group_of(ann, by: str) -> str:
    """CV groups: the unit's document (``document``), or for climate-city-contract sections the city (``city``):
    each section is its own document in the shipped rounds, so grouping by document puts sections of one city's
    contract on both sides of a fold; grouping by city measures what a city the model never saw gets."""
    from nlp.annotations import document_key, source_of

    if by == "city" and source_of(ann) == "ccc":
        return "city:" + str(ann.meta.get("city") or ann.meta.get("issuer") or document_key(ann))
    return document_key(ann)


def cv_folds(train, Y, folds: int, groups: str):
    """The CV folds of the training part: iteratively stratified over groups (``document``, ``city``), or
    leave-one-source-out (``source``: as many folds as sources, whatever ``folds`` says), the nearest these
    annotations come to a source the product has never met."""
    from nlp.annotations import period_folds, period_of, source_folds, source_of, stratified_folds

    if groups == "source":
        return source_folds([source_of(x) for x in train])
    if groups == "period":
        return period_folds([source_of(x) for x in train], [period_of(x) for x in train])
    return stratified_folds(Y, folds, 0, [group_of(x, groups) for x in train])


def evaluate_config(params: dict, rounds: str, folds: int, data, groups: str = "document",
                    tier: str = "linear") -> dict:
    import numpy as np

    from nlp.annotations import EVALUATION_SAMPLES, source_of
    from nlp.metrics import axis_report
    from nlp.taggers import get_tagger_class
    from nlp.training import evaluate_tagger, fit_tagger

    codebook, annotations, units, y, (train_idx, test_idx), round1 = data
    if rounds == "round1":
        train_idx = [i for i in train_idx if annotations[i].id in round1]
    cls = get_tagger_class(tier)
    if params.get("gazetteer") == NO_NETWORK:
        params = {**params, "gazetteer": no_network_gazetteer()}
    sub = lambda idx: {a: v[idx] for a, v in y.items()}  # noqa: E731
    t0 = time.perf_counter()
    src = [source_of(a) for a in annotations]  # as `cdpd train` passes them (source_balance)
    model = fit_tagger(cls, codebook, params, [units[i] for i in train_idx], sub(train_idx),
                       sources=[src[i] for i in train_idx])
    out = {"fit_s": time.perf_counter() - t0, "n_train": len(train_idx),
           "heldout": evaluate_tagger(model, [units[i] for i in test_idx], sub(test_idx), codebook,
                                      [source_of(annotations[i]) for i in test_idx])}
    if folds:
        train = [annotations[i] for i in train_idx]
        Y = sub(train_idx)
        pred = {a: np.zeros_like(v) for a, v in Y.items()}
        scored = np.zeros(len(train), dtype=bool)  # every unit, but by period
        for a, b in cv_folds(train, Y, folds, groups):
            scored[b] = True
            fold = fit_tagger(cls, codebook, params, [units[train_idx[i]] for i in a],
                              {ax: v[a] for ax, v in Y.items()}, sources=[src[train_idx[i]] for i in a])
            p = fold.predict([units[train_idx[i]] for i in b])
            for ax in Y:
                pred[ax][b] = p[ax]
        keep = np.array([x.sample in EVALUATION_SAMPLES for x in train]) & scored
        sources = [source_of(x) for x, k in zip(train, keep) if k]
        out["cv"] = {ax: axis_report(Y[ax][keep], pred[ax][keep], codebook.labels(ax), sources) for ax in Y}
    return out


def load():
    import json

    from nlp.annotations import SEED_ANNOTATIONS, heldout_split, label_matrix, read_seed_annotations
    from nlp.codebook import load_codebook
    from nlp.text import TextProcessor
    from nlp.training import annotation_units

    codebook = load_codebook()
    annotations = read_seed_annotations(codebook)
    round1 = {json.loads(line)["id"] for line in SEED_ANNOTATIONS.read_text(encoding="utf-8").splitlines()
              if line.strip()}
    units = annotation_units(annotations, TextProcessor(codebook))
    return codebook, annotations, units, label_matrix(annotations, codebook), heldout_split(annotations), round1


def row(name: str, desc: str, report: dict, sources: list[str]) -> list[str]:
    f, d = report["functions"], report["domains"]
    rate = "—" if f.get("false_on_empty") is None else f"{f['false_on_empty']:.1%}"
    by = f.get("by_source", {})
    return ([name, desc, f"{f['micro']['f1']:.3f}", f"{f['macro_f1']:.3f}", rate, f"{d['micro']['f1']:.3f}"]
            + [f"{by[s]['micro']['f1']:.2f}" if s in by else "—" for s in sources])


def render(args, results: dict, mach: dict) -> str:
    import datetime as dt

    first = next(iter(results.values()))
    sources = sorted(first["heldout"]["functions"].get("by_source", {}))
    now = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    out = [SECTION, "",
           f"Run {now} with `python benchmarks/quality.py --configs {','.join(results)} --folds {args.folds}"
           f"{'' if args.groups == 'document' else ' --groups ' + args.groups}` at git {mach['git']}; "
           f"{mach['nproc']} cores, {mach['cpu']}.", "",
           "Settings of the linear tier, chosen on cross-validation of the training part of the fixed split "
           f"({how_cv(args)}, scored on random and cue units only); "
           "the held-out columns (464 units of a quarter of the documents) say what a user gets and informed no "
           "choice. F: functions, D: domains; false on empty: of the units annotated with no function, the share "
           "given one; the source columns are functions micro-F1.", ""]
    header = ["config", "what", "F micro", "F macro", "false on empty", "D micro"] + sources
    for part, title in (("cv", "Cross-validated (training part)"), ("heldout", "Held-out")):
        rows = [row(name, CONFIGS[name][0], r[part], sources) for name, r in results.items() if part in r]
        if rows:
            out += [f"### {title}", "", _tagging.table(header, rows, "ll" + "r" * (len(header) - 2)), ""]
    out += ["Units per source (held-out): " + ", ".join(
        f"{s} {first['heldout']['functions']['by_source'][s]['n_units']}" for s in sources) + ". Fit times (held-out "
        "fit, training part): " + ", ".join(f"{n} {r['fit_s']:.0f} s" for n, r in results.items()) + ".", ""]
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated, from {', '.join(CONFIGS)}")
    p.add_argument("--folds", type=int, default=5, help="CV folds on the training part (0: held-out only)")
    p.add_argument("--groups", choices=tuple(GROUPING), default="document",
                   help="CV groups: documents; climate-city-contract sections grouped by their city (a city the "
                        "model never saw); one fold per source (a source the model never met); or one fold per "
                        "decade of the sources that span decades (years the model never met)")
    p.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--save", type=Path, metavar="JSON", help="also write the results of this run to JSON")
    p.add_argument("--merge", type=Path, nargs="+", metavar="JSON", default=[],
                   help="render the results saved by earlier runs (--save) instead of running: on 2 cores, run "
                        "halves of the configs in parallel, then merge them")
    args = p.parse_args(argv)
    if args.merge:
        import json

        results = {}
        for path in args.merge:
            saved = json.loads(path.read_text(encoding="utf-8"))
            results.update(saved["results"])
            mach = saved["machine"]
        args.configs = ",".join(results)
        args.folds = saved["folds"]
        args.groups = saved.get("groups", "document")
        return _finish(args, results, mach)
    names = [c for c in args.configs.split(",") if c]
    unknown = [c for c in names if c not in CONFIGS]
    if unknown:
        p.error(f"unknown config(s) {', '.join(unknown)}; choose from {', '.join(CONFIGS)}")
    mach = _tagging.machine()
    data = load()
    results = {}
    for name in names:
        desc, params, rounds, *tier = CONFIGS[name]
        t0 = time.perf_counter()
        folds = args.folds if rounds == "all" else 0
        results[name] = evaluate_config(params, rounds, folds, data, args.groups, *tier)
        f = results[name]["heldout"]["functions"]
        print(f"[{name}] {desc}: held-out functions micro-F1 {f['micro']['f1']:.3f} "
              f"({time.perf_counter() - t0:.0f}s)", file=sys.stderr, flush=True)
    if args.save:
        import json

        saved = {"results": results, "machine": mach, "folds": args.folds, "groups": args.groups}
        args.save.write_text(json.dumps(saved,
                                        default=lambda o: o.item() if hasattr(o, "item") else str(o)),
                             encoding="utf-8")
    return _finish(args, results, mach)


def _finish(args, results: dict, mach: dict) -> int:
    unknown = [name for name in results if name not in CONFIGS]
    if unknown:
        raise SystemExit(f"saved results of configs this script no longer has: {', '.join(unknown)}")
    publish(render(args, results, mach), None if args.no_write else args.out, SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
