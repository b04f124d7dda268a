"""``cdpd classify``: tag files, folders, tables or stdin, one JSON line per document.

A bad file or document is reported on stderr and skipped; the rest are tagged (exit status 1 says some were
skipped). Works in this process or on a Dask cluster (``--dask``).
"""

from __future__ import annotations

import argparse
import json

from ._util import (EXIT_OK, EXIT_SKIPPED, CLIError, accepted_documents, atomic_output, codebook_of, dask_tagger,
                    err, model_of, progress_bar)


def cmd_classify(args) -> int:
    from ..pipeline import DocumentTagger
    from ..text import TextProcessor

    codebook = codebook_of(args)
    tagger, info = model_of(args, codebook)
    runner = None if getattr(args, "dask", None) else DocumentTagger(tagger, TextProcessor(codebook))
    skipped = [0]
    accepted = accepted_documents(args, skipped, english_only=not args.any_language)

    n = 0
    with dask_tagger(args, tagger, info, codebook) as on_dask, atomic_output(args.output) as out, \
            progress_bar(None, "classifying", quiet=args.quiet) as bar:
        for tagged in (on_dask or runner).tag(accepted, batch_size=args.batch_size):
            record = tagged.to_record(tagger.labels, info.ref, getattr(tagger, "zero_shot", None))
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            n += 1
            bar.update(1)
        if n == 0:  # raised inside the block, so an existing --output file is left as it was
            raise CLIError("no document could be classified")
    err(f"classified {n} document(s) with {info.ref}" + (f"; skipped {skipped[0]}" if skipped[0] else ""))
    return EXIT_SKIPPED if skipped[0] else EXIT_OK


def register(sub, parents) -> None:
    """Add this group's commands to ``sub`` (``parents``: the shared option groups)."""
    s = sub.add_parser("classify", parents=[parents.common, parents.meta, parents.dask],
                       help="tag files, folders, tables or stdin; JSON lines out")
    s.add_argument("inputs", nargs="+", metavar="INPUT", help="files, folders, .jsonl/.csv/.parquet, or - for stdin")
    s.add_argument("--model", help="model name or NAME@VERSION (default: the active model; 'lexicon' needs no "
                   "training)")
    s.add_argument("--output", "-o", metavar="FILE", help="write JSON lines here (atomically) instead of stdout")
    s.add_argument("--any-language", action="store_true", help="tag documents that are not English too")
    s.add_argument("--batch-size", type=int, default=128, help=argparse.SUPPRESS)
    s.set_defaults(func=cmd_classify)

