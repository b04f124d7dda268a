"""What every ``cdpd`` command shares: one-line errors and exit statuses, progress bars, atomic output, and the
objects a command opens from its options (codebook, model, workspace, the documents named on the command line).

Nothing here imports spaCy, torch or pandas: ``cdpd --help`` and quick commands stay fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, TextIO

from ..errors import UsageError
from ..fileio import atomic_path

#: The shipped corpus (``corpora/*.parquet``) that ``cdpd run`` imports.
CORPORA = Path(__file__).resolve().parent.parent.parent / "corpora"

#: Exit statuses (README, "The command line"): all went well; some inputs or documents were reported and skipped
#: (the rest was done); a usage error or nothing usable (one line on stderr says why).
EXIT_OK, EXIT_SKIPPED, EXIT_ERROR = 0, 1, 2


class CLIError(UsageError):
    """An unusable input or request on the command line: printed as one line, exit status 2."""


def err(msg: str) -> None:
    """A line on stderr: progress, warnings and reasons; results go to stdout."""
    print(msg, file=sys.stderr, flush=True)


def progress_bar(total: int | None, desc: str, unit: str = "doc", quiet: bool = False):
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


def codebook_of(args):
    from ..codebook import load_codebook

    return load_codebook(args.codebook)


def model_of(args, codebook):
    from ..models import load_model

    return load_model(getattr(args, "model", None), codebook, cache=embedding_cache(args))


def embedding_cache(args) -> Path:
    """The workspace's persistent embedding cache (``--workspace`` or ``$CDPD_HOME``), used by every tagger that
    embeds text: a retrain or a second classification of the same passages encodes nothing again."""
    from ..embeddings import CACHE_FILE, default_cache_path

    workspace = getattr(args, "workspace", None)
    return Path(workspace) / CACHE_FILE if workspace else default_cache_path()


def open_workspace(args, create=True):
    from ..workspace import Workspace

    return Workspace(args.workspace, create=create)


def metadata_of(args) -> dict[str, str]:
    return {k: v for k, v in {"issuer": args.issuer, "issuer_type": args.issuer_type, "date": args.date,
                              "source": args.source, "country": args.country, "city": args.city}.items() if v}


def accepted_documents(args, skipped: list[int], english_only: bool = False):
    """The documents of ``args.inputs``; each rejected one (a bad document, or a bad file, named or in a folder) is
    reported (id and reason) and counted in skipped[0]. A missing path or an unsupported file type named on the
    command line stops everything with a one-line CLIError before any work."""
    from ..ingest import IngestError, Rejected, detect_language, iter_documents

    try:
        for item in iter_documents(args.inputs, skip_bad_inputs=True,
                                   follow_links=getattr(args, "follow_links", False), **metadata_of(args)):
            if isinstance(item, Rejected):
                skipped[0] += 1
                err(f"skipped {item.id}: {item.reason}")
                continue
            if english_only:
                lang = detect_language(item.text)
                if lang not in ("en", "und"):
                    skipped[0] += 1
                    err(f"skipped {item.id}: not English (detected {lang!r}); use --any-language to tag it")
                    continue
            yield item
    except IngestError as exc:
        raise CLIError(str(exc)) from None


@contextmanager
def dask_tagger(args, tagger, info, codebook):
    """With ``--dask``: a DaskTagger on that cluster (started, for local:N, and shut down on exit); else None."""
    spec = getattr(args, "dask", None)
    if not spec:
        yield None
        return
    from ..distributed import DaskTagger, connect, parse_target

    target = parse_target(spec)
    if not args.quiet:
        err(f"connecting to {target.describe()} ...")
    with connect(target) as client, DaskTagger(client, tagger, info, codebook,
                                               partition_size=getattr(args, "partition_size", None)) as runner:
        if not args.quiet:
            err(f"tagging on Dask: {runner.describe()}")
        yield runner


def names(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def int_in_range(low: int, high: int | None = None):
    """An argparse type: a whole number from ``low`` to ``high`` (no upper bound when None); anything else is
    refused with the range a user should give."""
    wanted = f"a whole number of at least {low}" if high is None else f"a whole number from {low} to {high}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value

    return parse


positive_int = int_in_range(1)


def printable(value) -> str:
    """Document text for the terminal: control characters (ANSI escapes, carriage returns) shown as spaces, so a
    title cannot move the cursor, recolour or rewrite the screen."""
    text = "" if value is None else str(value)
    return "".join(" " if ord(ch) < 32 or 127 <= ord(ch) < 160 else ch for ch in text)
