"""The ``cdpd`` command line. Results go to stdout (or ``--output``), progress and problems to stderr.

One module per command group, each a thin layer over library functions (the shared workflows are in
:mod:`nlp.jobs`): it reads options, calls the library, prints what comes back, and adds its commands to the
parser in ``register``.

- :mod:`~nlp.cli.classify`: ``classify``
- :mod:`~nlp.cli.workspace`: ``ingest``, ``run``, ``summary``, ``search``, ``app``
- :mod:`~nlp.cli.training`: ``train``, ``evaluate``
- :mod:`~nlp.cli.annotate`: ``annotations``, ``queue``
- :mod:`~nlp.cli.analysis`: ``ca``, ``diagram``, ``report``
- :mod:`~nlp.cli.models`: ``models``

:func:`main` prints an error a user can fix (any :class:`~nlp.errors.CdpdError`, or an operating-system error
naming a file) as one line with exit status 2; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import warnings
from pathlib import Path
from types import SimpleNamespace

from .. import __version__
from . import analysis, annotate, classify, models, training, workspace
from ._util import EXIT_ERROR, CLIError, atomic_output, err, positive_int

__all__ = ["main", "build_parser", "atomic_output", "CLIError"]

#: Command groups in the order ``cdpd --help`` lists their commands.
COMMAND_GROUPS = (classify, training, workspace, analysis, annotate, models)


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
    dask.add_argument("--partition-size", type=positive_int, metavar="N",
                      help="documents per Dask partition (default: up to 128, shrinking toward the end of a "
                      "workspace run)")
    meta = argparse.ArgumentParser(add_help=False)
    for flag in ("issuer", "issuer-type", "date", "source", "country", "city"):
        meta.add_argument(f"--{flag}", help=f"{flag.replace('-', '_')} for documents that do not set it themselves")
    meta.add_argument("--follow-links", action="store_true",
                      help="in folders, follow symbolic links that point outside the folder (default: report them as "
                      "skipped)")

    diagram = analysis.diagram_options()  # what is analysed: shared by `diagram` and `report`
    parents = SimpleNamespace(common=common, meta=meta, dask=dask, diagram=diagram)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(sub, parents)
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
    ours = Path(__file__).resolve().parent.parent  # the nlp package
    shown_once: set[str] = set()

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if ours in Path(filename).resolve().parents:  # cdpd's own: one line for the user, as its errors are
            if file is None or file is sys.stderr:
                if str(message) not in shown_once:  # the same warning reached from two call sites: said once
                    shown_once.add(str(message))
                    err(f"cdpd: warning: {message}")
            else:
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
    from ..errors import CdpdError

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
            from ..distributed import parse_target

            parse_target(args.dask)
        if _reads_text(args):
            _import_spacy_without_torch()
        return args.func(args) or 0
    except CdpdError as exc:  # the user's input, files or settings: the message says what and what to do
        err(f"cdpd {args.command}: error: {exc}")
        return EXIT_ERROR
    except BrokenPipeError:  # the reader went away (``cdpd search x | head``)
        return 0
    except OSError as exc:
        if exc.filename is None:
            raise
        # the environment, not cdpd: a file that cannot be read or written (permissions, a full disk)
        err(f"cdpd {args.command}: error: {exc.filename}: {exc.strerror or exc}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        err(f"cdpd {args.command}: interrupted; what was committed is kept, run it again to resume")
        return 130
    finally:
        if on_main_thread and previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
