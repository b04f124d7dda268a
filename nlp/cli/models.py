"""``cdpd models``: the model registry (list, show, activate, compare)."""

from __future__ import annotations

from ._util import CLIError, codebook_of, embedding_cache
from .training import _print_comparison, _print_side_by_side


def cmd_models(args) -> int:
    from ..models import activate, list_models, model_card, read_meta

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
        from ..annotations import read_annotations
        from ..models import load_model
        from ..training import evaluate

        codebook = codebook_of(args)
        annotations = read_annotations(args.annotations, codebook)
        reports = [evaluate(annotations, load_model(ref, codebook, cache=embedding_cache(args))[0], codebook)
                   for ref in args.refs[:2]]
        _print_side_by_side(f"{a['name']}@{a['version']}", reports[0], f"{b['name']}@{b['version']}", reports[1],
                            f"{len(annotations)} units of {args.annotations}")
        return 0
    raise CLIError(f"unknown action {action!r}; use list, show, activate or compare")


def _need(refs: list[str], n: int, usage: str) -> None:
    if len(refs) != n:
        raise CLIError(f"usage: cdpd models {usage}")


def register(sub, parents) -> None:
    """Add this group's commands to ``sub`` (``parents``: the shared option groups)."""
    s = sub.add_parser("models", parents=[parents.common], help="the model registry: list, show, activate, compare")
    s.add_argument("action", nargs="?", choices=["list", "show", "activate", "compare"], help="default: list")
    s.add_argument("refs", nargs="*", metavar="NAME", help="NAME or NAME@VERSION")
    s.add_argument("--annotations", metavar="FILE", help="compare: evaluate both models on these annotations")
    s.set_defaults(func=cmd_models)
