"""``cdpd annotations`` (import, export, flag likely label errors) and ``cdpd queue`` (passages to annotate next)."""

from __future__ import annotations

import json

from ._util import CLIError, atomic_output, codebook_of, err, model_of, open_workspace


def cmd_annotations(args) -> int:
    from ..annotations import (export_annotations, import_annotations, merge_annotations, read_annotations,
                              read_seed_annotations)

    codebook = codebook_of(args)
    if args.action == "import":
        from ..jobs import import_annotations as store

        annotations = import_annotations(args.path, codebook, args.format)  # a bad file creates no workspace
        with open_workspace(args) as ws:
            report = store(ws, annotations, codebook, annotator=args.annotator)
        for kept, new, old_labels, new_labels in report.conflicts:
            err(f"conflict: {new} relabels the text of {kept} ({old_labels} -> {new_labels})")
        print(f"imported {report.added} annotation(s) from {args.path}; {report.present} already present, "
              f"{len(report.conflicts)} conflict(s) reported")
        return 0
    if args.action == "export":
        with open_workspace(args, create=False) as ws:
            annotations = ws.annotation_units(codebook)
        if args.with_seed:
            annotations = merge_annotations(read_seed_annotations(codebook), annotations).merged
        path = export_annotations(annotations, args.path, codebook, args.format)
        print(f"exported {len(annotations)} annotation(s) to {path}")
        return 0
    if args.action == "issues":
        from ..training import label_issues

        annotations = read_annotations(args.path, codebook)
        rows = label_issues(annotations, codebook, k=args.cv, progress=(lambda _m: None) if args.quiet else err)
        with atomic_output(args.output) as out:
            for row in rows[: args.top]:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        err(f"cleanlab flagged {len(rows)} (unit, axis) pair(s) in {len(annotations)} units ({args.cv}-fold "
             f"out-of-fold scores); the {min(args.top, len(rows))} most suspect are listed, lowest quality first")
        return 0
    raise CLIError(f"unknown action {args.action!r}")


def cmd_queue(args) -> int:
    from ..queue import workspace_queue

    codebook = codebook_of(args)
    tagger, info = model_of(args, codebook)
    with open_workspace(args, create=False) as ws:
        picked = workspace_queue(ws, tagger, codebook, args.n, strategy=args.strategy, axes=args.axis,
                                 pool=args.pool, seed=args.seed, source=args.source)
    if not picked:
        where = f"of source {args.source!r} " if args.source else ""
        raise CLIError(f"no unannotated passage {where}in the workspace: run `cdpd run` (or ingest and classify) "
                       "first")
    with atomic_output(args.output) as out:
        for cand in picked:
            record = {"passage_id": cand.passage_id, "document": cand.document, "text": cand.text,
                      "margin": cand.margin, "suggested": cand.suggested, "model": info.ref,
                      "sample": args.strategy}  # kept by `cdpd annotations import` (random units can be scored)
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    err(f"{len(picked)} passage(s) chosen by {args.strategy} (pool of up to {args.pool} candidates; {info.ref})")
    return 0


def register(sub, parents) -> None:
    """Add this group's commands to ``sub`` (``parents``: the shared option groups)."""
    s = sub.add_parser("annotations", parents=[parents.common], help="import or export annotations (JSONL, spaCy, HF)")
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


    s = sub.add_parser("queue", parents=[parents.common], help="workspace passages to annotate next (active learning)")
    s.add_argument("-n", type=int, default=20, help="how many passages (default 20)")
    s.add_argument("--strategy", default="uncertainty", choices=["uncertainty", "diversity", "random"])
    s.add_argument("--axis", action="append", help="only this axis's labels count for uncertainty (repeatable)")
    s.add_argument("--model", help="model name or NAME@VERSION (default: the active model)")
    s.add_argument("--pool", type=int, default=2000, help="candidate passages drawn from the workspace")
    s.add_argument("--source", help="only passages of this source's documents (e.g. your own releases, to teach the "
                                    "model a source it never saw)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--output", "-o", metavar="FILE", help="JSON lines here instead of stdout")
    s.set_defaults(func=cmd_queue)

