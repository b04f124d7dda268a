"""``cdpd train`` and ``cdpd evaluate``: fit a tagger on annotations, and score a model (or a tagger's settings,
cross-validated) per label and per source."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ._util import CLIError, atomic_output, codebook_of, embedding_cache, err, model_of


def cmd_train(args) -> int:
    from ..training import train

    from ..models import active_ref, activate, read_meta

    codebook = codebook_of(args)
    try:
        params = json.loads(args.params) if args.params else None
    except json.JSONDecodeError as exc:
        raise CLIError(f"--params is not JSON ({exc.msg})") from None
    say = (lambda _msg: None) if args.quiet else err
    previous = active_ref()
    data, source = args.annotations, None
    if data is None:
        data, source = _seed_and_workspace_annotations(args, codebook, say)
    info, metrics = train(data, codebook, tagger=args.model, name=args.name, params=params, progress=say,
                          source=source, cache=embedding_cache(args), leave_source_out=args.leave_source_out)
    print(info.ref)
    if previous and previous != info.ref and not args.quiet:
        _print_comparison(read_meta(previous), info.meta)
    if args.activate or previous is None:
        say(f"active model: {activate(info.ref)}")
    elif previous != info.ref:
        say(f"active model is still {previous}; `cdpd models activate {info.ref}` (or train --activate) to switch")
    return 0


def _seed_and_workspace_annotations(args, codebook, say):
    from ..training import seed_and_workspace_annotations

    return seed_and_workspace_annotations(codebook, Path(args.workspace) if args.workspace else None, say)


def cmd_evaluate(args) -> int:
    from ..annotations import read_annotations
    from ..models import active_ref, file_sha256
    from ..training import evaluate, false_on_empty_sentence

    codebook = codebook_of(args)
    annotations = read_annotations(args.annotations, codebook)
    if args.random_only:
        from ..annotations import EVALUATION_SAMPLES

        annotations = [a for a in annotations if a.sample in (*EVALUATION_SAMPLES, "")]
    by = "source" if args.leave_source_out else "period" if args.leave_period_out else "document"
    crossed = bool(args.cv) or by != "document"
    if crossed:
        from ..models import read_meta
        from ..training import cross_validate

        name = args.model or active_ref() or "linear"
        meta = read_meta(name) if name != "lexicon" else {"tagger": "lexicon", "params": {}, "name": "lexicon",
                                                           "version": "-"}
        how = {"source": "leave-one-source-out", "period": "leave-one-period-out"}.get(by, f"{args.cv}-fold")
        title = f"{how} cross-validation of {meta['tagger']} ({meta.get('name')} settings)"
        report = cross_validate(annotations, codebook, tagger=meta["tagger"], params=meta.get("params"),
                                k=args.cv or 5, by=by,
                                progress=(lambda _m: None) if args.quiet else err, cache=embedding_cache(args))
        model_ref = f"{meta['tagger']} (cross-validated)"
    else:
        tagger, info = model_of(args, codebook)
        model_ref = info.ref
        trained_on = info.meta.get("training", {}).get("sha256")
        if trained_on and trained_on == file_sha256(args.annotations):
            err(f"warning: {info.ref} was trained on {args.annotations}; these scores are optimistic. "
                 "Its held-out scores are in `cdpd models show` (or use --cv).")
        report = evaluate(annotations, tagger, codebook)
        title = f"Evaluation of {info.ref} on {args.annotations}"
    if args.report:
        from ..training import report_html, report_markdown

        text = report_html(report, title) if args.report.endswith((".html", ".htm")) else report_markdown(report, title)
        with atomic_output(args.report) as fh:
            fh.write(text)
        err(f"wrote {args.report}")
    if args.json:
        print(json.dumps({"model": model_ref, "n_units": next(iter(report.values()))["n_units"], "axes": report},
                         indent=2))
        return 0
    print(f"{title}: {next(iter(report.values()))['n_units']} units" if crossed else
          f"model {model_ref} on {len(annotations)} units of {args.annotations}")
    for axis, r in report.items():
        print(f"\n{axis}: micro P {r['micro']['precision']:.3f} R {r['micro']['recall']:.3f} "
              f"F1 {r['micro']['f1']:.3f} | macro F1 {r['macro_f1']:.3f} | samples F1 {r['samples_f1']:.3f} | "
              f"ECE {r['ece']:.3f}")
        if r.get("false_on_empty") is not None:
            print(f"  {false_on_empty_sentence(r)}")
        print(f"  {'label':28s} {'P':>6s} {'R':>6s} {'F1':>6s} {'support':>8s}")
        for label, m in r["labels"].items():
            print(f"  {label:28s} {m['precision']:6.3f} {m['recall']:6.3f} {m['f1']:6.3f} {m['support']:8d}")
        _print_breakdowns(r)
    return 0


def _print_comparison(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Per-label held-out F1 of two models side by side, when both were measured on the same data."""
    ref_a, ref_b = f"{a['name']}@{a['version']}", f"{b['name']}@{b['version']}"
    from ..models import same_heldout

    ha, hb = a.get("metrics", {}).get("heldout"), b.get("metrics", {}).get("heldout")
    if not (ha and hb and same_heldout(a, b)):
        err(f"no comparison of {ref_a} and {ref_b}: they were not evaluated on the same held-out units "
             "(use `cdpd models compare A B --annotations FILE`)")
        return
    _print_side_by_side(ref_a, ha, ref_b, hb, "the same held-out units")


def _print_breakdowns(r: dict[str, Any], other: dict[str, Any] | None = None) -> None:
    """Per-source and per-period micro/macro F1 and false-label rate on empty units of one axis (two reports: side
    by side)."""
    from ..training import BREAKDOWNS

    for key, what in BREAKDOWNS:
        _print_groups(r, key, what, other)


def _print_groups(r: dict[str, Any], key: str, what: str, other: dict[str, Any] | None = None) -> None:
    groups = r.get(key) or {}
    if len(groups) < 2:
        return

    def cells(s: dict[str, Any] | None) -> str:
        if not s:
            return f"{'-':>7s} {'-':>7s} {'-':>12s}"
        rate = "-" if s.get("false_on_empty") is None else f"{s['false_on_empty']:.1%}/{s['empty_units']}"
        return f"{s['micro']['f1']:7.3f} {s['macro_f1']:7.3f} {rate:>12s}"

    head = f"{'micro':>7s} {'macro':>7s} {'fp-empty/n':>12s}"
    print(f"  {what:28s} {'units':>6s} {head}" + (f" | {head}" if other is not None else ""))
    for group, s in groups.items():
        line = f"  {group:28s} {s['n_units']:6d} {cells(s)}"
        if other is not None:
            line += " | " + cells((other.get(key) or {}).get(group))
        print(line)


def _print_side_by_side(ref_a: str, ra: dict, ref_b: str, rb: dict, what: str) -> None:
    print(f"\nper-label F1 on {what}: {ref_a} vs {ref_b}")
    for axis in ra:
        if axis not in rb:
            continue
        print(f"\n{axis}: micro-F1 {ra[axis]['micro']['f1']:.3f} vs {rb[axis]['micro']['f1']:.3f}; "
              f"macro-F1 {ra[axis]['macro_f1']:.3f} vs {rb[axis]['macro_f1']:.3f}")
        _print_breakdowns(ra[axis], rb[axis])
        print(f"  {'label':28s} {'A':>6s} {'B':>6s} {'B-A':>7s} {'support':>8s}")
        for label, m in ra[axis]["labels"].items():
            other = rb[axis]["labels"].get(label)
            if other is None:
                continue
            print(f"  {label:28s} {m['f1']:6.3f} {other['f1']:6.3f} {other['f1'] - m['f1']:+7.3f} {m['support']:8d}")


def register(sub, parents) -> None:
    """Add this group's commands to ``sub`` (``parents``: the shared option groups)."""
    s = sub.add_parser("train", parents=[parents.common], help="train a model on annotations (JSONL)")
    s.add_argument("--annotations", metavar="FILE",
                   help="annotations JSONL (default: the seed annotations plus the workspace's)")
    s.add_argument("--model", default="linear", help="tagger to train (default: linear)")
    s.add_argument("--name", help="model name to save under (default: the tagger's name)")
    s.add_argument("--params", help='tagger parameters as JSON, e.g. \'{"C": 4}\'')
    s.add_argument("--activate", action="store_true", help="make the new model the active one")
    s.add_argument("--leave-source-out", action="store_true",
                   help="also record, on the model card, what a source the model never saw gets (one more fit per "
                        "source)")
    s.set_defaults(func=cmd_train)


    s = sub.add_parser("evaluate", parents=[parents.common], help="per-label and micro/macro F1 of a model on annotations")
    s.add_argument("--annotations", required=True, metavar="FILE")
    s.add_argument("--model", help="model name (default: linear)")
    s.add_argument("--json", action="store_true", help="print the report as JSON")
    s.add_argument("--random-only", action="store_true",
                   help="only units drawn at random or by cue (sample 'random' or 'cue', or none)")
    how = s.add_mutually_exclusive_group()
    how.add_argument("--cv", type=int, metavar="K", help="K-fold cross-validation (iteratively stratified, grouped "
                     "by document) of the model's tagger and settings, instead of evaluating the trained model")
    how.add_argument("--leave-source-out", action="store_true",
                     help="cross-validation with one fold per source: each source predicted by a model fitted on "
                          "the others only (what to expect on a source of your own)")
    how.add_argument("--leave-period-out", action="store_true",
                     help="cross-validation with one fold per decade of each source dated in two decades or more: "
                          "those units predicted by a model that saw every other unit (what the years you have not "
                          "annotated get)")
    s.add_argument("--report", metavar="FILE", help="also write the report as markdown (.md) or HTML (.html)")
    s.set_defaults(func=cmd_evaluate)

