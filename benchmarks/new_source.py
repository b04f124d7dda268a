#!/usr/bin/env python
"""A source the model never met: how many of its own annotated units bring the tags where, and which to annotate.

    .venv/bin/python benchmarks/new_source.py [--sources ccc,nyc_council] [--sizes 25,50,100,200] [--seeds 2]
    .venv/bin/python benchmarks/new_source.py --sources ccc --save a.json --no-write   # (nyc_council --save b.json)
    .venv/bin/python benchmarks/new_source.py --merge a.json b.json                    # one table of both

What a city office meets when it brings its own documents (`quality.py --groups source`: a source the model never
saw loses about 9 points of functions micro-F1, the city sources about 19). For each target source, on the training
part of the fixed split (the held-out units inform nothing here):

* its units are cut in two by a hash of their document: an **annotation pool** and a **test** half (random and cue
  units only, as every evaluation here);
* the default linear tier is fitted on the other sources only (0 units of the target), then on the other sources
  plus k units of the pool, for each k, chosen **at random** (``--seeds`` draws) or as the Annotate page proposes
  them under the model without the source, in one batch of k (:func:`nlp.queue.choose`): **by uncertainty** (the
  k passages whose scores sit nearest a threshold) or **by diversity** (the most uncertain, one per k-means
  cluster); and on the whole pool;
* each model is scored on the test half: functions micro- and macro-F1, false on empty, domains micro-F1.

The console gets the table; ``--out`` gets a ``## A new source`` section (only that section is replaced).
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

SECTION = "## A new source (benchmarks/new_source.py)"
#: Share of a target source's documents in the test half (by a hash of the document key).
TEST_SHARE = 0.5


def run_source(target: str, sizes: list[int], seeds: int, data) -> dict:
    import numpy as np

    from nlp.annotations import EVALUATION_SAMPLES, document_key, heldout_share, source_of
    from nlp.metrics import axis_report
    from nlp.queue import choose
    from nlp.taggers import get_tagger_class
    from nlp.training import fit_tagger

    codebook, annotations, units, y, (train_idx, _test_idx), _round1 = data
    cls = get_tagger_class("linear")
    src = np.array([source_of(annotations[i]) for i in train_idx])
    idx = np.asarray(train_idx)
    others = idx[src != target]
    mine = idx[src == target]
    # a salted hash, so that the test half is not the fixed split's own cut (heldout_share of the bare key)
    in_test = np.array([heldout_share("new-source:" + document_key(annotations[i])) < TEST_SHARE for i in mine])
    test = np.array([i for i, t in zip(mine, in_test) if t and annotations[i].sample in EVALUATION_SAMPLES])
    pool = mine[~in_test]

    def fit_and_score(extra) -> dict:
        fit_idx = np.concatenate([others, np.asarray(extra, dtype=int)])
        t0 = time.perf_counter()
        model = fit_tagger(cls, codebook, {}, [units[i] for i in fit_idx], {a: v[fit_idx] for a, v in y.items()},
                           sources=[source_of(annotations[i]) for i in fit_idx])
        pred = model.predict([units[i] for i in test])
        out = {"fit_s": time.perf_counter() - t0, "n_added": len(extra)}
        for axis in pred:
            r = axis_report(y[axis][test], pred[axis], codebook.labels(axis))
            out[axis] = {"micro": r["micro"]["f1"], "macro": r["macro_f1"], "false_on_empty": r["false_on_empty"]}
        return model, out

    base, zero = fit_and_score([])
    rows = {"0": {"none": zero}}
    first_passages = [units[i][0] for i in pool]  # a unit is one passage but for a few long ones
    rng = np.random.default_rng(0)
    draws = [rng.permutation(pool) for _ in range(seeds)]
    for k in sizes:
        if k > len(pool):
            continue
        row = rows.setdefault(str(k), {})
        row["random"] = [fit_and_score(d[:k])[1] for d in draws]
        for strategy in ("uncertainty", "diversity"):  # the Annotate page's strategies, one batch of k
            picked, _, _ = choose(base, first_passages, k, strategy=strategy)
            row[strategy] = fit_and_score(pool[picked])[1]
        print(f"[{target}] k={k}: functions micro, random "
              + ", ".join(f"{r['functions']['micro']:.3f}" for r in row["random"])
              + f"; uncertainty {row['uncertainty']['functions']['micro']:.3f}"
              + f"; diversity {row['diversity']['functions']['micro']:.3f}", file=sys.stderr, flush=True)
    rows["all"] = {"pool": fit_and_score(pool)[1]}
    functions_in_test = int(y["functions"][test].sum())
    return {"n_pool": len(pool), "n_test": len(test), "test_function_tags": functions_in_test,
            "n_others": len(others), "rows": rows}


def _cell(rs: list[dict], axis: str, key: str) -> str:
    import numpy as np

    vals = [r[axis][key] for r in rs if r[axis][key] is not None]
    if not vals:
        return "—"
    if key == "false_on_empty":
        return f"{np.mean(vals):.1%}" if len(vals) == 1 else f"{np.mean(vals):.1%} ({min(vals):.1%}-{max(vals):.1%})"
    return f"{np.mean(vals):.3f}" if len(vals) == 1 else f"{np.mean(vals):.3f} ({min(vals):.3f}-{max(vals):.3f})"


def render(args, results: dict, mach: dict) -> str:
    import datetime as dt

    now = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    out = [SECTION, "",
           f"Run {now} with `python benchmarks/new_source.py --sources {','.join(results)} --sizes "
           f"{','.join(map(str, args.sizes))} --seeds {args.seeds}` at git {mach['git']}; {mach['nproc']} cores, "
           f"{mach['cpu']}.", "",
           "The default linear tier fitted on the other sources of the training part, plus k annotated units of "
           "the target source drawn from half of its documents (at random: mean and range over "
           f"{args.seeds} draws; or as the Annotate page proposes them under the model without the source, in one "
           "batch: by uncertainty, the k units nearest a threshold; by diversity, the most uncertain one per "
           "k-means cluster), scored on the other half's random and cue units. F: functions, D: domains.", ""]
    header = ["k units of the source", "chosen", "F micro", "F macro", "F false on empty", "D micro"]
    for target, res in results.items():
        out += [f"### {target} ({res['n_pool']} units in the pool; test: {res['n_test']} units with "
                f"{res['test_function_tags']} gold function tags; {res['n_others']} units of other sources)", ""]
        rows = []
        for k, by in res["rows"].items():
            for how, rs in by.items():
                rs = rs if isinstance(rs, list) else [rs]
                label = {"none": "—", "pool": "the whole pool"}.get(how, how)
                rows.append([k if k != "all" else str(res["n_pool"]), label,
                             _cell(rs, "functions", "micro"), _cell(rs, "functions", "macro"),
                             _cell(rs, "functions", "false_on_empty"), _cell(rs, "domains", "micro")])
        out += [_tagging.table(header, rows, "ll" + "r" * (len(header) - 2)), ""]
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sources", default="ccc,nyc_council", help="target sources, comma-separated")
    p.add_argument("--sizes", default="25,50,100,200", help="how many units of the target to add, comma-separated")
    p.add_argument("--seeds", type=int, default=2, help="random draws per size")
    p.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--save", type=Path, metavar="JSON", help="also write the results of this run to JSON")
    p.add_argument("--merge", type=Path, nargs="+", metavar="JSON", default=[],
                   help="render the results saved by earlier runs (--save) instead of running")
    args = p.parse_args(argv)
    args.sizes = [int(k) for k in args.sizes.split(",") if k]
    import json

    if args.merge:
        results = {}
        for path in args.merge:
            saved = json.loads(path.read_text(encoding="utf-8"))
            results.update(saved["results"])
            mach, args.sizes, args.seeds = saved["machine"], saved["sizes"], saved["seeds"]
        return _finish(args, results, mach)
    from quality import load

    mach = _tagging.machine()
    data = load()
    known = sorted({str(a.meta.get("corpus")) for a in data[1]})
    targets = [s for s in args.sources.split(",") if s]
    unknown = [s for s in targets if s not in known]
    if unknown:
        p.error(f"unknown source(s) {', '.join(unknown)}; the annotations have {', '.join(known)}")
    results = {t: run_source(t, args.sizes, args.seeds, data) for t in targets}
    if args.save:
        args.save.write_text(json.dumps({"results": results, "machine": mach, "sizes": args.sizes,
                                         "seeds": args.seeds}), encoding="utf-8")
    return _finish(args, results, mach)


def _finish(args, results: dict, mach: dict) -> int:
    publish(render(args, results, mach), None if args.no_write else args.out, SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
